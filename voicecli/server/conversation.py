"""The server's conversation: items in order, their content, and their wire shapes.

Items are kept in conversation order; `previous_item_id` is simply the id of the item before.
Audio content keeps the bytes exactly as they went over the wire (the session format at the
time), so `conversation.item.retrieved` returns them and truncation can be checked against the
audio actually sent.

Wire shapes follow the captures: GA items carry no `object` field, beta items carry
`"object": "realtime.item"` (protocol reference §5.3).

Pure: standard library only.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from typing import Any

from voicecli.protocol.dialects import Dialect
from voicecli.server.audio import bytes_per_ms


__all__ = ["Content", "Conversation", "Item", "split_words"]

_WORDS = re.compile(r"\s*\S+\s*")


def split_words(text: str) -> list[str]:
    """`"Sure, it's sunny."` -> `["Sure, ", "it's ", "sunny."]` (joins back to the text)."""
    return _WORDS.findall(text) or ([text] if text else [])


@dataclass
class Content:
    type: str
    """input_text, input_audio, input_image; output_text/output_audio (GA) or text/audio."""
    text: str | None = None
    transcript: str | None = None
    audio: bytes = b""
    audio_format: str = "pcm16"
    extra: dict[str, Any] = field(default_factory=dict)
    """Fields passed through as given (input_image's image_url and detail)."""

    @property
    def is_audio(self) -> bool:
        return self.type in ("input_audio", "output_audio", "audio")

    @property
    def audio_ms(self) -> float:
        return len(self.audio) / bytes_per_ms(self.audio_format)

    def to_wire(self, with_audio: bool) -> dict[str, Any]:
        wire: dict[str, Any] = {"type": self.type}
        if self.is_audio:
            if with_audio:
                wire["audio"] = base64.b64encode(self.audio).decode("ascii")
            wire["transcript"] = self.transcript
        elif self.type == "input_image":
            wire.update(self.extra)
        else:
            wire["text"] = self.text or ""
        return wire


@dataclass
class Item:
    id: str
    type: str
    """message, function_call or function_call_output."""
    role: str | None = None
    status: str = "completed"
    content: list[Content] = field(default_factory=list)
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None

    def to_wire(self, dialect: Dialect, with_audio: bool = False) -> dict[str, Any]:
        wire: dict[str, Any] = {"id": self.id}
        if dialect.name == "beta":
            wire["object"] = "realtime.item"
        wire["type"] = self.type
        if self.type == "message":
            wire["status"] = self.status
            wire["role"] = self.role
            wire["content"] = [part.to_wire(with_audio) for part in self.content]
        elif self.type == "function_call":
            wire["status"] = self.status
            wire["name"] = self.name
            wire["call_id"] = self.call_id
            wire["arguments"] = self.arguments or ""
        else:
            wire["call_id"] = self.call_id
            wire["output"] = self.output
        return wire


class Conversation:
    """Items by id, in conversation order."""

    def __init__(self) -> None:
        self._items: dict[str, Item] = {}
        self._order: list[str] = []

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __len__(self) -> int:
        return len(self._order)

    def get(self, item_id: str) -> Item | None:
        return self._items.get(item_id)

    def items(self) -> list[Item]:
        return [self._items[item_id] for item_id in self._order]

    def last_id(self) -> str | None:
        return self._order[-1] if self._order else None

    def previous_id(self, item_id: str) -> str | None:
        index = self._order.index(item_id)
        return self._order[index - 1] if index else None

    def append(self, item: Item) -> None:
        self._items[item.id] = item
        self._order.append(item.id)

    def insert_after(self, item: Item, previous_item_id: str | None) -> None:
        """Insert after `previous_item_id`; `None` inserts at the very start ("root")."""
        index = 0 if previous_item_id is None else self._order.index(previous_item_id) + 1
        self._items[item.id] = item
        self._order.insert(index, item.id)

    def delete(self, item_id: str) -> None:
        del self._items[item_id]
        self._order.remove(item_id)

    def known_call_ids(self) -> dict[str, str]:
        """call_id -> function name, for every function call in the conversation."""
        return {
            item.call_id: item.name or ""
            for item in self.items()
            if item.type == "function_call" and item.call_id
        }
