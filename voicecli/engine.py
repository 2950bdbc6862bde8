"""The talk engine: the non-UI heart of `voicecli talk` and `voicecli smoke`.

`TalkEngine` connects a `RealtimeSession` (opened by a caller-supplied opener, so the choice of
server stays with the command) and an `AudioBackend` (real, file or null; none for text-only),
and drives the pure parts:

- `voicecli.turns.TurnPolicy` decides who speaks when; the engine carries out its actions
  (play, flush, truncate with the backend's heard position, cancel, clear, append, commit,
  create, session.update);
- `voicecli.echo.EchoGuard` filters mic blocks while the assistant is audible;
- `voicecli.metrics.MetricsTracker` times each turn and prices its usage;
- `voicecli.transcript.TranscriptView` turns the protocol Conversation into display lines.

It publishes what a UI needs: `snapshot()` (a small frozen `EngineSnapshot`), `transcript()`
(the display lines), `log` (the event log for the inspector) and a stream of small `Update`
objects to `subscribe()`rs, which a UI coalesces. It never prints and never imports Textual.

Errors: the harmless races (`HARMLESS_ERROR_CODES`) only go to the event log; other server
errors become error notices with their code; a lost audio device becomes a notice and the
session goes on (typing still works); a connection that fails ends `run()` with its typed
`ConnectError`, unless `TalkSettings.reconnect` is set:

- a recoverable failure (dropped connection, server restart, keepalive timeout) publishes
  `ConnectionChanged("reconnecting", ...)`, reconnects with jittered backoff, sends the
  `session.update` again and replays the conversation as text items (`voicecli.reconnect`);
  what was playing is cut where the user stopped hearing it, mic audio meanwhile is dropped;
- the server's time limit (`session_expired` + 1001) does the same at once, as "renewing";
  before it comes, the session is renewed at a turn boundary `renew_margin_s` ahead of
  `expires_at` (the new session is opened before the old one is closed);
- `transcript()` and `conversation` show one conversation across sessions (replayed items are
  not shown twice); fatal failures (key, quota, beta shape, HTTP 4xx) and running out of
  attempts end `run()` with one clear error.

`TalkSettings.record_dir` records the session (`voicecli.recording`): a stereo WAV (mic left,
assistant right) and a JSONL capture of every frame both ways, audio elided, key redacted.

Everything runs on the asyncio thread: user actions (`ptt_press`, `send_text`, ...) are plain
method calls from the UI's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from voicecli.echo import EchoGuard, EchoMode, EchoSettings
from voicecli.errors import ConnectError, VoiceCliError
from voicecli.metrics import MetricsTracker, SessionSummary, TurnMetrics
from voicecli.protocol import events as ev
from voicecli.protocol.conversation import Conversation, ItemState
from voicecli.protocol.dialects import UNSET, SessionConfig, Transcription
from voicecli.reconnect import (
    Decision,
    JoinedConversation,
    ReconnectSettings,
    ReconnectTracker,
    Replayed,
    Step,
    renew_at,
    replay_plan,
)
from voicecli.recording import SessionRecording
from voicecli.transcript import Line, TranscriptView
from voicecli.turns import (
    BYTES_PER_MS,
    Action,
    AppendAudio,
    CancelResponse,
    ClearInputBuffer,
    CommitAudio,
    CreateResponse,
    FlushPlayback,
    Mode,
    Notice,
    PlayAudio,
    SendText,
    State,
    Truncate,
    TurnPolicy,
    TurnSettings,
    UpdateTurnDetection,
)


if TYPE_CHECKING:
    from voicecli.audio.backend import AudioBackend, MicBlock
    from voicecli.config import Config, ModelPrices
    from voicecli.session import ConnectionSettings, RealtimeSession

_T = TypeVar("_T")


__all__ = [
    "ConnectionChanged",
    "Ended",
    "EngineSnapshot",
    "LevelsChanged",
    "LogEntry",
    "Logged",
    "NoticeAdded",
    "SessionChanged",
    "SessionOpener",
    "StateChanged",
    "TalkEngine",
    "TalkSettings",
    "TranscriptChanged",
    "TurnFinished",
    "Update",
    "opener_for",
]

Tap = Callable[[str], None]
SessionOpener = Callable[[Tap, Tap], Awaitable["RealtimeSession"]]
"""`await opener(on_sent, on_received)` opens the session with those taps installed."""


def opener_for(settings: ConnectionSettings) -> SessionOpener:
    """The usual opener: `RealtimeSession.open(settings)` with the engine's taps."""

    async def open_session(on_sent: Tap, on_received: Tap) -> RealtimeSession:
        from voicecli.session import RealtimeSession

        return await RealtimeSession.open(settings, on_sent=on_sent, on_received=on_received)

    return open_session


