"""The history store on real SQLite files: round trips, order, late updates, search, delete,
schema versioning, refusing foreign files, and key hygiene down to the file's bytes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from voicecli.history.schema import APPLICATION_ID, SCHEMA_VERSION
from voicecli.history.store import HistoryError, HistoryStore, MessageFigures, safe_url
from voicecli.metrics import TurnMetrics
from voicecli.protocol.events import Usage


FAKE_KEY = "sk-proj-FAKEKEYvoicecliHYGIENE0123456789"


class Clock:
    """A settable Unix clock, so timestamps are exact."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def file_bytes(path: Path) -> bytes:
    """The database file and its WAL/SHM companions, as they are on disk."""
    return b"".join(
        candidate.read_bytes()
        for candidate in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
        if candidate.exists()
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "voicecli" / "history.sqlite3"


# --- opening -------------------------------------------------------------------------------


def test_open_creates_the_directory_in_wal_mode_with_the_current_schema(db_path: Path) -> None:
    with HistoryStore.open(db_path) as store:
        assert store.path == db_path
        assert store.schema_version == SCHEMA_VERSION
        assert store.integrity_check() == "ok"
    raw = sqlite3.connect(db_path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"conversations", "messages"} <= tables


def test_synchronous_setting_follows_durability(db_path: Path) -> None:
    with HistoryStore.open(db_path) as store:
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with HistoryStore.open(db_path, durability="full") as store:
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with pytest.raises(ValueError):
        HistoryStore.open(db_path, durability="sometimes")


def test_reopening_keeps_everything(db_path: Path) -> None:
    with HistoryStore.open(db_path) as store:
        conversation = store.begin_conversation(model="gpt-realtime")
        store.add_message(conversation, role="user", text="still here?")
    with HistoryStore.open(db_path, create=False) as store:
        assert [m.text for m in store.messages(conversation)] == ["still here?"]


def test_missing_file_without_create_is_a_history_error(db_path: Path) -> None:
    with pytest.raises(HistoryError, match="no history database"):
        HistoryStore.open(db_path, create=False)
    assert not db_path.exists()


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(HistoryError, match="is a directory"):
        HistoryStore.open(tmp_path)


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some text, definitely not a database\n" * 100)
    with pytest.raises(HistoryError, match="not a database") as caught:
        HistoryStore.open(path)
    assert "\n" not in str(caught.value)
    assert path.read_text().startswith("just some text")


def test_another_programs_database_is_not_written_into(tmp_path: Path) -> None:
    path = tmp_path / "other.sqlite3"
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE accounts (name TEXT)")
    other.commit()
    other.close()
    with pytest.raises(HistoryError, match="not a voicecli history database"):
        HistoryStore.open(path)
    tables = [r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")]
    assert tables == ["accounts"]


def test_a_database_from_a_newer_voicecli_is_refused(db_path: Path) -> None:
    HistoryStore.open(db_path).close()
    raw = sqlite3.connect(db_path)
    raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    raw.commit()
    raw.close()
    with pytest.raises(HistoryError, match="newer voicecli"):
        HistoryStore.open(db_path)


def test_migrations_run_in_order_from_the_stored_version(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from voicecli.history import schema, store

    HistoryStore.open(db_path).close()  # a version-1 database

    def add_language(db: sqlite3.Connection) -> None:
        db.execute("ALTER TABLE conversations ADD COLUMN language TEXT")

    steps = (*schema.MIGRATIONS, add_language)
    monkeypatch.setattr(store, "MIGRATIONS", steps)
    monkeypatch.setattr(store, "SCHEMA_VERSION", len(steps))
    with HistoryStore.open(db_path) as upgraded:
        assert upgraded.schema_version == len(steps)
        columns = [r[1] for r in upgraded._db.execute("PRAGMA table_info(conversations)")]
        assert "language" in columns
    with HistoryStore.open(db_path) as again:  # nothing left to run: no duplicate column
        assert again.schema_version == len(steps)


def test_unreadable_file_is_a_history_error(db_path: Path) -> None:
    import os

    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    HistoryStore.open(db_path).close()
    db_path.chmod(0)
    try:
        with pytest.raises(HistoryError):
            HistoryStore.open(db_path, create=False)
    finally:
        db_path.chmod(0o600)


# --- writing and reading -------------------------------------------------------------------


def test_conversation_round_trip(db_path: Path) -> None:
    clock = Clock()
    with HistoryStore.open(db_path, clock=clock) as store:
        conversation = store.begin_conversation(
            model="gpt-realtime",
            voice="marin",
            dialect="ga",
            server_url="ws://127.0.0.1:8765/v1/realtime?model=gpt-realtime",
        )
        clock.now += 90
        store.end_conversation(conversation, "user quit")
        record = store.conversation(conversation)
    assert record.id == conversation
    assert record.started_at == 1_700_000_000.0 and record.ended_at == 1_700_000_090.0
    assert record.duration_s == 90
    assert (record.model, record.voice, record.dialect) == ("gpt-realtime", "marin", "ga")
    assert record.server_url == "ws://127.0.0.1:8765/v1/realtime?model=gpt-realtime"
    assert record.end_reason == "user quit" and record.message_count == 0


def test_update_conversation_changes_only_what_is_given(db_path: Path) -> None:
    with HistoryStore.open(db_path) as store:
        conversation = store.begin_conversation(model="gpt-realtime", voice="alloy")
        store.update_conversation(conversation, model="gpt-realtime-2025-08-28")
        record = store.conversation(conversation)
        assert record.model == "gpt-realtime-2025-08-28" and record.voice == "alloy"
        with pytest.raises(HistoryError, match="no conversation 99"):
            store.update_conversation(99, voice="ash")
        with pytest.raises(HistoryError, match="no conversation 99"):
            store.end_conversation(99, "user quit")


def test_messages_keep_their_order_and_every_field(db_path: Path) -> None:
    clock = Clock()
    figures = MessageFigures(
        response_ms=120.5,
        ttfb_ms=812.0,
        first_text_ms=640.0,
        ttfa_ms=870.0,
        total_ms=2140.0,
        audio_ms=1980.0,
        input_tokens=540,
        output_tokens=120,
        input_text_tokens=40,
        input_audio_tokens=500,
        cached_tokens=64,
        cached_text_tokens=0,
        cached_audio_tokens=64,
        output_text_tokens=30,
        output_audio_tokens=90,
        cost_usd=0.0123,
    )
    with HistoryStore.open(db_path, clock=clock) as store:
        conversation = store.begin_conversation()
        for n in range(1, 4):
            clock.now += 1
            store.add_message(conversation, role="user", text=f"question {n}", item_id=f"u{n}")
            clock.now += 1
            store.add_message(
                conversation,
                role="assistant",
                text=f"answer {n}",
                item_id=f"a{n}",
                response_id=f"r{n}",
                started_at=clock.now - 0.5,
                figures=figures,
            )
        store.add_message(conversation, role="user", kind="typed", text="typed one")
        store.add_message(conversation, role="notice", text="reconnected")
        messages = store.messages(conversation)

    assert [m.seq for m in messages] == list(range(1, 9))
    assert [m.text for m in messages[:6]] == [
        "question 1", "answer 1", "question 2", "answer 2", "question 3", "answer 3",
    ]  # fmt: skip
    first_answer = messages[1]
    assert first_answer.role == "assistant" and first_answer.kind == "voice"
    assert (first_answer.item_id, first_answer.response_id) == ("a1", "r1")
    assert first_answer.started_at == 1_700_000_001.5
    assert first_answer.ended_at == 1_700_000_002.0
    assert first_answer.figures == figures
    assert messages[0].figures == MessageFigures() and messages[0].figures.empty
    assert (messages[6].role, messages[6].kind) == ("user", "typed")
    assert (messages[7].role, messages[7].kind) == ("notice", "system")
    assert not any(m.pending or m.interrupted for m in messages)


def test_a_late_transcript_fills_its_placeholder_in_place(db_path: Path) -> None:
    clock = Clock()
    with HistoryStore.open(db_path, clock=clock) as store:
        conversation = store.begin_conversation()
        placeholder = store.add_message(
            conversation, role="user", text="", pending=True, item_id="item_u1"
        )
        clock.now += 2
        store.add_message(conversation, role="assistant", text="Sure.", item_id="item_a1")
        assert store.message(placeholder).pending
        assert store.message(placeholder).ended_at is None
        clock.now += 1
        store.update_message(placeholder, text="Can you help?", pending=False)
        messages = store.messages(conversation)
        by_item = store.message_for_item(conversation, "item_u1")

    assert [(m.role, m.text, m.pending) for m in messages] == [
        ("user", "Can you help?", False),
        ("assistant", "Sure.", False),
    ]
    assert messages[0].started_at == 1_700_000_000.0  # when the user spoke, not when written
    assert messages[0].ended_at == 1_700_000_003.0
    assert by_item is not None and by_item.id == placeholder


def test_an_interrupted_reply_gets_its_heard_length(db_path: Path) -> None:
    with HistoryStore.open(db_path) as store:
        conversation = store.begin_conversation()
        reply = store.add_message(
            conversation, role="assistant", text="Once upon a time there was a fox."
        )
        store.update_message(
            reply,
            interrupted=True,
            heard_ms=1200,
            text="Once upon a time",
            full_text="Once upon a time there was a fox.",
        )
        store.update_message(reply, heard_ms=1180)  # the server's own figure, later
        message = store.message(reply)
    assert message.interrupted and message.heard_ms == 1180
    assert message.text == "Once upon a time"
    assert message.full_text == "Once upon a time there was a fox."


def test_figures_update_fills_in_without_erasing(db_path: Path) -> None:
    with HistoryStore.open(db_path) as store:
        conversation = store.begin_conversation()
        reply = store.add_message(
            conversation,
            role="assistant",
            text="hi",
            figures=MessageFigures(ttfb_ms=500.0, input_tokens=10, output_tokens=5),
        )
        store.update_message(reply, figures=MessageFigures(ttfa_ms=560.0, cost_usd=0.001))
        figures = store.message(reply).figures
    assert figures.ttfb_ms == 500.0 and figures.ttfa_ms == 560.0
    assert (figures.input_tokens, figures.output_tokens, figures.cost_usd) == (10, 5, 0.001)


def test_figures_from_turn_metrics() -> None:
    turn = TurnMetrics(
        index=1,
        trigger="voice",
        response_id="r1",
        anchor_at=10.0,
        response_created_at=10.1,
        first_audio_at=10.8,
        first_text_at=10.7,
        first_played_at=10.9,
        done_at=12.0,
        audio_ms=1500.0,
        usage=Usage(input_tokens=100, output_tokens=50, cached_tokens=20, output_audio_tokens=40),
        cost_usd=0.5,
    )
    figures = MessageFigures.from_turn(turn)
    assert figures.ttfb_ms == pytest.approx(800.0)
    assert figures.ttfa_ms == pytest.approx(900.0)
    assert figures.total_ms == pytest.approx(2000.0)
    assert figures.response_ms == pytest.approx(100.0)
    assert figures.audio_ms == 1500.0
    assert (figures.input_tokens, figures.cached_tokens, figures.output_audio_tokens) == (
        100,
        20,
        40,
    )
    assert figures.input_text_tokens == 0 and figures.cost_usd == 0.5
    no_usage = MessageFigures.from_turn(TurnMetrics(index=2, trigger="text"))
    assert no_usage.input_tokens is None and no_usage.ttfb_ms is None and no_usage.empty


def test_bad_role_kind_and_unknown_ids(db_path: Path) -> None:
    with HistoryStore.open(db_path) as store:
        conversation = store.begin_conversation()
        with pytest.raises(ValueError, match="role"):
            store.add_message(conversation, role="narrator", text="x")
        with pytest.raises(ValueError, match="kind"):
            store.add_message(conversation, role="user", kind="sung", text="x")
        with pytest.raises(HistoryError, match="no conversation 42"):
            store.add_message(42, role="user", text="lost")
        with pytest.raises(HistoryError, match="no line 42"):
            store.update_message(42, text="nothing here")
        with pytest.raises(HistoryError, match="no conversation 42"):
            store.conversation(42)
        assert store.messages(42) == []


def test_every_write_is_committed_when_it_returns(db_path: Path) -> None:
    """Another connection (another process, in real life) sees each line at once."""
    with HistoryStore.open(db_path) as store:
        conversation = store.begin_conversation()
        reader = sqlite3.connect(db_path)
        count = "SELECT count(*) FROM messages"
        for n in range(1, 4):
            store.add_message(conversation, role="user", text=f"line {n}")
            assert reader.execute(count).fetchone()[0] == n
        store.end_conversation(conversation, "done")
        assert reader.execute("SELECT end_reason FROM conversations").fetchone()[0] == "done"
        reader.close()


def test_ids_are_never_reused_after_delete(db_path: Path) -> None:
    with HistoryStore.open(db_path) as store:
        first = store.begin_conversation()
        store.delete_conversation(first)
        second = store.begin_conversation()
    assert second > first


# --- listing, search, delete -----------------------------------------------------------------


def test_conversations_are_listed_newest_first_with_counts(db_path: Path) -> None:
    clock = Clock()
    with HistoryStore.open(db_path, clock=clock) as store:
        ids = []
        for lines in (2, 0, 3):
            clock.now += 100
            conversation = store.begin_conversation()
            ids.append(conversation)
            for n in range(lines):
                clock.now += 1
                store.add_message(conversation, role="user", text=f"{n}")
        store.end_conversation(ids[0], "user quit")
        listed = store.conversations()
        limited = store.conversations(limit=2)
        latest = store.latest_conversation_id()
    assert [c.id for c in listed] == list(reversed(ids))
    assert [c.message_count for c in listed] == [3, 0, 2]
    assert [c.id for c in limited] == [ids[2], ids[1]]
    assert latest == ids[2]
    # A conversation that never ended lasts until its last line.
    assert listed[0].ended_at is None and listed[0].duration_s == 3
    assert listed[1].duration_s is None
    assert listed[2].end_reason == "user quit"


def test_search_ignores_case_including_non_ascii(db_path: Path) -> None:
    with HistoryStore.open(db_path) as store:
        old = store.begin_conversation(started_at=1000.0)
        store.add_message(old, role="user", text="Wie spät ist es in MÜNCHEN?")
        store.add_message(old, role="assistant", text="It is noon in Munich.")
        new = store.begin_conversation(started_at=2000.0)
        store.add_message(new, role="user", text="what about munich tomorrow")
        reply = store.add_message(new, role="assistant", text="Sunny")
        store.update_message(
            reply, interrupted=True, text="Sunny", full_text="Sunny, with rain in Munich later."
        )

        munich = store.search("MUNICH")
        umlaut = store.search("münchen")
        percent = store.search("%")
        underscore = store.search("_")
        limited = store.search("munich", limit=1)
        empty = store.search("")

    # Newest conversation first, then in order; the full text of a cut reply counts too.
    assert [(h.conversation_id, h.message.text) for h in munich] == [
        (new, "what about munich tomorrow"),
        (new, "Sunny"),
        (old, "It is noon in Munich."),
    ]
    assert [h.message.text for h in umlaut] == ["Wie spät ist es in MÜNCHEN?"]
    assert percent == [] and underscore == []  # no LIKE wildcards
    assert len(limited) == 1 and empty == []
    assert munich[0].conversation_started_at == 2000.0


def test_delete_removes_the_lines_and_their_text_from_the_file(db_path: Path) -> None:
    secret_phrase = "my locker combination is 31-07-1999"
    with HistoryStore.open(db_path) as store:
        keep = store.begin_conversation()
        store.add_message(keep, role="user", text="keep this line")
        doomed = store.begin_conversation()
        store.add_message(doomed, role="user", text=secret_phrase)
        store.add_message(doomed, role="assistant", text="noted")
        assert secret_phrase.encode() in file_bytes(db_path)
        assert store.delete_conversation(doomed) == 2
        with pytest.raises(HistoryError, match=f"no conversation {doomed}"):
            store.conversation(doomed)
        with pytest.raises(HistoryError, match=f"no conversation {doomed}"):
            store.delete_conversation(doomed)
        assert store.messages(doomed) == []
        assert [m.text for m in store.messages(keep)] == ["keep this line"]
        leftover = store._db.execute(
            "SELECT count(*) FROM messages WHERE conversation_id = ?", (doomed,)
        ).fetchone()[0]
        assert leftover == 0
        # Gone while the store is still open (the WAL would otherwise keep the old page)...
        assert secret_phrase.encode() not in file_bytes(db_path)
    # ...and after it closed.
    assert secret_phrase.encode() not in file_bytes(db_path)
    assert b"keep this line" in file_bytes(db_path)


# --- key hygiene -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "wss://api.openai.com/v1/realtime?model=gpt-realtime",
            "wss://api.openai.com/v1/realtime?model=gpt-realtime",
        ),
        (f"wss://user:{FAKE_KEY}@proxy.example:8443/rt", "wss://proxy.example:8443/rt"),
        (f"wss://{FAKE_KEY}@proxy.example/rt", "wss://proxy.example/rt"),
        (
            f"wss://x.example/rt?model=m&api-key={FAKE_KEY}&api-version=2025-04-01",
            "wss://x.example/rt?model=m&api-version=2025-04-01",
        ),
        (f"wss://x.example/rt?token={FAKE_KEY}", "wss://x.example/rt"),
        ("wss://x.example/rt?access_token=abc&sig=xyz&model=m", "wss://x.example/rt?model=m"),
        (f"wss://x.example/rt?harmless={FAKE_KEY}", "wss://x.example/rt"),
        (f"wss://x.example/rt#{FAKE_KEY}", "wss://x.example/rt"),
        ("ws://[::1]:9000/v1/realtime", "ws://[::1]:9000/v1/realtime"),
        ("not a url", None),
        ("", None),
        (None, None),
    ],
)
def test_safe_url_drops_credentials(url: str | None, expected: str | None) -> None:
    assert safe_url(url) == expected


def test_a_fake_key_never_reaches_the_database_file(db_path: Path) -> None:
    with HistoryStore.open(db_path, redact=[FAKE_KEY]) as store:
        conversation = store.begin_conversation(
            model="gpt-realtime",
            server_url=f"wss://me:{FAKE_KEY}@proxy.example/v1/realtime?api_key={FAKE_KEY}",
        )
        line = store.add_message(
            conversation, role="error", text=f"Incorrect API key provided: {FAKE_KEY}."
        )
        store.update_message(line, full_text=f"again {FAKE_KEY}")
        store.end_conversation(conversation, f"connection failed (key {FAKE_KEY})")
        stored = store.conversation(conversation)
        message = store.message(line)
    assert stored.server_url == "wss://proxy.example/v1/realtime"
    assert message.text == "Incorrect API key provided: [redacted]."
    assert stored.end_reason == "connection failed (key [redacted])"
    on_disk = file_bytes(db_path)
    assert b"proxy.example" in on_disk  # the file really holds the conversation
    assert FAKE_KEY.encode() not in on_disk
    assert FAKE_KEY[-12:].encode() not in on_disk
