"""Conversation state built from server events: items keyed by id, ordered by previous_item_id.

The server's events for one conversation interleave freely: the user's transcript can arrive
after the assistant has finished answering, a response can produce several items, and items
can be inserted in the middle. So nothing here relies on arrival order; every event names the
item (and content part) it belongs to, and the order of items comes from `previous_item_id`:

- `None` means "first in the conversation";
- a known id means "right after that item" (also when it arrives late, in the middle);
- an unknown id, or no placement information yet (`response.output_item.added` carries none),
  appends the item at the end; the first event that does carry `previous_item_id` moves it.

Per content part the state keeps the text or transcript (deltas accumulate, a `.done` replaces
them with the final text), the assistant audio received in ms (bytes / 48 for PCM16 at 24 kHz,
bytes / 8 for G.711), and the result of a truncation (interrupted, heard ms, and the transcript
the server kept, when it tells us).

Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from voicecli.protocol import events as ev


__all__ = ["BYTES_PER_MS", "Conversation", "ItemState", "PartState", "bytes_to_ms"]

BYTES_PER_MS = {"pcm16": 48, "g711_ulaw": 8, "g711_alaw": 8}
"""Audio bytes per millisecond: PCM16 mono 24 kHz = 48,000 B/s; G.711 8 kHz = 8,000 B/s."""


def bytes_to_ms(byte_count: int, audio_format: str) -> float:
    """How many milliseconds `byte_count` bytes of `audio_format` audio last."""
    return byte_count / BYTES_PER_MS.get(audio_format, BYTES_PER_MS["pcm16"])


@dataclass(slots=True)
class PartState:
    """One content part of an item as far as we know it."""

    type: str = ""
    """`input_audio`, `input_text`, `output_audio`, `output_text` (or a newer type)."""
    text: str = ""
    """Text, or the transcript of audio: accumulated from deltas, replaced by the final one."""
    done: bool = False
    """The final text arrived (`.done`, `.completed`)."""
    transcript_error: ev.ErrorInfo | None = None
    """The user's audio could not be transcribed."""
    audio_bytes: int = 0
    """Assistant audio received for this part."""
    audio_ms: float = 0.0
    """The same in milliseconds, in the output format it arrived in."""
    audio_done: bool = False
    interrupted: bool = False
    """The server confirmed a truncation: the user heard only `heard_ms` of it."""
    heard_ms: int | None = None
    kept_transcript: str | None = None
    """After a truncation: the transcript the server kept, once the server tells us (a later
    `conversation.item.retrieved` or item event); `None` = not told. `text` keeps what the
    model said in full."""


@dataclass(slots=True)
class ItemState:
    """One item of the conversation: a message, a function call or a function call output."""

    id: str
    type: str = "message"
    role: str | None = None
    status: str | None = None
    previous_item_id: str | None = None
    response_id: str | None = None
    """The response that produced it (assistant output only)."""
    parts: list[PartState] = field(default_factory=list)
    call_id: str | None = None
    name: str | None = None
    arguments: str = ""
    output: str | None = None
    placed: bool = False
    """Positioned by a `previous_item_id` (otherwise provisionally at the end)."""

    @property
    def text(self) -> str:
        """All text and transcripts of the item, in content order."""
        return "".join(part.text for part in self.parts)

    @property
    def audio_ms(self) -> float:
        return sum(part.audio_ms for part in self.parts)

    @property
    def interrupted(self) -> bool:
        return any(part.interrupted for part in self.parts)

    def part(self, content_index: int) -> PartState | None:
        if 0 <= content_index < len(self.parts):
            return self.parts[content_index]
        return None


