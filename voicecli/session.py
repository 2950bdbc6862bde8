"""The asyncio driver of a Realtime session: one WebSocket, a reader task and a writer task
around the sans-I/O `RealtimeClient`.

    settings = ConnectionSettings(url=None, api_key=key)      # None = OpenAI
    session = await RealtimeSession.open(settings, on_sent=log, on_received=log)
    session.update_session(SessionConfig(voice="marin"))      # intents: plain method calls
    async for event in session.events():                      # normalised events
        ...
    await session.close()

Intents go to the client core, which queues wire frames; an `asyncio.Event` wakes the writer,
which sends whatever `data_to_send()` returns (no polling). The reader feeds every text frame to
`client.receive_text()` and queues the decoded events for `events()`.

Every way a connection fails becomes one of the typed errors in `voicecli.errors`, with one
sentence a user can act on: `handshake_error()` maps exceptions raised while connecting,
`classify_close()` maps how an open connection ended. `events()` raises that error after the
last event; `closed_reason` keeps it. `backoff()` yields reconnect delays.

The API key goes only into the `Authorization` header. It is never passed to a tap, and the
driver refuses to send a frame that contains it.

Imports: standard library, websockets (lazily), voicecli.protocol, voicecli.errors and
`voicecli.config.check_ws_url`.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import re
import socket
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from voicecli import __version__
from voicecli.config import check_ws_url
from voicecli.errors import (
    AuthError,
    BetaShapeDisabled,
    ConnectError,
    HandshakeError,
    SessionExpired,
    UnreachableError,
    UsageError,
)
from voicecli.protocol.dialects import GA, Dialect, SessionConfig, dialect_named
from voicecli.protocol.events import ErrorInfo, Event, ProtocolError, ServerError


if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection

    from voicecli.config import Config
    from voicecli.protocol.client import RealtimeClient


__all__ = [
    "AUTH_ERROR_CODES",
    "MAX_MESSAGE_BYTES",
    "OPENAI_REALTIME_URL",
    "RECOVERABLE_CLOSE_CODES",
    "ConnectionSettings",
    "RealtimeSession",
    "backoff",
    "build_url",
    "classify_close",
    "handshake_error",
]

OPENAI_REALTIME_URL = "wss://api.openai.com/v1/realtime"

MAX_MESSAGE_BYTES = 32 * 1024 * 1024
"""Inbound message cap. websockets' default (1 MiB) closes the connection with 1009 on a
`conversation.item.retrieved` that carries ~16 s of audio; `None` (no cap, as the Agents SDK
does) would let a broken server make us buffer without bound. 32 MiB holds ~8 minutes of base64
PCM16 at 24 kHz in one message."""

RECOVERABLE_CLOSE_CODES = frozenset({1001, 1005, 1006, 1011, 1012, 1013, 1015})
"""Close codes after which reconnecting may help (the openai-python reconnect list). A new
connection is always a new session: the conversation is not carried over."""

AUTH_ERROR_CODES = frozenset(
    {"invalid_api_key", "invalid_authentication", "missing_api_key", "unauthorized"}
)
AUTH_ERROR_TYPES = frozenset({"authentication_error", "permission_error"})

_CLOSE_MEANINGS = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status code",
    1006: "connection dropped without a close frame",
    1007: "invalid data",
    1008: "policy violation",
    1009: "message too big",
    1011: "server error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS failure",
}

Tap = Callable[[str], None]


class _RedactAuthorization(logging.Filter):
    """websockets logs the handshake headers at DEBUG, `Authorization: Bearer <key>` included:
    whoever turns DEBUG logging on must not get the key in their log file."""

    _HEADER = re.compile(r"(?i)(authorization:\s*(?:\S+\s+)?)\S+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._HEADER.sub(lambda match: match.group(1) + "[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_WEBSOCKETS_LOG = logging.getLogger("voicecli.session.websockets")
_WEBSOCKETS_LOG.addFilter(_RedactAuthorization())


# --------------------------------------------------------------------------------------------
# Settings and URLs
# --------------------------------------------------------------------------------------------


def build_url(url: str | None, model: str) -> str:
    """The WebSocket URL to connect to.

    No url: OpenAI's `wss://api.openai.com/v1/realtime?model=<model>`. A ws:// or wss:// url is
    kept as given, with `model=<model>` added to the query unless it already names a `model`,
    `call_id` or `intent` (the three are mutually exclusive). Anything else is a UsageError.
    """
    if not url:
        return f"{OPENAI_REALTIME_URL}?{urlencode({'model': model})}"
    try:
        check_ws_url(url)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    if not any(name in ("model", "call_id", "intent") for name, _ in query):
        query.append(("model", model))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _display_url(endpoint: str) -> str:
    """The endpoint for messages and reports: without its query and without `user:pass@`,
    either of which may carry a secret."""
    parts = urlsplit(endpoint)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host, query="", fragment=""))


@dataclass(frozen=True, slots=True)
class ConnectionSettings:
    """Where and how to connect. Validated on creation (a bad url raises UsageError)."""

    url: str | None = None
    """A ws:// or wss:// URL, or None for OpenAI."""
    api_key: str | None = field(default=None, repr=False)
    """Sent as `Authorization: Bearer <key>`; None sends no Authorization header."""
    model: str = "gpt-realtime"
    dialect: Dialect = GA
    """A `Dialect` (a name, `ga` or `beta`, is accepted and converted)."""
    open_timeout: float = 10.0
    """Seconds for TCP + TLS + HTTP upgrade, and again for the first session.created."""
    ping_interval: float | None = 20.0
    """Keepalive pings keep long silent sessions (push-to-talk) alive through NATs/proxies."""
    ping_timeout: float | None = 20.0
    max_size: int | None = MAX_MESSAGE_BYTES
    close_timeout: float = 5.0

    def __post_init__(self) -> None:
        if isinstance(self.dialect, str):
            try:
                object.__setattr__(self, "dialect", dialect_named(self.dialect))
            except ValueError as exc:
                raise UsageError(str(exc)) from None
        build_url(self.url, self.model)

    @property
    def endpoint(self) -> str:
        """The full URL, with `model=` in the query."""
        return build_url(self.url, self.model)

    @property
    def display_url(self) -> str:
        """The URL for messages and reports (no query, no credentials)."""
        return _display_url(self.endpoint)

    def headers(self) -> dict[str, str]:
        """Handshake headers: the dialect's (beta: `OpenAI-Beta: realtime=v1`) and the key."""
        headers = dict(self.dialect.headers)
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    @classmethod
    def from_config(cls, config: Config, url: str | None = None) -> ConnectionSettings:
        """Settings for `config`'s server choice (`Config.server_kind()`).

        `url` is required when the choice is the embedded local server (pass `server.url`);
        the API key is never sent there.
        """
        kind = config.server_kind()
        connection = config.connection
        if kind == "local":
            if not url:
                raise ValueError("the embedded local server's url is needed")
            target, api_key = url, None
        elif kind == "url":
            target, api_key = url or connection.url, config.api_key
        else:
            target, api_key = url, config.api_key
        return cls(
            url=target,
            api_key=api_key,
            model=connection.model,
            dialect=dialect_named(connection.dialect),
            open_timeout=connection.open_timeout,
        )


