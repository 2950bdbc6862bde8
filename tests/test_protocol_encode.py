"""Every client event the protocol core can produce is valid in its dialect.

Each frame comes out of `RealtimeClient.data_to_send()` (or `encode` directly for options the
client passes through) and is checked by the schema oracle built on the official `openai`
types, which also flags every key the types do not define.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.schema_oracle import validate_client_event
from voicecli.protocol import (
    BETA,
    GA,
    UNSET,
    Dialect,
    RealtimeClient,
    SessionConfig,
    Transcription,
    TurnDetection,
    encode,
    handshake_headers,
)


DIALECTS = [GA, BETA]
TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
TURN_DETECTIONS = {
    "server_vad": TurnDetection(
        type="server_vad",
        threshold=0.6,
        prefix_padding_ms=250,
        silence_duration_ms=400,
        idle_timeout_ms=8000,
        create_response=True,
        interrupt_response=False,
    ),
    "semantic_vad": TurnDetection(
        type="semantic_vad", eagerness="low", create_response=False, interrupt_response=True
    ),
    "off": None,
}
FORMATS = ["pcm16", "g711_ulaw", "g711_alaw"]


def _frames(client: RealtimeClient) -> list[dict[str, Any]]:
    return [json.loads(text) for text in client.data_to_send()]


def _only_frame(client: RealtimeClient) -> dict[str, Any]:
    frames = _frames(client)
    assert len(frames) == 1, frames
    return frames[0]


def _assert_valid(frame: dict[str, Any], dialect: Dialect) -> None:
    assert validate_client_event(frame, dialect.name) == [], frame


def _full_config(dialect: Dialect, turn_detection: TurnDetection | None) -> SessionConfig:
    return SessionConfig(
        instructions="Be brief.",
        voice="marin" if dialect is GA else "sage",
        output_modalities=("audio",),
        input_audio_format="pcm16",
        output_audio_format="g711_alaw",
        transcription=Transcription(model="whisper-1", language="en", prompt="names: Ada"),
        noise_reduction="far_field",
        turn_detection=turn_detection,
        tools=(TOOL,),
        tool_choice="required",
        max_output_tokens=512,
        speed=1.25,
        temperature=0.7,
    )


# --- session.update ------------------------------------------------------------------------


@pytest.mark.parametrize("turn", TURN_DETECTIONS)
@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_session_update_with_every_field_is_valid(dialect: Dialect, turn: str) -> None:
    client = RealtimeClient(dialect)
    config = _full_config(dialect, TURN_DETECTIONS[turn])
    client.update_session(config)
    frame = _only_frame(client)
    _assert_valid(frame, dialect)
    session = frame["session"]
    if dialect is GA:
        assert session["type"] == "realtime"
        assert session["audio"]["output"]["format"] == {"type": "audio/pcma"}
        assert "temperature" not in session  # GA has no temperature
    else:
        assert session["output_audio_format"] == "g711_alaw"
        assert session["temperature"] == 0.7
    # What was sent reads back as what was asked (GA drops temperature; beta has no idle
    # timeout), so no field is lost or renamed on the way.
    expected = config
    if dialect is GA:
        expected = SessionConfig(**{**_fields(config), "temperature": UNSET})
    elif TURN_DETECTIONS[turn] is not None:
        td = _fields(config.turn_detection)
        expected = SessionConfig(
            **{
                **_fields(config),
                "turn_detection": TurnDetection(**{**td, "idle_timeout_ms": None}),
            }
        )
    assert dialect.decode_session(session) == expected


def _fields(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__dataclass_fields__}


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_session_update_clears_are_valid(dialect: Dialect) -> None:
    client = RealtimeClient(dialect)
    client.update_session(
        SessionConfig(instructions="", tools=(), transcription=None, noise_reduction=None)
    )
    client.update_session(SessionConfig(turn_detection=None))
    first, second = _frames(client)
    for frame in (first, second):
        _assert_valid(frame, dialect)
    if dialect is GA:
        assert first["session"] == {
            "type": "realtime",
            "instructions": "",
            "audio": {"input": {"transcription": None, "noise_reduction": None}},
            "tools": [],
        }
        assert second["session"]["audio"]["input"] == {"turn_detection": None}
    else:
        assert first["session"] == {
            "instructions": "",
            "input_audio_transcription": None,
            "input_audio_noise_reduction": None,
            "tools": [],
        }
        assert second["session"] == {"turn_detection": None}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_session_update_audio_formats_are_valid(dialect: Dialect, fmt: str) -> None:
    client = RealtimeClient(dialect)
    client.update_session(SessionConfig(input_audio_format=fmt, output_audio_format=fmt))
    frame = _only_frame(client)
    _assert_valid(frame, dialect)
    assert dialect.decode_session(frame["session"]) == SessionConfig(
        input_audio_format=fmt, output_audio_format=fmt
    )


@pytest.mark.parametrize("modalities", [("audio",), ("text",)])
@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_session_update_modalities_and_token_limits(
    dialect: Dialect, modalities: tuple[str, ...]
) -> None:
    client = RealtimeClient(dialect)
    client.update_session(SessionConfig(output_modalities=modalities, max_output_tokens="inf"))
    frame = _only_frame(client)
    _assert_valid(frame, dialect)
    if dialect is GA:
        assert frame["session"]["output_modalities"] == list(modalities)
    else:
        assert frame["session"]["modalities"] == (
            ["text", "audio"] if modalities == ("audio",) else ["text"]
        )


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_session_update_without_fields_is_valid(dialect: Dialect) -> None:
    client = RealtimeClient(dialect)
    client.update_session(SessionConfig())
    frame = _only_frame(client)
    _assert_valid(frame, dialect)
    assert frame["session"] == ({"type": "realtime"} if dialect is GA else {})


def test_ga_function_tool_choice_object_is_valid() -> None:
    client = RealtimeClient(GA)
    client.update_session(SessionConfig(tool_choice={"type": "function", "name": "get_weather"}))
    _assert_valid(_only_frame(client), GA)


def test_session_extra_fields_pass_through() -> None:
    client = RealtimeClient(GA)
    client.update_session(SessionConfig(extra={"truncation": "disabled"}))
    frame = _only_frame(client)
    _assert_valid(frame, GA)
    assert frame["session"]["truncation"] == "disabled"


# --- input audio, items --------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_input_audio_events_are_valid(dialect: Dialect) -> None:
    client = RealtimeClient(dialect)
    pcm = bytes(range(256)) * 19  # 4,864 bytes = 101.3 ms of PCM16
    client.append_audio(pcm)
    assert client.commit_audio()
    client.clear_audio()
    append, commit, clear = _frames(client)
    for frame in (append, commit, clear):
        _assert_valid(frame, dialect)
    assert base64.b64decode(append["audio"]) == pcm
    assert (commit["type"], clear["type"]) == (
        "input_audio_buffer.commit",
        "input_audio_buffer.clear",
    )


@pytest.mark.parametrize("assign_ids", [False, True])
@pytest.mark.parametrize("role", ["user", "system", "assistant"])
@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_text_items_are_valid(dialect: Dialect, role: str, assign_ids: bool) -> None:
    client = RealtimeClient(dialect, id_prefix="t", assign_item_ids=assign_ids)
    item_id = client.send_text("Hello there", role=role)
    client.send_text("Inserted first", role=role, previous_item_id="root")
    appended, inserted = _frames(client)
    for frame in (appended, inserted):
        _assert_valid(frame, dialect)
    content = appended["item"]["content"]
    expected_type = "input_text" if role != "assistant" else dialect.assistant_text_content
    assert content == [{"type": expected_type, "text": "Hello there"}]
    assert appended["item"]["role"] == role
    assert "previous_item_id" not in appended
    assert inserted["previous_item_id"] == "root"
    assert item_id == appended["item"].get("id")
    assert (item_id is not None) == assign_ids


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_function_output_item_is_valid(dialect: Dialect) -> None:
    client = RealtimeClient(dialect)
    client.send_function_output("call_c01T5GOBUSZGi6HW", '{"temp_c": 21}')
    frame = _only_frame(client)
    _assert_valid(frame, dialect)
    assert frame["item"] == {
        "type": "function_call_output",
        "call_id": "call_c01T5GOBUSZGi6HW",
        "output": '{"temp_c": 21}',
    }


def _with_assistant_audio(dialect: Dialect, ms: int) -> RealtimeClient:
    """A client that has received `ms` of assistant audio for item_a / part 0."""
    client = RealtimeClient(dialect)
    audio_type = "response.output_audio.delta" if dialect is GA else "response.audio.delta"
    client.receive_text(json.dumps({"type": "response.created", "response": {"id": "resp_1"}}))
    client.receive_text(
        json.dumps(
            {
                "type": "response.output_item.added",
                "response_id": "resp_1",
                "output_index": 0,
                "item": {"id": "item_a", "type": "message", "role": "assistant", "content": []},
            }
        )
    )
    client.receive_text(
        json.dumps(
            {
                "type": audio_type,
                "response_id": "resp_1",
                "item_id": "item_a",
                "output_index": 0,
                "content_index": 0,
                "delta": base64.b64encode(bytes(48 * ms)).decode(),
            }
        )
    )
    client.events_received()
    return client


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_item_truncate_delete_retrieve_are_valid(dialect: Dialect) -> None:
    client = _with_assistant_audio(dialect, ms=300)
    assert client.truncate("item_a", 0, 250) == 250
    assert client.retrieve_item("item_a")
    assert client.delete_item("item_a")
    truncate, retrieve, delete = _frames(client)
    for frame in (truncate, retrieve, delete):
        _assert_valid(frame, dialect)
    assert truncate["audio_end_ms"] == 250 and truncate["content_index"] == 0
    assert retrieve["item_id"] == delete["item_id"] == "item_a"


# --- responses ----------------------------------------------------------------------------

RESPONSE_OPTIONS: dict[str, dict[str, Any]] = {
    "none": {},
    "output_modalities_text": {"output_modalities": ["text"]},
    "output_modalities_audio": {"output_modalities": ["audio"]},
    "instructions": {"instructions": "Answer in French."},
    "voice": {"voice": "alloy"},
    "output_audio_format": {"output_audio_format": "g711_ulaw"},
    "tools": {"tools": [TOOL], "tool_choice": "auto"},
    "tool_choice_none": {"tool_choice": "none"},
    "max_output_tokens": {"max_output_tokens": 200},
    "max_output_tokens_inf": {"max_output_tokens": "inf"},
    "conversation_auto": {"conversation": "auto"},
    "metadata": {"metadata": {"purpose": "summary"}},
    "temperature": {"temperature": 0.9},
}


@pytest.mark.parametrize("option", RESPONSE_OPTIONS)
@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_response_create_options_are_valid(dialect: Dialect, option: str) -> None:
    client = RealtimeClient(dialect)
    assert client.create_response(**RESPONSE_OPTIONS[option])
    frame = _only_frame(client)
    _assert_valid(frame, dialect)
    if option == "none":
        assert "response" not in frame
    if option == "temperature" and dialect is GA:
        assert "response" not in frame  # dropped: GA has no temperature


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_out_of_band_response_with_every_option_is_valid(dialect: Dialect) -> None:
    client = RealtimeClient(dialect)
    params = {key: value for option in RESPONSE_OPTIONS.values() for key, value in option.items()}
    params.update(
        conversation="none",
        input=[encode.message_item("Summarise.", "user", dialect)],
        tool_choice="required",
    )
    assert client.create_response(**params)
    frame = _only_frame(client)
    _assert_valid(frame, dialect)
    response = frame["response"]
    assert response["conversation"] == "none"
    if dialect is GA:
        assert response["audio"] == {"output": {"format": {"type": "audio/pcmu"}, "voice": "alloy"}}
        assert response["max_output_tokens"] == "inf"
    else:
        assert (response["voice"], response["output_audio_format"]) == ("alloy", "g711_ulaw")
        assert response["max_response_output_tokens"] == "inf"


def test_ga_response_tool_choice_object_is_valid() -> None:
    client = RealtimeClient(GA)
    client.create_response(tool_choice={"type": "function", "name": "get_weather"}, tools=[TOOL])
    _assert_valid(_only_frame(client), GA)


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_response_cancel_is_valid_with_and_without_id(dialect: Dialect) -> None:
    client = RealtimeClient(dialect)
    client.create_response()
    client.cancel_response()  # requested, not created yet: no id to name
    _frames(client)
    client.receive_text(json.dumps({"type": "response.created", "response": {"id": "resp_9"}}))
    client.receive_text(json.dumps({"type": "response.done", "response": {"id": "resp_9"}}))
    client.receive_text(json.dumps({"type": "response.created", "response": {"id": "resp_10"}}))
    client.cancel_response()
    without_id = encode.response_cancel(event_id="evt_x")
    with_id = _only_frame(client)
    for frame in (without_id, with_id):
        _assert_valid(frame, dialect)
    assert with_id["response_id"] == "resp_10"
    assert "response_id" not in without_id


# --- ids and misuse ------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_every_frame_has_a_unique_event_id_that_names_its_type(dialect: Dialect) -> None:
    client = _with_assistant_audio(dialect, ms=200)
    client.update_session(SessionConfig(instructions="x"))
    client.append_audio(bytes(4800))
    client.commit_audio()
    client.clear_audio()
    client.send_text("hi")
    client.send_function_output("call_1", "{}")
    assert client.cancel_response()  # resp_1 is still running
    client.truncate("item_a", 0, 100)
    client.delete_item("item_a")
    client.receive_text(json.dumps({"type": "response.done", "response": {"id": "resp_1"}}))
    assert client.create_response()
    frames = _frames(client)
    assert len(frames) == 10
    ids = [frame["event_id"] for frame in frames]
    assert len(set(ids)) == len(ids)
    for frame in frames:
        _assert_valid(frame, dialect)
        assert client.sent_event_type(frame["event_id"]) == frame["type"]


def test_misuse_fails_loudly() -> None:
    client = RealtimeClient(GA)
    with pytest.raises(ValueError, match="role"):
        client.send_text("hi", role="narrator")
    with pytest.raises(TypeError):
        client.create_response(modalities=["text"])  # the beta spelling is not a parameter
    assert client.data_to_send() == []


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_handshake_headers(dialect: Dialect) -> None:
    headers = handshake_headers("sk-test-123", dialect)
    assert headers["Authorization"] == "Bearer sk-test-123"
    assert ("OpenAI-Beta" in headers) == (dialect is BETA)
