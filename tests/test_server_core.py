"""The local server's protocol core, driven directly (no sockets): event order in both
dialects, every error path, items, truncation, transcription, usage, pacing and timers.

Every event the core emits here is also checked against the official openai types
(tests/schema_oracle.py) by the harness, so shape mistakes fail the test that caused them.
"""

from __future__ import annotations

import base64
import json
import random
import re
from typing import Any

import pytest

from tests.schema_oracle import validate_server_event
from voicecli.protocol.dialects import BETA, GA, Dialect, TurnDetection
from voicecli.server import audio
from voicecli.server.core import Close, ComposeReply, CoreSettings, Send, ServerCore
from voicecli.server.responders import (
    EchoResponder,
    FunctionCall,
    Reply,
    Responder,
    ScriptedResponder,
    Turn,
)


WALL_CLOCK = 1_767_225_600.0
ID_FORMATS = {
    "event_id": r"event_[A-Za-z0-9]{21}",
    "item_id": r"item_[A-Za-z0-9]{21}",
    "response_id": r"resp_[A-Za-z0-9]{21}",
    "call_id": r"call_[A-Za-z0-9]{16}",
}


class Harness:
    """A ServerCore with a synchronous responder: every ComposeReply is answered at once."""

    def __init__(
        self,
        dialect: Dialect = GA,
        responder: Responder | None = None,
        answer_replies: bool = True,
        **settings: Any,
    ) -> None:
        settings.setdefault("pace", 0)
        settings.setdefault("turn_detection", None)
        self.dialect = dialect
        self.responder = responder or EchoResponder()
        self.core = ServerCore(
            dialect,
            CoreSettings(**settings),
            transcribe=self.responder.transcribe,
            rng=random.Random(7),
            wall_clock_s=WALL_CLOCK,
        )
        self.answer_replies = answer_replies
        self.pending: list[ComposeReply] = []
        self.turns: list[Turn] = []
        self.now = 0.0
        self.events: list[dict[str, Any]] = []
        self.closed: Close | None = None
        self.created = self._take(self.core.start(0.0))

    def _take(self, actions: list[Any]) -> list[dict[str, Any]]:
        new: list[dict[str, Any]] = []
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            if isinstance(action, Send):
                problems = validate_server_event(action.event, self.dialect.name)
                assert problems == [], (action.event["type"], problems)
                new.append(action.event)
            elif isinstance(action, Close):
                self.closed = action
            elif isinstance(action, ComposeReply):
                self.turns.append(action.turn)
                if self.answer_replies:
                    reply = self.responder.reply(action.turn)
                    queue += self.core.reply_ready(action.response_id, reply, self.now)
                else:
                    self.pending.append(action)
        self.events += new
        return new

    def send(self, **event: Any) -> list[dict[str, Any]]:
        return self.send_text(json.dumps(event))

    def send_text(self, text: str | bytes) -> list[dict[str, Any]]:
        return self._take(self.core.receive(text, self.now))

    def answer(self, reply: Reply | None = None) -> list[dict[str, Any]]:
        compose = self.pending.pop(0)
        reply = reply or self.responder.reply(compose.turn)
        return self._take(self.core.reply_ready(compose.response_id, reply, self.now))

    def advance_to(self, now_ms: float) -> list[dict[str, Any]]:
        self.now = now_ms
        return self._take(self.core.advance(now_ms))

    def append(self, pcm: bytes, chunk: int = 4800) -> list[dict[str, Any]]:
        new: list[dict[str, Any]] = []
        for start in range(0, len(pcm), chunk):
            data = base64.b64encode(pcm[start : start + chunk]).decode()
            new += self.send(type="input_audio_buffer.append", audio=data)
        return new

    def text_turn(self, text: str = "Hello there") -> list[dict[str, Any]]:
        content = [{"type": "input_text", "text": text}]
        new = self.send(
            type="conversation.item.create",
            item={"type": "message", "role": "user", "content": content},
        )
        return new + self.send(type="response.create")


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


def without_deltas(events: list[dict[str, Any]]) -> list[str]:
    return [t for t in types(events) if not t.endswith(".delta")]


def only(events: list[dict[str, Any]], event_type: str) -> dict[str, Any]:
    found = [event for event in events if event["type"] == event_type]
    assert len(found) == 1, (event_type, types(events))
    return found[0]


def error_of(events: list[dict[str, Any]]) -> dict[str, Any]:
    return only(events, "error")["error"]


def voiced_turn(speech_ms: float = 1000, lead_ms: float = 500, tail_ms: float = 700) -> bytes:
    return audio.silence(lead_ms) + audio.tone(speech_ms) + audio.silence(tail_ms)


def session_update(dialect: Dialect, ga: dict[str, Any], beta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "session.update", "session": ga if dialect is GA else beta}


# --- session ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dialect", [GA, BETA], ids=["ga", "beta"])
def test_session_created_comes_first_with_real_ids_and_expiry(dialect: Dialect):
    harness = Harness(dialect, expire_after_s=1800)
    created = only(harness.created, "session.created")
    session = created["session"]
    assert re.fullmatch(r"sess_[A-Za-z0-9]{21}", session["id"])
    assert re.fullmatch(ID_FORMATS["event_id"], created["event_id"])
    assert session["object"] == "realtime.session"
    assert session["expires_at"] == int(WALL_CLOCK) + 1800
    assert session["model"] == "gpt-realtime"
    if dialect is GA:
        assert session["type"] == "realtime"
        assert session["audio"]["output"]["format"] == {"type": "audio/pcm", "rate": 24000}
        assert session["audio"]["input"]["turn_detection"] is None  # harness default: manual
    else:
        assert session["input_audio_format"] == "pcm16"
        assert session["modalities"] == ["text", "audio"]


def test_default_turn_detection_is_server_vad_as_the_real_server_reports_it():
    harness = Harness(GA, turn_detection=TurnDetection())
    turn_detection = harness.created[0]["session"]["audio"]["input"]["turn_detection"]
    assert turn_detection == {
        "type": "server_vad",
        "threshold": 0.5,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 200,
        "idle_timeout_ms": None,
        "create_response": True,
        "interrupt_response": True,
    }