# --------------------------------------------------------------------------------------------
# Failure classification (pure)
# --------------------------------------------------------------------------------------------


def _unwrap_multiple(exc: OSError) -> bool:
    """asyncio joins per-address failures ('Multiple exceptions: [Errno 111] ...')."""
    return exc.errno is None and f"[Errno {errno.ECONNREFUSED}]" in str(exc)


def handshake_error(
    exc: BaseException, url: str, *, sent_key: bool = True, open_timeout: float | None = None
) -> ConnectError:
    """The typed error for an exception raised while opening a connection to `url`.

    `sent_key` says whether an Authorization header was sent (a 401 then means "bad key",
    otherwise "no key"); `open_timeout` is quoted when the attempt timed out.
    """
    from websockets.exceptions import (
        InvalidMessage,
        InvalidProxy,
        InvalidStatus,
        InvalidURI,
        ProxyError,
        WebSocketException,
    )

    if isinstance(exc, InvalidStatus):
        return _status_error(exc.response.status_code, exc.response.reason_phrase, url, sent_key)
    if isinstance(exc, TimeoutError):
        within = f"{open_timeout:g} s" if open_timeout else "the open timeout"
        return UnreachableError(f"cannot reach {url}: no answer within {within}")
    if isinstance(exc, socket.gaierror):
        host = urlsplit(url).hostname
        return UnreachableError(f"cannot reach {url}: the host name {host!r} does not resolve")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return HandshakeError(f"{url}: the TLS certificate check failed ({exc.verify_message})")
    if isinstance(exc, ssl.SSLError):
        detail = getattr(exc, "reason", None) or exc.strerror or str(exc)
        return HandshakeError(f"{url}: the TLS handshake failed ({detail})")
    if isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, OSError) and _unwrap_multiple(exc)
    ):
        return UnreachableError(f"cannot reach {url}: connection refused")
    if isinstance(exc, OSError):
        detail = exc.strerror or str(exc) or type(exc).__name__
        return UnreachableError(f"cannot reach {url}: {detail[:1].lower()}{detail[1:]}")
    if isinstance(exc, (InvalidProxy, ProxyError)):
        return UnreachableError(f"cannot reach {url} through the proxy: {exc}")
    if isinstance(exc, InvalidMessage):
        error = HandshakeError(
            f"{url} did not answer with a valid WebSocket handshake; is it a realtime server?"
        )
        # A connection closed mid-handshake is a network blip (websockets retries it too).
        error.recoverable = isinstance(exc.__cause__, EOFError)
        return error
    if isinstance(exc, InvalidURI):
        return HandshakeError(f"{url} is not a valid WebSocket URL")
    if isinstance(exc, WebSocketException):
        return HandshakeError(f"{url} refused the WebSocket handshake: {exc}")
    return ConnectError(f"cannot connect to {url}: {exc}")


