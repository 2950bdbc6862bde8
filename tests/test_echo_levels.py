"""What the echo guard is fed: the level history of the audio handed to the output device.

`JitterBuffer.played_levels()` (pure), `AudioBackend.played_levels()` on every backend, the
simulated echo path of the file/null backends, and, on the virtual sound server, the check the
gate's delay window rests on: a sound's DAC time (from the speaker's history) and its ADC time
(from the mic block that caught it) agree within a few milliseconds.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
import pytest

from voicecli.audio import AudioBackend, FileBackend, MicBlock, NullBackend
from voicecli.audio.backend import PlayedLevel
from voicecli.audio.jitter import JitterBuffer
from voicecli.smoke.audio import SmokeAudio


RATE = 24000


def steady(level: float, count: int) -> np.ndarray:
    """`count` samples alternating +-level (RMS = peak = level, 0..1)."""
    value = round(level * 32768)
    return np.where(np.arange(count) % 2 == 0, value, -value).astype(np.int16)


def pull(buffer: JitterBuffer, blocks: int, dac: float, block: int = 480) -> None:
    out = np.zeros(block, np.int16)
    for index in range(blocks):
        buffer.read_into(out, dac + index * block / buffer.sample_rate)


# --- the jitter buffer ---------------------------------------------------------------------


def test_played_levels_follow_what_reached_the_dac_in_short_spans() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0)
    buffer.write(np.concatenate([steady(0.5, 480), steady(0.25, 240)]))
    assert buffer.played_levels(0, 120) == ([], 0)
    pull(buffer, 3, dac=10.0)  # 720 samples of audio, then 240 zero-filled, then silence
    levels, cursor = buffer.played_levels(0, 120)
    assert cursor == 3
    assert len(levels) == 6  # silence has no entry
    starts = [start for start, _, _, _ in levels]
    assert starts == pytest.approx([10.0 + i * 0.005 for i in range(6)])
    assert levels[0][1] == pytest.approx(10.005)
    assert [round(rms, 4) for _, _, rms, _ in levels] == [0.5] * 4 + [0.25] * 2
    assert [round(peak, 4) for _, _, _, peak in levels] == [0.5] * 4 + [0.25] * 2
    # The cursor means "since": nothing new until the device takes another block.
    assert buffer.played_levels(cursor, 120) == ([], 3)
    buffer.write(steady(0.1, 100), "next part")  # (the same part would re-arm a prebuffer)
    pull(buffer, 1, dac=10.06)
    levels, cursor = buffer.played_levels(cursor, 120)
    assert cursor == 4 and len(levels) == 1
    start, end, rms, _ = levels[0]
    assert (start, end) == pytest.approx((10.06, 10.06 + 100 / RATE))
    assert rms == pytest.approx(0.1, abs=1e-4)


def test_a_cleared_block_reports_only_its_fade() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0, fade_ms=5)
    buffer.write(steady(0.5, 4800))
    pull(buffer, 1, dac=1.0)
    buffer.clear()
    pull(buffer, 2, dac=1.02)
    levels, _ = buffer.played_levels(0, 120)
    # One full block, then the 5 ms fade (reported at the level it was faded from: an
    # overestimate is the safe side for an echo guard); nothing after the cut.
    assert len(levels) == 5
    assert levels[-1][0] == pytest.approx(1.02)
    assert levels[-1][1] == pytest.approx(1.025)


def test_played_levels_survive_the_ring_growing() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0, capacity_ms=100, max_capacity_ms=10_000)
    buffer.write(steady(0.3, 2000))
    pull(buffer, 4, dac=0.0)  # plays 1920 samples
    buffer.write(steady(0.6, 20_000))  # a burst: the ring grows to hold it
    assert buffer.stats().capacity > 2400
    levels, _ = buffer.played_levels(0, 120)
    assert len(levels) == 16
    assert all(rms == pytest.approx(0.3, abs=1e-4) for _, _, rms, _ in levels)


def test_overwritten_samples_and_foreign_cursors_are_handled() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0, capacity_ms=100, max_capacity_ms=100)
    buffer.write(steady(0.3, 2400))
    pull(buffer, 5, dac=0.0)
    buffer.write(steady(0.6, 2400))  # reuses the ring: the played samples are gone
    levels, cursor = buffer.played_levels(0, 120)
    assert levels == [] and cursor == 5
    # A cursor from another buffer (the real backend makes a new one per output stream).
    pull(buffer, 1, dac=0.1)
    levels, cursor = buffer.played_levels(99, 120)
    assert cursor == 6 and len(levels) == 4
    assert all(rms == pytest.approx(0.6, abs=1e-4) for _, _, rms, _ in levels)


# --- the backends --------------------------------------------------------------------------


async def test_every_backend_reports_played_levels_by_dac_time() -> None:
    backends: list[AudioBackend] = [
        FileBackend(None, realtime=True, output_latency_ms=30, prebuffer_ms=0),
        NullBackend(output_latency_ms=30, prebuffer_ms=0),
        SmokeAudio(realtime=True, prebuffer_ms=0),
    ]
    for backend in backends:
        assert isinstance(backend, AudioBackend)
        await backend.start()
        try:
            queued_at = asyncio.get_running_loop().time()
            backend.play(steady(0.4, 4800).tobytes(), "item", 0)  # 200 ms
            await asyncio.sleep(0.3)
            levels, cursor = backend.played_levels(0)
        finally:
            await backend.stop()
        assert cursor > 0
        assert all(isinstance(level, PlayedLevel) for level in levels)
        assert len(levels) == 40  # 200 ms in 5 ms spans
        assert all(level.end - level.start == pytest.approx(0.005) for level in levels)
        assert all(level.rms == pytest.approx(0.4, abs=1e-4) for level in levels)
        latency = 0.0 if isinstance(backend, SmokeAudio) else 0.03
        # The first span reaches the (simulated) DAC one tick and the latency after queueing.
        assert queued_at <= levels[0].start - latency <= queued_at + 0.05
        assert levels[-1].end - levels[0].start == pytest.approx(0.2, abs=0.001)


async def start_listening(backend: Any) -> tuple[list[MicBlock], asyncio.Task[None]]:
    """Start `backend`; the task collects its mic blocks into the list until it stops."""
    blocks: list[MicBlock] = []

    async def listen() -> None:
        async for block in backend.mic_blocks():
            blocks.append(block)

    await backend.start()
    return blocks, asyncio.create_task(listen())


async def test_the_simulated_mic_can_hear_the_simulated_speaker() -> None:
    backend = NullBackend(echo_gain_db=-6.0, echo_delay_ms=40, prebuffer_ms=0)
    blocks, task = await start_listening(backend)
    try:
        await asyncio.sleep(0.1)
        played = (np.cos(np.arange(4800) * 2 * np.pi * 500 / RATE) * 16000).astype(np.int16)
        backend.play(played.tobytes(), "item", 0)
        await asyncio.sleep(0.5)
        levels, _ = backend.played_levels(0)
    finally:
        await backend.stop()
        await task
    mic = np.concatenate([np.frombuffer(block.pcm, "<i2") for block in blocks])
    times = np.concatenate([block.captured_at + np.arange(480) / RATE for block in blocks])
    heard = np.nonzero(np.abs(mic) > 100)[0]
    # The echo starts 40 ms after the first sample reached the DAC...
    assert times[heard[0]] - levels[0].start == pytest.approx(0.04, abs=0.001)
    # ...and is that sample train, 6 dB down.
    echo = mic[heard[0] : heard[0] + 4800].astype(np.float64)
    assert np.allclose(echo, played * 10 ** (-6 / 20), atol=1.0)


def test_the_simulated_echo_delay_is_checked() -> None:
    with pytest.raises(ValueError):
        NullBackend(echo_gain_db=0.0, echo_delay_ms=-5)


# --- a real device pair --------------------------------------------------------------------


@pytest.mark.audio
@pytest.mark.slow
@pytest.mark.parametrize("device_rate", [None, 48000])  # 48 kHz: both streams resampled
async def test_dac_and_adc_times_agree_through_a_real_loopback(
    sound_server: str, monkeypatch: pytest.MonkeyPatch, device_rate: int | None
) -> None:
    """The echo gate's time basis: PortAudio's DAC time of a sound (in `played_levels`) and
    the ADC time of the mic block that caught it are the same instant, within a few ms,
    although the sound takes 40-60 ms from one callback to the other."""
    from voicecli.audio import RealBackend

    monkeypatch.setenv("PULSE_SOURCE", "spk.monitor")  # the mic hears the speaker
    backend = RealBackend(input_rate=device_rate, output_rate=device_rate)
    blocks, task = await start_listening(backend)
    burst = np.concatenate(
        [
            (np.sin(np.arange(2400) * 2 * np.pi * 1000 / RATE) * 12000).astype(np.int16),
            np.zeros(7200, np.int16),
        ]
    )
    cursor, onsets_out = 0, []
    try:
        await asyncio.sleep(0.5)
        for index in range(5):
            backend.play(burst.tobytes(), f"burst{index}", 0)
            await asyncio.sleep(0.4)
            levels, cursor = backend.played_levels(cursor)
            onsets_out.append(next(level.start for level in levels if level.rms > 0.1))
    finally:
        await backend.stop()
        await task
    mic = np.concatenate([np.frombuffer(block.pcm, "<i2") for block in blocks])
    times = np.concatenate(
        [block.captured_at + np.arange(len(block.pcm) // 2) / RATE for block in blocks]
    )
    residuals = []
    for onset in onsets_out:
        after = np.nonzero((times > onset - 0.2) & (np.abs(mic) > 3000))[0]
        assert after.size, "the mic never heard the burst"
        residuals.append(times[after[0]] - onset)
    # One span (5 ms) of granularity plus the timestamps' own jitter (measured 0-5 ms); the
    # resamplers add their own delay, which the capture times do not correct (measured 7-25
    # ms). The gate's window (-30..+120 ms) leaves room for devices that report worse.
    late = 0.02 if device_rate is None else 0.05
    assert all(-0.015 <= residual <= late for residual in residuals), residuals
    assert not math.isnan(sum(residuals))
