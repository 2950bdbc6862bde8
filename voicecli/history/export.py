"""Conversations from the history database as text: the `history list` table, the `history
show` view, and the export formats (Markdown, JSON, plain text).

The JSON export is one object (`EXPORT_JSON_SCHEMA` is its JSON Schema):

    {
      "format": "voicecli-history", "version": 1,
      "conversation": {"id": 12, "started_at": "2026-01-02T14:03:11.250000+00:00",
                       "ended_at": ... | null, "duration_s": 149.2 | null,
                       "end_reason": "user quit" | null, "model": ..., "voice": ...,
                       "dialect": ..., "server_url": ...},
      "messages": [{"seq": 1, "role": "user", "kind": "voice", "text": "...",
                    "full_text": null, "pending": false, "interrupted": false,
                    "heard_ms": null, "item_id": "item_1", "response_id": null,
                    "started_at": ... | null, "ended_at": ... | null,
                    "timing_ms": {"response_ms": ..., "ttfb_ms": ..., "first_text_ms": ...,
                                  "ttfa_ms": ..., "total_ms": ..., "audio_ms": ...},
                    "usage": {"input_tokens": ..., ...} | null, "cost_usd": 0.0123 | null}]
    }

Times in JSON are ISO 8601 in UTC; on screen and in Markdown and text they are local time.

Pure: formats records it is given; the store does the reading.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from voicecli.history.store import (
    FIGURE_FIELDS,
    ConversationRecord,
    MessageFigures,
    MessageRecord,
    SearchHit,
)
from voicecli.metrics import format_timings


__all__ = [
    "EXPORT_FORMATS",
    "EXPORT_JSON_SCHEMA",
    "export",
    "format_duration",
    "format_figures",
    "list_table",
    "search_lines",
    "show_lines",
    "to_document",
    "to_json",
    "to_markdown",
    "to_text",
]

EXPORT_FORMATS = ("md", "json", "txt")

_TIMING_FIELDS = ("response_ms", "ttfb_ms", "first_text_ms", "ttfa_ms", "total_ms", "audio_ms")
_TOKEN_FIELDS = tuple(name for name in FIGURE_FIELDS if name.endswith("_tokens"))

ROLE_LABELS = {
    "user": "You",
    "assistant": "Assistant",
    "tool": "Tool",
    "notice": "Note",
    "error": "Error",
}


# --------------------------------------------------------------------------------------------
# Small formatters
# --------------------------------------------------------------------------------------------


def _local(at: float | None, with_date: bool = True) -> str:
    if at is None:
        return "-"
    moment = datetime.fromtimestamp(at).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S" if with_date else "%H:%M:%S")


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, UTC).isoformat()


def format_duration(seconds: float | None) -> str:
    """`42s`, `2m 29s`, `1h 03m`, `2d 05h`; `-` when unknown."""
    if seconds is None:
        return "-"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def _seconds(ms: float) -> str:
    return f"{ms / 1000:.1f} s"


def format_figures(figures: MessageFigures) -> str:
    """`first audio 812 ms, heard 870 ms, done 2140 ms · 540 in / 120 out tokens · $0.0123`;
    empty when nothing was measured."""
    timing = format_timings(figures)
    parts = [timing] if timing else []
    if figures.input_tokens is not None or figures.output_tokens is not None:
        tokens = f"{figures.input_tokens or 0} in / {figures.output_tokens or 0} out tokens"
        if figures.cached_tokens:
            tokens += f" ({figures.cached_tokens} cached)"
        parts.append(tokens)
    if figures.cost_usd is not None:
        parts.append(f"${figures.cost_usd:.4f}")
    return " · ".join(parts)


def _marks(message: MessageRecord) -> list[str]:
    """The bracketed remarks after a line: interrupted, unfinished."""
    marks = []
    if message.interrupted:
        heard = f", heard {_seconds(message.heard_ms)}" if message.heard_ms is not None else ""
        marks.append(f"interrupted{heard}")
    if message.pending:
        marks.append("transcript pending" if message.role == "user" else "unfinished")
    return marks


def _speaker(message: MessageRecord) -> str:
    label = ROLE_LABELS.get(message.role, message.role)
    if message.role == "user" or (message.role == "assistant" and message.kind == "text"):
        return f"{label} ({message.kind})"
    return label


def _text(message: MessageRecord) -> str:
    if message.text:
        return message.text
    return "(no transcript)" if message.role == "user" else "(nothing)"


# --------------------------------------------------------------------------------------------
# history list / show / search
# --------------------------------------------------------------------------------------------


def list_table(conversations: Sequence[ConversationRecord]) -> list[str]:
    """The `history list` table, one row per conversation in the order given."""
    header = ("ID", "STARTED", "DURATION", "MODEL", "VOICE", "LINES", "ENDED")
    rows = [
        (
            str(c.id),
            _local(c.started_at),
            format_duration(c.duration_s),
            c.model or "-",
            c.voice or "-",
            str(c.message_count),
            c.end_reason or ("-" if c.ended_at is not None else "(did not end cleanly)"),
        )
        for c in conversations
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    right = {0, 2, 5}  # numbers line up on the right

    def render(row: Sequence[str]) -> str:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        return "  ".join(cells).rstrip()

    return [render(header), *(render(row) for row in rows)]


def _heading(conversation: ConversationRecord) -> list[str]:
    c = conversation
    if c.ended_at is not None:
        ended = f"ended {_local(c.ended_at)}" + (f" ({c.end_reason})" if c.end_reason else "")
    else:
        ended = "did not end cleanly"
    about = [
        f"model {c.model or '-'}",
        f"voice {c.voice or '-'}",
        f"dialect {c.dialect or '-'}",
    ]
    lines = [
        f"Conversation {c.id}: started {_local(c.started_at)}, {ended}, "
        f"{format_duration(c.duration_s)}, {c.message_count} lines",
        ", ".join(about) + (f", server {c.server_url}" if c.server_url else ""),
    ]
    return lines


def show_lines(
    conversation: ConversationRecord, messages: Sequence[MessageRecord], figures: bool = True
) -> list[str]:
    """The conversation as readable lines: a heading, then `[time] Speaker: text [marks]`,
    with each reply's measured figures on an indented line below it (when `figures`)."""
    lines = _heading(conversation)
    lines.append("")
    if not messages:
        lines.append("(no lines)")
    for message in messages:
        marks = _marks(message)
        suffix = f" [{'; '.join(marks)}]" if marks else ""
        at = _local(message.started_at or message.ended_at, with_date=False)
        lines.append(f"[{at}] {_speaker(message)}: {_text(message)}{suffix}")
        if figures:
            summary = format_figures(message.figures)
            if summary:
                lines.append(f"           {summary}")
    return lines


