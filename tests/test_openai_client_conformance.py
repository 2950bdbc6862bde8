"""The official openai Python client, pointed at the local server, completes a text turn and an
audio turn (GA) with its own send/recv and its own parsed event types.

openai 3.x builds the WebSocket URL from `base_url` (http -> ws, + `/realtime`), so
`base_url="http://127.0.0.1:PORT/v1"` reaches `ws://127.0.0.1:PORT/v1/realtime?model=...`;
`websocket_base_url` works as well.
"""

from __future__ import annotations

import base64

import openai
import pytest
from openai.types.realtime import (
    ConversationItemInputAudioTranscriptionCompletedEvent,
    InputAudioBufferCommittedEvent,
    InputAudioBufferSpeechStartedEvent,
    InputAudioBufferSpeechStoppedEvent,
    RateLimitsUpdatedEvent,
    ResponseAudioDeltaEvent,
    ResponseAudioTranscriptDoneEvent,
    ResponseCreatedEvent,
    ResponseDoneEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
    SessionCreatedEvent,
    SessionUpdatedEvent,
)

from voicecli.server import LocalServer, ScriptedResponder, ServerOptions, audio


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


async def events_until_done(connection) -> list:
    events = []
    async for event in connection:
        events.append(event)
        if isinstance(event, RateLimitsUpdatedEvent):
            return events
    raise AssertionError("the connection ended before the response did")


async def test_official_client_text_turn():
    script = ScriptedResponder.from_text("The capital of France is Paris.")
    async with LocalServer(ServerOptions(responder=script, pace=0, turn_detection=None)) as server:
        client = openai.AsyncOpenAI(api_key="sk-test", base_url=server.http_base_url)
        async with client.realtime.connect(model="gpt-realtime") as connection:
            created = await connection.recv()
            assert isinstance(created, SessionCreatedEvent)
            assert created.session.model == "gpt-realtime"
            await connection.session.update(
                session={"type": "realtime", "output_modalities": ["text"]}
            )
            assert isinstance(await connection.recv(), SessionUpdatedEvent)
            await connection.conversation.item.create(
                item={
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "What is the capital of France?"}],
                }
            )
            await connection.response.create()
            events = await events_until_done(connection)
    assert isinstance(events[2], ResponseCreatedEvent)
    text = "".join(e.delta for e in events if isinstance(e, ResponseTextDeltaEvent))
    assert text == "The capital of France is Paris."
    assert [e.text for e in events if isinstance(e, ResponseTextDoneEvent)] == [text]
    done = next(e for e in events if isinstance(e, ResponseDoneEvent))
    assert done.response.status == "completed"
    assert done.response.usage is not None and done.response.usage.output_tokens > 0


async def test_official_client_audio_turn_with_server_vad_and_transcription():
    script = ScriptedResponder.from_text(
        '{"text": "Echoing you.", "audio": "echo", "user_transcript": "Testing one two."}'
    )
    user_audio = audio.silence(300) + audio.tone(800) + audio.silence(500)
    async with LocalServer(ServerOptions(responder=script, pace=0)) as server:
        client = openai.AsyncOpenAI(
            api_key="sk-test",
            base_url="http://unused.invalid/v1",
            websocket_base_url=f"ws://127.0.0.1:{server.port}/v1",
        )
        async with client.realtime.connect(model="gpt-realtime") as connection:
            assert isinstance(await connection.recv(), SessionCreatedEvent)
            await connection.session.update(
                session={
                    "type": "realtime",
                    "audio": {
                        "input": {"transcription": {"model": "gpt-4o-mini-transcribe"}},
                        "output": {"voice": "marin"},
                    },
                }
            )
            updated = await connection.recv()
            assert isinstance(updated, SessionUpdatedEvent)
            assert updated.session.audio.output.voice == "marin"
            for start in range(0, len(user_audio), 2400):  # 50 ms, as the SDK example does
                chunk = base64.b64encode(user_audio[start : start + 2400]).decode()
                await connection.input_audio_buffer.append(audio=chunk)
            events = await events_until_done(connection)
    kinds = [type(e) for e in events]
    assert kinds[:3] == [
        InputAudioBufferSpeechStartedEvent,
        InputAudioBufferSpeechStoppedEvent,
        InputAudioBufferCommittedEvent,
    ]
    transcript = next(
        e for e in events if isinstance(e, ConversationItemInputAudioTranscriptionCompletedEvent)
    )
    assert transcript.transcript == "Testing one two."
    played = b"".join(
        base64.b64decode(e.delta) for e in events if isinstance(e, ResponseAudioDeltaEvent)
    )
    started, stopped = events[0], events[1]
    assert len(played) == (stopped.audio_end_ms - started.audio_start_ms) * 48
    assert [e.transcript for e in events if isinstance(e, ResponseAudioTranscriptDoneEvent)] == [
        "Echoing you."
    ]
    done = next(e for e in events if isinstance(e, ResponseDoneEvent))
    assert done.response.status == "completed"
    assert done.response.audio.output.voice == "marin"


async def test_official_client_manual_audio_turn():
    async with LocalServer(ServerOptions(pace=0, turn_detection=None)) as server:
        client = openai.AsyncOpenAI(api_key="sk-test", base_url=server.http_base_url)
        async with client.realtime.connect(model="gpt-realtime") as connection:
            assert isinstance(await connection.recv(), SessionCreatedEvent)
            pcm = audio.tone(600)
            await connection.input_audio_buffer.append(audio=base64.b64encode(pcm).decode())
            await connection.input_audio_buffer.commit()
            await connection.response.create()
            events = await events_until_done(connection)
    played = b"".join(
        base64.b64decode(e.delta) for e in events if isinstance(e, ResponseAudioDeltaEvent)
    )
    assert played == pcm  # the echo responder replays the committed audio
    assert isinstance(events[0], InputAudioBufferCommittedEvent)
