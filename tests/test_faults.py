"""Fault injection: the talk engine against the local server's fault switches.

Each test runs a real session (loopback WebSocket, simulated audio device, real SQLite
history, `--record` capture) into one fault, and checks afterwards that

- the client is still running (its `run()` has not ended) and says what happened;
- the conversation goes on with its context: the server's own conversation state after the
  fault holds what was said before it (user lines, assistant lines as far as they were
  heard), and a new turn is answered;
- the history database holds every completed line, once, in order;
- the capture is readable JSON Lines with the audio elided.

Faults hit the first connection only (`Faults(connections=1)`): the reconnect finds a healthy
server. docs/faults.md tabulates the outcomes.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_speech
from tests.test_engine import Run, concat_wav
from voicecli.audio import FileBackend, NullBackend
from voicecli.config import DEFAULT_PRICES
from voicecli.engine import (
    ConnectionChanged,
    NoticeAdded,
    SessionOpener,
    TalkEngine,
    TalkSettings,
    TranscriptChanged,
    Update,
    opener_for,
)
from voicecli.history.recorder import attach
from voicecli.history.store import HistoryStore
from voicecli.reconnect import ReconnectSettings
from voicecli.server import Faults, LocalServer, ServerOptions
from voicecli.session import ConnectionSettings, RealtimeSession
from voicecli.transcript import LineKind


FAST_RECONNECT = ReconnectSettings(
    attempts=3, initial_delay_s=0.05, min_delay_s=0.05, max_delay_s=0.2, stable_after_s=5.0
)
LONG_REQUEST = "tell me a long story about the sea, the wind and the little boats"
"""Its echo reply lasts about 5 s at real-time pace."""
SHORT_REQUEST = "tell me about the sea and the wind"
"""About 3 s."""
EVENTS_OF_A_TYPED_TURN = 42
"""Server events on a fresh GA connection up to the end of the echo reply to
`remember the word pineapple` (session.created ... rate_limits.updated)."""


class Talk(Run):
    """A talk engine with history and a capture, run against `server`."""

    def __init__(
        self,
        server: LocalServer,
        tmp_path: Path,
        audio: Any = None,
        *,
        open_session: SessionOpener | None = None,
        reconnect: ReconnectSettings = FAST_RECONNECT,
        **connection: Any,
    ) -> None:
        self.server = server
        self.store = HistoryStore.open(tmp_path / "history.sqlite3")
        self.record_dir = tmp_path / "record"
        settings = TalkSettings(
            prices=DEFAULT_PRICES["gpt-realtime"],
            reconnect=reconnect,
            record_dir=self.record_dir,
        )
        opener = open_session or opener_for(ConnectionSettings(url=server.url, **connection))
        engine = TalkEngine(settings, opener, audio)
        self.recorder = attach(engine, self.store, server_url=server.url)
        super().__init__(engine)
        self.shown_twice: list[list[str]] = []
        engine.subscribe(self._check_shown_once)

    def _check_shown_once(self, update: Update) -> None:
        """Every line on screen once, at every moment (also while reconnecting)."""
        if isinstance(update, TranscriptChanged | NoticeAdded | ConnectionChanged):
            keys = [line.key for line in self.engine.transcript()]
            if len(set(keys)) != len(keys):
                self.shown_twice.append(keys)

    def reply_to(self, text: str) -> str:
        """The echo responder's words for a typed `text`."""
        return f"You said: {text}"

    def line(self, kind: LineKind, text: str) -> Any:
        return next(
            (
                line
                for line in self.engine.transcript()
                if line.kind is kind and line.text == text and not line.streaming
            ),
            None,
        )

    def idle(self) -> bool:
        """Nothing playing, no response running: a turn may start without barging in."""
        policy = self.engine.policy
        return policy.connected and not policy.playing and not policy.response_active

    async def turn(self, text: str, timeout: float = 10.0) -> None:
        """Type `text` once the previous reply has been heard out; wait for the whole reply."""
        await self.until(self.idle, timeout)
        self.engine.send_text(text)
        await self.until(lambda: self.line(LineKind.ASSISTANT, self.reply_to(text)), timeout)

    def server_view(self) -> list[tuple[str | None, str]]:
        """The latest connection's conversation as the server holds it: (role, text)."""
        core = self.server.recent_sessions[-1]
        return [
            (item.role, " ".join(part.text or part.transcript or "" for part in item.content))
            for item in core.conversation.items()
        ]

    def statuses(self) -> list[str]:
        return [update.status for update in self.of(ConnectionChanged)]

    async def finish(self) -> list[tuple[str, str, bool]]:
        """Stop; the history's user and assistant lines as (role, text, interrupted)."""
        assert not self.task.done(), "the client should still be running"
        assert not self.shown_twice, "a line was shown twice"
        self.engine.stop()
        await asyncio.wait_for(self.task, 10)
        messages = self.store.messages(self.recorder.conversation_id)  # type: ignore[arg-type]
        self.store.close()
        assert all(not m.pending for m in messages), [m for m in messages if m.pending]
        return [
            (m.role, m.text, m.interrupted) for m in messages if m.role in ("user", "assistant")
        ]

    def shown(self) -> list[tuple[str, str, bool]]:
        """The transcript's user and assistant lines as (role, text, interrupted)."""
        return [
            (str(line.kind), line.text, line.interrupted)
            for line in self.engine.transcript()
            if line.kind in (LineKind.USER, LineKind.ASSISTANT)
        ]

    def capture(self) -> list[dict[str, Any]]:
        [path] = self.record_dir.glob("*.jsonl")
        lines = path.read_text(encoding="utf-8").splitlines()
        assert all(len(line) < 64 * 1024 for line in lines), "audio or a huge event not elided"
        return [json.loads(line) for line in lines]