class Conversation:
    """The items of one conversation, updated by `apply(event)` for every server event."""

    def __init__(self, output_audio_format: str = "pcm16") -> None:
        self.output_audio_format = output_audio_format
        """Format of assistant audio deltas, for the ms arithmetic (set from the session)."""
        self._items: dict[str, ItemState] = {}
        self._order: list[str] = []
        # Input transcription events for items we have not seen yet, replayed on arrival.
        self._early: dict[str, list[ev.Event]] = {}

    # --- reading ---------------------------------------------------------------------------

    @property
    def items(self) -> list[ItemState]:
        """The items in conversation order (a new list; the items are live)."""
        return [self._items[item_id] for item_id in self._order]

    @property
    def ids(self) -> list[str]:
        return list(self._order)

    @property
    def last_item_id(self) -> str | None:
        return self._order[-1] if self._order else None

    def get(self, item_id: str) -> ItemState | None:
        return self._items.get(item_id)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __len__(self) -> int:
        return len(self._order)

    def __iter__(self) -> Iterator[ItemState]:
        return iter(self.items)

    def audio_ms(self, item_id: str, content_index: int) -> float:
        """Assistant audio received for one content part, in ms (0 if unknown)."""
        item = self._items.get(item_id)
        part = item.part(content_index) if item else None
        return part.audio_ms if part else 0.0

    # --- updating --------------------------------------------------------------------------

    def apply(self, event: ev.Event) -> None:
        """Update the state from one server event (events that do not concern items are
        ignored)."""
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def _on_item(self, event: ev.ItemAdded | ev.ItemDone) -> None:
        self._merge(event.item, final=isinstance(event, ev.ItemDone))
        self._place(event.item.id, event.previous_item_id)

    def _on_output_item(self, event: ev.OutputItemAdded | ev.OutputItemDone) -> None:
        item = self._merge(event.item, final=isinstance(event, ev.OutputItemDone))
        if item is not None and event.response_id:
            item.response_id = event.response_id

    def _on_retrieved(self, event: ev.ItemRetrieved) -> None:
        self._merge(event.item, final=True)

    def _on_response_done(self, event: ev.ResponseDone) -> None:
        # Final statuses (e.g. `incomplete` after a barge-in); never creates items, since an
        # out-of-band response's output is not part of the conversation.
        for item in event.output:
            if item.id in self._items:
                self._merge(item, final=True)

    def _on_committed(self, event: ev.InputCommitted) -> None:
        # The committed buffer becomes a user audio item: create it now, in place, so a
        # transcript that overtakes `conversation.item.added` still has a home.
        if not event.item_id:
            return
        if event.item_id not in self._items:
            self._insert(ItemState(id=event.item_id, role="user", parts=[_part("input_audio")]))
        self._place(event.item_id, event.previous_item_id)

    def _on_content_part(self, event: ev.ContentPartAdded | ev.ContentPartDone) -> None:
        item = self._output_item(event.item_id, event.response_id)
        if item is None:
            return
        part = _ensure_part(item, event.content_index, event.part.type)
        value = event.part.text if event.part.text is not None else event.part.transcript
        _set_text(part, value, final=isinstance(event, ev.ContentPartDone))

    def _on_audio_delta(self, event: ev.AudioDelta) -> None:
        item = self._output_item(event.item_id, event.response_id)
        if item is None:
            return
        part = _ensure_part(item, event.content_index, "output_audio")
        part.audio_bytes += len(event.pcm)
        part.audio_ms += bytes_to_ms(len(event.pcm), self.output_audio_format)

    def _on_audio_done(self, event: ev.AudioDone) -> None:
        item = self._output_item(event.item_id, event.response_id)
        if item is not None:
            _ensure_part(item, event.content_index, "output_audio").audio_done = True

    def _on_output_text(
        self, event: ev.TranscriptDelta | ev.TranscriptDone | ev.TextDelta | ev.TextDone
    ) -> None:
        item = self._output_item(event.item_id, event.response_id)
        if item is None:
            return
        kind = "output_text" if isinstance(event, ev.TextDelta | ev.TextDone) else "output_audio"
        part = _ensure_part(item, event.content_index, kind)
        if isinstance(event, ev.TranscriptDelta | ev.TextDelta):
            if not part.done:
                part.text += event.delta
        else:
            _set_text(
                part, event.transcript if isinstance(event, ev.TranscriptDone) else event.text
            )

    def _on_arguments(
        self, event: ev.FunctionCallArgumentsDelta | ev.FunctionCallArgumentsDone
    ) -> None:
        item = self._output_item(event.item_id, event.response_id, item_type="function_call")
        if item is None:
            return
        if event.call_id:
            item.call_id = event.call_id
        if isinstance(event, ev.FunctionCallArgumentsDelta):
            item.arguments += event.delta
        else:
            item.arguments = event.arguments
            if event.name:
                item.name = event.name

    def _on_input_transcript(
        self,
        event: ev.InputTranscriptDelta | ev.InputTranscriptCompleted | ev.InputTranscriptFailed,
    ) -> None:
        item = self._items.get(event.item_id)
        if item is None:
            if event.item_id:
                self._early.setdefault(event.item_id, []).append(event)
            return
        part = _ensure_part(item, event.content_index, "input_audio")
        if isinstance(event, ev.InputTranscriptDelta):
            if not part.done:
                part.text += event.delta
        elif isinstance(event, ev.InputTranscriptCompleted):
            _set_text(part, event.transcript)
        else:
            part.transcript_error = event.error
            part.done = True

    def _on_truncated(self, event: ev.ItemTruncated) -> None:
        item = self._items.get(event.item_id)
        if item is None:
            return
        part = _ensure_part(item, event.content_index, "output_audio")
        part.interrupted = True
        part.heard_ms = event.audio_end_ms
        part.kept_transcript = None

    def _on_deleted(self, event: ev.ItemDeleted) -> None:
        if self._items.pop(event.item_id, None) is not None:
            self._order.remove(event.item_id)
        self._early.pop(event.item_id, None)

    # --- helpers ---------------------------------------------------------------------------

    def _merge(self, wire: ev.Item, *, final: bool) -> ItemState | None:
        """Fold what an item event says into our item (created if new). `None` never erases
        what we know: a late `transcript: null` must not wipe a transcript that arrived."""
        if not wire.id:
            return None
        item = self._items.get(wire.id)
        if item is None:
            item = ItemState(id=wire.id)
            self._insert(item)
        if wire.type:
            item.type = wire.type
        for name in ("role", "status", "call_id", "name", "output"):
            value = getattr(wire, name)
            if value is not None:
                setattr(item, name, value)
        if wire.arguments and (final or not item.arguments):
            item.arguments = wire.arguments
        for index, content in enumerate(wire.content):
            part = _ensure_part(item, index, content.type)
            if content.type:
                part.type = content.type
            value = content.text if content.text is not None else content.transcript
            if part.interrupted:
                if final and value is not None:
                    part.kept_transcript = value
            elif final or content.type == "input_text":  # typed text is final as sent
                _set_text(part, value)
            elif value and not part.text:
                part.text = value
        return item

    def _insert(self, item: ItemState) -> None:
        self._items[item.id] = item
        self._order.append(item.id)
        for early in self._early.pop(item.id, []):
            self.apply(early)

    def _place(self, item_id: str, previous_item_id: str | None) -> None:
        item = self._items.get(item_id)
        if item is None or item.placed:
            return
        item.previous_item_id = previous_item_id
        item.placed = True
        self._order.remove(item_id)
        if previous_item_id is None:
            self._order.insert(0, item_id)
        elif previous_item_id in self._items and previous_item_id != item_id:
            self._order.insert(self._order.index(previous_item_id) + 1, item_id)
        else:
            self._order.append(item_id)

    def _output_item(
        self, item_id: str, response_id: str, item_type: str = "message"
    ) -> ItemState | None:
        """The item a response event talks about; created (assistant, at the end) if a
        server skipped `response.output_item.added`."""
        if not item_id:
            return None
        item = self._items.get(item_id)
        if item is None:
            item = ItemState(id=item_id, type=item_type)
            if item_type == "message":
                item.role = "assistant"
            self._insert(item)
        if response_id and item.response_id is None:
            item.response_id = response_id
        return item


