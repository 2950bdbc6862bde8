"""Validation of client payloads with the error codes and messages of the real API.

A tiny spec language (`Obj`, `Str`, `Enum`, ...) describes what each dialect accepts in
`session.update` and `response.create`. Checking a value returns the first `Problem` found,
shaped like the real server's errors (protocol reference §6):

    unknown_parameter           "Unknown parameter: 'session.modalities'."
    missing_required_parameter  "Missing required parameter: 'session.type'."
    invalid_value               "Invalid value: 'bob'. Supported values are: 'alloy', ...,
                                 and 'cedar'."
    invalid_type                "Invalid type for 'session.instructions': expected a string, but
                                 got an integer instead."
    integer_above_max_value ... "Invalid 'session.max_output_tokens': integer above maximum value.
                                 Expected a value <= 4096, but got 5000 instead."

The first three are confirmed by captures; the type and range wordings follow the rest of the
OpenAI API and are not verified for the realtime endpoint.

Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


__all__ = [
    "Problem",
    "Spec",
    "beta_response_spec",
    "beta_session_spec",
    "ga_response_spec",
    "ga_session_spec",
    "invalid_value",
    "join",
    "missing",
]


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    message: str
    param: str | None


Spec = Callable[[Any, str], "Problem | None"]


def join(path: str, key: str) -> str:
    """`session` + `type` -> `session.type`; a top-level field keeps its bare name."""
    return f"{path}.{key}" if path else key


def missing(path: str) -> Problem:
    return Problem("missing_required_parameter", f"Missing required parameter: '{path}'.", path)


def invalid_value(path: str, value: Any, allowed: tuple[Any, ...]) -> Problem:
    return Problem(
        "invalid_value",
        f"Invalid value: {_quote(value)}. Supported values are: {_choice_list(allowed)}.",
        path,
    )


def _quote(value: Any) -> str:
    return f"'{value}'"


def _choice_list(values: tuple[Any, ...]) -> str:
    quoted = [_quote(v) for v in values]
    if len(quoted) == 1:
        return quoted[0]
    if len(quoted) == 2:
        return f"{quoted[0]} and {quoted[1]}"
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _wrong_type(path: str, expected: str, value: Any) -> Problem:
    return Problem(
        "invalid_type",
        f"Invalid type for '{path}': expected {expected}, but got {_kind(value)} instead.",
        path,
    )


# --- spec builders ---------------------------------------------------------------------------


def Anything() -> Spec:  # noqa: N802 - spec builders read like types
    return lambda value, path: None


def Str() -> Spec:  # noqa: N802
    def check(value: Any, path: str) -> Problem | None:
        return None if isinstance(value, str) else _wrong_type(path, "a string", value)

    return check


def Bool() -> Spec:  # noqa: N802
    def check(value: Any, path: str) -> Problem | None:
        return None if isinstance(value, bool) else _wrong_type(path, "a boolean", value)

    return check


def Int(minimum: int | None = None, maximum: int | None = None) -> Spec:  # noqa: N802
    def check(value: Any, path: str) -> Problem | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return _wrong_type(path, "an integer", value)
        return _range(path, value, minimum, maximum, "integer")

    return check


def Num(minimum: float | None = None, maximum: float | None = None) -> Spec:  # noqa: N802
    def check(value: Any, path: str) -> Problem | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return _wrong_type(path, "a decimal", value)
        return _range(path, value, minimum, maximum, "decimal")

    return check


def _range(
    path: str, value: float, low: float | None, high: float | None, kind: str
) -> Problem | None:
    if low is not None and value < low:
        return Problem(
            f"{kind}_below_min_value",
            f"Invalid '{path}': {kind} below minimum value. "
            f"Expected a value >= {low}, but got {value} instead.",
            path,
        )
    if high is not None and value > high:
        return Problem(
            f"{kind}_above_max_value",
            f"Invalid '{path}': {kind} above maximum value. "
            f"Expected a value <= {high}, but got {value} instead.",
            path,
        )
    return None


def Enum(*allowed: Any) -> Spec:  # noqa: N802
    def check(value: Any, path: str) -> Problem | None:
        if value in allowed and type(value) is type(allowed[allowed.index(value)]):
            return None
        if isinstance(allowed[0], str) and not isinstance(value, str):
            return _wrong_type(path, "a string", value)
        return invalid_value(path, value, allowed)

    return check


def Nullable(spec: Spec) -> Spec:  # noqa: N802
    return lambda value, path: None if value is None else spec(value, path)


def OneOf(*specs: Spec) -> Spec:  # noqa: N802
    """The first spec that accepts the value wins.

    Otherwise the most telling problem: a wrong value beats a wrong type, so `"bogus"` for
    `tool_choice` reports the allowed strings rather than "expected an object".
    """

    def check(value: Any, path: str) -> Problem | None:
        problems = []
        for spec in specs:
            problem = spec(value, path)
            if problem is None:
                return None
            problems.append(problem)
        telling = [p for p in problems if p.code != "invalid_type"]
        return (telling or problems)[0]

    return check


def ListOf(item: Spec) -> Spec:  # noqa: N802
    def check(value: Any, path: str) -> Problem | None:
        if not isinstance(value, list):
            return _wrong_type(path, "an array", value)
        for index, element in enumerate(value):
            problem = item(element, f"{path}[{index}]")
            if problem is not None:
                return problem
        return None

    return check


def Obj(fields: Mapping[str, Spec], required: tuple[str, ...] = ()) -> Spec:  # noqa: N802
    def check(value: Any, path: str) -> Problem | None:
        if not isinstance(value, Mapping):
            return _wrong_type(path, "an object", value)
        for key in value:
            if key not in fields:
                child = join(path, key)
                return Problem("unknown_parameter", f"Unknown parameter: '{child}'.", child)
        for key in required:
            if key not in value:
                return missing(join(path, key))
        for key, spec in fields.items():
            if key in value:
                problem = spec(value[key], join(path, key))
                if problem is not None:
                    return problem
        return None

    return check


def Tagged(tag: str, variants: Mapping[str, Spec], default: str | None = None) -> Spec:  # noqa: N802
    """An object whose allowed fields depend on its `tag` field (e.g. turn_detection.type)."""

    def check(value: Any, path: str) -> Problem | None:
        if not isinstance(value, Mapping):
            return _wrong_type(path, "an object", value)
        kind = value.get(tag, default)
        if kind is None:
            return missing(join(path, tag))
        if kind not in variants:
            return Enum(*variants)(kind, join(path, tag))
        return variants[kind](value, path)

    return check


# --- shared pieces ---------------------------------------------------------------------------

VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")

_voice_ga = OneOf(Obj({"id": Str()}, required=("id",)), Enum(*VOICES))
_max_tokens = OneOf(Enum("inf"), Int(1, 4096))
_function_tool = Obj(
    {"type": Enum("function"), "name": Str(), "description": Str(), "parameters": Anything()},
    required=("name",),
)
_tool_choice = OneOf(
    Enum("auto", "none", "required"),
    Tagged(
        "type",
        {
            "function": Obj({"type": Str(), "name": Str(), "function": Anything()}),
            "mcp": Obj({"type": Str(), "server_label": Str(), "name": Str()}),
        },
    ),
)
_tracing = Nullable(
    OneOf(Enum("auto"), Obj({"workflow_name": Str(), "group_id": Str(), "metadata": Anything()}))
)
_metadata = Nullable(Anything())
_conversation = Nullable(Str())


def _ga_tools() -> Spec:
    mcp = Obj(
        {
            key: Anything()
            for key in (
                "type",
                "server_label",
                "server_url",
                "connector_id",
                "authorization",
                "headers",
                "allowed_tools",
                "require_approval",
                "server_description",
            )
        },
        required=("server_label",),
    )
    return ListOf(Tagged("type", {"function": _function_tool, "mcp": mcp}, default="function"))


def _ga_format() -> Spec:
    return Tagged(
        "type",
        {
            "audio/pcm": Obj({"type": Str(), "rate": Enum(24000)}),
            "audio/pcmu": Obj({"type": Str()}),
            "audio/pcma": Obj({"type": Str()}),
        },
    )


def _ga_turn_detection() -> Spec:
    common = {"type": Str(), "create_response": Bool(), "interrupt_response": Bool()}
    server_vad = Obj(
        {
            **common,
            "threshold": Num(0.0, 1.0),
            "prefix_padding_ms": Int(0),
            "silence_duration_ms": Int(0),
            "idle_timeout_ms": Nullable(Int(0)),
        }
    )
    semantic_vad = Obj({**common, "eagerness": Enum("low", "medium", "high", "auto")})
    return Nullable(Tagged("type", {"server_vad": server_vad, "semantic_vad": semantic_vad}))


def _transcription() -> Spec:
    return Nullable(
        Obj(
            {
                "model": Str(),
                "language": Nullable(Str()),
                "prompt": Nullable(Str()),
                "delay": Anything(),
                "keywords": Anything(),
                "languages": Anything(),
            }
        )
    )


def _noise_reduction() -> Spec:
    return Nullable(Obj({"type": Enum("near_field", "far_field"), "strength": Num(0.0)}))


def ga_session_spec() -> Spec:
    return Obj(
        {
            "type": Enum("realtime", "transcription"),
            "model": Str(),
            "output_modalities": ListOf(Enum("text", "audio")),
            "instructions": Str(),
            "audio": Obj(
                {
                    "input": Obj(
                        {
                            "format": _ga_format(),
                            "transcription": _transcription(),
                            "noise_reduction": _noise_reduction(),
                            "turn_detection": _ga_turn_detection(),
                        }
                    ),
                    "output": Obj(
                        {"format": _ga_format(), "voice": _voice_ga, "speed": Num(0.25, 1.5)}
                    ),
                }
            ),
            "tools": _ga_tools(),
            "tool_choice": _tool_choice,
            "max_output_tokens": _max_tokens,
            "tracing": _tracing,
            "truncation": OneOf(
                Enum("auto", "disabled"),
                Obj(
                    {
                        "type": Enum("retention_ratio"),
                        "retention_ratio": Num(0.0, 1.0),
                        "token_limits": Anything(),
                    },
                    required=("type", "retention_ratio"),
                ),
            ),
            "include": Nullable(ListOf(Enum("item.input_audio_transcription.logprobs"))),
            "prompt": Nullable(
                Obj({"id": Str(), "version": Nullable(Str()), "variables": Anything()})
            ),
            "reasoning": Nullable(Anything()),
            "parallel_tool_calls": Bool(),
        },
        required=("type",),
    )


def beta_session_spec() -> Spec:
    formats = Enum("pcm16", "g711_ulaw", "g711_alaw")
    return Obj(
        {
            "model": Str(),
            "modalities": ListOf(Enum("text", "audio")),
            "instructions": Str(),
            "voice": Enum(*VOICES),
            "input_audio_format": formats,
            "output_audio_format": formats,
            "input_audio_transcription": _transcription(),
            "input_audio_noise_reduction": _noise_reduction(),
            "turn_detection": Nullable(
                Obj(
                    {
                        "type": Enum("server_vad", "semantic_vad"),
                        "threshold": Num(0.0, 1.0),
                        "prefix_padding_ms": Int(0),
                        "silence_duration_ms": Int(0),
                        "idle_timeout_ms": Nullable(Int(0)),
                        "create_response": Bool(),
                        "interrupt_response": Bool(),
                        "eagerness": Enum("low", "medium", "high", "auto"),
                    }
                )
            ),
            "tools": ListOf(_function_tool),
            "tool_choice": _tool_choice,
            "temperature": Num(0.6, 1.2),
            "max_response_output_tokens": _max_tokens,
            "speed": Num(0.25, 1.5),
            "tracing": _tracing,
            "client_secret": Anything(),
        }
    )


def ga_response_spec() -> Spec:
    return Obj(
        {
            "output_modalities": ListOf(Enum("text", "audio")),
            "instructions": Str(),
            "audio": Obj({"output": Obj({"format": _ga_format(), "voice": _voice_ga})}),
            "tools": _ga_tools(),
            "tool_choice": _tool_choice,
            "max_output_tokens": _max_tokens,
            "conversation": _conversation,
            "metadata": _metadata,
            "prompt": Nullable(Anything()),
            "input": ListOf(Anything()),
            "reasoning": Nullable(Anything()),
            "parallel_tool_calls": Bool(),
        }
    )


def beta_response_spec() -> Spec:
    return Obj(
        {
            "modalities": ListOf(Enum("text", "audio")),
            "instructions": Str(),
            "voice": Enum(*VOICES),
            "output_audio_format": Enum("pcm16", "g711_ulaw", "g711_alaw"),
            "tools": ListOf(_function_tool),
            "tool_choice": _tool_choice,
            "temperature": Num(0.6, 1.2),
            "max_response_output_tokens": _max_tokens,
            "conversation": _conversation,
            "metadata": _metadata,
            "input": ListOf(Anything()),
        }
    )


# --- client events ---------------------------------------------------------------------------

_ENVELOPE: dict[str, Spec] = {"type": Str(), "event_id": Str()}


def client_event_specs() -> dict[str, Spec]:
    """The envelope of every client event this server handles (payloads checked separately)."""
    return {
        "session.update": Obj({**_ENVELOPE, "session": Anything()}, required=("session",)),
        "input_audio_buffer.append": Obj({**_ENVELOPE, "audio": Str()}, required=("audio",)),
        "input_audio_buffer.commit": Obj(_ENVELOPE),
        "input_audio_buffer.clear": Obj(_ENVELOPE),
        "conversation.item.create": Obj(
            {**_ENVELOPE, "previous_item_id": Nullable(Str()), "item": Anything()},
            required=("item",),
        ),
        "conversation.item.retrieve": Obj({**_ENVELOPE, "item_id": Str()}, required=("item_id",)),
        "conversation.item.delete": Obj({**_ENVELOPE, "item_id": Str()}, required=("item_id",)),
        "conversation.item.truncate": Obj(
            {**_ENVELOPE, "item_id": Str(), "content_index": Int(0), "audio_end_ms": Int(0)},
            required=("item_id", "content_index", "audio_end_ms"),
        ),
        "response.create": Obj({**_ENVELOPE, "response": Anything()}),
        "response.cancel": Obj({**_ENVELOPE, "response_id": Str()}),
    }


def item_spec(dialect_name: str) -> Spec:
    """An item in `conversation.item.create` (protocol reference §4.1)."""
    common = {"id": Str(), "type": Str(), "object": Enum("realtime.item"), "status": Str()}
    text = Obj({"type": Str(), "text": Str()}, required=("text",))
    audio = Obj({"type": Str(), "audio": Str(), "transcript": Nullable(Str())})
    contents: dict[str, Spec] = {
        "input_text": text,
        "input_audio": audio,
        "input_image": Obj({"type": Str(), "image_url": Str(), "detail": Str()}),
    }
    if dialect_name == "ga":
        contents.update({"output_text": text, "output_audio": audio})
    else:
        contents.update({"text": text, "audio": audio})
    message = Obj(
        {
            **common,
            "role": Enum("user", "assistant", "system"),
            "content": ListOf(Tagged("type", contents)),
        },
        required=("role", "content"),
    )
    function_call = Obj(
        {**common, "call_id": Str(), "name": Str(), "arguments": Str()},
        required=("name", "arguments"),
    )
    function_output = Obj(
        {**common, "call_id": Str(), "output": Str()}, required=("call_id", "output")
    )
    return Tagged(
        "type",
        {
            "message": message,
            "function_call": function_call,
            "function_call_output": function_output,
        },
    )