def test_conversation_created_is_optional():
    assert types(Harness(GA).created) == ["session.created"]
    harness = Harness(GA, conversation_created=True)
    assert types(harness.created) == ["session.created", "conversation.created"]
    assert harness.created[1]["conversation"]["id"] == harness.core.conversation_id


def test_ga_update_without_session_type_is_refused_with_the_real_error():
    harness = Harness(GA)
    update = {"instructions": "Be brief."}
    events = harness.send(type="session.update", event_id="evt_cli_1", session=update)
    assert error_of(events) == {
        "type": "invalid_request_error",
        "code": "missing_required_parameter",
        "message": "Missing required parameter: 'session.type'.",
        "param": "session.type",
        "event_id": "evt_cli_1",
    }


def test_beta_shaped_update_sent_to_ga_fails_like_the_real_one():
    harness = Harness(GA)
    # Without `type` too: the unknown field is reported first, as the live probes saw.
    error = error_of(harness.send(type="session.update", session={"modalities": ["text"]}))
    assert error["code"] == "unknown_parameter"
    error = error_of(
        harness.send(type="session.update", session={"type": "realtime", "modalities": ["text"]})
    )
    assert error["code"] == "unknown_parameter"
    assert error["message"] == "Unknown parameter: 'session.modalities'."
    assert error["param"] == "session.modalities"
    nested = {"type": "realtime", "audio": {"output": {"voice": "marin", "pitch": 2}}}
    error = error_of(harness.send(type="session.update", session=nested))
    assert error["param"] == "session.audio.output.pitch"


def test_ga_shaped_update_sent_to_beta_is_refused():
    harness = Harness(BETA)
    error = error_of(harness.send(type="session.update", session={"type": "realtime"}))
    assert (error["code"], error["param"]) == ("unknown_parameter", "session.type")


@pytest.mark.parametrize(
    ("dialect", "session", "code", "param"),
    [
        (
            GA,
            {"type": "realtime", "audio": {"output": {"voice": "bob"}}},
            "invalid_value",
            "session.audio.output.voice",
        ),
        (
            GA,
            {"type": "realtime", "output_modalities": ["video"]},
            "invalid_value",
            "session.output_modalities[0]",
        ),
        (
            GA,
            {"type": "realtime", "output_modalities": ["text", "audio"]},
            "invalid_value",
            "session.output_modalities",
        ),
        (GA, {"type": "realtime", "instructions": 5}, "invalid_type", "session.instructions"),
        (GA, {"type": "realtime", "temperature": 0.8}, "unknown_parameter", "session.temperature"),
        (
            GA,
            {"type": "realtime", "max_output_tokens": 5000},
            "integer_above_max_value",
            "session.max_output_tokens",
        ),
        (GA, {"type": "chat"}, "invalid_value", "session.type"),
        (GA, {"type": "transcription"}, "invalid_value", "session.type"),
        (
            GA,
            {"type": "realtime", "audio": {"input": {"turn_detection": {"threshold": 0.2}}}},
            "missing_required_parameter",
            "session.audio.input.turn_detection.type",
        ),
        (
            GA,
            {
                "type": "realtime",
                "audio": {
                    "input": {
                        "turn_detection": {"type": "semantic_vad", "silence_duration_ms": 100}
                    }
                },
            },
            "unknown_parameter",
            "session.audio.input.turn_detection.silence_duration_ms",
        ),
        (
            GA,
            {
                "type": "realtime",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}},
            },
            "invalid_value",
            "session.audio.input.format.rate",
        ),
        (BETA, {"voice": "bob"}, "invalid_value", "session.voice"),
        (BETA, {"temperature": 2}, "decimal_above_max_value", "session.temperature"),
        (BETA, {"input_audio_format": "mp3"}, "invalid_value", "session.input_audio_format"),
        (
            BETA,
            {"turn_detection": {"type": "server_vad", "threshold": "high"}},
            "invalid_type",
            "session.turn_detection.threshold",
        ),
        (
            BETA,
            {"tools": [{"type": "function"}]},
            "missing_required_parameter",
            "session.tools[0].name",
        ),
    ],
)
def test_bad_session_updates_get_the_real_error_codes(dialect, session, code, param):
    harness = Harness(dialect)
    error = error_of(harness.send(type="session.update", session=session))
    assert (error["code"], error["param"]) == (code, param)
    assert error["type"] == "invalid_request_error"


def test_invalid_value_lists_the_supported_values():
    harness = Harness(BETA)
    error = error_of(harness.send(type="session.update", session={"input_audio_format": "mp3"}))
    assert error["message"] == (
        "Invalid value: 'mp3'. Supported values are: 'pcm16', 'g711_ulaw', and 'g711_alaw'."
    )


def test_ga_update_merges_only_the_fields_present_and_echoes_the_full_config():
    harness = Harness(GA)
    first = {
        "type": "realtime",
        "instructions": "Be brief.",
        "audio": {
            "input": {"transcription": {"model": "gpt-4o-mini-transcribe"}},
            "output": {"voice": "marin"},
        },
    }
    updated = only(harness.send(type="session.update", session=first), "session.updated")
    session = updated["session"]
    assert session["instructions"] == "Be brief."
    assert session["audio"]["output"] == {
        "format": {"type": "audio/pcm", "rate": 24000},
        "voice": "marin",
        "speed": 1.0,
    }
    assert session["audio"]["input"]["transcription"]["model"] == "gpt-4o-mini-transcribe"
    second = {"type": "realtime", "audio": {"input": {"turn_detection": {"type": "server_vad"}}}}
    session = only(harness.send(type="session.update", session=second), "session.updated")[
        "session"
    ]
    assert session["instructions"] == "Be brief."  # untouched
    assert session["audio"]["output"]["voice"] == "marin"
    assert session["audio"]["input"]["turn_detection"]["silence_duration_ms"] == 200
    assert session["audio"]["input"]["turn_detection"]["create_response"] is True
    assert session["id"] == harness.created[0]["session"]["id"]


