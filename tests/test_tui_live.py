"""`Live`, the fixed-size indicators (status, state, meters, turn line): a look it showed
before is taken as it was drawn, padding and background included, until the styles change.
Read through Textual's compositor, as the screen gets it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult
from textual.geometry import Region

from voicecli.tui.widgets import Live


class LiveApp(App[None]):
    CSS = "Live { height: 1; padding: 0 2; background: $boost; }"

    def compose(self) -> ComposeResult:
        yield Live()


@asynccontextmanager
async def live() -> AsyncIterator[tuple[Any, Live, list[int]]]:
    """The app, its `Live`, and a list that grows by one per line drawn through the styles."""
    app = LiveApp()
    async with app.run_test(size=(30, 3)) as pilot:
        widget = app.query_one(Live)
        drawn: list[int] = []
        original = widget.render_line

        def render_line(y: int) -> Any:
            drawn.append(y)
            return original(y)

        widget.render_line = render_line  # type: ignore[method-assign]
        yield pilot, widget, drawn


def first_row(pilot: Any) -> Any:
    """The screen's first row (where the `Live` is), as the compositor has it."""
    return pilot.app.screen._compositor.render_strips()[0]


def screen_row(pilot: Any) -> str:
    return first_row(pilot).text


def background(pilot: Any) -> Any:
    """The background colour at the start of the first row."""
    return next(iter(first_row(pilot))).style.bgcolor


async def test_it_shows_its_text_inside_its_padding() -> None:
    async with live() as (pilot, widget, _drawn):
        widget.show(Text("hello"))
        await pilot.pause()
        assert screen_row(pilot) == "  hello".ljust(30)


async def test_a_look_shown_before_is_not_drawn_again() -> None:
    async with live() as (pilot, widget, drawn):
        for word in ("one", "two"):
            widget.show(Text(word))
            await pilot.pause()
        assert screen_row(pilot).strip() == "two"
        before = len(drawn)
        widget.show(Text("one"))
        await pilot.pause()
        assert screen_row(pilot).strip() == "one"
        assert len(drawn) == before
        widget.show(Text("three"))  # a new look is drawn
        await pilot.pause()
        assert screen_row(pilot).strip() == "three"
        assert len(drawn) > before


async def test_part_of_it_is_the_same_part_of_the_whole() -> None:
    async with live() as (pilot, widget, _drawn):
        widget.show(Text("abcdefgh"))
        await pilot.pause()
        whole = widget.render_lines(Region(0, 0, 30, 1))[0].text
        assert widget.render_lines(Region(3, 0, 4, 1))[0].text == whole[3:7] == "bcde"


async def test_a_new_theme_draws_its_looks_again_in_its_colours() -> None:
    async with live() as (pilot, widget, _drawn):
        widget.show(Text("hello"))
        await pilot.pause()
        old = background(pilot)
        pilot.app.theme = "textual-light" if pilot.app.theme != "textual-light" else "nord"
        await pilot.pause()
        widget.show(Text("bye"))
        await pilot.pause()
        widget.show(Text("hello"))  # a look drawn in the old theme
        await pilot.pause()
        assert screen_row(pilot).strip() == "hello"
        assert background(pilot) != old


async def test_a_colour_set_in_code_on_it_or_its_parent_is_drawn() -> None:
    async with live() as (pilot, widget, _drawn):
        widget.show(Text("hello"))
        await pilot.pause()
        before = background(pilot)
        widget.styles.background = "yellow"  # no `notify_style_update` for this
        widget.refresh()
        await pilot.pause()
        own = background(pilot)
        assert own != before
        widget.styles.background = None  # the parent's background shows through again
        pilot.app.screen.styles.background = "magenta"
        widget.refresh()
        await pilot.pause()
        assert background(pilot) not in (before, own)


async def test_what_it_keeps_stays_bounded() -> None:
    async with live() as (pilot, widget, _drawn):
        for index in range(2 * Live.KEEP_LOOKS):  # new looks
            widget.show(Text(f"look {index}"))
            await pilot.pause()
        assert len(widget._drawn) <= Live.KEEP_LOOKS
        for width in range(20, 30 + Live.KEEP_LOOKS):  # one look at many sizes
            await pilot.resize_terminal(width, 3)
            await pilot.pause()
        assert len(widget._drawn) <= Live.KEEP_LOOKS
        assert len(widget._lines) <= Live.KEEP_LOOKS
        assert screen_row(pilot).strip() == f"look {2 * Live.KEEP_LOOKS - 1}"