def reconnect_notes(talk: Talk) -> list[str]:
    return [e.note for e in talk.engine.log if e.direction == "engine" and e.type == "connection"]


def received_before_drop(talk: Talk) -> list[str]:
    """Event types received before the first reconnect (engine log order)."""
    types: list[str] = []
    for entry in talk.engine.log:
        if entry.direction == "engine" and entry.type == "connection":
            return types
        if entry.direction == "received":
            types.append(entry.type)
    raise AssertionError("no reconnect happened")


# --- dropped connections -------------------------------------------------------------------


@pytest.mark.slow
async def test_drop_mid_response(tmp_path: Path) -> None:
    faults = Faults(close_after_events=20, connections=1)
    options = ServerOptions(responder="echo", pace=1, faults=faults)
    async with LocalServer(options) as server:
        talk = Talk(server, tmp_path, NullBackend(mic="silence"))
        await talk.ready()
        talk.engine.send_text(LONG_REQUEST)
        await talk.until(lambda: talk.engine.reconnects == 1)
        await talk.turn("which story?")
        view = talk.server_view()
        shown = talk.shown()
        history = await talk.finish()

    before = received_before_drop(talk)
    assert "response.created" in before and "response.done" not in before  # mid-response
    assert "response.output_audio.delta" in before
    full_reply = talk.reply_to(LONG_REQUEST)
    [(_, heard, interrupted)] = [line for line in shown if line[0] == "assistant"][:1]
    assert interrupted and heard and full_reply.startswith(heard) and heard != full_reply
    assert shown == [
        ("user", LONG_REQUEST, False),
        ("assistant", heard, True),
        ("user", "which story?", False),
        ("assistant", "You said: which story?", False),
    ]
    # The new session was given the conversation, the reply only as far as it was heard.
    assert view == [
        ("user", LONG_REQUEST),
        ("assistant", heard),
        ("user", "which story?"),
        ("assistant", "You said: which story?"),
    ]
    assert history == shown
    assert talk.statuses() == ["connecting", "connected", "reconnecting", "connected", "closed"]
    [notice] = talk.of(NoticeAdded)
    assert notice.level == "info" and "code 1006" in notice.text
    capture = talk.capture()
    assert [c["type"] for c in capture if c["dir"] == "received"].count("session.created") == 2


