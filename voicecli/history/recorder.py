"""Turns a talk session into history: writes each transcript line the moment it completes.

`HistoryRecorder` knows nothing about sockets or audio. It is fed what the UI already has:
the display lines (`voicecli.transcript.Line`, in conversation order) after every change, and
each finished turn's metrics. It writes through a `HistoryStore`, one committed transaction
per line, so whatever completed before a crash is on disk.

    recorder = HistoryRecorder.start(store, model=..., voice=..., dialect=..., server_url=...)
    recorder.sync(engine.transcript(), engine.conversation)   # after every transcript change
    recorder.turn_finished(turn_metrics)                      # after every response.done
    recorder.finish("user quit", engine.transcript(), engine.metrics.turns)

or, for a `voicecli.engine.TalkEngine`, simply `attach(engine, store, ...)` before
`engine.run()`; it subscribes to the engine's updates and does all of the above.

Rules:

- A line is written when it is complete: user speech once its transcript arrived (or failed),
  a typed message once the server has it, an assistant reply once it stopped streaming
  (finished or interrupted), tool lines once done, notices and errors at once.
- Order is conversation order. When a later line completes while an earlier one is still
  waiting (the user's transcript usually arrives after the reply started), the earlier one is
  written first as a pending placeholder and filled in when its text arrives. (An item the
  server inserts in the middle after later lines were written goes after them: rows are
  never renumbered.)
- A written line is updated when it changes: a late transcript, an interruption and its heard
  length (the client's cut first, the server's truncation later), a transcript the server kept.
- Per-turn figures (latency, usage, cost) go on the first assistant line of their response.
- `finish()` writes what is still pending as it stands (marked pending), refreshes the
  figures (the heard-at time can arrive after `response.done`) and ends the conversation.
- A database failure never stops the session: it is reported once per distinct message to
  `on_error`, and recording goes on with the next line.
- Items replayed into a new session after a reconnect are already in the history: pass their
  ids to `skip_items()` so they are not written twice.

Imports: the store, `voicecli.transcript` and `voicecli.metrics` (pure); the engine is only
referenced for typing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voicecli.history.store import HistoryError, HistoryStore, MessageFigures
from voicecli.transcript import Line, LineKind


if TYPE_CHECKING:
    from voicecli.engine import TalkEngine, Update
    from voicecli.metrics import TurnMetrics
    from voicecli.protocol.conversation import Conversation


__all__ = ["HistoryRecorder", "attach"]

_ROLES = {
    LineKind.USER: "user",
    LineKind.ASSISTANT: "assistant",
    LineKind.TOOL: "tool",
    LineKind.NOTICE: "notice",
    LineKind.ERROR: "error",
}


def _complete(line: Line) -> bool:
    if line.kind in (LineKind.NOTICE, LineKind.ERROR):
        return True
    return not line.pending and not line.streaming


@dataclass(slots=True)
class _Written:
    message_id: int
    state: tuple[object, ...]
    complete: bool


def _state(line: Line) -> tuple[object, ...]:
    return (line.text, line.full_text, line.interrupted, line.heard_ms, line.failed)


class HistoryRecorder:
    """Writes one conversation's lines to a `HistoryStore` as they complete (see module doc)."""

    def __init__(
        self,
        store: HistoryStore,
        conversation_id: int | None = None,
        *,
        about: Mapping[str, str | None] | None = None,
        on_error: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Record into conversation `conversation_id`, or (None) into a new one begun with
        `about` (`model`, `voice`, `dialect`, `server_url`) at `begin()` or the first write,
        so a session that never got going leaves no empty conversation behind."""
        self.store = store
        self.conversation_id = conversation_id
        self._about: dict[str, str | None] = dict(about or {})
        self._on_error = on_error
        self._clock = clock
        self._written: dict[str, _Written] = {}
        self._first_seen: dict[str, float] = {}
        self._skipped: set[str] = set()
        self._figures: dict[str, MessageFigures] = {}
        self._figures_on: dict[str, int] = {}
        """response id -> the message carrying its figures."""
        self._reported: set[str] = set()
        self.finished = False
        self.end_reason: str | None = None
        """What `attach` records as the reason when the engine stops cleanly (set it, e.g. to
        `user quit`, before stopping the engine); default `stopped`."""
        self.errors = 0
        """Write failures so far (each reported to `on_error` once per distinct message)."""

    @classmethod
    def start(
        cls,
        store: HistoryStore,
        *,
        model: str | None = None,
        voice: str | None = None,
        dialect: str | None = None,
        server_url: str | None = None,
        on_error: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> HistoryRecorder:
        """Begin a conversation in `store` now and return its recorder. Raises HistoryError."""
        conversation_id = store.begin_conversation(
            model=model, voice=voice, dialect=dialect, server_url=server_url, started_at=clock()
        )
        return cls(store, conversation_id, on_error=on_error, clock=clock)

    # --- feeding -------------------------------------------------------------------------

    def begin(self) -> int | None:
        """Begin the conversation if that has not happened yet (e.g. when the session is
        connected); returns its id, or None if the database refused (reported)."""
        if self.conversation_id is None:
            about = self._about
            ok, begun = self._guard(
                lambda: self.store.begin_conversation(**about, started_at=self._clock())
            )
            if ok and isinstance(begun, int):
                self.conversation_id = begun
        return self.conversation_id

    def skip_items(self, item_ids: Iterable[str]) -> None:
        """Never write lines for these server items (context replayed after a reconnect)."""
        self._skipped.update(item_ids)

    def update_conversation(self, **about: str | None) -> None:
        """Record what the server said about the session (`model`, `voice`, `dialect`,
        `server_url`); only changes are written."""
        changed = {name: value for name, value in about.items() if self._about.get(name) != value}
        if not changed:
            return
        self._about.update(changed)
        conversation_id = self.conversation_id
        if conversation_id is not None:
            self._guard(lambda: self.store.update_conversation(conversation_id, **changed))

    def sync(self, lines: Sequence[Line], conversation: Conversation | None = None) -> None:
        """Write the lines that completed since the last call and update changed ones.

        `conversation` (optional) tells voice replies from text-only ones.
        """
        if self.finished:
            return
        now = self._clock()
        lines = [line for line in lines if not self._skip(line)]
        for line in lines:
            self._first_seen.setdefault(line.key, now)
        last_complete = max((i for i, line in enumerate(lines) if _complete(line)), default=-1)
        for index, line in enumerate(lines):
            written = self._written.get(line.key)
            complete = _complete(line)
            if written is None:
                if complete or index < last_complete:
                    self._add(line, complete, conversation, now)
            elif written.complete or complete:
                if written.state != _state(line) or written.complete != complete:
                    self._update(line, written, complete, now)

    def turn_finished(self, turn: TurnMetrics) -> None:
        """A response is done: store its figures on its reply (now, or when it is written)."""
        if self.finished or not turn.response_id:
            return
        figures = MessageFigures.from_turn(turn)
        self._figures[turn.response_id] = figures
        message_id = self._figures_on.get(turn.response_id)
        if message_id is not None:
            self._guard(lambda: self.store.update_message(message_id, figures=figures))

    def finish(
        self,
        reason: str,
        lines: Sequence[Line] | None = None,
        turns: Iterable[TurnMetrics] = (),
        conversation: Conversation | None = None,
    ) -> None:
        """Write what is left (pending lines as they stand), refresh the figures of `turns`,
        and end the conversation with `reason`. Later calls do nothing."""
        if self.finished:
            return
        if lines is not None:
            self.sync(lines, conversation)
            now = self._clock()
            for line in lines:
                # Still pending: speech whose transcript never came, a typed message the
                # server never confirmed, a reply cut off by the end. Keep them, marked.
                if not self._skip(line) and line.key not in self._written:
                    self._add(line, False, conversation, now)
        for turn in turns:
            self.turn_finished(turn)
        conversation_id = self.conversation_id  # never begun: nothing happened, nothing to end
        if conversation_id is not None:
            self._guard(lambda: self.store.end_conversation(conversation_id, reason))
        self.finished = True

    # --- writing -------------------------------------------------------------------------

    def _skip(self, line: Line) -> bool:
        return line.item_id is not None and line.item_id in self._skipped

    def _add(
        self, line: Line, complete: bool, conversation: Conversation | None, now: float
    ) -> None:
        role = _ROLES[line.kind]
        figures = self._figures.get(line.response_id or "")
        carries_figures = (
            role == "assistant"
            and line.response_id is not None
            and line.response_id not in self._figures_on
        )

        conversation_id = self.begin()
        if conversation_id is None:
            return

        def write() -> int:
            return self.store.add_message(
                conversation_id,
                role=role,
                kind=_kind(line, conversation),
                text=line.text,
                full_text=line.full_text,
                pending=not complete,
                item_id=line.item_id,
                response_id=line.response_id,
                interrupted=line.interrupted,
                heard_ms=line.heard_ms,
                started_at=self._first_seen.get(line.key, now),
                ended_at=now if complete else None,
                figures=figures if carries_figures else None,
            )

        ok, message_id = self._guard(write)
        if not ok or not isinstance(message_id, int):
            return
        self._written[line.key] = _Written(message_id, _state(line), complete)
        if carries_figures and line.response_id is not None:
            self._figures_on[line.response_id] = message_id

    def _update(self, line: Line, written: _Written, complete: bool, now: float) -> None:
        became_complete = complete and not written.complete

        def write() -> None:
            self.store.update_message(
                written.message_id,
                text=line.text,
                full_text=line.full_text,
                pending=not complete,
                interrupted=line.interrupted,
                heard_ms=line.heard_ms,
                **({"ended_at": now} if became_complete else {}),
            )

        ok, _ = self._guard(write)
        if ok:
            written.state = _state(line)
            written.complete = complete

    def _guard(self, write: Callable[[], object]) -> tuple[bool, object]:
        """Run one store call: (True, its result), or (False, None) after a failure, which is
        counted and reported, never raised."""
        try:
            return True, write()
        except HistoryError as exc:
            self.errors += 1
            message = str(exc)
            if message not in self._reported:
                self._reported.add(message)
                if self._on_error is not None:
                    self._on_error(f"History not saved: {message}.")
            return False, None


def _kind(line: Line, conversation: Conversation | None) -> str:
    if line.kind is LineKind.USER:
        return "typed" if line.typed else "voice"
    if line.kind is LineKind.ASSISTANT:
        item = conversation.get(line.item_id) if conversation and line.item_id else None
        if item is not None and item.parts:
            has_audio = any(part.type == "output_audio" for part in item.parts)
            return "voice" if has_audio else "text"
        return "voice"
    return "system"


# --------------------------------------------------------------------------------------------
# Wiring to the talk engine
# --------------------------------------------------------------------------------------------


def attach(
    engine: TalkEngine,
    store: HistoryStore,
    *,
    model: str | None = None,
    dialect: str | None = None,
    server_url: str | None = None,
    on_error: Callable[[str], None] | None = None,
) -> HistoryRecorder:
    """Record `engine`'s conversation in `store`: subscribes to the engine's updates, begins
    the conversation once the session is up (a connection that fails at once leaves nothing
    behind) and ends it with the engine (`stopped`, or the one-line error that ended it).
    Call before `engine.run()`. Set `recorder.end_reason = "user quit"` (or the like) before
    `engine.stop()` to record a better reason than `stopped`.

    `on_error` defaults to showing the failure as a notice in the engine's transcript.
    """
    from voicecli import engine as eng

    if on_error is None:

        def on_error(text: str) -> None:
            engine.notice(text, "warning")

    about = {
        "model": model,
        "voice": engine.settings.voice,
        "dialect": dialect,
        "server_url": server_url,
    }
    recorder = HistoryRecorder(store, about=about, on_error=on_error)

    def on_update(update: Update) -> None:
        if isinstance(update, eng.SessionChanged):
            snapshot = engine.snapshot()
            said = {"model": snapshot.model, "voice": snapshot.voice, "dialect": snapshot.dialect}
            recorder.update_conversation(**{k: v for k, v in said.items() if v})
            recorder.begin()  # connected: the conversation has started
        elif isinstance(update, (eng.TranscriptChanged, eng.NoticeAdded)):
            recorder.sync(engine.transcript(), engine.conversation)
        elif isinstance(update, eng.TurnFinished):
            recorder.sync(engine.transcript(), engine.conversation)
            recorder.turn_finished(update.metrics)
        elif isinstance(update, eng.Ended):
            recorder.finish(
                update.error or recorder.end_reason or "stopped",
                engine.transcript(),
                engine.metrics.turns,
                engine.conversation,
            )

    engine.subscribe(on_update)
    return recorder