# --- settings ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TalkSettings:
    """What a talk session asks for. Build it from the config with `from_config()`."""

    mode: Mode = Mode.VAD
    voice: str | None = "alloy"
    """None leaves the server's default voice."""
    instructions: str = ""
    """Empty leaves the server's default instructions."""
    transcription_model: str = "gpt-4o-mini-transcribe"
    """Empty turns input transcription off (user speech then shows as `(speech)`)."""
    output: str = "audio"
    """`audio` (with a transcript) or `text`."""
    text_only: bool = False
    """No audio at all: typed turns only; assistant audio, if any, is ignored."""
    turn: TurnSettings = field(default_factory=TurnSettings)
    echo: EchoSettings = field(default_factory=EchoSettings)
    prices: ModelPrices | None = None
    tick_s: float = 0.02
    """How often time-driven work runs while push-to-talk is held (a hold by key repeats
    ends when the repeats stop: its release is only as exact as this tick)."""
    playing_tick_s: float = 0.05
    """How often it runs while assistant audio is queued or audible (playback bookkeeping,
    the output meter, the state once a reply has played out; the screen redraws at 10 Hz)."""
    idle_tick_s: float = 0.1
    """How often it runs otherwise (noticing a lost device, renewal, response timeouts): a
    session that only listens wakes 10 times a second instead of 50."""
    mic_batch_ms: int = 100
    """Mic audio is handed over and sent in batches this long while nobody speaks (each
    wake-up of the loop and each WebSocket frame costs far more than the audio in it); a
    block at the onset of speech (`mic_wake_peak`) goes at once."""
    mic_speech_batch_ms: int = 40
    """Batch length while the server hears the user speaking: the end of speech reaches its
    VAD at most this much later than block by block. Push-to-talk sends every block."""
    mic_wake_peak: float = 0.03
    """A mic block peaking at or above this (0..1 of full scale, about -30 dBFS) is sent at
    once while batching: speech onset (and barge-in) is not held back."""
    levels_every_s: float = 0.05
    """How often `LevelsChanged` is published while assistant audio plays (at the idle tick
    otherwise)."""
    log_size: int = 5000
    """Event log entries kept for the inspector."""
    reconnect: ReconnectSettings | None = None
    """Reconnect after recoverable failures and renew sessions before the server's time limit
    (see the module docstring); None: a dropped or expired session ends `run()`."""
    record_dir: Path | None = None
    """Record the session into this directory (`voicecli.recording`); None: no recording."""

    @classmethod
    def from_config(cls, config: Config, *, text_only: bool = False) -> TalkSettings:
        session, audio = config.session, config.audio
        connection, history = config.connection, config.history
        return cls(
            mode=Mode(session.mode),
            voice=session.voice,
            instructions=session.instructions,
            transcription_model=session.transcription_model,
            output=session.output,
            text_only=text_only,
            turn=TurnSettings(
                eagerness=session.eagerness,
                vad_threshold=session.vad_threshold,
                vad_prefix_padding_ms=session.prefix_padding_ms,
                vad_silence_duration_ms=session.silence_duration_ms,
            ),
            echo=EchoSettings(mode=EchoMode(audio.echo_guard), gate_margin_db=audio.echo_margin_db),
            mic_batch_ms=audio.batch_ms,
            mic_speech_batch_ms=audio.speech_batch_ms,
            prices=config.price_for(config.connection.model),
            reconnect=ReconnectSettings(
                attempts=connection.reconnect_attempts,
                renew_margin_s=connection.renew_margin_s,
            ),
            record_dir=Path(history.record_dir).expanduser() if history.record_dir else None,
        )

    def session_config(self, policy: TurnPolicy) -> SessionConfig:
        """The first `session.update`: voice, instructions, output, transcription, turns."""
        transcription = (
            Transcription(model=self.transcription_model) if self.transcription_model else None
        )
        return SessionConfig(
            instructions=self.instructions or UNSET,
            voice=self.voice or UNSET,
            output_modalities=(self.output,),
            input_audio_format="pcm16",
            output_audio_format="pcm16",
            transcription=transcription if not self.text_only else UNSET,
            turn_detection=policy.turn_detection(),
        )


# --- what the engine publishes ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of the event log: a frame sent or received, or a note from the engine."""

    at: float
    """Wall-clock time (`time.time()`), for display."""
    direction: str
    """`sent`, `received` or `engine`."""
    type: str
    """The event type (neutral name for received events) or, for engine notes, a short tag."""
    data: Mapping[str, Any] | None = None
    """The wire dict with audio payloads replaced by `<N bytes>`; None for engine notes."""
    note: str = ""
    """Engine notes and harmless errors: one line of explanation."""


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """Everything the status line, state indicator and meters show, at one moment."""

    connection: str
    """`idle`, `connecting`, `connected`, `closed` or `failed`."""
    connection_error: str | None
    url: str | None
    dialect: str | None
    model: str | None
    voice: str | None
    session_id: str | None
    expires_at: int | None
    """Unix seconds when the server ends the session (show `expires_at - time.time()`)."""
    mode: Mode
    eagerness: str
    state: State
    muted: bool
    recording: bool
    """Push-to-talk pressed or toggled on."""
    hold_source: str | None
    """How push-to-talk is held: `toggle`, `button` or `keys`."""
    text_only: bool
    echo_mode: EchoMode
    echo_closed: bool
    """The echo guard is silencing the mic right now."""
    mic_level: float
    """RMS of the latest mic block, 0..1 of full scale."""
    out_level: float
    """RMS of the assistant audio reaching the speaker, 0..1."""
    underruns: int
    audio_lost: str | None
    """One line naming the lost audio device, once one is lost."""
    last_turn: TurnMetrics | None
    summary: SessionSummary
    reconnects: int = 0
    """New sessions opened after the first (reconnects and renewals); the conversation went on
    in each."""


@dataclass(frozen=True, slots=True)
class Update:
    """Base of the change notifications. Fast ones (levels, log) come often: coalesce them."""


@dataclass(frozen=True, slots=True)
class ConnectionChanged(Update):
    status: str
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class SessionChanged(Update):
    """session.created/updated arrived: model, voice, expiry may have changed."""


@dataclass(frozen=True, slots=True)
class StateChanged(Update):
    state: State
    muted: bool
    mode: Mode
    recording: bool


@dataclass(frozen=True, slots=True)
class TranscriptChanged(Update):
    """Re-read `TalkEngine.transcript()`."""


@dataclass(frozen=True, slots=True)
class LevelsChanged(Update):
    mic: float
    out: float


@dataclass(frozen=True, slots=True)
class TurnFinished(Update):
    metrics: TurnMetrics


@dataclass(frozen=True, slots=True)
class NoticeAdded(Update):
    text: str
    level: str
    """`info`, `warning` or `error`."""
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Logged(Update):
    entry: LogEntry


@dataclass(frozen=True, slots=True)
class Ended(Update):
    error: str | None
    """None after `stop()`; the one-line reason when the connection or the audio devices
    failed (the same error `run()` raises)."""


# --- helpers -------------------------------------------------------------------------------

_AUDIO_TYPES = frozenset(
    {
        "input_audio_buffer.append",
        "response.output_audio.delta",
        "response.audio.delta",
        "conversation.item.retrieved",
        "conversation.item.create",
    }
)


_LONG_STRING = 4096
"""Top-level strings longer than this are cut in the event log (a 20 MiB event of an unknown
type must not sit in the inspector whole)."""


def _size_note(base64_text: str) -> str:
    return f"<{len(base64_text) * 3 // 4} bytes>"


