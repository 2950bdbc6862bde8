"""The session driver over real loopback sockets: the happy path, intents and taps, and every
way a connection fails, each checked for the typed error and its one sentence.

Servers here are small `websockets.asyncio.server.serve` (or plain asyncio TCP) servers on
127.0.0.1 port 0, written per test to produce exactly one behaviour. The embedded local
server's happy path is in tests/test_session_local.py.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from voicecli.errors import (
    AuthError,
    BetaShapeDisabled,
    ConnectError,
    HandshakeError,
    SessionExpired,
    UnreachableError,
)
from voicecli.protocol import events as ev
from voicecli.protocol.dialects import SessionConfig
from voicecli.session import MAX_MESSAGE_BYTES, ConnectionSettings, RealtimeSession


FAKE_KEY = "sk-test-DO-NOT-LEAK-0123456789abcdef"


def session_created(session_id: str = "sess_1") -> str:
    return json.dumps(
        {
            "type": "session.created",
            "event_id": "event_1",
            "session": {
                "type": "realtime",
                "object": "realtime.session",
                "id": session_id,
                "model": "gpt-realtime",
                "output_modalities": ["audio"],
                "audio": {"output": {"voice": "alloy"}},
            },
        }
    )


def error_event(code: str, message: str, error_type: str = "invalid_request_error") -> str:
    return json.dumps(
        {
            "type": "error",
            "event_id": "event_err",
            "error": {"type": error_type, "code": code, "message": message, "param": None},
        }
    )


Handler = Callable[[ServerConnection], Awaitable[None]]


@contextlib.asynccontextmanager
async def ws_server(handler: Handler, **kwargs: Any) -> AsyncIterator[tuple[str, list[Any]]]:
    """A websockets server on 127.0.0.1:0; yields its url and the handshake requests seen."""
    requests: list[Any] = []

    def record(connection: ServerConnection, request: Any) -> Any:
        requests.append(request)
        process = kwargs.get("process_request")
        return process(connection, request) if process else None

    options = {k: v for k, v in kwargs.items() if k != "process_request"}
    async with serve(handler, "127.0.0.1", 0, process_request=record, **options) as server:
        port = server.sockets[0].getsockname()[1]
        yield f"ws://127.0.0.1:{port}", requests


@contextlib.asynccontextmanager
async def tcp_server(
    respond: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[int]:
    """A plain TCP server on 127.0.0.1:0 (for servers that do not speak WebSocket)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await respond(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def settings(url: str, **kwargs: Any) -> ConnectionSettings:
    kwargs.setdefault("open_timeout", 3.0)
    return ConnectionSettings(url=url, **kwargs)


async def collect(session: RealtimeSession) -> list[ev.Event]:
    return [event async for event in session.events()]


# --- happy path against a scripted websockets server ----------------------------------------


async def test_events_flow_intents_reach_server_and_taps_see_both_directions() -> None:
    received: list[dict[str, Any]] = []
    done = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(session_created())
        async for message in ws:
            frame = json.loads(message)
            received.append(frame)
            if frame["type"] == "session.update":
                await ws.send(json.dumps({"type": "session.updated", "session": frame["session"]}))
            if frame["type"] == "response.create":
                await ws.send(json.dumps({"type": "response.created", "response": {"id": "r1"}}))
                await ws.send(
                    json.dumps(
                        {"type": "response.done", "response": {"id": "r1", "status": "completed"}}
                    )
                )
                done.set()

    sent_tap: list[str] = []
    received_tap: list[str] = []
    async with ws_server(handler) as (url, requests):
        session = await RealtimeSession.open(
            settings(url, api_key=FAKE_KEY),
            on_sent=sent_tap.append,
            on_received=received_tap.append,
        )
        assert session.is_open
        session.update_session(SessionConfig(voice="marin", instructions="be brief"))
        session.append_audio(b"\x00\x01" * 2400)  # 100 ms
        assert session.commit_audio() is True
        assert session.create_response() is True
        await asyncio.wait_for(done.wait(), 3)
        events: list[ev.Event] = []
        async for event in session.events():
            events.append(event)
            if isinstance(event, ev.ResponseDone):
                break
        await session.close()
        assert not session.is_open

    assert [type(e).__name__ for e in events] == [
        "SessionCreated",
        "SessionUpdated",
        "ResponseCreated",
        "ResponseDone",
    ]
    assert events[1].session.voice == "marin"
    types = [frame["type"] for frame in received]
    assert types == [
        "session.update",
        "input_audio_buffer.append",
        "input_audio_buffer.commit",
        "response.create",
    ]
    assert base64.b64decode(received[1]["audio"]) == b"\x00\x01" * 2400
    # Taps saw every frame in both directions, exactly as on the wire.
    assert [json.loads(t)["type"] for t in sent_tap] == types
    assert [json.loads(t)["type"] for t in received_tap] == [
        "session.created",
        "session.updated",
        "response.created",
        "response.done",
    ]
    assert session.frames_sent == 4 and session.frames_received == 4
    # The key went only into the handshake header, never into a frame or a tap.
    assert requests[0].headers["Authorization"] == f"Bearer {FAKE_KEY}"
    assert "OpenAI-Beta" not in requests[0].headers
    assert not any(FAKE_KEY in text for text in sent_tap + received_tap)
    assert session.closed_reason is None


async def test_no_key_sends_no_authorization_and_beta_sends_its_header() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(session_created())
        await ws.wait_closed()

    async with ws_server(handler) as (url, requests):
        session = await RealtimeSession.open(settings(url, dialect="beta"))
        await session.close()
    headers = requests[0].headers
    assert "Authorization" not in headers
    assert headers["OpenAI-Beta"] == "realtime=v1"
    assert requests[0].path == "/?model=gpt-realtime"


async def test_no_compression_is_offered_for_the_audio_stream() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(session_created())
        await ws.wait_closed()

    async with ws_server(handler) as (url, requests):
        session = await RealtimeSession.open(settings(url))
        await session.close()
    assert "Sec-WebSocket-Extensions" not in requests[0].headers


async def test_deferred_response_create_is_sent_when_the_active_response_ends() -> None:
    frames: list[str] = []
    second_create = asyncio.Event()

    async def handler(ws: ServerConnection) -> None:
        await ws.send(session_created())
        async for message in ws:
            frame = json.loads(message)
            frames.append(frame["type"])
            if frame["type"] == "response.create" and frames.count("response.create") == 1:
                await ws.send(json.dumps({"type": "response.created", "response": {"id": "r1"}}))
                await asyncio.sleep(0.1)  # the client asks again meanwhile
                await ws.send(
                    json.dumps(
                        {"type": "response.done", "response": {"id": "r1", "status": "completed"}}
                    )
                )
            elif frame["type"] == "response.create":
                second_create.set()

    async with ws_server(handler) as (url, _):
        session = await RealtimeSession.open(settings(url))
        assert session.create_response() is True
        async for event in session.events():
            if isinstance(event, ev.ResponseCreated):
                assert session.create_response() is False  # deferred by the core
                break
        # Nothing else calls an intent: the frame goes out because receiving response.done
        # woke the writer.
        await asyncio.wait_for(second_create.wait(), 3)
        await session.close()
    assert frames == ["response.create", "response.create"]


async def test_inbound_frame_over_one_mebibyte_is_accepted() -> None:
    audio = bytes(range(256)) * 6000  # 1.5 MB of PCM -> 2 MB of base64 in one frame
    delta = {
        "type": "response.output_audio.delta",
        "response_id": "r1",
        "item_id": "item_1",
        "output_index": 0,
        "content_index": 0,
        "delta": base64.b64encode(audio).decode(),
    }

    async def handler(ws: ServerConnection) -> None:
        await ws.send(session_created())
        await ws.send(json.dumps(delta))
        await ws.wait_closed()

    async with ws_server(handler, max_size=None) as (url, _):
        session = await RealtimeSession.open(settings(url))
        events = []
        async for event in session.events():
            events.append(event)
            if isinstance(event, ev.AudioDelta):
                break
        await session.close()
    assert len(json.dumps(delta)) > 1024 * 1024
    assert events[-1].pcm == audio
    assert session.settings.max_size == MAX_MESSAGE_BYTES


async def test_close_is_idempotent_and_ends_events_without_error() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(session_created())
        await ws.wait_closed()

    async with ws_server(handler) as (url, _):
        session = await RealtimeSession.open(settings(url))
        consumer = asyncio.create_task(collect(session))
        await asyncio.sleep(0.05)
        await asyncio.gather(session.close(), session.close())
        await session.close()
        events = await asyncio.wait_for(consumer, 3)
    assert [type(e) for e in events] == [ev.SessionCreated]
    assert session.closed_reason is None
    assert await collect(session) == []  # a second iteration ends at once too
    session.append_audio(b"\x00" * 480)  # intents after close are ignored, not raised


async def test_received_key_is_redacted_in_taps_and_never_sent() -> None:
    seen: list[str] = []

    async def handler(ws: ServerConnection) -> None:
        await ws.send(session_created())
        # A server that quotes the Authorization header back (some do, in error messages).
        key = ws.request.headers["Authorization"].removeprefix("Bearer ")
        await ws.send(error_event("weird", f"you sent {key}"))
        async for message in ws:
            seen.append(message)

    taps: list[str] = []
    async with ws_server(handler) as (url, _):
        session = await RealtimeSession.open(
            settings(url, api_key=FAKE_KEY), on_sent=taps.append, on_received=taps.append
        )
        session.send_text(f"my key is {FAKE_KEY}")
        with pytest.raises(
            ConnectError, match="refusing to send a frame that contains the API key"
        ):
            await asyncio.wait_for(collect(session), 3)
        await session.close()
    assert not any(FAKE_KEY in text for text in seen + taps)
    assert any("you sent [redacted]" in text for text in taps)


async def test_ping_measures_round_trip() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(session_created())
        await ws.wait_closed()

    async with ws_server(handler) as (url, _):
        async with await RealtimeSession.open(settings(url)) as session:
            rtt = await session.ping()
    assert 0 < rtt < 1


# --- failures at the handshake ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_refused_port_is_unreachable() -> None:
    url = f"ws://127.0.0.1:{free_port()}"
    with pytest.raises(UnreachableError) as caught:
        await RealtimeSession.open(settings(url))
    assert str(caught.value) == f"cannot reach {url}: connection refused"
    assert caught.value.recoverable


async def test_name_that_does_not_resolve_is_unreachable() -> None:
    with pytest.raises(UnreachableError) as caught:
        await RealtimeSession.open(settings("ws://nonexistent.invalid/"))
    assert str(caught.value) == (
        "cannot reach ws://nonexistent.invalid/: the host name 'nonexistent.invalid' does not "
        "resolve"
    )


async def test_silent_server_times_out_as_unreachable() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async with tcp_server(never_answer) as port:
        with pytest.raises(UnreachableError, match=r"no answer within 0\.3 s$"):
            await RealtimeSession.open(settings(f"ws://127.0.0.1:{port}", open_timeout=0.3))


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            HTTPStatus.UNAUTHORIZED,
            "rejected the API key (HTTP 401 Unauthorized): the key is not valid",
        ),
        (HTTPStatus.FORBIDDEN, "rejected the API key (HTTP 403 Forbidden): the key has no access"),
    ],
)
async def test_401_and_403_are_auth_errors_that_never_print_the_key(
    status: HTTPStatus, expected: str
) -> None:
    def refuse(connection: ServerConnection, request: Any) -> Any:
        return connection.respond(status, "no\n")

    async with ws_server(lambda ws: ws.wait_closed(), process_request=refuse) as (url, _):
        with pytest.raises(AuthError) as caught:
            await RealtimeSession.open(settings(url, api_key=FAKE_KEY))
    message = str(caught.value)
    assert expected in message and message.startswith(url)
    assert FAKE_KEY not in message and FAKE_KEY[-6:] not in message
    assert not caught.value.recoverable


