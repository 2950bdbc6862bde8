"""`RealtimeClient`: the sans-I/O core of a Realtime session (the websockets `Protocol` pattern).

The driver (voicecli/session.py) owns the socket and calls, in this order:

1. `receive_text(frame)` for each text frame received,
2. `data_to_send()` and writes every returned string as a text frame,
3. `events_received()` and dispatches the events.

Intents (`append_audio`, `create_response`, `truncate`, ...) queue frames for `data_to_send()`.
The client also owns the state that decides whether an intent makes sense right now, so that
the driver, the talk engine and the TUI never send something the server will refuse:

- the active response: `cancel_response()` sends only while one is active (requested by us or
  started by server VAD); `create_response()` while one is active is deferred and sent by
  itself when `response.done` arrives;
- the input buffer: `commit_audio()` sends only with >= 100 ms appended since the last commit
  or clear (the server refuses less);
- assistant audio received per item and content part: `truncate()` clamps to it and sends
  nothing for 0 ms.

Every frame sent gets a client `event_id`; the server echoes it in `error.event_id`, and
`sent_event_type(event_id)` tells which request an error refers to.

Pure: standard library only (no sockets, threads or clocks).
"""

from __future__ import annotations

import json
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from voicecli.protocol import encode
from voicecli.protocol import events as ev
from voicecli.protocol.conversation import BYTES_PER_MS, Conversation, bytes_to_ms
from voicecli.protocol.decode import decode_server_event
from voicecli.protocol.dialects import GA, UNSET, Dialect, SessionConfig


__all__ = ["MIN_COMMIT_MS", "RealtimeClient", "handshake_headers"]

MIN_COMMIT_MS = 100
"""The server refuses to commit less audio than this (`input_audio_buffer_commit_empty`)."""

_SENT_HISTORY = 256
"""How many sent event ids are remembered for matching errors."""
_MAX_MERGED_AUDIO = 48_000
"""Bytes of appended audio merged into one `input_audio_buffer.append` at most (1 s of pcm16;
the API allows 15 MiB, but a long frame would hold up the events queued after it)."""


def handshake_headers(api_key: str, dialect: Dialect = GA) -> dict[str, str]:
    """The HTTP headers of the WebSocket handshake: `Authorization` plus the dialect's own.

    The key appears only in the returned dict; never log it.
    """
    return {"Authorization": f"Bearer {api_key}", **dialect.headers}