def test_beta_update_merges_and_answers_in_the_flat_shape():
    harness = Harness(BETA)
    update = {"voice": "sage", "turn_detection": {"type": "semantic_vad", "eagerness": "high"}}
    session = only(harness.send(type="session.update", session=update), "session.updated")[
        "session"
    ]
    assert session["voice"] == "sage"
    assert session["turn_detection"] == {
        "type": "semantic_vad",
        "eagerness": "high",
        "create_response": True,
        "interrupt_response": True,
    }
    assert session["temperature"] == 0.8
    assert "audio" not in session


def test_voice_cannot_change_after_audio_output():
    harness = Harness(GA)
    set_voice = {"type": "realtime", "audio": {"output": {"voice": "ash"}}}
    assert types(harness.send(type="session.update", session=set_voice)) == ["session.updated"]
    harness.text_turn()
    assert types(harness.send(type="session.update", session=set_voice)) == ["session.updated"]
    set_voice["audio"]["output"]["voice"] = "cedar"
    error = error_of(harness.send(type="session.update", session=set_voice))
    assert error["code"] == "cannot_update_voice"


# --- framing errors ---------------------------------------------------------------------------


def test_unknown_event_type_is_an_invalid_value_on_param_type():
    harness = Harness(GA)
    error = error_of(harness.send(type="scooby.dooby.doo", event_id="x1"))
    assert (error["code"], error["param"], error["event_id"]) == ("invalid_value", "type", "x1")
    assert error["message"].startswith("Invalid value: 'scooby.dooby.doo'. Supported values are:")


def test_missing_type_malformed_json_and_binary_frames_get_errors_and_the_session_goes_on():
    harness = Harness(GA)
    assert error_of(harness.send(event_id="x"))["message"] == "The 'type' field is missing."
    assert error_of(harness.send(event_id="x"))["code"] == "invalid_event"
    assert error_of(harness.send_text("{not json"))["code"] == "invalid_json"
    assert error_of(harness.send_text("[1, 2]"))["code"] == "invalid_event"
    assert error_of(harness.send_text(b"\x00\x01"))["code"] == "invalid_event"
    assert harness.closed is None
    assert "response.done" in types(harness.text_turn())


def test_unknown_fields_and_missing_fields_in_client_events():
    harness = Harness(GA)
    error = error_of(harness.send(type="input_audio_buffer.commit", extra=1))
    assert (error["code"], error["message"]) == ("unknown_parameter", "Unknown parameter: 'extra'.")
    error = error_of(harness.send(type="conversation.item.truncate", item_id="item_x"))
    assert (error["code"], error["param"]) == ("missing_required_parameter", "content_index")
    error = error_of(harness.send(type="response.create", response={"voice": "alloy"}))
    assert (error["code"], error["param"]) == ("unknown_parameter", "response.voice")


# --- input audio buffer -----------------------------------------------------------------------


@pytest.mark.parametrize(("ms", "shown"), [(0, "0.00"), (50, "50.00"), (99.5, "99.50")])
def test_commit_needs_100_ms_with_the_exact_message(ms: float, shown: str):
    harness = Harness(GA)
    harness.append(audio.silence(ms))
    error = error_of(harness.send(type="input_audio_buffer.commit", event_id="commit_10"))
    assert error == {
        "type": "invalid_request_error",
        "code": "input_audio_buffer_commit_empty",
        "message": "Error committing input audio buffer: buffer too small. Expected at least "
        f"100ms of audio, but buffer only has {shown}ms of audio.",
        "param": None,
        "event_id": "commit_10",
    }


@pytest.mark.parametrize("dialect", [GA, BETA], ids=["ga", "beta"])
def test_manual_commit_creates_the_user_item_but_no_response(dialect: Dialect):
    harness = Harness(dialect)
    assert harness.append(audio.tone(300)) == []  # appends are silent
    events = harness.send(type="input_audio_buffer.commit")
    expected = ["input_audio_buffer.committed", "conversation.item.added", "conversation.item.done"]
    if dialect is BETA:
        expected = ["input_audio_buffer.committed", "conversation.item.created"]
    assert types(events) == expected
    committed = events[0]
    assert committed["previous_item_id"] is None
    item = events[1]["item"]
    assert item["id"] == committed["item_id"]
    assert item["content"] == [{"type": "input_audio", "transcript": None}]
    assert item["status"] == "completed"
    assert ("object" in item) is (dialect is BETA)


def test_clear_empties_the_buffer():
    harness = Harness(GA)
    harness.append(audio.tone(300))
    assert types(harness.send(type="input_audio_buffer.clear")) == ["input_audio_buffer.cleared"]
    assert error_of(harness.send(type="input_audio_buffer.commit"))["message"].endswith(
        "buffer only has 0.00ms of audio."
    )


def test_an_open_microphone_does_not_grow_the_buffer_forever():
    harness = Harness(GA, turn_detection=TurnDetection())
    harness.append(audio.silence(45_000), chunk=48_000)
    item_id = harness.send(type="input_audio_buffer.commit")[0]["item_id"]
    item = harness.send(type="conversation.item.retrieve", item_id=item_id)[0]["item"]
    kept_ms = len(base64.b64decode(item["content"][0]["audio"])) / 48
    assert 30_000 <= kept_ms < 31_000
    # Without VAD nothing is dropped: the client decides what to commit.
    harness = Harness(GA)
    harness.append(audio.silence(45_000), chunk=48_000)
    item_id = harness.send(type="input_audio_buffer.commit")[0]["item_id"]
    item = harness.send(type="conversation.item.retrieve", item_id=item_id)[0]["item"]
    assert len(base64.b64decode(item["content"][0]["audio"])) == 45_000 * 48


