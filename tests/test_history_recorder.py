"""The history recorder: transcript lines become committed rows the moment they complete.

The lines come from the real pure stack (protocol events -> `Conversation` ->
`TranscriptView`), the rows from a real SQLite file; the last tests drive the real talk
engine against the local server on loopback with `attach()`.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from tests import events as server
from voicecli.audio import NullBackend
from voicecli.config import DEFAULT_PRICES
from voicecli.engine import TalkEngine, TalkSettings, TurnFinished, opener_for
from voicecli.errors import ConnectError
from voicecli.history.recorder import HistoryRecorder, attach
from voicecli.history.store import HistoryStore
from voicecli.metrics import TurnMetrics
from voicecli.protocol import events as ev
from voicecli.protocol.conversation import Conversation
from voicecli.protocol.events import Usage
from voicecli.server import Faults, LocalServer, ServerOptions
from voicecli.session import ConnectionSettings
from voicecli.transcript import TranscriptView


# --- driving the pure stack ----------------------------------------------------------------


class Talk:
    """A conversation built from server events, its view, a store and a recorder."""

    def __init__(self, tmp_path: Path, busy_timeout_s: float = 2.0) -> None:
        self.conversation = Conversation()
        self.view = TranscriptView()
        self.clock_now = 1_700_000_000.0
        self.store = HistoryStore.open(
            tmp_path / "history.sqlite3", clock=self.clock, busy_timeout_s=busy_timeout_s
        )
        self.errors: list[str] = []
        self.recorder = HistoryRecorder.start(
            self.store,
            model="gpt-realtime",
            voice="alloy",
            dialect="ga",
            server_url="ws://127.0.0.1:1/v1/realtime",
            on_error=self.errors.append,
            clock=self.clock,
        )

    def clock(self) -> float:
        return self.clock_now

    def apply(self, *events: ev.Event) -> None:
        for event in events:
            self.conversation.apply(event)
        self.clock_now += 1
        self.sync()

    def sync(self) -> None:
        self.recorder.sync(self.view.lines(self.conversation), self.conversation)

    def rows(self) -> list[tuple[str, str, str, bool]]:
        return [
            (m.role, m.kind, m.text, m.pending)
            for m in self.store.messages(self.recorder.conversation_id)
        ]

    # Event sequences as a server sends them.

    def user_speaks(self, item_id: str, previous: str | None) -> None:
        self.apply(*server.user_spoke(item_id, previous))

    def user_types(self, item_id: str, previous: str | None, text: str) -> None:
        self.apply(*server.user_typed(item_id, previous, text))

    def transcript_arrives(self, item_id: str, text: str) -> None:
        self.apply(ev.InputTranscriptCompleted(item_id=item_id, transcript=text))

    def reply_starts(self, item_id: str, previous: str, words: list[str]) -> None:
        self.apply(*server.reply_started(item_id, previous))
        for batch in server.reply_words(item_id, words, ms_per_word=500):
            self.apply(*batch)

    def reply_ends(self, item_id: str, status: str = "completed", kept: str | None = None) -> None:
        """The reply's final events; `kept` is the transcript the server kept after a
        truncation (default: all of it)."""
        transcript = self.conversation.get(item_id).parts[0].text if kept is None else kept
        self.apply(*server.reply_finished(item_id, transcript, status))


@pytest.fixture
def talk(tmp_path: Path) -> Talk:
    talk = Talk(tmp_path)
    yield talk
    talk.store.close()


def test_lines_are_written_when_they_complete_not_before(talk: Talk) -> None:
    talk.user_speaks("u1", None)
    assert talk.rows() == []  # the transcript is not there yet
    talk.transcript_arrives("u1", "Tell me a story.")
    assert talk.rows() == [("user", "voice", "Tell me a story.", False)]
    talk.reply_starts("a1", "u1", ["Once ", "upon ", "a time."])
    assert len(talk.rows()) == 1  # still streaming
    talk.reply_ends("a1")
    assert talk.rows()[1] == ("assistant", "voice", "Once upon a time.", False)
    [user, reply] = talk.store.messages(talk.recorder.conversation_id)
    assert (user.item_id, reply.item_id, reply.response_id) == ("u1", "a1", "resp-a1")
    assert user.started_at == 1_700_000_001.0  # first seen (as a pending line)
    assert user.ended_at == 1_700_000_002.0  # completed when its transcript came


def test_a_late_transcript_fills_a_placeholder_written_in_order(talk: Talk) -> None:
    talk.user_speaks("u1", None)
    talk.reply_starts("a1", "u1", ["Hello ", "there."])
    talk.reply_ends("a1")
    # The reply completed first: the user's line is kept before it, as a placeholder.
    assert talk.rows() == [
        ("user", "voice", "…", True),
        ("assistant", "voice", "Hello there.", False),
    ]
    talk.transcript_arrives("u1", "Hi!")
    assert talk.rows() == [
        ("user", "voice", "Hi!", False),
        ("assistant", "voice", "Hello there.", False),
    ]
    assert [m.seq for m in talk.store.messages(talk.recorder.conversation_id)] == [1, 2]


def test_an_interruption_updates_the_written_reply(talk: Talk) -> None:
    talk.user_speaks("u1", None)
    talk.transcript_arrives("u1", "Weather?")
    talk.reply_starts("a1", "u1", ["Sure, ", "it's ", "sunny ", "and ", "warm ", "today."])
    # Barge-in after 1500 ms of the 3000 ms received: the line stops streaming and is written.
    talk.view.heard("a1", 0, 1500)
    talk.sync()
    [_, reply] = talk.store.messages(talk.recorder.conversation_id)
    assert reply.interrupted and reply.heard_ms == 1500 and not reply.pending
    assert reply.text == "Sure, it's sunny"
    assert reply.full_text == "Sure, it's sunny and warm today."
    # The server's truncation (its own heard figure) updates the same row.
    talk.apply(ev.ItemTruncated(item_id="a1", content_index=0, audio_end_ms=1000))
    [_, reply] = talk.store.messages(talk.recorder.conversation_id)
    assert reply.heard_ms == 1000 and reply.text == "Sure, it's"
    # Then the server says what it kept of the transcript: that wins over the estimate.
    talk.reply_ends("a1", status="incomplete", kept="Sure, it")
    [_, reply] = talk.store.messages(talk.recorder.conversation_id)
    assert reply.text == "Sure, it" and reply.interrupted and reply.heard_ms == 1000
    assert len(talk.rows()) == 2


def test_turn_figures_land_on_the_reply_whenever_they_arrive(talk: Talk) -> None:
    talk.user_speaks("u1", None)
    talk.transcript_arrives("u1", "Hi")
    talk.reply_starts("a1", "u1", ["Hello."])
    turn = TurnMetrics(
        index=1,
        trigger="voice",
        response_id="resp-a1",
        anchor_at=10.0,
        first_audio_at=10.8,
        done_at=12.0,
        usage=Usage(input_tokens=100, output_tokens=40),
        cost_usd=0.002,
    )
    talk.recorder.turn_finished(turn)  # before the reply's line is written
    talk.reply_ends("a1")
    reply = talk.store.messages(talk.recorder.conversation_id)[1]
    assert reply.figures.ttfb_ms == pytest.approx(800.0)
    assert (reply.figures.input_tokens, reply.figures.cost_usd) == (100, 0.002)
    # The heard-at time arrives after response.done: finish() refreshes the figures.
    turn.first_played_at = 10.9
    talk.recorder.finish("user quit", talk.view.lines(talk.conversation), [turn])
    reply = talk.store.messages(talk.recorder.conversation_id)[1]
    assert reply.figures.ttfa_ms == pytest.approx(900.0)
    assert reply.figures.ttfb_ms == pytest.approx(800.0)
    assert talk.store.messages(talk.recorder.conversation_id)[0].figures.empty


def test_typed_messages_notices_and_errors(talk: Talk) -> None:
    talk.view.typed("hello from the keyboard")
    talk.sync()
    assert talk.rows() == []  # not confirmed by the server yet
    talk.user_types("t1", None, "hello from the keyboard")
    talk.view.notice("Reconnected.", "t1")
    talk.view.error("Server error rate_limit_exceeded: slow down.", "t1")
    talk.sync()
    assert talk.rows() == [
        ("user", "typed", "hello from the keyboard", False),
        ("notice", "system", "Reconnected.", False),
        ("error", "system", "Server error rate_limit_exceeded: slow down.", False),
    ]
    talk.sync()
    assert len(talk.rows()) == 3  # nothing written twice


def test_finish_keeps_what_was_pending_and_ends_the_conversation(talk: Talk) -> None:
    talk.user_speaks("u1", None)
    talk.reply_starts("a1", "u1", ["Half ", "a "])
    talk.view.typed("never confirmed")
    talk.recorder.finish("connection lost", talk.view.lines(talk.conversation))
    assert talk.rows() == [
        ("user", "voice", "…", True),
        ("assistant", "voice", "Half a ", True),
        ("user", "typed", "never confirmed", True),
    ]
    record = talk.store.conversation(talk.recorder.conversation_id)
    assert record.end_reason == "connection lost" and record.ended_at is not None
    talk.recorder.finish("again")  # later calls change nothing
    talk.transcript_arrives("u1", "too late")
    assert talk.store.conversation(talk.recorder.conversation_id).end_reason == "connection lost"
    assert talk.rows()[0] == ("user", "voice", "…", True)


def test_replayed_items_are_skipped(talk: Talk) -> None:
    talk.recorder.skip_items(["replayed-1"])
    talk.user_types("replayed-1", None, "from the old session")
    talk.user_speaks("u2", "replayed-1")
    talk.transcript_arrives("u2", "new words")
    assert talk.rows() == [("user", "voice", "new words", False)]


def test_a_database_failure_is_reported_once_and_recording_goes_on(talk: Talk) -> None:
    """Another process deletes the conversation mid-session: writes fail, the session does
    not; the failure is reported once, not once per line."""
    talk.user_speaks("u1", None)
    talk.transcript_arrives("u1", "first")
    talk.store.delete_conversation(talk.recorder.conversation_id)
    talk.user_speaks("u2", "u1")
    talk.transcript_arrives("u2", "second")
    talk.user_speaks("u3", "u2")
    talk.transcript_arrives("u3", "third")
    assert talk.recorder.errors >= 2  # each line is tried again at the next change
    assert len(talk.errors) == 1
    assert talk.errors[0].startswith("History not saved: there is no conversation")


def test_a_line_that_could_not_be_written_is_written_once_the_database_is_free(
    tmp_path: Path,
) -> None:
    """Another process holds the write lock past the busy timeout: the line fails, is
    reported, and is written (in its place) at the next change once the lock is gone."""
    talk = Talk(tmp_path, busy_timeout_s=0.05)
    talk.user_speaks("u1", None)
    blocker = sqlite3.connect(talk.store.path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    talk.transcript_arrives("u1", "first")
    assert talk.errors and "locked" in talk.errors[0]
    blocker.execute("ROLLBACK")
    blocker.close()
    talk.user_speaks("u2", "u1")
    talk.transcript_arrives("u2", "second")
    assert talk.rows() == [("user", "voice", "first", False), ("user", "voice", "second", False)]
    assert len(talk.errors) == 1
    talk.store.close()


def test_text_only_replies_are_kind_text(talk: Talk) -> None:
    talk.apply(
        ev.OutputItemAdded(
            response_id="r1",
            item=ev.Item(id="a1", type="message", role="assistant", status="in_progress"),
        ),
        ev.TextDelta(response_id="r1", item_id="a1", delta="Just text."),
        ev.TextDone(response_id="r1", item_id="a1", text="Just text."),
        ev.OutputItemDone(
            response_id="r1",
            item=ev.Item(
                id="a1",
                type="message",
                role="assistant",
                status="completed",
                content=(ev.ContentPart(type="output_text", text="Just text."),),
            ),
        ),
    )
    assert talk.rows() == [("assistant", "text", "Just text.", False)]


# --- with the real talk engine ---------------------------------------------------------------


async def test_attach_records_a_real_session(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        url = server.url
        settings = TalkSettings(prices=DEFAULT_PRICES["gpt-realtime"])
        engine = TalkEngine(
            settings,
            opener_for(ConnectionSettings(url=server.url)),
            NullBackend(mic="none", realtime=False),
        )
        store = HistoryStore.open(path)
        recorder = attach(engine, store, model="gpt-realtime", dialect="ga", server_url=server.url)
        turns: list[TurnMetrics] = []
        engine.subscribe(lambda u: turns.append(u.metrics) if isinstance(u, TurnFinished) else None)
        task = asyncio.create_task(engine.run())
        await wait_for(lambda: engine.policy.connected)
        # A second process reading the file sees each line as soon as it completes.
        reader = HistoryStore.open(path, create=False)
        engine.send_text("hello there")
        await wait_for(lambda: len(turns) == 1)
        await wait_for(lambda: len(reader.messages(recorder.conversation_id)) == 2)
        engine.send_text("second line")
        await wait_for(lambda: len(turns) == 2)
        await wait_for(lambda: len(reader.messages(recorder.conversation_id)) == 4)
        recorder.end_reason = "user quit"
        engine.stop()
        await asyncio.wait_for(task, 10)
        reader.close()

    conversation = store.conversation(recorder.conversation_id)
    messages = store.messages(recorder.conversation_id)
    store.close()
    assert conversation.end_reason == "user quit" and conversation.ended_at is not None
    assert conversation.model == "gpt-realtime" and conversation.dialect == "ga"
    assert conversation.server_url == url
    assert [(m.role, m.kind, m.text) for m in messages] == [
        ("user", "typed", "hello there"),
        ("assistant", "voice", "You said: hello there"),
        ("user", "typed", "second line"),
        ("assistant", "voice", "You said: second line"),
    ]
    for message, turn in zip(messages[1::2], turns, strict=True):
        assert message.response_id == turn.response_id
        assert message.figures.input_tokens == turn.usage.input_tokens
        assert message.figures.cost_usd == pytest.approx(turn.cost_usd)
        assert message.figures.total_ms == pytest.approx(turn.total_ms)


async def test_attach_ends_the_conversation_with_the_connection_error(tmp_path: Path) -> None:
    options = ServerOptions(responder="echo", pace=0, faults=Faults(close_after_events=4))
    async with LocalServer(options) as server:
        engine = TalkEngine(
            TalkSettings(text_only=True), opener_for(ConnectionSettings(url=server.url))
        )
        with HistoryStore.open(tmp_path / "h.sqlite3") as store:
            recorder = attach(engine, store, server_url=server.url)
            task = asyncio.create_task(engine.run())
            await wait_for(lambda: engine.policy.connected)
            engine.send_text("hello")
            with pytest.raises(ConnectError) as caught:
                await asyncio.wait_for(task, 10)
            conversation = store.conversation(recorder.conversation_id)
    assert conversation.end_reason == str(caught.value)
    assert "1006" in (conversation.end_reason or "")


async def wait_for(predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {predicate}")
        await asyncio.sleep(0.01)


async def test_a_fake_key_never_reaches_the_history_file(tmp_path: Path) -> None:
    """The key authenticates the session and sits in the URL the user configured; then the
    user types it, the session refuses to send it and ends, and the recorder keeps the
    unsent line: the database file and its WAL never hold the key."""
    fake_key = "sk-proj-HISTORYhygieneFAKEKEY0123456789abcdef"
    path = tmp_path / "history.sqlite3"
    options = ServerOptions(responder="echo", pace=0, auth="key", api_key=fake_key)
    async with LocalServer(options) as server:
        url = server.url
        configured = server.url.replace("ws://", f"ws://me:{fake_key}@") + f"?api_key={fake_key}"
        engine = TalkEngine(
            TalkSettings(text_only=True),
            opener_for(ConnectionSettings(url=server.url, api_key=fake_key)),
        )
        store = HistoryStore.open(path, redact=[fake_key])
        recorder = attach(engine, store, server_url=configured)
        task = asyncio.create_task(engine.run())
        await wait_for(lambda: engine.policy.connected)
        engine.send_text("hello")
        await wait_for(lambda: len(store.messages(recorder.conversation_id)) == 2)
        on_disk_while_running = b"".join(
            p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("history")
        )
        engine.send_text(f"my key is {fake_key}")
        with pytest.raises(ConnectError, match="contains the API key"):
            await asyncio.wait_for(task, 10)
    messages = store.messages(recorder.conversation_id)
    conversation = store.conversation(recorder.conversation_id)
    store.close()

    assert [(m.text, m.pending) for m in messages] == [
        ("hello", False),
        ("You said: hello", False),
        ("my key is [redacted]", True),  # typed, never confirmed by the server
    ]
    assert conversation.server_url == url
    assert conversation.end_reason is not None and "API key" in conversation.end_reason
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"You said: hello" in on_disk_while_running
    assert b"my key is [redacted]" in on_disk
    for data in (on_disk_while_running, on_disk):
        assert fake_key.encode() not in data and fake_key[-16:].encode() not in data


async def test_a_session_that_never_connected_leaves_no_conversation(tmp_path: Path) -> None:
    async with LocalServer(ServerOptions()) as server:
        url = server.url  # the server is gone once the block ends: connection refused
    engine = TalkEngine(TalkSettings(text_only=True), opener_for(ConnectionSettings(url=url)))
    with HistoryStore.open(tmp_path / "h.sqlite3") as store:
        recorder = attach(engine, store, server_url=url)
        with pytest.raises(ConnectError):
            await engine.run()
        assert recorder.finished and recorder.conversation_id is None
        assert store.conversations() == []


def test_a_lazy_recorder_begins_with_what_it_was_told(tmp_path: Path) -> None:
    with HistoryStore.open(tmp_path / "h.sqlite3") as store:
        recorder = HistoryRecorder(store, about={"model": "gpt-realtime", "voice": "alloy"})
        recorder.update_conversation(model="gpt-realtime-2025-08-28", dialect="ga")
        assert store.conversations() == []
        conversation_id = recorder.begin()
        assert conversation_id is not None and recorder.begin() == conversation_id
        recorder.update_conversation(voice="marin", dialect="ga")
        record = store.conversation(conversation_id)
        assert (record.model, record.voice, record.dialect) == (
            "gpt-realtime-2025-08-28",
            "marin",
            "ga",
        )
        recorder.finish("user quit")
        assert store.conversation(conversation_id).end_reason == "user quit"
