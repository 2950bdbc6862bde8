"""Client intents -> wire event dicts, in either dialect.

Each function returns the JSON-ready dict of one client event. Most client events are spelled
the same in GA and beta; the ones that differ (`session.update`, `response.create`, assistant
text items) take the dialect. `event_id` is included when given: the server echoes it in
`error.event_id`, which is how an error is matched to the request that caused it.

These functions do not keep state; `client.RealtimeClient` decides *whether* to send (active
response, audio buffered, audio received) and assigns the ids.

Pure: standard library only.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from voicecli.protocol.dialects import Dialect, SessionConfig


__all__ = [
    "MESSAGE_ROLES",
    "audio_append",
    "audio_clear",
    "audio_commit",
    "function_output_item",
    "item_create",
    "item_delete",
    "item_retrieve",
    "item_truncate",
    "message_item",
    "response_cancel",
    "response_create",
    "session_update",
]

MESSAGE_ROLES = ("user", "system", "assistant")


def _event(event_type: str, event_id: str | None, **fields: Any) -> dict[str, Any]:
    wire: dict[str, Any] = {"type": event_type}
    if event_id is not None:
        wire["event_id"] = event_id
    wire.update(fields)
    return wire


def session_update(
    config: SessionConfig, dialect: Dialect, *, event_id: str | None = None
) -> dict[str, Any]:
    """`session.update`: GA nested with `type: "realtime"`, beta flat. Only set fields are sent."""
    return _event("session.update", event_id, session=dialect.encode_session(config))


def audio_append(audio: bytes, *, event_id: str | None = None) -> dict[str, Any]:
    """`input_audio_buffer.append` with the audio base64-encoded (bytes in the input format)."""
    return _event(
        "input_audio_buffer.append", event_id, audio=base64.b64encode(audio).decode("ascii")
    )


def audio_commit(*, event_id: str | None = None) -> dict[str, Any]:
    return _event("input_audio_buffer.commit", event_id)


def audio_clear(*, event_id: str | None = None) -> dict[str, Any]:
    return _event("input_audio_buffer.clear", event_id)


def message_item(
    text: str, role: str, dialect: Dialect, *, item_id: str | None = None
) -> dict[str, Any]:
    """A text message item. User and system text is `input_text`; assistant text is
    `output_text` (GA) or `text` (beta)."""
    if role not in MESSAGE_ROLES:
        raise ValueError(f"unknown message role {role!r}: choose one of {MESSAGE_ROLES}")
    content_type = dialect.assistant_text_content if role == "assistant" else "input_text"
    item: dict[str, Any] = {} if item_id is None else {"id": item_id}
    item.update(type="message", role=role, content=[{"type": content_type, "text": text}])
    return item


def function_output_item(
    call_id: str, output: str, *, item_id: str | None = None
) -> dict[str, Any]:
    """The result of a function call, as an item (`output` is usually JSON text)."""
    item: dict[str, Any] = {} if item_id is None else {"id": item_id}
    item.update(type="function_call_output", call_id=call_id, output=output)
    return item


def item_create(
    item: Mapping[str, Any],
    *,
    previous_item_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """`conversation.item.create`. `previous_item_id` inserts after that item (`"root"` = at
    the start); without it the item is appended."""
    fields: dict[str, Any] = {}
    if previous_item_id is not None:
        fields["previous_item_id"] = previous_item_id
    return _event("conversation.item.create", event_id, **fields, item=dict(item))


def item_truncate(
    item_id: str, content_index: int, audio_end_ms: int, *, event_id: str | None = None
) -> dict[str, Any]:
    return _event(
        "conversation.item.truncate",
        event_id,
        item_id=item_id,
        content_index=content_index,
        audio_end_ms=audio_end_ms,
    )


def item_delete(item_id: str, *, event_id: str | None = None) -> dict[str, Any]:
    return _event("conversation.item.delete", event_id, item_id=item_id)


def item_retrieve(item_id: str, *, event_id: str | None = None) -> dict[str, Any]:
    return _event("conversation.item.retrieve", event_id, item_id=item_id)


def response_create(
    dialect: Dialect,
    *,
    event_id: str | None = None,
    output_modalities: Sequence[str] | None = None,
    instructions: str | None = None,
    voice: str | None = None,
    output_audio_format: str | None = None,
    tools: Sequence[Mapping[str, Any]] | None = None,
    tool_choice: str | Mapping[str, Any] | None = None,
    max_output_tokens: int | str | None = None,
    conversation: str | None = None,
    metadata: Mapping[str, str] | None = None,
    input: Sequence[Mapping[str, Any]] | None = None,  # noqa: A002 - the wire name
    temperature: float | None = None,
) -> dict[str, Any]:
    """`response.create`, with a `response` object only when a parameter is given.

    `None` means "not sent". Names are neutral (GA); beta spellings are produced for beta:
    `modalities`, flat `voice` / `output_audio_format`, `max_response_output_tokens`.
    `temperature` exists only in beta and is dropped for GA. `conversation="none"` makes an
    out-of-band response that does not write to the conversation; `input=[]` gives it an
    empty context.
    """
    params: dict[str, Any] = {}
    if dialect.name == "ga":
        if output_modalities is not None:
            params["output_modalities"] = list(output_modalities)
        if instructions is not None:
            params["instructions"] = instructions
        audio_out: dict[str, Any] = {}
        if output_audio_format is not None:
            audio_out["format"] = dialect.format_object(output_audio_format)
        if voice is not None:
            audio_out["voice"] = voice
        if audio_out:
            params["audio"] = {"output": audio_out}
        if max_output_tokens is not None:
            params["max_output_tokens"] = max_output_tokens
    else:
        if output_modalities is not None:
            # Beta lists text alongside audio; audio output always carries a transcript.
            params["modalities"] = ["text", "audio"] if "audio" in output_modalities else ["text"]
        if instructions is not None:
            params["instructions"] = instructions
        if voice is not None:
            params["voice"] = voice
        if output_audio_format is not None:
            params["output_audio_format"] = output_audio_format
        if max_output_tokens is not None:
            params["max_response_output_tokens"] = max_output_tokens
        if temperature is not None:
            params["temperature"] = temperature
    if tools is not None:
        params["tools"] = [dict(tool) for tool in tools]
    if tool_choice is not None:
        params["tool_choice"] = tool_choice if isinstance(tool_choice, str) else dict(tool_choice)
    if conversation is not None:
        params["conversation"] = conversation
    if metadata is not None:
        params["metadata"] = dict(metadata)
    if input is not None:
        params["input"] = [dict(item) for item in input]
    return _event("response.create", event_id, **({"response": params} if params else {}))


def response_cancel(
    response_id: str | None = None, *, event_id: str | None = None
) -> dict[str, Any]:
    """`response.cancel`; without `response_id` the server cancels the default-conversation
    response in progress."""
    fields = {} if response_id is None else {"response_id": response_id}
    return _event("response.cancel", event_id, **fields)