async def test_401_without_a_key_says_the_key_is_missing() -> None:
    def refuse(connection: ServerConnection, request: Any) -> Any:
        return connection.respond(HTTPStatus.UNAUTHORIZED, "no\n")

    async with ws_server(lambda ws: ws.wait_closed(), process_request=refuse) as (url, _):
        with pytest.raises(AuthError, match="requires an API key .* and none is set"):
            await RealtimeSession.open(settings(url))


async def test_plain_http_server_is_a_handshake_error() -> None:
    async def http_404(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b"<html>not here</html>"
        writer.write(
            b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()

    async with tcp_server(http_404) as port:
        url = f"ws://127.0.0.1:{port}"
        with pytest.raises(HandshakeError) as caught:
            await RealtimeSession.open(settings(url))
    assert str(caught.value) == (
        f"{url} answered HTTP 404 Not Found instead of opening a WebSocket; is it a realtime "
        "server? (wrong url?)"
    )
    assert not caught.value.recoverable


async def test_server_that_does_not_speak_http_is_a_handshake_error() -> None:
    async def ssh_banner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)

    async with tcp_server(ssh_banner) as port:
        with pytest.raises(HandshakeError, match="did not answer with a valid WebSocket handshake"):
            await RealtimeSession.open(settings(f"ws://127.0.0.1:{port}"))


async def test_wss_to_a_plain_server_is_a_tls_handshake_error() -> None:
    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        await writer.drain()

    async with tcp_server(plain) as port:
        with pytest.raises(HandshakeError, match="the TLS handshake failed"):
            await RealtimeSession.open(settings(f"wss://127.0.0.1:{port}"))


async def test_websocket_server_that_never_sends_session_created() -> None:
    async with ws_server(lambda ws: ws.wait_closed()) as (url, _):
        with pytest.raises(HandshakeError, match=r"sent no session\.created within 0\.3 s"):
            await RealtimeSession.open(settings(url, open_timeout=0.3))


# --- failures after the upgrade ---------------------------------------------------------------


async def test_auth_error_event_then_close_raises_auth_error_from_open() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(
            error_event("invalid_api_key", f"Incorrect API key provided: {FAKE_KEY[:8]}****")
        )
        await ws.close(1008, "invalid_api_key")

    async with ws_server(handler) as (url, _):
        with pytest.raises(AuthError) as caught:
            await RealtimeSession.open(settings(url, api_key=FAKE_KEY))
    assert str(caught.value) == (
        "the server rejected the API key (invalid_api_key); check OPENAI_API_KEY"
    )


async def test_close_4000_beta_shape_disabled() -> None:
    async def handler(ws: ServerConnection) -> None:
        assert ws.request.headers["OpenAI-Beta"] == "realtime=v1"
        await ws.send(error_event("beta_api_shape_disabled", "The beta API shape is disabled."))
        await ws.close(4000, "invalid_request_error.beta_api_shape_disabled")

    async with ws_server(handler) as (url, _):
        with pytest.raises(BetaShapeDisabled, match="use --dialect ga$"):
            await RealtimeSession.open(settings(url, dialect="beta"))


async def test_session_expired_error_and_1001_end_events_with_session_expired() -> None:
    reason = "Your session hit the maximum duration of 60 minutes."

    async def handler(ws: ServerConnection) -> None:
        await ws.send(session_created())
        await asyncio.sleep(0.05)
        await ws.send(error_event("session_expired", reason))
        await ws.close(1001, reason)

    async with ws_server(handler) as (url, _):
        session = await RealtimeSession.open(settings(url))
        events: list[ev.Event] = []
        with pytest.raises(SessionExpired) as caught:
            async for event in session.events():
                events.append(event)
        await session.close()
    assert [type(e) for e in events] == [ev.SessionCreated, ev.ServerError]
    assert str(caught.value) == (
        "the session reached the server's time limit (Your session hit the maximum duration of "
        "60 minutes); start a new session"
    )
    assert caught.value.recoverable
    assert session.closed_reason is caught.value


async def test_abrupt_drop_is_a_recoverable_1006() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(session_created())
        await asyncio.sleep(0.05)
        ws.transport.abort()

    async with ws_server(handler) as (url, _):
        session = await RealtimeSession.open(settings(url))
        with pytest.raises(ConnectError) as caught:
            await asyncio.wait_for(collect(session), 3)
        await session.close()
    assert type(caught.value) is ConnectError
    assert str(caught.value) == (
        "the server closed the connection (code 1006, connection dropped without a close frame)"
    )
    assert caught.value.recoverable
    assert caught.value.close_code == 1006


async def test_server_closing_normally_mid_session_is_reported() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(session_created())
        await ws.close(1000, "bye")

    async with ws_server(handler) as (url, _):
        session = await RealtimeSession.open(settings(url))
        with pytest.raises(ConnectError, match=r"\(code 1000, normal closure\): bye$") as caught:
            await collect(session)
        await session.close()
    assert not caught.value.recoverable


async def test_an_old_error_does_not_explain_a_later_close() -> None:
    async def handler(ws: ServerConnection) -> None:
        await ws.send(session_created())
        await ws.send(error_event("invalid_api_key", "stale"))
        await ws.send(json.dumps({"type": "input_audio_buffer.cleared"}))
        await ws.close(1011, "internal")

    async with ws_server(handler) as (url, _):
        session = await RealtimeSession.open(settings(url))
        with pytest.raises(ConnectError) as caught:
            await collect(session)
        await session.close()
    assert type(caught.value) is ConnectError  # not AuthError: the error was not the last word
    assert (
        str(caught.value) == "the server closed the connection (code 1011, server error): internal"
    )
    assert caught.value.recoverable
