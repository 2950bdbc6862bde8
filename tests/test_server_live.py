"""The local server over real WebSockets on 127.0.0.1: a rich session per dialect whose every
event is checked against the official openai types, the handshake (dialects, subprotocols,
auth modes, beta shutdown), expiry, pacing and the fault switches."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from tests.schema_oracle import validate_server_event
from voicecli.server import Faults, LocalServer, ScriptedResponder, ServerOptions, audio


class Client:
    """A raw WebSocket client that records every server event it reads."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def send(self, **event: Any) -> None:
        await self.ws.send(json.dumps(event))

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        event = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.events.append(event)
        return event

    async def until(self, event_type: str, timeout: float = 5.0) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["type"] != event_type:
            seen.append(await self.recv(timeout))
        return seen

    async def append(self, pcm: bytes, chunk: int = 960) -> None:
        for start in range(0, len(pcm), chunk):
            data = base64.b64encode(pcm[start : start + chunk]).decode()
            await self.send(type="input_audio_buffer.append", audio=data)


def headers(dialect: str, key: str = "sk-test") -> dict[str, str]:
    result = {"Authorization": f"Bearer {key}"}
    if dialect == "beta":
        result["OpenAI-Beta"] = "realtime=v1"
    return result


RICH_SCRIPT = "\n".join(
    json.dumps(entry)
    for entry in [
        {"text": "Hello from the script.", "audio_ms": 300, "user_transcript": "Hi there"},
        {"text": "Manual turn answer.", "audio_ms": 300},
        {"text": "A text answer."},
        {"function_call": {"name": "get_weather", "arguments": {"city": "Paris"}}},
        {"text": "It is sunny.", "audio_ms": 300},
        {"text": "A long answer that will be cancelled.", "audio_ms": 5000},
    ]
)


def session_for(dialect: str, ga: dict[str, Any], beta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "realtime", **ga} if dialect == "ga" else beta


