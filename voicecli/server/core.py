"""The per-connection state machine of the local realtime server (sans I/O).

Feed it what happens and it says what to do:

    core = ServerCore(GA, CoreSettings(pace=0), transcribe=responder.transcribe)
    actions = core.start(now_ms)                     # session.created
    actions = core.receive(client_json_text, now_ms) # replies, VAD events, responses ...
    actions = core.reply_ready(response_id, reply, now_ms)  # after a ComposeReply action
    actions = core.advance(now_ms)                   # paced deltas, timers, expiry
    core.next_deadline_ms()                          # when advance() has work next

Actions are `Send(event)` (a server event as a dict, already named and shaped for the
connection's dialect, with a fresh `event_id`), `Close(code, reason)` and
`ComposeReply(response_id, turn)`: ask the responder for a `Reply` (it may be slow, so the
shell runs it off the event loop and hands the result back with `reply_ready`).

Times are milliseconds from any monotonic origin. Audio milliseconds in events (VAD,
truncation) count audio, not wall time. Event order follows protocol reference §8; names come
from `Dialect.wire_name` (None = this dialect does not send that event).

Pure: no sockets, no asyncio, no clocks.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from voicecli.protocol.dialects import Dialect, TurnDetection
from voicecli.server import audio as audio_util
from voicecli.server.conversation import Content, Conversation, Item, split_words
from voicecli.server.ids import IdFactory
from voicecli.server.responders import (
    FunctionCall,
    FunctionOutput,
    Reply,
    Turn,
    placeholder_transcript,
)
from voicecli.server.session_state import DEFAULT_INSTRUCTIONS, SessionState
from voicecli.server.usage import (
    Usage,
    audio_output_tokens,
    context_usage,
    rate_limits,
    text_tokens,
)
from voicecli.server.vad import EnergyVad, VadEvent, semantic_silence_ms
from voicecli.server.validation import (
    Problem,
    beta_response_spec,
    client_event_specs,
    ga_response_spec,
    invalid_value,
    item_spec,
)


__all__ = [
    "Action",
    "Close",
    "ComposeReply",
    "CoreSettings",
    "Send",
    "ServerCore",
]


# --- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    event: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class ComposeReply:
    response_id: str
    turn: Turn


Action = Send | Close | ComposeReply


@dataclass(frozen=True)
class CoreSettings:
    """Behaviour of one connection (the shell builds it from `ServerOptions`)."""

    model: str = "gpt-realtime"
    pace: float = 1.0
    """Wall seconds per second of audio output: 1 = real time, 0 = as fast as possible."""
    expire_after_s: float = 3600.0
    voice: str = "alloy"
    instructions: str = DEFAULT_INSTRUCTIONS
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)
    """Initial turn detection (server VAD by default, like the real API); None = manual."""
    silence_duration_ms: int = 200
    """Default server_vad silence window (200 ms is what the real server reports)."""
    late_transcript: bool = False
    """Deliver user transcripts after the next response's first delta, not at commit."""
    late_transcript_wait_ms: float = 1000.0
    """...or after this long when no response starts."""
    delta_jitter_ms: float = 0.0
    """Add a random 0..J ms to the schedule of each delta (fault switch)."""
    conversation_created: bool = False
    """Send `conversation.created` after `session.created` (documented, never captured)."""
    max_append_bytes: int = 15 * 1024 * 1024
    chunk_ms: tuple[int, ...] = (40, 120, 200, 80, 160)
    """Audio delta sizes, cycled: variable like the real API's."""
    text_delta_ms: float = 40.0
    """Wall time per text delta (word) at pace 1."""


_EXPIRED_CLOSE = 1001
_BETA_DISABLED_REASON = "invalid_request_error.beta_api_shape_disabled"
_AUTH_CLOSE = 1008  # [U] the close code after an invalid_api_key error is not known
_CALL_DELTA_MS = 20.0
IDLE_BUFFER_MS = 30_000


