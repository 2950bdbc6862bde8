"""The history's text forms: the list table, the show view, and the md/json/txt exports, from
conversations written to a real SQLite file."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jsonschema
import pytest

from voicecli.history.export import (
    EXPORT_JSON_SCHEMA,
    export,
    format_duration,
    format_figures,
    list_table,
    search_lines,
    show_lines,
    to_document,
)
from voicecli.history.store import HistoryStore, MessageFigures


STARTED = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """Local time is UTC, so the times in the text are predictable."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()


@pytest.fixture
def store(tmp_path: Path) -> HistoryStore:
    clock = iter(STARTED + n for n in range(1000))
    with HistoryStore.open(tmp_path / "h.sqlite3", clock=lambda: next(clock)) as opened:
        yield opened


def sample(store: HistoryStore) -> int:
    """A conversation with every kind of line: voice, typed, interrupted, pending, notice."""
    conversation = store.begin_conversation(
        model="gpt-realtime",
        voice="alloy",
        dialect="ga",
        server_url="ws://127.0.0.1:8765/v1/realtime?model=gpt-realtime",
        started_at=STARTED,
    )
    store.add_message(conversation, role="user", text="What's the weather in Oslo?", item_id="u1")
    store.add_message(
        conversation,
        role="assistant",
        text="It is cold and clear in Oslo.",
        item_id="a1",
        response_id="r1",
        figures=MessageFigures(
            ttfb_ms=812.4, ttfa_ms=870.0, total_ms=2140.0, input_tokens=540, output_tokens=120,
            cached_tokens=64, cost_usd=0.0123,
        ),
    )  # fmt: skip
    store.add_message(conversation, role="user", kind="typed", text="And tomorrow?", item_id="u2")
    reply = store.add_message(
        conversation, role="assistant", text="Tomorrow it will snow heavily.", item_id="a2"
    )
    store.update_message(
        reply,
        interrupted=True,
        heard_ms=1500,
        text="Tomorrow it will",
        full_text="Tomorrow it will snow heavily.",
    )
    store.add_message(conversation, role="notice", text="Reconnected after a network error.")
    store.add_message(conversation, role="user", text="", pending=True, item_id="u3")
    store.end_conversation(conversation, "user quit", ended_at=STARTED + 149)
    return conversation


def test_format_duration() -> None:
    assert format_duration(None) == "-"
    assert format_duration(0.4) == "0s"
    assert format_duration(42) == "42s"
    assert format_duration(149.2) == "2m 29s"
    assert format_duration(3780) == "1h 03m"
    assert format_duration(2 * 86400 + 5 * 3600 + 59) == "2d 05h"


def test_format_figures() -> None:
    assert format_figures(MessageFigures()) == ""
    full = MessageFigures(
        ttfb_ms=812.4, ttfa_ms=870, total_ms=2140, input_tokens=540, output_tokens=120,
        cached_tokens=64, cost_usd=0.0123,
    )  # fmt: skip
    assert format_figures(full) == (
        "first audio 812 ms, heard 870 ms, done 2140 ms · 540 in / 120 out tokens (64 cached)"
        " · $0.0123"
    )
    assert format_figures(MessageFigures(first_text_ms=300)) == "first text 300 ms"


def test_list_table(store: HistoryStore) -> None:
    first = sample(store)
    unfinished = store.begin_conversation(model="gpt-realtime-mini", started_at=STARTED + 600)
    store.add_message(
        unfinished, role="user", text="hello", started_at=STARTED + 600.5, ended_at=STARTED + 601
    )
    lines = list_table(store.conversations())
    assert lines[0].split() == ["ID", "STARTED", "DURATION", "MODEL", "VOICE", "LINES", "ENDED"]
    assert lines[1].split() == [
        str(unfinished), "2023-11-14", "22:23:20", "1s", "gpt-realtime-mini", "-", "1",
        "(did", "not", "end", "cleanly)",
    ]  # fmt: skip
    assert lines[2].split() == [
        str(first), "2023-11-14", "22:13:20", "2m", "29s", "gpt-realtime", "alloy", "6", "user",
        "quit",
    ]  # fmt: skip
    assert len({line.index("STARTED") for line in lines[:1]}) == 1


def test_show_lines_mark_interruptions_typing_pending_and_figures(store: HistoryStore) -> None:
    conversation = sample(store)
    lines = show_lines(store.conversation(conversation), store.messages(conversation))
    assert lines[0] == (
        f"Conversation {conversation}: started 2023-11-14 22:13:20, ended 2023-11-14 22:15:49 "
        "(user quit), 2m 29s, 6 lines"
    )
    assert "model gpt-realtime, voice alloy, dialect ga" in lines[1]
    assert "server ws://127.0.0.1:8765/v1/realtime?model=gpt-realtime" in lines[1]
    body = lines[3:]
    assert body[0].endswith("] You (voice): What's the weather in Oslo?")
    assert body[1].endswith("] Assistant: It is cold and clear in Oslo.")
    assert body[2].strip() == (
        "first audio 812 ms, heard 870 ms, done 2140 ms · 540 in / 120 out tokens (64 cached)"
        " · $0.0123"
    )
    assert body[3].endswith("] You (typed): And tomorrow?")
    assert body[4].endswith("] Assistant: Tomorrow it will [interrupted, heard 1.5 s]")
    assert body[5].endswith("] Note: Reconnected after a network error.")
    assert body[6].endswith("] You (voice): (no transcript) [transcript pending]")
    assert body[0].startswith("[22:13:")


