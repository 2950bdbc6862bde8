"""The event inspector's model: the engine's log as rows, with streams of deltas grouped.

Every frame sent, every event received and every engine note becomes a row with its time.
Audio payloads are already elided by the engine (`<N bytes>`). Streaming events (audio
appends, audio and transcript deltas) would drown everything else, so a run of them, until
the next non-streaming event, collapses into one row per (direction, type) that counts the
events, adds up their bytes and joins their text:

    12:00:01.250 → input_audio_buffer.append ×50  48000 bytes
    12:00:01.262 ← response.output_audio_transcript.delta ×12  "Hello, how can I…"

Pure: fed `LogEntry`s one at a time (`add`), O(1) each, so the engine's hot path stays cheap.
"""

from __future__ import annotations

import json
import re
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from voicecli.engine import LogEntry


__all__ = ["InspectorModel", "Row", "format_row", "is_stream"]

_ARROWS = {"sent": "→", "received": "←", "engine": "·"}
_BYTES = re.compile(r"^<(\d+) bytes>$")
_SKIP_KEYS = frozenset({"type", "event_id"})


def is_stream(event_type: str) -> bool:
    """Events that come in fast streams and are grouped."""
    return event_type == "input_audio_buffer.append" or event_type.endswith(".delta")


@dataclass(slots=True)
class Row:
    at: float
    direction: str
    type: str
    summary: str = ""
    count: int = 1
    audio_bytes: int = 0
    text: list[str] = field(default_factory=list)
    """Joined text of grouped text deltas."""


def _payload_bytes(data: object) -> int:
    if not isinstance(data, dict):
        return 0
    total = 0
    for name in ("delta", "audio"):
        value = data.get(name)
        if isinstance(value, str):
            match = _BYTES.match(value)
            if match:
                total += int(match.group(1))
    return total


def _summary(entry: LogEntry, width: int = 240) -> str:
    if entry.data is None:
        return entry.note
    body = {key: value for key, value in entry.data.items() if key not in _SKIP_KEYS}
    text = json.dumps(body, separators=(",", ":"), ensure_ascii=False, default=str)
    if entry.note:
        text = f"{entry.note}  {text}"
    return text if len(text) <= width else text[: width - 1] + "…"


class InspectorModel:
    """Rows of the inspector, newest last, at most `max_rows` kept."""

    def __init__(self, max_rows: int = 2000) -> None:
        self.rows: deque[Row] = deque(maxlen=max_rows)
        self.version = 0
        """Bumped on every change, so a widget re-renders only when something changed."""
        self.rows_added = 0
        """Rows ever made (a row's number never changes; the oldest fall out of `rows`)."""
        self._run: dict[tuple[str, str], Row] = {}

    def add(self, entry: LogEntry) -> None:
        self.version += 1
        if is_stream(entry.type):
            key = (entry.direction, entry.type)
            row = self._run.get(key)
            delta = entry.data.get("delta") if entry.data else None
            text = delta if isinstance(delta, str) and not _BYTES.match(delta) else None
            if row is not None:
                row.count += 1
                row.audio_bytes += _payload_bytes(entry.data)
                if text:
                    row.text.append(text)
                return
            row = Row(entry.at, entry.direction, entry.type, audio_bytes=_payload_bytes(entry.data))
            if text:
                row.text.append(text)
            self._run[key] = row
            self._append(row)
            return
        self._run.clear()  # a non-streaming event ends the run of deltas
        self._append(Row(entry.at, entry.direction, entry.type, _summary(entry)))

    def _append(self, row: Row) -> None:
        self.rows.append(row)
        self.rows_added += 1

    def extend(self, entries: Iterable[LogEntry]) -> None:
        for entry in entries:
            self.add(entry)

    def last(self, count: int) -> list[Row]:
        rows = self.rows
        start = max(0, len(rows) - count)
        return [rows[index] for index in range(start, len(rows))]

    @property
    def final_count(self) -> int:
        """Rows that can no longer change: all but the open run of deltas."""
        return self.rows_added - len(self._run)

    def final_since(self, number: int) -> list[Row]:
        """The final rows numbered `number` and later that are still kept, oldest first."""
        first_kept = self.rows_added - len(self.rows)
        start = max(number, first_kept)
        return [self.rows[n - first_kept] for n in range(start, self.final_count)]

    def open_rows(self) -> list[Row]:
        """The rows of the run of deltas still growing (they change until it ends)."""
        return [
            self.rows[index] for index in range(len(self.rows) - len(self._run), len(self.rows))
        ]


def format_row(row: Row, width: int = 300) -> str:
    """One inspector line: local time with milliseconds, arrow, type, count, details."""
    stamp = time.strftime("%H:%M:%S", time.localtime(row.at)) + f".{int(row.at * 1000) % 1000:03d}"
    line = f"{stamp} {_ARROWS.get(row.direction, '?')} {row.type}"
    if row.count > 1:
        line += f" ×{row.count}"
    if row.audio_bytes:
        line += f"  {row.audio_bytes} bytes"
    if row.text:
        joined = "".join(row.text)
        line += f"  {json.dumps(joined, ensure_ascii=False)}"
    elif row.summary:
        line += f"  {row.summary}"
    return line if len(line) <= width else line[: width - 1] + "…"
