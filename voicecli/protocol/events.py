"""Normalised server events: one frozen dataclass per kind of thing the server can tell us.

The decoder (`decode.py`) turns a wire frame of either dialect into one of these, so the rest of
voicecli never looks at dialect spellings. Conventions:

- `type` is the neutral name, which is the GA wire name (`response.output_audio.delta` even when
  a beta server sent `response.audio.delta`). For `Unknown` it is the neutral name of whatever
  arrived; `ProtocolError` uses `protocol_error`, which is not a wire name.
- `event_id` is the server's id (`""` when missing); `raw` is the wire dict exactly as received,
  kept for the inspector and excluded from `==` and `repr`.
- Missing or ill-typed fields fall back to defaults (`""`, `0`, `None`) instead of failing:
  servers add and drop fields, and a UI must keep running.
- Assistant content types are normalised to the item spellings `output_audio` / `output_text`
  (beta items say `audio` / `text`; content-part events say `audio` / `text` in both dialects).
- Audio arrives already base64-decoded as `bytes`.

Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from voicecli.protocol.dialects import SessionConfig


__all__ = [
    "HARMLESS_ERROR_CODES",
    "AudioDelta",
    "AudioDone",
    "ContentPart",
    "ContentPartAdded",
    "ContentPartDone",
    "ConversationCreated",
    "ErrorInfo",
    "Event",
    "FunctionCallArgumentsDelta",
    "FunctionCallArgumentsDone",
    "InputCleared",
    "InputCommitted",
    "InputTimeout",
    "InputTranscriptCompleted",
    "InputTranscriptDelta",
    "InputTranscriptFailed",
    "InputTranscriptSegment",
    "Item",
    "ItemAdded",
    "ItemDeleted",
    "ItemDone",
    "ItemRetrieved",
    "ItemTruncated",
    "OutputItemAdded",
    "OutputItemDone",
    "ProtocolError",
    "RateLimit",
    "RateLimitsUpdated",
    "ResponseCreated",
    "ResponseDone",
    "ServerError",
    "SessionCreated",
    "SessionUpdated",
    "SpeechStarted",
    "SpeechStopped",
    "StatusDetails",
    "TextDelta",
    "TextDone",
    "TranscriptDelta",
    "TranscriptDone",
    "TranscriptionUsage",
    "Unknown",
    "Usage",
]

# Error codes that are races between a correct client and the server, not real failures: the
# client asked for something that had just stopped being possible (the response ended, VAD
# already started one, VAD already committed the buffer, the item was already gone). Log them
# as warnings; never show them as failures.
HARMLESS_ERROR_CODES = frozenset(
    {
        "response_cancel_not_active",
        "conversation_already_has_active_response",
        "input_audio_buffer_commit_empty",
        "item_truncate_invalid_item_id",
    }
)


# --- value objects -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContentPart:
    """One content part of an item: `input_text`, `input_audio`, `output_text`, `output_audio`
    (or whatever newer type arrives, kept verbatim)."""

    type: str
    text: str | None = None
    """The text of a text part."""
    transcript: str | None = None
    """The transcript of an audio part (`None` when the server has none yet)."""
    audio: bytes | None = None
    """Decoded audio, only present in `conversation.item.retrieved` and client-created items."""


@dataclass(frozen=True, slots=True)
class Item:
    """A conversation item as the server describes it (message, function call, call output)."""

    id: str
    type: str
    """`message`, `function_call`, `function_call_output` (or a newer type, verbatim)."""
    role: str | None = None
    """`user`, `assistant` or `system` for messages."""
    status: str | None = None
    """`in_progress`, `completed` or `incomplete`."""
    content: tuple[ContentPart, ...] = ()
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    """The `error` object of an `error` event (also used by failed transcriptions)."""

    type: str = ""
    code: str | None = None
    message: str = ""
    param: str | None = None
    event_id: str | None = None
    """The client `event_id` that caused the error, when the server says."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Token usage of one response. Missing keys count as 0."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    input_image_tokens: int = 0
    cached_tokens: int = 0
    cached_text_tokens: int = 0
    cached_audio_tokens: int = 0
    output_text_tokens: int = 0
    output_audio_tokens: int = 0


