"""Server event sequences replayed through `RealtimeClient`, in both dialects.

Two kinds of input:

- the reference sequences of docs/realtime-protocol.md §10, stored verbatim (comment lines
  removed) in tests/fixtures/*.jsonl; see tests/fixtures/README.md for what each one is;
- sequences built here with `Wire`, a small server-frame builder for either dialect, for the
  cases the reference does not show: several items per response, late transcripts, inserts
  in the middle, hostile frames, every error code, response and buffer state, truncation.

The assertions are on the normalised events, the client's state, the frames it sends, and the
final conversation.
"""

from __future__ import annotations

import base64
import copy
import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.schema_oracle import validate_server_event
from voicecli.protocol import (
    BETA,
    GA,
    HARMLESS_ERROR_CODES,
    AudioDelta,
    Conversation,
    Dialect,
    Event,
    FunctionCallArgumentsDone,
    ItemAdded,
    ItemDone,
    ItemState,
    OutputItemDone,
    ProtocolError,
    RealtimeClient,
    ResponseDone,
    ServerError,
    SessionConfig,
    SessionCreated,
    Transcription,
    TurnDetection,
    Unknown,
    Usage,
    decode_server_event,
)
from voicecli.protocol import decode as decode_module
from voicecli.protocol.decode import MAX_QUOTED_CHARS


FIXTURES = Path(__file__).parent / "fixtures"
DIALECTS = [GA, BETA]
by_name = pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)


def load(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines()]


def feed(client: RealtimeClient, frames: Iterable[dict[str, Any] | str]) -> list[Event]:
    for frame in frames:
        client.receive_text(frame if isinstance(frame, str) else json.dumps(frame))
    return client.events_received()


def sent(client: RealtimeClient) -> list[dict[str, Any]]:
    return [json.loads(text) for text in client.data_to_send()]


def names(events: Iterable[Event]) -> list[str]:
    return [type(event).__name__ for event in events]


def summary(conversation: Conversation) -> list[tuple[Any, ...]]:
    """The conversation without ids: what a user would see, and what truncation needs."""
    return [
        (
            item.type,
            item.role,
            item.status,
            item.text,
            item.name,
            item.arguments,
            item.output,
            [(part.type, part.audio_ms, part.done, part.interrupted) for part in item.parts],
        )
        for item in conversation.items
    ]