@pytest.mark.slow
async def test_drop_mid_user_turn_sends_no_audio_from_the_gap(
    tmp_path: Path, speech_dir: Path
) -> None:
    question = make_speech(speech_dir, "What is the capital of France?", "capital")
    mic = concat_wav(tmp_path / "mic.wav", [4000, question, 2500])
    # The typed turn takes EVENTS_OF_A_TYPED_TURN events; the next one is speech_started.
    faults = Faults(close_after_events=EVENTS_OF_A_TYPED_TURN + 1, connections=1)
    options = ServerOptions(responder="echo", pace=0, faults=faults)
    opened: list[float] = []

    async def slow_reconnect(on_sent: Any, on_received: Any) -> RealtimeSession:
        # A reconnect that takes 0.6 s, so there is a gap of mic audio to (not) send.
        if opened:
            await asyncio.sleep(0.6)
        opened.append(time.time())
        return await RealtimeSession.open(
            ConnectionSettings(url=server.url), on_sent=on_sent, on_received=on_received
        )

    async with LocalServer(options) as server:
        audio = FileBackend(mic, realtime=True, trailing_silence_ms=0)
        talk = Talk(server, tmp_path, audio, open_session=slow_reconnect)
        await talk.turn("remember the word pineapple")
        await talk.until(lambda: talk.engine.reconnects == 1, timeout=15)
        # The rest of the question, spoken after the reconnect, is answered (and heard out).
        await talk.until(lambda: len(talk.server_view()) == 4 and talk.idle(), timeout=15)
        await talk.turn("and the word?")
        view = talk.server_view()
        history = await talk.finish()

    before = received_before_drop(talk)
    assert before[-1] == "input_audio_buffer.speech_started"  # the user was speaking
    assert len(before) == EVENTS_OF_A_TYPED_TURN + 1
    # The new session got the earlier turn as context, then the rest of the question as it
    # was spoken after the reconnect, then the new turn.
    assert view[:2] == [
        ("user", "remember the word pineapple"),
        ("assistant", "You said: remember the word pineapple"),
    ]
    assert view[2][0] == "user" and view[3][1].startswith("Echo of")
    assert view[4:] == [("user", "and the word?"), ("assistant", "You said: and the word?")]
    # No audio was sent between the drop and the new session; after it, the audio sent never
    # ran ahead of the clock (mic audio queued meanwhile would arrive as a burst).
    log = list(talk.engine.log)
    drop = next(i for i, e in enumerate(log) if e.direction == "engine" and e.type == "connection")
    resumed = next(
        i
        for i, e in enumerate(log)
        if i > drop and e.direction == "sent" and e.type == "session.update"
    )
    assert not [e for e in log[drop:resumed] if e.type == "input_audio_buffer.append"]
    appends = [e for e in log[resumed:] if e.type == "input_audio_buffer.append"]
    sent_ms = sum(int(e.data["audio"].strip("<> bytes")) for e in appends) / 48
    elapsed_ms = (appends[-1].at - opened[1]) * 1000
    assert sent_ms <= elapsed_ms + 100, (sent_ms, elapsed_ms)
    assert [line[:2] for line in history] == [
        ("user", "remember the word pineapple"),
        ("assistant", "You said: remember the word pineapple"),
        ("user", view[2][1]),
        ("assistant", view[3][1]),
        ("user", "and the word?"),
        ("assistant", "You said: and the word?"),
    ]


@pytest.mark.slow
async def test_expiry_mid_response_renews_at_once(tmp_path: Path) -> None:
    options = ServerOptions(responder="echo", pace=1, expire_after_s=4.0)
    # No renewal ahead of the limit: the reply runs into it.
    reconnect = ReconnectSettings(initial_delay_s=0.05, renew_margin_s=0.0)
    async with LocalServer(options) as server:
        talk = Talk(server, tmp_path, NullBackend(mic="silence"), reconnect=reconnect)
        await talk.ready()
        talk.engine.send_text(LONG_REQUEST)
        await talk.until(lambda: talk.engine.reconnects == 1, timeout=8)
        await talk.turn("go on")
        view = talk.server_view()
        shown = talk.shown()
        history = await talk.finish()

    errors = [e.data["error"]["code"] for e in talk.engine.log if e.type == "error" and e.data]
    assert errors == ["session_expired"]  # in the log, for the inspector
    heard = shown[1][1]
    assert shown[1][2] and talk.reply_to(LONG_REQUEST).startswith(heard)
    assert view == [
        ("user", LONG_REQUEST),
        ("assistant", heard),
        ("user", "go on"),
        ("assistant", "You said: go on"),
    ]
    # One status line, not an error.
    assert "renewing" in talk.statuses() and "failed" not in talk.statuses()
    [notice] = talk.of(NoticeAdded)
    assert notice.level == "info" and "time limit" in notice.text
    assert not [line for line in talk.engine.transcript() if line.kind is LineKind.ERROR]
    assert history == shown


@pytest.mark.slow
async def test_server_silent_for_30_s_is_noticed_by_the_keepalive(tmp_path: Path) -> None:
    faults = Faults(silent_at_event=12, silent_for_s=30.0, connections=1)
    options = ServerOptions(responder="echo", pace=1, faults=faults)
    async with LocalServer(options) as server:
        talk = Talk(
            server,
            tmp_path,
            NullBackend(mic="silence"),
            ping_interval=0.5,
            ping_timeout=0.5,
            close_timeout=0.5,
        )
        await talk.ready()
        started = time.monotonic()
        talk.engine.send_text(LONG_REQUEST)
        await talk.until(lambda: talk.engine.reconnects == 1, timeout=10)
        noticed_after = time.monotonic() - started
        await talk.turn("are you there?")
        view = talk.server_view()
        shown = talk.shown()
        history = await talk.finish()

    assert noticed_after < 5  # two missed pongs, not the 30 s of silence
    [detail] = [u.detail for u in talk.of(ConnectionChanged) if u.status == "reconnecting"]
    assert detail is not None and "keepalive ping timeout" in detail
    assert view[0] == ("user", LONG_REQUEST)
    assert view[-2:] == [("user", "are you there?"), ("assistant", "You said: are you there?")]
    assert history == shown


