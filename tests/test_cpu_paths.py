"""The shortcuts that keep `voicecli talk` cheap on the CPU give the same results as the long way.

- the engine's tick slows down while nothing time-driven is pending and speeds up the moment
  something is (a push-to-talk hold, assistant audio), against the real local server;
- the engine batches the mic while nobody speaks, in short batches while the server hears
  speech, and not at all while push-to-talk is held;
- `EngineSnapshot.summary` is computed again only when the metrics changed, and always agrees
  with `MetricsTracker.summary()`;
- `TranscriptView.lines()` hands back the same `Line` objects for unchanged items and new ones
  for every change that matters (streaming text, a cut, a late transcript, a typed message);
- a mic block's level is its RMS and peak.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import numpy as np
import pytest

from voicecli.audio import FileBackend, NullBackend
from voicecli.audio.backend import level
from voicecli.engine import TalkEngine, TalkSettings, opener_for
from voicecli.protocol.conversation import Conversation, ItemState, PartState
from voicecli.protocol.events import Usage
from voicecli.server import LocalServer, ServerOptions
from voicecli.session import ConnectionSettings
from voicecli.transcript import TranscriptView
from voicecli.turns import Mode, State


# --- the engine's tick ----------------------------------------------------------------------


async def ticks_during(engine: TalkEngine, seconds: float) -> int:
    count = 0
    on_tick = engine._on_tick

    def counting() -> None:
        nonlocal count
        count += 1
        on_tick()

    engine._on_tick = counting  # type: ignore[method-assign]
    try:
        await asyncio.sleep(seconds)
    finally:
        engine._on_tick = on_tick  # type: ignore[method-assign]
    return count


async def next_tick_after(engine: TalkEngine, action: Any) -> float:
    """Seconds from `action()` to the engine's next tick."""
    loop = asyncio.get_running_loop()
    ticked: asyncio.Future[float] = loop.create_future()
    on_tick = engine._on_tick

    def first() -> None:
        if not ticked.done():
            ticked.set_result(loop.time())
        on_tick()

    engine._on_tick = first  # type: ignore[method-assign]
    try:
        start = loop.time()
        action()
        return await asyncio.wait_for(ticked, 1.0) - start
    finally:
        engine._on_tick = on_tick  # type: ignore[method-assign]


@pytest.mark.slow
async def test_the_tick_is_slow_while_listening_and_fast_while_push_to_talk_is_held() -> None:
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        settings = TalkSettings(mode=Mode.PTT)
        engine = TalkEngine(
            settings, opener_for(ConnectionSettings(url=server.url)), NullBackend(mic="silence")
        )
        task = asyncio.create_task(engine.run())
        while not engine.policy.connected:
            await asyncio.sleep(0.01)
        idle = await ticks_during(engine, 1.0)
        # Hold-to-talk by key repeats (its release is time-driven): the slow wait is cut short.
        first_tick = await next_tick_after(engine, engine.ptt_key)
        held_at = asyncio.get_running_loop().time() - first_tick
        held = await ticks_during(engine, 0.5)
        while engine.policy.recording:
            await asyncio.sleep(0.005)
        released_after = asyncio.get_running_loop().time() - held_at
        for _ in range(300):  # the turn is sent and answered
            if engine.policy.playing:
                break
            await asyncio.sleep(0.01)
        playing = await ticks_during(engine, 0.4)
        for _ in range(1000):  # the answer plays out
            if engine.policy.state is State.IDLE and engine._out_level == 0.0:
                break
            await asyncio.sleep(0.01)
        after = await ticks_during(engine, 1.0)
        engine.stop()
        await task

    assert 5 <= idle <= 15  # 10 a second (idle_tick_s), not 50
    assert first_tick < 0.015  # at once, not at the end of the slow wait
    assert held >= 15  # 50 a second (tick_s) from the key press on
    assert 5 <= playing <= 12  # 20 a second (playing_tick_s) while the answer plays
    assert 5 <= after <= 15  # slow again once the answer has played
    # The first key's hold ends `hold_first_gap_s` after it, within a fast tick or two.
    gap = settings.turn.hold_first_gap_s
    assert gap <= released_after < gap + 0.1


