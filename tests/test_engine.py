"""The talk engine against the real local server on loopback, with the file and null backends.

Each test runs `TalkEngine.run()` as a task, drives it like the TUI would (user actions,
subscribed updates) and checks what went over the wire (the engine's event log holds every
frame sent and every event received) and what the user would see (transcript, snapshot).
"""

from __future__ import annotations

import asyncio
import wave
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_speech
from voicecli.audio import FileBackend, NullBackend
from voicecli.config import DEFAULT_PRICES, load_config
from voicecli.echo import EchoMode, EchoSettings
from voicecli.engine import (
    ConnectionChanged,
    Ended,
    NoticeAdded,
    StateChanged,
    TalkEngine,
    TalkSettings,
    TurnFinished,
    Update,
    opener_for,
)
from voicecli.errors import AudioError, ConnectError
from voicecli.server import Faults, LocalServer, ServerOptions
from voicecli.session import ConnectionSettings
from voicecli.transcript import LineKind
from voicecli.turns import Mode, State


# --- helpers -------------------------------------------------------------------------------


class Run:
    """An engine running against a server, with the updates it published."""

    def __init__(self, engine: TalkEngine) -> None:
        self.engine = engine
        self.updates: list[Update] = []
        engine.subscribe(self.updates.append)
        self.task = asyncio.create_task(engine.run())

    async def until(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Poll `predicate` until it is truthy; fail early if the engine died."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if self.task.done():
                self.task.result()  # raises what ended the engine
                pytest.fail("the engine stopped before the condition was met")
            if loop.time() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {predicate}")
            await asyncio.sleep(0.01)

    async def ready(self) -> None:
        await self.until(lambda: self.engine.policy.connected)

    async def stop(self) -> None:
        self.engine.stop()
        await asyncio.wait_for(self.task, 10)

    def of(self, kind: type) -> list[Any]:
        return [update for update in self.updates if isinstance(update, kind)]

    def turns(self) -> list[Any]:
        return [update.metrics for update in self.of(TurnFinished)]

    def sent(self, kind: str) -> list[dict[str, Any]]:
        return [e.data for e in self.engine.log if e.direction == "sent" and e.type == kind]

    def received(self, kind: str) -> list[dict[str, Any]]:
        return [e.data for e in self.engine.log if e.direction == "received" and e.type == kind]

    def wire_order(self) -> list[str]:
        """Types of everything sent and received, in order, without the audio stream."""
        noise = {"input_audio_buffer.append", "response.output_audio.delta"}
        return [f"{e.direction}:{e.type}" for e in self.engine.log if e.type not in noise]


def engine_for(server: LocalServer, audio: Any = None, **settings: Any) -> TalkEngine:
    settings.setdefault("prices", DEFAULT_PRICES["gpt-realtime"])
    return TalkEngine(
        TalkSettings(**settings), opener_for(ConnectionSettings(url=server.url)), audio
    )


def turn_detection_sent(update: dict[str, Any]) -> Any:
    return update["session"]["audio"]["input"]["turn_detection"]


def concat_wav(path: Path, pieces: list[Path | int]) -> Path:
    """A 24 kHz mono WAV of WAV files and silences (ints, in ms), one after the other."""
    frames = b""
    for piece in pieces:
        if isinstance(piece, int):
            frames += bytes(piece * 48)
        else:
            with wave.open(str(piece), "rb") as source:
                assert source.getframerate() == 24000 and source.getnchannels() == 1
                frames += source.readframes(source.getnframes())
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(24000)
        out.writeframes(frames)
    return path


# --- settings ------------------------------------------------------------------------------


def test_settings_from_config(tmp_path: Path) -> None:
    config = load_config(
        {
            "session.mode": "semantic",
            "session.eagerness": "high",
            "session.voice": "marin",
            "session.instructions": "Be brief.",
            "audio.echo_guard": "half-duplex",
            "connection.model": "gpt-realtime-2025-08-28",
        },
        env={"HOME": str(tmp_path)},
        dotenv_path=None,
    )
    settings = TalkSettings.from_config(config)
    assert settings.mode is Mode.SEMANTIC and settings.turn.eagerness == "high"
    assert settings.echo.mode is EchoMode.HALF_DUPLEX
    assert settings.prices == DEFAULT_PRICES["gpt-realtime"]  # dated snapshot of the family
    first = settings.session_config(TalkEngine(settings, opener_for(ConnectionSettings())).policy)
    assert first.voice == "marin" and first.instructions == "Be brief."
    assert first.output_modalities == ("audio",)
    assert first.transcription.model == config.session.transcription_model
    assert first.turn_detection.type == "semantic_vad" and first.turn_detection.eagerness == "high"
    vad = TalkSettings.from_config(load_config({}, env={"HOME": str(tmp_path)}, dotenv_path=None))
    assert vad.turn.vad_silence_duration_ms == config.session.silence_duration_ms
    assert TalkSettings.from_config(config, text_only=True).text_only


# --- turns ---------------------------------------------------------------------------------


async def test_text_turn() -> None:
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        run = Run(engine_for(server, NullBackend(mic="none", realtime=False)))
        await run.ready()
        run.engine.send_text("hello there")
        [turn] = await run.until(run.turns)
        await run.until(lambda: run.engine.snapshot().state is State.LISTENING)
        lines = run.engine.transcript()
        await run.stop()

    assert [(line.kind, line.text, line.typed) for line in lines] == [
        (LineKind.USER, "hello there", True),
        (LineKind.ASSISTANT, "You said: hello there", False),
    ]
    assert not lines[0].pending and not lines[1].streaming
    assert turn.trigger == "text" and turn.status == "completed"
    for latency in (turn.response_ms, turn.ttfb_ms, turn.first_text_ms, turn.total_ms):
        assert latency is not None and latency > 0
    assert turn.ttfa_ms is not None and turn.ttfa_ms >= turn.ttfb_ms
    assert turn.audio_ms > 0 and turn.usage.output_audio_tokens > 0
    assert turn.cost_usd is not None and turn.cost_usd > 0
    assert run.of(Ended) == [Ended(None)]
    assert run.of(ConnectionChanged)[-1].status == "closed"


async def test_vad_voice_turn_with_speech(speech_wav: Path) -> None:
    audio = FileBackend(speech_wav, realtime=False, trailing_silence_ms=1500)
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        run = Run(engine_for(server, audio, transcription_model="whisper-1"))
        [turn] = await run.until(run.turns)
        await run.until(lambda: run.engine.snapshot().state is State.LISTENING)
        await run.until(lambda: not run.engine.transcript()[0].pending)
        lines = run.engine.transcript()
        await run.stop()

    [update] = run.sent("session.update")
    assert turn_detection_sent(update)["type"] == "server_vad"
    assert update["session"]["audio"]["input"]["transcription"] == {"model": "whisper-1"}
    order = run.wire_order()
    assert order.index("received:input_audio_buffer.speech_started") < order.index(
        "received:input_audio_buffer.speech_stopped"
    )
    assert "sent:response.create" not in order  # the server answers a VAD turn by itself
    states = [update.state for update in run.of(StateChanged)]
    for expected in (State.USER_SPEAKING, State.THINKING, State.ASSISTANT_SPEAKING):
        assert expected in states
    assert states.index(State.USER_SPEAKING) < states.index(State.ASSISTANT_SPEAKING)
    assert [line.kind for line in lines] == [LineKind.USER, LineKind.ASSISTANT]
    assert lines[0].text.endswith("s of audio]")  # the local server's transcript
    assert lines[1].text.startswith("Echo of ")
    assert turn.trigger == "voice" and turn.ttfb_ms > 0 and turn.usage.input_audio_tokens > 0


async def test_push_to_talk_turn(speech_wav: Path) -> None:
    audio = FileBackend(speech_wav, realtime=True, trailing_silence_ms=None)
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        run = Run(engine_for(server, audio, mode=Mode.PTT))
        await run.ready()
        await asyncio.sleep(0.1)  # some audio goes to the pre-roll
        run.engine.ptt_toggle()
        pressed_at = asyncio.get_running_loop().time()
        assert run.engine.snapshot().recording
        await asyncio.sleep(0.9)
        run.engine.ptt_toggle()
        held_ms = (asyncio.get_running_loop().time() - pressed_at) * 1000
        [turn] = await run.until(run.turns)
        lines = run.engine.transcript()
        await run.stop()

    [update] = run.sent("session.update")
    assert turn_detection_sent(update) is None
    order = run.wire_order()
    clear = order.index("sent:input_audio_buffer.clear")
    commit = order.index("sent:input_audio_buffer.commit")
    assert clear < commit < order.index("sent:response.create")
    assert "received:input_audio_buffer.speech_started" not in order
    assert "received:input_audio_buffer.committed" in order
    # Only audio between the press and the release, plus the pre-roll, was sent.
    appended = [e for e in run.engine.log if e.type == "input_audio_buffer.append"]
    appended_ms = sum(int(e.data["audio"][1:].split()[0]) for e in appended) / 48
    preroll_ms, block_ms = 300, 20
    assert held_ms - 2 * block_ms <= appended_ms <= held_ms + preroll_ms + block_ms
    assert turn.trigger == "ptt" and turn.ttfb_ms > 0
    assert lines[1].text.startswith("Echo of ")


@pytest.mark.slow
async def test_barge_in_truncates_at_the_heard_position(speech_dir: Path, speech_wav: Path) -> None:
    # The user speaks, waits while the (real-time) reply plays, then talks over it.
    interruption = make_speech(speech_dir, "Stop, stop.", "stop")
    mic = concat_wav(speech_dir / "barge.wav", [speech_wav, 700, interruption])
    audio = FileBackend(mic, realtime=True, trailing_silence_ms=None)
    # pace 0.25: the reply arrives four times faster than it plays, like the real API's.
    async with LocalServer(ServerOptions(responder="echo", pace=0.25)) as server:
        run = Run(engine_for(server, audio))
        await run.until(lambda: run.received("conversation.item.truncated"), timeout=15)
        [truncate] = run.sent("conversation.item.truncate")
        item_id = truncate["item_id"]
        heard_by_backend = audio.played_ms(item_id, 0)
        received_ms = run.engine.conversation.audio_ms(item_id, 0)
        line = next(line for line in run.engine.transcript() if line.item_id == item_id)
        await run.until(lambda: run.turns())
        await run.stop()

    end_ms = truncate["audio_end_ms"]
    assert 300 < end_ms < received_ms - 300  # cut in the middle of the reply
    assert end_ms == heard_by_backend  # exactly what the audio engine says was heard
    [truncated] = run.received("conversation.item.truncated")
    assert truncated["audio_end_ms"] == end_ms  # the server accepted it (no error)
    assert run.received("error") == []
    assert run.sent("response.cancel") == []  # VAD: the server cancels by itself
    order = run.wire_order()
    assert order.index("received:input_audio_buffer.speech_started") < order.index(
        "sent:conversation.item.truncate"
    )
    assert line.interrupted and line.heard_ms == end_ms
    assert run.turns()[0].interrupted


async def test_ptt_press_interrupts_a_speaking_reply() -> None:
    audio = NullBackend(mic="silence", realtime=True)
    # pace 1: the reply is still streaming when the user presses, so it is cancelled.
    async with LocalServer(ServerOptions(responder="echo", pace=1.0)) as server:
        run = Run(engine_for(server, audio, mode=Mode.PTT))
        await run.ready()
        run.engine.send_text("please tell me a long story about the sea")
        await run.until(lambda: run.engine.snapshot().state is State.ASSISTANT_SPEAKING)
        item_id = run.engine.policy.playing[0][0]
        await run.until(lambda: audio.played_ms(item_id, 0) > 300)
        active = run.engine.session.client.response_active
        run.engine.ptt_press()
        await asyncio.sleep(0.3)
        run.engine.ptt_release()
        await run.until(lambda: len(run.turns()) == 2)
        await run.stop()

    assert active
    order = run.wire_order()
    press = order.index("sent:response.cancel")
    assert order[press : press + 3] == [
        "sent:response.cancel",
        "sent:conversation.item.truncate",
        "sent:input_audio_buffer.clear",
    ]
    [truncate] = run.sent("conversation.item.truncate")
    assert truncate["audio_end_ms"] == audio.played_ms(item_id, 0) > 300
    first, second = run.turns()
    assert first.status == "cancelled" and first.interrupted
    assert second.trigger == "ptt" and second.status == "completed"
    assert run.received("error") == []  # no cancel without an active response, no races


@pytest.mark.slow
async def test_half_duplex_keeps_the_mic_shut_while_the_reply_plays(
    speech_dir: Path, speech_wav: Path
) -> None:
    # Same timeline as the barge-in test, but the guard silences the mic during playback.
    interruption = make_speech(speech_dir, "Stop, stop.", "stop")
    mic = concat_wav(speech_dir / "half.wav", [speech_wav, 700, interruption])
    audio = FileBackend(mic, realtime=True, trailing_silence_ms=None)
    async with LocalServer(ServerOptions(responder="echo", pace=0.25)) as server:
        run = Run(
            engine_for(server, audio, echo=EchoSettings(mode=EchoMode.HALF_DUPLEX, tail_s=0.3))
        )
        await run.until(run.turns, timeout=15)
        await run.until(lambda: run.engine.snapshot().state is State.LISTENING)
        await asyncio.sleep(1.0)
        await run.stop()

    assert run.sent("conversation.item.truncate") == []
    assert len(run.received("input_audio_buffer.speech_started")) == 1
    assert run.engine.echo.blocks_silenced > 0
    assert not run.turns()[0].interrupted


async def test_late_user_transcript_lands_on_its_item(speech_wav: Path) -> None:
    audio = FileBackend(speech_wav, realtime=False, trailing_silence_ms=1500)
    options = ServerOptions(responder="echo", pace=0, late_transcript=True)
    async with LocalServer(options) as server:
        run = Run(engine_for(server, audio))
        await run.until(
            lambda: run.received("conversation.item.input_audio_transcription.completed")
        )
        await run.until(run.turns)
        lines = run.engine.transcript()
        await run.stop()

    # The user's transcript arrived after the assistant's reply had started...
    order = run.wire_order()
    first_delta = order.index("received:conversation.item.input_audio_transcription.delta")
    assert order.index("received:response.output_item.added") < first_delta
    assert order.index("received:response.output_audio_transcript.delta") < first_delta
    # ...and is shown on the user's item, above the reply.
    assert [line.kind for line in lines] == [LineKind.USER, LineKind.ASSISTANT]
    assert not lines[0].pending and lines[0].text.endswith("s of audio]")
    assert lines[0].item_id == run.received("input_audio_buffer.committed")[0]["item_id"]


async def test_switch_mode_mid_session() -> None:
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        run = Run(engine_for(server, NullBackend(mic="silence", realtime=True)))
        await run.ready()
        client = run.engine.session.client
        await run.until(lambda: client.session.turn_detection)
        run.engine.set_mode("ptt")
        await run.until(lambda: client.session.turn_detection is None)
        assert run.engine.snapshot().state is State.IDLE
        appends_in_ptt = len(run.sent("input_audio_buffer.append"))
        await asyncio.sleep(0.1)
        assert len(run.sent("input_audio_buffer.append")) == appends_in_ptt  # mic held back
        run.engine.set_mode("semantic", eagerness="high")
        await run.until(lambda: client.session.turn_detection is not None)
        effective = client.session.turn_detection
        snapshot = run.engine.snapshot()
        await run.stop()

    first, to_ptt, to_semantic = run.sent("session.update")
    assert turn_detection_sent(first)["type"] == "server_vad"
    assert turn_detection_sent(to_ptt) is None
    assert set(to_ptt["session"]) == {"type", "audio"}  # only the turn detection changes
    assert turn_detection_sent(to_semantic) == {
        "type": "semantic_vad",
        "eagerness": "high",
        "create_response": True,
        "interrupt_response": True,
    }
    assert run.wire_order().index("sent:input_audio_buffer.clear") > 0
    assert effective.type == "semantic_vad" and effective.eagerness == "high"
    assert snapshot.mode is Mode.SEMANTIC and snapshot.state is State.LISTENING


# --- errors --------------------------------------------------------------------------------


async def test_server_error_is_shown_with_its_code_and_a_harmless_race_is_not() -> None:
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        # An invalid voice: the server refuses the session.update with `invalid_value`.
        run = Run(engine_for(server, voice="nope", text_only=True))
        await run.ready()
        await run.until(lambda: run.of(NoticeAdded))
        run.engine.send_text("hi")
        await run.until(run.turns)
        reply = next(i for i in run.engine.conversation.items if i.role == "assistant")
        # Delete then truncate the reply: the truncate crosses the deletion on the wire and
        # the server answers `item_truncate_invalid_item_id`, a harmless race.
        run.engine.session.delete_item(reply.id)
        assert run.engine.session.truncate(reply.id, 0, 100) == 100
        await run.until(lambda: len(run.received("error")) == 2)
        await asyncio.sleep(0.05)
        lines = run.engine.transcript()
        await run.stop()

    [notice] = run.of(NoticeAdded)
    assert notice.level == "error" and notice.code == "invalid_value"
    assert "invalid_value" in notice.text and "'nope'" in notice.text
    errors = [line for line in lines if line.kind is LineKind.ERROR]
    assert [line.code for line in errors] == ["invalid_value"]
    codes = [error["error"]["code"] for error in run.received("error")]
    assert codes == ["invalid_value", "item_truncate_invalid_item_id"]
    notes = [e.note for e in run.engine.log if e.direction == "engine" and e.type == "harmless"]
    assert len(notes) == 1 and "item_truncate_invalid_item_id" in notes[0]


async def test_dropped_connection_ends_run_with_a_clear_error() -> None:
    options = ServerOptions(responder="echo", pace=0, faults=Faults(close_after_events=4))
    async with LocalServer(options) as server:
        engine = engine_for(server, NullBackend(mic="silence", realtime=True))
        run = Run(engine)
        await run.ready()
        engine.send_text("hello")
        with pytest.raises(ConnectError) as caught:
            await asyncio.wait_for(run.task, 10)

    message = str(caught.value)
    assert "1006" in message and "\n" not in message
    assert engine.snapshot().connection == "failed"
    assert engine.snapshot().connection_error == message
    assert run.of(Ended) == [Ended(message)]


async def test_failing_to_connect_raises_the_typed_error() -> None:
    async with LocalServer(ServerOptions()) as server:
        url = server.url
    engine = TalkEngine(TalkSettings(text_only=True), opener_for(ConnectionSettings(url=url)))
    with pytest.raises(ConnectError, match="connection refused"):
        await engine.run()
    assert engine.snapshot().connection == "failed"


async def test_audio_that_cannot_start_ends_run_with_its_error(tmp_path: Path) -> None:
    missing = FileBackend(tmp_path / "no-such.wav", realtime=False)
    async with LocalServer(ServerOptions()) as server:
        run = Run(engine_for(server, missing))
        with pytest.raises(AudioError, match="does not exist") as caught:
            await asyncio.wait_for(run.task, 10)
    assert run.of(Ended) == [Ended(str(caught.value))]
    assert run.engine.snapshot().connection == "closed"


async def test_lost_audio_device_is_a_notice_and_typing_still_works() -> None:
    audio = NullBackend(mic="silence", realtime=True)
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        run = Run(engine_for(server, audio))
        await run.ready()
        # What the real backend reports when PortAudio loses the device (the null backend
        # has no device to unplug).
        audio._report_device_lost("output device 'spk' stopped")
        await run.until(lambda: run.engine.snapshot().audio_lost)
        run.engine.send_text("still there?")
        [turn] = await run.until(run.turns)
        lines = run.engine.transcript()
        await run.stop()

    [notice] = run.of(NoticeAdded)
    assert "spk" in notice.text and notice.level == "info"
    assert lines[-1].text == "You said: still there?"
    assert turn.status == "completed"
    assert run.engine.snapshot().connection == "closed"


async def test_text_only_uses_no_audio_at_all() -> None:
    audio = NullBackend(mic="silence", realtime=True)
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        run = Run(engine_for(server, audio, text_only=True))
        await run.ready()
        run.engine.send_text("typed only")
        [turn] = await run.until(run.turns)
        await run.until(lambda: run.engine.snapshot().state is State.IDLE)
        snapshot = run.engine.snapshot()
        await run.stop()

    assert run.engine.audio is None and snapshot.text_only
    assert audio.stats().frames_played == 0  # never started, never played
    assert run.sent("input_audio_buffer.append") == []
    assert turn.audio_ms > 0 and turn.ttfa_ms is None  # audio arrived, and was ignored


@pytest.mark.slow
async def test_late_reply_audio_is_stretched_and_every_audio_part_is_finished() -> None:
    """A server whose deltas come up to 80 ms late: the player stretches instead of gapping,
    and the engine tells it when each audio part is done (so the end of a reply, which runs
    dry by nature, is not stretched)."""
    options = ServerOptions(responder="echo", pace=1, faults=Faults(delta_jitter_ms=80))
    async with LocalServer(options) as server:
        audio = NullBackend(mic="none")
        run = Run(engine_for(server, audio))
        await run.ready()
        run.engine.send_text("tell me something long enough to stretch")
        await run.until(run.turns)
        await run.until(lambda: not run.engine.policy.playing, timeout=20)
        await run.stop()

    stats = audio.jitter.stats()
    assert stats.underruns == 0
    assert stats.stretched > 0
    parts = audio.jitter._parts  # noqa: SLF001 - which parts were finished is the point
    assert parts and all(part.done for part in parts.values())


def test_response_done_finishes_audio_parts_whose_done_event_never_came() -> None:
    """Each handler on its own (the live test above has both): an audio part's done event
    finishes it, and so does the response's done event for parts still open."""
    from voicecli.engine import _EVENT_HANDLERS
    from voicecli.protocol import events as ev

    for event in (
        ev.AudioDone(item_id="item_a", content_index=0, response_id="resp_1"),
        ev.ResponseDone(
            response_id="resp_1",
            output=(
                ev.Item(
                    id="item_a",
                    type="message",
                    role="assistant",
                    content=(ev.ContentPart(type="output_audio"),),
                ),
            ),
        ),
    ):
        audio = NullBackend(mic="none")
        engine = TalkEngine(TalkSettings(), opener_for(ConnectionSettings()), audio)
        audio.play(bytes(4800), "item_a", 0)
        assert not audio.jitter._parts[("item_a", 0)].done  # noqa: SLF001
        _EVENT_HANDLERS[type(event)](engine, event, 0.0)
        assert audio.jitter._parts[("item_a", 0)].done, event.type  # noqa: SLF001