def test_append_rejects_bad_base64():
    harness = Harness(GA)
    error = error_of(harness.send(type="input_audio_buffer.append", audio="***"))
    assert (error["code"], error["param"]) == ("invalid_value", "audio")


def test_append_rejects_more_than_the_size_limit():
    harness = Harness(GA, max_append_bytes=1000)
    error = error_of(harness.send(type="input_audio_buffer.append", audio="AAAA" * 400))
    assert "15 MiB" in error["message"]


# --- responses and event order ----------------------------------------------------------------

GA_AUDIO_TAIL = [
    "response.created",
    "response.output_item.added",
    "conversation.item.added",
    "response.content_part.added",
    "response.output_audio.done",
    "response.output_audio_transcript.done",
    "response.content_part.done",
    "conversation.item.done",
    "response.output_item.done",
    "response.done",
    "rate_limits.updated",
]
BETA_AUDIO_TAIL = [
    "response.created",
    "response.output_item.added",
    "conversation.item.created",
    "response.content_part.added",
    "response.audio.done",
    "response.audio_transcript.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.done",
    "rate_limits.updated",
]


@pytest.mark.parametrize("dialect", [GA, BETA], ids=["ga", "beta"])
def test_vad_voice_turn_follows_the_documented_event_order(dialect: Dialect):
    harness = Harness(dialect, turn_detection=TurnDetection())
    events = harness.append(voiced_turn(), chunk=960)
    head = ["input_audio_buffer.speech_started", "input_audio_buffer.speech_stopped"]
    head.append("input_audio_buffer.committed")
    if dialect is GA:
        head += ["conversation.item.added", "conversation.item.done"]
        tail = GA_AUDIO_TAIL
        delta_types = {"response.output_audio.delta", "response.output_audio_transcript.delta"}
    else:
        head += ["conversation.item.created"]
        tail = BETA_AUDIO_TAIL
        delta_types = {"response.audio.delta", "response.audio_transcript.delta"}
    assert without_deltas(events) == head + tail
    deltas = [e for e in events if e["type"].endswith(".delta")]
    assert {e["type"] for e in deltas} == delta_types
    # Deltas sit between content_part.added and the audio done event, interleaved.
    first_delta = events.index(deltas[0])
    assert events[first_delta - 1]["type"] == "response.content_part.added"
    assert len({e["type"] for e in deltas[:3]}) == 2
    started, stopped = events[0], events[1]
    assert started["audio_start_ms"] == pytest.approx(500 - 300, abs=10)
    assert stopped["audio_end_ms"] == pytest.approx(1500 + 200, abs=10)
    user_item = events[3]["item"]
    assistant_added = next(
        e
        for e in events
        if e["type"] in ("conversation.item.added", "conversation.item.created")
        and e["item"].get("role") == "assistant"
    )
    assert assistant_added["previous_item_id"] == user_item["id"]
    done = only(events, "response.done")["response"]
    assert done["status"] == "completed"
    transcript = done["output"][0]["content"][0]["transcript"]
    # The committed turn: 300 ms padding + 1 s speech + 200 ms silence window.
    assert transcript == "Echo of 1.5 seconds of your audio."


@pytest.mark.parametrize("dialect", [GA, BETA], ids=["ga", "beta"])
def test_text_turns_use_text_events(dialect: Dialect):
    harness = Harness(dialect)
    if dialect is GA:
        harness.send(
            type="session.update", session={"type": "realtime", "output_modalities": ["text"]}
        )
    else:
        harness.send(type="session.update", session={"modalities": ["text"]})
    events = harness.text_turn("What time is it?")
    prefix = "response.output_text" if dialect is GA else "response.text"
    assert f"{prefix}.delta" in types(events)
    assert "response.output_audio.delta" not in types(events)
    assert "response.audio.delta" not in types(events)
    text_done = only(events, f"{prefix}.done")
    assert text_done["text"] == "You said: What time is it?"
    assert only(events, "response.content_part.added")["part"] == {"type": "text", "text": ""}
    item = only(events, "response.output_item.done")["item"]
    content_type = "output_text" if dialect is GA else "text"
    assert item["content"] == [{"type": content_type, "text": "You said: What time is it?"}]
    deltas = [e["delta"] for e in events if e["type"] == f"{prefix}.delta"]
    assert "".join(deltas) == "You said: What time is it?"


def test_response_create_can_ask_for_text_only():
    harness = Harness(GA)
    harness.send(
        type="conversation.item.create",
        item={"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x"}]},
    )
    events = harness.send(type="response.create", response={"output_modalities": ["text"]})
    assert "response.output_text.done" in types(events)
    assert only(events, "response.done")["response"]["output_modalities"] == ["text"]


def test_audio_deltas_add_up_to_the_reply_and_transcript_deltas_to_the_transcript():
    pcm = audio.tone(1234)
    responder = FixedResponder(Reply(text="One two three four five.", audio=pcm))
    harness = Harness(GA, responder=responder)
    events = harness.text_turn()
    audio_deltas = [e for e in events if e["type"] == "response.output_audio.delta"]
    assert b"".join(base64.b64decode(e["delta"]) for e in audio_deltas) == pcm
    sizes = {len(base64.b64decode(e["delta"])) for e in audio_deltas}
    assert len(sizes) > 2  # variable sizes, like the real API
    words = [e["delta"] for e in events if e["type"] == "response.output_audio_transcript.delta"]
    assert "".join(words) == "One two three four five."
    assert all(e.get("obfuscation") for e in events if e["type"].endswith("transcript.delta"))


def test_only_one_active_response_with_the_real_message():
    harness = Harness(GA, answer_replies=False)
    harness.text_turn()
    active = harness.core.active_response_id
    error = error_of(harness.send(type="response.create", event_id="again"))
    assert error["code"] == "conversation_already_has_active_response"
    assert error["message"] == (
        f"Conversation already has an active response in progress: {active}. "
        "Wait until the response is finished before creating a new one."
    )
    assert error["event_id"] == "again"


