"""The asyncio shell of the local server: WebSocket handshake, per-connection loop, faults.

    async with LocalServer(ServerOptions(port=0, responder="echo", pace=0)) as server:
        connect(server.url)   # ws://127.0.0.1:PORT/v1/realtime

The handshake follows the real API (protocol reference §2): any path is accepted (the official
client connects to `/v1/realtime?model=...`); the dialect is beta when the client sends
`OpenAI-Beta: realtime=v1` or offers the `openai-beta.realtime-v1` subprotocol, GA otherwise;
the `realtime` subprotocol is selected when offered; the key comes from `Authorization: Bearer`
or the `openai-insecure-api-key.<key>` subprotocol. The key is only compared, never logged.

Each connection runs a `ServerCore` (the pure protocol state) and this loop: wait for a client
frame, a finished reply or the core's next deadline; feed the core; perform its actions.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
import random
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from voicecli.protocol.dialects import BETA, BETA_SUBPROTOCOL, GA, Dialect
from voicecli.server.core import Close, ComposeReply, CoreSettings, Send, ServerCore
from voicecli.server.ids import IdFactory
from voicecli.server.options import Faults, ServerOptions
from voicecli.server.responders import Responder, responder_named
from voicecli.server.session_state import DEFAULT_INSTRUCTIONS


__all__ = ["LocalServer"]

log = logging.getLogger("voicecli.server")

_KEY_SUBPROTOCOL = "openai-insecure-api-key."
_KEY_PATTERN = re.compile(r"(?i)(authorization:\s*(?:\S+\s+)?|openai-insecure-api-key\.)[^\s,]+")


class _RedactKeys(logging.Filter):
    """websockets logs raw handshake headers at DEBUG; the API key must never reach a log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _KEY_PATTERN.sub(lambda match: match.group(1) + "[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_WEBSOCKETS_LOG = logging.getLogger("voicecli.server.websockets")
_WEBSOCKETS_LOG.addFilter(_RedactKeys())


@dataclass(frozen=True)
class _Handshake:
    dialect: Dialect
    model: str
    refusal: str | None
    """`invalid_api_key` or `beta_disabled` when the connection is accepted only to be refused."""


class LocalServer:
    """A realtime-compatible server on 127.0.0.1 (by default), usable in-process."""

    def __init__(self, options: ServerOptions | None = None) -> None:
        self.options = options or ServerOptions()
        responder = self.options.responder
        self.responder: Responder = (
            responder_named(responder, self.options.script)
            if isinstance(responder, str)
            else responder
        )
        self._server: Server | None = None
        self._handshakes: dict[int, _Handshake] = {}
        self._rng = random.Random(self.options.seed)
        self._stopping = asyncio.Event()
        self.connections_served = 0
        self.recent_sessions: deque[ServerCore] = deque(maxlen=8)
        """The protocol state of the latest connections, newest last (tests and diagnostics
        read the server's view of a conversation here)."""

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and listen. Raises OSError (e.g. EADDRINUSE) when the port cannot be bound."""
        self._stopping.clear()
        self._server = await serve(
            self._handle,
            self.options.host,
            self.options.port,
            process_request=self._process_request,
            select_subprotocol=_select_subprotocol,
            max_size=self.options.max_message_bytes,
            logger=_WEBSOCKETS_LOG,
        )
        log.info("listening on %s", self.url)

    async def stop(self) -> None:
        self._stopping.set()  # ends a silence fault at once
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> LocalServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        assert self._server is not None, "call start() first"
        await self._server.serve_forever()

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return int(next(iter(self._server.sockets)).getsockname()[1])

    @property
    def host(self) -> str:
        return self.options.host

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}/v1/realtime"

    @property
    def http_base_url(self) -> str:
        """For SDKs that derive the WebSocket URL from an HTTP base URL (`.../v1`)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    # --- handshake ---------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        headers = request.headers
        offered = _offered_subprotocols(headers)
        is_beta = "realtime=v1" in headers.get("OpenAI-Beta", "") or BETA_SUBPROTOCOL in offered
        key = _api_key(headers, offered)
        refusal: str | None = None
        if not self._key_accepted(key):
            if self.options.auth_failure == "error":
                refusal = "invalid_api_key"
            else:
                log.info("refused a connection: API key not accepted")
                return _http_error(int(self.options.auth_failure), key is None)
        if refusal is None and is_beta and self.options.beta_disabled:
            refusal = "beta_disabled"
        query = parse_qs(urlsplit(request.path).query)
        model = (query.get("model") or [self.options.model])[0]
        self._handshakes[id(connection)] = _Handshake(BETA if is_beta else GA, model, refusal)
        return None

    def _key_accepted(self, key: str | None) -> bool:
        mode = self.options.auth
        if mode == "any":
            return True
        if mode == "require":
            return bool(key)
        if mode == "key":
            return key == self.options.api_key
        return False

    # --- connections -------------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        handshake = self._handshakes.pop(id(connection))
        self.connections_served += 1
        log.info("connection %d (%s)", self.connections_served, handshake.dialect.name)
        options = self.options
        faults = options.faults.for_connection(self.connections_served)
        settings = CoreSettings(
            model=handshake.model,
            pace=options.pace,
            expire_after_s=options.expire_after_s,
            voice=options.voice,
            instructions=options.instructions or DEFAULT_INSTRUCTIONS,
            turn_detection=options.turn_detection,
            silence_duration_ms=options.silence_duration_ms,
            late_transcript=options.late_transcript,
            delta_jitter_ms=faults.delta_jitter_ms,
            conversation_created=options.conversation_created,
        )
        core = ServerCore(
            handshake.dialect,
            settings,
            transcribe=self.responder.transcribe,
            rng=random.Random(self._rng.random()),
            wall_clock_s=time.time(),
        )
        self.recent_sessions.append(core)
        runner = _ConnectionRunner(connection, core, self.responder, faults, self._stopping)
        try:
            await runner.run(handshake.refusal)
        finally:
            log.info("connection %d ended after %d events", self.connections_served, runner.sent)


class _ConnectionRunner:
    """Drives one `ServerCore` over one WebSocket."""

    def __init__(
        self,
        connection: ServerConnection,
        core: ServerCore,
        responder: Responder,
        faults: Faults,
        stopping: asyncio.Event,
    ) -> None:
        self.connection = connection
        self.core = core
        self.responder = responder
        self.faults = faults
        self._stopping = stopping
        self.sent = 0
        self._loop = asyncio.get_running_loop()
        self._replies: dict[asyncio.Future[Any], str] = {}
        self._ids = IdFactory(random.Random())

    def _now(self) -> float:
        return self._loop.time() * 1000

    async def run(self, refusal: str | None) -> None:
        core = self.core
        actions = core.refuse(refusal) if refusal else core.start(self._now())
        if not await self._perform(actions):
            return
        receiving: asyncio.Future[Any] = asyncio.ensure_future(self.connection.recv())
        try:
            while True:
                deadline = core.next_deadline_ms()
                timeout = None if deadline is None else max(0.0, (deadline - self._now()) / 1000)
                done, _ = await asyncio.wait(
                    {receiving, *self._replies},
                    timeout=timeout,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                actions = []
                if receiving in done:
                    try:
                        message = receiving.result()
                    except ConnectionClosed:
                        return
                    actions += core.receive(message, self._now())
                    receiving = asyncio.ensure_future(self.connection.recv())
                for task in [task for task in done if task in self._replies]:
                    response_id = self._replies.pop(task)
                    try:
                        reply = task.result()
                    except Exception as exc:  # a responder bug must not kill the session
                        log.exception("responder %s failed", self.responder.name)
                        actions += core.reply_failed(
                            response_id, str(exc) or repr(exc), self._now()
                        )
                    else:
                        actions += core.reply_ready(response_id, reply, self._now())
                actions += core.advance(self._now())
                if not await self._perform(actions):
                    return
        finally:
            receiving.cancel()
            for task in self._replies:
                task.cancel()

    async def _perform(self, actions: list[Any]) -> bool:
        """Carry out the core's actions; False once the connection is over."""
        for action in actions:
            if isinstance(action, Send):
                if not await self._send(json.dumps(action.event)):
                    return False
            elif isinstance(action, Close):
                await self.connection.close(action.code, action.reason)
                return False
            elif isinstance(action, ComposeReply):
                task = asyncio.ensure_future(asyncio.to_thread(self.responder.reply, action.turn))
                self._replies[task] = action.response_id
        return True

    async def _send(self, text: str) -> bool:
        faults = self.faults
        try:
            if faults.silent_at_event == self.sent + 1 and faults.silent_for_s > 0:
                await self._play_dead(faults.silent_for_s)
            await self.connection.send(text)
            self.sent += 1
            if faults.malformed_after_events == self.sent:
                await self.connection.send('{"type": "response.output_audio.delta", "delta": "AAA')
            if faults.oversized_after_events == self.sent:
                await self.connection.send(self._oversized_event())
        except ConnectionClosed:
            return False
        if faults.close_after_events == self.sent:
            self.connection.transport.abort()  # no close frame: the client sees 1006
            return False
        return True

    async def _play_dead(self, seconds: float) -> None:
        """Neither send nor read, so pings go unanswered too: the client's keepalive is what
        notices (a server that only stops sending events still answers pings)."""
        transport = self.connection.transport
        transport.pause_reading()
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass
        finally:
            if not transport.is_closing():
                transport.resume_reading()

    def _oversized_event(self) -> str:
        envelope = {
            "type": "voicecli.fault.oversized",
            "event_id": self._ids.event(),
            "padding": "",
        }
        padding = max(0, self.faults.oversized_bytes - len(json.dumps(envelope)))
        envelope["padding"] = "A" * padding
        return json.dumps(envelope)


def _offered_subprotocols(headers: Headers) -> list[str]:
    offered: list[str] = []
    for value in headers.get_all("Sec-WebSocket-Protocol"):
        offered += [part.strip() for part in value.split(",") if part.strip()]
    return offered


def _api_key(headers: Headers, offered: list[str]) -> str | None:
    authorization = headers.get("Authorization", "")
    if authorization.lower().startswith("bearer ") and authorization[7:].strip():
        return authorization[7:].strip()
    for subprotocol in offered:
        if subprotocol.startswith(_KEY_SUBPROTOCOL) and len(subprotocol) > len(_KEY_SUBPROTOCOL):
            return subprotocol[len(_KEY_SUBPROTOCOL) :]
    return None


def _select_subprotocol(connection: ServerConnection, subprotocols: Any) -> Any:
    # Browsers fail the handshake if the server picks nothing they offered; `realtime` is the
    # only value that works (protocol reference §2.3).
    return "realtime" if "realtime" in subprotocols else None


def _http_error(status: int, key_missing: bool) -> Response:
    if status == 401:
        message = (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            if key_missing
            else "Incorrect API key provided. You can find your API key at "
            "https://platform.openai.com/account/api-keys."
        )
        code = None if key_missing else "invalid_api_key"
    else:
        message = "You do not have access to the Realtime API with this API key."
        code = "model_not_found"  # [U] what a key without realtime access gets
    body = json.dumps(
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        }
    ).encode()
    phrase = http.HTTPStatus(status).phrase
    headers = Headers([("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return Response(status, phrase, headers, body)