@dataclass(frozen=True, slots=True)
class TranscriptionUsage:
    """Usage of an input transcription: billed by tokens, or by duration (`seconds`)."""

    type: str = "tokens"
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_text_tokens: int = 0
    input_audio_tokens: int = 0
    seconds: float | None = None


@dataclass(frozen=True, slots=True)
class StatusDetails:
    """Why a response ended the way it did (`cancelled`/`turn_detected`, `incomplete`/...)."""

    type: str | None = None
    reason: str | None = None
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class RateLimit:
    name: str = ""
    limit: int = 0
    remaining: int = 0
    reset_seconds: float = 0.0


# --- events --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of every normalised server event."""

    type: ClassVar[str] = ""
    event_id: str = ""
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionCreated(Event):
    type: ClassVar[str] = "session.created"
    session: SessionConfig = field(default_factory=SessionConfig)
    """The full effective configuration, dialect-neutral."""
    session_id: str | None = None
    model: str | None = None
    expires_at: int | None = None
    """Unix seconds after which the server ends the session."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionUpdated(Event):
    type: ClassVar[str] = "session.updated"
    session: SessionConfig = field(default_factory=SessionConfig)
    session_id: str | None = None
    model: str | None = None
    expires_at: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConversationCreated(Event):
    type: ClassVar[str] = "conversation.created"
    conversation_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemAdded(Event):
    """An item entered the conversation (GA `conversation.item.added`, beta `.created`)."""

    type: ClassVar[str] = "conversation.item.added"
    item: Item
    previous_item_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemDone(Event):
    """GA only: the item is final (no audio bytes)."""

    type: ClassVar[str] = "conversation.item.done"
    item: Item
    previous_item_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemRetrieved(Event):
    type: ClassVar[str] = "conversation.item.retrieved"
    item: Item


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemTruncated(Event):
    type: ClassVar[str] = "conversation.item.truncated"
    item_id: str = ""
    content_index: int = 0
    audio_end_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemDeleted(Event):
    type: ClassVar[str] = "conversation.item.deleted"
    item_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class InputTranscriptDelta(Event):
    type: ClassVar[str] = "conversation.item.input_audio_transcription.delta"
    item_id: str = ""
    content_index: int = 0
    delta: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class InputTranscriptCompleted(Event):
    type: ClassVar[str] = "conversation.item.input_audio_transcription.completed"
    item_id: str = ""
    content_index: int = 0
    transcript: str = ""
    usage: TranscriptionUsage | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InputTranscriptFailed(Event):
    type: ClassVar[str] = "conversation.item.input_audio_transcription.failed"
    item_id: str = ""
    content_index: int = 0
    error: ErrorInfo = field(default_factory=ErrorInfo)


@dataclass(frozen=True, slots=True, kw_only=True)
class InputTranscriptSegment(Event):
    """GA, diarizing transcription models: one speaker segment of the user's audio."""

    type: ClassVar[str] = "conversation.item.input_audio_transcription.segment"
    item_id: str = ""
    content_index: int = 0
    segment_id: str = ""
    text: str = ""
    speaker: str = ""
    start: float = 0.0
    end: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStarted(Event):
    type: ClassVar[str] = "input_audio_buffer.speech_started"
    item_id: str = ""
    """The id the user item will get."""
    audio_start_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStopped(Event):
    type: ClassVar[str] = "input_audio_buffer.speech_stopped"
    item_id: str = ""
    audio_end_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class InputCommitted(Event):
    type: ClassVar[str] = "input_audio_buffer.committed"
    item_id: str = ""
    previous_item_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class InputCleared(Event):
    type: ClassVar[str] = "input_audio_buffer.cleared"


