"""The widgets of the talk screen. They hold no session logic: the app hands them what to show
(Rich `Text` from `voicecli.tui.render`) and they redraw only when it differs from what they
show already, which keeps a 10 Hz refresh nearly free when nothing changes.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.strip import Strip
from textual.visual import Visual, visualize
from textual.widgets import Log, Static

from voicecli.transcript import Line
from voicecli.tui.eventlog import InspectorModel, format_row
from voicecli.tui.render import transcript_line


__all__ = [
    "Column",
    "Inspector",
    "Live",
    "MainScreen",
    "Meters",
    "PttButton",
    "Row",
    "TranscriptPane",
]


# Textual renders every widget whose clip meets a changed region on every frame, and the
# screen's direct children are clipped by the screen only: a repaint of the meters alone also
# re-renders the screen and the large containers from their caches, line by line. Widgets with
# nothing of their own to draw (no border, no content) say so with BLANK and are painted as
# plain background instead, which is most of a frame's cost while audio flows.


class MainScreen(Screen[None]):
    """The talk screen: only a background behind its widgets."""

    BLANK = True


class Row(Horizontal):
    """A row of widgets, only a background (and padding) of its own. Also a box around one
    widget: clipped by the box instead of the row around it, the widget is left alone when
    something beside it repaints."""

    BLANK = True


class Column(Vertical):
    """`Row`'s vertical twin: widgets one under another, nothing of its own to draw."""

    BLANK = True


class Live(Static):
    """A Static of a fixed size (set in the CSS) that ignores updates equal to what it shows
    and keeps the rendered lines of the looks it showed lately.

    Its size never depends on its content, so an update repaints it without a layout pass
    over the screen (the costly part of a redraw). The meters flick between a few dozen looks
    while audio flows: with the lines kept, most of their repaints are a lookup instead of
    laying out styled text again.
    """

    KEEP_LOOKS = 64
    """Looks kept (a meter has fewer; the status line's clock makes a new one each second)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._shown: Text | None = None
        self._look: Hashable = None
        self._visuals: dict[Hashable, Visual] = {}
        self._lines: dict[Hashable, list[Strip]] = {}

    def show(self, content: Text) -> None:
        if content == self._shown:
            return
        self._shown = content
        look = (
            content.plain,
            tuple(content.spans),
            content.style,
            content.justify,
            content.overflow,
            content.no_wrap,
        )
        self._look = look
        if look not in self._visuals:
            if len(self._visuals) >= self.KEEP_LOOKS:
                self._visuals.clear()
                self._lines.clear()
            self._visuals[look] = visualize(self, content, markup=False)
        self.refresh()

    @property
    def visual(self) -> Visual:
        visual = self._visuals.get(self._look)
        return visual if visual is not None else super().visual

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        style = self.visual_style
        selection = self.text_selection
        key = (self._look, width, height, style, selection)
        lines = self._lines.get(key)
        if lines is None:
            lines = Visual.to_strips(self, self.visual, width, height, style)
            self._lines[key] = lines
        return lines[y] if y < len(lines) else Strip.blank(width, style.rich_style)

    @property
    def text(self) -> str:
        """What it shows, as plain text."""
        return self._shown.plain if self._shown is not None else ""


class Meters(Vertical):
    """The mic and output meters, a `Live` line each: a meter alone has a few dozen looks (its
    cells and a note), so nearly every repaint while audio flows is one it drew before."""

    BLANK = True

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._mic = Live(id="mic-meter")
        self._out = Live(id="out-meter")

    def compose(self) -> ComposeResult:
        # A box each: one meter's repaint leaves the other alone (see `Row`).
        with Column(classes="meter-box"):
            yield self._mic
        with Column(classes="meter-box"):
            yield self._out

    def show(self, mic: Text, out: Text) -> None:
        self._mic.show(mic)
        self._out.show(out)

    @property
    def text(self) -> str:
        """What they show, as plain text."""
        return f"{self._mic.text}\n{self._out.text}".rstrip("\n")


class _LineView(Static):
    def __init__(self, line: Line) -> None:
        super().__init__(transcript_line(line), classes=f"line {line.kind.value}")
        self.line = line

    def set_line(self, line: Line) -> bool:
        """Show `line`; True if that changed the height (the screen is laid out again)."""
        if line is self.line or line == self.line:  # unchanged lines come back as themselves
            return False
        self.line = line
        text = transcript_line(line)
        # A streaming reply changes many times a second but needs another row only now and
        # then: lay the screen out again only when the wrapped height changes.
        width = self.content_region.width
        height = len(text.wrap(self.app.console, width)) if width > 0 else -1
        resized = height != self.content_region.height
        self.update(text, layout=resized)
        return resized

    @property
    def text(self) -> str:
        """The line as shown, in plain text."""
        return transcript_line(self.line).plain


class TranscriptPane(VerticalScroll):
    """The conversation, one widget per transcript line, keyed by `Line.key`.

    Lines usually only change in place (a streaming reply, a late user transcript filling its
    placeholder) or get appended; when the order changes (a typed message confirmed by the
    server, a notice placed after an earlier item) the pane is rebuilt. It follows the end of
    the conversation unless the user scrolled up.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._views: list[_LineView] = []

    @property
    def lines(self) -> list[Line]:
        return [view.line for view in self._views]

    def sync(self, lines: Sequence[Line]) -> None:
        follow = self.scroll_y >= self.max_scroll_y - 1
        keys = [view.line.key for view in self._views]
        resized = True
        if [line.key for line in lines[: len(keys)]] != keys:
            self.remove_children()
            self._views = [_LineView(line) for line in lines]
            if self._views:
                self.mount_all(self._views)
        else:
            resized = False
            for view, line in zip(self._views, lines, strict=False):
                resized |= view.set_line(line)
            new = [_LineView(line) for line in lines[len(keys) :]]
            if new:
                resized = True
                self._views += new
                self.mount_all(new)
        # Text changing in place within its rows leaves the end where it was.
        if follow and resized:
            self.call_after_refresh(self.scroll_end, animate=False)