# --- mic batching ------------------------------------------------------------------------


class PacedFileBackend(FileBackend):
    """A file backend that keeps every `pace_mic` request with the state it was made in."""

    engine: TalkEngine | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.paces: list[tuple[int, float, State]] = []

    def pace_mic(self, batch_ms: int, wake_peak: float = 0.0) -> None:
        assert self.engine is not None
        self.paces.append((batch_ms, wake_peak, self.engine.policy.state))


async def run_paced(audio: PacedFileBackend, settings: TalkSettings, steps: Any) -> None:
    async with LocalServer(ServerOptions(responder="echo", pace=1)) as server:
        engine = TalkEngine(settings, opener_for(ConnectionSettings(url=server.url)), audio)
        audio.engine = engine
        task = asyncio.create_task(engine.run())
        while not engine.policy.connected:
            await asyncio.sleep(0.01)
        await steps(engine)
        engine.stop()
        await task


@pytest.mark.slow
async def test_the_mic_is_batched_while_nobody_speaks_and_not_while_push_to_talk_is_held(
    speech_wav: Any,
) -> None:
    settings = TalkSettings()
    vad = PacedFileBackend(speech_wav, realtime=True, trailing_silence_ms=1500)

    async def until_answered(engine: TalkEngine) -> None:
        for _ in range(1000):
            if engine.metrics.summary().turns:
                return
            await asyncio.sleep(0.01)

    await run_paced(vad, settings, until_answered)
    listening = (settings.mic_batch_ms, settings.mic_wake_peak)
    assert vad.paces[0][:2] == listening
    speaking = [pace[:2] for pace in vad.paces if pace[2] is State.USER_SPEAKING]
    assert speaking and set(speaking) == {(settings.mic_speech_batch_ms, 0.0)}
    after = vad.paces.index(next(p for p in vad.paces if p[2] is State.USER_SPEAKING))
    assert listening in [pace[:2] for pace in vad.paces[after:]]  # batching again afterwards

    ptt = PacedFileBackend(speech_wav, realtime=True, trailing_silence_ms=None)

    async def press_and_release(engine: TalkEngine) -> None:
        await asyncio.sleep(0.1)
        engine.ptt_toggle()
        await asyncio.sleep(0.3)
        engine.ptt_toggle()
        await asyncio.sleep(0.1)

    await run_paced(ptt, TalkSettings(mode=Mode.PTT), press_and_release)
    # Not recording: batches, and no onset to hurry (only a press starts a turn).
    assert ptt.paces[0][:2] == (settings.mic_batch_ms, 0.0)
    held = [pace for pace in ptt.paces if pace[0] == 0]
    assert held, ptt.paces
    assert ptt.paces[-1][:2] == (settings.mic_batch_ms, 0.0)


# --- the snapshot's summary -----------------------------------------------------------------


async def never_opened(on_sent: Any, on_received: Any) -> Any:
    raise AssertionError("not connected in this test")


def test_the_snapshot_summary_follows_every_change_of_the_metrics() -> None:
    engine = TalkEngine(TalkSettings(), never_opened)
    metrics = engine.metrics
    first = engine.snapshot().summary
    assert engine.snapshot().summary is first  # nothing changed: not computed again
    assert first.turns == 0

    metrics.user_turn_ended(1.0, "voice")
    metrics.response_created("resp_1", 1.2)
    metrics.audio_delta("resp_1", 500.0, 1.5)
    metrics.response_done("resp_1", "completed", Usage(input_tokens=10, output_tokens=5), 2.0)
    assert engine.snapshot().summary == metrics.summary()
    assert engine.snapshot().summary.turns == 1

    metrics.first_played("resp_1", 1.6)  # playback outlives the response
    assert engine.snapshot().summary == metrics.summary()
    assert engine.snapshot().summary.ttfa_ms_median == pytest.approx(600)

    metrics.interrupted("resp_1")
    assert engine.snapshot().summary.interrupted == 1 == metrics.summary().interrupted


