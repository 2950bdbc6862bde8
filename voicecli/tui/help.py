"""The help screen: every key and mouse action of the talk screen, from the table in keys.py."""

from __future__ import annotations

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


def help_table(ptt_style: str = "toggle") -> Table:
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 0), expand=True)
    table.add_column("key", style="bold cyan", no_wrap=True)
    table.add_column("what it does", ratio=1)
    for where, title in _WHERE.items():
        table.add_row(Text(title, "bold underline"), "")
        for key in KEYS:
            if key.where == where:
                table.add_row(key.label, key.description)
        table.add_row("", "")
    table.add_row(Text("Mouse", "bold underline"), "")
    for name, description in MOUSE:
        table.add_row(name, description)
    table.add_row("", "")
    style = "toggle: press space to start, again to send"
    if ptt_style == "hold":
        style = "hold: keep space held down (the turn ends when its key repeats stop)"
    table.add_row(
        Text("Push-to-talk style", "bold"), f"{style} (config audio.ptt_style, --ptt-style)"
    )
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