def _status_error(status: int, phrase: str, url: str, sent_key: bool) -> ConnectError:
    if status in (401, 403):
        if not sent_key:
            return AuthError(
                f"{url} requires an API key (HTTP {status}) and none is set; "
                "set OPENAI_API_KEY in the environment or in .env"
            )
        why = "the key is not valid" if status == 401 else "the key has no access to it"
        return AuthError(
            f"{url} rejected the API key (HTTP {status} {phrase}): {why}; check OPENAI_API_KEY"
        )
    error = HandshakeError(
        f"{url} answered HTTP {status} {phrase} instead of opening a WebSocket; "
        "is it a realtime server? (wrong url?)"
    )
    error.recoverable = status in (429, 500, 502, 503, 504)
    return error


def classify_close(code: int, reason: str, last_error: ErrorInfo | None) -> ConnectError:
    """The typed error for a connection the server ended (or that dropped).

    Args:
        code: the close code received (1006 when the connection dropped without one).
        reason: the close reason received ("" if none).
        last_error: the `error` object of the last `error` event before the close, if any.
    """
    error_code = last_error.code if last_error else None
    error_type = last_error.type if last_error else None
    # OpenAI closes a beta-header connection with 4000 since the 2026 shutdown; another
    # server's 4000 with some other reason is not taken for it.
    beta_disabled = "beta_api_shape_disabled" in reason or error_code == "beta_api_shape_disabled"
    if beta_disabled or (code == 4000 and not reason):
        error: ConnectError = BetaShapeDisabled(
            "the server no longer accepts the beta dialect (close 4000 "
            "beta_api_shape_disabled); use --dialect ga"
        )
    elif error_code == "session_expired" or (code == 1001 and "maximum duration" in reason):
        said = reason or (last_error.message if last_error else "")
        error = SessionExpired(
            f"the session reached the server's time limit ({said.rstrip('.') or 'code 1001'}); "
            "start a new session"
        )
    elif error_code in AUTH_ERROR_CODES or error_type in AUTH_ERROR_TYPES:
        # The server's message may quote part of the key: it is not repeated.
        error = AuthError(
            f"the server rejected the API key ({error_code or error_type}); check OPENAI_API_KEY"
        )
    else:
        meaning = _CLOSE_MEANINGS.get(code, "")
        said = f": {reason}" if reason else ""
        words = f"code {code}" + (f", {meaning}" if meaning else "")
        after = ""
        if last_error and error_code:
            after = f" after error {error_code}: {last_error.message.rstrip('.')}"
        error = ConnectError(f"the server closed the connection ({words}){said}{after}")
        error.recoverable = code in RECOVERABLE_CLOSE_CODES
    error.close_code = code  # type: ignore[attr-defined]
    error.close_reason = reason  # type: ignore[attr-defined]
    return error


