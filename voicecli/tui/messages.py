"""App-wide Textual messages: what the engine's subscriber hands to the UI.

The engine calls its subscribers in the middle of its own work (on the same event loop), so the
subscriber only records what changed and posts these messages; the handlers, which touch
widgets, run afterwards from the app's queue. Fast changes (levels, deltas, the event log) are
not messages at all: a timer renders them from `engine.snapshot()` at 10 Hz.
"""

from __future__ import annotations

from textual.message import Message


__all__ = ["EngineNotice", "SessionStatus"]


class EngineNotice(Message):
    """Something the user must see: an info line, a warning, or a server error with its code."""

    def __init__(self, text: str, level: str, code: str | None = None) -> None:
        super().__init__()
        self.text = text
        self.level = level
        self.code = code


class SessionStatus(Message):
    """The connection changed (connected, reconnecting, failed): redraw the status line now
    rather than at the next tick. Only the newest matters, so a queued one is replaced."""

    def __init__(self, status: str, detail: str | None = None) -> None:
        super().__init__()
        self.status = status
        self.detail = detail

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, SessionStatus)