def test_cancel_without_a_response_is_an_error():
    harness = Harness(GA)
    error = error_of(harness.send(type="response.cancel"))
    assert error["code"] == "response_cancel_not_active"
    assert error["message"] == "Cancellation failed: no active response found"


def test_cancel_mid_stream_closes_open_parts_then_reports_client_cancelled():
    harness = Harness(GA, pace=1.0)
    harness.text_turn()
    harness.advance_to(300)  # some audio has gone out
    events = harness.send(type="response.cancel")
    assert types(events) == [
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    response = only(events, "response.done")["response"]
    assert response["status"] == "cancelled"
    assert response["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
    assert response["output"][0]["status"] == "incomplete"
    assert harness.core.active_response_id is None
    assert harness.advance_to(60_000) == []  # nothing more streams


def test_cancel_while_composing_gives_an_empty_cancelled_response_and_drops_the_reply():
    harness = Harness(GA, answer_replies=False)
    harness.text_turn()
    events = harness.send(type="response.cancel")
    response = only(events, "response.done")["response"]
    assert (response["status"], response["output"]) == ("cancelled", [])
    assert harness.answer() == []  # the late reply is ignored


def test_cancel_with_another_response_id_is_not_active():
    harness = Harness(GA, answer_replies=False)
    harness.text_turn()
    error = error_of(harness.send(type="response.cancel", response_id="resp_other"))
    assert error["code"] == "response_cancel_not_active"


def test_a_failing_responder_ends_the_response_as_failed():
    harness = Harness(GA, answer_replies=False)
    harness.text_turn()
    compose = harness.pending.pop()
    events = harness._take(harness.core.reply_failed(compose.response_id, "boom", 0))
    response = only(events, "response.done")["response"]
    assert response["status"] == "failed"
    assert response["status_details"]["error"]["message"] == "boom"
    harness.answer_replies = True
    assert "response.done" in types(harness.text_turn())


def test_out_of_band_response_stays_out_of_the_conversation():
    harness = Harness(GA)
    events = harness.send(type="response.create", response={"conversation": "none"})
    assert "conversation.item.added" not in types(events)
    assert only(events, "response.done")["response"]["conversation_id"] is None
    assert len(harness.core.conversation) == 0


def test_max_output_tokens_cuts_the_reply_and_marks_it_incomplete():
    responder = FixedResponder(Reply(text="word " * 40, audio=audio.tone(4000)))
    harness = Harness(GA, responder=responder)
    harness.send(type="session.update", session={"type": "realtime", "max_output_tokens": 20})
    response = only(harness.text_turn(), "response.done")["response"]
    assert response["status"] == "incomplete"
    assert response["status_details"] == {"type": "incomplete", "reason": "max_output_tokens"}
    assert response["usage"]["output_tokens"] <= 20


def test_usage_follows_the_documented_formula():
    responder = FixedResponder(Reply(text="12345678", audio=audio.tone(1000)))
    harness = Harness(GA, responder=responder, instructions="abcd" * 10)
    harness.append(audio.tone(2000))
    harness.send(type="input_audio_buffer.commit")
    usage = only(harness.send(type="response.create"), "response.done")["response"]["usage"]
    # instructions 40 chars -> 10 text tokens; 2 s input audio -> 20; 8 chars -> 2; 1 s out -> 20
    assert usage["input_token_details"]["text_tokens"] == 10
    assert usage["input_token_details"]["audio_tokens"] == 20
    assert usage["output_token_details"] == {"text_tokens": 2, "audio_tokens": 20}
    assert (usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]) == (30, 22, 52)
    limits = only(harness.events, "rate_limits.updated")["rate_limits"]
    assert {"name": "tokens", "limit": 40000, "remaining": 40000 - 52} == {
        k: v for k, v in limits[1].items() if k != "reset_seconds"
    }


# --- function calls ---------------------------------------------------------------------------


class FixedResponder:
    name = "fixed"

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)

    def reply(self, turn: Turn) -> Reply:
        return self.replies[min(turn.index, len(self.replies) - 1)]

    def transcribe(self, audio: bytes, turn_index: int) -> str:
        return "what the user said"


