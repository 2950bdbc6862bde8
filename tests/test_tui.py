"""The talk app driven by Textual's Pilot against the real local server on loopback, with the
file and null audio backends.

Each test runs `TalkApp` headless, presses keys and clicks like a user, and checks two things:
what the screen shows (the widgets' text) and what went over the wire (the engine's event log,
which holds every frame the client sent and every event it received).
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.pilot import Pilot

from tests.conftest import make_speech
from voicecli.audio import FileBackend, NullBackend
from voicecli.config import DEFAULT_PRICES
from voicecli.engine import TalkSettings, opener_for
from voicecli.errors import ConnectError
from voicecli.reconnect import ReconnectSettings
from voicecli.server import Faults, LocalServer, ServerOptions
from voicecli.session import ConnectionSettings
from voicecli.transcript import LineKind
from voicecli.tui.app import TalkApp
from voicecli.tui.help import HelpScreen
from voicecli.tui.keys import KEYS
from voicecli.tui.setup import TalkSetup
from voicecli.turns import Mode, TurnSettings


SIZE = (120, 40)


# --- helpers -------------------------------------------------------------------------------


def setup_for(
    server: LocalServer,
    audio: Callable[[], Any] | None = None,
    *,
    ptt_style: str = "toggle",
    **settings: Any,
) -> TalkSetup:
    settings.setdefault("prices", DEFAULT_PRICES["gpt-realtime"])
    return TalkSetup(
        settings=TalkSettings(**settings),
        server_label="local demo server",
        open_session=opener_for(ConnectionSettings(url=server.url)),
        make_audio=audio or (lambda: None),
        ptt_style=ptt_style,
    )


class Screen:
    """The running app seen like a user sees it, plus the wire log for the protocol checks."""

    def __init__(self, app: TalkApp, pilot: Pilot) -> None:
        self.app = app
        self.pilot = pilot

    def text(self, selector: str) -> str:
        return self.app.query_one(selector).text  # type: ignore[attr-defined]

    @property
    def state(self) -> str:
        return self.text("#state")

    @property
    def status(self) -> str:
        return self.text("#status")

    def lines(self) -> list[tuple[LineKind, str]]:
        return [(line.kind, line.text) for line in self.app.query_one("#conversation").lines]

    def line_texts(self) -> list[str]:
        """The conversation as rendered on screen, one string per transcript line."""
        return self.app.query_one("#conversation").texts

    def sent(self, kind: str) -> list[dict[str, Any]]:
        log = self.app.engine.log
        return [e.data for e in log if e.direction == "sent" and e.type == kind]

    def received(self, kind: str) -> list[dict[str, Any]]:
        log = self.app.engine.log
        return [e.data for e in log if e.direction == "received" and e.type == kind]

    def wire_order(self) -> list[str]:
        noise = {"input_audio_buffer.append", "response.output_audio.delta"}
        log = self.app.engine.log
        return [f"{e.direction}:{e.type}" for e in log if e.type not in noise]

    async def until(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if self.app.fatal_error is not None:
                raise self.app.fatal_error
            if loop.time() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {predicate}")
            await self.pilot.pause(0.02)

    async def connected(self) -> None:
        await self.until(lambda: self.app.engine and self.app.engine.policy.connected)
        await self.until(lambda: "● connected" in self.status)

    def watch_states(self) -> list[str]:
        """Start recording every distinct state the indicator shows (sampled at 100 Hz)."""
        seen: list[str] = []

        async def sample() -> None:
            while True:
                word = self.state.split("  ")[0].strip()
                if not seen or seen[-1] != word:
                    seen.append(word)
                await asyncio.sleep(0.01)

        self._sampler = asyncio.create_task(sample())
        return seen


@asynccontextmanager
async def running(setup: TalkSetup) -> AsyncIterator[Screen]:
    app = TalkApp(setup)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        screen = Screen(app, pilot)
        yield screen
        sampler = getattr(screen, "_sampler", None)
        if sampler is not None:
            sampler.cancel()
        if app.is_running:
            await pilot.press("ctrl+q")  # quits from anywhere, the text box included
            await screen.until(lambda: not app.is_running or app._exit, timeout=10)


def concat_wav(path: Path, pieces: list[Path | int]) -> Path:
    """A 24 kHz mono WAV of WAV files and silences (ints, in ms), one after the other."""
    frames = b""
    for piece in pieces:
        if isinstance(piece, int):
            frames += bytes(piece * 48)
        else:
            with wave.open(str(piece), "rb") as source:
                frames += source.readframes(source.getnframes())
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(24000)
        out.writeframes(frames)
    return path


# --- turns ---------------------------------------------------------------------------------


async def test_text_turn_typed_in_the_text_box_while_in_push_to_talk_mode() -> None:
    # Push-to-talk mode on purpose: the spaces typed into the text box must stay text.
    audio = NullBackend(mic="silence", realtime=True)
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        async with running(setup_for(server, lambda: audio, mode=Mode.PTT)) as screen:
            await screen.connected()
            await screen.pilot.press("enter")  # from the conversation to the text box
            await screen.pilot.press(*"hello there friend", "enter")
            await screen.until(lambda: "turn 1 (text)" in screen.text("#turn"))
            await screen.until(lambda: "You said" in " ".join(screen.line_texts()))
            assert screen.app.focused.id == "message"
            assert screen.app.query_one("#message").value == ""
            await screen.pilot.press("escape")
            assert screen.app.focused.id == "conversation"
            lines = screen.lines()
            rendered = screen.line_texts()
            turn_line = screen.text("#turn")
            recording = screen.app.engine.snapshot().recording
            sent_clear = screen.sent("input_audio_buffer.clear")
            [create] = screen.sent("conversation.item.create")

    assert lines == [
        (LineKind.USER, "hello there friend"),
        (LineKind.ASSISTANT, "You said: hello there friend"),
    ]
    assert rendered == [
        "You (typed): hello there friend",
        "Assistant: You said: hello there friend",
    ]
    assert create["item"]["content"] == [{"type": "input_text", "text": "hello there friend"}]
    assert not recording and sent_clear == []  # no space reached push-to-talk
    assert "tokens" in turn_line and "$" in turn_line and "first audio" in turn_line


@pytest.mark.slow
async def test_vad_voice_turn_shows_the_states_and_both_lines(speech_wav: Path) -> None:
    audio = FileBackend(speech_wav, realtime=True, trailing_silence_ms=None)
    async with LocalServer(ServerOptions(responder="echo", pace=1.0)) as server:
        async with running(setup_for(server, lambda: audio)) as screen:
            states = screen.watch_states()
            await screen.until(lambda: "turn 1 (voice)" in screen.text("#turn"), timeout=15)
            await screen.until(lambda: "LISTENING" in screen.state)
            await screen.until(lambda: not screen.app.engine.transcript()[1].pending)
            await screen.until(lambda: states and states[-1] == "◉ LISTENING")  # sampled too
            rendered = screen.line_texts()
            status = screen.status
            order = screen.wire_order()

    assert states[0] in ("◌ connecting…", "◉ LISTENING")
    spoken = [s for s in states if s != "◌ connecting…"]
    for expected in ("◉ LISTENING", "● YOU ARE SPEAKING", "♪ ASSISTANT SPEAKING"):
        assert expected in spoken
    assert spoken.index("● YOU ARE SPEAKING") < spoken.index("♪ ASSISTANT SPEAKING")
    assert spoken.index("♪ ASSISTANT SPEAKING") < len(spoken) - 1  # ...and back to listening
    assert rendered[0].startswith("You: [") and rendered[0].endswith("s of audio]")
    assert rendered[1].startswith("Assistant: Echo of ")
    assert "sent:response.create" not in order  # server VAD answers by itself
    assert "● connected" in status and "vad" in status and "local demo server" in status


async def test_push_to_talk_turn_with_space(speech_wav: Path) -> None:
    audio = FileBackend(speech_wav, realtime=True, trailing_silence_ms=None)
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        async with running(setup_for(server, lambda: audio, mode=Mode.PTT)) as screen:
            await screen.connected()
            assert "IDLE" in screen.state and "space to talk" in screen.state
            assert screen.app.query_one("#ptt").display  # the mouse button shows in ptt mode
            await screen.pilot.press("space")
            await screen.until(lambda: "REC" in screen.state)
            assert "space to send" in screen.state
            await screen.pilot.pause(1.2)
            await screen.pilot.press("space")
            await screen.until(lambda: "turn 1 (ptt)" in screen.text("#turn"))
            await screen.until(lambda: len(screen.line_texts()) == 2)
            rendered = screen.line_texts()
            order = screen.wire_order()

    clear = order.index("sent:input_audio_buffer.clear")
    commit = order.index("sent:input_audio_buffer.commit")
    assert clear < commit < order.index("sent:response.create")
    assert "received:input_audio_buffer.speech_started" not in order
    assert rendered[0].startswith("You: [")
    assert rendered[1].startswith("Assistant: Echo of ")


def key_from_terminal(app: TalkApp, key: str, char: str) -> None:
    """A key event as the terminal driver delivers it. Not `Pilot.press`: that waits for the
    app to go idle after each key, which it never does while push-to-talk is held (the engine
    ticks every 20 ms), so held-key repeats would arrive seconds apart."""
    event = events.Key(key, char)
    event.set_sender(app)
    assert app._driver is not None
    app._driver.send_message(event)


@pytest.mark.slow
async def test_hold_to_talk_by_key_repeat_and_with_the_mouse_button() -> None:
    audio = NullBackend(mic="silence", realtime=True)
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        # Generous gaps still count as held: a loaded test machine runs the loop less evenly
        # than a keyboard repeats (the real thresholds, 0.7 s and 0.15 s, are tested in
        # test_turns.py).
        turn = TurnSettings(hold_first_gap_s=1.5, hold_repeat_gap_s=0.6)
        setup = setup_for(server, lambda: audio, mode=Mode.PTT, ptt_style="hold", turn=turn)
        async with running(setup) as screen:
            await screen.connected()
            assert "hold space to talk" in screen.state
            # A held key: one press, the OS repeat delay, then repeats every 33 ms.
            key_from_terminal(screen.app, "space", " ")
            await asyncio.sleep(0.3)
            for _ in range(10):
                key_from_terminal(screen.app, "space", " ")
                await asyncio.sleep(0.033)
            assert screen.app.engine.snapshot().recording
            await screen.until(lambda: "REC" in screen.state)
            assert "let go of space" in screen.state
            assert screen.sent("input_audio_buffer.commit") == []
            # The repeats stop: the key was released, the turn is sent.
            await screen.until(lambda: screen.sent("input_audio_buffer.commit"), timeout=2)
            await screen.until(lambda: "turn 1 (ptt)" in screen.text("#turn"))
            keys_commits = len(screen.sent("input_audio_buffer.commit"))
            # The on-screen button held with the mouse: a true press and release.
            await screen.pilot.mouse_down("#ptt")
            await screen.until(lambda: "REC" in screen.state)
            assert "release the button to send" in screen.state
            assert screen.app.query_one("#ptt").has_class("held")
            await screen.pilot.pause(0.5)
            await screen.pilot.mouse_up("#ptt")
            await screen.until(lambda: "turn 2 (ptt)" in screen.text("#turn"))
            commits = len(screen.sent("input_audio_buffer.commit"))

    assert keys_commits == 1 and commits == 2


@pytest.mark.slow
async def test_barge_in_truncates_at_the_heard_position(speech_dir: Path, speech_wav: Path) -> None:
    # The user asks, the (real-time) reply plays, the user talks over it.
    interruption = make_speech(speech_dir, "Stop, stop.", "stop")
    mic = concat_wav(speech_dir / "tui-barge.wav", [speech_wav, 700, interruption])
    audio = FileBackend(mic, realtime=True, trailing_silence_ms=None)
    async with LocalServer(ServerOptions(responder="echo", pace=0.25)) as server:
        async with running(setup_for(server, lambda: audio)) as screen:
            await screen.pilot.press("i")  # the inspector shows the truncate as it goes out
            await screen.until(lambda: screen.received("conversation.item.truncated"), timeout=15)
            [truncate] = screen.sent("conversation.item.truncate")
            item_id = truncate["item_id"]
            heard = audio.played_ms(item_id, 0)
            received_ms = screen.app.engine.conversation.audio_ms(item_id, 0)
            await screen.until(lambda: "interrupted" in " ".join(screen.line_texts()))
            await screen.pilot.pause(0.2)
            inspector = screen.text("#inspector")
            reply = next(t for t in screen.line_texts() if t.startswith("Assistant:"))

    end_ms = truncate["audio_end_ms"]
    assert 300 < end_ms < received_ms - 300
    assert end_ms == heard  # exactly what the audio engine says was heard
    assert f'"audio_end_ms":{end_ms}' in inspector
    assert "→ conversation.item.truncate" in inspector
    assert "→ input_audio_buffer.append ×" in inspector  # the mic stream, grouped
    assert f"interrupted after {end_ms / 1000:.1f} s" in reply


async def test_late_user_transcript_is_placed_on_its_item(speech_wav: Path) -> None:
    audio = FileBackend(speech_wav, realtime=False, trailing_silence_ms=1500)
    options = ServerOptions(responder="echo", pace=0, late_transcript=True)
    async with LocalServer(options) as server:
        async with running(setup_for(server, lambda: audio)) as screen:
            await screen.until(
                lambda: screen.received("conversation.item.input_audio_transcription.completed")
            )
            await screen.until(lambda: "turn 1" in screen.text("#turn"))
            await screen.until(lambda: "of audio]" in " ".join(screen.line_texts()))
            rendered = screen.line_texts()
            order = screen.wire_order()
            committed = screen.received("input_audio_buffer.committed")[0]["item_id"]
            first_line = screen.app.query_one("#conversation").lines[0]

    first_delta = order.index("received:conversation.item.input_audio_transcription.delta")
    assert order.index("received:response.output_audio_transcript.delta") < first_delta
    assert rendered[0].startswith("You: [") and rendered[0].endswith("s of audio]")
    assert rendered[1].startswith("Assistant: Echo of ")
    assert first_line.item_id == committed


async def test_switching_mode_mid_session() -> None:
    audio = NullBackend(mic="silence", realtime=True)
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        async with running(setup_for(server, lambda: audio)) as screen:
            await screen.connected()
            client = screen.app.engine.session.client
            assert "│ vad │" in screen.status
            await screen.pilot.press("v")
            await screen.until(lambda: "│ semantic (auto) │" in screen.status)
            await screen.until(lambda: client.session.turn_detection.type == "semantic_vad")
            await screen.pilot.press("v")
            await screen.until(lambda: "│ ptt │" in screen.status)
            await screen.until(lambda: client.session.turn_detection is None)
            assert "IDLE" in screen.state and screen.app.query_one("#ptt").display
            await screen.pilot.press("v")
            await screen.until(lambda: "│ vad │" in screen.status)
            await screen.until(lambda: client.session.turn_detection is not None)
            assert "LISTENING" in screen.state and not screen.app.query_one("#ptt").display
            updates = screen.sent("session.update")

    detections = [u["session"]["audio"]["input"]["turn_detection"] for u in updates]
    assert [d["type"] if d else None for d in detections] == [
        "server_vad",
        "semantic_vad",
        None,
        "server_vad",
    ]


async def test_mute_key_silences_the_mic() -> None:
    audio = NullBackend(mic="silence", realtime=True)
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        async with running(setup_for(server, lambda: audio)) as screen:
            await screen.connected()
            await screen.pilot.press("m")
            await screen.until(lambda: "MUTED" in screen.state)
            assert "m to unmute" in screen.state and "muted" in screen.text("#meters")
            await screen.pilot.press("m")
            await screen.until(lambda: "LISTENING" in screen.state)


# --- errors --------------------------------------------------------------------------------


async def test_server_error_is_a_notification_with_its_code() -> None:
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        # An invalid voice: the server refuses the session.update with `invalid_value`.
        async with running(setup_for(server, voice="nope", text_only=True)) as screen:
            await screen.until(lambda: screen.received("error"))
            await screen.until(lambda: screen.app.query("Toast"))
            toasts = [str(toast.render()) for toast in screen.app.query("Toast")]
            await screen.until(lambda: any("✖" in t for t in screen.line_texts()))
            rendered = screen.line_texts()
            app = screen.app

    assert any("Server error invalid_value" in toast and "'nope'" in toast for toast in toasts)
    [error_line] = [t for t in rendered if t.startswith("✖")]
    assert "invalid_value" in error_line
    assert app.is_running is False and app.fatal_error is None  # the session went on


async def test_dropped_connection_is_shown_and_reported_on_quitting() -> None:
    # The server drops TCP after 12 events, in the middle of the first reply; this engine is
    # not asked to reconnect.
    options = ServerOptions(responder="echo", pace=0, faults=Faults(close_after_events=12))
    async with LocalServer(options) as server:
        async with running(setup_for(server, text_only=True)) as screen:
            await screen.connected()
            await screen.pilot.press(*"tell me more", "enter")  # text only: the box has focus
            await screen.until(lambda: "● failed" in screen.status)
            await screen.until(lambda: any("Connection lost" in t for t in screen.line_texts()))
            await screen.until(lambda: screen.app.query("Toast"))
            rendered = screen.line_texts()
            toasts = [str(toast.render()) for toast in screen.app.query("Toast")]
            assert screen.app.is_running and screen.app.fatal_error is None  # still readable
            await screen.pilot.press("ctrl+q")
            await screen.until(lambda: not screen.app.is_running or screen.app._exit)
            app = screen.app

    assert rendered[0] == "You (typed): tell me more"
    [lost] = [t for t in rendered if "Connection lost" in t]
    assert lost.startswith("✖ Connection lost: ") and "1006" in lost
    assert any("Connection lost" in toast for toast in toasts)
    assert isinstance(app.fatal_error, ConnectError) and "1006" in str(app.fatal_error)
    assert app.return_code == 2


async def test_dropped_connection_with_reconnect_shows_reconnecting_then_goes_on() -> None:
    options = ServerOptions(responder="echo", pace=0, faults=Faults(close_after_events=12))
    reconnect = ReconnectSettings(attempts=3, initial_delay_s=0.3, min_delay_s=0.3)
    async with LocalServer(options) as server:
        setup = setup_for(server, text_only=True, reconnect=reconnect)
        async with running(setup) as screen:
            await screen.connected()
            await screen.pilot.press(*"tell me more", "enter")
            # The status line says "reconnecting (attempt 1 of 3 in 0.1 s)" for as long as
            # that lasts (here maybe a single frame); the notification stays up for seconds.
            await screen.until(lambda: screen.app.query("Toast"))
            toasts = [str(toast.render()) for toast in screen.app.query("Toast")]
            await screen.until(lambda: "● connected" in screen.status)
            await screen.until(lambda: any("Reconnected" in t for t in screen.line_texts()))
            rendered = screen.line_texts()
            fatal = screen.app.fatal_error

    assert fatal is None
    assert rendered[0] == "You (typed): tell me more"
    assert any(toast.startswith("Reconnecting: attempt 1 of 3") for toast in toasts), toasts
    assert any("1006" in toast for toast in toasts)
    assert rendered[-1].startswith("· Reconnected after the connection closed (code 1006)")


async def test_a_session_that_never_opens_ends_the_app_with_the_typed_error() -> None:
    async with LocalServer(ServerOptions()) as server:
        url = server.url  # closed again: nothing listens there now
    setup = TalkSetup(
        settings=TalkSettings(text_only=True),
        server_label=url,
        open_session=opener_for(ConnectionSettings(url=url)),
    )
    app = TalkApp(setup)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(200):
            if app.fatal_error is not None:
                break
            await pilot.pause(0.02)
    assert isinstance(app.fatal_error, ConnectError)
    assert "refused" in str(app.fatal_error) and "\n" not in str(app.fatal_error)
    assert app.return_code == 2


# --- screens -------------------------------------------------------------------------------


async def test_help_screen_lists_every_key() -> None:
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        async with running(setup_for(server, text_only=True)) as screen:
            await screen.connected()
            assert screen.app.focused.id == "message"  # text only: the text box has focus
            await screen.pilot.press("f1")  # works from the text box too (? would be typed)
            await screen.until(lambda: isinstance(screen.app.screen, HelpScreen))
            help_text = screen.app.screen.query_one("#help-keys").content
            await screen.pilot.press("escape")
            await screen.until(lambda: not isinstance(screen.app.screen, HelpScreen))
            await screen.pilot.press("escape", "question_mark")  # leave the box: ? works
            await screen.until(lambda: isinstance(screen.app.screen, HelpScreen))
            await screen.pilot.press("q")  # closes the help, does not quit
            await screen.until(lambda: not isinstance(screen.app.screen, HelpScreen))
            assert screen.app.is_running

    from rich.console import Console

    console = Console(width=100, record=True)
    console.print(help_text)
    shown = " ".join(console.export_text().split())
    for key in KEYS:
        assert " ".join(key.label.split()) in shown
        assert " ".join(key.description.split()) in shown
    assert "Hold to talk" in shown


async def test_a_bug_ends_the_app_with_one_line_and_a_crash_log(tmp_path: Path) -> None:
    crash_log = tmp_path / "state" / "talk-crash.log"
    audio = NullBackend(mic="silence", realtime=True)
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        app = TalkApp(setup_for(server, lambda: audio), crash_log=crash_log)
        async with app.run_test(size=SIZE) as pilot:
            screen = Screen(app, pilot)
            await screen.connected()

            def broken() -> None:
                raise RuntimeError("a bug in a key handler")

            app.engine.toggle_mute = broken  # type: ignore[method-assign]
            # Posted rather than pressed: Pilot's press waits for a screen that is going away.
            app.post_message(events.Key("m", "m"))
            for _ in range(200):
                if not app.is_running:
                    break
                await asyncio.sleep(0.02)

    assert app.return_code == 1
    message = str(app.fatal_error)
    assert message.startswith("internal error: RuntimeError('a bug in a key handler')")
    assert str(crash_log) in message and "\n" not in message
    assert "Traceback" in crash_log.read_text() and "broken" in crash_log.read_text()
