"""The session driver against the embedded local server (voicecli.server.LocalServer) over
loopback: a full manual-turn round trip in both dialects, and the server's refusal and fault
modes arriving as the right typed errors or events."""

from __future__ import annotations

import asyncio
import json
import math
import struct

import pytest

from voicecli.errors import AuthError, BetaShapeDisabled, ConnectError, SessionExpired
from voicecli.protocol import events as ev
from voicecli.protocol.dialects import SessionConfig
from voicecli.server import Faults, LocalServer, ServerOptions
from voicecli.session import ConnectionSettings, RealtimeSession


FAKE_KEY = "sk-local-DO-NOT-LEAK-abcdef0123456789"


def tone(ms: int, hz: float = 440.0) -> bytes:
    samples = 24 * ms
    return struct.pack(
        f"<{samples}h",
        *(int(8000 * math.sin(2 * math.pi * hz * i / 24000)) for i in range(samples)),
    )


async def until(session: RealtimeSession, kind: type[ev.Event], seen: list[ev.Event]) -> ev.Event:
    async for event in session.events():
        seen.append(event)
        if isinstance(event, kind):
            return event
    raise AssertionError(f"the session ended before {kind.__name__}")


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_manual_turn_round_trip_with_echo(dialect: str) -> None:
    options = ServerOptions(responder="echo", pace=0, auth="key", api_key=FAKE_KEY)
    sent: list[str] = []
    received: list[str] = []
    audio = tone(400)
    async with LocalServer(options) as server:
        session = await RealtimeSession.open(
            ConnectionSettings(url=server.url, api_key=FAKE_KEY, dialect=dialect, open_timeout=5),
            on_sent=sent.append,
            on_received=received.append,
        )
        seen: list[ev.Event] = []
        created = await asyncio.wait_for(until(session, ev.SessionCreated, seen), 5)
        assert created.model == "gpt-realtime"
        session.update_session(SessionConfig(turn_detection=None, voice="ash"))
        updated = await asyncio.wait_for(until(session, ev.SessionUpdated, seen), 5)
        assert updated.session.turn_detection is None and updated.session.voice == "ash"

        for start in range(0, len(audio), 960):  # 20 ms blocks, as the microphone sends them
            session.append_audio(audio[start : start + 960])
        assert session.commit_audio() is True
        assert session.create_response() is True
        done = await asyncio.wait_for(until(session, ev.ResponseDone, seen), 10)
        await session.close()

    assert done.status == "completed"
    echoed = b"".join(e.pcm for e in seen if isinstance(e, ev.AudioDelta))
    assert echoed == audio
    transcript = "".join(e.delta for e in seen if isinstance(e, ev.TranscriptDelta))
    assert transcript.startswith("Echo of 0.4 seconds")
    assert not any(isinstance(e, ev.ServerError | ev.ProtocolError) for e in seen)
    sent_types = [json.loads(text)["type"] for text in sent]
    assert sent_types[0] == "session.update" and sent_types[-2:] == [
        "input_audio_buffer.commit",
        "response.create",
    ]
    # The 20 blocks were appended before the writer ran: they went out as one frame.
    assert sent_types.count("input_audio_buffer.append") == 1
    assert len(received) == session.frames_received >= len(seen)
    assert not any(FAKE_KEY in text for text in sent + received)
    assert session.closed_reason is None


@pytest.mark.parametrize("failure", ["401", "403", "error"])
async def test_rejected_key_is_an_auth_error_in_every_form(failure: str) -> None:
    options = ServerOptions(auth="key", api_key="sk-the-right-one", auth_failure=failure)
    async with LocalServer(options) as server:
        with pytest.raises(AuthError) as caught:
            await RealtimeSession.open(
                ConnectionSettings(url=server.url, api_key=FAKE_KEY, open_timeout=5)
            )
    assert "rejected the API key" in str(caught.value)
    assert FAKE_KEY not in str(caught.value)


async def test_missing_key_is_an_auth_error_saying_so() -> None:
    async with LocalServer(ServerOptions(auth="require")) as server:
        with pytest.raises(AuthError, match="requires an API key .* and none is set"):
            await RealtimeSession.open(ConnectionSettings(url=server.url, open_timeout=5))


async def test_beta_after_the_shutdown_is_beta_shape_disabled() -> None:
    async with LocalServer(ServerOptions(beta_disabled=True)) as server:
        with pytest.raises(BetaShapeDisabled, match="use --dialect ga"):
            await RealtimeSession.open(
                ConnectionSettings(url=server.url, dialect="beta", open_timeout=5)
            )
        # GA on the same server still works.
        session = await RealtimeSession.open(ConnectionSettings(url=server.url, open_timeout=5))
        await session.close()


async def test_session_expiry_ends_events_with_session_expired() -> None:
    async with LocalServer(ServerOptions(expire_after_s=0.3)) as server:
        session = await RealtimeSession.open(ConnectionSettings(url=server.url, open_timeout=5))
        seen: list[ev.Event] = []
        with pytest.raises(SessionExpired) as caught:
            async for event in session.events():
                seen.append(event)
        await session.close()
    assert isinstance(seen[-1], ev.ServerError) and seen[-1].error.code == "session_expired"
    assert caught.value.recoverable
    assert "time limit" in str(caught.value)


async def test_dropped_connection_is_a_recoverable_1006() -> None:
    async with LocalServer(ServerOptions(faults=Faults(close_after_events=1))) as server:
        session = await RealtimeSession.open(ConnectionSettings(url=server.url, open_timeout=5))
        with pytest.raises(ConnectError) as caught:
            async for _ in session.events():
                pass
        await session.close()
    assert caught.value.recoverable and caught.value.close_code == 1006


async def test_oversized_and_malformed_frames_do_not_end_the_session() -> None:
    faults = Faults(
        oversized_after_events=1, oversized_bytes=3 * 1024 * 1024, malformed_after_events=1
    )
    async with LocalServer(ServerOptions(faults=faults)) as server:
        session = await RealtimeSession.open(ConnectionSettings(url=server.url, open_timeout=5))
        kinds: list[ev.Event] = []
        async for event in session.events():
            kinds.append(event)
            if len(kinds) == 3:
                break
        assert session.is_open
        await session.close()
    assert isinstance(kinds[0], ev.SessionCreated)
    assert isinstance(kinds[1], ev.ProtocolError)
    assert isinstance(kinds[2], ev.Unknown) and kinds[2].type == "voicecli.fault.oversized"
    assert len(json.dumps(dict(kinds[2].raw))) >= 3 * 1024 * 1024