def search_lines(hits: Sequence[SearchHit], width: int = 100) -> list[str]:
    """`#12 2026-01-02 14:03:15  You (voice): ...the matching line...`"""
    lines = []
    for hit in hits:
        message = hit.message
        text = " ".join(_text(message).split())
        prefix = f"#{hit.conversation_id} {_local(message.started_at or message.ended_at)}"
        line = f"{prefix}  {_speaker(message)}: {text}"
        if len(line) > width:
            line = line[: width - 1] + "…"
        lines.append(line)
    return lines


# --------------------------------------------------------------------------------------------
# Export formats
# --------------------------------------------------------------------------------------------


def to_text(conversation: ConversationRecord, messages: Sequence[MessageRecord]) -> str:
    """Plain text: the `show` view without the figures."""
    return "\n".join(show_lines(conversation, messages, figures=False)) + "\n"


def to_markdown(conversation: ConversationRecord, messages: Sequence[MessageRecord]) -> str:
    c = conversation
    lines = [f"# Conversation {c.id}", ""]
    lines.append(f"- Started: {_local(c.started_at)}")
    if c.ended_at is not None:
        reason = f" ({c.end_reason})" if c.end_reason else ""
        lines.append(f"- Ended: {_local(c.ended_at)}{reason}")
    else:
        lines.append("- Ended: did not end cleanly")
    lines.append(f"- Duration: {format_duration(c.duration_s)}")
    lines.append(f"- Model: {c.model or '-'}, voice {c.voice or '-'}, dialect {c.dialect or '-'}")
    if c.server_url:
        lines.append(f"- Server: `{c.server_url}`")
    lines.append("")
    for message in messages:
        at = _local(message.started_at or message.ended_at, with_date=False)
        text = _text(message).replace("\n", "  \n")
        marks = _marks(message)
        suffix = f" *({'; '.join(marks)})*" if marks else ""
        if message.role in ("notice", "error"):
            lines.append(f"> **{ROLE_LABELS[message.role]}** ({at}): {text}{suffix}")
        else:
            lines.append(f"**{_speaker(message)}** ({at}): {text}{suffix}")
        summary = format_figures(message.figures)
        if summary:
            lines.append(f"<sub>{summary}</sub>")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _message_document(message: MessageRecord) -> dict[str, Any]:
    figures = message.figures
    usage = {name: getattr(figures, name) for name in _TOKEN_FIELDS}
    return {
        "seq": message.seq,
        "role": message.role,
        "kind": message.kind,
        "text": message.text,
        "full_text": message.full_text,
        "pending": message.pending,
        "interrupted": message.interrupted,
        "heard_ms": message.heard_ms,
        "item_id": message.item_id,
        "response_id": message.response_id,
        "started_at": _iso(message.started_at),
        "ended_at": _iso(message.ended_at),
        "timing_ms": {name: getattr(figures, name) for name in _TIMING_FIELDS},
        "usage": usage if any(v is not None for v in usage.values()) else None,
        "cost_usd": figures.cost_usd,
    }


