"""`RealtimeClient` frames consecutive appends as one `input_audio_buffer.append`.

The mic hands audio over in blocks (several at once when the engine batches them); each frame
costs base64, JSON and a WebSocket write, so audio appended before the writer next asks goes
out as one frame, in its place among the other events, never more than 1 s per frame.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.schema_oracle import validate_client_event
from voicecli.protocol import GA, RealtimeClient, SessionConfig


BLOCK = 960  # 20 ms of pcm16 at 24 kHz


def block(index: int) -> bytes:
    return bytes([index % 256]) * BLOCK


def sent(client: RealtimeClient) -> list[dict[str, Any]]:
    return [json.loads(text) for text in client.data_to_send()]


def audio_of(event: dict[str, Any]) -> bytes:
    assert event["type"] == "input_audio_buffer.append"
    return base64.b64decode(event["audio"])


def test_appends_before_the_writer_asks_become_one_frame() -> None:
    client = RealtimeClient(GA, id_prefix="t")
    for index in range(5):
        client.append_audio(block(index))
    frames = sent(client)
    assert [event["type"] for event in frames] == ["input_audio_buffer.append"]
    assert audio_of(frames[0]) == b"".join(block(index) for index in range(5))
    assert validate_client_event(frames[0], "ga") == []
    assert client.buffered_input_ms == pytest.approx(100)
    assert sent(client) == []  # each frame once


def test_another_event_between_appends_keeps_its_place() -> None:
    client = RealtimeClient(GA, id_prefix="t")
    client.append_audio(block(1))
    client.append_audio(block(2))
    client.update_session(SessionConfig(voice="ash"))
    client.append_audio(block(3))
    assert client.commit_audio() is False  # 60 ms: below the 100 ms the API needs
    client.append_audio(block(4))
    client.append_audio(block(5))
    assert client.commit_audio() is True
    frames = sent(client)
    assert [event["type"] for event in frames] == [
        "input_audio_buffer.append",
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
    ]
    assert audio_of(frames[0]) == block(1) + block(2)
    assert audio_of(frames[2]) == block(3) + block(4) + block(5)
    ids = [event["event_id"] for event in frames]
    assert len(set(ids)) == len(ids)


def test_a_frame_carries_at_most_one_second() -> None:
    client = RealtimeClient(GA, id_prefix="t")
    blocks = [block(index) for index in range(130)]  # 2.6 s
    for pcm in blocks:
        client.append_audio(pcm)
    frames = sent(client)
    sizes = [len(audio_of(event)) for event in frames]
    assert sizes == [48_000, 48_000, 28_800]
    assert b"".join(audio_of(event) for event in frames) == b"".join(blocks)


def test_empty_appends_send_nothing() -> None:
    client = RealtimeClient(GA, id_prefix="t")
    client.append_audio(b"")
    assert sent(client) == []
