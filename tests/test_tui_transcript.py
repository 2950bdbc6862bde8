"""The conversation pane (`TranscriptPane`): drawn row by row, so a streaming delta costs the
same in a long session as in a short one.

- a delta wraps only the line that changed, however many lines there are;
- text growing within its rows repaints those rows only (the screen is not laid out again);
- a line growing by a row, or a new line, lays it out and follows the end; a user who scrolled
  up stays where they are;
- a narrower pane wraps every line again;
- what it draws: each line's wrapped rows, a blank row after each line but a notice;
- mouse selection copies the text as shown.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from textual.app import App, ComposeResult
from textual.geometry import Offset
from textual.selection import Selection

from voicecli.transcript import Line, LineKind
from voicecli.tui.widgets import TranscriptPane


class PaneApp(App[None]):
    CSS = "TranscriptPane { height: 1fr; scrollbar-gutter: stable; }"

    def compose(self) -> ComposeResult:
        yield TranscriptPane()


@asynccontextmanager
async def pane(width: int = 60, height: int = 12) -> AsyncIterator[tuple[Any, TranscriptPane]]:
    app = PaneApp()
    async with app.run_test(size=(width, height)) as pilot:
        yield pilot, app.query_one(TranscriptPane)


def conversation(turns: int) -> list[Line]:
    lines = []
    for i in range(turns):
        lines.append(Line(f"u{i}", LineKind.USER, f"question {i}"))
        lines.append(Line(f"a{i}", LineKind.ASSISTANT, f"answer {i}"))
    return lines


def reply(text: str) -> Line:
    return Line("live", LineKind.ASSISTANT, text, streaming=True)


def shown(pilot: Any, pane: TranscriptPane) -> list[str]:
    """The pane's rows as the screen has them (plain text, right-trimmed): through Textual's
    compositor and its line caches, so a row the pane failed to repaint shows stale."""
    screen = pilot.app.screen._compositor.render_strips()
    region = pane.scrollable_content_region
    return [
        screen[y].crop(region.x, region.x + region.width).text.rstrip()
        for y in range(region.y, region.y + region.height)
    ]


def counting_wraps(view: TranscriptPane) -> list[str]:
    """The keys of the lines `view` wraps from now on."""
    wrapped: list[str] = []
    original = view._wrap

    def wrap(line: Line) -> Any:
        wrapped.append(line.key)
        return original(line)

    view._wrap = wrap  # type: ignore[method-assign]
    return wrapped


async def test_a_delta_wraps_only_its_own_line_however_long_the_conversation() -> None:
    for turns in (2, 300):
        async with pane() as (pilot, view):
            history = conversation(turns)
            view.sync([*history, reply("Paris")])
            await pilot.pause()
            wrapped = counting_wraps(view)
            view.sync([*history, reply("Paris is")])
            assert wrapped == ["live"]


async def test_text_growing_within_its_rows_repaints_without_a_layout_pass() -> None:
    async with pane() as (pilot, view):
        view.sync([*conversation(10), reply("Paris")])
        await pilot.pause()
        height = view.virtual_size.height
        layouts: list[bool] = []
        original = view.refresh

        def refresh(*regions: Any, layout: bool = False, **kwargs: Any) -> Any:
            layouts.append(layout or not regions)  # no regions: the whole pane
            return original(*regions, layout=layout, **kwargs)

        view.refresh = refresh  # type: ignore[method-assign]
        view.sync([*conversation(10), reply("Paris is the capital")])
        assert view.virtual_size.height == height
        assert layouts and not any(layouts)  # only the reply's rows
        await pilot.pause()
        assert "Assistant: Paris is the capital ▌" in shown(pilot, view)


async def test_it_follows_the_end_unless_the_user_scrolled_up() -> None:
    async with pane(height=10) as (pilot, view):
        view.sync(conversation(10))
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y > 0
        assert shown(pilot, view)[-2:] == ["Assistant: answer 9", ""]

        view.sync([*conversation(10), reply("Paris")])
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y
        assert shown(pilot, view)[-2:] == ["Assistant: Paris ▌", ""]

        view.scroll_home(animate=False)
        await pilot.pause()
        view.sync([*conversation(10), reply("Paris"), Line("n", LineKind.NOTICE, "note")])
        await pilot.pause()
        assert view.scroll_y == 0
        assert shown(pilot, view)[0] == "You: question 0"


async def test_rows_blank_lines_and_wrapping() -> None:
    async with pane(width=30, height=14) as (pilot, view):
        lines = [
            Line("n", LineKind.NOTICE, "local demo"),
            Line("u", LineKind.USER, "What is the capital of France?"),
            Line("a", LineKind.ASSISTANT, "Paris."),
        ]
        view.sync(lines)
        await pilot.pause()
        rows = shown(pilot, view)
        assert rows[:6] == ["· local demo", "You: What is the capital of", "France?", "",
                            "Assistant: Paris.", ""]  # fmt: skip
        assert view.texts == [
            "· local demo",
            "You: What is the capital of France?",
            "Assistant: Paris.",
        ]
        assert view.lines == lines


async def test_a_narrower_pane_wraps_every_line_again() -> None:
    async with pane(width=60) as (pilot, view):
        view.sync([Line("u", LineKind.USER, "What is the capital of France?")])
        await pilot.pause()
        assert shown(pilot, view)[:2] == ["You: What is the capital of France?", ""]
        await pilot.resize_terminal(24, 12)
        await pilot.pause()
        assert shown(pilot, view)[:3] == ["You: What is the", "capital of France?", ""]


async def test_a_changed_order_is_drawn_as_given() -> None:
    async with pane() as (pilot, view):
        first = conversation(2)
        view.sync(first)
        await pilot.pause()
        view.sync([first[0], Line("t", LineKind.USER, "typed", typed=True), *first[1:]])
        await pilot.pause()
        rows = [row for row in shown(pilot, view) if row]
        assert rows[:3] == ["You: question 0", "You (typed): typed", "Assistant: answer 0"]
        view.sync(first[:1])
        await pilot.pause()
        assert [row for row in shown(pilot, view) if row] == ["You: question 0"]


async def test_selection_copies_the_rows_as_shown() -> None:
    async with pane(width=30) as (pilot, view):
        view.sync([Line("u", LineKind.USER, "What is the capital of France?")])
        await pilot.pause()
        text, _ending = view.get_selection(Selection(Offset(5, 0), Offset(7, 1)))
        assert text == "What is the capital of\nFrance?"


async def test_a_new_theme_draws_the_rows_again_in_its_colours() -> None:
    def background(strip: Any) -> Any:
        return next(iter(strip)).style.bgcolor

    async with pane() as (pilot, view):
        view.sync([Line("u", LineKind.USER, "hello")])
        await pilot.pause()
        old = view.rich_style.bgcolor
        assert background(view.render_line(0)) == old
        pilot.app.theme = "textual-light" if pilot.app.theme != "textual-light" else "nord"
        await pilot.pause()
        assert view.rich_style.bgcolor != old
        row = view.render_line(0)
        assert row.text.startswith("You: hello")
        assert background(row) == view.rich_style.bgcolor  # not the cached row of the old theme


async def test_lines_given_before_the_pane_has_a_size_show_once_it_has_one() -> None:
    async with pane() as (pilot, _view):
        late = TranscriptPane()
        late.sync(conversation(1))  # not mounted: no width to wrap to yet
        late.sync([*conversation(1), reply("Paris")])
        assert [line.key for line in late.lines] == ["u0", "a0", "live"]
        await pilot.app.mount(late)
        await pilot.pause()
        assert [row for row in shown(pilot, late) if row][:3] == [
            "You: question 0",
            "Assistant: answer 0",
            "Assistant: Paris ▌",
        ]


async def test_lines_below_two_that_trade_rows_are_drawn_where_they_now_are() -> None:
    async with pane(width=30, height=14) as (pilot, view):
        short = Line("a", LineKind.ASSISTANT, "short")
        middle = Line("b", LineKind.USER, "middle")
        long = Line("c", LineKind.ASSISTANT, "this one is long enough")
        view.sync([short, middle, long])
        await pilot.pause()
        grown = Line("a", LineKind.ASSISTANT, "this one grew to take two rows")
        cut = Line("c", LineKind.ASSISTANT, "cut")
        assert [row for row in shown(pilot, view) if row][-2:] == [
            "Assistant: this one is long",
            "enough",
        ]
        view.sync([grown, middle, cut])  # a row more and a row less: the same height
        await pilot.pause()
        assert [row for row in shown(pilot, view) if row] == [
            "Assistant: this one grew to",
            "take two rows",
            "You: middle",
            "Assistant: cut",
        ]


async def test_a_shorter_terminal_keeps_the_end_in_view() -> None:
    async with pane(width=40, height=20) as (pilot, view):
        view.sync(conversation(20))
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y
        await pilot.resize_terminal(40, 12)
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y
        view.sync([*conversation(20), reply("Paris")])
        await pilot.pause()
        assert view.scroll_y == view.max_scroll_y
        assert shown(pilot, view)[-2:] == ["Assistant: Paris ▌", ""]
