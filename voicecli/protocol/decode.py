"""Wire frame (JSON text) -> normalised event, for either dialect. Never raises.

`decode_server_event(text, dialect)` is the only entry point. Whatever arrives becomes an
event: a known type becomes its dataclass, an unknown type becomes `Unknown`, and a frame we
cannot read at all (not JSON, not an object, no string `type`, bad base64 audio) becomes
`ProtocolError` with the offending text truncated. Fields are read leniently: a missing or
ill-typed field takes its default, because servers add, drop and reshape fields over time and
a voice session should not die on one odd frame.

Both dialects' spellings are accepted whichever dialect is selected (`Dialect.neutral_name`),
so a beta `response.audio.delta` and a GA `response.output_audio.delta` decode to the same
`AudioDelta`.

Pure: standard library only.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

from voicecli.protocol import events as ev
from voicecli.protocol.dialects import GA, Dialect, SessionConfig


__all__ = ["MAX_QUOTED_CHARS", "decode_server_event"]

MAX_QUOTED_CHARS = 200
"""How much of an unreadable frame a `ProtocolError` quotes (audio frames can be megabytes)."""

# Assistant content-part types: content-part events (both dialects) and beta items say
# `audio`/`text`; GA items say `output_audio`/`output_text`. We normalise to the latter.
_CONTENT_TYPES = {"audio": "output_audio", "text": "output_text"}


class _BadBase64(Exception):
    """Raised inside the decoder only; becomes a `ProtocolError` event."""


def decode_server_event(text: str | bytes, dialect: Dialect = GA) -> ev.Event:
    """One server frame as a normalised event. Never raises."""
    if isinstance(text, bytes | bytearray | memoryview):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            return _protocol_error("frame is not UTF-8 text", repr(bytes(text)))
    try:
        wire = json.loads(text)
    except (ValueError, RecursionError) as error:
        return _protocol_error(f"frame is not valid JSON ({_first_line(error)})", text)
    if not isinstance(wire, dict):
        return _protocol_error(f"frame is a JSON {_json_kind(wire)}, not an object", text)
    wire_type = wire.get("type")
    if not isinstance(wire_type, str):
        problem = "has no 'type'" if "type" not in wire else "has a non-string 'type'"
        return _protocol_error(f"event {problem}", text, wire)
    neutral = dialect.neutral_name(wire_type)
    decoder = _DECODERS.get(neutral)
    if decoder is None:
        return ev.Unknown(type=neutral, event_id=_str(wire, "event_id"), raw=wire)
    try:
        return decoder(wire, dialect)
    except _BadBase64 as error:
        return _protocol_error(f"{wire_type} carries invalid base64 audio ({error})", text, wire)
    except Exception as error:  # noqa: BLE001 - the contract is "never raises"
        # The field readers below are defensive, so this is a bug of ours; still, one bad
        # frame must not end a voice session. The class name makes it findable in a capture.
        return _protocol_error(
            f"could not decode {wire_type} ({type(error).__name__}: {error})", text, wire
        )


# --- lenient field readers -----------------------------------------------------------------


def _str(wire: Mapping[str, Any], key: str, default: str = "") -> str:
    value = wire.get(key)
    return value if isinstance(value, str) else default


def _opt_str(wire: Mapping[str, Any], key: str) -> str | None:
    value = wire.get(key)
    return value if isinstance(value, str) else None


def _int(wire: Mapping[str, Any], key: str, default: int = 0) -> int:
    value = wire.get(key)
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return default


def _opt_int(wire: Mapping[str, Any], key: str) -> int | None:
    value = wire.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _float(wire: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    value = wire.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return default


def _obj(wire: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = wire.get(key)
    return value if isinstance(value, dict) else {}


def _list(wire: Mapping[str, Any], key: str) -> list[Any]:
    value = wire.get(key)
    return value if isinstance(value, list) else []


def _audio(encoded: Any) -> bytes:
    if not isinstance(encoded, str):
        return b""
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise _BadBase64(_first_line(error)) from None


# --- shared pieces -------------------------------------------------------------------------


def _content_part(wire: Any) -> ev.ContentPart:
    wire = wire if isinstance(wire, dict) else {}
    kind = _str(wire, "type")
    audio = wire.get("audio")
    return ev.ContentPart(
        type=_CONTENT_TYPES.get(kind, kind),
        text=_opt_str(wire, "text"),
        transcript=_opt_str(wire, "transcript"),
        audio=_audio(audio) if isinstance(audio, str) else None,
    )


def _item(wire: Any) -> ev.Item:
    wire = wire if isinstance(wire, dict) else {}
    return ev.Item(
        id=_str(wire, "id"),
        type=_str(wire, "type"),
        role=_opt_str(wire, "role"),
        status=_opt_str(wire, "status"),
        content=tuple(_content_part(part) for part in _list(wire, "content")),
        call_id=_opt_str(wire, "call_id"),
        name=_opt_str(wire, "name"),
        arguments=_opt_str(wire, "arguments"),
        output=_opt_str(wire, "output"),
    )


def _error_info(wire: Mapping[str, Any]) -> ev.ErrorInfo:
    return ev.ErrorInfo(
        type=_str(wire, "type"),
        code=_opt_str(wire, "code"),
        message=_str(wire, "message"),
        param=_opt_str(wire, "param"),
        event_id=_opt_str(wire, "event_id"),
    )


def _usage(wire: Any) -> ev.Usage | None:
    if not isinstance(wire, dict):
        return None
    given = _obj(wire, "input_token_details")
    cached = _obj(given, "cached_tokens_details")
    produced = _obj(wire, "output_token_details")
    return ev.Usage(
        input_tokens=_int(wire, "input_tokens"),
        output_tokens=_int(wire, "output_tokens"),
        total_tokens=_int(wire, "total_tokens"),
        input_text_tokens=_int(given, "text_tokens"),
        input_audio_tokens=_int(given, "audio_tokens"),
        input_image_tokens=_int(given, "image_tokens"),
        cached_tokens=_int(given, "cached_tokens"),
        cached_text_tokens=_int(cached, "text_tokens"),
        cached_audio_tokens=_int(cached, "audio_tokens"),
        output_text_tokens=_int(produced, "text_tokens"),
        output_audio_tokens=_int(produced, "audio_tokens"),
    )


def _transcription_usage(wire: Any) -> ev.TranscriptionUsage | None:
    if not isinstance(wire, dict):
        return None
    details = _obj(wire, "input_token_details")
    seconds = wire.get("seconds")
    return ev.TranscriptionUsage(
        type=_str(wire, "type", "tokens"),
        input_tokens=_int(wire, "input_tokens"),
        output_tokens=_int(wire, "output_tokens"),
        total_tokens=_int(wire, "total_tokens"),
        input_text_tokens=_int(details, "text_tokens"),
        input_audio_tokens=_int(details, "audio_tokens"),
        seconds=float(seconds)
        if isinstance(seconds, int | float) and not isinstance(seconds, bool)
        else None,
    )


def _status_details(wire: Any) -> ev.StatusDetails | None:
    if not isinstance(wire, dict):
        return None
    error = wire.get("error")
    return ev.StatusDetails(
        type=_opt_str(wire, "type"),
        reason=_opt_str(wire, "reason"),
        error=_error_info(error) if isinstance(error, dict) else None,
    )


def _session_fields(wire: Mapping[str, Any], dialect: Dialect) -> dict[str, Any]:
    session = _obj(wire, "session")
    try:
        config = dialect.decode_session(session)
    except (TypeError, ValueError, AttributeError):
        # A session object we cannot map (odd value types) still tells us ids and expiry.
        config = SessionConfig()
    return {
        "session": config,
        "session_id": _opt_str(session, "id"),
        "model": _opt_str(session, "model"),
        "expires_at": _opt_int(session, "expires_at"),
    }


def _common(wire: Mapping[str, Any]) -> dict[str, Any]:
    return {"event_id": _str(wire, "event_id"), "raw": wire}


def _output_position(wire: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "response_id": _str(wire, "response_id"),
        "item_id": _str(wire, "item_id"),
        "output_index": _int(wire, "output_index"),
        "content_index": _int(wire, "content_index"),
    }


# --- one decoder per neutral event name ----------------------------------------------------

_Decoder = Callable[[dict[str, Any], Dialect], ev.Event]


def _session_created(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.SessionCreated(**_common(wire), **_session_fields(wire, dialect))


def _session_updated(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.SessionUpdated(**_common(wire), **_session_fields(wire, dialect))


def _conversation_created(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.ConversationCreated(
        **_common(wire), conversation_id=_opt_str(_obj(wire, "conversation"), "id")
    )


def _item_added(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.ItemAdded(
        **_common(wire),
        item=_item(wire.get("item")),
        previous_item_id=_opt_str(wire, "previous_item_id"),
    )


def _item_done(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.ItemDone(
        **_common(wire),
        item=_item(wire.get("item")),
        previous_item_id=_opt_str(wire, "previous_item_id"),
    )


def _item_retrieved(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.ItemRetrieved(**_common(wire), item=_item(wire.get("item")))


def _item_truncated(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.ItemTruncated(
        **_common(wire),
        item_id=_str(wire, "item_id"),
        content_index=_int(wire, "content_index"),
        audio_end_ms=_int(wire, "audio_end_ms"),
    )


def _item_deleted(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.ItemDeleted(**_common(wire), item_id=_str(wire, "item_id"))


def _input_position(wire: Mapping[str, Any]) -> dict[str, Any]:
    return {"item_id": _str(wire, "item_id"), "content_index": _int(wire, "content_index")}


def _input_transcript_delta(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.InputTranscriptDelta(
        **_common(wire), **_input_position(wire), delta=_str(wire, "delta")
    )


def _input_transcript_completed(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.InputTranscriptCompleted(
        **_common(wire),
        **_input_position(wire),
        transcript=_str(wire, "transcript"),
        usage=_transcription_usage(wire.get("usage")),
    )


def _input_transcript_failed(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.InputTranscriptFailed(
        **_common(wire), **_input_position(wire), error=_error_info(_obj(wire, "error"))
    )


def _input_transcript_segment(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.InputTranscriptSegment(
        **_common(wire),
        **_input_position(wire),
        segment_id=_str(wire, "id"),
        text=_str(wire, "text"),
        speaker=_str(wire, "speaker"),
        start=_float(wire, "start"),
        end=_float(wire, "end"),
    )


def _speech_started(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.SpeechStarted(
        **_common(wire), item_id=_str(wire, "item_id"), audio_start_ms=_int(wire, "audio_start_ms")
    )


def _speech_stopped(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.SpeechStopped(
        **_common(wire), item_id=_str(wire, "item_id"), audio_end_ms=_int(wire, "audio_end_ms")
    )


def _input_committed(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.InputCommitted(
        **_common(wire),
        item_id=_str(wire, "item_id"),
        previous_item_id=_opt_str(wire, "previous_item_id"),
    )


def _input_cleared(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.InputCleared(**_common(wire))


def _input_timeout(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.InputTimeout(
        **_common(wire),
        item_id=_str(wire, "item_id"),
        audio_start_ms=_int(wire, "audio_start_ms"),
        audio_end_ms=_int(wire, "audio_end_ms"),
    )


def _response_created(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    response = _obj(wire, "response")
    return ev.ResponseCreated(
        **_common(wire),
        response_id=_str(response, "id"),
        status=_str(response, "status", "in_progress"),
        conversation_id=_opt_str(response, "conversation_id"),
    )


def _response_done(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    response = _obj(wire, "response")
    return ev.ResponseDone(
        **_common(wire),
        response_id=_str(response, "id"),
        status=_str(response, "status", "completed"),
        status_details=_status_details(response.get("status_details")),
        output=tuple(_item(item) for item in _list(response, "output")),
        usage=_usage(response.get("usage")),
        conversation_id=_opt_str(response, "conversation_id"),
    )


def _output_item_added(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.OutputItemAdded(
        **_common(wire),
        response_id=_str(wire, "response_id"),
        output_index=_int(wire, "output_index"),
        item=_item(wire.get("item")),
    )


def _output_item_done(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.OutputItemDone(
        **_common(wire),
        response_id=_str(wire, "response_id"),
        output_index=_int(wire, "output_index"),
        item=_item(wire.get("item")),
    )


def _content_part_added(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.ContentPartAdded(
        **_common(wire), **_output_position(wire), part=_content_part(wire.get("part"))
    )


def _content_part_done(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.ContentPartDone(
        **_common(wire), **_output_position(wire), part=_content_part(wire.get("part"))
    )


def _audio_delta(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.AudioDelta(**_common(wire), **_output_position(wire), pcm=_audio(wire.get("delta")))


def _audio_done(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.AudioDone(**_common(wire), **_output_position(wire))


def _transcript_delta(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.TranscriptDelta(**_common(wire), **_output_position(wire), delta=_str(wire, "delta"))


def _transcript_done(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.TranscriptDone(
        **_common(wire), **_output_position(wire), transcript=_str(wire, "transcript")
    )


def _text_delta(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.TextDelta(**_common(wire), **_output_position(wire), delta=_str(wire, "delta"))


def _text_done(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.TextDone(**_common(wire), **_output_position(wire), text=_str(wire, "text"))


def _call_position(wire: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "response_id": _str(wire, "response_id"),
        "item_id": _str(wire, "item_id"),
        "output_index": _int(wire, "output_index"),
        "call_id": _str(wire, "call_id"),
    }


def _arguments_delta(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.FunctionCallArgumentsDelta(
        **_common(wire), **_call_position(wire), delta=_str(wire, "delta")
    )


def _arguments_done(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    return ev.FunctionCallArgumentsDone(
        **_common(wire),
        **_call_position(wire),
        arguments=_str(wire, "arguments"),
        name=_opt_str(wire, "name"),
    )


def _rate_limits(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    limits = tuple(
        ev.RateLimit(
            name=_str(limit, "name"),
            limit=_int(limit, "limit"),
            remaining=_int(limit, "remaining"),
            reset_seconds=_float(limit, "reset_seconds"),
        )
        for limit in _list(wire, "rate_limits")
        if isinstance(limit, dict)
    )
    return ev.RateLimitsUpdated(**_common(wire), rate_limits=limits)


def _error(wire: dict[str, Any], dialect: Dialect) -> ev.Event:
    info = _error_info(_obj(wire, "error"))
    return ev.ServerError(
        **_common(wire), error=info, harmless=info.code in ev.HARMLESS_ERROR_CODES
    )


_DECODERS: dict[str, _Decoder] = {
    "session.created": _session_created,
    "session.updated": _session_updated,
    "conversation.created": _conversation_created,
    "conversation.item.added": _item_added,
    "conversation.item.done": _item_done,
    "conversation.item.retrieved": _item_retrieved,
    "conversation.item.truncated": _item_truncated,
    "conversation.item.deleted": _item_deleted,
    "conversation.item.input_audio_transcription.delta": _input_transcript_delta,
    "conversation.item.input_audio_transcription.completed": _input_transcript_completed,
    "conversation.item.input_audio_transcription.failed": _input_transcript_failed,
    "conversation.item.input_audio_transcription.segment": _input_transcript_segment,
    "input_audio_buffer.speech_started": _speech_started,
    "input_audio_buffer.speech_stopped": _speech_stopped,
    "input_audio_buffer.committed": _input_committed,
    "input_audio_buffer.cleared": _input_cleared,
    "input_audio_buffer.timeout_triggered": _input_timeout,
    "response.created": _response_created,
    "response.done": _response_done,
    "response.output_item.added": _output_item_added,
    "response.output_item.done": _output_item_done,
    "response.content_part.added": _content_part_added,
    "response.content_part.done": _content_part_done,
    "response.output_audio.delta": _audio_delta,
    "response.output_audio.done": _audio_done,
    "response.output_audio_transcript.delta": _transcript_delta,
    "response.output_audio_transcript.done": _transcript_done,
    "response.output_text.delta": _text_delta,
    "response.output_text.done": _text_done,
    "response.function_call_arguments.delta": _arguments_delta,
    "response.function_call_arguments.done": _arguments_done,
    "rate_limits.updated": _rate_limits,
    "error": _error,
}


# --- problems ------------------------------------------------------------------------------


def _protocol_error(
    message: str, text: str, wire: Mapping[str, Any] | None = None
) -> ev.ProtocolError:
    event_id = _str(wire, "event_id") if wire else ""
    return ev.ProtocolError(
        event_id=event_id, raw=wire or {}, message=message, text=_truncate(text)
    )


def _truncate(text: str) -> str:
    if len(text) <= MAX_QUOTED_CHARS:
        return text
    return f"{text[:MAX_QUOTED_CHARS]}... ({len(text)} characters)"


def _first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"
