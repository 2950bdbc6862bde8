"""The widgets of the talk screen. They hold no session logic: the app hands them what to show
(Rich `Text` from `voicecli.tui.render`) and they redraw only when it differs from what they
show already, which keeps a 10 Hz refresh nearly free when nothing changes.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Sequence

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.geometry import Region, Size
from textual.message import Message
from textual.screen import Screen
from textual.scroll_view import ScrollView
from textual.selection import Selection
from textual.strip import Strip
from textual.visual import Visual, visualize
from textual.widgets import Log, Static

from voicecli.transcript import Line, LineKind
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
    and keeps the drawn lines of the looks it showed lately.

    Its size never depends on its content, so an update repaints it without a layout pass
    over the screen (the costly part of a redraw). The meters flick between a few dozen looks
    while audio flows: with the lines kept, most of their repaints are a lookup instead of
    laying out styled text again and putting Textual's styles (padding, background) around it.
    """

    KEEP_LOOKS = 64
    """Looks kept (a meter has fewer; the status line's clock makes a new one each minute, each
    second in the session's last five)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._shown: Text | None = None
        self._look: Hashable = None
        self._visuals: dict[Hashable, Visual] = {}
        self._lines: dict[Hashable, list[Strip]] = {}
        self._drawn: dict[Hashable, list[Strip]] = {}  # per look: the whole widget, styled

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
                self._drawn.clear()
            self._visuals[look] = visualize(self, content, markup=False)
        self.refresh()

    @property
    def visual(self) -> Visual:
        visual = self._visuals.get(self._look)
        return visual if visual is not None else super().visual

    def render_lines(self, crop: Region) -> list[Strip]:
        # Textual draws a widget through its styles on every repaint (some 0.2 ms for a line);
        # a look drawn before is taken as it was drawn. Its colours and its parents' are in the
        # key (a style set in code changes them without `notify_style_update`); padding and
        # alignment set in code are not: the CSS sets them, and a CSS change clears the cache.
        size = self.outer_size  # padding included: what Textual's styles draw
        key = (self._look, size, self.text_selection, self.visual_style, self.background_colors)
        drawn = self._drawn.get(key)
        if drawn is None:
            if len(self._drawn) >= self.KEEP_LOOKS:  # resizes and selections add entries too
                self._drawn.clear()
            self._styles_cache.clear()
            drawn = super().render_lines(size.region)
            self._drawn[key] = drawn
        lines = drawn[crop.y : crop.bottom]
        if crop.column_span != (0, size.width):
            lines = [line.crop(crop.x, crop.right) for line in lines]
        return lines

    def notify_style_update(self) -> None:
        """Textual's styles changed (a theme, a CSS reload): looks are drawn again in them."""
        super().notify_style_update()
        self._lines.clear()
        self._drawn.clear()

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        style = self.visual_style
        selection = self.text_selection
        key = (self._look, width, height, style, selection)
        lines = self._lines.get(key)
        if lines is None:
            if len(self._lines) >= self.KEEP_LOOKS:
                self._lines.clear()
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