LIVE_ROWS = 4
"""Rows of the inspector's live area: at most one per kind of delta streaming at once."""


class _Box(Vertical):
    """`Row`'s column: a box around one widget, nothing of its own to draw."""

    BLANK = True


class Inspector(Vertical):
    """The event inspector: finished rows go into a `Log` (appended once, drawn only where
    visible, scrolls both ways); the run of deltas still growing sits in a small live area
    under it and is redrawn as it grows. It and its log are boxes of their own (see `Row`):
    the live area's repaints leave the log and the conversation beside it alone."""

    BLANK = True
    can_focus = False

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._log = Log(id="inspector-log", max_lines=5000)
        self._live = Static("", id="inspector-live", markup=False)
        self._written = 0
        self._shown_version = -1
        self._live_text = ""

    def compose(self) -> ComposeResult:
        with Vertical(id="inspector-frame"):
            with _Box(id="inspector-log-box"):
                yield self._log
            yield self._live

    def show(self, model: InspectorModel) -> None:
        if model.version == self._shown_version:
            return
        self._shown_version = model.version
        rows = model.final_since(self._written)
        self._written = model.final_count
        if rows:
            self._log.write_lines([format_row(row) for row in rows])
        # One line per growing group, cut to the width: the live area keeps its size, so it
        # repaints without a layout pass while the deltas stream.
        width = max(20, self._live.content_region.width)
        rows = model.open_rows()[-LIVE_ROWS:]
        live = "\n".join(format_row(row, width) for row in rows)
        if live != self._live_text:
            self._live_text = live
            self._live.update(Text(live, no_wrap=True, overflow="ellipsis"), layout=False)

    @property
    def text(self) -> str:
        """Everything shown, in plain text."""
        return "\n".join([*self._log.lines, self._live_text]).rstrip("\n")


class PttButton(Static):
    """Push-to-talk held with the mouse: a true press and release in any terminal that reports
    the mouse (terminals send no key releases, see keys.py)."""

    can_focus = False

    class Pressed(Message):
        """The button went down."""

    class Released(Message):
        """The button came up (anywhere: the mouse is captured while it is held)."""

    def __init__(self, label: str = "Hold to talk", **kwargs: object) -> None:
        super().__init__(label, **kwargs)  # type: ignore[arg-type]
        self.held = False

    def on_mouse_down(self, event: events.MouseDown) -> None:
        event.stop()
        if not self.held:
            self.held = True
            self.add_class("held")
            self.capture_mouse()
            self.post_message(self.Pressed())

    def on_mouse_up(self, event: events.MouseUp) -> None:
        event.stop()
        if self.held:
            self.held = False
            self.remove_class("held")
            self.release_mouse()
            self.post_message(self.Released())