def test_show_an_empty_conversation(store: HistoryStore) -> None:
    conversation = store.begin_conversation()
    lines = show_lines(store.conversation(conversation), [])
    assert "did not end cleanly" in lines[0] and lines[-1] == "(no lines)"


def test_json_export_validates_and_holds_everything(store: HistoryStore) -> None:
    conversation = sample(store)
    record, messages = store.conversation(conversation), store.messages(conversation)
    text = export(record, messages, "json")
    document = json.loads(text)
    jsonschema.validate(document, EXPORT_JSON_SCHEMA, format_checker=jsonschema.FormatChecker())
    assert document == to_document(record, messages)
    about = document["conversation"]
    assert about["id"] == conversation and about["model"] == "gpt-realtime"
    assert about["started_at"] == "2023-11-14T22:13:20+00:00"
    assert about["ended_at"] == "2023-11-14T22:15:49+00:00"
    assert about["duration_s"] == 149 and about["end_reason"] == "user quit"
    rows = document["messages"]
    assert [(m["seq"], m["role"], m["kind"]) for m in rows] == [
        (1, "user", "voice"),
        (2, "assistant", "voice"),
        (3, "user", "typed"),
        (4, "assistant", "voice"),
        (5, "notice", "system"),
        (6, "user", "voice"),
    ]
    assert rows[1]["timing_ms"]["ttfb_ms"] == 812.4 and rows[1]["cost_usd"] == 0.0123
    assert rows[1]["usage"]["input_tokens"] == 540 and rows[1]["usage"]["cached_tokens"] == 64
    assert rows[0]["usage"] is None and rows[0]["timing_ms"]["ttfb_ms"] is None
    assert rows[3]["interrupted"] and rows[3]["heard_ms"] == 1500
    assert rows[3]["full_text"] == "Tomorrow it will snow heavily."
    assert rows[5]["pending"] and rows[5]["text"] == ""


def test_the_schema_rejects_what_it_should() -> None:
    """The schema is not a rubber stamp: broken documents fail it."""
    validator = jsonschema.Draft202012Validator(EXPORT_JSON_SCHEMA)
    good = {
        "format": "voicecli-history",
        "version": 1,
        "conversation": dict.fromkeys(
            ["ended_at", "duration_s", "end_reason", "model", "voice", "dialect", "server_url"]
        )
        | {"id": 1, "started_at": "2023-11-14T22:13:20+00:00"},
        "messages": [],
    }
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "version": 2})
    assert not validator.is_valid({**good, "extra": 1})
    assert not validator.is_valid({**good, "messages": [{"seq": 1, "role": "user"}]})


def test_markdown_and_text_exports_contain_every_line(store: HistoryStore) -> None:
    conversation = sample(store)
    record, messages = store.conversation(conversation), store.messages(conversation)
    markdown = export(record, messages, "md")
    text = export(record, messages, "txt")

    assert markdown.startswith(f"# Conversation {conversation}\n")
    assert "- Ended: 2023-11-14 22:15:49 (user quit)" in markdown
    assert "**You (voice)** (22:13:" in markdown
    assert "**Assistant** (22:13:" in markdown
    assert "Tomorrow it will *(interrupted, heard 1.5 s)*" in markdown
    assert "> **Note** (" in markdown and "Reconnected after a network error." in markdown
    assert "<sub>first audio 812 ms" in markdown

    assert text.startswith(f"Conversation {conversation}: started 2023-11-14 22:13:20")
    assert "first audio" not in text  # figures are for `show`, not the plain transcript
    for message in messages:
        if message.text:
            assert message.text in markdown and message.text in text
    assert "You (typed): And tomorrow?" in text

    with pytest.raises(ValueError, match="format"):
        export(record, messages, "pdf")


def test_search_lines(store: HistoryStore) -> None:
    conversation = sample(store)
    hits = store.search("oslo")
    lines = search_lines(hits)
    assert len(lines) == 2
    assert lines[0].startswith(f"#{conversation} 2023-11-14 22:13:")
    assert lines[0].endswith("You (voice): What's the weather in Oslo?")
    long = store.add_message(conversation, role="assistant", text="Oslo " + "word " * 100)
    [hit] = [h for h in store.search("oslo") if h.message.id == long]
    [line] = search_lines([hit], width=60)
    assert len(line) == 60 and line.endswith("…")
