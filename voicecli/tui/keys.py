"""Every key of `voicecli talk`, in one table: the app's bindings, the help screen and the
footer are made from it, so the help can never list a key that does nothing (or miss one).

Focus decides which keys are live. The conversation pane has focus at start: there, single
letters and space are commands. The text box takes every printable key as text (so typing a
space never starts push-to-talk); Tab or Esc leaves it, Enter sends what was typed.
"""

from __future__ import annotations

from dataclasses import dataclass


__all__ = ["KEYS", "MOUSE", "Key"]


@dataclass(frozen=True, slots=True)
class Key:
    keys: str
    """Textual key names, comma separated (the binding)."""
    label: str
    """How the help screen writes the keys."""
    action: str
    description: str
    where: str = "talk"
    """`talk` (conversation pane focused), `input` (text box focused) or `anywhere`."""
    footer: str = ""
    """Short footer label; empty keeps the key out of the footer."""
    priority: bool = False
    """Checked before the focused widget sees the key (only for keys that never type text)."""


KEYS: tuple[Key, ...] = (
    Key(
        "space",
        "space",
        "ptt",
        "Push-to-talk (ptt mode): press to start talking, press again to send. With "
        "ptt_style = hold: keep the key held down; the turn is sent when the key repeats stop.",
        footer="Talk",
    ),
    Key("m", "m", "mute", "Mute or unmute the microphone.", footer="Mute"),
    Key(
        "v",
        "v",
        "cycle_mode",
        "Switch turn-taking mid-session: vad → semantic → ptt → vad.",
        footer="Mode",
    ),
    Key(
        "enter,slash",
        "enter  /  Tab",
        "focus_input",
        "Go to the text box to type a message.",
        footer="Type",
    ),
    Key("i", "i", "toggle_inspector", "Show or hide the event inspector.", footer="Inspector"),
    Key("question_mark,f1", "?  F1", "help", "Show this help.", footer="Help"),
    Key("q", "q", "quit", "Quit.", footer="Quit"),
    Key("enter", "enter", "send", "Send the message (a user message, then a reply).", "input"),
    Key(
        "escape",
        "Esc  Tab",
        "leave_input",
        "Leave the text box: space and the letter keys work again.",
        "input",
        priority=False,
    ),
    Key("ctrl+c,ctrl+q", "Ctrl+C  Ctrl+Q", "quit", "Quit.", "anywhere", priority=True),
)

MOUSE = (
    (
        "Hold to talk",
        "In ptt mode, hold the on-screen Hold to talk button with the mouse: talking starts "
        "when it is pressed and the turn is sent when it is released.",
    ),
)