class TranscriptPane(ScrollView, can_focus=True):
    """The conversation, drawn row by row (Textual's Line API) from `Line`s.

    Each line is wrapped once, when it changes (or the width does), into rows kept as strips;
    a frame draws only the rows it shows from them. So the cost of a streaming reply's delta
    does not grow with the conversation: the pane is one widget however long the session
    (one widget per line made every change lay out all of them again, `bench/tui_lines.py`).
    The screen is laid out again only when the pane's total height changes. Every line but a
    notice is followed by a blank row. It follows the end of the conversation unless the user
    scrolled up; text can be selected with the mouse as in any Textual widget.
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._lines: list[Line] = []
        self._rows: list[list[Text | None]] = []  # per line: its wrapped rows, None = blank
        self._starts: list[int] = []  # per line: its first row
        self._drawn: list[list[Strip | None]] = []  # per line: its rows as drawn (cache)
        self._width = 0
        self._view_height = 0  # rows shown, as of the last resize

    @property
    def lines(self) -> list[Line]:
        return list(self._lines)

    @property
    def texts(self) -> list[str]:
        """Each line as shown, in plain text."""
        return [transcript_line(line).plain for line in self._lines]

    def sync(self, lines: Sequence[Line]) -> None:
        """Show `lines`: only those that differ from what is shown are wrapped again."""
        old = self._lines
        width = self._wrap_width()
        same = [i < len(old) and (line is old[i] or line == old[i]) for i, line in enumerate(lines)]
        if len(lines) == len(old) and all(same):
            return
        follow = self._at_end()
        self._lines = list(lines)
        if width != self._width:  # the first lines, or a new width not yet seen
            self._width = width
            self._rewrap(follow)
            return
        if width == 0:
            return  # no size yet: wrapped when it comes (`on_resize`)
        changed = [i for i, unchanged in enumerate(same) if not unchanged]
        rows, drawn = self._rows[: len(lines)], self._drawn[: len(lines)]
        moved = len(lines) != len(old)  # rows below a changed line move if its height does
        for i in changed:
            wrapped = self._wrap(lines[i])
            if i < len(rows):
                moved |= len(wrapped) != len(rows[i])
                rows[i], drawn[i] = wrapped, [None] * len(wrapped)
            else:
                rows.append(wrapped)
                drawn.append([None] * len(wrapped))
        self._rows, self._drawn = rows, drawn
        self._place()
        if moved:
            self._redraw(follow)
            return
        # Text changing within its rows (the usual streaming delta): repaint those rows only.
        for i in changed:
            self.refresh_lines(self._starts[i], len(rows[i]))

    def _at_end(self) -> bool:
        return self.scroll_y >= self.max_scroll_y - 1

    def _redraw(self, follow: bool) -> None:
        self.refresh()
        if follow:
            self._show_end()

    def _show_end(self) -> None:
        # Now: the new size is known (forced: the scrollbar may not be shown yet).
        self.scroll_end(animate=False, immediate=True, force=True)

    def _forget_drawn(self) -> None:
        self._drawn = [[None] * len(rows) for rows in self._rows]

    def _wrap_width(self) -> int:
        """0 until the pane has a size: nothing is wrapped before that."""
        return self.scrollable_content_region.width

    def _wrap(self, line: Line) -> list[Text | None]:
        text = transcript_line(line)
        rows: list[Text | None] = list(text.wrap(self.app.console, max(1, self._width)))
        if line.kind is not LineKind.NOTICE:
            rows.append(None)
        return rows

    def _rewrap(self, follow: bool) -> None:
        lines = self._lines if self._width > 0 else []
        self._rows = [self._wrap(line) for line in lines]
        self._forget_drawn()
        self._place()
        self._redraw(follow)

    def _place(self) -> None:
        starts, row = [], 0
        for wrapped in self._rows:
            starts.append(row)
            row += len(wrapped)
        self._starts = starts
        if self.virtual_size != Size(self._width, row):
            self.virtual_size = Size(self._width, row)

    def notify_style_update(self) -> None:
        """Textual's styles changed (a theme, a CSS reload): rows are drawn again in them."""
        super().notify_style_update()
        self._forget_drawn()

    def on_resize(self, event: events.Resize) -> None:
        # Whether it showed the end before the resize: the old height decides, not the new.
        follow = self.scroll_y >= self.virtual_size.height - self._view_height - 1
        self._view_height = self.scrollable_content_region.height
        if self._wrap_width() != self._width:
            self._width = self._wrap_width()
            self._rewrap(follow)
        elif follow:
            self._show_end()

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        row = scroll_y + y
        style = self.rich_style
        width = self.scrollable_content_region.width
        index = bisect.bisect_right(self._starts, row) - 1
        if index < 0 or row >= self.virtual_size.height:
            return Strip.blank(width, style)
        offset = row - self._starts[index]
        text = self._rows[index][offset]
        if text is None:
            return Strip.blank(width, style).apply_offsets(scroll_x, row)
        selection = self.text_selection
        span = selection.get_span(row) if selection is not None else None
        strip = self._drawn[index][offset] if span is None else None
        if strip is None:
            if span is not None:
                text = text.copy()
                start, end = span
                text.stylize(
                    self.screen.get_component_rich_style("screen--selection"),
                    start,
                    len(text) if end == -1 else end,
                )
            strip = Strip(text.render(self.app.console), text.cell_len).apply_style(style)
            if span is None:
                self._drawn[index][offset] = strip
        return strip.crop_extend(scroll_x, scroll_x + width, style).apply_offsets(scroll_x, row)

    def get_selection(self, selection: Selection) -> tuple[str, str] | None:
        """The selected text (the rows as shown, one per line)."""
        rows = [row.plain.rstrip() if row else "" for rows in self._rows for row in rows]
        return selection.extract("\n".join(rows)), "\n"

    def selection_updated(self, selection: Selection | None) -> None:
        self.refresh()


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