def _elide(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The wire dict with base64 audio replaced by `<N bytes>` (also inside item content), so
    the log stays small and readable; other huge top-level strings are cut."""
    if data.get("type") not in _AUDIO_TYPES:
        if not any(isinstance(v, str) and len(v) > _LONG_STRING for v in data.values()):
            return data
        return {
            name: f"{value[:200]}…<{len(value)} chars>"
            if isinstance(value, str) and len(value) > _LONG_STRING
            else value
            for name, value in data.items()
        }
    out = dict(data)
    for name in ("delta", "audio"):
        if isinstance(out.get(name), str):
            out[name] = _size_note(out[name])
    item = out.get("item")
    if isinstance(item, Mapping) and isinstance(item.get("content"), list):
        out["item"] = {
            **item,
            "content": [
                {**part, "audio": _size_note(part["audio"])}
                if isinstance(part, Mapping) and isinstance(part.get("audio"), str)
                else part
                for part in item["content"]
            ],
        }
    return out


# --- the engine ----------------------------------------------------------------------------


class TalkEngine:
    """One talk session: open, stream, play, take turns, measure; until `stop()` or failure.

        engine = TalkEngine(settings, opener_for(connection), audio=backend)
        engine.subscribe(on_update)          # or: async for update in engine.updates()
        await engine.run()                   # returns after stop(); raises ConnectError

    `audio=None` (or `settings.text_only`) runs without any audio device.
    """

    def __init__(
        self,
        settings: TalkSettings,
        open_session: SessionOpener,
        audio: AudioBackend | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._open_session = open_session
        self.audio = None if settings.text_only else audio
        self._clock = clock
        self._wall = wall_clock
        self.policy = TurnPolicy(
            mode=settings.mode, settings=settings.turn, audio=self.audio is not None
        )
        self.echo = EchoGuard(settings.echo)
        self._played_cursor = 0  # `AudioBackend.played_levels()` position (echo guard)
        self.metrics = MetricsTracker(settings.prices)
        self.transcript_view = TranscriptView(
            transcription=bool(settings.transcription_model) and self.audio is not None
        )
        self.log: deque[LogEntry] = deque(maxlen=settings.log_size)
        self.session: RealtimeSession | None = None
        self._empty_conversation = Conversation()
        self._subscribers: list[Callable[[Update], None]] = []
        self._connection = "idle"
        self._connection_error: str | None = None
        self._audio_lost: str | None = None
        self._audio_ok = self.audio is not None
        self._stop = asyncio.Event()
        self._published: tuple[Any, ...] | None = None
        self._levels_at = -1e9
        self._tick_wake: asyncio.Future[None] | None = None
        """The tick's slow wait, while it waits slowly (`_hurry_tick` ends it)."""
        self._summary_cache: SessionSummary | None = None
        self._summary_key: tuple[int, int] = (0, 0)
        self._url_of: RealtimeSession | None = None
        self._url: str | None = None
        self._first_play_pending: dict[str, tuple[str, int]] = {}
        self._underruns_at_start: dict[str, int] = {}
        self._stats_underruns = 0
        self._mic_level = 0.0
        self._out_level = 0.0
        # Reconnects and renewals.
        self._tracker = ReconnectTracker(settings.reconnect) if settings.reconnect else None
        self._earlier: list[ItemState] = []
        """Items of the sessions before this one, in order (what the transcript shows)."""
        self._replayed = Replayed()
        self._session_left = False
        """The current session's items are archived in `_earlier` (it ended; a new one is
        being opened): its conversation is not shown a second time."""
        self._renew_after: float | None = None
        """Wall-clock time from which to renew at the next turn boundary."""
        self._renew_now = asyncio.Event()
        self._mic_loud_at = -1e9
        self._prebuffer_s = 0.0
        self.reconnects = 0
        """New sessions opened after the first (reconnects and renewals)."""
        self.recording: SessionRecording | None = None
        """The `--record` files of this session, while it runs."""

    # --- observing -----------------------------------------------------------------------

    def subscribe(self, callback: Callable[[Update], None]) -> Callable[[], None]:
        """Call `callback(update)` for every update (on the asyncio thread); returns an
        unsubscribe function. A callback that raises is logged and kept."""
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    async def updates(self) -> AsyncIterator[Update]:
        """The updates as an async iterator, from the first `__anext__` on (start iterating
        before `run()` to see them all); ends after `Ended`."""
        queue: asyncio.Queue[Update] = asyncio.Queue()
        unsubscribe = self.subscribe(queue.put_nowait)
        try:
            while True:
                update = await queue.get()
                yield update
                if isinstance(update, Ended):
                    return
        finally:
            unsubscribe()

    @property
    def conversation(self) -> Conversation:
        """The conversation so far: after a reconnect, the earlier sessions' items followed by
        the live session's (the context replayed into it is not shown twice)."""
        live = self._empty_conversation
        if self.session is not None and not self._session_left:
            live = self.session.client.conversation
        if not self._earlier:
            return live
        if self._replayed.waiting:
            # The session applies events before we see them: look at every item it has.
            for item in live.items:
                self._replayed.observe(item)
        return JoinedConversation(self._earlier, live, self._replayed.ids)

    def transcript(self) -> list[Line]:
        """The conversation as display lines, in conversation order."""
        return self.transcript_view.lines(self.conversation)

    def snapshot(self) -> EngineSnapshot:
        client = self.session.client if self.session else None
        config = client.session if client else SessionConfig()
        turns = self.metrics.turns
        return EngineSnapshot(
            connection=self._connection,
            connection_error=self._connection_error,
            url=self._display_url(),
            dialect=client.dialect.name if client else None,
            model=client.model if client else None,
            voice=config.voice if config.voice is not UNSET else self.settings.voice,
            session_id=client.session_id if client else None,
            expires_at=client.expires_at if client else None,
            mode=self.policy.mode,
            eagerness=self.policy.settings.eagerness,
            state=self.policy.state,
            muted=self.policy.muted,
            recording=self.policy.recording,
            hold_source=self.policy.hold_source,
            text_only=self.audio is None,
            echo_mode=self.echo.mode,
            echo_closed=self.echo.closed,
            mic_level=self._mic_level,
            out_level=self._out_level,
            underruns=self._stats_underruns,
            audio_lost=self._audio_lost,
            last_turn=turns[-1] if turns else None,
            summary=self._summary(),
            reconnects=self.reconnects,
        )

    def _display_url(self) -> str | None:
        """The session's URL for display (parsed once per session, not per snapshot)."""
        session = self.session
        if session is None:
            return None
        if self._url_of is not session:
            self._url_of, self._url = session, session.settings.display_url
        return self._url

    def _summary(self) -> SessionSummary:
        """`metrics.summary()`, computed again only after it may have changed: it walks every
        turn, and a UI asks for a snapshot ten times a second."""
        metrics = self.metrics
        key = (metrics.revision, len(metrics.turns))
        if self._summary_cache is None or key != self._summary_key:
            self._summary_key, self._summary_cache = key, metrics.summary()
        return self._summary_cache

    # --- user actions --------------------------------------------------------------------

    def ptt_press(self) -> None:
        """Push-to-talk pressed (a true press: mouse button, terminal key-down)."""
        self._act(self.policy.ptt_press(self._clock(), source="button"))

    def ptt_release(self) -> None:
        self._act(self.policy.ptt_release(self._clock()))

    def ptt_toggle(self) -> None:
        """Start or end a push-to-talk turn (space by default)."""
        self._act(self.policy.ptt_toggle(self._clock()))

    def ptt_key(self) -> None:
        """Hold-to-talk without key releases: call on every key press, auto-repeats included;
        the turn ends when the repeats stop."""
        self._act(self.policy.ptt_key(self._clock()))

    def toggle_mute(self) -> None:
        self._act(self.policy.toggle_mute())

    def set_muted(self, muted: bool) -> None:
        self._act(self.policy.set_muted(muted))

    def set_mode(self, mode: Mode | str, eagerness: str | None = None) -> None:
        """Switch turn-taking mid-session (sends `session.update` with the new turn detection)."""
        self._act(self.policy.set_mode(mode, eagerness))

    def send_text(self, text: str) -> None:
        """Send a typed message (interrupts the assistant) and ask for an answer."""
        if self.session is None or not text.strip():
            return
        self._act(self.policy.send_text(text))

    def notice(self, text: str, level: str = "info") -> None:
        """Add a line to the transcript and publish it (e.g. "talking to the local server")."""
        after = self.conversation.last_item_id
        if level == "error":
            self.transcript_view.error(text, after)
        else:
            self.transcript_view.notice(text, after)
        self._publish(NoticeAdded(text, level))
        self._publish(TranscriptChanged())

    def stop(self) -> None:
        """End the session; `run()` returns once everything is closed."""
        self._stop.set()

    # --- running -------------------------------------------------------------------------

    async def run(self) -> None:
        """Open the session, start audio, run until `stop()`; raises the ConnectError (or the
        AudioError from starting the devices) that ended it.

        The session opens first so the mic does not queue audio while we connect (it would
        reach the server late, in a burst). With `settings.reconnect`, recoverable failures
        and the server's time limit lead to a new session instead (module docstring).
        """
        error: BaseException | None = None
        try:
            if self.settings.record_dir is not None:
                self.recording = SessionRecording.create(self.settings.record_dir)
            self._set_connection("connecting")
            self.session = await self._open_session(self._on_sent, self._on_received)
            self._set_connection("connected")
            self._begin_session(self.session)
            if self.audio is not None:
                await self.audio.start()
                self._pace_mic()
            self._act(self.policy.on_session_ready())
            await self._serve()
        except ConnectError as exc:
            error = exc
            self._connection_error = str(exc)
            self._set_connection("failed", str(exc))
            raise
        except BaseException as exc:
            error = exc
            raise
        finally:
            await self._shutdown()
            if self._connection != "failed":
                self._set_connection("closed")
            # A VoiceCliError (connection, audio devices) is one line a user can read.
            failed = error if isinstance(error, VoiceCliError) else None
            self._publish(Ended(None if failed is None else str(failed)))
            if self.recording is not None:
                self.recording.note("ended", str(failed) if failed else "stopped")
                self.recording.close()

    async def _serve(self) -> None:
        """Run until `stop()`: the clock and the mic for the whole run, the events of one
        session after another."""
        assert self.session is not None
        tasks: dict[str, asyncio.Task[Any]] = {
            "stop": asyncio.create_task(self._stop.wait(), name="engine-stop"),
            "tick": asyncio.create_task(self._tick(), name="engine-tick"),
            "events": asyncio.create_task(self._read_events(self.session), name="engine-events"),
            "renew": asyncio.create_task(self._renew_now.wait(), name="engine-renew"),
        }
        if self.audio is not None:
            tasks["mic"] = asyncio.create_task(self._read_mic(self.audio), name="engine-mic")
        try:
            while True:
                done, _ = await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
                if self._stop.is_set():
                    return
                recovered = False
                for name, task in list(tasks.items()):
                    if task not in done:
                        continue
                    del tasks[name]
                    if name == "events":
                        recovered = True
                        failure = task.exception()
                        if failure is None:
                            return  # the connection ended without an error (closed by us)
                        if not isinstance(failure, ConnectError) or self._tracker is None:
                            raise failure
                        if not await self._recover(failure):
                            return  # stopped while reconnecting
                    elif name == "renew":
                        self._renew_now.clear()
                        tasks["renew"] = asyncio.create_task(self._renew_now.wait())
                        if recovered:
                            continue  # the session was just replaced anyway
                        events = tasks.pop("events", None)
                        if not await self._renew(events):
                            if events is not None:
                                tasks["events"] = events  # the current session goes on
                            continue
                    else:
                        task.result()  # raises a fatal error; the mic may simply end
                        continue
                    tasks["events"] = asyncio.create_task(
                        self._read_events(self.session), name="engine-events"
                    )
        finally:
            for task in tasks.values():
                task.cancel()
            await asyncio.gather(*tasks.values(), return_exceptions=True)

    async def _shutdown(self) -> None:
        if self.session is not None:
            with contextlib.suppress(Exception):
                await self.session.close()
        if self.audio is not None:
            with contextlib.suppress(Exception):
                await self.audio.stop()

    async def _read_events(self, session: RealtimeSession) -> None:
        async for event in session.events():
            self._on_event(event)

    async def _read_mic(self, audio: AudioBackend) -> None:
        async for block in audio.mic_blocks():
            now = self._clock()
            self._on_mic_block(block, now)
        self._note("mic", "the microphone input ended")

    def _on_mic_block(self, block: MicBlock, now: float) -> None:
        self._mic_level = block.rms
        if block.rms >= _QUIET_RMS and not self.policy.muted:
            self._mic_loud_at = now
        if self.recording is not None:
            self.recording.mic(block.pcm, block.captured_at)
        if self.audio is not None and self.echo.mode is not EchoMode.OFF:
            # What the speaker played up to now, by DAC time: the echo this block may hold.
            played, self._played_cursor = self.audio.played_levels(self._played_cursor)
            for span in played:
                self.echo.on_played(span.start, span.end, span.rms)
        pcm = self.echo.filter(block.pcm, now, block.captured_at, block.rms)
        # While reconnecting the policy is not connected and drops the block: audio from
        # then is never sent late to the next session.
        self._act(self.policy.on_mic_block(pcm))

    # --- reconnecting and renewing -------------------------------------------------------

    def _begin_session(self, session: RealtimeSession) -> None:
        """A session is open: configure it and, after a reconnect, replay the conversation."""
        if self.recording is not None:
            self.recording.add_secret(session.settings.api_key)
        if self._tracker is not None:
            self._tracker.connected(self._clock())
        self._session_left = False
        self._renew_after = None
        session.update_session(self.settings.session_config(self.policy))
        if not self._earlier:
            return
        assert self.settings.reconnect is not None
        plan = replay_plan(self.transcript(), self.settings.reconnect.max_replay_chars)
        self._replayed = Replayed(plan)
        for item in plan:
            session.send_text(item.text, item.role)
        self._note("replay", f"{len(plan)} lines of the conversation replayed as context")

    async def _recover(self, failure: ConnectError) -> bool:
        """The session ended with `failure`: open another (True), return False if stopped
        meanwhile, or raise the error to stop with (fatal, or out of attempts)."""
        assert self._tracker is not None and self.session is not None
        decision = self._tracker.decide(failure, self._clock())
        self._note("connection", f"{decision.step}: {failure}")
        if decision.step in (Step.FATAL, Step.GIVE_UP):
            raise decision.error
        expired = decision.step is Step.RENEW
        old = self.session
        self._leave(old, "time limit" if expired else "connection lost")
        with contextlib.suppress(Exception):
            await old.close()
        while True:
            self._set_connection(decision.status, self._retry_detail(decision))
            if decision.delay_s > 0:
                await self._unless_stopped(asyncio.sleep(decision.delay_s))
                if self._stop.is_set():
                    return False
            try:
                session = await self._unless_stopped(
                    self._open_session(self._on_sent, self._on_received)
                )
            except ConnectError as exc:
                decision = self._tracker.decide(exc, self._clock())
                self._note("connection", f"{decision.step}: {exc}")
                if decision.step in (Step.FATAL, Step.GIVE_UP):
                    raise decision.error from None
                continue
            if session is None:
                return False
            break
        self.session = session
        self.reconnects += 1
        self._set_connection("connected")
        self._begin_session(session)
        self._act(self.policy.on_session_ready())
        if expired:
            self.notice(
                "The session reached the server's time limit; a new one goes on with the "
                "conversation so far."
            )
        else:
            self.notice(f"Reconnected after {_cause(failure)}; the conversation goes on.")
        return True

    def _retry_detail(self, decision: Decision) -> str:
        if decision.step is Step.RENEW:
            return "the session reached the server's time limit"
        assert self.settings.reconnect is not None
        attempts = self.settings.reconnect.attempts
        wait = f" in {decision.delay_s:.1f} s" if decision.delay_s >= 0.1 else ""
        return f"attempt {decision.attempt} of {attempts}{wait}: {decision.error}"

    def _leave(self, old: RealtimeSession, why: str) -> None:
        """Done with the old session: settle everything it left half done, keep its items."""
        now = self._clock()
        # The reply that was playing: the user heard what played so far, and nothing more.
        playing = list(self.policy.playing)
        if playing and self.audio is not None and self._audio_ok:
            self.audio.clear()
            if self.recording is not None:
                self.recording.clear()
        for item_id, content_index in playing:
            self.transcript_view.heard(
                item_id, content_index, self._played_ms(item_id, content_index)
            )
        response_id = old.client.active_response_id
        if response_id:
            self.metrics.interrupted(response_id)
            turn = self.metrics.response_done(response_id, "incomplete", None, now)
            if turn is not None:
                self._publish(TurnFinished(turn))
        self.metrics.discard_pending()
        self._first_play_pending.clear()
        self._underruns_at_start.clear()
        # A fresh policy: no response, no speech, no push-to-talk hold; mode and mute stay.
        previous = self.policy
        self.policy = TurnPolicy(
            mode=previous.mode, settings=previous.settings, audio=previous.audio
        )
        self.policy.muted = previous.muted
        self._archive(old)
        self._session_left = True
        self._note("connection", f"{why}; {len(self._earlier)} items kept")
        self._publish(TranscriptChanged())

    def _archive(self, old: RealtimeSession) -> None:
        """Keep the old session's items (not its replays) for the transcript and the replay."""
        items = old.client.conversation.items
        for item in items if self._replayed.waiting else ():
            self._replayed.observe(item)
        for item in items:
            if item.id in self._replayed.ids:
                continue
            if item.role == "assistant" and item.status == "in_progress":
                if not item.text and not item.audio_ms:
                    continue  # a reply cut off before its first word: nothing to keep
                item.status = "incomplete"  # it will never finish now
            self._earlier.append(item)
        self._replayed = Replayed()

    async def _renew(self, events: asyncio.Task[None] | None) -> bool:
        """Renew at a turn boundary: open the next session while the current one still runs,
        then switch. If the new one cannot be opened the current one goes on (True if
        switched)."""
        old = self.session
        if old is None or self._tracker is None:
            return False
        self.policy.connected = False  # a short pause in listening while we switch
        self._set_connection("renewing", "before the server's time limit")
        try:
            session = await self._unless_stopped(
                self._open_session(self._on_sent, self._on_received)
            )
        except ConnectError as exc:
            self._note("renew", f"could not open a new session ({exc}); the current one goes on")
            self._renew_after = self._wall() + _RENEW_RETRY_S
            session = None
        if session is None or events is None or events.done():
            # Stopped, failed, or the old session ended meanwhile (then it is recovered from).
            if session is not None:
                await session.close()
            self._set_connection("connected")
            self._act(self.policy.on_session_ready())
            return False
        events.cancel()
        await asyncio.gather(events, return_exceptions=True)
        # Normally nothing is half done at a turn boundary; whatever started while the new
        # session opened (speech, a reply) ends with the old session.
        self._leave(old, "renewal")
        with contextlib.suppress(Exception):
            await old.close()
        self.session = session
        self.reconnects += 1
        self._set_connection("connected")
        self._begin_session(session)
        self._act(self.policy.on_session_ready())
        self.notice("Renewed the session before the server's time limit; the conversation goes on.")
        return True

    async def _unless_stopped(self, awaitable: Awaitable[_T]) -> _T | None:
        """`await awaitable`, or None as soon as `stop()` is called (it is cancelled)."""
        task = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stop.cancel()
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return None
        return task.result()

    def _check_renewal(self, now: float) -> None:
        """Ask for a renewal once it is due and the conversation is between turns."""
        if self._renew_after is None or self._wall() < self._renew_after:
            return
        if self._at_turn_boundary(now):
            self._renew_after = None
            self._renew_now.set()

    def _at_turn_boundary(self, now: float) -> bool:
        policy, session = self.policy, self.session
        if session is None or not policy.connected:
            return False
        busy = (
            policy.user_speaking
            or policy.recording
            or policy.playing
            or policy.response_active
            or policy.awaiting_response
            or session.client.response_active
        )
        # Server VAD reports speech a few hundred ms late: a loud mic just now may be a turn
        # starting.
        return not busy and now - self._mic_loud_at >= _QUIET_FOR_S

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            delay = self._tick_delay()
            fast = delay < self.settings.idle_tick_s
            wake = loop.create_future()
            # A slow wait is cut short (`_hurry_tick`) as soon as something time-driven starts.
            self._tick_wake = None if fast else wake
            timer = loop.call_later(delay, _resolve, wake)
            try:
                await wake
            finally:
                timer.cancel()
                self._tick_wake = None
            self._on_tick()

    def _tick_delay(self) -> float:
        """The wait before the next tick (see `TalkSettings.tick_s` and the two after it).

        A reply's first sample is waited for while its part plays; the figure itself comes
        from the backend's played position, so a slower tick does not move it."""
        policy, settings = self.policy, self.settings
        if policy.recording:
            return settings.tick_s
        if policy.playing or self._out_level > 0.0:
            return settings.playing_tick_s
        return settings.idle_tick_s

    def _time_driven(self) -> bool:
        return self._tick_delay() < self.settings.idle_tick_s

    def _hurry_tick(self) -> None:
        """Tick now if the tick sleeps slowly while time-driven work has just begun."""
        wake = self._tick_wake
        if wake is not None and self._time_driven():
            self._tick_wake = None
            _resolve(wake)

    def _on_tick(self) -> None:
        now = self._clock()
        played = self._played_ms if self._audio_ok else None
        self._act(self.policy.tick(now, played))
        if self.audio is not None and not self._audio_ok and self.policy.playing:
            # The speaker is gone: audio arriving now is never heard, nothing is "playing".
            self._act(self.policy.on_audio_lost())
        self._check_renewal(now)
        if self.audio is not None:
            stats = self.audio.stats()
            self._out_level = stats.out_rms
            self._stats_underruns = stats.underruns
            self._prebuffer_s = stats.prebuffer_ms / 1000
            self.echo.on_playback_level(stats.out_rms, now)
            if stats.device_lost and self._audio_lost is None:
                self._on_audio_lost(stats.device_lost)
            self._check_first_play(now)
            if now - self._levels_at >= self.settings.levels_every_s:
                self._levels_at = now
                self._publish(LevelsChanged(self._mic_level, self._out_level))
        self.echo.on_assistant_audible(bool(self.policy.playing), now)
        self._publish_state()

    def _played_ms(self, item_id: str, content_index: int) -> int:
        return self.audio.played_ms(item_id, content_index) if self.audio else 0

    def _check_first_play(self, now: float) -> None:
        for response_id, part in list(self._first_play_pending.items()):
            heard = self._played_ms(*part)
            if heard > 0:
                # The first sample reached the device `heard` ms ago.
                self.metrics.first_played(response_id, now - heard / 1000)
                del self._first_play_pending[response_id]

    def _on_audio_lost(self, message: str) -> None:
        self._audio_lost = message
        self._audio_ok = False
        self._act(self.policy.on_audio_lost())
        self.notice(f"Audio device lost ({message}); the session goes on and typing still works.")

    # --- server events -------------------------------------------------------------------

    def _on_event(self, event: ev.Event) -> None:
        self._log_received(event)
        now = self._clock()
        handler = _EVENT_HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event, now)
        if type(event) in _TRANSCRIPT_EVENTS:
            self._publish(TranscriptChanged())
        self._publish_state()

    def _on_session(self, event: ev.SessionCreated | ev.SessionUpdated, now: float) -> None:
        reconnect = self.settings.reconnect
        if isinstance(event, ev.SessionCreated) and reconnect and reconnect.renew:
            created = self._wall()
            # The server's clock against ours: a badly skewed clock leaves renewal to the
            # expiry itself (renewed at once then, mid-turn or not).
            if event.expires_at and event.expires_at > created:
                self._renew_after = renew_at(created, event.expires_at, reconnect.renew_margin_s)
        self._publish(SessionChanged())

    def _on_speech_started(self, event: ev.SpeechStarted, now: float) -> None:
        self._act(self.policy.on_speech_started(event.item_id))

    def _on_speech_stopped(self, event: ev.SpeechStopped, now: float) -> None:
        self._act(self.policy.on_speech_stopped(event.item_id))
        if self.policy.mode is not Mode.PTT:
            self.metrics.user_turn_ended(now, "voice")

    def _on_committed(self, event: ev.InputCommitted, now: float) -> None:
        self._act(self.policy.on_committed(event.item_id))

    def _on_cleared(self, event: ev.InputCleared, now: float) -> None:
        self._act(self.policy.on_input_cleared())

    def _on_response_created(self, event: ev.ResponseCreated, now: float) -> None:
        self.metrics.response_created(event.response_id, now)
        self._underruns_at_start[event.response_id] = self._stats_underruns
        self._act(self.policy.on_response_created(event.response_id))

    def _on_audio_delta(self, event: ev.AudioDelta, now: float) -> None:
        self.metrics.audio_delta(event.response_id, len(event.pcm) / BYTES_PER_MS, now)
        if self._audio_ok and event.response_id not in self._first_play_pending:
            turn = self.metrics.current(event.response_id)
            if turn is not None and turn.first_played_at is None:
                self._first_play_pending[event.response_id] = (event.item_id, event.content_index)
        self._act(
            self.policy.on_output_audio(
                event.response_id, event.item_id, event.content_index, event.pcm
            )
        )

    def _on_audio_done(self, event: ev.AudioDone, now: float) -> None:
        if self.audio is not None:
            self.audio.end_part(event.item_id, event.content_index)
        self._act(self.policy.on_output_audio_done(event.item_id, event.content_index))

    def _on_output_text(self, event: ev.TranscriptDelta | ev.TextDelta, now: float) -> None:
        self.metrics.text_delta(event.response_id, now)
        self._act(self.policy.on_output_text(event.response_id))

    def _on_response_done(self, event: ev.ResponseDone, now: float) -> None:
        if self.audio is not None:  # in case an audio part's own done event never came
            for item in event.output:
                for index, part in enumerate(item.content):
                    if "audio" in part.type:
                        self.audio.end_part(item.id, index)
        turn = self.metrics.response_done(event.response_id, event.status, event.usage, now)
        if turn is not None:
            start = self._underruns_at_start.pop(event.response_id, None)
            if start is not None and self.audio is not None:
                turn.underruns = self._stats_underruns - start
            if event.status == "failed":
                details = event.status_details
                error = details.error if details else None
                reason = (error.message if error else "") or (details.reason if details else "")
                self._server_error(
                    f"The response failed{': ' + reason if reason else ''}.",
                    error.code if error else None,
                )
            self._publish(TurnFinished(turn))
        self._act(self.policy.on_response_done(event.response_id))

    def _on_error(self, event: ev.ServerError, now: float) -> None:
        error = event.error
        reconnect = self.settings.reconnect
        if error.code == "session_expired" and reconnect and reconnect.renew:
            # The close (1001) follows; a new session takes over: a status, not an error.
            self._note("expired", error.message)
            return
        harmless = event.harmless or error.code in ev.HARMLESS_ERROR_CODES
        self._act(self.policy.on_error(error.code))
        if error.code == "input_audio_buffer_commit_empty":
            self.metrics.discard_pending()
        if harmless:
            self._note("harmless", f"{error.code}: a harmless race, not shown to the user")
            return
        message = error.message.rstrip(".") or "no message"
        self._server_error(f"Server error {error.code or error.type}: {message}.", error.code)

    def _server_error(self, text: str, code: str | None) -> None:
        self.transcript_view.error(text, self.conversation.last_item_id, code=code)
        self._publish(NoticeAdded(text, "error", code))

    # --- carrying out policy actions -----------------------------------------------------

    def _act(self, actions: list[Action]) -> None:
        for action in actions:
            self._carry_out(action)
        self._publish_state()  # also for inputs that only changed state (mute, mode)
        if self._tick_wake is not None:
            self._hurry_tick()

    def _carry_out(self, action: Action) -> None:
        session, audio = self.session, self.audio if self._audio_ok else None
        if isinstance(action, AppendAudio):
            if session is not None:
                session.append_audio(action.pcm)
        elif isinstance(action, PlayAudio):
            if audio is not None:
                audio.play(action.pcm, action.item_id, action.content_index)
                if self.recording is not None:
                    self.recording.play(action.pcm, self._prebuffer_s)
        elif isinstance(action, FlushPlayback):
            if audio is not None:
                audio.clear()
                if self.recording is not None:
                    self.recording.clear()
        elif isinstance(action, Truncate):
            self._truncate(action)
        elif isinstance(action, CancelResponse):
            if session is not None:
                session.cancel_response()
        elif isinstance(action, ClearInputBuffer):
            if session is not None:
                session.clear_audio()
        elif isinstance(action, CommitAudio):
            if session is not None and session.commit_audio():
                self.metrics.user_turn_ended(self._clock(), "ptt")
        elif isinstance(action, CreateResponse):
            if session is not None:
                session.create_response()
        elif isinstance(action, SendText):
            if session is not None:
                session.send_text(action.text)
                self.transcript_view.typed(action.text)
                self.metrics.user_turn_ended(self._clock(), "text")
                self._publish(TranscriptChanged())
        elif isinstance(action, UpdateTurnDetection):
            if session is not None:
                session.update_session(SessionConfig(turn_detection=action.turn_detection))
        elif isinstance(action, Notice):
            self.notice(action.text, "warning")

    def _truncate(self, action: Truncate) -> None:
        """Barge-in: tell the server how much of this part the user heard (after the flush,
        so the backend's figure is final and includes the fade)."""
        heard = self._played_ms(action.item_id, action.content_index)
        self.transcript_view.heard(action.item_id, action.content_index, heard)
        item = self.conversation.get(action.item_id)
        if item is not None and item.response_id:
            self.metrics.interrupted(item.response_id)
            self._first_play_pending.pop(item.response_id, None)
        sent = None
        if self.session is not None:
            sent = self.session.truncate(action.item_id, action.content_index, heard)
        self._note(
            "barge-in",
            f"heard {heard} ms of {action.item_id}/{action.content_index}; "
            + (f"truncate sent at {sent} ms" if sent is not None else "no truncate (0 ms)"),
        )
        self._publish(TranscriptChanged())

    # --- publishing ----------------------------------------------------------------------

    def _publish(self, update: Update) -> None:
        for callback in list(self._subscribers):
            try:
                callback(update)
            except Exception as exc:  # a broken UI callback must not end the session
                if not isinstance(update, Logged):
                    self._note("subscriber", f"an update callback raised {exc!r}")

    def _publish_state(self) -> None:
        policy = self.policy
        current = (policy.state, policy.muted, policy.mode, policy.recording)
        if current != self._published:
            self._published = current
            self._pace_mic()
            self._publish(StateChanged(*current))

    def _pace_mic(self) -> None:
        """Batch the mic while nobody speaks; every block while push-to-talk is held (its
        release commits what was sent by then)."""
        if self.audio is None:
            return
        policy, settings = self.policy, self.settings
        if policy.recording:
            self.audio.pace_mic(0)
        elif policy.user_speaking and not policy.muted:
            self.audio.pace_mic(settings.mic_speech_batch_ms)
        elif policy.muted or policy.mode is Mode.PTT:
            self.audio.pace_mic(settings.mic_batch_ms)  # nothing urgent: no onset to catch
        else:
            self.audio.pace_mic(settings.mic_batch_ms, settings.mic_wake_peak)

    def _set_connection(self, status: str, detail: str | None = None) -> None:
        self._connection = status
        self._publish(ConnectionChanged(status, detail))

    def _append_log(self, entry: LogEntry) -> None:
        self.log.append(entry)
        self._publish(Logged(entry))

    def _note(self, tag: str, text: str) -> None:
        self._append_log(LogEntry(self._wall(), "engine", tag, note=text))
        if self.recording is not None:
            self.recording.note(tag, text)

    def _on_sent(self, text: str) -> None:
        data = _appended_audio(text) if self.recording is None else None
        if data is not None:  # the mic's frames, many a second: logged without parsing them
            self._append_log(LogEntry(self._wall(), "sent", _APPEND, data))
            return
        try:
            data = json.loads(text)
        except ValueError:
            data = {"type": "?", "text": text[:200]}
        self._append_log(LogEntry(self._wall(), "sent", str(data.get("type")), _elide(data)))
        if self.recording is not None:
            self.recording.sent(data)

    def _on_received(self, text: str) -> None:
        """Frames are logged from the decoded events instead (no second JSON parse)."""

    def _log_received(self, event: ev.Event) -> None:
        raw = event.raw
        if raw and isinstance(event, _MAY_QUOTE_THE_KEY):
            raw = self._redacted(raw)
        data = _elide(raw) if raw else None
        note = ""
        if isinstance(event, ev.ProtocolError):
            note = event.message
        self._append_log(LogEntry(self._wall(), "received", event.type, data, note))
        if self.recording is not None:
            if not raw and isinstance(event, ev.ProtocolError):
                raw = {"text": event.text}  # the unreadable frame, as far as it was kept
            self.recording.received(raw, event.type, note)

    def _redacted(self, data: Mapping[str, Any]) -> Mapping[str, Any]:
        """`data` with the API key replaced, should the server quote it back (an auth error,
        an event we do not model): the inspector and the capture must never show it."""
        key = self.session.settings.api_key if self.session else None
        if not key or key not in json.dumps(data, ensure_ascii=False):
            return data
        redacted = json.dumps(data, ensure_ascii=False).replace(key, "[redacted]")
        return json.loads(redacted)  # type: ignore[no-any-return]