def _modalities(listed: list[str] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    """A response's output: audio (always with a transcript) or text only."""
    if listed is None:
        return tuple(default)
    return ("audio",) if "audio" in listed else ("text",)


def describe_duration(seconds: float) -> str:
    """`3600` -> "60 minutes"; `2.5` -> "2.5 seconds" (for the session_expired message)."""
    if seconds >= 60 and seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute" if minutes == 1 else f"{minutes} minutes"
    return f"{seconds:g} seconds"


# --- response bookkeeping ------------------------------------------------------------------


@dataclass
class _Step:
    due_ms: float
    run: Callable[[], None]


@dataclass
class _Output:
    """One output item of a response and how far it has been streamed."""

    index: int
    item: Item
    kind: str  # "audio", "text" or "call"
    started: bool = False
    finished: bool = False
    words: list[str] = field(default_factory=list)
    """The transcript or text to stream, in word-sized deltas."""
    words_sent: int = 0


@dataclass
class _Response:
    id: str
    modalities: tuple[str, ...]
    voice: str
    output_format: str
    max_output_tokens: int | str
    metadata: Any
    out_of_band: bool
    instructions: str
    tools: tuple[Mapping[str, Any], ...]
    input_usage: Usage
    state: str = "composing"  # composing -> streaming
    outputs: list[_Output] = field(default_factory=list)
    steps: deque[_Step] = field(default_factory=deque)
    incomplete: bool = False
    stream_start_ms: float = 0.0
    audio_ms: float = 0.0


@dataclass
class _LateTranscript:
    item_id: str
    text: str
    due_ms: float


class ServerCore:
    """One connection's protocol state (see the module docstring for the calling contract)."""

    def __init__(
        self,
        dialect: Dialect,
        settings: CoreSettings | None = None,
        *,
        transcribe: Callable[[bytes, int], str] | None = None,
        rng: random.Random | None = None,
        wall_clock_s: float = 0.0,
    ) -> None:
        self.dialect = dialect
        self.settings = settings or CoreSettings()
        self._rng = rng or random.Random()
        self._ids = IdFactory(self._rng)
        self._transcribe = transcribe or (lambda pcm, turn_index: placeholder_transcript(pcm))
        self._wall_clock_s = wall_clock_s
        self._session = SessionState.initial(
            voice=self.settings.voice,
            instructions=self.settings.instructions,
            turn_detection=self.settings.turn_detection,
            default_silence_ms=self.settings.silence_duration_ms,
        )
        self.session_id = self._ids.session()
        self.conversation_id = self._ids.conversation()
        self.conversation = Conversation()
        self.closed = False
        self._out: list[Action] = []
        self._now = 0.0
        self._expires_ms = math.inf
        self._event_specs = client_event_specs()
        self._handlers = self._handler_table()
        self._item_spec = item_spec(dialect.name)
        self._response_spec = ga_response_spec() if dialect.name == "ga" else beta_response_spec()
        # input audio
        self._buffer = bytearray()
        self._buffer_start_ms = 0.0
        self._appended_ms = 0.0
        self._odd_byte = b""
        self._vad: EnergyVad | None = None
        self._speech_item_id: str | None = None
        self._speech_start_ms = 0.0
        # responses
        self._active: _Response | None = None
        self._responses_created = 0
        self._tokens_used = 0
        self._audio_output_sent = False
        self._late: list[_LateTranscript] = []
        self._idle_deadline_ms: float | None = None
        self._rebuild_vad()

    # --- public entry points -----------------------------------------------------------------

    @property
    def session(self) -> SessionState:
        return self._session

    @property
    def active_response_id(self) -> str | None:
        return self._active.id if self._active else None

    @property
    def expires_at(self) -> int:
        return int(self._wall_clock_s + self.settings.expire_after_s)

    def start(self, now_ms: float) -> list[Action]:
        """The server's first words: `session.created` (and optionally `conversation.created`)."""
        self._now = now_ms
        self._expires_ms = now_ms + self.settings.expire_after_s * 1000
        self._emit("session.created", session=self._render_session())
        if self.settings.conversation_created:
            conversation = {"id": self.conversation_id, "object": "realtime.conversation"}
            self._emit("conversation.created", conversation=conversation)
        return self._take()

    def refuse(self, reason: str) -> list[Action]:
        """Accept-then-refuse scripts: `beta_disabled` (close 4000) or `invalid_api_key`."""
        if reason == "beta_disabled":
            self._error(
                "beta_api_shape_disabled",
                "The Realtime Beta API is no longer supported. Remove the 'OpenAI-Beta: "
                "realtime=v1' header to use the GA API.",
            )
            self._close(4000, _BETA_DISABLED_REASON)
        elif reason == "invalid_api_key":
            self._error(
                "invalid_api_key",
                "Incorrect API key provided. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
            )
            self._close(_AUTH_CLOSE, "invalid_api_key")
        else:
            raise ValueError(f"unknown refusal {reason!r}")
        return self._take()

    def receive(self, text: str | bytes, now_ms: float) -> list[Action]:
        """Handle one client frame."""
        if self.closed:
            return []
        self._now = now_ms
        if self._expired():
            return self._take()
        self._handle_frame(text)
        self._run_due()
        return self._take()

    def reply_ready(self, response_id: str, reply: Reply, now_ms: float) -> list[Action]:
        """The responder's answer for a `ComposeReply`; ignored if that response is over."""
        if self.closed:
            return []
        self._now = now_ms
        response = self._active
        if response is not None and response.id == response_id and response.state == "composing":
            response.state = "streaming"
            self._plan(response, reply, now_ms + max(0, reply.delay_ms))
        self._run_due()
        return self._take()

    def reply_failed(self, response_id: str, message: str, now_ms: float) -> list[Action]:
        """The responder raised: the response ends `failed`, the session carries on."""
        if self.closed:
            return []
        self._now = now_ms
        response = self._active
        if response is not None and response.id == response_id:
            response.steps.clear()
            details = {
                "type": "failed",
                "error": {"type": "server_error", "code": "responder_error", "message": message},
            }
            self._finish_response(response, "failed", details)
        return self._take()

    def advance(self, now_ms: float) -> list[Action]:
        """Do whatever is due by `now_ms`: paced deltas, late transcripts, idle timeout, expiry."""
        if self.closed:
            return []
        self._now = now_ms
        if not self._expired():
            self._run_due()
        return self._take()

    def next_deadline_ms(self) -> float | None:
        if self.closed:
            return None
        deadlines = [self._expires_ms]
        if self._active is not None and self._active.steps:
            deadlines.append(self._active.steps[0].due_ms)
        if self._late and self._active is None:
            deadlines.append(min(late.due_ms for late in self._late))
        if self._idle_deadline_ms is not None:
            deadlines.append(self._idle_deadline_ms)
        return min(deadlines)

    # --- plumbing ----------------------------------------------------------------------------

    def _take(self) -> list[Action]:
        out, self._out = self._out, []
        return out

    def _emit(self, event_type: str, /, **fields: Any) -> None:
        wire_name = self.dialect.wire_name(event_type)
        if wire_name is None:
            return
        self._out.append(Send({"type": wire_name, "event_id": self._ids.event(), **fields}))

    def _error(
        self,
        code: str | None,
        message: str,
        param: str | None = None,
        client_event_id: str | None = None,
        error_type: str = "invalid_request_error",
    ) -> None:
        error = {
            "type": error_type,
            "code": code,
            "message": message,
            "param": param,
            "event_id": client_event_id,
        }
        self._emit("error", error=error)

    def _problem(self, problem: Problem, client_event_id: str | None) -> None:
        self._error(problem.code, problem.message, problem.param, client_event_id)

    def _close(self, code: int, reason: str) -> None:
        self._out.append(Close(code, reason))
        self.closed = True

    def _render_session(self) -> dict[str, Any]:
        return self._session.render(
            self.dialect,
            session_id=self.session_id,
            model=self.settings.model,
            expires_at=self.expires_at,
        )

    def _expired(self) -> bool:
        if self._now < self._expires_ms:
            return False
        message = (
            f"Your session hit the maximum duration of "
            f"{describe_duration(self.settings.expire_after_s)}."
        )
        self._error("session_expired", message)
        self._close(_EXPIRED_CLOSE, message)
        return True

    def _jitter(self) -> float:
        return (
            self._rng.uniform(0, self.settings.delta_jitter_ms)
            if self.settings.delta_jitter_ms
            else 0.0
        )

    # --- client frames -------------------------------------------------------------------------

    def _handle_frame(self, text: str | bytes) -> None:
        if isinstance(text, bytes):
            # [U] The real server's answer to a binary frame is not documented.
            self._error("invalid_event", "Binary frames are not supported; send JSON text.")
            return
        try:
            event = json.loads(text)
        except (json.JSONDecodeError, RecursionError):
            # [U] code and wording not confirmed for the realtime endpoint.
            self._error("invalid_json", "The event is not valid JSON.")
            return
        if not isinstance(event, dict):
            self._error("invalid_event", "The event must be a JSON object.")
            return
        client_event_id = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        if "type" not in event:
            self._error("invalid_event", "The 'type' field is missing.", None, client_event_id)
            return
        event_type = event["type"]
        handler = self._handlers.get(event_type) if isinstance(event_type, str) else None
        if handler is None:
            self._problem(invalid_value("type", event_type, tuple(self._handlers)), client_event_id)
            return
        problem = self._event_specs[event_type](event, "")
        if problem is not None:
            self._problem(problem, client_event_id)
            return
        handler(event, client_event_id)

    def _handler_table(self) -> dict[str, Callable[[dict[str, Any], str | None], None]]:
        return {
            "session.update": self._on_session_update,
            "input_audio_buffer.append": self._on_append,
            "input_audio_buffer.commit": self._on_commit,
            "input_audio_buffer.clear": self._on_clear,
            "conversation.item.create": self._on_item_create,
            "conversation.item.retrieve": self._on_item_retrieve,
            "conversation.item.truncate": self._on_item_truncate,
            "conversation.item.delete": self._on_item_delete,
            "response.create": self._on_response_create,
            "response.cancel": self._on_response_cancel,
        }

    # --- session -------------------------------------------------------------------------------

    def _on_session_update(self, event: dict[str, Any], client_event_id: str | None) -> None:
        session = event["session"]
        problem = self._session.check_update(
            self.dialect, session, voice_locked=self._audio_output_sent
        )
        if problem is not None:
            self._problem(problem, client_event_id)
            return
        before = (self._session.config.turn_detection, self._session.config.input_audio_format)
        self._session.apply_update(self.dialect, session)
        after = (self._session.config.turn_detection, self._session.config.input_audio_format)
        if before != after:
            self._rebuild_vad()
        self._emit("session.updated", session=self._render_session())

    def _rebuild_vad(self) -> None:
        turn_detection = self._session.config.turn_detection
        self._speech_item_id = None
        self._idle_deadline_ms = None
        if turn_detection is None:
            self._vad = None
            return
        rate = audio_util.format_rate(self._session.config.input_audio_format)
        if turn_detection.type == "semantic_vad":
            self._vad = EnergyVad(
                rate, 0.5, 300, semantic_silence_ms(turn_detection.eagerness), self._appended_ms
            )
        else:
            self._vad = EnergyVad(
                rate,
                turn_detection.threshold if turn_detection.threshold is not None else 0.5,
                turn_detection.prefix_padding_ms or 0,
                turn_detection.silence_duration_ms or 0,
                self._appended_ms,
            )

    # --- input audio buffer --------------------------------------------------------------------

    @property
    def _input_format(self) -> str:
        return self._session.config.input_audio_format

    def _on_append(self, event: dict[str, Any], client_event_id: str | None) -> None:
        try:
            data = base64.b64decode(event["audio"], validate=True)
        except (binascii.Error, ValueError):
            # [U] wording not confirmed.
            self._error(
                "invalid_value",
                "Invalid 'audio': expected base64-encoded audio bytes.",
                "audio",
                client_event_id,
            )
            return
        if len(data) > self.settings.max_append_bytes:
            # [U] wording not confirmed; the 15 MiB limit is documented.
            self._error(
                "invalid_value",
                "Invalid 'audio': an append may carry at most 15 MiB of audio.",
                "audio",
                client_event_id,
            )
            return
        audio_format = self._input_format
        self._buffer += data
        self._appended_ms += len(data) / audio_util.bytes_per_ms(audio_format)
        if self._vad is None:
            return
        if audio_format == "pcm16":
            data = self._odd_byte + data
            usable = len(data) - len(data) % 2
            data, self._odd_byte = data[:usable], data[usable:]
        for vad_event in self._vad.feed(audio_util.to_float(data, audio_format)):
            self._on_vad_event(vad_event)
        if not self._vad.in_speech:
            self._trim_idle_buffer()

    def _trim_idle_buffer(self) -> None:
        """With VAD on, silence before a turn is never used beyond the prefix padding; keep
        the last `IDLE_BUFFER_MS` of it so an open microphone cannot grow memory forever."""
        excess_ms = self._appended_ms - self._buffer_start_ms - IDLE_BUFFER_MS
        if excess_ms < 1000:  # trim in steps of at least a second
            return
        per_ms = audio_util.bytes_per_ms(self._input_format)
        width = audio_util.sample_width(self._input_format)
        cut = int(excess_ms * per_ms)
        cut -= cut % width
        del self._buffer[:cut]
        self._buffer_start_ms += cut / per_ms

    def _on_vad_event(self, vad_event: VadEvent) -> None:
        turn_detection = self._session.config.turn_detection
        assert turn_detection is not None
        if vad_event.kind == "speech_started":
            start_ms = max(vad_event.ms, math.ceil(self._buffer_start_ms))
            self._speech_item_id = self._ids.item()
            self._speech_start_ms = start_ms
            self._idle_deadline_ms = None
            self._emit(
                "input_audio_buffer.speech_started",
                audio_start_ms=start_ms,
                item_id=self._speech_item_id,
            )
            active = self._active
            if active is not None and turn_detection.interrupt_response and not active.out_of_band:
                self._cancel_active("turn_detected")
            return
        item_id = self._speech_item_id or self._ids.item()
        self._speech_item_id = None
        self._emit("input_audio_buffer.speech_stopped", audio_end_ms=vad_event.ms, item_id=item_id)
        self._commit(self._take_buffer(self._speech_start_ms, vad_event.ms), item_id)
        if turn_detection.create_response and self._active is None:
            # With interrupt_response off and a response still running, the real server "may
            # fail to create a response" (API docs); this one skips it silently.
            self._create_response({}, None)

    def _take_buffer(self, start_ms: float, end_ms: float) -> bytes:
        """Cut the audio between two session times out of the buffer; keep what follows."""
        per_ms = audio_util.bytes_per_ms(self._input_format)
        width = audio_util.sample_width(self._input_format)

        def offset(ms: float) -> int:
            raw = int((ms - self._buffer_start_ms) * per_ms)
            return min(len(self._buffer), max(0, raw - raw % width))

        start, end = offset(start_ms), offset(end_ms)
        audio = bytes(self._buffer[start:end])
        del self._buffer[:end]
        self._buffer_start_ms += end / per_ms
        return audio

    def _on_commit(self, event: dict[str, Any], client_event_id: str | None) -> None:
        buffered_ms = len(self._buffer) / audio_util.bytes_per_ms(self._input_format)
        if buffered_ms < 100:
            self._error(
                "input_audio_buffer_commit_empty",
                "Error committing input audio buffer: buffer too small. Expected at least 100ms "
                f"of audio, but buffer only has {buffered_ms:.2f}ms of audio.",
                None,
                client_event_id,
            )
            return
        item_id = self._speech_item_id or self._ids.item()
        audio = self._reset_buffer()
        self._commit(audio, item_id)

    def _reset_buffer(self) -> bytes:
        audio = bytes(self._buffer)
        self._buffer.clear()
        self._buffer_start_ms = self._appended_ms
        self._speech_item_id = None
        if self._vad is not None:
            self._vad.reset()
        return audio

    def _on_clear(self, event: dict[str, Any], client_event_id: str | None) -> None:
        self._reset_buffer()
        self._emit("input_audio_buffer.cleared")

    def _commit(self, audio: bytes, item_id: str) -> None:
        previous = self.conversation.last_id()
        self._emit("input_audio_buffer.committed", previous_item_id=previous, item_id=item_id)
        content = Content("input_audio", audio=audio, audio_format=self._input_format)
        item = Item(id=item_id, type="message", role="user", content=[content])
        self.conversation.append(item)
        self._announce_item(item, previous)
        if self._session.transcription_enabled:
            self._start_transcript(item)

    def _announce_item(self, item: Item, previous: str | None) -> None:
        wire = item.to_wire(self.dialect)
        self._emit("conversation.item.added", previous_item_id=previous, item=wire)
        self._emit("conversation.item.done", previous_item_id=previous, item=wire)

    # --- input transcription -------------------------------------------------------------------

    def _start_transcript(self, item: Item) -> None:
        part = item.content[0]
        pcm = audio_util.decode_to_pcm16(part.audio, part.audio_format)
        text = self._transcribe(pcm, self._responses_created)
        if self.settings.late_transcript:
            due = self._now + self.settings.late_transcript_wait_ms
            self._late.append(_LateTranscript(item.id, text, due))
        else:
            self._send_transcript(item.id, text)

    def _flush_late_transcripts(self, only_due: bool = False) -> None:
        keep: list[_LateTranscript] = []
        for late in self._late:
            if only_due and late.due_ms > self._now:
                keep.append(late)
            else:
                self._send_transcript(late.item_id, late.text)
        self._late = keep

    def _send_transcript(self, item_id: str, text: str) -> None:
        item = self.conversation.get(item_id)
        if item is None:
            return  # deleted meanwhile
        for piece in split_words(text):
            fields: dict[str, Any] = {"item_id": item_id, "content_index": 0, "delta": piece}
            if self.dialect.name == "ga":
                fields["obfuscation"] = self._ids.padding(self._rng.randint(3, 16))
            self._emit("conversation.item.input_audio_transcription.delta", **fields)
        part = item.content[0]
        part.transcript = text
        transcription = self._session.config.transcription
        if transcription is not None and transcription.model == "whisper-1":
            usage: dict[str, Any] = {"type": "duration", "seconds": round(part.audio_ms / 1000, 3)}
        else:
            audio_tokens = math.ceil(part.audio_ms / 100)
            output_tokens = text_tokens(text)
            usage = {
                "type": "tokens",
                "total_tokens": audio_tokens + output_tokens,
                "input_tokens": audio_tokens,
                "input_token_details": {"text_tokens": 0, "audio_tokens": audio_tokens},
                "output_tokens": output_tokens,
            }
        self._emit(
            "conversation.item.input_audio_transcription.completed",
            item_id=item_id,
            content_index=0,
            transcript=text,
            usage=usage,
        )

    # --- conversation items --------------------------------------------------------------------

    def _on_item_create(self, event: dict[str, Any], client_event_id: str | None) -> None:
        wire = event["item"]
        problem = self._item_spec(wire, "item")
        if problem is None:
            problem = self._check_new_item(wire, event)
        if problem is not None:
            self._problem(problem, client_event_id)
            return
        item = self._item_from_wire(wire)
        if item is None:
            self._error(
                "invalid_value",
                "Invalid 'item.content[].audio': expected base64-encoded audio bytes.",
                "item.content",
                client_event_id,
            )
            return
        previous = event.get("previous_item_id")
        if previous is None:
            self.conversation.append(item)
        else:
            self.conversation.insert_after(item, None if previous == "root" else previous)
        self._announce_item(item, self.conversation.previous_id(item.id))

    def _check_new_item(self, wire: Mapping[str, Any], event: Mapping[str, Any]) -> Problem | None:
        previous = event.get("previous_item_id")
        if previous not in (None, "root") and previous not in self.conversation:
            # [U] code and wording not confirmed.
            return Problem(
                "invalid_value",
                f"Error adding item: the previous item with id '{previous}' does not exist.",
                "previous_item_id",
            )
        if "id" in wire and wire["id"] in self.conversation:
            # [U] code and wording not confirmed.
            return Problem(
                "invalid_value", f"Item with id '{wire['id']}' already exists.", "item.id"
            )
        if wire["type"] == "function_call_output":
            if wire["call_id"] not in self.conversation.known_call_ids():
                # [U] wording borrowed from the Responses API; realtime behaviour unconfirmed.
                return Problem(
                    "invalid_value",
                    f"No tool call found for function call output with call_id {wire['call_id']}.",
                    "item.call_id",
                )
        if wire["type"] == "message":
            allowed = {
                "user": ("input_text", "input_audio", "input_image"),
                "system": ("input_text",),
                "assistant": (self.dialect.assistant_text_content,),
            }[wire["role"]]
            for index, part in enumerate(wire["content"]):
                if part["type"] not in allowed:
                    return invalid_value(f"item.content[{index}].type", part["type"], allowed)
        return None

    def _item_from_wire(self, wire: Mapping[str, Any]) -> Item | None:
        item_id = wire.get("id") or self._ids.item()
        kind = wire["type"]
        if kind == "function_call":
            return Item(
                id=item_id,
                type=kind,
                call_id=wire.get("call_id") or self._ids.call(),
                name=wire["name"],
                arguments=wire["arguments"],
            )
        if kind == "function_call_output":
            return Item(id=item_id, type=kind, call_id=wire["call_id"], output=wire["output"])
        content: list[Content] = []
        for part in wire["content"]:
            if part["type"] == "input_audio":
                try:
                    audio = base64.b64decode(part.get("audio") or "", validate=True)
                except (binascii.Error, ValueError):
                    return None
                transcript = part.get("transcript")
                content.append(
                    Content(
                        "input_audio",
                        transcript=transcript,
                        audio=audio,
                        audio_format=self._input_format,
                    )
                )
            elif part["type"] == "input_image":
                extra = {key: part[key] for key in ("image_url", "detail") if key in part}
                content.append(Content("input_image", extra=extra))
            else:
                content.append(Content(part["type"], text=part["text"]))
        return Item(id=item_id, type="message", role=wire["role"], content=content)

    def _on_item_retrieve(self, event: dict[str, Any], client_event_id: str | None) -> None:
        item = self.conversation.get(event["item_id"])
        if item is None:
            # [U] wording modelled on the confirmed delete error.
            self._error(
                "item_retrieve_invalid_item_id",
                f"Error retrieving item: the item with id '{event['item_id']}' does not exist.",
                "item_id",
                client_event_id,
            )
            return
        self._emit("conversation.item.retrieved", item=item.to_wire(self.dialect, with_audio=True))

    def _on_item_delete(self, event: dict[str, Any], client_event_id: str | None) -> None:
        item_id = event["item_id"]
        if item_id not in self.conversation:
            self._error(
                "item_delete_invalid_item_id",
                f"Error deleting item: the item with id '{item_id}' does not exist.",
                "item_id",
                client_event_id,
            )
            return
        self.conversation.delete(item_id)
        self._emit("conversation.item.deleted", item_id=item_id)

    def _on_item_truncate(self, event: dict[str, Any], client_event_id: str | None) -> None:
        item_id = event["item_id"]
        content_index = event["content_index"]
        audio_end_ms = event["audio_end_ms"]
        item = self.conversation.get(item_id)
        if item is None:
            self._error(
                "item_truncate_invalid_item_id",
                f"Item with item_id not found: {item_id}",  # [U] exact text
                "item_id",
                client_event_id,
            )
            return
        if (
            item.type != "message"
            or item.role != "assistant"
            or content_index >= len(item.content)
            or not item.content[content_index].is_audio
        ):
            # [U] wording from a live report (livekit/agents#1016); code not confirmed.
            self._error(
                "invalid_value",
                "Only model output audio messages can be truncated",
                "item_id",
                client_event_id,
            )
            return
        part = item.content[content_index]
        sent_ms = part.audio_ms
        if audio_end_ms > sent_ms:
            # Live wording (pipecat issues); code not confirmed.
            self._error(
                "invalid_value",
                f"Audio content of {int(sent_ms)}ms is already shorter than {audio_end_ms}ms",
                "audio_end_ms",
                client_event_id,
            )
            return
        keep_fraction = audio_end_ms / sent_ms if sent_ms else 0.0
        per_ms = audio_util.bytes_per_ms(part.audio_format)
        width = audio_util.sample_width(part.audio_format)
        keep_bytes = int(audio_end_ms * per_ms)
        part.audio = part.audio[: keep_bytes - keep_bytes % width]
        # The unheard part of the transcript is deleted too: keep the heard share of the words.
        words = split_words(part.transcript or "")
        part.transcript = "".join(words[: round(len(words) * keep_fraction)]).rstrip()
        self._emit(
            "conversation.item.truncated",
            item_id=item_id,
            content_index=content_index,
            audio_end_ms=audio_end_ms,
        )

    # --- responses: creation -------------------------------------------------------------------

    def _on_response_create(self, event: dict[str, Any], client_event_id: str | None) -> None:
        params = event.get("response")
        if params is None:
            params = {}
        problem = self._response_spec(params, "response")
        if problem is None and self.dialect.name == "ga":
            modalities = params.get("output_modalities")
            if modalities is not None and len(set(modalities)) != 1:
                problem = invalid_value(
                    "response.output_modalities", modalities, (["audio"], ["text"])
                )
        if problem is not None:
            self._problem(problem, client_event_id)
            return
        self._create_response(params, client_event_id)

    def _on_response_cancel(self, event: dict[str, Any], client_event_id: str | None) -> None:
        response_id = event.get("response_id")
        active = self._active
        if active is None or (response_id is not None and response_id != active.id):
            self._error(
                "response_cancel_not_active",
                "Cancellation failed: no active response found",
                None,
                client_event_id,
            )
            return
        self._cancel_active("client_cancelled")

    def _create_response(self, params: Mapping[str, Any], client_event_id: str | None) -> None:
        if self._active is not None:
            self._error(
                "conversation_already_has_active_response",
                "Conversation already has an active response in progress: "
                f"{self._active.id}. Wait until the response is finished before creating a new "
                "one.",
                None,
                client_event_id,
            )
            return
        config = self._session.config
        if self.dialect.name == "ga":
            modalities = _modalities(params.get("output_modalities"), config.output_modalities)
            audio_out = (params.get("audio") or {}).get("output") or {}
            overrides = self.dialect.decode_session(
                {"type": "realtime", "audio": {"output": audio_out}}
            )
            voice = overrides.voice or config.voice
            output_format = overrides.output_audio_format or config.output_audio_format
            max_tokens = params.get("max_output_tokens", config.max_output_tokens)
        else:
            modalities = _modalities(params.get("modalities"), config.output_modalities)
            voice = params.get("voice", config.voice)
            output_format = params.get("output_audio_format", config.output_audio_format)
            max_tokens = params.get("max_response_output_tokens", config.max_output_tokens)
        instructions = params.get("instructions", config.instructions)
        tools = tuple(params.get("tools", config.tools))
        response = _Response(
            id=self._ids.response(),
            modalities=modalities,
            voice=voice,
            output_format=output_format,
            max_output_tokens=max_tokens,
            metadata=params.get("metadata"),
            out_of_band=params.get("conversation") == "none",
            instructions=instructions,
            tools=tools,
            input_usage=context_usage(instructions, tools, self.conversation.items()),
        )
        self._active = response
        self._idle_deadline_ms = None
        self._emit("response.created", response=self._response_wire(response, "in_progress"))
        turn = self._turn_for(response)
        self._responses_created += 1
        self._out.append(ComposeReply(response.id, turn))

    def _turn_for(self, response: _Response) -> Turn:
        """The latest user input and function results since the last assistant message."""
        user_text: str | None = None
        user_audio: bytes | None = None
        outputs: list[FunctionOutput] = []
        calls = self.conversation.known_call_ids()
        seen_user = False
        for item in reversed(self.conversation.items()):
            if item.type == "message" and item.role == "assistant":
                break
            if item.type == "function_call_output" and item.call_id:
                outputs.insert(
                    0, FunctionOutput(item.call_id, calls.get(item.call_id), item.output or "")
                )
            elif item.type == "message" and item.role == "user" and not seen_user:
                seen_user = True
                texts = [part.text or "" for part in item.content if part.type == "input_text"]
                audio = b"".join(
                    audio_util.decode_to_pcm16(part.audio, part.audio_format)
                    for part in item.content
                    if part.is_audio
                )
                user_text = " ".join(texts) if texts else None
                user_audio = audio if any(part.is_audio for part in item.content) else None
        return Turn(
            index=self._responses_created,
            modalities=response.modalities,
            user_text=user_text,
            user_audio=user_audio,
            function_outputs=tuple(outputs),
            instructions=response.instructions,
            voice=response.voice,
            tools=response.tools,
        )

    # --- responses: planning -------------------------------------------------------------------

    def _plan(self, response: _Response, reply: Reply, start_ms: float) -> None:
        """Turn a reply into timed steps that stream it (protocol reference §8 order)."""
        response.stream_start_ms = start_ms
        wants_audio = "audio" in response.modalities
        text = reply.text
        wire_audio = b""
        if wants_audio and (reply.audio or text):
            pcm = reply.audio if reply.audio is not None else audio_util.tone_for_text(text)
            wire_audio = audio_util.encode_from_pcm16(pcm, response.output_format)
        call = reply.function_call
        text, wire_audio, call = self._fit_max_tokens(response, text, wire_audio, call)
        response.audio_ms = audio_util.bytes_to_ms(len(wire_audio), response.output_format)
        at = start_ms
        if text or wire_audio:
            kind = "audio" if wants_audio else "text"
            output = self._new_output(
                response, kind, Item(self._ids.item(), "message", "assistant")
            )
            if kind == "audio":
                at = self._plan_audio(response, output, text, wire_audio, at)
            else:
                at = self._plan_text(response, output, text, at)
        if call is not None:
            item = Item(
                self._ids.item(),
                "function_call",
                call_id=self._ids.call(),
                name=call.name,
                arguments="",
            )
            at = self._plan_call(response, self._new_output(response, "call", item), call, at)
        status = "incomplete" if response.incomplete else "completed"
        details = (
            {"type": "incomplete", "reason": "max_output_tokens"} if response.incomplete else None
        )
        response.steps.append(_Step(at, lambda: self._finish_response(response, status, details)))

    def _fit_max_tokens(
        self, response: _Response, text: str, wire_audio: bytes, call: FunctionCall | None
    ) -> tuple[str, bytes, FunctionCall | None]:
        """Cut the reply to `max_output_tokens`; the response then ends `incomplete`."""
        limit = response.max_output_tokens
        audio_ms = audio_util.bytes_to_ms(len(wire_audio), response.output_format)
        planned = text_tokens(text) + audio_output_tokens(audio_ms)
        if call is not None:
            planned += text_tokens(call.name) + text_tokens(call.arguments)
        if not isinstance(limit, int) or planned <= limit:
            return text, wire_audio, call
        response.incomplete = True
        share = limit / planned
        words = split_words(text)
        kept = int(len(words) * share)
        while kept and text_tokens("".join(words[:kept])) > limit:
            kept -= 1
        text = "".join(words[:kept])
        # Whatever the text leaves of the budget goes to audio (20 tokens per second).
        audio_budget_ms = (limit - text_tokens(text)) * 50
        per_ms = audio_util.bytes_per_ms(response.output_format)
        width = audio_util.sample_width(response.output_format)
        keep = min(int(len(wire_audio) * share), int(audio_budget_ms * per_ms))
        return text, wire_audio[: keep - keep % width], None

    def _new_output(self, response: _Response, kind: str, item: Item) -> _Output:
        item.status = "in_progress"
        output = _Output(index=len(response.outputs), item=item, kind=kind)
        response.outputs.append(output)
        return output

    def _chunks(self, wire_audio: bytes, audio_format: str) -> list[bytes]:
        per_ms = audio_util.bytes_per_ms(audio_format)
        width = audio_util.sample_width(audio_format)
        chunks: list[bytes] = []
        position = 0
        index = 0
        while position < len(wire_audio):
            size = int(self.settings.chunk_ms[index % len(self.settings.chunk_ms)] * per_ms)
            size -= size % width
            chunks.append(wire_audio[position : position + size])
            position += size
            index += 1
        return chunks

    def _plan_audio(
        self, response: _Response, output: _Output, text: str, wire_audio: bytes, start_ms: float
    ) -> float:
        pace = self.settings.pace
        per_ms = audio_util.bytes_per_ms(response.output_format)
        steps = response.steps
        steps.append(_Step(start_ms, lambda: self._begin_message(response, output)))
        words = output.words = split_words(text)
        sent = 0
        due = start_ms
        total = len(wire_audio)
        for chunk in self._chunks(wire_audio, response.output_format):
            due = max(due, start_ms + pace * sent / per_ms + self._jitter())
            sent += len(chunk)
            # The transcript runs slightly ahead of the audio, as it does on the real API.
            words_due = math.ceil(len(words) * sent / total)
            steps.append(_Step(due, self._audio_delta_step(response, output, words_due, chunk)))
        end = max(due, start_ms + pace * total / per_ms)
        steps.append(_Step(end, lambda: self._finish_message(response, output, "completed")))
        return end

    def _audio_delta_step(
        self, response: _Response, output: _Output, words_due: int, chunk: bytes
    ) -> Callable[[], None]:
        return lambda: self._audio_delta(response, output, words_due, chunk)

    def _plan_text(self, response: _Response, output: _Output, text: str, start_ms: float) -> float:
        step_ms = self.settings.pace * self.settings.text_delta_ms
        steps = response.steps
        steps.append(_Step(start_ms, lambda: self._begin_message(response, output)))
        words = output.words = split_words(text)
        due = start_ms
        for index in range(len(words)):
            due = max(due, start_ms + index * step_ms + self._jitter())
            steps.append(_Step(due, lambda: self._text_delta(response, output)))
        end = max(due, start_ms + len(words) * step_ms)
        steps.append(_Step(end, lambda: self._finish_message(response, output, "completed")))
        return end

    def _plan_call(
        self, response: _Response, output: _Output, call: FunctionCall, start_ms: float
    ) -> float:
        step_ms = self.settings.pace * _CALL_DELTA_MS
        steps = response.steps
        steps.append(_Step(start_ms, lambda: self._begin_call(response, output)))
        arguments = call.arguments
        size = max(1, math.ceil(len(arguments) / 3))
        pieces = [arguments[i : i + size] for i in range(0, len(arguments), size)]
        due = start_ms
        for index, piece in enumerate(pieces, start=1):
            due = start_ms + index * step_ms
            steps.append(_Step(due, self._args_delta_step(response, output, piece)))
        steps.append(_Step(due, lambda: self._finish_call(response, output, "completed")))
        return due

    def _args_delta_step(
        self, response: _Response, output: _Output, piece: str
    ) -> Callable[[], None]:
        return lambda: self._args_delta(response, output, piece)

    # --- responses: streaming ------------------------------------------------------------------

    def _run_due(self) -> None:
        while not self.closed:
            response = self._active
            if response is None or not response.steps or response.steps[0].due_ms > self._now:
                break
            response.steps.popleft().run()
        if self._late and self._active is None:
            self._flush_late_transcripts(only_due=True)
        if self._idle_deadline_ms is not None and self._now >= self._idle_deadline_ms:
            self._idle_timeout()

    def _part_fields(self, response: _Response, output: _Output) -> dict[str, Any]:
        return {
            "response_id": response.id,
            "item_id": output.item.id,
            "output_index": output.index,
            "content_index": 0,
        }

    def _add_output_item(self, response: _Response, output: _Output) -> None:
        output.started = True
        item = output.item
        self._emit(
            "response.output_item.added",
            response_id=response.id,
            output_index=output.index,
            item=item.to_wire(self.dialect),
        )
        if not response.out_of_band:
            previous = self.conversation.last_id()
            self.conversation.append(item)
            self._emit(
                "conversation.item.added",
                previous_item_id=previous,
                item=item.to_wire(self.dialect),
            )

    def _begin_message(self, response: _Response, output: _Output) -> None:
        self._add_output_item(response, output)
        if output.kind == "audio":
            part_type = self.dialect.assistant_audio_content
            output.item.content.append(
                Content(part_type, transcript="", audio_format=response.output_format)
            )
            part: dict[str, Any] = {"type": "audio", "transcript": ""}
        else:
            output.item.content.append(Content(self.dialect.assistant_text_content, text=""))
            part = {"type": "text", "text": ""}
        self._emit("response.content_part.added", **self._part_fields(response, output), part=part)

    def _send_words(self, response: _Response, output: _Output, upto: int) -> None:
        """Send the transcript words due so far (audio outputs)."""
        upto = min(upto, len(output.words))
        if upto <= output.words_sent:
            return
        piece = "".join(output.words[output.words_sent : upto])
        output.words_sent = upto
        part = output.item.content[0]
        part.transcript = (part.transcript or "") + piece
        fields = self._part_fields(response, output)
        if self.dialect.name == "ga":
            fields["obfuscation"] = self._ids.padding(self._rng.randint(3, 16))
        self._emit("response.output_audio_transcript.delta", **fields, delta=piece)

    def _audio_delta(
        self, response: _Response, output: _Output, words_due: int, chunk: bytes
    ) -> None:
        self._send_words(response, output, words_due)
        output.item.content[0].audio += chunk
        self._audio_output_sent = True
        self._emit(
            "response.output_audio.delta",
            **self._part_fields(response, output),
            delta=base64.b64encode(chunk).decode("ascii"),
        )
        self._flush_late_transcripts()

    def _text_delta(self, response: _Response, output: _Output) -> None:
        piece = output.words[output.words_sent]
        output.words_sent += 1
        part = output.item.content[0]
        part.text = (part.text or "") + piece
        fields = self._part_fields(response, output)
        if self.dialect.name == "ga":
            fields["obfuscation"] = self._ids.padding(self._rng.randint(3, 16))
        self._emit("response.output_text.delta", **fields, delta=piece)
        self._flush_late_transcripts()

    def _finish_message(self, response: _Response, output: _Output, status: str) -> None:
        output.finished = True
        part = output.item.content[0]
        fields = self._part_fields(response, output)
        if output.kind == "audio":
            if status == "completed":
                # Words left when there was less audio than text (max_output_tokens cut it).
                self._send_words(response, output, len(output.words))
            self._emit("response.output_audio.done", **fields)
            self._emit(
                "response.output_audio_transcript.done", **fields, transcript=part.transcript or ""
            )
            done_part: dict[str, Any] = {"type": "audio", "transcript": part.transcript or ""}
        else:
            self._emit("response.output_text.done", **fields, text=part.text or "")
            done_part = {"type": "text", "text": part.text or ""}
        self._emit("response.content_part.done", **fields, part=done_part)
        self._complete_item(response, output, status)

    def _complete_item(self, response: _Response, output: _Output, status: str) -> None:
        output.finished = True
        item = output.item
        item.status = status
        wire = item.to_wire(self.dialect)
        if not response.out_of_band and item.id in self.conversation:
            previous = self.conversation.previous_id(item.id)
            self._emit("conversation.item.done", previous_item_id=previous, item=wire)
        self._emit(
            "response.output_item.done",
            response_id=response.id,
            output_index=output.index,
            item=wire,
        )

    def _begin_call(self, response: _Response, output: _Output) -> None:
        self._add_output_item(response, output)

    def _args_delta(self, response: _Response, output: _Output, piece: str) -> None:
        item = output.item
        item.arguments = (item.arguments or "") + piece
        self._emit(
            "response.function_call_arguments.delta",
            response_id=response.id,
            item_id=item.id,
            output_index=output.index,
            call_id=item.call_id,
            delta=piece,
        )

    def _finish_call(self, response: _Response, output: _Output, status: str) -> None:
        item = output.item
        fields: dict[str, Any] = {
            "response_id": response.id,
            "item_id": item.id,
            "output_index": output.index,
            "call_id": item.call_id,
            "arguments": item.arguments or "",
        }
        if self.dialect.name == "ga":
            fields["name"] = item.name  # the beta event type has no `name`
        self._emit("response.function_call_arguments.done", **fields)
        self._complete_item(response, output, status)

    def _cancel_active(self, reason: str) -> None:
        response = self._active
        assert response is not None
        response.steps.clear()
        for output in response.outputs:
            if output.started and not output.finished:
                if output.kind == "call":
                    self._finish_call(response, output, "incomplete")
                else:
                    self._finish_message(response, output, "incomplete")
        self._finish_response(response, "cancelled", {"type": "cancelled", "reason": reason})

    def _finish_response(
        self, response: _Response, status: str, details: dict[str, Any] | None
    ) -> None:
        usage = self._response_usage(response)
        self._emit(
            "response.done",
            response=self._response_wire(
                response, status, details, usage.to_wire(self.dialect.name)
            ),
        )
        self._active = None
        self._tokens_used += usage.total_tokens
        self._emit(
            "rate_limits.updated",
            rate_limits=rate_limits(self._responses_created, self._tokens_used),
        )
        self._flush_late_transcripts()
        self._arm_idle_timeout(response)

    def _response_usage(self, response: _Response) -> Usage:
        output_text = 0
        output_audio_ms = 0.0
        for output in response.outputs:
            if not output.started:
                continue
            item = output.item
            if item.type == "function_call":
                output_text += text_tokens(item.name) + text_tokens(item.arguments)
                continue
            for part in item.content:
                output_text += text_tokens(part.transcript if part.is_audio else part.text)
                if part.is_audio:
                    output_audio_ms += part.audio_ms
        return Usage(
            input_text=response.input_usage.input_text,
            input_audio=response.input_usage.input_audio,
            output_text=output_text,
            output_audio=audio_output_tokens(output_audio_ms),
        )

    def _response_wire(
        self,
        response: _Response,
        status: str,
        details: dict[str, Any] | None = None,
        usage: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        output = [o.item.to_wire(self.dialect) for o in response.outputs if o.started]
        if status == "in_progress":
            output = []
        wire: dict[str, Any] = {
            "object": "realtime.response",
            "id": response.id,
            "status": status,
            "status_details": details,
            "output": output,
            "conversation_id": None if response.out_of_band else self.conversation_id,
        }
        if self.dialect.name == "ga":
            wire["output_modalities"] = list(response.modalities)
            wire["max_output_tokens"] = response.max_output_tokens
            wire["audio"] = {
                "output": {
                    "format": self.dialect.format_object(response.output_format),
                    "voice": response.voice,
                }
            }
        else:
            wire["modalities"] = ["text", "audio"] if "audio" in response.modalities else ["text"]
            wire["voice"] = response.voice
            wire["output_audio_format"] = response.output_format
            wire["temperature"] = self._session.config.temperature
            wire["max_output_tokens"] = response.max_output_tokens
        wire["usage"] = usage
        wire["metadata"] = response.metadata
        return wire

    # --- idle timeout --------------------------------------------------------------------------

    def _arm_idle_timeout(self, response: _Response) -> None:
        """server_vad `idle_timeout_ms`: counted from when the reply's audio has finished
        playing, i.e. `response.done` or the end of real-time playback, whichever is later."""
        turn_detection = self._session.config.turn_detection
        if (
            turn_detection is None
            or turn_detection.type != "server_vad"
            or not turn_detection.idle_timeout_ms
            or self.closed
        ):
            return
        played_by = max(self._now, response.stream_start_ms + response.audio_ms)
        self._idle_deadline_ms = played_by + turn_detection.idle_timeout_ms

    def _idle_timeout(self) -> None:
        self._idle_deadline_ms = None
        if self._active is not None or (self._vad is not None and self._vad.in_speech):
            return
        item_id = self._ids.item()
        self._emit(
            "input_audio_buffer.timeout_triggered",
            audio_start_ms=int(self._buffer_start_ms),
            audio_end_ms=int(self._appended_ms),
            item_id=item_id,
        )
        self._commit(self._reset_buffer(), item_id)
        self._create_response({}, None)