def to_document(
    conversation: ConversationRecord, messages: Sequence[MessageRecord]
) -> dict[str, Any]:
    """The JSON export as a dict (see the module docstring and `EXPORT_JSON_SCHEMA`)."""
    c = conversation
    return {
        "format": "voicecli-history",
        "version": 1,
        "conversation": {
            "id": c.id,
            "started_at": _iso(c.started_at),
            "ended_at": _iso(c.ended_at),
            "duration_s": None if c.duration_s is None else round(c.duration_s, 3),
            "end_reason": c.end_reason,
            "model": c.model,
            "voice": c.voice,
            "dialect": c.dialect,
            "server_url": c.server_url,
        },
        "messages": [_message_document(message) for message in messages],
    }


def to_json(conversation: ConversationRecord, messages: Sequence[MessageRecord]) -> str:
    return json.dumps(to_document(conversation, messages), indent=2, ensure_ascii=False) + "\n"


def export(conversation: ConversationRecord, messages: Sequence[MessageRecord], fmt: str) -> str:
    """The conversation in `fmt` (`md`, `json` or `txt`)."""
    if fmt == "md":
        return to_markdown(conversation, messages)
    if fmt == "json":
        return to_json(conversation, messages)
    if fmt == "txt":
        return to_text(conversation, messages)
    raise ValueError(f"unknown export format {fmt!r}")


# --------------------------------------------------------------------------------------------
# JSON Schema of the JSON export
# --------------------------------------------------------------------------------------------

_NULLABLE_STRING = {"type": ["string", "null"]}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_NULLABLE_INT = {"type": ["integer", "null"], "minimum": 0}
_TIME = {"type": ["string", "null"], "format": "date-time"}


def _closed_object(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


EXPORT_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "voicecli history export",
    **_closed_object(
        {
            "format": {"const": "voicecli-history"},
            "version": {"const": 1},
            "conversation": _closed_object(
                {
                    "id": {"type": "integer", "minimum": 1},
                    "started_at": {"type": "string", "format": "date-time"},
                    "ended_at": _TIME,
                    "duration_s": _NULLABLE_NUMBER,
                    "end_reason": _NULLABLE_STRING,
                    "model": _NULLABLE_STRING,
                    "voice": _NULLABLE_STRING,
                    "dialect": _NULLABLE_STRING,
                    "server_url": _NULLABLE_STRING,
                }
            ),
            "messages": {
                "type": "array",
                "items": _closed_object(
                    {
                        "seq": {"type": "integer", "minimum": 1},
                        "role": {"enum": ["user", "assistant", "tool", "notice", "error"]},
                        "kind": {"enum": ["voice", "typed", "text", "system"]},
                        "text": {"type": "string"},
                        "full_text": _NULLABLE_STRING,
                        "pending": {"type": "boolean"},
                        "interrupted": {"type": "boolean"},
                        "heard_ms": _NULLABLE_INT,
                        "item_id": _NULLABLE_STRING,
                        "response_id": _NULLABLE_STRING,
                        "started_at": _TIME,
                        "ended_at": _TIME,
                        "timing_ms": _closed_object(
                            {name: _NULLABLE_NUMBER for name in _TIMING_FIELDS}
                        ),
                        "usage": {
                            "oneOf": [
                                {"type": "null"},
                                _closed_object({name: _NULLABLE_INT for name in _TOKEN_FIELDS}),
                            ]
                        },
                        "cost_usd": _NULLABLE_NUMBER,
                    }
                ),
            },
        }
    ),
}