@pytest.mark.parametrize("dialect", ["ga", "beta"])
async def test_rich_session_events_all_match_the_official_types(dialect: str):
    responder = ScriptedResponder.from_text(RICH_SCRIPT)
    options = ServerOptions(responder=responder, pace=0.2, seed=3)
    async with LocalServer(options) as server:
        async with connect(server.url, additional_headers=headers(dialect), max_size=None) as ws:
            client = Client(ws)
            await client.until("session.created")
            tools = [
                {
                    "type": "function",
                    "name": "get_weather",
                    "description": "Weather for a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                }
            ]
            transcription = {"model": "whisper-1"}
            update = session_for(
                dialect,
                {"audio": {"input": {"transcription": transcription}}, "tools": tools},
                {"input_audio_transcription": transcription, "tools": tools},
            )
            await client.send(type="session.update", session=update)
            await client.until("session.updated")

            # 1. a server-VAD voice turn
            await client.append(audio.silence(400) + audio.tone(700) + audio.silence(600))
            turn = await client.until("rate_limits.updated")
            completed = [
                e
                for e in turn
                if e["type"] == "conversation.item.input_audio_transcription.completed"
            ]
            assert completed[0]["transcript"] == "Hi there"
            user_item_id = completed[0]["item_id"]

            # 2. a manual turn
            manual = session_for(
                dialect, {"audio": {"input": {"turn_detection": None}}}, {"turn_detection": None}
            )
            await client.send(type="session.update", session=manual)
            await client.until("session.updated")
            await client.append(audio.tone(300))
            await client.send(type="input_audio_buffer.commit")
            await client.until("input_audio_buffer.committed")
            await client.send(type="response.create")
            await client.until("rate_limits.updated")

            # 3. a text turn answered in text
            content = [{"type": "input_text", "text": "Say something."}]
            user_text = {"type": "message", "role": "user", "content": content}
            await client.send(type="conversation.item.create", item=user_text)
            text_only = (
                {"output_modalities": ["text"]} if dialect == "ga" else {"modalities": ["text"]}
            )
            await client.send(type="response.create", response=text_only)
            await client.until("rate_limits.updated")

            # 4. a function call, its output, and the follow-up answer
            await client.send(type="conversation.item.create", item=user_text)
            await client.send(type="response.create")
            call_turn = await client.until("rate_limits.updated")
            call = call_turn[-2]["response"]["output"][0]
            assert call["type"] == "function_call"
            output = {"type": "function_call_output", "call_id": call["call_id"], "output": "{}"}
            await client.send(type="conversation.item.create", item=output)
            await client.send(type="response.create")
            await client.until("rate_limits.updated")

            # 5. a long answer: a second create is refused, then it is cancelled and truncated
            await client.send(type="response.create")
            first = await client.until(
                "response.output_audio.delta" if dialect == "ga" else "response.audio.delta"
            )
            assistant_id = first[-1]["item_id"]
            await client.send(type="response.create", event_id="second")
            await client.send(type="response.cancel")
            cancelled = await client.until("rate_limits.updated")
            done = [e for e in cancelled if e["type"] == "response.done"][0]["response"]
            assert done["status_details"] == {"type": "cancelled", "reason": "client_cancelled"}
            await client.send(
                type="conversation.item.truncate",
                item_id=assistant_id,
                content_index=0,
                audio_end_ms=20,  # the first delta (40 ms) has certainly been sent
            )
            await client.until("conversation.item.truncated")
            await client.send(
                type="conversation.item.truncate",
                item_id=assistant_id,
                content_index=0,
                audio_end_ms=60_000,
            )
            await client.until("error")
            await client.send(type="conversation.item.retrieve", item_id=user_item_id)
            retrieved = (await client.until("conversation.item.retrieved"))[-1]
            assert retrieved["item"]["content"][0]["audio"]

            # 6. error paths; the socket stays open through all of them
            for frame in [
                {"type": "input_audio_buffer.commit"},
                {"type": "response.cancel"},
                {"type": "conversation.item.delete", "item_id": "item_missing"},
                {
                    "type": "conversation.item.truncate",
                    "item_id": "item_x",
                    "content_index": 0,
                    "audio_end_ms": 1,
                },
                {"type": "no.such.event"},
                {"event_id": "no_type"},
                {"type": "session.update", "session": {"bogus": 1}},
            ]:
                await client.send(**frame)
                await client.until("error")
            await ws.send("{not json")
            await client.until("error")
            await client.send(type="conversation.item.delete", item_id=user_item_id)
            await client.until("conversation.item.deleted")
            await client.send(type="input_audio_buffer.clear")
            await client.until("input_audio_buffer.cleared")

    problems = {
        event["type"]: validate_server_event(event, dialect)
        for event in client.events
        if validate_server_event(event, dialect)
    }
    assert problems == {}
    seen = {event["type"] for event in client.events}
    common = {
        "session.created",
        "session.updated",
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "input_audio_buffer.cleared",
        "conversation.item.input_audio_transcription.delta",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.retrieved",
        "conversation.item.truncated",
        "conversation.item.deleted",
        "response.created",
        "response.output_item.added",
        "response.output_item.done",
        "response.content_part.added",
        "response.content_part.done",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.done",
        "rate_limits.updated",
        "error",
    }
    if dialect == "ga":
        expected = common | {
            "conversation.item.added",
            "conversation.item.done",
            "response.output_audio.delta",
            "response.output_audio.done",
            "response.output_audio_transcript.delta",
            "response.output_audio_transcript.done",
            "response.output_text.delta",
            "response.output_text.done",
        }
    else:
        expected = common | {
            "conversation.item.created",
            "response.audio.delta",
            "response.audio.done",
            "response.audio_transcript.delta",
            "response.audio_transcript.done",
            "response.text.delta",
            "response.text.done",
        }
    assert seen == expected
    codes = [e["error"]["code"] for e in client.events if e["type"] == "error"]
    assert codes == [
        "conversation_already_has_active_response",
        "invalid_value",  # truncate past the audio sent
        "input_audio_buffer_commit_empty",
        "response_cancel_not_active",
        "item_delete_invalid_item_id",
        "item_truncate_invalid_item_id",
        "invalid_value",
        "invalid_event",
        "unknown_parameter",
        "invalid_json",
    ]


# --- handshake --------------------------------------------------------------------------------


async def test_dialect_from_header_or_subprotocol_and_the_realtime_subprotocol_is_selected():
    async with LocalServer(ServerOptions(pace=0)) as server:
        async with connect(
            server.url + "?model=gpt-realtime-mini", additional_headers=headers("ga")
        ) as ws:
            session = json.loads(await ws.recv())["session"]
            assert session["type"] == "realtime"
            assert session["model"] == "gpt-realtime-mini"
            assert ws.subprotocol is None
        async with connect(server.url, additional_headers=headers("beta")) as ws:
            session = json.loads(await ws.recv())["session"]
            assert "type" not in session and session["modalities"] == ["text", "audio"]
        browser_beta = ["realtime", "openai-insecure-api-key.sk-test", "openai-beta.realtime-v1"]
        async with connect(server.url, subprotocols=browser_beta) as ws:
            assert ws.subprotocol == "realtime"
            assert "modalities" in json.loads(await ws.recv())["session"]
        async with connect(
            server.url, subprotocols=["realtime", "openai-insecure-api-key.k"]
        ) as ws:
            assert ws.subprotocol == "realtime"
            assert json.loads(await ws.recv())["session"]["type"] == "realtime"


async def test_any_path_is_accepted():
    async with LocalServer(ServerOptions(pace=0)) as server:
        url = f"ws://127.0.0.1:{server.port}/some/proxy/path?model=x"
        async with connect(url) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"


async def open_status(url: str, **kwargs: Any) -> int:
    """The HTTP status of a refused handshake (101 if it was accepted)."""
    try:
        async with connect(url, **kwargs) as ws:
            await ws.recv()
            return 101
    except InvalidStatus as exc:
        return exc.response.status_code


async def test_auth_require_and_key_modes_refuse_at_the_handshake():
    async with LocalServer(ServerOptions(auth="require")) as server:
        assert await open_status(server.url) == 401
        assert await open_status(server.url, additional_headers=headers("ga", "anything")) == 101
        assert (
            await open_status(server.url, subprotocols=["realtime", "openai-insecure-api-key.k"])
            == 101
        )
    options = ServerOptions(auth="key", api_key="sk-right", auth_failure="403")
    async with LocalServer(options) as server:
        assert await open_status(server.url, additional_headers=headers("ga", "sk-wrong")) == 403
        assert await open_status(server.url, additional_headers=headers("ga", "sk-right")) == 101
    async with LocalServer(ServerOptions(auth="reject")) as server:
        try:
            await connect(server.url, additional_headers=headers("ga"))
        except InvalidStatus as exc:
            body = json.loads(exc.response.body)
            assert exc.response.status_code == 401
            assert body["error"]["code"] == "invalid_api_key"
            assert "sk-test" not in exc.response.body.decode()
        else:
            pytest.fail("the handshake was accepted")


async def test_accept_then_error_mode_sends_invalid_api_key_then_closes():
    options = ServerOptions(auth="require", auth_failure="error")
    async with LocalServer(options) as server, connect(server.url) as ws:
        event = json.loads(await ws.recv())
        assert event["type"] == "error"
        assert event["error"]["code"] == "invalid_api_key"
        assert validate_server_event(event, "ga") == []
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_beta_disabled_mode_refuses_beta_with_close_4000_and_keeps_ga_working():
    async with LocalServer(ServerOptions(beta_disabled=True, pace=0)) as server:
        async with connect(server.url, additional_headers=headers("beta")) as ws:
            event = json.loads(await ws.recv())
            assert event["error"]["code"] == "beta_api_shape_disabled"
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 4000
            assert closed.value.rcvd.reason == "invalid_request_error.beta_api_shape_disabled"
        async with connect(server.url, additional_headers=headers("ga")) as ws:
            assert json.loads(await ws.recv())["type"] == "session.created"


async def test_the_api_key_never_reaches_the_logs(caplog: pytest.LogCaptureFixture):
    secret = "sk-very-secret-0123456789"
    caplog.set_level(logging.DEBUG)
    async with LocalServer(ServerOptions(auth="key", api_key=secret, pace=0)) as server:
        async with connect(server.url, additional_headers=headers("ga", secret)) as ws:
            await ws.recv()
        browser = ["realtime", f"openai-insecure-api-key.{secret}"]
        async with connect(server.url, subprotocols=browser) as ws:
            await ws.recv()
        assert await open_status(server.url, additional_headers=headers("ga", secret + "x")) == 401
    server_logs = "\n".join(
        record.getMessage() for record in caplog.records if record.name.startswith("voicecli")
    )
    assert "Authorization: Bearer [redacted]" in server_logs  # the headers were logged ...
    assert "openai-insecure-api-key.[redacted]" in server_logs
    assert secret not in server_logs  # ... but never the key


# --- expiry and pacing ------------------------------------------------------------------------


async def test_expiry_error_then_close_1001_and_expires_at_matches():
    async with LocalServer(ServerOptions(expire_after_s=0.5, pace=0)) as server:
        async with connect(server.url) as ws:
            created = json.loads(await ws.recv())
            assert created["session"]["expires_at"] == pytest.approx(time.time() + 0.5, abs=2)
            started = time.monotonic()
            event = json.loads(await asyncio.wait_for(ws.recv(), 3))
            assert time.monotonic() - started == pytest.approx(0.5, abs=0.3)
            assert event["error"]["code"] == "session_expired"
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
            assert closed.value.rcvd.code == 1001
            assert closed.value.rcvd.reason == event["error"]["message"]


async def timed_reply(pace: float, audio_ms: int) -> float:
    script = ScriptedResponder.from_text(json.dumps({"text": "Timing.", "audio_ms": audio_ms}))
    async with LocalServer(
        ServerOptions(responder=script, pace=pace, turn_detection=None)
    ) as server:
        async with connect(server.url, max_size=None) as ws:
            client = Client(ws)
            await client.until("session.created")
            await client.send(type="response.create")
            await client.until("response.created")
            started = time.monotonic()
            await client.until("response.done")
            return time.monotonic() - started


async def test_pace_one_takes_real_time_and_pace_zero_does_not():
    assert await timed_reply(1.0, 1500) == pytest.approx(1.5, abs=0.3)
    assert await timed_reply(0.0, 1500) < 0.3


# --- faults -----------------------------------------------------------------------------------


async def test_close_after_n_events_drops_the_connection_without_a_close_frame():
    options = ServerOptions(pace=0, turn_detection=None, faults=Faults(close_after_events=3))
    async with LocalServer(options) as server, connect(server.url) as ws:
        client = Client(ws)
        await client.until("session.created")
        await client.send(
            type="conversation.item.create",
            item={
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "x"}],
            },
        )
        with pytest.raises(ConnectionClosedError) as closed:
            for _ in range(5):
                await client.recv()
        assert len(client.events) == 3
        assert closed.value.rcvd is None  # no close frame: the client reports 1006
        assert ws.close_code == 1006


