"""A schema oracle for Realtime events, built on the official `openai` package types (tests only).

`validate_client_event(obj, dialect)` and `validate_server_event(obj, dialect)` return a list of
problems; an empty list means the event is valid. `dialect` is `"ga"` or `"beta"`:

- GA uses `openai.types.realtime` (`RealtimeClientEvent` / `RealtimeServerEvent`),
- beta uses `openai.types.beta.realtime` (the same union names, frozen beta shapes).

Two checks run on every event:

1. pydantic validation against the union member selected by `type` (required fields, value
   types, enum literals);
2. a recursive walk of the dict along the model fields that flags every key the types do not
   define. The openai models accept unknown keys silently, so without the walk a misspelled
   field (`"instruction"`) would pass. Where a field is a union, the walk follows the member
   that validates the value (e.g. a user message vs. an assistant message item).

A few keys seen in real traffic but missing from the SDK types are allowed explicitly in
`OBSERVED_UNTYPED_KEYS`, each with its source, so the list of exceptions stays visible.
"""

from __future__ import annotations

import types
import typing
from collections import abc
from collections.abc import Mapping
from functools import cache
from typing import Any

import pydantic
from openai.types.beta.realtime import realtime_client_event as beta_client
from openai.types.beta.realtime import realtime_server_event as beta_server
from openai.types.realtime import realtime_client_event as ga_client
from openai.types.realtime import realtime_server_event as ga_server


__all__ = ["OBSERVED_UNTYPED_KEYS", "validate_client_event", "validate_server_event"]

# (dialect, event type) -> dotted paths of keys that real servers send but the SDK types lack.
# Sources are in docs/realtime-protocol.md: GA text and transcript deltas carry `obfuscation`
# (random padding) [§5, §10.1, LOG-GA, OAS]; the session object in `session.created` and
# `session.updated` carries `object`, `id` and `expires_at` in both dialects [§3.1, §3.2, §10].
_SESSION_KEYS = frozenset({"session.object", "session.id", "session.expires_at"})
OBSERVED_UNTYPED_KEYS: Mapping[tuple[str, str], frozenset[str]] = {
    ("ga", "response.output_audio_transcript.delta"): frozenset({"obfuscation"}),
    ("ga", "response.output_text.delta"): frozenset({"obfuscation"}),
    ("ga", "conversation.item.input_audio_transcription.delta"): frozenset({"obfuscation"}),
    ("ga", "session.created"): _SESSION_KEYS,
    ("ga", "session.updated"): _SESSION_KEYS,
    ("beta", "session.created"): _SESSION_KEYS,
    ("beta", "session.updated"): _SESSION_KEYS,
}

_UNIONS = {
    ("client", "ga"): ga_client.RealtimeClientEvent,
    ("client", "beta"): beta_client.RealtimeClientEvent,
    ("server", "ga"): ga_server.RealtimeServerEvent,
    ("server", "beta"): beta_server.RealtimeServerEvent,
}


def validate_client_event(obj: Any, dialect: str) -> list[str]:
    """Problems with a client -> server event in `dialect` (`ga` / `beta`); `[]` if valid."""
    return _validate(obj, "client", dialect)


def validate_server_event(obj: Any, dialect: str) -> list[str]:
    """Problems with a server -> client event in `dialect` (`ga` / `beta`); `[]` if valid."""
    return _validate(obj, "server", dialect)


def _validate(obj: Any, side: str, dialect: str) -> list[str]:
    if (side, dialect) not in _UNIONS:
        raise ValueError(f"unknown dialect {dialect!r}: choose 'ga' or 'beta'")
    if not isinstance(obj, dict):
        return [f"event is a {type(obj).__name__}, not an object"]
    event_type = obj.get("type")
    if not isinstance(event_type, str):
        return ["missing or non-string 'type'"]
    candidates = _members_by_type(side, dialect).get(event_type)
    if not candidates:
        return [f"unknown {side} event type {event_type!r} in the {dialect} dialect"]
    allowed = OBSERVED_UNTYPED_KEYS.get((dialect, event_type), frozenset())
    best: list[str] | None = None
    # A `type` literal may be shared by several members; the event is valid if one accepts it.
    for model in candidates:
        problems = _pydantic_problems(model, obj)
        problems += _unknown_keys(obj, model, "", allowed)
        if best is None or len(problems) < len(best):
            best = problems
        if not problems:
            break
    return best or []


@cache
def _members_by_type(side: str, dialect: str) -> dict[str, list[type[pydantic.BaseModel]]]:
    members: dict[str, list[type[pydantic.BaseModel]]] = {}
    for model in _union_members(_UNIONS[(side, dialect)]):
        for literal in typing.get_args(model.model_fields["type"].annotation):
            members.setdefault(literal, []).append(model)
    return members


@cache
def _adapter(annotation: Any) -> pydantic.TypeAdapter[Any]:
    return pydantic.TypeAdapter(annotation)


def _pydantic_problems(annotation: Any, value: Any) -> list[str]:
    try:
        _adapter(annotation).validate_python(value)
    except pydantic.ValidationError as error:
        return [
            f"{'.'.join(str(part) for part in problem['loc']) or '<root>'}: {problem['msg']}"
            for problem in error.errors()
        ]
    return []


def _union_members(annotation: Any) -> tuple[Any, ...]:
    annotation = _strip_annotated(annotation)
    return typing.get_args(annotation)


def _strip_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel)


def _unknown_keys(
    value: Any, annotation: Any, path: str, allowed: frozenset[str] = frozenset()
) -> list[str]:
    """Keys in `value` that `annotation` does not define, found recursively.

    `allowed` holds dotted paths (`session.id`) that are accepted although untyped.
    """
    annotation = _strip_annotated(annotation)
    origin = typing.get_origin(annotation)
    if _is_model(annotation):
        if not isinstance(value, dict):
            return []  # pydantic already reported the wrong type
        fields = {(field.alias or name): field for name, field in annotation.model_fields.items()}
        problems: list[str] = []
        for key, item in value.items():
            where = f"{path}.{key}" if path else key
            if key in fields:
                problems += _unknown_keys(item, fields[key].annotation, where, allowed)
            elif where not in allowed:
                problems.append(f"{where}: unknown field (not in {annotation.__name__})")
        return problems
    if origin in (typing.Union, types.UnionType):
        if value is None:
            return []
        members = [m for m in typing.get_args(annotation) if m is not type(None)]
        if len(members) == 1:
            return _unknown_keys(value, members[0], path, allowed)
        # Follow the member that accepts the value; among several, the one that explains the
        # most keys. If none accepts it, pydantic has already reported the value itself.
        scored = []
        for index, member in enumerate(members):
            accepted = not _pydantic_problems(member, value)
            unknown = _unknown_keys(value, member, path, allowed)
            scored.append((not accepted, len(unknown), index, unknown))
        scored.sort()
        return scored[0][3]
    if origin in (list, tuple, set, frozenset, abc.Sequence, abc.Iterable):
        args = typing.get_args(annotation)
        if not args or not isinstance(value, list):
            return []
        problems = []
        for index, item in enumerate(value):
            problems += _unknown_keys(item, args[0], f"{path}[{index}]", allowed)
        return problems
    if origin in (dict, abc.Mapping):
        args = typing.get_args(annotation)
        if len(args) != 2 or not isinstance(value, dict):
            return []
        problems = []
        for key, item in value.items():
            problems += _unknown_keys(item, args[1], f"{path}.{key}", allowed)
        return problems
    # Scalars, Literals, `object` and `Any` (e.g. a tool's JSON-schema `parameters`).
    return []