class RealtimeClient:
    """Sans-I/O client state machine for one Realtime WebSocket session."""

    def __init__(
        self,
        dialect: Dialect = GA,
        *,
        id_prefix: str | None = None,
        assign_item_ids: bool = False,
    ) -> None:
        """`id_prefix` makes client event ids (`evt_<prefix>_<n>`) and item ids predictable
        (random by default). With `assign_item_ids`, `send_text` and `send_function_output`
        give their items a client id and return it; off by default because some compatible
        servers replace client ids with their own."""
        self._dialect = dialect
        self._prefix = id_prefix if id_prefix is not None else secrets.token_hex(4)
        self._assign_item_ids = assign_item_ids
        self._counter = 0
        self._events: list[ev.Event] = []
        self._outgoing: list[str] = []
        # Appended audio not yet framed: consecutive appends become one frame when the writer
        # next asks (one base64/JSON/WebSocket frame instead of one per mic block).
        self._pending_audio: list[bytes] = []
        self._pending_audio_bytes = 0
        self._sent: OrderedDict[str, str] = OrderedDict()

        self._session = SessionConfig()
        self._session_id: str | None = None
        self._model: str | None = None
        self._expires_at: int | None = None
        self._conversation = Conversation()

        # Responses. `_requested` is the event id of a response.create we sent that has no
        # response.created yet; `_active` is the response the server is running.
        self._requested: str | None = None
        self._active: str | None = None
        self._deferred: dict[str, Any] | None = None
        self._cancel_sent = False
        self._last_audio_part: tuple[str, int] | None = None

        # Input buffer: bytes appended since the last commit/clear, per format (the format can
        # change with a session update), and our commits/clears the server has not answered.
        self._input_format = "pcm16"
        self._input_bytes: dict[str, int] = {}
        self._commits_in_flight: set[str] = set()
        self._clears_in_flight: set[str] = set()

    # --- state -----------------------------------------------------------------------------

    @property
    def dialect(self) -> Dialect:
        return self._dialect

    @property
    def session(self) -> SessionConfig:
        """The effective session configuration the server last reported (all `UNSET` before
        `session.created`)."""
        return self._session

    @property
    def session_id(self) -> str | None:
        return self._session_id

    @property
    def model(self) -> str | None:
        return self._model

    @property
    def expires_at(self) -> int | None:
        """Unix seconds when the server will end the session (from `session.created`)."""
        return self._expires_at

    @property
    def conversation(self) -> Conversation:
        return self._conversation

    @property
    def active_response_id(self) -> str | None:
        """The id of the response the server is running, if any (known from
        `response.created`; a response we requested but is not created yet has no id)."""
        return self._active

    @property
    def response_active(self) -> bool:
        """A response is running or requested by us and not finished: a new `response.create`
        now would be refused."""
        return self._active is not None or self._requested is not None

    @property
    def response_deferred(self) -> bool:
        """A `create_response()` is waiting for the current response to finish."""
        return self._deferred is not None

    @property
    def last_audio_part(self) -> tuple[str, int] | None:
        """`(item_id, content_index)` of the assistant audio received last: what to truncate
        when the user barges in (`None` before any audio)."""
        return self._last_audio_part

    @property
    def buffered_input_ms(self) -> float:
        """Audio appended since the last commit or clear, as far as the client knows."""
        return sum(bytes_to_ms(count, fmt) for fmt, count in self._input_bytes.items())

    def sent_event_type(self, event_id: str | None) -> str | None:
        """The type of a recently sent client event, to explain `error.event_id`."""
        return self._sent.get(event_id) if event_id else None

    # --- bytes in / events out -------------------------------------------------------------

    def receive_text(self, text: str | bytes) -> None:
        """Feed one received frame. Afterwards call `data_to_send()` (receiving can trigger a
        deferred `response.create`) and `events_received()`."""
        event = decode_server_event(text, self._dialect)
        self._apply(event)
        self._events.append(event)

    def events_received(self) -> list[ev.Event]:
        """Events decoded since the last call; each event is returned once."""
        events, self._events = self._events, []
        return events

    def data_to_send(self) -> list[str]:
        """JSON text frames to write, in order; each frame is returned once.

        Audio appended since the last call goes out as one `input_audio_buffer.append`
        (several when it exceeds 1 s), in its place among the other events.
        """
        self._frame_pending_audio()
        frames, self._outgoing = self._outgoing, []
        return frames

    # --- intents ---------------------------------------------------------------------------

    def update_session(self, config: SessionConfig) -> str:
        """Send `session.update` with the fields set in `config`; returns its event id.

        The effective configuration (`session`) changes when `session.updated` arrives.
        """
        if config.input_audio_format is not UNSET:
            # Audio appended from now on is in the new format (the server applies the update
            # before the appends that follow it).
            self._input_format = config.input_audio_format
        return self._send(encode.session_update(config, self._dialect, event_id=self._next_id()))

    def append_audio(self, pcm: bytes) -> None:
        """Send `input_audio_buffer.append` (audio in the session's input format)."""
        if not pcm:
            return
        self._input_bytes[self._input_format] = self._input_bytes.get(self._input_format, 0) + len(
            pcm
        )
        if self._pending_audio_bytes + len(pcm) > _MAX_MERGED_AUDIO:
            self._frame_pending_audio()
        self._pending_audio.append(pcm)
        self._pending_audio_bytes += len(pcm)

    def commit_audio(self) -> bool:
        """Send `input_audio_buffer.commit`; `False` and nothing sent with < 100 ms buffered."""
        if self.buffered_input_ms < MIN_COMMIT_MS:
            return False
        event_id = self._send(encode.audio_commit(event_id=self._next_id()))
        self._commits_in_flight.add(event_id)
        self._input_bytes.clear()
        return True

    def clear_audio(self) -> None:
        """Send `input_audio_buffer.clear` (drops uncommitted audio on the server)."""
        event_id = self._send(encode.audio_clear(event_id=self._next_id()))
        self._clears_in_flight.add(event_id)
        self._input_bytes.clear()

    def send_text(
        self, text: str, role: str = "user", *, previous_item_id: str | None = None
    ) -> str | None:
        """Add a text message (`user`, `system` or `assistant`) to the conversation.

        Does not ask for a response; call `create_response()`. Returns the client item id
        when `assign_item_ids` is on, else `None` (the id comes with `conversation.item.added`).
        """
        item_id = self._next_item_id()
        item = encode.message_item(text, role, self._dialect, item_id=item_id)
        self._send(
            encode.item_create(item, previous_item_id=previous_item_id, event_id=self._next_id())
        )
        return item_id

    def send_function_output(self, call_id: str, output: str) -> str | None:
        """Return a function call's result (`output`, usually JSON text) to the model.

        Follow with `create_response()` so the model uses it.
        """
        item_id = self._next_item_id()
        item = encode.function_output_item(call_id, output, item_id=item_id)
        self._send(encode.item_create(item, event_id=self._next_id()))
        return item_id

    def create_response(self, **params: Any) -> bool:
        """Ask for a response; parameters as in `encode.response_create` (neutral names).

        Returns `True` if `response.create` was sent now. While a response is active it is
        deferred instead (`False`) and sent automatically when that response is done; a later
        call replaces a deferred one (at most one waits). Out-of-band responses
        (`conversation="none"`) do not write to the conversation and are sent at once.
        """
        encode.response_create(self._dialect, **params)  # fail now on a bad parameter name
        if params.get("conversation") == "none":
            self._send(encode.response_create(self._dialect, event_id=self._next_id(), **params))
            return True
        if self.response_active:
            self._deferred = dict(params)
            return False
        self._send_response_create(params)
        return True

    def cancel_response(self) -> bool:
        """Send `response.cancel` if a response is active and not already being cancelled."""
        if not self.response_active or self._cancel_sent:
            return False
        # With a known id the server cancels exactly that response; a response we asked for
        # that is not created yet is cancelled as "the one in progress" when it starts.
        self._send(encode.response_cancel(self._active, event_id=self._next_id()))
        self._cancel_sent = True
        return True

    def truncate(self, item_id: str, content_index: int, audio_end_ms: int) -> int | None:
        """Tell the server the user heard only `audio_end_ms` of an assistant audio part.

        The value is clamped to the audio received for that part (the server refuses more).
        Returns the ms sent, or `None` and sends nothing when the item is unknown, is not an
        assistant audio item, or the clamped value is <= 0.
        """
        item = self._conversation.get(item_id)
        part = item.part(content_index) if item is not None else None
        if item is None or part is None or item.role != "assistant" or part.audio_bytes == 0:
            return None
        end_ms = min(int(audio_end_ms), int(part.audio_ms))
        if end_ms <= 0:
            return None
        self._send(encode.item_truncate(item_id, content_index, end_ms, event_id=self._next_id()))
        return end_ms

    def delete_item(self, item_id: str) -> bool:
        """Send `conversation.item.delete` for a known item; `False` (nothing sent) if unknown."""
        if item_id not in self._conversation:
            return False
        self._send(encode.item_delete(item_id, event_id=self._next_id()))
        return True

    def retrieve_item(self, item_id: str) -> bool:
        """Ask for the server's copy of an item (with audio; also shows a truncated transcript)."""
        if item_id not in self._conversation:
            return False
        self._send(encode.item_retrieve(item_id, event_id=self._next_id()))
        return True

    # --- internals -------------------------------------------------------------------------

    def _next_id(self) -> str:
        self._counter += 1
        return f"evt_{self._prefix}_{self._counter}"

    def _next_item_id(self) -> str | None:
        if not self._assign_item_ids:
            return None
        self._counter += 1
        return f"item_{self._prefix}_{self._counter}"

    def _frame_pending_audio(self) -> None:
        if not self._pending_audio:
            return
        pcm = b"".join(self._pending_audio)
        self._pending_audio.clear()
        self._pending_audio_bytes = 0
        self._send(encode.audio_append(pcm, event_id=self._next_id()))

    def _send(self, wire: Mapping[str, Any]) -> str:
        if self._pending_audio and wire["type"] != "input_audio_buffer.append":
            self._frame_pending_audio()  # audio appended before this event goes before it
        event_id = str(wire["event_id"])
        self._sent[event_id] = str(wire["type"])
        while len(self._sent) > _SENT_HISTORY:
            self._sent.popitem(last=False)
        self._outgoing.append(json.dumps(wire, ensure_ascii=False, separators=(",", ":")))
        return event_id

    def _send_response_create(self, params: Mapping[str, Any]) -> None:
        event_id = self._next_id()
        self._send(encode.response_create(self._dialect, event_id=event_id, **params))
        self._requested = event_id
        self._cancel_sent = False

    def _apply(self, event: ev.Event) -> None:
        if isinstance(event, ev.SessionCreated | ev.SessionUpdated):
            self._on_session(event)
        elif isinstance(event, ev.ResponseCreated):
            self._on_response_created(event)
        elif isinstance(event, ev.ResponseDone):
            self._on_response_done(event)
        elif isinstance(event, ev.InputCommitted):
            self._on_input_settled(event, self._commits_in_flight)
        elif isinstance(event, ev.InputCleared):
            self._on_input_settled(event, self._clears_in_flight)
        elif isinstance(event, ev.ServerError):
            self._on_error(event)
        elif isinstance(event, ev.AudioDelta) and event.item_id:
            self._last_audio_part = (event.item_id, event.content_index)
        self._conversation.apply(event)

    def _on_session(self, event: ev.SessionCreated | ev.SessionUpdated) -> None:
        self._session = event.session
        self._session_id = event.session_id or self._session_id
        self._model = event.model or self._model
        self._expires_at = event.expires_at or self._expires_at
        if event.session.output_audio_format in BYTES_PER_MS:
            self._conversation.output_audio_format = event.session.output_audio_format
        if event.session.input_audio_format in BYTES_PER_MS:
            self._input_format = event.session.input_audio_format

    def _on_response_created(self, event: ev.ResponseCreated) -> None:
        if self._active is not None and self._active != event.response_id:
            # Only an out-of-band response can run beside the active one; we do not track it.
            if event.conversation_id is None:
                return
        # Ours or not: VAD may have started it before our response.create arrived; either way
        # this is the response now running, and our request (if any) is answered by it or
        # will be refused with the harmless `conversation_already_has_active_response`.
        # `_cancel_sent` stays as it is: a cancel sent while our request was pending applies to
        # this response, which the server cancels as soon as it starts.
        self._requested = None
        self._active = event.response_id or None

    def _on_response_done(self, event: ev.ResponseDone) -> None:
        if self._active is not None and event.response_id not in ("", self._active):
            return  # an out-of-band response ended; the default one is still running
        self._active = None
        self._cancel_sent = False
        self._send_deferred()

    def _on_input_settled(
        self, event: ev.InputCommitted | ev.InputCleared, in_flight: set[str]
    ) -> None:
        if in_flight:
            # The answer to one of ours: the buffer was already reset when we sent it.
            in_flight.pop()
        else:
            # Server VAD committed (or the server cleared) on its own: what we appended before
            # is gone from the buffer.
            self._input_bytes.clear()

    def _on_error(self, event: ev.ServerError) -> None:
        caused_by = event.error.event_id
        if caused_by is None and event.error.code == "conversation_already_has_active_response":
            # Servers send this one without `event_id` (docs §10.5); it can only refuse a
            # response.create, and ours is the only one that can be outstanding.
            caused_by = self._requested
        if caused_by is None:
            return
        self._commits_in_flight.discard(caused_by)
        self._clears_in_flight.discard(caused_by)
        if caused_by == self._requested:
            # Our response.create was refused, so no response.created will answer it: if
            # another response is running it serves the turn; otherwise nothing is active.
            self._requested = None
            if self._active is None:
                self._send_deferred()

    def _send_deferred(self) -> None:
        if self._deferred is not None and not self.response_active:
            params, self._deferred = self._deferred, None
            self._send_response_create(params)