_QUIET_RMS = 0.01
"""A mic block at least this loud (RMS, full scale 1) may be the user starting to speak."""
_QUIET_FOR_S = 1.0
"""A renewal waits until the mic has been quieter than `_QUIET_RMS` for this long."""
_RENEW_RETRY_S = 30.0
"""After a renewal could not open a new session, the current one goes on and this much later
renewal is tried again (the expiry itself still renews at once)."""

_MAY_QUOTE_THE_KEY = (ev.ServerError, ev.ProtocolError, ev.Unknown)


_APPEND = "input_audio_buffer.append"
_APPEND_HEAD = '{"type":"input_audio_buffer.append","event_id":"'
_AUDIO_FIELD = '","audio":"'


def _appended_audio(text: str) -> dict[str, Any] | None:
    """What `_elide(json.loads(text))` gives for an `input_audio_buffer.append` frame as the
    protocol client writes it, without parsing its base64 (one such frame goes out up to 25
    times a second); None for any other frame."""
    if not text.startswith(_APPEND_HEAD) or not text.endswith('"}'):
        return None
    id_end = text.find(_AUDIO_FIELD, len(_APPEND_HEAD))
    if id_end < 0:
        return None
    event_id = text[len(_APPEND_HEAD) : id_end]
    audio_start = id_end + len(_AUDIO_FIELD)
    if "\\" in event_id or '"' in event_id or text.find('"', audio_start) != len(text) - 2:
        return None
    return {
        "type": _APPEND,
        "event_id": event_id,
        "audio": f"<{(len(text) - 2 - audio_start) * 3 // 4} bytes>",
    }


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _cause(error: ConnectError) -> str:
    code = getattr(error, "close_code", None)
    return f"the connection closed (code {code})" if code else "a failed connection"


