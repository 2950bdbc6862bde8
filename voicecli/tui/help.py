"""The help screen: every key and mouse action of the talk screen, from the table in keys.py."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from voicecli.tui.keys import KEYS, MOUSE


__all__ = ["HelpScreen", "help_table"]

_WHERE = {
    "talk": "Talking (the conversation has focus)",
    "input": "Typing (the text box has focus)",
    "anywhere": "Anywhere",
}


def help_table(ptt_style: str = "toggle") -> Group:
    """Every key by where it works, then the mouse, then the push-to-talk style in use."""
    parts: list[RenderableType] = []
    for where, title in _WHERE.items():
        parts.append(Text(title, "bold underline"))
        parts.append(_table((key.label, key.description) for key in KEYS if key.where == where))
        parts.append(Text(""))
    parts.append(Text("Mouse", "bold underline"))
    parts.append(_table(MOUSE))
    parts.append(Text(""))
    style = "toggle: press space to start, again to send"
    if ptt_style == "hold":
        style = "hold: keep space held down (the turn ends when its key repeats stop)"
    parts.append(Text("Push-to-talk style", "bold underline"))
    parts.append(Text(f"{style} (config audio.ptt_style, flag --ptt-style)"))
    return Group(*parts)


def _table(rows: Iterable[tuple[str, str]]) -> Table:
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), expand=True)
    table.add_column("key", style="bold cyan", no_wrap=True, min_width=14)
    table.add_column("what it does", ratio=1)
    for key, description in rows:
        table.add_row(key, description)
    return table


class HelpScreen(ModalScreen[None]):
    """Keys, in a box over the talk screen; any of Esc, q, ? or F1 closes it."""

    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close help", show=True),
    ]

    def __init__(self, ptt_style: str = "toggle") -> None:
        super().__init__()
        self.ptt_style = ptt_style

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(Text("voicecli talk — keys", "bold"), id="help-title")
            yield Static(help_table(self.ptt_style), id="help-keys")
            yield Static(Text("Esc, q, ? or F1 closes this help.", "dim"), id="help-close")