def _part(kind: str) -> PartState:
    return PartState(type=kind)


def _ensure_part(item: ItemState, content_index: int, kind: str) -> PartState:
    index = max(content_index, 0)
    while len(item.parts) <= index:
        item.parts.append(PartState())
    part = item.parts[index]
    if not part.type:
        part.type = kind
    return part


def _set_text(part: PartState, value: str | None, *, final: bool = True) -> None:
    """Final text replaces the accumulated deltas; an initial value only fills a blank."""
    if value is None:
        return
    if final:
        part.text = value
        part.done = True
    elif not part.text:
        part.text = value


_HANDLERS = {
    ev.ItemAdded: Conversation._on_item,
    ev.ItemDone: Conversation._on_item,
    ev.ItemRetrieved: Conversation._on_retrieved,
    ev.ItemTruncated: Conversation._on_truncated,
    ev.ItemDeleted: Conversation._on_deleted,
    ev.OutputItemAdded: Conversation._on_output_item,
    ev.OutputItemDone: Conversation._on_output_item,
    ev.ResponseDone: Conversation._on_response_done,
    ev.InputCommitted: Conversation._on_committed,
    ev.ContentPartAdded: Conversation._on_content_part,
    ev.ContentPartDone: Conversation._on_content_part,
    ev.AudioDelta: Conversation._on_audio_delta,
    ev.AudioDone: Conversation._on_audio_done,
    ev.TranscriptDelta: Conversation._on_output_text,
    ev.TranscriptDone: Conversation._on_output_text,
    ev.TextDelta: Conversation._on_output_text,
    ev.TextDone: Conversation._on_output_text,
    ev.FunctionCallArgumentsDelta: Conversation._on_arguments,
    ev.FunctionCallArgumentsDone: Conversation._on_arguments,
    ev.InputTranscriptDelta: Conversation._on_input_transcript,
    ev.InputTranscriptCompleted: Conversation._on_input_transcript,
    ev.InputTranscriptFailed: Conversation._on_input_transcript,
}