def to_beta(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A GA server sequence as a beta server would send it (§5.1): renamed events, one
    `conversation.item.created` instead of `.added` + `.done`, beta content types, no
    `name` on `function_call_arguments.done`."""
    converted = []
    for frame in copy.deepcopy(frames):
        wire_type = BETA.wire_name(frame["type"])
        if wire_type is None:
            continue
        frame["type"] = wire_type
        if wire_type == "response.function_call_arguments.done":
            frame.pop("name", None)
        items = [frame["item"]] if "item" in frame else []
        items += frame.get("response", {}).get("output", [])
        for item in items:
            for part in item.get("content") or []:
                part["type"] = {"output_audio": "audio", "output_text": "text"}.get(
                    part["type"], part["type"]
                )
        converted.append(frame)
    return converted


class Wire:
    """Builds server frames of one dialect. Each frame type is checked once against the
    schema oracle, so the built sequences stay realistic."""

    _checked: set[tuple[str, str]] = set()

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.counter = 0

    def _frame(self, neutral: str, **fields: Any) -> dict[str, Any]:
        wire_type = self.dialect.wire_name(neutral)
        assert wire_type is not None, neutral
        self.counter += 1
        frame = {"type": wire_type, "event_id": f"event_{self.counter:021d}", **fields}
        key = (self.dialect.name, wire_type)
        if key not in self._checked:
            assert validate_server_event(frame, self.dialect.name) == [], frame
            self._checked.add(key)
        return frame

    def audio_type(self) -> str:
        return self.dialect.assistant_audio_content

    def text_type(self) -> str:
        return self.dialect.assistant_text_content

    # items

    def message(
        self, item_id: str, role: str, parts: list[dict[str, Any]], status: str = "completed"
    ) -> dict[str, Any]:
        return {"id": item_id, "type": "message", "status": status, "role": role, "content": parts}

    def call(self, item_id: str, call_id: str, name: str, arguments: str, status: str):
        return {
            "id": item_id,
            "type": "function_call",
            "status": status,
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
        }

    def item_added(self, item: dict[str, Any], previous: str | None) -> list[dict[str, Any]]:
        """The conversation-item events for a new item: GA `.added`, beta `.created`."""
        return [self._frame("conversation.item.added", previous_item_id=previous, item=item)]

    def item_done(self, item: dict[str, Any], previous: str | None) -> list[dict[str, Any]]:
        """GA `.done`; nothing in beta."""
        if self.dialect is BETA:
            return []
        return [self._frame("conversation.item.done", previous_item_id=previous, item=item)]

    # input

    def speech_started(self, item_id: str, ms: int) -> dict[str, Any]:
        return self._frame("input_audio_buffer.speech_started", audio_start_ms=ms, item_id=item_id)

    def committed(self, item_id: str, previous: str | None) -> dict[str, Any]:
        return self._frame(
            "input_audio_buffer.committed", previous_item_id=previous, item_id=item_id
        )

    def cleared(self) -> dict[str, Any]:
        return self._frame("input_audio_buffer.cleared")

    def user_audio_item(self, item_id: str, previous: str | None) -> list[dict[str, Any]]:
        item = self.message(item_id, "user", [{"type": "input_audio", "transcript": None}])
        return self.item_added(item, previous) + self.item_done(item, previous)

    def input_delta(self, item_id: str, delta: str) -> dict[str, Any]:
        return self._frame(
            "conversation.item.input_audio_transcription.delta",
            item_id=item_id,
            content_index=0,
            delta=delta,
        )

    def input_completed(self, item_id: str, transcript: str) -> dict[str, Any]:
        return self._frame(
            "conversation.item.input_audio_transcription.completed",
            item_id=item_id,
            content_index=0,
            transcript=transcript,
            usage={"type": "duration", "seconds": 1.5},
        )

    def input_failed(self, item_id: str) -> dict[str, Any]:
        return self._frame(
            "conversation.item.input_audio_transcription.failed",
            item_id=item_id,
            content_index=0,
            error={
                "type": "transcription_error",
                "code": "audio_unintelligible",
                "message": "The audio could not be transcribed.",
                "param": None,
            },
        )

    # responses

    def response_created(self, response_id: str) -> dict[str, Any]:
        response = {
            "object": "realtime.response",
            "id": response_id,
            "status": "in_progress",
            "status_details": None,
            "output": [],
            "conversation_id": "conv_1",
            "usage": None,
            "metadata": None,
        }
        return self._frame("response.created", response=response)

    def response_done(
        self,
        response_id: str,
        output: list[dict[str, Any]],
        status: str = "completed",
        reason: str | None = None,
    ) -> dict[str, Any]:
        details = None if reason is None else {"type": status, "reason": reason}
        response = {
            "object": "realtime.response",
            "id": response_id,
            "status": status,
            "status_details": details,
            "output": output,
            "conversation_id": "conv_1",
            "usage": {
                "total_tokens": 30,
                "input_tokens": 20,
                "output_tokens": 10,
                "input_token_details": {"text_tokens": 5, "audio_tokens": 15, "cached_tokens": 0},
                "output_token_details": {"text_tokens": 4, "audio_tokens": 6},
            },
            "metadata": None,
        }
        return self._frame("response.done", response=response)

    def output_item_added(self, response_id: str, index: int, item: dict[str, Any]):
        return self._frame(
            "response.output_item.added", response_id=response_id, output_index=index, item=item
        )

    def output_item_done(self, response_id: str, index: int, item: dict[str, Any]):
        return self._frame(
            "response.output_item.done", response_id=response_id, output_index=index, item=item
        )

    def _position(self, response_id: str, item_id: str, index: int, part: int = 0):
        return {
            "response_id": response_id,
            "item_id": item_id,
            "output_index": index,
            "content_index": part,
        }

    def part_added(self, response_id: str, item_id: str, index: int, kind: str = "audio"):
        part = {"type": kind, "transcript": ""} if kind == "audio" else {"type": kind, "text": ""}
        return self._frame(
            "response.content_part.added", **self._position(response_id, item_id, index), part=part
        )

    def part_done(self, response_id: str, item_id: str, index: int, text: str, kind="audio"):
        key = "transcript" if kind == "audio" else "text"
        return self._frame(
            "response.content_part.done",
            **self._position(response_id, item_id, index),
            part={"type": kind, key: text},
        )

    def audio(self, response_id: str, item_id: str, index: int, pcm: bytes) -> dict[str, Any]:
        return self._frame(
            "response.output_audio.delta",
            **self._position(response_id, item_id, index),
            delta=base64.b64encode(pcm).decode("ascii"),
        )

    def audio_done(self, response_id: str, item_id: str, index: int) -> dict[str, Any]:
        return self._frame(
            "response.output_audio.done", **self._position(response_id, item_id, index)
        )

    def transcript(self, response_id: str, item_id: str, index: int, delta: str):
        return self._frame(
            "response.output_audio_transcript.delta",
            **self._position(response_id, item_id, index),
            delta=delta,
        )

    def transcript_done(self, response_id: str, item_id: str, index: int, text: str):
        return self._frame(
            "response.output_audio_transcript.done",
            **self._position(response_id, item_id, index),
            transcript=text,
        )

    def text(self, response_id: str, item_id: str, index: int, delta: str):
        return self._frame(
            "response.output_text.delta", **self._position(response_id, item_id, index), delta=delta
        )

    def text_done(self, response_id: str, item_id: str, index: int, text: str):
        return self._frame(
            "response.output_text.done", **self._position(response_id, item_id, index), text=text
        )

    def arguments(self, response_id: str, item_id: str, index: int, call_id: str, delta: str):
        return self._frame(
            "response.function_call_arguments.delta",
            response_id=response_id,
            item_id=item_id,
            output_index=index,
            call_id=call_id,
            delta=delta,
        )

    def arguments_done(
        self, response_id: str, item_id: str, index: int, call_id: str, name: str, arguments: str
    ):
        fields = {} if self.dialect is BETA else {"name": name}
        return self._frame(
            "response.function_call_arguments.done",
            response_id=response_id,
            item_id=item_id,
            output_index=index,
            call_id=call_id,
            arguments=arguments,
            **fields,
        )

    def audio_message(
        self,
        response_id: str,
        item_id: str,
        index: int,
        previous: str | None,
        words: list[str],
        ms_per_word: int = 100,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        """One spoken assistant message: (opening frames, streaming frames, final item)."""
        opened = self.message(item_id, "assistant", [], status="in_progress")
        opening = [self.output_item_added(response_id, index, opened)]
        opening += self.item_added(opened, previous)
        opening.append(self.part_added(response_id, item_id, index))
        streaming = []
        for word in words:
            streaming.append(self.transcript(response_id, item_id, index, word))
            streaming.append(self.audio(response_id, item_id, index, bytes(48 * ms_per_word)))
        final_text = "".join(words)
        final = self.message(
            item_id, "assistant", [{"type": self.audio_type(), "transcript": final_text}]
        )
        return opening, streaming, final

    def close_audio_message(
        self, response_id: str, item_id: str, index: int, previous: str | None, final, text: str
    ) -> list[dict[str, Any]]:
        return [
            self.audio_done(response_id, item_id, index),
            self.transcript_done(response_id, item_id, index, text),
            self.part_done(response_id, item_id, index, text),
            *self.item_done(final, previous),
            self.output_item_done(response_id, index, final),
        ]

    # misc

    def error(self, code: str | None, event_id: str | None = None, message: str = "x"):
        return self._frame(
            "error",
            error={
                "type": "invalid_request_error",
                "code": code,
                "message": message,
                "param": None,
                "event_id": event_id,
            },
        )

    def truncated(self, item_id: str, ms: int) -> dict[str, Any]:
        return self._frame(
            "conversation.item.truncated", item_id=item_id, content_index=0, audio_end_ms=ms
        )

    def deleted(self, item_id: str) -> dict[str, Any]:
        return self._frame("conversation.item.deleted", item_id=item_id)

    def retrieved(self, item: dict[str, Any]) -> dict[str, Any]:
        return self._frame("conversation.item.retrieved", item=item)


# --- §10 reference sequences ---------------------------------------------------------------

GA_TURN_EVENTS = [
    "SessionCreated",
    "SessionUpdated",
    "SpeechStarted",
    "SpeechStopped",
    "InputCommitted",
    "ItemAdded",
    "ItemDone",
    "ResponseCreated",
    "OutputItemAdded",
    "ItemAdded",
    "ContentPartAdded",
    "TranscriptDelta",
    "AudioDelta",
    "TranscriptDelta",
    "AudioDelta",
    "InputTranscriptDelta",
    "InputTranscriptCompleted",
    "AudioDone",
    "TranscriptDone",
    "ContentPartDone",
    "ItemDone",
    "OutputItemDone",
    "ResponseDone",
    "RateLimitsUpdated",
]
VOICE_TURN_STATE = [
    (
        "message",
        "user",
        "completed",
        "How's the weather?",
        None,
        "",
        None,
        [("input_audio", 0.0, True, False)],
    ),
    (
        "message",
        "assistant",
        "completed",
        "Sure, it's sunny.",
        None,
        "",
        None,
        [("output_audio", 0.5, True, False)],  # two 12-byte deltas = 24 bytes = 0.5 ms
    ),
]


def test_ga_voice_turn_reference() -> None:
    client = RealtimeClient(GA)
    events = feed(client, load("ga_voice_turn.jsonl"))
    assert names(events) == GA_TURN_EVENTS
    assert {event.type for event in events} >= {
        "session.created",
        "response.output_audio.delta",
        "response.output_audio_transcript.delta",
    }
    assert client.data_to_send() == []  # receiving alone never sends
    assert client.session_id == "sess_pGXafq0fjzLczbttOofL9"
    assert client.expires_at == 1767233035
    assert client.model == "gpt-realtime"
    assert client.session == SessionConfig(
        instructions="Be brief.",
        voice="marin",
        output_modalities=("audio",),
        input_audio_format="pcm16",
        output_audio_format="pcm16",
        transcription=Transcription(model="gpt-4o-mini-transcribe"),
        noise_reduction=None,
        turn_detection=TurnDetection(
            type="server_vad",
            threshold=0.5,
            prefix_padding_ms=300,
            silence_duration_ms=200,
            create_response=True,
            interrupt_response=True,
        ),
        tools=(),
        tool_choice="auto",
        max_output_tokens="inf",
        speed=1.0,
    )
    assert client.active_response_id is None and not client.response_active
    done = next(event for event in events if isinstance(event, ResponseDone))
    assert done.usage == Usage(
        input_tokens=132,
        output_tokens=188,
        total_tokens=320,
        input_text_tokens=59,
        input_audio_tokens=73,
        input_image_tokens=0,
        cached_tokens=64,
        cached_text_tokens=0,
        cached_audio_tokens=64,
        output_text_tokens=41,
        output_audio_tokens=147,
    )
    assert (done.status, done.status_details, done.response_id) == (
        "completed",
        None,
        "resp_m14TUOizwd1iaeOV4qBkd",
    )
    assert summary(client.conversation) == VOICE_TURN_STATE
    assert client.conversation.ids == ["item_9eh6Yo4gfqrc5XlrWi0B2", "item_6R08qzjI6GKFSufrdZSlB"]
    assistant = client.conversation.get("item_6R08qzjI6GKFSufrdZSlB")
    assert assistant is not None and assistant.response_id == "resp_m14TUOizwd1iaeOV4qBkd"
    assert assistant.previous_item_id == "item_9eh6Yo4gfqrc5XlrWi0B2"


def test_beta_voice_turn_reference_matches_ga() -> None:
    client = RealtimeClient(BETA)
    events = feed(client, load("beta_voice_turn.jsonl"))
    # The same neutral events, minus what only GA sends (item `.done`, transcript deltas).
    ga_only = {"ItemDone", "InputTranscriptDelta"}
    assert names(events) == [name for name in GA_TURN_EVENTS if name not in ga_only]
    assert summary(client.conversation) == VOICE_TURN_STATE
    assert client.session.voice == "sage" and client.session.temperature == 0.8
    assert client.session.output_modalities == ("audio",)
    assert client.expires_at == 1734626400
    done = next(event for event in events if isinstance(event, ResponseDone))
    assert done.usage is not None
    assert (done.usage.total_tokens, done.usage.input_audio_tokens) == (275, 8)
    assert (done.usage.output_audio_tokens, done.usage.cached_audio_tokens) == (112, 0)
    audio = [event for event in events if isinstance(event, AudioDelta)]
    assert [event.pcm for event in audio] == [bytes(12), bytes(12)]
    assert audio[0].raw["type"] == "response.audio.delta"
    assert audio[0].type == "response.output_audio.delta"


@by_name
def test_function_call_reference(dialect: Dialect) -> None:
    frames = load("ga_function_call.jsonl")
    if dialect is BETA:
        frames = to_beta(frames)
    client = RealtimeClient(dialect)
    # 10.3 starts with the response; the user item it follows was committed earlier.
    feed(client, Wire(dialect).user_audio_item("item_9eh6Yo4gfqrc5XlrWi0B2", None))
    events = feed(client, frames[:9])
    call_id = "call_c01T5GOBUSZGi6HW"
    arguments_done = [event for event in events if isinstance(event, FunctionCallArgumentsDone)]
    assert [(e.call_id, e.arguments) for e in arguments_done] == [(call_id, '{"city":"Paris"}')]
    assert arguments_done[0].name == ("get_weather" if dialect is GA else None)
    # The one place to run the tool: the completed function_call output item.
    calls = [e.item for e in events if isinstance(e, OutputItemDone)]
    assert [(c.type, c.name, c.call_id, c.arguments) for c in calls] == [
        ("function_call", "get_weather", call_id, '{"city":"Paris"}')
    ]
    assert not client.response_active

    client.send_function_output(call_id, '{"temp_c":21,"sky":"sunny"}')
    assert client.create_response()
    item_create, response_create = sent(client)
    assert item_create["item"] == {
        "type": "function_call_output",
        "call_id": call_id,
        "output": '{"temp_c":21,"sky":"sunny"}',
    }
    assert response_create["type"] == "response.create" and "response" not in response_create
    feed(client, frames[9:])
    assert summary(client.conversation) == [
        VOICE_TURN_STATE[0][:3] + ("", None, "", None, [("input_audio", 0.0, False, False)]),
        ("function_call", None, "completed", "", "get_weather", '{"city":"Paris"}', None, []),
        ("function_call_output", None, None, "", None, "", '{"temp_c":21,"sky":"sunny"}', []),
    ]
    assert client.conversation.get("item_HWnsCGRlrwZbqcabUGJmG").call_id == call_id


def _barge_in_frames(audio_ms: int) -> list[dict[str, Any]]:
    """10.1 up to the assistant's audio (with `audio_ms` of it), then 10.4."""
    turn = load("ga_voice_turn.jsonl")
    prefix = [frame for frame in turn[:15]]
    for frame in prefix:
        if frame["type"] == "response.output_audio.delta":
            frame["delta"] = base64.b64encode(bytes(48 * audio_ms // 2)).decode()
    return prefix + load("ga_barge_in.jsonl")


@by_name
def test_barge_in_reference_with_tiny_audio_truncates_nothing(dialect: Dialect) -> None:
    frames = load("ga_voice_turn.jsonl")[:15] + load("ga_barge_in.jsonl")[:-1]
    client = RealtimeClient(dialect)
    events = feed(client, to_beta(frames) if dialect is BETA else frames)
    done = events[-1]
    assert isinstance(done, ResponseDone) and done.status == "cancelled"
    assert done.status_details is not None and done.status_details.reason == "turn_detected"
    item = client.conversation.get("item_6R08qzjI6GKFSufrdZSlB")
    assert item is not None and item.status == "incomplete"
    assert item.text == "Sure, it's sunny and"
    # The reference deltas carry 24 bytes = 0.5 ms: nothing the user heard can be cut.
    assert client.truncate("item_6R08qzjI6GKFSufrdZSlB", 0, 1500) is None
    assert client.data_to_send() == []


@by_name
def test_barge_in_reference_truncates_what_was_heard(dialect: Dialect) -> None:
    frames = _barge_in_frames(audio_ms=2000)
    if dialect is BETA:
        frames = to_beta(frames)
    client = RealtimeClient(dialect, id_prefix="t")
    events = feed(client, frames[:-1])
    assert not client.response_active
    assert not client.cancel_response()  # the server already cancelled it
    assert client.truncate("item_6R08qzjI6GKFSufrdZSlB", 0, 1500) == 1500
    (truncate,) = sent(client)
    # Exactly the client frame of the §10.4 comment, plus our event id.
    assert truncate == {
        "type": "conversation.item.truncate",
        "event_id": truncate["event_id"],
        "item_id": "item_6R08qzjI6GKFSufrdZSlB",
        "content_index": 0,
        "audio_end_ms": 1500,
    }
    events = feed(client, frames[-1:])
    assert names(events) == ["ItemTruncated"]
    part = client.conversation.get("item_6R08qzjI6GKFSufrdZSlB").parts[0]
    assert (part.interrupted, part.heard_ms, part.audio_ms) == (True, 1500, 2000.0)
    assert part.text == "Sure, it's sunny and" and part.kept_transcript is None
    # The server's copy tells what transcript it kept.
    wire = Wire(dialect)
    kept = wire.message(
        "item_6R08qzjI6GKFSufrdZSlB",
        "assistant",
        [{"type": wire.audio_type(), "transcript": "Sure, it's"}],
        status="incomplete",
    )
    feed(client, [wire.retrieved(kept)])
    assert part.kept_transcript == "Sure, it's"
    assert part.text == "Sure, it's sunny and"


@by_name
def test_error_reference(dialect: Dialect) -> None:
    client = RealtimeClient(dialect)
    events = feed(client, load("errors.jsonl"))
    assert all(isinstance(event, ServerError) for event in events)
    assert [(e.error.code, e.harmless) for e in events] == [
        ("input_audio_buffer_commit_empty", True),
        ("conversation_already_has_active_response", True),
        ("response_cancel_not_active", True),
        ("missing_required_parameter", False),
        ("session_expired", False),
    ]
    assert events[0].error.event_id == "commit_10"
    assert events[3].error.param == "session.type" and events[3].error.event_id == "evt_cli_1"
    assert events[4].error.message == "Your session hit the maximum duration of 60 minutes."


# --- several items per response ------------------------------------------------------------


@by_name
def test_two_audio_messages_in_one_response(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    feed(client, [wire.committed("item_u", None), *wire.user_audio_item("item_u", None)])
    feed(client, [wire.response_created("resp_1")])
    open_a, stream_a, final_a = wire.audio_message("resp_1", "item_a", 0, "item_u", ["One", "."])
    open_b, stream_b, final_b = wire.audio_message(
        "resp_1", "item_b", 1, "item_a", ["Two", " more", "."], ms_per_word=40
    )
    interleaved = [frame for pair in zip(stream_a, stream_b[:4], strict=True) for frame in pair]
    feed(client, open_a + open_b + interleaved + stream_b[4:])
    assert client.conversation.audio_ms("item_a", 0) == 200
    assert client.conversation.audio_ms("item_b", 0) == 120
    assert client.conversation.get("item_b").text == "Two more."
    feed(client, wire.close_audio_message("resp_1", "item_a", 0, "item_u", final_a, "One."))
    feed(client, wire.close_audio_message("resp_1", "item_b", 1, "item_a", final_b, "Two more."))
    events = feed(client, [wire.response_done("resp_1", [final_a, final_b])])
    assert isinstance(events[0], ResponseDone) and len(events[0].output) == 2
    assert client.conversation.ids == ["item_u", "item_a", "item_b"]
    assert [(i.role, i.text, i.response_id) for i in client.conversation.items[1:]] == [
        ("assistant", "One.", "resp_1"),
        ("assistant", "Two more.", "resp_1"),
    ]
    # Each part can be truncated on its own, clamped to its own audio.
    assert client.truncate("item_b", 0, 500) == 120
    assert client.truncate("item_a", 0, 150) == 150
    assert client.last_audio_part == ("item_b", 0)


@by_name
def test_message_and_function_call_in_one_response(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    assert client.last_audio_part is None
    feed(client, [wire.response_created("resp_1")])
    opening, streaming, final = wire.audio_message("resp_1", "item_m", 0, None, ["Let me check."])
    feed(client, opening + streaming)
    feed(client, wire.close_audio_message("resp_1", "item_m", 0, None, final, "Let me check."))
    started = wire.call("item_f", "call_1", "lookup", "", "in_progress")
    finished = wire.call("item_f", "call_1", "lookup", '{"q":"x"}', "completed")
    events = feed(
        client,
        [
            wire.output_item_added("resp_1", 1, started),
            *wire.item_added(started, "item_m"),
            wire.arguments("resp_1", "item_f", 1, "call_1", '{"q":'),
            wire.arguments("resp_1", "item_f", 1, "call_1", '"x"}'),
        ],
    )
    assert client.conversation.get("item_f").arguments == '{"q":"x"}'
    events = feed(
        client,
        [
            wire.arguments_done("resp_1", "item_f", 1, "call_1", "lookup", '{"q":"x"}'),
            *wire.item_done(finished, "item_m"),
            wire.output_item_done("resp_1", 1, finished),
            wire.response_done("resp_1", [final, finished]),
        ],
    )
    assert summary(client.conversation) == [
        (
            "message",
            "assistant",
            "completed",
            "Let me check.",
            None,
            "",
            None,
            [("output_audio", 100.0, True, False)],
        ),
        ("function_call", None, "completed", "", "lookup", '{"q":"x"}', None, []),
    ]
    done_calls = [e.item for e in events if isinstance(e, OutputItemDone)]
    assert [(c.call_id, c.name) for c in done_calls] == [("call_1", "lookup")]


@by_name
def test_text_response(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    opened = wire.message("item_t", "assistant", [], status="in_progress")
    final = wire.message("item_t", "assistant", [{"type": wire.text_type(), "text": "Hi there"}])
    feed(
        client,
        [
            wire.response_created("resp_1"),
            wire.output_item_added("resp_1", 0, opened),
            *wire.item_added(opened, None),
            wire.part_added("resp_1", "item_t", 0, kind="text"),
            wire.text("resp_1", "item_t", 0, "Hi"),
            wire.text("resp_1", "item_t", 0, " the"),
        ],
    )
    item = client.conversation.get("item_t")
    assert (item.text, item.parts[0].type, item.parts[0].done) == ("Hi the", "output_text", False)
    feed(client, [wire.text_done("resp_1", "item_t", 0, "Hi there")])
    assert (item.text, item.parts[0].done) == ("Hi there", True)
    feed(client, [wire.output_item_done("resp_1", 0, final), wire.response_done("resp_1", [final])])
    assert item.text == "Hi there"
    assert client.truncate("item_t", 0, 100) is None  # no audio to truncate


# --- late and early user transcripts -------------------------------------------------------


def _answered_turn(wire: Wire, client: RealtimeClient) -> None:
    feed(
        client,
        [wire.speech_started("item_u", 100), wire.committed("item_u", None)]
        + wire.user_audio_item("item_u", None),
    )
    feed(client, [wire.response_created("resp_1")])
    opening, streaming, final = wire.audio_message("resp_1", "item_a", 0, "item_u", ["Yes", "."])
    feed(client, opening + streaming[:2])
    feed(client, [wire.input_delta("item_u", "Is it ")])  # between assistant deltas
    feed(client, streaming[2:])
    feed(client, wire.close_audio_message("resp_1", "item_a", 0, "item_u", final, "Yes."))
    feed(client, [wire.response_done("resp_1", [final])])


@by_name
def test_user_transcript_completed_after_response_done(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    _answered_turn(wire, client)
    user = client.conversation.get("item_u")
    assert (user.text, user.parts[0].done) == ("Is it ", False)
    feed(
        client,
        [wire.input_delta("item_u", "sunny?"), wire.input_completed("item_u", "Is it sunny?")],
    )
    assert (user.text, user.parts[0].done) == ("Is it sunny?", True)
    assert [item.text for item in client.conversation.items] == ["Is it sunny?", "Yes."]
    # A late item event with `transcript: null` must not erase it.
    feed(client, wire.item_done(wire.message("item_u", "user", [{"type": "input_audio"}]), None))
    assert user.text == "Is it sunny?"


@by_name
def test_user_transcript_that_overtakes_its_item(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    feed(client, [wire.input_delta("item_u", "Hel"), wire.input_completed("item_u", "Hello")])
    assert "item_u" not in client.conversation
    feed(client, wire.user_audio_item("item_u", None))
    assert client.conversation.get("item_u").text == "Hello"


@by_name
def test_user_transcription_failure(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    feed(client, [wire.committed("item_u", None), wire.input_failed("item_u")])
    part = client.conversation.get("item_u").parts[0]
    assert part.transcript_error is not None
    assert part.transcript_error.code == "audio_unintelligible"


# --- ordering by previous_item_id ----------------------------------------------------------


def _text_item(wire: Wire, item_id: str, previous: str | None) -> list[dict[str, Any]]:
    item = wire.message(item_id, "user", [{"type": "input_text", "text": item_id}])
    return wire.item_added(item, previous) + wire.item_done(item, previous)


@by_name
def test_items_inserted_out_of_order(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    feed(client, _text_item(wire, "A", None) + _text_item(wire, "B", "A"))
    feed(client, _text_item(wire, "C", "B"))
    feed(client, _text_item(wire, "X", "A"))  # inserted in the middle
    assert client.conversation.ids == ["A", "X", "B", "C"]
    feed(client, _text_item(wire, "Y", "X") + _text_item(wire, "Z", "C"))
    assert client.conversation.ids == ["A", "X", "Y", "B", "C", "Z"]
    feed(client, _text_item(wire, "R", None))  # a new first item (created at "root")
    assert client.conversation.ids == ["R", "A", "X", "Y", "B", "C", "Z"]
    feed(client, _text_item(wire, "Q", "unknown"))  # anchor unknown: appended
    assert client.conversation.ids[-1] == "Q"
    assert client.conversation.get("X").text == "X" and client.conversation.get("X").parts[0].done


@by_name
def test_output_item_is_moved_when_its_position_arrives(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    feed(client, _text_item(wire, "A", None) + _text_item(wire, "B", "A"))
    opened = wire.message("item_a", "assistant", [], status="in_progress")
    feed(client, [wire.response_created("resp_1"), wire.output_item_added("resp_1", 0, opened)])
    assert client.conversation.ids == ["A", "B", "item_a"]  # provisional
    feed(client, wire.item_added(opened, "A"))
    assert client.conversation.ids == ["A", "item_a", "B"]


@by_name
def test_deleted_items_are_removed(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    feed(client, _text_item(wire, "A", None) + _text_item(wire, "B", "A"))
    assert client.delete_item("A")
    assert not client.delete_item("nope")
    assert [frame["item_id"] for frame in sent(client)] == ["A"]
    feed(client, [wire.deleted("A")])
    assert client.conversation.ids == ["B"] and "A" not in client.conversation
    feed(client, _text_item(wire, "C", "B"))
    assert client.conversation.ids == ["B", "C"]


# --- unknown and hostile input -------------------------------------------------------------


@by_name
def test_unknown_events_and_fields_are_tolerated(dialect: Dialect) -> None:
    client = RealtimeClient(dialect)
    events = feed(
        client,
        [
            {"type": "mcp_list_tools.in_progress", "event_id": "event_1", "item_id": "x"},
            {"type": "brand.new.event", "surprise": [1, 2]},
            {
                "type": "input_audio_buffer.speech_started",
                "event_id": "event_2",
                "audio_start_ms": 5,
                "item_id": "item_1",
                "new_field": {"nested": True},
            },
            {"type": "input_audio_buffer.speech_stopped"},  # every field missing
            {"type": "response.output_audio.delta", "item_id": 7, "content_index": "0"},
        ],
    )
    unknown, brand_new, started, stopped, audio = events
    assert isinstance(unknown, Unknown) and unknown.type == "mcp_list_tools.in_progress"
    assert unknown.event_id == "event_1" and unknown.raw["item_id"] == "x"
    assert isinstance(brand_new, Unknown) and brand_new.raw["surprise"] == [1, 2]
    assert (started.item_id, started.audio_start_ms) == ("item_1", 5)
    assert started.raw["new_field"] == {"nested": True}
    assert (stopped.item_id, stopped.audio_end_ms, stopped.event_id) == ("", 0, "")
    assert isinstance(audio, AudioDelta)
    assert (audio.item_id, audio.content_index, audio.pcm) == ("", 0, b"")
    assert len(client.conversation) == 0  # nothing to attach an id-less delta to


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ("{not json", "frame is not valid JSON"),
        ("", "frame is not valid JSON"),
        ("[1, 2]", "frame is a JSON array, not an object"),
        ('"session.created"', "frame is a JSON string, not an object"),
        ("42", "frame is a JSON number, not an object"),
        ("null", "frame is a JSON null, not an object"),
        ('{"event_id": "e"}', "event has no 'type'"),
        ('{"type": 7}', "event has a non-string 'type'"),
        ('{"type": null}', "event has a non-string 'type'"),
        (b"\xff\xfe{}", "frame is not UTF-8 text"),
        (
            '{"type": "response.output_audio.delta", "item_id": "i", "delta": "not base64!"}',
            "response.output_audio.delta carries invalid base64 audio",
        ),
        (
            '{"type": "response.audio.delta", "delta": "QUJDRA"}',  # missing padding
            "response.audio.delta carries invalid base64 audio",
        ),
        (
            '{"type": "conversation.item.retrieved", "item": {"id": "i", "type": "message",'
            ' "content": [{"type": "input_audio", "audio": "%%%"}]}}',
            "conversation.item.retrieved carries invalid base64 audio",
        ),
    ],
)
@by_name
def test_malformed_frames_become_protocol_errors(
    dialect: Dialect, frame: str | bytes, message: str
) -> None:
    client = RealtimeClient(dialect)
    client.receive_text(frame)
    client.receive_text('{"type": "input_audio_buffer.cleared", "event_id": "event_ok"}')
    error, after = client.events_received()
    assert isinstance(error, ProtocolError) and error.message.startswith(message), error
    assert error.type == "protocol_error"
    assert after.event_id == "event_ok"  # the session goes on


def test_protocol_errors_quote_a_truncated_frame() -> None:
    huge = '{"type": "response.output_audio.delta", "delta": "' + "A" * 100_000 + '!"}'
    error = decode_server_event(huge, GA)
    assert isinstance(error, ProtocolError)
    assert len(error.text) < MAX_QUOTED_CHARS + 40 and error.text.startswith(huge[:50])
    assert f"({len(huge)} characters)" in error.text
    short = decode_server_event("{oops", GA)
    assert short.text == "{oops"


def test_decoder_survives_mangled_reference_frames() -> None:
    """Every reference frame with fields deleted or replaced by wrong types still decodes to
    its event class (never an exception, never our internal-error path)."""
    rng = random.Random(20260822)
    oddities: list[Any] = [None, 7, -1, 2.5, True, "x", [], {}, [1, "a"], {"k": None}]
    frames = [frame for path in sorted(FIXTURES.glob("*.jsonl")) for frame in load(path.name)]
    for frame in frames:
        expected = type(decode_server_event(json.dumps(frame), GA))
        for _ in range(25):
            mangled = copy.deepcopy(frame)
            _mangle(mangled, rng, oddities)
            event = decode_server_event(json.dumps(mangled), GA)
            if isinstance(event, ProtocolError):
                assert "base64" in event.message, (event.message, mangled)
            else:
                assert type(event) is expected, mangled


def _mangle(value: Any, rng: random.Random, oddities: list[Any]) -> None:
    if isinstance(value, dict):
        for key in list(value):
            if key == "type" and "event_id" in value:
                continue  # keep the event type; the point is the fields
            roll = rng.random()
            if roll < 0.15:
                del value[key]
            elif roll < 0.3:
                value[key] = rng.choice(oddities)
            else:
                _mangle(value[key], rng, oddities)
    elif isinstance(value, list):
        for item in value:
            _mangle(item, rng, oddities)


# --- errors --------------------------------------------------------------------------------

ERROR_CODES = [
    "invalid_event",
    "invalid_value",
    "unknown_parameter",
    "missing_required_parameter",
    "input_audio_buffer_commit_empty",
    "conversation_already_has_active_response",
    "response_cancel_not_active",
    "item_truncate_invalid_item_id",
    "session_expired",
    "invalid_api_key",
    "beta_api_shape_disabled",
    "cannot_update_voice",
    None,
]


@pytest.mark.parametrize("code", ERROR_CODES)
@by_name
def test_each_error_code_and_its_harmless_flag(dialect: Dialect, code: str | None) -> None:
    client = RealtimeClient(dialect)
    (event,) = feed(client, [Wire(dialect).error(code, event_id="evt_cli_4")])
    assert isinstance(event, ServerError)
    assert (event.error.code, event.error.event_id) == (code, "evt_cli_4")
    expected = code in {
        "response_cancel_not_active",
        "conversation_already_has_active_response",
        "input_audio_buffer_commit_empty",
        "item_truncate_invalid_item_id",
    }
    assert event.harmless is expected
    assert (code in HARMLESS_ERROR_CODES) is expected


@by_name
def test_errors_name_the_request_that_caused_them(dialect: Dialect) -> None:
    client = RealtimeClient(dialect, id_prefix="t")
    client.update_session(SessionConfig(voice="nope"))
    (update,) = sent(client)
    (error,) = feed(client, [Wire(dialect).error("invalid_value", event_id=update["event_id"])])
    assert client.sent_event_type(error.error.event_id) == "session.update"
    assert client.sent_event_type("evt_unknown") is None and client.sent_event_type(None) is None


# --- response state ------------------------------------------------------------------------


@by_name
def test_cancel_only_while_a_response_is_active(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    assert not client.cancel_response()
    assert client.data_to_send() == []
    assert client.create_response()
    assert client.response_active and client.active_response_id is None
    assert client.cancel_response()  # pending counts as active
    assert not client.cancel_response()  # once is enough
    assert [frame["type"] for frame in sent(client)] == ["response.create", "response.cancel"]
    feed(client, [wire.response_created("resp_1")])
    assert client.active_response_id == "resp_1"
    assert not client.cancel_response()  # the cancel already sent applies to resp_1
    feed(client, [wire.response_done("resp_1", [], status="cancelled", reason="client_cancelled")])
    assert not client.response_active
    assert not client.cancel_response()
    assert client.data_to_send() == []


@by_name
def test_create_is_deferred_until_response_done(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    assert client.create_response(instructions="first")
    assert not client.create_response(instructions="second")
    assert not client.create_response(instructions="third")  # replaces "second"
    assert client.response_deferred
    (first,) = sent(client)
    assert first["response"]["instructions"] == "first"
    feed(client, [wire.response_created("resp_1")])
    assert client.data_to_send() == []
    feed(client, [wire.response_done("resp_1", [])])
    (deferred,) = sent(client)
    assert deferred["type"] == "response.create"
    assert deferred["response"]["instructions"] == "third"
    assert client.response_active and not client.response_deferred
    feed(client, [wire.response_created("resp_2"), wire.response_done("resp_2", [])])
    assert client.data_to_send() == [] and not client.response_active


@by_name
def test_response_started_by_server_vad(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    feed(client, [wire.committed("item_u", None), wire.response_created("resp_vad")])
    assert client.active_response_id == "resp_vad"
    assert not client.create_response()  # deferred: sending now would be refused
    assert client.cancel_response()
    (cancel,) = sent(client)
    assert cancel == {
        "type": "response.cancel",
        "event_id": cancel["event_id"],
        "response_id": "resp_vad",
    }
    feed(
        client, [wire.response_done("resp_vad", [], status="cancelled", reason="client_cancelled")]
    )
    (create,) = sent(client)
    assert create["type"] == "response.create"


@by_name
def test_vad_response_overtakes_our_create(dialect: Dialect) -> None:
    """We send response.create; VAD's response.created arrives first; the server refuses ours
    with the harmless error. One response runs, and nothing more is sent afterwards."""
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    assert client.create_response()
    (create,) = sent(client)
    feed(client, [wire.response_created("resp_vad")])
    assert client.active_response_id == "resp_vad"
    (refusal,) = feed(
        client, [wire.error("conversation_already_has_active_response", create["event_id"])]
    )
    assert refusal.harmless
    assert client.active_response_id == "resp_vad" and client.response_active
    feed(client, [wire.response_done("resp_vad", [])])
    assert not client.response_active and client.data_to_send() == []


@by_name
def test_refused_create_without_event_id_does_not_wedge(dialect: Dialect) -> None:
    """The real server sends this refusal with `event_id: null` (§10.5). If our create is the
    only one outstanding, it was the one refused."""
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    assert client.create_response()
    feed(client, [wire.error("conversation_already_has_active_response", None)])
    assert not client.response_active
    assert client.create_response()


@by_name
def test_failed_create_releases_the_deferred_one(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    client.create_response(instructions="bad")
    client.create_response(instructions="good")
    (bad,) = sent(client)
    feed(client, [wire.error("invalid_value", bad["event_id"])])
    (good,) = sent(client)
    assert good["response"]["instructions"] == "good" and client.response_active


@by_name
def test_out_of_band_response_runs_beside_the_default_one(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    feed(client, [wire.response_created("resp_main")])
    assert client.create_response(conversation="none", instructions="Summarise.")
    (oob,) = sent(client)
    assert oob["response"]["conversation"] == "none"
    side = wire.response_created("resp_side")
    side["response"]["conversation_id"] = None
    feed(client, [side])
    assert client.active_response_id == "resp_main"
    feed(client, [wire.response_done("resp_side", [])])
    assert client.active_response_id == "resp_main"
    feed(client, [wire.response_done("resp_main", [])])
    assert not client.response_active


# --- input buffer --------------------------------------------------------------------------


@by_name
def test_commit_needs_100_ms(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    assert not client.commit_audio()
    client.append_audio(bytes(4799))  # 99.98 ms of PCM16
    assert not client.commit_audio()
    assert [frame["type"] for frame in sent(client)] == ["input_audio_buffer.append"]
    client.append_audio(b"\0")
    assert client.buffered_input_ms == 100
    assert client.commit_audio()
    assert not client.commit_audio()  # the buffer is empty again
    client.append_audio(bytes(9600))
    client.clear_audio()
    assert not client.commit_audio()
    frames = [frame["type"] for frame in sent(client)]
    assert frames == [
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "input_audio_buffer.append",
        "input_audio_buffer.clear",
    ]
    # The server's answers to our own commit and clear do not reset audio appended since.
    client.append_audio(bytes(2400))
    feed(client, [wire.committed("item_1", None), wire.cleared()])
    assert client.buffered_input_ms == 50


@by_name
def test_server_vad_commit_empties_the_buffer(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    client.append_audio(bytes(48 * 500))
    feed(client, [wire.speech_started("item_1", 0), wire.committed("item_1", None)])
    assert client.buffered_input_ms == 0
    assert not client.commit_audio()


@pytest.mark.parametrize("fmt", ["g711_ulaw", "g711_alaw"])
@by_name
def test_commit_counts_g711_at_8_bytes_per_ms(dialect: Dialect, fmt: str) -> None:
    client = RealtimeClient(dialect)
    client.update_session(SessionConfig(input_audio_format=fmt))
    client.append_audio(bytes(799))
    assert not client.commit_audio()
    client.append_audio(b"\0")
    assert client.commit_audio()
    # Switching formats mid-buffer: 50 ms of G.711 + 50 ms of PCM16.
    client.append_audio(bytes(400))
    client.update_session(SessionConfig(input_audio_format="pcm16"))
    client.append_audio(bytes(2400))
    assert client.buffered_input_ms == 100
    assert client.commit_audio()


@by_name
def test_session_reported_input_format_is_used(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    session = {
        "type": "realtime",
        "id": "sess_1",
        "audio": {"input": {"format": {"type": "audio/pcmu"}}},
    }
    if dialect is BETA:
        session = {"id": "sess_1", "input_audio_format": "g711_ulaw"}
    (created,) = feed(client, [wire._frame("session.created", session=session)])
    assert isinstance(created, SessionCreated) and created.session_id == "sess_1"
    client.append_audio(bytes(800))
    assert client.commit_audio()


# --- truncation ----------------------------------------------------------------------------


def _spoken(dialect: Dialect, byte_count: int, output_format: str = "pcm16") -> RealtimeClient:
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    if output_format != "pcm16":
        session = {
            "type": "realtime",
            "audio": {"output": {"format": GA.format_object(output_format)}},
        }
        if dialect is BETA:
            session = {"output_audio_format": output_format}
        feed(client, [wire._frame("session.updated", session=session)])
    opened = wire.message("item_a", "assistant", [], status="in_progress")
    feed(
        client,
        [
            wire.response_created("resp_1"),
            wire.output_item_added("resp_1", 0, opened),
            wire.part_added("resp_1", "item_a", 0),
            wire.audio("resp_1", "item_a", 0, bytes(byte_count)),
        ],
    )
    return client


@by_name
def test_truncate_is_clamped_to_audio_received(dialect: Dialect) -> None:
    client = _spoken(dialect, 48 * 1234 + 47)  # 1234.98 ms
    assert client.truncate("item_a", 0, 5000) == 1234
    assert client.truncate("item_a", 0, 800) == 800
    assert [frame["audio_end_ms"] for frame in sent(client)] == [1234, 800]


@pytest.mark.parametrize("ms", [0, -5])
@by_name
def test_truncate_sends_nothing_at_or_below_zero(dialect: Dialect, ms: int) -> None:
    client = _spoken(dialect, 48 * 100)
    assert client.truncate("item_a", 0, ms) is None
    assert client.data_to_send() == []


@by_name
def test_truncate_sends_nothing_without_audio_or_item(dialect: Dialect) -> None:
    wire = Wire(dialect)
    client = _spoken(dialect, 47)  # less than 1 ms received
    assert client.truncate("item_a", 0, 500) is None
    assert client.truncate("item_a", 1, 500) is None  # no such part
    assert client.truncate("item_missing", 0, 500) is None
    feed(client, [wire.committed("item_u", "item_a")] + wire.user_audio_item("item_u", "item_a"))
    assert client.truncate("item_u", 0, 500) is None  # the user's own audio
    assert client.data_to_send() == []


@pytest.mark.parametrize("fmt", ["g711_ulaw", "g711_alaw"])
@by_name
def test_truncate_g711_at_8_bytes_per_ms(dialect: Dialect, fmt: str) -> None:
    client = _spoken(dialect, 8 * 250 + 7, output_format=fmt)
    assert client.conversation.audio_ms("item_a", 0) == pytest.approx(250.875)
    assert client.truncate("item_a", 0, 1000) == 250


# --- the sans-I/O contract -----------------------------------------------------------------


def test_events_and_frames_are_handed_over_once() -> None:
    client = RealtimeClient(GA)
    client.receive_text('{"type": "input_audio_buffer.cleared"}')
    client.clear_audio()
    assert len(client.events_received()) == 1 and client.events_received() == []
    assert len(client.data_to_send()) == 1 and client.data_to_send() == []


def test_events_are_frozen_and_compare_without_raw() -> None:
    first = decode_server_event('{"type": "conversation.item.deleted", "item_id": "a"}', GA)
    second = decode_server_event(
        '{"type": "conversation.item.deleted", "item_id": "a", "extra": 1}', BETA
    )
    assert first == second and first.raw != second.raw
    assert "raw" not in repr(first)
    with pytest.raises(AttributeError):
        first.item_id = "b"  # type: ignore[misc]


@by_name
def test_item_events_of_both_dialects_normalise_alike(dialect: Dialect) -> None:
    wire = Wire(dialect)
    item = wire.message("item_a", "assistant", [{"type": wire.audio_type(), "transcript": "Hi"}])
    (added,) = feed(RealtimeClient(dialect), wire.item_added(item, "item_u"))
    assert isinstance(added, ItemAdded) and added.type == "conversation.item.added"
    assert added.item.content[0].type == "output_audio"
    assert added.previous_item_id == "item_u"
    if dialect is GA:
        (done,) = feed(RealtimeClient(dialect), wire.item_done(item, "item_u"))
        assert isinstance(done, ItemDone)


def test_item_state_helpers() -> None:
    item = ItemState(id="i")
    assert item.part(0) is None and item.text == "" and item.audio_ms == 0
    assert not item.interrupted


@by_name
def test_opening_events_never_overwrite_streamed_text(dialect: Dialect) -> None:
    """Events that open an item or part (`.added`) carry empty or partial text; arriving late,
    they must neither replace the deltas received nor mark the text final."""
    wire = Wire(dialect)
    client = RealtimeClient(dialect)
    feed(
        client,
        [
            wire.response_created("resp_1"),
            wire.transcript("resp_1", "item_a", 0, "Hel"),
            wire.transcript("resp_1", "item_a", 0, "lo"),
        ],
    )
    partial = wire.message(
        "item_a", "assistant", [{"type": wire.audio_type(), "transcript": "He"}], "in_progress"
    )
    feed(
        client,
        [
            wire.output_item_added("resp_1", 0, partial),
            *wire.item_added(partial, None),
            wire.part_added("resp_1", "item_a", 0),
        ],
    )
    part = client.conversation.get("item_a").parts[0]
    assert (part.text, part.done) == ("Hello", False)
    feed(client, [wire.part_done("resp_1", "item_a", 0, "Hello!")])
    assert (part.text, part.done) == ("Hello!", True)


# --- every event kind, both spellings -------------------------------------------------------

NEUTRAL_NAMES = sorted(decode_module._DECODERS)


@pytest.mark.parametrize("neutral", NEUTRAL_NAMES)
@by_name
def test_every_known_event_decodes_in_both_spellings(dialect: Dialect, neutral: str) -> None:
    spellings = {neutral, BETA.wire_name(neutral) or neutral}
    for spelling in spellings:
        event = decode_server_event(json.dumps({"type": spelling, "event_id": "e"}), dialect)
        assert not isinstance(event, Unknown | ProtocolError), spelling
        assert (event.type, event.event_id, event.raw["type"]) == (neutral, "e", spelling)


@pytest.mark.parametrize(
    ("client_dialect", "fixture"),
    [(GA, "beta_voice_turn.jsonl"), (BETA, "ga_voice_turn.jsonl")],
    ids=["ga-reads-beta", "beta-reads-ga"],
)
def test_each_dialect_reads_the_other_spelling(client_dialect: Dialect, fixture: str) -> None:
    client = RealtimeClient(client_dialect)
    events = feed(client, load(fixture))
    assert not any(isinstance(event, Unknown | ProtocolError) for event in events)
    assert summary(client.conversation) == VOICE_TURN_STATE


def test_less_common_events_carry_their_fields() -> None:
    frames = [
        {"type": "conversation.created", "conversation": {"id": "conv_1", "object": "x"}},
        {
            "type": "conversation.item.input_audio_transcription.segment",
            "item_id": "item_u",
            "content_index": 0,
            "id": "seg_1",
            "text": "hello",
            "speaker": "A",
            "start": 0.5,
            "end": 1,
        },
        {
            "type": "input_audio_buffer.timeout_triggered",
            "item_id": "item_u",
            "audio_start_ms": 100,
            "audio_end_ms": 6100,
        },
        {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_u",
            "transcript": "hi",
            "usage": {"type": "duration", "seconds": 2},
        },
        {
            "type": "response.done",
            "response": {
                "id": "resp_1",
                "status": "failed",
                "status_details": {
                    "type": "failed",
                    "error": {"type": "server_error", "code": "internal"},
                },
                "usage": {"total_tokens": 3},
            },
        },
        {"type": "conversation.item.created", "item": {"id": "i", "type": "message"}},
    ]
    conversation, segment, timeout, completed, failed, legacy = (
        decode_server_event(json.dumps(frame), GA) for frame in frames
    )
    assert conversation.conversation_id == "conv_1"
    assert (segment.segment_id, segment.text, segment.speaker, segment.start, segment.end) == (
        "seg_1",
        "hello",
        "A",
        0.5,
        1.0,
    )
    assert (timeout.audio_start_ms, timeout.audio_end_ms) == (100, 6100)
    assert completed.usage is not None
    assert (completed.usage.type, completed.usage.seconds) == ("duration", 2.0)
    assert failed.status == "failed" and failed.status_details.error.code == "internal"
    assert failed.usage == Usage(total_tokens=3)
    assert isinstance(legacy, ItemAdded)  # GA clients also accept the legacy spelling


def test_rate_limits_and_transcription_usage_of_the_reference_turn() -> None:
    events = feed(RealtimeClient(GA), load("ga_voice_turn.jsonl"))
    limits = events[-1]
    assert [(r.name, r.limit, r.remaining, r.reset_seconds) for r in limits.rate_limits] == [
        ("tokens", 40000, 38490, 2.265)
    ]
    completed = events[16]
    assert completed.usage is not None
    assert (completed.usage.total_tokens, completed.usage.input_audio_tokens) == (22, 13)