@dataclass(frozen=True, slots=True, kw_only=True)
class InputTimeout(Event):
    """GA server VAD `idle_timeout_ms` fired: the user said nothing for a while."""

    type: ClassVar[str] = "input_audio_buffer.timeout_triggered"
    item_id: str = ""
    audio_start_ms: int = 0
    audio_end_ms: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseCreated(Event):
    type: ClassVar[str] = "response.created"
    response_id: str = ""
    status: str = "in_progress"
    conversation_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputItemAdded(Event):
    type: ClassVar[str] = "response.output_item.added"
    response_id: str = ""
    output_index: int = 0
    item: Item


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputItemDone(Event):
    type: ClassVar[str] = "response.output_item.done"
    response_id: str = ""
    output_index: int = 0
    item: Item


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentPartAdded(Event):
    type: ClassVar[str] = "response.content_part.added"
    response_id: str = ""
    item_id: str = ""
    output_index: int = 0
    content_index: int = 0
    part: ContentPart


@dataclass(frozen=True, slots=True, kw_only=True)
class ContentPartDone(Event):
    type: ClassVar[str] = "response.content_part.done"
    response_id: str = ""
    item_id: str = ""
    output_index: int = 0
    content_index: int = 0
    part: ContentPart


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioDelta(Event):
    """A chunk of assistant audio in the session's output format (PCM16 24 kHz by default)."""

    type: ClassVar[str] = "response.output_audio.delta"
    response_id: str = ""
    item_id: str = ""
    output_index: int = 0
    content_index: int = 0
    pcm: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioDone(Event):
    type: ClassVar[str] = "response.output_audio.done"
    response_id: str = ""
    item_id: str = ""
    output_index: int = 0
    content_index: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptDelta(Event):
    """A piece of the transcript of assistant audio."""

    type: ClassVar[str] = "response.output_audio_transcript.delta"
    response_id: str = ""
    item_id: str = ""
    output_index: int = 0
    content_index: int = 0
    delta: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TranscriptDone(Event):
    type: ClassVar[str] = "response.output_audio_transcript.done"
    response_id: str = ""
    item_id: str = ""
    output_index: int = 0
    content_index: int = 0
    transcript: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDelta(Event):
    type: ClassVar[str] = "response.output_text.delta"
    response_id: str = ""
    item_id: str = ""
    output_index: int = 0
    content_index: int = 0
    delta: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class TextDone(Event):
    type: ClassVar[str] = "response.output_text.done"
    response_id: str = ""
    item_id: str = ""
    output_index: int = 0
    content_index: int = 0
    text: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCallArgumentsDelta(Event):
    type: ClassVar[str] = "response.function_call_arguments.delta"
    response_id: str = ""
    item_id: str = ""
    output_index: int = 0
    call_id: str = ""
    delta: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionCallArgumentsDone(Event):
    type: ClassVar[str] = "response.function_call_arguments.done"
    response_id: str = ""
    item_id: str = ""
    output_index: int = 0
    call_id: str = ""
    arguments: str = ""
    name: str | None = None
    """GA only; beta servers do not send the function name here."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseDone(Event):
    type: ClassVar[str] = "response.done"
    response_id: str = ""
    status: str = "completed"
    """`completed`, `cancelled`, `incomplete` or `failed`."""
    status_details: StatusDetails | None = None
    output: tuple[Item, ...] = ()
    usage: Usage | None = None
    conversation_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimitsUpdated(Event):
    type: ClassVar[str] = "rate_limits.updated"
    rate_limits: tuple[RateLimit, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerError(Event):
    """An `error` event. Most are recoverable; `harmless` ones are races, not failures."""

    type: ClassVar[str] = "error"
    error: ErrorInfo = field(default_factory=ErrorInfo)
    harmless: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtocolError(Event):
    """A frame we could not read: not JSON, not an object, no string `type`, bad base64.

    Not a server event at all; reported as data so one bad frame does not end the session.
    """

    type: ClassVar[str] = "protocol_error"
    message: str = ""
    """One sentence saying what was wrong."""
    text: str = ""
    """The offending frame, truncated."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Unknown(Event):
    """An event type this version does not model (newer servers, MCP, SIP, ...)."""

    type: str = ""  # type: ignore[misc]  # an instance field here, unlike the other events