# --- transcript lines -----------------------------------------------------------------------


def conversation(*items: ItemState) -> Conversation:
    convo = Conversation()
    for item in items:
        convo._items[item.id] = item
        convo._order.append(item.id)
    return convo


def test_transcript_lines_are_reused_until_their_item_changes() -> None:
    user = ItemState(
        id="item_u", role="user", status="completed", parts=[PartState(type="input_audio")]
    )
    reply = ItemState(
        id="item_a",
        role="assistant",
        status="in_progress",
        response_id="resp_1",
        parts=[PartState(type="output_audio", text="Paris is", audio_ms=1000.0)],
    )
    convo = conversation(user, reply)
    view = TranscriptView()
    first = view.lines(convo)
    again = view.lines(convo)
    assert [a is b for a, b in zip(first, again, strict=True)] == [True, True]

    reply.parts[0].text += " the capital"  # a streaming delta
    streamed = view.lines(convo)
    assert streamed[0] is first[0] and streamed[1].text == "Paris is the capital"

    user.parts[0].text, user.parts[0].done = "Capital of France?", True  # a late transcript
    late = view.lines(convo)
    assert late[0].text == "Capital of France?" and not late[0].pending

    view.heard("item_a", 0, 500)  # barge-in: cut where the user stopped hearing it
    cut = view.lines(convo)
    assert cut[1].interrupted and cut[1].text == "Paris is"
    assert cut[0] is late[0]  # a cut changes assistant lines only

    typed = ItemState(
        id="item_t",
        role="user",
        status="completed",
        parts=[PartState(type="input_text", text="hello", done=True)],
    )
    view.typed("hello")
    convo = conversation(user, reply, typed)
    for _ in range(2):  # the server's item replaces the pending copy, also when reused
        lines = view.lines(convo)
        assert [line.text for line in lines if line.typed] == ["hello"]
        assert not any(line.pending for line in lines if line.typed)

    assert [line.key for line in view.lines(conversation(user, typed))] == ["item_u", "item_t"]


# --- levels ---------------------------------------------------------------------------------


def test_the_level_of_a_block_is_its_rms_and_peak() -> None:
    samples = (np.sin(np.arange(480) * 2 * math.pi / 48) * 16384).astype(np.int16)
    rms, peak = level(samples)
    as_float = samples.astype(np.float64)
    assert math.isclose(rms, math.sqrt(np.mean(as_float**2)) / 32768, rel_tol=1e-12)
    assert peak == 16384 / 32768
    assert level(np.zeros(480, np.int16)) == (0.0, 0.0)
    assert level(np.zeros(0, np.int16)) == (0.0, 0.0)
    assert level(np.full((480, 1), -32768, np.int16)) == (1.0, 1.0)  # a (frames, 1) block


# --- the event log of sent audio ------------------------------------------------------------


def test_sent_audio_frames_are_logged_as_parsing_them_would() -> None:
    from voicecli.engine import _appended_audio, _elide
    from voicecli.protocol.client import RealtimeClient

    client = RealtimeClient()
    for size in (2, 4, 480, 4801, 48000):  # one frame each, base64 with and without padding
        client.append_audio(bytes(range(256)) * (size // 256) + bytes(size % 256))
        (frame,) = client.data_to_send()
        quick = _appended_audio(frame)
        assert quick is not None and quick == dict(_elide(json.loads(frame)))
    client.commit_audio()
    others = [
        *client.data_to_send(),
        '{"type":"input_audio_buffer.append","event_id":"e\\"1","audio":"AAAA"}',
        '{"type":"input_audio_buffer.append","event_id":"e1","audio":"AA","x":"y"}',
        '{"type":"input_audio_buffer.append","audio":"AAAA","event_id":"e1"}',
        "not json",
    ]
    assert [_appended_audio(frame) for frame in others] == [None] * len(others)