@pytest.mark.parametrize("dialect", [GA, BETA], ids=["ga", "beta"])
def test_function_call_turn_then_output_then_follow_up(dialect: Dialect):
    call = FunctionCall("get_weather", '{"city":"Paris"}')
    responder = FixedResponder(Reply(function_call=call), Reply(text="Sunny in Paris."))
    harness = Harness(dialect, responder=responder)
    events = harness.text_turn("Weather?")
    response_events = events[events.index(only(events, "response.created")) :]
    expected = [
        "response.created",
        "response.output_item.added",
        "conversation.item.added",
        "response.function_call_arguments.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    if dialect is BETA:
        expected = [
            "conversation.item.created" if t == "conversation.item.added" else t
            for t in expected
            if t != "conversation.item.done"
        ]
    assert without_deltas(response_events) == expected
    arguments_done = only(events, "response.function_call_arguments.done")
    assert arguments_done["arguments"] == '{"city":"Paris"}'
    assert ("name" in arguments_done) is (dialect is GA)
    deltas = [e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert len(deltas) > 1 and "".join(deltas) == '{"city":"Paris"}'
    call_id = arguments_done["call_id"]
    assert re.fullmatch(ID_FORMATS["call_id"], call_id)
    item = only(events, "response.output_item.done")["item"]
    assert (item["type"], item["name"], item["status"]) == (
        "function_call",
        "get_weather",
        "completed",
    )

    output = {"type": "function_call_output", "call_id": call_id, "output": '{"temp_c":21}'}
    events = harness.send(type="conversation.item.create", item=output)
    added = events[0]
    assert added["previous_item_id"] == item["id"]
    assert added["item"]["call_id"] == call_id
    events = harness.send(type="response.create")
    assert harness.turns[-1].function_outputs[0].output == '{"temp_c":21}'
    assert harness.turns[-1].function_outputs[0].name == "get_weather"
    assert only(events, "response.done")["response"]["status"] == "completed"


def test_function_call_output_for_an_unknown_call_is_refused():
    harness = Harness(GA)
    item = {"type": "function_call_output", "call_id": "call_nope", "output": "{}"}
    error = error_of(harness.send(type="conversation.item.create", item=item))
    assert (error["code"], error["param"]) == ("invalid_value", "item.call_id")
    assert "call_nope" in error["message"]


def test_scripted_reply_with_text_and_a_call_has_two_output_items():
    script = ScriptedResponder.from_text(
        '{"text": "Let me check.", "function_call": {"name": "f", "arguments": {"a": 1}}}'
    )
    harness = Harness(GA, responder=script)
    response = only(harness.text_turn(), "response.done")["response"]
    assert [item["type"] for item in response["output"]] == ["message", "function_call"]
    assert response["output"][1]["arguments"] == '{"a": 1}'


# --- conversation items -----------------------------------------------------------------------


def user_text(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def test_items_are_ordered_by_previous_item_id():
    harness = Harness(GA)
    first = harness.send(type="conversation.item.create", item={**user_text("a"), "id": "item_a"})
    assert first[0]["previous_item_id"] is None
    harness.send(type="conversation.item.create", item={**user_text("b"), "id": "item_b"})
    events = harness.send(
        type="conversation.item.create",
        previous_item_id="root",
        item={**user_text("c"), "id": "item_c"},
    )
    assert events[0]["previous_item_id"] is None
    events = harness.send(
        type="conversation.item.create",
        previous_item_id="item_c",
        item={**user_text("d"), "id": "item_d"},
    )
    assert events[0]["previous_item_id"] == "item_c"
    assert [item.id for item in harness.core.conversation.items()] == [
        "item_c",
        "item_d",
        "item_a",
        "item_b",
    ]


def test_item_create_errors():
    harness = Harness(GA)
    harness.send(type="conversation.item.create", item={**user_text("a"), "id": "item_a"})
    error = error_of(
        harness.send(type="conversation.item.create", item={**user_text("a"), "id": "item_a"})
    )
    assert error["param"] == "item.id"
    error = error_of(
        harness.send(
            type="conversation.item.create", previous_item_id="item_zz", item=user_text("x")
        )
    )
    assert error["param"] == "previous_item_id"
    assistant_audio = {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_audio"}],
    }
    error = error_of(harness.send(type="conversation.item.create", item=assistant_audio))
    assert (error["code"], error["param"]) == ("invalid_value", "item.content[0].type")
    system_audio = {"type": "message", "role": "system", "content": [{"type": "input_audio"}]}
    assert error_of(harness.send(type="conversation.item.create", item=system_audio))
    error = error_of(harness.send(type="conversation.item.create", item={"role": "user"}))
    assert (error["code"], error["param"]) == ("missing_required_parameter", "item.type")


def test_assistant_and_system_text_items_are_accepted_in_each_dialect():
    for dialect, text_type in ((GA, "output_text"), (BETA, "text")):
        harness = Harness(dialect)
        item = {
            "type": "message",
            "role": "assistant",
            "content": [{"type": text_type, "text": "hi"}],
        }
        events = harness.send(type="conversation.item.create", item=item)
        assert events[0]["item"]["content"] == [{"type": text_type, "text": "hi"}]
        system = {
            "type": "message",
            "role": "system",
            "content": [{"type": "input_text", "text": "s"}],
        }
        assert (
            harness.send(type="conversation.item.create", item=system)[0]["item"]["role"]
            == "system"
        )


def test_delete_and_retrieve():
    harness = Harness(GA)
    harness.append(audio.tone(200))
    item_id = harness.send(type="input_audio_buffer.commit")[0]["item_id"]
    retrieved = only(
        harness.send(type="conversation.item.retrieve", item_id=item_id),
        "conversation.item.retrieved",
    )
    assert base64.b64decode(retrieved["item"]["content"][0]["audio"]) == audio.tone(200)
    assert types(harness.send(type="conversation.item.delete", item_id=item_id)) == [
        "conversation.item.deleted"
    ]
    error = error_of(harness.send(type="conversation.item.delete", item_id=item_id))
    assert error["code"] == "item_delete_invalid_item_id"
    assert error["message"] == f"Error deleting item: the item with id '{item_id}' does not exist."
    error = error_of(harness.send(type="conversation.item.retrieve", item_id=item_id))
    assert error["code"] == "item_retrieve_invalid_item_id"


# --- truncation -------------------------------------------------------------------------------


def paced_audio_reply(harness: Harness, until_ms: float) -> str:
    """Start a 2 s reply at pace 1, let `until_ms` of it go out, cancel; return its item id."""
    harness.text_turn()
    harness.advance_to(until_ms)
    events = harness.send(type="response.cancel")
    return only(events, "response.output_item.done")["item"]["id"]


def test_truncate_is_checked_against_the_audio_actually_sent():
    responder = FixedResponder(
        Reply(text="one two three four five six seven eight", audio=audio.tone(2000))
    )
    harness = Harness(GA, responder=responder, pace=1.0)
    item_id = paced_audio_reply(harness, 500)
    sent = b"".join(
        base64.b64decode(e["delta"])
        for e in harness.events
        if e["type"] == "response.output_audio.delta"
    )
    sent_ms = len(sent) / 48
    assert 400 <= sent_ms < 2000
    too_far = int(sent_ms) + 1
    error = error_of(
        harness.send(
            type="conversation.item.truncate",
            item_id=item_id,
            content_index=0,
            audio_end_ms=too_far,
        )
    )
    assert (
        error["message"] == f"Audio content of {int(sent_ms)}ms is already shorter than {too_far}ms"
    )
    assert error["param"] == "audio_end_ms"
    events = harness.send(
        type="conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=200
    )
    assert only(events, "conversation.item.truncated") | {"event_id": ""} == {
        "type": "conversation.item.truncated",
        "event_id": "",
        "item_id": item_id,
        "content_index": 0,
        "audio_end_ms": 200,
    }
    item = only(
        harness.send(type="conversation.item.retrieve", item_id=item_id),
        "conversation.item.retrieved",
    )["item"]
    assert len(base64.b64decode(item["content"][0]["audio"])) == 200 * 48
    heard = item["content"][0]["transcript"]
    full = only(harness.events, "response.done")["response"]["output"][0]["content"][0][
        "transcript"
    ]
    assert heard and len(heard) < len(full) and full.startswith(heard)
    # Truncating again beyond the new length is refused too.
    error = error_of(
        harness.send(
            type="conversation.item.truncate", item_id=item_id, content_index=0, audio_end_ms=300
        )
    )
    assert error["message"] == "Audio content of 200ms is already shorter than 300ms"


def test_truncate_unknown_item_and_non_audio_items():
    harness = Harness(GA)
    error = error_of(
        harness.send(
            type="conversation.item.truncate", item_id="item_nope", content_index=0, audio_end_ms=0
        )
    )
    assert error["code"] == "item_truncate_invalid_item_id"
    harness.send(type="conversation.item.create", item={**user_text("a"), "id": "item_u"})
    error = error_of(
        harness.send(
            type="conversation.item.truncate", item_id="item_u", content_index=0, audio_end_ms=0
        )
    )
    assert error["message"] == "Only model output audio messages can be truncated"


# --- VAD turn policy --------------------------------------------------------------------------


def test_speech_interrupts_the_active_response_with_turn_detected():
    harness = Harness(GA, turn_detection=TurnDetection(), pace=1.0)
    harness.append(voiced_turn(), chunk=960)  # first turn: response starts streaming
    first = harness.core.active_response_id
    assert first is not None
    harness.advance_to(400)
    events = harness.append(audio.tone(600), chunk=960)
    assert types(events)[:8] == [
        "input_audio_buffer.speech_started",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "conversation.item.done",
        "response.output_item.done",
        "response.done",
        "rate_limits.updated",
    ]
    response = only(events, "response.done")["response"]
    assert response["id"] == first
    assert response["status_details"] == {"type": "cancelled", "reason": "turn_detected"}
    events = harness.append(audio.silence(400), chunk=960)
    assert types(events)[:2] == [
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
    ]
    assert "response.created" in types(events)


def test_interrupt_response_off_lets_the_reply_finish_and_create_response_off_never_replies():
    no_interrupt = TurnDetection(interrupt_response=False)
    harness = Harness(GA, turn_detection=no_interrupt, pace=1.0)
    harness.append(voiced_turn(), chunk=960)
    harness.advance_to(300)
    events = harness.append(voiced_turn(lead_ms=0), chunk=960)
    assert "response.done" not in types(events)
    assert "input_audio_buffer.speech_stopped" in types(events)
    harness = Harness(GA, turn_detection=TurnDetection(create_response=False))
    events = harness.append(voiced_turn(), chunk=960)
    assert "input_audio_buffer.committed" in types(events)
    assert "response.created" not in types(events)


def test_turning_vad_on_by_session_update_and_semantic_vad():
    harness = Harness(BETA)
    harness.send(
        type="session.update",
        session={"turn_detection": {"type": "semantic_vad", "eagerness": "high"}},
    )
    events = harness.append(audio.silence(200) + audio.tone(500) + audio.silence(300), chunk=960)
    assert "input_audio_buffer.speech_started" in types(events)
    assert "input_audio_buffer.speech_stopped" not in types(events)  # high = 500 ms
    events = harness.append(audio.silence(300), chunk=960)
    assert only(events, "input_audio_buffer.speech_stopped")["audio_end_ms"] == pytest.approx(
        1200, abs=10
    )


def test_g711_input_and_output_formats():
    harness = Harness(BETA, turn_detection=TurnDetection())
    harness.send(
        type="session.update",
        session={"input_audio_format": "g711_ulaw", "output_audio_format": "g711_alaw"},
    )
    ulaw = audio.encode_from_pcm16(voiced_turn(), "g711_ulaw")
    events = harness.append(ulaw, chunk=160)  # 20 ms at 8 kHz, one byte per sample
    assert only(events, "input_audio_buffer.speech_started")["audio_start_ms"] == pytest.approx(
        200, abs=12
    )
    assert only(events, "input_audio_buffer.speech_stopped")["audio_end_ms"] == pytest.approx(
        1700, abs=12
    )
    response = only(events, "response.done")["response"]
    assert response["output_audio_format"] == "g711_alaw"
    out = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.audio.delta"
    )
    assert len(out) / 8 == pytest.approx(300 + 1000 + 200, abs=15)  # echo of the turn, 8 B/ms


def test_idle_timeout_triggers_a_response_after_the_reply_has_played():
    turn_detection = TurnDetection(idle_timeout_ms=5000)
    harness = Harness(GA, turn_detection=turn_detection, pace=0)
    harness.append(voiced_turn(speech_ms=1000), chunk=960)
    reply_ms = 300 + 1000 + 200  # echo of the committed turn, played in real time
    assert harness.core.next_deadline_ms() == pytest.approx(reply_ms + 5000)
    assert harness.advance_to(reply_ms + 4990) == []
    events = harness.advance_to(reply_ms + 5000)
    assert types(events)[:4] == [
        "input_audio_buffer.timeout_triggered",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.done",
    ]
    assert "response.done" in types(events)


# --- input transcription ----------------------------------------------------------------------


def test_transcripts_come_from_the_responder_with_token_or_duration_usage():
    script = ScriptedResponder.from_text(
        '{"text": "Paris.", "user_transcript": "Capital of France?"}'
    )
    harness = Harness(GA, responder=script, turn_detection=TurnDetection())
    harness.send(
        type="session.update",
        session={
            "type": "realtime",
            "audio": {"input": {"transcription": {"model": "gpt-4o-transcribe"}}},
        },
    )
    events = harness.append(voiced_turn(), chunk=960)
    completed = only(events, "conversation.item.input_audio_transcription.completed")
    assert completed["transcript"] == "Capital of France?"
    assert completed["usage"]["type"] == "tokens"
    deltas = [e["delta"] for e in events if e["type"].endswith("transcription.delta")]
    assert "".join(deltas) == "Capital of France?"
    # default timing: right after the user item, before the response starts
    order = types(events)
    assert order.index("conversation.item.input_audio_transcription.completed") < order.index(
        "response.created"
    )
    item_id = completed["item_id"]
    retrieved = only(
        harness.send(type="conversation.item.retrieve", item_id=item_id),
        "conversation.item.retrieved",
    )
    assert retrieved["item"]["content"][0]["transcript"] == "Capital of France?"

    harness = Harness(BETA, turn_detection=TurnDetection())
    harness.send(
        type="session.update", session={"input_audio_transcription": {"model": "whisper-1"}}
    )
    completed = only(
        harness.append(voiced_turn(), chunk=960),
        "conversation.item.input_audio_transcription.completed",
    )
    assert completed["transcript"] == "[1.5 s of audio]"
    assert completed["usage"] == {"type": "duration", "seconds": 1.5}


def test_late_transcripts_arrive_after_the_response_has_started():
    harness = Harness(GA, turn_detection=TurnDetection(), late_transcript=True)
    harness.send(
        type="session.update",
        session={"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}},
    )
    order = types(harness.append(voiced_turn(), chunk=960))
    completed_at = order.index("conversation.item.input_audio_transcription.completed")
    assert completed_at > order.index("response.output_audio.delta")
    assert completed_at < order.index("response.done")


def test_late_transcript_without_a_response_arrives_after_the_wait():
    harness = Harness(GA, late_transcript=True, late_transcript_wait_ms=800)
    harness.send(
        type="session.update",
        session={"type": "realtime", "audio": {"input": {"transcription": {"model": "whisper-1"}}}},
    )
    harness.append(audio.tone(300))
    events = harness.send(type="input_audio_buffer.commit")
    assert "conversation.item.input_audio_transcription.completed" not in types(events)
    assert harness.advance_to(700) == []
    assert "conversation.item.input_audio_transcription.completed" in types(harness.advance_to(800))


# --- pacing, jitter, expiry, refusals ---------------------------------------------------------


def test_pace_one_streams_audio_in_real_time():
    responder = FixedResponder(Reply(text="a b c", audio=audio.tone(2000)))
    harness = Harness(GA, responder=responder, pace=1.0)
    before_ms = 0.0  # audio sent before the current delta
    done_at = None
    for now in range(0, 2500, 10):
        events = harness.text_turn() if now == 0 else harness.advance_to(now)
        for event in events:
            if event["type"] == "response.output_audio.delta":
                # Each chunk leaves when the audio before it has played: on time, not early.
                assert before_ms - 10 < now <= before_ms + 10
                before_ms += len(base64.b64decode(event["delta"])) / 48
            if event["type"] == "response.done":
                done_at = now
    assert before_ms == 2000
    assert done_at == 2000


def test_pace_half_is_twice_as_fast_and_jitter_only_delays():
    responder = FixedResponder(Reply(text="x", audio=audio.tone(2000)))
    harness = Harness(GA, responder=responder, pace=0.5, delta_jitter_ms=30)
    harness.text_turn()
    assert harness.core.next_deadline_ms() is not None
    assert "response.done" not in types(harness.advance_to(990))
    assert "response.done" in types(harness.advance_to(1000 + 30))


def test_expiry_sends_session_expired_then_closes_1001():
    harness = Harness(GA, expire_after_s=120)
    assert harness.core.next_deadline_ms() == 120_000
    assert harness.advance_to(119_999) == []
    events = harness.advance_to(120_000)
    message = "Your session hit the maximum duration of 2 minutes."
    assert error_of(events) == {
        "type": "invalid_request_error",
        "code": "session_expired",
        "message": message,
        "param": None,
        "event_id": None,
    }
    assert harness.closed == Close(1001, message)
    assert harness.send(type="response.create") == []


def test_expiry_message_for_the_real_60_minutes_and_for_seconds():
    harness = Harness(GA)
    harness.advance_to(3_600_000)
    assert (
        error_of(harness.events)["message"]
        == "Your session hit the maximum duration of 60 minutes."
    )
    harness = Harness(GA, expire_after_s=1.5)
    harness.advance_to(1500)
    assert harness.closed == Close(1001, "Your session hit the maximum duration of 1.5 seconds.")


def test_refusals_for_beta_shutdown_and_bad_keys():
    core = ServerCore(BETA, CoreSettings())
    actions = core.refuse("beta_disabled")
    assert isinstance(actions[0], Send)
    assert actions[0].event["error"]["code"] == "beta_api_shape_disabled"
    assert actions[1] == Close(4000, "invalid_request_error.beta_api_shape_disabled")
    assert validate_server_event(actions[0].event, "beta") == []
    actions = ServerCore(GA, CoreSettings()).refuse("invalid_api_key")
    assert actions[0].event["error"]["code"] == "invalid_api_key"
    assert isinstance(actions[1], Close)


def test_every_id_has_the_real_format():
    harness = Harness(GA, turn_detection=TurnDetection())
    harness.append(voiced_turn(), chunk=960)
    for event in harness.events:
        for key, pattern in ID_FORMATS.items():
            if key in event and event[key] is not None:
                assert re.fullmatch(pattern, event[key]), (key, event[key])
        if "item" in event:
            assert re.fullmatch(ID_FORMATS["item_id"], event["item"]["id"])
        if "response" in event:
            assert re.fullmatch(ID_FORMATS["response_id"], event["response"]["id"])
            assert re.fullmatch(r"conv_[A-Za-z0-9]{21}", event["response"]["conversation_id"])
    event_ids = [event["event_id"] for event in harness.events]
    assert len(set(event_ids)) == len(event_ids)