_EVENT_HANDLERS: dict[type, Callable[[TalkEngine, Any, float], None]] = {
    ev.SessionCreated: TalkEngine._on_session,
    ev.SessionUpdated: TalkEngine._on_session,
    ev.SpeechStarted: TalkEngine._on_speech_started,
    ev.SpeechStopped: TalkEngine._on_speech_stopped,
    ev.InputCommitted: TalkEngine._on_committed,
    ev.InputCleared: TalkEngine._on_cleared,
    ev.ResponseCreated: TalkEngine._on_response_created,
    ev.AudioDelta: TalkEngine._on_audio_delta,
    ev.AudioDone: TalkEngine._on_audio_done,
    ev.TranscriptDelta: TalkEngine._on_output_text,
    ev.TextDelta: TalkEngine._on_output_text,
    ev.ResponseDone: TalkEngine._on_response_done,
    ev.ServerError: TalkEngine._on_error,
}

_TRANSCRIPT_EVENTS = frozenset(
    {
        ev.ItemAdded,
        ev.ItemDone,
        ev.ItemRetrieved,
        ev.ItemTruncated,
        ev.ItemDeleted,
        ev.InputCommitted,
        ev.InputTranscriptDelta,
        ev.InputTranscriptCompleted,
        ev.InputTranscriptFailed,
        ev.OutputItemAdded,
        ev.OutputItemDone,
        ev.TranscriptDelta,
        ev.TranscriptDone,
        ev.TextDelta,
        ev.TextDone,
        ev.ResponseDone,
        ev.FunctionCallArgumentsDone,
    }
)
