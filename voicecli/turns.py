"""Turn-taking policy for `voicecli talk`: who speaks when, as a pure state machine.

The policy takes normalised protocol events (speech started/stopped, response created/done,
assistant audio and text), user actions (push-to-talk press/release/toggle/key repeat, mute,
mode switch, typed text) and the clock, and answers with a list of `Action`s for the engine to
carry out in order. It never does I/O, never reads the time itself and never touches audio
devices; the engine feeds it and executes what it returns.

Rules it enforces (from field-notes §3.3 and §3.5):

- Barge-in in every mode: when the user starts speaking (server `speech_started`, a push-to-talk
  press, or a typed message) the assistant audio still playing is flushed (`FlushPlayback`, the
  audio engine fades out) and each part that was audible gets a `Truncate` so the server forgets
  what the user did not hear. The engine fills in the heard position from the audio backend;
  the protocol core clamps it and drops a 0 ms truncate. Audio that arrives afterwards for an
  interrupted response is not played.
- `CancelResponse` only while a response is active, once per response. With server/semantic VAD
  the server cancels by itself (`interrupt_response: true`), so the policy does not race it.
- `CreateResponse` never while a response is active: it is held back until `response.done`.
- Push-to-talk runs with turn detection off: a press cancels, flushes, clears the input buffer
  and sends a short pre-roll (the audio just before the press, so the first word is not
  clipped); a release commits only with >= 100 ms appended (else clears and says so), then
  creates a response.
- Hold-to-talk without key-release events: each auto-repeated key press extends the hold; the
  hold ends when presses stop for longer than the OS repeat delay (first gap, ~0.7 s) or the
  repeat interval (later gaps, ~0.15 s). See audio-testing.md §4.

The display state (`State`) is derived from a few facts rather than stored, so it cannot drift:
user speaking > assistant speaking > thinking > resting (listening in VAD modes, idle in
push-to-talk). Muted overrides the resting and user-speaking states; thinking and assistant
speaking stay visible because they are still true while the mic is off.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from voicecli.protocol.dialects import TurnDetection


__all__ = [
    "BYTES_PER_MS",
    "Action",
    "AppendAudio",
    "CancelResponse",
    "ClearInputBuffer",
    "CommitAudio",
    "CreateResponse",
    "FlushPlayback",
    "Mode",
    "Notice",
    "PlayAudio",
    "SendText",
    "State",
    "Truncate",
    "TurnPolicy",
    "TurnSettings",
    "UpdateTurnDetection",
    "turn_detection_for",
]

BYTES_PER_MS = 48
"""PCM16 mono at 24 kHz: 48,000 bytes per second."""


class Mode(StrEnum):
    VAD = "vad"
    """Server VAD: the server detects speech, commits and answers."""
    SEMANTIC = "semantic"
    """Semantic VAD: like VAD, but the model decides when the user has finished (eagerness)."""
    PTT = "ptt"
    """Push-to-talk: turn detection off; the user marks the start and end of each turn."""


class State(StrEnum):
    IDLE = "idle"
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    THINKING = "thinking"
    ASSISTANT_SPEAKING = "assistant_speaking"
    MUTED = "muted"


# --- actions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FlushPlayback:
    """Fade out and drop all queued assistant audio (`AudioBackend.clear()`)."""


@dataclass(frozen=True, slots=True)
class Truncate:
    """Tell the server the user heard only part of this assistant audio part.

    The engine asks the audio backend for the heard position (`played_ms`) after the flush;
    the protocol core clamps it to the audio received and skips 0 ms.
    """

    item_id: str
    content_index: int


@dataclass(frozen=True, slots=True)
class CancelResponse:
    response_id: str


@dataclass(frozen=True, slots=True)
class ClearInputBuffer:
    pass


@dataclass(frozen=True, slots=True)
class AppendAudio:
    pcm: bytes

    def __repr__(self) -> str:  # audio payloads stay out of logs and test failure output
        return f"AppendAudio({len(self.pcm) // BYTES_PER_MS} ms)"


@dataclass(frozen=True, slots=True)
class CommitAudio:
    pass


@dataclass(frozen=True, slots=True)
class CreateResponse:
    pass


@dataclass(frozen=True, slots=True)
class SendText:
    """Add a user text message to the conversation (`conversation.item.create`)."""

    text: str


@dataclass(frozen=True, slots=True)
class UpdateTurnDetection:
    """`session.update` with only `turn_detection` (None = off, for push-to-talk)."""

    turn_detection: TurnDetection | None


@dataclass(frozen=True, slots=True)
class PlayAudio:
    """Hand assistant audio to the audio backend."""

    pcm: bytes
    item_id: str
    content_index: int

    def __repr__(self) -> str:
        return f"PlayAudio({self.item_id}/{self.content_index}, {len(self.pcm) // BYTES_PER_MS} ms)"


@dataclass(frozen=True, slots=True)
class Notice:
    """Something the user should be told (not an error)."""

    text: str


Action = (
    FlushPlayback
    | Truncate
    | CancelResponse
    | ClearInputBuffer
    | AppendAudio
    | CommitAudio
    | CreateResponse
    | SendText
    | UpdateTurnDetection
    | PlayAudio
    | Notice
)


# --- settings ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TurnSettings:
    """Tunables of the turn policy. `None` VAD fields leave the server default in place."""

    eagerness: str = "auto"
    """Semantic VAD eagerness: low, medium, high or auto."""
    vad_threshold: float | None = None
    vad_prefix_padding_ms: int | None = None
    vad_silence_duration_ms: int | None = None
    preroll_ms: int = 300
    """Push-to-talk: audio kept from before the press so the first word is not clipped."""
    min_commit_ms: int = 100
    """The server rejects a commit of less than 100 ms (`input_audio_buffer_commit_empty`)."""
    hold_first_gap_s: float = 0.7
    """Hold-to-talk by key repeat: longest gap between the press and the first repeat."""
    hold_repeat_gap_s: float = 0.15
    """Hold-to-talk by key repeat: longest gap between later repeats."""
    playback_stall_s: float = 1.0
    """A fully received part whose played position has not moved for this long is over
    (a lost or stuck output device must not leave the assistant 'speaking' forever)."""
    drain_tolerance_ms: int = 25
    """A part counts as played out when this close to its end (latency rounding)."""
    response_timeout_s: float = 15.0
    """Stop showing 'thinking' when no response started this long after a user turn (e.g. the
    server dropped a VAD segment as too short): the UI must not wait forever."""


def turn_detection_for(mode: Mode, settings: TurnSettings) -> TurnDetection | None:
    """The `turn_detection` a session needs for `mode` (None = off, for push-to-talk).

    VAD modes ask explicitly for `create_response` and `interrupt_response`, because the policy
    relies on the server answering and cancelling on its own in those modes.
    """
    if mode is Mode.PTT:
        return None
    if mode is Mode.SEMANTIC:
        return TurnDetection(
            type="semantic_vad",
            eagerness=settings.eagerness,
            create_response=True,
            interrupt_response=True,
        )
    return TurnDetection(
        type="server_vad",
        threshold=settings.vad_threshold,
        prefix_padding_ms=settings.vad_prefix_padding_ms,
        silence_duration_ms=settings.vad_silence_duration_ms,
        create_response=True,
        interrupt_response=True,
    )


# --- the policy ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Part:
    """One assistant audio part being played: what arrived, and how far playback got."""

    response_id: str
    received_ms: float = 0.0
    done: bool = False
    played_ms: int = 0


class _PreRoll:
    """The last `limit` bytes of mic audio, kept while push-to-talk is not pressed."""

    def __init__(self, limit_ms: int) -> None:
        self._limit = limit_ms * BYTES_PER_MS
        self._blocks: deque[bytes] = deque()
        self._size = 0

    def push(self, pcm: bytes) -> None:
        self._blocks.append(pcm)
        self._size += len(pcm)
        while self._blocks and self._size - len(self._blocks[0]) >= self._limit:
            self._size -= len(self._blocks.popleft())

    def take(self) -> bytes:
        """Everything kept, trimmed to the limit (whole samples), and forget it."""
        data = b"".join(self._blocks)
        self._blocks.clear()
        self._size = 0
        excess = max(0, len(data) - self._limit)
        excess += excess % 2
        return data[excess:]

    def clear(self) -> None:
        self._blocks.clear()
        self._size = 0


@dataclass(slots=True)
class _Hold:
    """How the current push-to-talk turn is held: toggle, a true button, or key repeat."""

    source: str  # "toggle" | "button" | "keys"
    last_key_at: float = 0.0
    repeats: int = 0


@dataclass(slots=True)
class _Response:
    id: str
    has_output: bool = False
    cancel_sent: bool = False


@dataclass(slots=True)
class TurnPolicy:
    """The turn-taking state machine. Every input method returns the actions to carry out.

    `audio=False` is text-only mode: assistant audio is never played, the mic never used.
    """

    mode: Mode = Mode.VAD
    settings: TurnSettings = field(default_factory=TurnSettings)
    audio: bool = True

    connected: bool = False
    muted: bool = False
    user_speaking: bool = False
    """Server VAD says the user is speaking."""
    awaiting_response: bool = False
    """A user turn ended and its response has not been created yet."""
    appended_ms: float = 0.0
    """Input audio appended since the last commit or clear (push-to-talk's 100 ms rule)."""
    _hold: _Hold | None = field(default=None, init=False, repr=False)
    _response: _Response | None = field(default=None, init=False, repr=False)
    _create_pending: bool = field(default=False, init=False, repr=False)
    _parts: dict[tuple[str, int], _Part] = field(default_factory=dict, init=False, repr=False)
    _silenced: set[str] = field(default_factory=set, init=False, repr=False)
    """Responses interrupted by the user: their remaining audio is not played."""
    _preroll: _PreRoll | None = field(default=None, init=False, repr=False)
    _playback_moved_at: float | None = field(default=None, init=False, repr=False)
    """When any part's played position last moved (to tell a queue from a dead device)."""
    _awaiting_since: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.mode = Mode(self.mode)
        self._preroll = _PreRoll(self.settings.preroll_ms)

    # --- what the UI shows ---------------------------------------------------------------

    @property
    def recording(self) -> bool:
        """Push-to-talk is pressed (or toggled on)."""
        return self._hold is not None

    @property
    def hold_source(self) -> str | None:
        return self._hold.source if self._hold else None

    @property
    def response_active(self) -> bool:
        return self._response is not None

    @property
    def playing(self) -> tuple[tuple[str, int], ...]:
        """Assistant audio parts still audible (or queued), as (item_id, content_index)."""
        return tuple(self._parts)

    @property
    def state(self) -> State:
        if self.user_speaking or self.recording:
            activity = State.USER_SPEAKING
        elif self._parts or (self._response is not None and self._response.has_output):
            activity = State.ASSISTANT_SPEAKING
        elif self._response is not None or self.awaiting_response or self._create_pending:
            activity = State.THINKING
        elif self.connected and self.audio and self.mode is not Mode.PTT:
            activity = State.LISTENING
        else:
            activity = State.IDLE
        if self.muted and activity in (State.IDLE, State.LISTENING, State.USER_SPEAKING):
            return State.MUTED
        return activity

    def turn_detection(self) -> TurnDetection | None:
        """The turn detection the session should have for the current mode."""
        return turn_detection_for(self.mode, self.settings)

    # --- session and server events -------------------------------------------------------

    def on_session_ready(self) -> list[Action]:
        """The session is configured; in VAD modes the mic now streams."""
        self.connected = True
        return []

    def on_speech_started(self, item_id: str | None = None) -> list[Action]:
        """Server (semantic) VAD heard the user start: barge in on the assistant.

        No `response.cancel`: with `interrupt_response` the server cancels by itself. Ignored
        in push-to-talk (a VAD event still in flight when the mode switched).
        """
        if self.mode is Mode.PTT:
            return []
        self.user_speaking = True
        self.awaiting_response = False  # a new turn: whatever was awaited comes or not
        return self._barge_in(cancel=False)

    def on_speech_stopped(self, item_id: str | None = None) -> list[Action]:
        """The user stopped; the server commits and (create_response) answers."""
        if self.mode is Mode.PTT:
            return []
        self.user_speaking = False
        self.awaiting_response = True
        self._awaiting_since = None
        return []

    def on_committed(self, item_id: str | None = None) -> list[Action]:
        self.appended_ms = 0.0
        return []

    def on_input_cleared(self) -> list[Action]:
        self.appended_ms = 0.0
        return []

    def on_response_created(self, response_id: str) -> list[Action]:
        self._response = _Response(response_id)
        self.awaiting_response = False
        return []

    def on_output_audio(
        self, response_id: str, item_id: str, content_index: int, pcm: bytes
    ) -> list[Action]:
        """An assistant audio delta: play it unless the user interrupted its response."""
        if not self.audio or response_id in self._silenced:
            return []
        self._mark_output(response_id)
        key = (item_id, content_index)
        part = self._parts.get(key)
        if part is None:
            part = self._parts[key] = _Part(response_id)
        part.received_ms += len(pcm) / BYTES_PER_MS
        return [PlayAudio(pcm, item_id, content_index)]

    def on_output_audio_done(self, item_id: str, content_index: int) -> list[Action]:
        part = self._parts.get((item_id, content_index))
        if part is not None:
            part.done = True
        return []

    def on_output_text(self, response_id: str) -> list[Action]:
        """An assistant text or transcript delta (what makes a text-only reply 'speaking')."""
        if response_id not in self._silenced:
            self._mark_output(response_id)
        return []

    def on_response_done(self, response_id: str) -> list[Action]:
        """The response ended (completed, cancelled, failed): a held-back create may go."""
        for part in self._parts.values():
            if part.response_id == response_id:
                part.done = True
        if self._response is not None and self._response.id == response_id:
            self._response = None
        self._silenced.discard(response_id)
        if self._create_pending and self._response is None:
            self._create_pending = False
            self.awaiting_response = True
            return [CreateResponse()]
        return []

    def on_error(self, code: str | None) -> list[Action]:
        """Server errors that change what the policy expects next."""
        if code == "input_audio_buffer_commit_empty":
            # The commit was refused: no response is coming for it.
            self.appended_ms = 0.0
            self.awaiting_response = False
        elif code == "conversation_already_has_active_response":
            # Our create lost a race with a server-created response: ask again after it ends,
            # so a typed message still gets its answer.
            if self._response is not None:
                self._create_pending = True
            else:
                self.awaiting_response = False
        elif code == "response_cancel_not_active":
            self._response = None
        return []

    def on_audio_lost(self) -> list[Action]:
        """The output device went away: nothing is audible any more."""
        self._parts.clear()
        return []

    # --- the mic -------------------------------------------------------------------------

    def on_mic_block(self, pcm: bytes) -> list[Action]:
        """A block of mic audio (already through the echo guard).

        VAD modes stream everything once connected; while muted the samples are replaced by
        digital silence so the server's VAD sees the user stop and a turn in progress ends
        cleanly. Push-to-talk streams only while pressed and keeps a pre-roll otherwise.
        """
        if not self.audio or not self.connected:
            return []
        if self.mode is Mode.PTT:
            if self.recording:
                self.appended_ms += len(pcm) / BYTES_PER_MS
                return [AppendAudio(pcm)]
            if not self.muted:
                self._preroll.push(pcm)
            return []
        if self.muted:
            pcm = bytes(len(pcm))
        self.appended_ms += len(pcm) / BYTES_PER_MS
        return [AppendAudio(pcm)]

    # --- user actions --------------------------------------------------------------------

    def ptt_press(self, now: float, source: str = "button") -> list[Action]:
        """Start a push-to-talk turn (also unmutes: pressing talk is an explicit intent)."""
        if self.mode is not Mode.PTT or not self.audio or not self.connected:
            return []
        if self._hold is not None:
            return []
        self.muted = False
        self._hold = _Hold(source, last_key_at=now)
        actions = self._barge_in(cancel=True)
        actions.append(ClearInputBuffer())
        self.appended_ms = 0.0
        preroll = self._preroll.take()
        if preroll:
            self.appended_ms = len(preroll) / BYTES_PER_MS
            actions.append(AppendAudio(preroll))
        return actions

    def ptt_release(self, now: float) -> list[Action]:
        """End a push-to-talk turn: commit and answer, or drop a too-short one."""
        if self._hold is None:
            return []
        self._hold = None
        if self.appended_ms < self.settings.min_commit_ms:
            self.appended_ms = 0.0
            return [
                ClearInputBuffer(),
                Notice(f"Too short to send (under {self.settings.min_commit_ms} ms of audio)."),
            ]
        self.appended_ms = 0.0
        return [CommitAudio(), *self._create_response()]

    def ptt_toggle(self, now: float) -> list[Action]:
        """Toggle push-to-talk (space by default): press when idle, release when recording."""
        if self._hold is not None:
            return self.ptt_release(now)
        return self.ptt_press(now, source="toggle")

    def ptt_key(self, now: float) -> list[Action]:
        """Hold-to-talk by key repeat: one call per key press, auto-repeats included."""
        if self._hold is None:
            return self.ptt_press(now, source="keys")
        if self._hold.source == "keys":
            self._hold.last_key_at = now
            self._hold.repeats += 1
        return []

    def tick(self, now: float, played_ms: Callable[[str, int], int] | None = None) -> list[Action]:
        """Advance time: end a key-repeat hold whose keys stopped, retire played-out parts.

        `played_ms(item_id, content_index)` is the audio backend's heard position.
        """
        actions: list[Action] = []
        hold = self._hold
        if hold is not None and hold.source == "keys":
            first = hold.repeats == 0
            gap = self.settings.hold_first_gap_s if first else self.settings.hold_repeat_gap_s
            if now - hold.last_key_at > gap:
                actions += self.ptt_release(now)
        if played_ms is not None:
            self._retire_played(now, played_ms)
        self._expire_wait(now)
        return actions

    def set_muted(self, muted: bool) -> list[Action]:
        """Mute or unmute the mic. Muting while push-to-talk is pressed ends that turn."""
        actions: list[Action] = []
        if muted and self._hold is not None:
            actions += self.ptt_release(0.0)
        self.muted = muted
        if muted:
            self._preroll.clear()
        return actions

    def toggle_mute(self) -> list[Action]:
        return self.set_muted(not self.muted)

    def set_mode(self, mode: Mode | str, eagerness: str | None = None) -> list[Action]:
        """Switch turn-taking mid-session.

        Leaving push-to-talk while pressed first finishes that turn; entering push-to-talk
        drops the half-heard VAD buffer so the server does not answer a fragment.
        """
        mode = Mode(mode)
        new_settings = self.settings
        if eagerness is not None and eagerness != self.settings.eagerness:
            new_settings = replace(self.settings, eagerness=eagerness)
        if mode is self.mode and new_settings == self.settings:
            return []
        actions: list[Action] = []
        if self._hold is not None:
            actions += self.ptt_release(0.0)
        previous = self.mode
        self.mode = mode
        self.settings = new_settings
        if not self.connected:
            return actions
        actions.append(UpdateTurnDetection(self.turn_detection()))
        if mode is Mode.PTT and previous is not Mode.PTT:
            self.user_speaking = False
            self.appended_ms = 0.0
            actions.append(ClearInputBuffer())
        self._preroll.clear()
        return actions

    def send_text(self, text: str) -> list[Action]:
        """A typed message: interrupts the assistant, adds the message, asks for an answer."""
        text = text.strip()
        if not text or not self.connected:
            return []
        actions = self._barge_in(cancel=True)
        actions.append(SendText(text))
        actions += self._create_response()
        return actions

    # --- internals -----------------------------------------------------------------------

    def _mark_output(self, response_id: str) -> None:
        if self._response is not None and self._response.id == response_id:
            self._response.has_output = True

    def _expire_wait(self, now: float) -> None:
        if not self.awaiting_response or self._response is not None or self._create_pending:
            self._awaiting_since = None
        elif self._awaiting_since is None:
            self._awaiting_since = now
        elif now - self._awaiting_since > self.settings.response_timeout_s:
            self.awaiting_response = False
            self._awaiting_since = None

    def _create_response(self) -> list[Action]:
        self.awaiting_response = True
        self._awaiting_since = None
        if self._response is not None:
            self._create_pending = True
            return []
        return [CreateResponse()]

    def _barge_in(self, cancel: bool) -> list[Action]:
        actions: list[Action] = []
        response = self._response
        if response is not None:
            self._silenced.add(response.id)
            if cancel and not response.cancel_sent:
                response.cancel_sent = True
                actions.append(CancelResponse(response.id))
        if self._parts:
            actions.append(FlushPlayback())
            actions += [Truncate(item_id, index) for item_id, index in self._parts]
            self._parts.clear()
        return actions

    def _retire_played(self, now: float, played_ms: Callable[[str, int], int]) -> None:
        if not self._parts:
            self._playback_moved_at = None
            return
        for key, part in self._parts.items():
            position = played_ms(*key)
            if position != part.played_ms or self._playback_moved_at is None:
                part.played_ms = position
                self._playback_moved_at = now
        # A stall is judged over all parts: a part queued behind a long one does not move
        # either, and must not be retired while the one ahead of it still plays.
        stalled = now - self._playback_moved_at > self.settings.playback_stall_s
        tolerance = self.settings.drain_tolerance_ms
        for key, part in list(self._parts.items()):
            if part.done and (stalled or part.played_ms >= part.received_ms - tolerance):
                del self._parts[key]