# --- bad frames ----------------------------------------------------------------------------


async def run_through_a_bad_frame(tmp_path: Path, faults: Faults) -> Talk:
    options = ServerOptions(responder="echo", pace=0, faults=faults)
    async with LocalServer(options) as server:
        talk = Talk(server, tmp_path, NullBackend(mic="silence", realtime=False))
        await talk.turn("remember the word pineapple")
        await talk.turn("which word?")
        talk.view = talk.server_view()  # type: ignore[attr-defined]
        talk.history = await talk.finish()  # type: ignore[attr-defined]
    # The same session all along: nothing to reconnect for.
    assert talk.engine.reconnects == 0 and server.connections_served == 1
    assert talk.view == [  # type: ignore[attr-defined]
        ("user", "remember the word pineapple"),
        ("assistant", "You said: remember the word pineapple"),
        ("user", "which word?"),
        ("assistant", "You said: which word?"),
    ]
    assert talk.history == [(role, text, False) for role, text in talk.view]  # type: ignore[attr-defined]
    return talk


async def test_a_malformed_frame_is_logged_and_skipped(tmp_path: Path) -> None:
    talk = await run_through_a_bad_frame(tmp_path, Faults(malformed_after_events=8))
    [bad] = [e for e in talk.engine.log if e.type == "protocol_error"]
    assert bad.direction == "received" and bad.note
    [captured] = [c for c in talk.capture() if c["type"] == "protocol_error"]
    assert captured["note"] == bad.note and captured["event"]["text"].startswith('{"type"')


async def test_unknown_event_types_are_logged_and_skipped(tmp_path: Path) -> None:
    talk = await run_through_a_bad_frame(
        tmp_path, Faults(oversized_after_events=8, oversized_bytes=300)
    )
    [unknown] = [e for e in talk.engine.log if e.type == "voicecli.fault.oversized"]
    assert unknown.direction == "received" and unknown.data is not None
    assert not talk.of(NoticeAdded)


async def test_a_20_mib_event_is_received_and_kept_small(tmp_path: Path) -> None:
    talk = await run_through_a_bad_frame(
        tmp_path, Faults(oversized_after_events=8, oversized_bytes=20 * 1024 * 1024)
    )
    [huge] = [e for e in talk.engine.log if e.type == "voicecli.fault.oversized"]
    assert huge.data is not None and len(json.dumps(huge.data)) < 1000  # cut for the inspector
    assert "20971" in huge.data["padding"]  # says how long it was
    [captured] = [c for c in talk.capture() if c["type"] == "voicecli.fault.oversized"]
    assert len(captured["event"]["padding"]) < 1000


# --- the audio device ----------------------------------------------------------------------


class UnpluggableBackend(NullBackend):
    """The null device, plus what the real backend does when PortAudio loses both streams."""

    def unplug(self) -> None:
        self.mic.close()
        self._report_device_lost("input device 'mic' stopped; output device 'spk' stopped")


@pytest.mark.slow
async def test_audio_device_disappears_mid_response(tmp_path: Path) -> None:
    options = ServerOptions(responder="echo", pace=1)
    audio = UnpluggableBackend(mic="silence")
    async with LocalServer(options) as server:
        talk = Talk(server, tmp_path, audio)
        await talk.ready()
        talk.engine.send_text(SHORT_REQUEST)
        await talk.until(lambda: heard_ms(talk, audio) > 300)
        audio.unplug()
        await talk.until(lambda: talk.engine.snapshot().audio_lost)
        await talk.until(lambda: talk.line(LineKind.ASSISTANT, talk.reply_to(SHORT_REQUEST)))
        await talk.turn("can you still hear me?")
        view = talk.server_view()
        shown = talk.shown()
        history = await talk.finish()

    assert talk.engine.reconnects == 0
    [notice] = talk.of(NoticeAdded)
    assert "Audio device lost" in notice.text and "typing still works" in notice.text
    assert view == [
        ("user", SHORT_REQUEST),
        ("assistant", talk.reply_to(SHORT_REQUEST)),
        ("user", "can you still hear me?"),
        ("assistant", "You said: can you still hear me?"),
    ]
    assert history == shown


def heard_ms(talk: Talk, audio: NullBackend) -> int:
    """How much of the reply now playing the user heard."""
    session = talk.engine.session
    part = session.client.last_audio_part if session else None
    return audio.played_ms(*part) if part else 0