async def test_one_malformed_frame_after_n_events_and_the_session_continues():
    options = ServerOptions(pace=0, faults=Faults(malformed_after_events=1))
    async with LocalServer(options) as server, connect(server.url) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        with pytest.raises(json.JSONDecodeError):
            json.loads(await ws.recv())
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        assert json.loads(await ws.recv())["type"] == "session.updated"


async def test_one_oversized_frame_after_n_events():
    size = 2 * 1024 * 1024
    faults = Faults(oversized_after_events=1, oversized_bytes=size)
    async with LocalServer(ServerOptions(pace=0, faults=faults)) as server:
        async with connect(server.url, max_size=None) as ws:
            await ws.recv()
            frame = await ws.recv()
            assert len(frame) == size
            assert json.loads(frame)["type"] == "voicecli.fault.oversized"
        async with connect(server.url) as ws:  # default 1 MiB limit
            await ws.recv()
            with pytest.raises(ConnectionClosedError) as closed:
                await ws.recv()
            assert closed.value.sent.code == 1009


async def test_silent_at_event_n_holds_the_server_back():
    faults = Faults(silent_at_event=2, silent_for_s=0.6)
    async with (
        LocalServer(ServerOptions(pace=0, faults=faults)) as server,
        connect(server.url) as ws,
    ):
        await ws.recv()
        started = time.monotonic()
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "realtime"}}))
        assert json.loads(await ws.recv())["type"] == "session.updated"
        assert time.monotonic() - started >= 0.55


async def test_jitter_delays_deltas_but_keeps_their_order():
    script = ScriptedResponder.from_text(json.dumps({"text": "one two three", "audio_ms": 1000}))
    faults = Faults(delta_jitter_ms=50)
    options = ServerOptions(responder=script, pace=0, turn_detection=None, faults=faults, seed=1)
    async with LocalServer(options) as server, connect(server.url, max_size=None) as ws:
        client = Client(ws)
        await client.until("session.created")
        await client.send(type="response.create")
        started = time.monotonic()
        events = await client.until("response.done")
        elapsed = time.monotonic() - started
    audio_bytes = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    )
    assert len(audio_bytes) == 1000 * 48
    assert 0.02 < elapsed < 0.6  # at pace 0 only the jitter takes time


async def test_many_clients_at_once_get_independent_sessions():
    async with LocalServer(ServerOptions(pace=0, turn_detection=None)) as server:

        async def one() -> str:
            async with connect(server.url) as ws:
                client = Client(ws)
                created = (await client.until("session.created"))[0]
                await client.send(type="response.create")
                await client.until("response.done")
                return created["session"]["id"]

        ids = await asyncio.gather(*(one() for _ in range(5)))
        assert len(set(ids)) == 5
        assert server.connections_served == 5