def backoff(
    initial_delay: float = 1.0,
    min_delay: float = 1.0,
    max_delay: float = 30.0,
    factor: float = 1.618,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Reconnect delays in seconds, websockets style, jittered.

    The first delay is random in [0, initial_delay] so many clients cut off together do not
    come back together. Then d = min_delay * factor**n, capped at max_delay, each yielded as a
    random value in [d/2, d] ("equal jitter"). Pass `rng` for reproducible delays.
    """
    rng = rng or random.Random()
    yield rng.random() * initial_delay
    delay = min_delay
    while True:
        capped = min(delay, max_delay)
        yield capped / 2 + rng.random() * capped / 2
        delay *= factor


# --------------------------------------------------------------------------------------------
# The session
# --------------------------------------------------------------------------------------------

_END = object()


class RealtimeSession:
    """One open Realtime connection. Create with `await RealtimeSession.open(settings)`.

    Call intents from the event loop's thread (audio callbacks hand their blocks over with
    `loop.call_soon_threadsafe`). Events wait in an unbounded queue until `events()` takes
    them, so the reader never stops answering pings while the consumer is busy.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        websocket: ClientConnection,
        client: RealtimeClient,
        on_sent: Tap | None = None,
        on_received: Tap | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        """The sans-I/O core (conversation and response state live here)."""
        self.on_sent = on_sent
        """Called with every frame sent, as sent (never contains the key)."""
        self.on_received = on_received
        """Called with every frame received (any copy of the key replaced by `[redacted]`)."""
        self.closed_reason: ConnectError | None = None
        """Why the connection ended, when it was not our own `close()`; None while open."""
        self.frames_sent = 0
        self.frames_received = 0
        self.tap_errors = 0
        """Exceptions raised by taps (swallowed: a broken log must not end a conversation)."""
        self._ws = websocket
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._kick = asyncio.Event()
        self._closing = False
        self._ended = False
        self._last_error: ErrorInfo | None = None
        self._ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._reader: asyncio.Task[None] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._close_lock = asyncio.Lock()

    # --- opening ------------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        settings: ConnectionSettings,
        *,
        on_sent: Tap | None = None,
        on_received: Tap | None = None,
        wait_for_session: bool = True,
    ) -> RealtimeSession:
        """Connect, start the reader and writer, and wait for the server's session.created.

        With `wait_for_session`, failures that arrive right after the upgrade (an auth error
        event, close 4000) are raised here rather than from `events()`; the session.created
        event itself stays queued for `events()`.

        Raises:
            ConnectError: one of its subclasses, with one sentence (see the module docstring).
        """
        from websockets.asyncio.client import connect

        from voicecli.protocol.client import RealtimeClient

        url = settings.display_url
        try:
            websocket = await connect(
                settings.endpoint,
                additional_headers=settings.headers(),
                user_agent_header=f"voicecli/{__version__}",
                open_timeout=settings.open_timeout,
                ping_interval=settings.ping_interval,
                ping_timeout=settings.ping_timeout,
                close_timeout=settings.close_timeout,
                max_size=settings.max_size,
                # No permessage-deflate: base64 audio compresses by about a quarter only,
                # and deflating a 40 ms mic frame costs about 0.2 ms of CPU (25 a second
                # while you speak): for a voice stream the upload saved is not worth it.
                compression=None,
                logger=_WEBSOCKETS_LOG,
            )
        except Exception as exc:
            raise handshake_error(
                exc, url, sent_key=bool(settings.api_key), open_timeout=settings.open_timeout
            ) from exc
        session = cls(settings, websocket, RealtimeClient(settings.dialect), on_sent, on_received)
        session._start()
        if not wait_for_session:
            return session
        try:
            await asyncio.wait_for(asyncio.shield(session._ready), settings.open_timeout)
        except TimeoutError:
            await session.close()
            raise HandshakeError(
                f"{url} accepted the WebSocket but sent no session.created within "
                f"{settings.open_timeout:g} s; is it a realtime server?"
            ) from None
        except BaseException:
            await session.close()
            raise
        return session

    def _start(self) -> None:
        self._reader = asyncio.create_task(self._read(), name="realtime-reader")
        self._writer = asyncio.create_task(self._write(), name="realtime-writer")

    # --- events -------------------------------------------------------------------------

    async def events(self) -> AsyncIterator[Event]:
        """Normalised server events in arrival order.

        Ends when the connection closes: normally after our own `close()`, otherwise by raising
        the `ConnectError` that says why (also kept in `closed_reason`).
        """
        while True:
            item = await self._events.get()
            if item is _END:
                self._events.put_nowait(_END)  # later calls end too
                if self.closed_reason is not None:
                    raise self.closed_reason
                return
            yield item

    # --- intents (forwarded to the core; the writer sends what it queues) ---------------

    def update_session(self, config: SessionConfig) -> str:
        """`session.update` with the fields set in `config`; returns its client event id."""
        return self._kicking(self.client.update_session(config))

    def append_audio(self, pcm: bytes) -> None:
        """`input_audio_buffer.append` (PCM16 24 kHz mono unless the session says otherwise)."""
        self._kicking(self.client.append_audio(pcm))

    def commit_audio(self) -> bool:
        """`input_audio_buffer.commit`; False (nothing sent) with < 100 ms buffered."""
        return self._kicking(self.client.commit_audio())

    def clear_audio(self) -> None:
        self._kicking(self.client.clear_audio())

    def send_text(
        self, text: str, role: str = "user", *, previous_item_id: str | None = None
    ) -> str | None:
        """Add a text message to the conversation (no response is asked for)."""
        return self._kicking(self.client.send_text(text, role, previous_item_id=previous_item_id))

    def send_function_output(self, call_id: str, output: str) -> str | None:
        return self._kicking(self.client.send_function_output(call_id, output))

    def create_response(self, **params: Any) -> bool:
        """`response.create` now (True) or when the active response is done (False)."""
        return self._kicking(self.client.create_response(**params))

    def cancel_response(self) -> bool:
        """`response.cancel` if a response is active (True), else nothing (False)."""
        return self._kicking(self.client.cancel_response())

    def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> int | None:
        """`conversation.item.truncate` clamped to the audio received; the ms sent, or None."""
        return self._kicking(self.client.truncate(item_id, content_index, audio_end_ms))

    def delete_item(self, item_id: str) -> bool:
        return self._kicking(self.client.delete_item(item_id))

    def retrieve_item(self, item_id: str) -> bool:
        return self._kicking(self.client.retrieve_item(item_id))

    def _kicking(self, result: Any) -> Any:
        """Wake the writer after an intent (the core may have queued a frame) and pass on
        the intent's result."""
        self._kick.set()
        return result

    # --- other --------------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return not self._closing and self._reader is not None and not self._reader.done()

    async def ping(self) -> float:
        """Round-trip time of a WebSocket ping, in seconds."""
        from websockets.exceptions import ConnectionClosed

        try:
            pong = await self._ws.ping()
            return await asyncio.wait_for(pong, self.settings.open_timeout)
        except (ConnectionClosed, TimeoutError) as exc:
            raise ConnectError(f"{self.settings.display_url} did not answer a ping") from exc

    async def wait_closed(self) -> None:
        """Until the connection has ended (by either side)."""
        if self._reader is not None:
            await asyncio.shield(self._reader)

    async def close(self) -> None:
        """Send what the intents queued, close the connection (1000) and stop the tasks.

        Idempotent; safe to call after the server closed the connection.
        """
        async with self._close_lock:
            if self._closing:
                return
            self._closing = True
            self._kick.set()
            if self._writer is not None and not self._writer.done():
                # The writer exits once it has flushed what is queued.
                await _wait_or_cancel(self._writer, self.settings.close_timeout)
            await self._ws.close()
            if self._reader is not None:
                await _wait_or_cancel(self._reader, self.settings.close_timeout)
            self._finish()

    async def __aenter__(self) -> RealtimeSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- tasks --------------------------------------------------------------------------

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                try:
                    message = await self._ws.recv()
                except ConnectionClosed as closed:
                    self._closed_by_peer(closed)
                    return
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                self.frames_received += 1
                self._tap(self.on_received, self._redact(text))
                self.client.receive_text(text)
                for event in self.client.events_received():
                    self._note(event)
                    self._events.put_nowait(event)
                # Receiving can release deferred intents (response.create after response.done).
                self._kick.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in the core must not hang the session
            # The exception may quote the frame, and a frame may echo the key.
            detail = self._redact(repr(exc))
            self.closed_reason = ConnectError(f"internal error while reading a frame: {detail}")
            self.closed_reason.__cause__ = exc
            await self._ws.close(1011, "client error")
        finally:
            self._finish()

    def _closed_by_peer(self, closed: Any) -> None:
        if self._closing or self.closed_reason is not None:
            return
        if closed.rcvd is not None:
            code, reason = closed.rcvd.code, closed.rcvd.reason
        else:
            # No close frame: dropped, or our keepalive gave up (we sent 1011).
            code, reason = 1006, closed.sent.reason if closed.sent is not None else ""
        error = self._last_error
        if error is not None:
            error = replace(error, message=self._redact(error.message))
        self.closed_reason = classify_close(code, self._redact(reason), error)

    def _note(self, event: Event) -> None:
        # Only an error that is the last event before the close explains the close.
        self._last_error = event.error if isinstance(event, ServerError) else None
        if isinstance(event, ServerError | ProtocolError):
            return
        if not self._ready.done():
            self._ready.set_result(None)

    async def _write(self) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            while True:
                await self._kick.wait()
                self._kick.clear()
                for text in self.client.data_to_send():
                    if self.settings.api_key and self.settings.api_key in text:
                        self.closed_reason = ConnectError(
                            "refusing to send a frame that contains the API key"
                        )
                        await self._ws.close(1008, "client refused to send a secret")
                        return
                    self._tap(self.on_sent, text)
                    await self._ws.send(text)
                    self.frames_sent += 1
                if self._closing:
                    return
        except ConnectionClosed:
            return

    def _finish(self) -> None:
        """Once, when the connection is over: end `events()`, fail a pending open, stop tasks."""
        if not self._ready.done():
            reason = self.closed_reason or ConnectError(
                f"{self.settings.display_url} closed the connection before session.created"
            )
            self._ready.set_exception(reason)
            self._ready.exception()  # retrieved: open() may not be waiting
        if self._writer is not None and not self._writer.done() and not self._closing:
            self._writer.cancel()
        if not self._ended:
            self._ended = True
            self._events.put_nowait(_END)

    def _redact(self, text: str) -> str:
        key = self.settings.api_key
        return text.replace(key, "[redacted]") if key and key in text else text

    def _tap(self, tap: Tap | None, text: str) -> None:
        if tap is None:
            return
        try:
            tap(text)
        except Exception:
            self.tap_errors += 1


async def _wait_or_cancel(task: asyncio.Task[None], timeout: float) -> None:
    """Give `task` `timeout` seconds to finish, then cancel it; never raises its exception."""
    done, _ = await asyncio.wait({task}, timeout=timeout)
    if not done:
        task.cancel()
        await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it
