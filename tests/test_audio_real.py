"""The real backend on real PortAudio streams (private PulseAudio server, see tests/pulse.py).

The client plays into sink `spk`; its default mic is `mic.monitor`. A test makes the mic hear
the speaker with `PULSE_SOURCE=spk.monitor` (read by libpulse when a stream opens), or records
the speaker independently with `parec` on `spk.monitor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from tests import pulse
from voicecli.audio import MicBlock, RealBackend
from voicecli.audio.wav import read_wav


pytestmark = pytest.mark.audio
RATE = 24000


def find(haystack: np.ndarray, needle: np.ndarray) -> int:
    """Index of the first exact occurrence of `needle` in `haystack` (-1 if absent)."""
    for index in np.nonzero(haystack == needle[0])[0]:
        if np.array_equal(haystack[index : index + needle.size], needle):
            return int(index)
    return -1


def landmark(signal: np.ndarray, at: int, size: int = 64) -> np.ndarray:
    """A stretch of `signal` loud enough to be found exactly once."""
    loud = np.nonzero(np.abs(signal[at:]) > 2000)[0]
    start = at + int(loud[0])
    return signal[start : start + size], start


def pcm_of(blocks: list[MicBlock]) -> np.ndarray:
    return np.frombuffer(b"".join(block.pcm for block in blocks), "<i2")


def play_all(
    backend: RealBackend, signal: np.ndarray, item: str, delta: int = 2400, done: bool = True
) -> None:
    """Queue `signal` in deltas, then (`done`) say the part is complete, as the engine does
    on its done event: a part still arriving would be stretched while it runs low."""
    for start in range(0, signal.size, delta):
        backend.play(signal[start : start + delta].astype("<i2").tobytes(), item, 0)
    if done:
        backend.end_part(item, 0)


async def collect(backend: RealBackend, into: list[MicBlock], arrivals: list[float]) -> None:
    async for block in backend.mic_blocks():
        into.append(block)
        arrivals.append(time.monotonic())


def read_raw(path: Path) -> np.ndarray:
    return np.frombuffer(path.read_bytes(), "<i2")


async def stop_recording(recorder: object) -> None:
    recorder.terminate()  # type: ignore[attr-defined]
    await asyncio.to_thread(recorder.wait, 5)  # type: ignore[attr-defined]


async def loop_through(signal: np.ndarray, item: str, **options: object) -> RealBackend:
    """Play `signal` and capture the speaker's monitor with one backend (PULSE_SOURCE set)."""
    backend = RealBackend(**options)  # type: ignore[arg-type]
    await backend.start()
    backend.captured = []  # type: ignore[attr-defined]
    task = asyncio.create_task(collect(backend, backend.captured, []))  # type: ignore[attr-defined]
    try:
        play_all(backend, signal, item)
        assert await backend.drain(timeout=10)
        await asyncio.sleep(0.3)
    finally:
        await backend.stop()
        await task
    return backend


def glitched(backend: RealBackend) -> bool:
    """PortAudio reported an xrun: on a starved machine the sound server itself dropped audio."""
    stats = backend.stats()
    return stats.device_underflows > 0 or stats.overflows > 0


async def test_speech_played_arrives_bit_exact_through_capture(
    sound_server: str, speech_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_SOURCE", "spk.monitor")  # the mic hears the speaker
    speech = read_wav(speech_wav)
    mark, offset = landmark(speech, 0)
    for _attempt in range(2):  # a second try only if PortAudio reported a device glitch
        backend = await loop_through(speech, "item_1")
        captured = pcm_of(backend.captured)  # type: ignore[attr-defined]
        start = find(captured, mark) - offset
        exact = start >= 0 and np.array_equal(captured[start : start + speech.size], speech)
        if exact or not glitched(backend):
            break
    assert exact, f"speech not bit-exact in the capture (found at {start})"
    stats = backend.stats()
    assert stats.callback_errors == 0 and stats.underruns == 0
    assert backend.played_ms("item_1", 0) == speech.size * 1000 // RATE
    assert backend.jitter.stats().spurts == 1  # the deltas' arrival times reached the buffer


async def test_mic_blocks_arrive_at_real_time_pace_and_hear_what_is_spoken(
    sound_server: str, speech_wav: Path
) -> None:
    backend = RealBackend(use_output=False)
    await backend.start()
    blocks: list[MicBlock] = []
    arrivals: list[float] = []
    task = asyncio.create_task(collect(backend, blocks, arrivals))
    started = time.monotonic()
    speaker = pulse.play_into_mic(speech_wav)  # the test speaks into the microphone
    await asyncio.sleep(2.6)
    ran = time.monotonic() - started
    await backend.stop()
    await task
    await asyncio.to_thread(speaker.wait, 5)
    assert {len(block.pcm) for block in blocks} == {960}
    on_time = [block for block, at in zip(blocks, arrivals, strict=True) if at <= started + ran]
    assert abs(len(on_time) * 0.020 - ran) < 0.1, (len(on_time), ran)
    paced = np.diff(arrivals[5 : len(on_time)])
    assert 0.0195 < float(np.mean(paced)) < 0.0205, float(np.mean(paced))
    stamps = np.diff([block.captured_at for block in blocks])
    assert float(np.median(stamps)) == pytest.approx(0.020, abs=0.001)
    assert all(
        block.captured_at <= arrival for block, arrival in zip(blocks, arrivals, strict=True)
    )
    speech = read_wav(speech_wav)
    mark, offset = landmark(speech, 0)
    start = find(pcm_of(blocks), mark) - offset
    assert start >= 0 and np.array_equal(pcm_of(blocks)[start : start + speech.size], speech)
    assert max(block.peak for block in blocks) > 0.3
    assert backend.stats().overflows == 0


async def test_a_batch_never_outgrows_half_the_capture_pool(sound_server: str) -> None:
    backend = RealBackend(use_output=False, block_ms=10)
    await backend.start()
    try:
        assert backend.capture is not None
        backend.pace_mic(500, wake_peak=0.03)  # 50 blocks of 10 ms: the whole pool
        assert backend.capture.wake_every == 25 and backend.capture.wake_peak == 983
        backend.pace_mic(40)
        assert backend.capture.wake_every == 4 and backend.capture.wake_peak == 0
    finally:
        await backend.stop()


async def test_batched_mic_hands_over_every_block_and_speech_onsets_at_once(
    sound_server: str, speech_wav: Path
) -> None:
    # The engine batches the mic while nobody speaks (one loop wake-up per 100 ms): nothing
    # may be lost or reordered, each block keeps its own capture time, and a loud block (the
    # onset of speech) must not wait for its batch.
    backend = RealBackend(use_output=False)
    await backend.start()
    backend.pace_mic(100, wake_peak=0.03)
    blocks: list[MicBlock] = []
    arrivals: list[float] = []
    task = asyncio.create_task(collect(backend, blocks, arrivals))
    started = time.monotonic()
    await asyncio.sleep(1.0)  # silence first: batches of five
    speaker = pulse.play_into_mic(speech_wav)
    await asyncio.sleep(2.6)
    await backend.stop()
    await task
    await asyncio.to_thread(speaker.wait, 5)

    stamps = np.diff([block.captured_at for block in blocks])
    assert float(np.median(stamps)) == pytest.approx(0.020, abs=0.001)
    assert float(stamps.min()) > 0.0  # in capture order
    speech = read_wav(speech_wav)
    mark, offset = landmark(speech, 0)
    start = find(pcm_of(blocks), mark) - offset
    assert start >= 0 and np.array_equal(pcm_of(blocks)[start : start + speech.size], speech)

    pairs = list(zip(blocks, arrivals, strict=True))
    quiet = [(block, at) for block, at in pairs if at < started + 0.9]  # before the speech
    wakeups = 1 + int(np.count_nonzero(np.diff([at for _, at in quiet]) > 0.01))
    assert len(quiet) >= 40 and wakeups <= len(quiet) // 3, (len(quiet), wakeups)

    def lag(block: MicBlock, at: float) -> float:  # from the block's last sample to the loop
        return at - block.captured_at - 0.020

    quiet_lag = [lag(b, at) for b, at in quiet]
    loud_lag = [lag(b, at) for b, at in pairs if b.peak >= 0.05]
    assert len(loud_lag) > 20
    # Batched blocks wait 40 ms on average for their batch; loud ones go with their callback.
    assert float(np.median(loud_lag)) < float(np.median(quiet_lag)) - 0.02, (
        float(np.median(loud_lag)),
        float(np.median(quiet_lag)),
    )
    assert backend.stats().mic_dropped == 0


@pytest.mark.parametrize("block_ms", [10, 100])
async def test_block_length_is_configurable(sound_server: str, block_ms: int) -> None:
    backend = RealBackend(use_output=False, block_ms=block_ms)
    await backend.start()
    blocks: list[MicBlock] = []
    task = asyncio.create_task(collect(backend, blocks, []))
    await asyncio.sleep(0.6)
    await backend.stop()
    await task
    assert {len(block.pcm) for block in blocks} == {RATE * block_ms // 1000 * 2}
    assert len(blocks) >= 0.4 / (block_ms / 1000)


async def test_the_speaker_has_a_block_length_of_its_own(sound_server: str) -> None:
    # talk's defaults: 40 ms mic blocks (fewer callbacks), 20 ms speaker blocks (latency).
    backend = RealBackend(block_ms=40, output_block_ms=20)
    await backend.start()
    try:
        blocks: list[MicBlock] = []
        task = asyncio.create_task(collect(backend, blocks, []))
        backend.play(np.zeros(RATE // 2, np.int16).tobytes(), "item", 0)
        await asyncio.sleep(0.6)
        assert backend.capture.block_frames == RATE * 40 // 1000
        assert backend.playback.block_frames == RATE * 20 // 1000
        assert backend.playback.latency < backend.capture.latency  # two blocks each, about
        assert backend.jitter.stats().frames_played > 0
    finally:
        await backend.stop()
    await task
    assert {len(block.pcm) for block in blocks} == {RATE * 40 // 1000 * 2}
    with pytest.raises(ValueError, match="output_block_ms"):
        RealBackend(output_block_ms=5)


def chirp_with_offset(seconds: float = 3.0) -> np.ndarray:
    """A signal that never nears zero (so a hard cut always clicks) and never repeats."""
    t = np.arange(int(RATE * seconds)) / RATE
    frequency = 150 + 100 * t / seconds
    phase = 2 * np.pi * np.cumsum(frequency) / RATE
    signal = 8000 + 5000 * np.sin(phase)
    signal[:480] *= np.linspace(0, 1, 480)  # its own fade-in: the start must not click either
    return signal.astype(np.int16)


@contextlib.asynccontextmanager
async def recorded_speaker(raw: Path, **options: object) -> AsyncIterator[RealBackend]:
    """A speaker-only backend while parec records what reaches the `spk` sink into `raw`."""
    recorder = pulse.record_monitor("spk", raw)
    backend = RealBackend(use_input=False, **options)  # type: ignore[arg-type]
    await backend.start()
    try:
        await asyncio.sleep(0.3)  # parec is up
        yield backend
    finally:
        await backend.stop()
        await stop_recording(recorder)


async def cut_and_record(tmp_path: Path, fade_ms: float) -> tuple[np.ndarray, np.ndarray, int]:
    signal = chirp_with_offset()
    raw = tmp_path / f"spk-{fade_ms}.raw"
    async with recorded_speaker(raw, fade_ms=fade_ms) as backend:
        play_all(backend, signal, "tone")
        await asyncio.sleep(0.6)
        backend.clear()
        heard_ms = backend.played_ms("tone", 0)
        await asyncio.sleep(0.3)
    return signal, read_raw(raw), heard_ms


def fade_region(signal: np.ndarray, recording: np.ndarray) -> tuple[int, int, int]:
    """(where the signal starts, where the recording leaves it, where sound ends)."""
    mark, offset = landmark(signal, 4800)
    start = find(recording, mark) - offset
    assert start >= 0, "the signal never reached the speaker"
    played = recording[start : start + signal.size]
    differs = np.nonzero(played != signal[: played.size])[0]
    leaves = start + int(differs[0])
    sound_ends = int(np.nonzero(recording)[0][-1]) + 1
    return start, leaves, sound_ends


async def test_clear_fades_out_within_15_ms_without_a_click(
    sound_server: str, tmp_path: Path
) -> None:
    signal, recording, _ = await cut_and_record(tmp_path, fade_ms=15)
    start, leaves, sound_ends = fade_region(signal, recording)
    natural = int(np.max(np.abs(np.diff(signal.astype(np.int32)))))
    step = int(np.max(np.abs(np.diff(recording.astype(np.int32)))))
    assert step <= natural + 120, f"click: step {step} vs {natural} in the signal itself"
    assert 0 < sound_ends - leaves <= 360  # the fade: at most 15 ms, then silence
    assert leaves - start > 0.4 * RATE  # it played until the clear


async def test_a_hard_cut_would_click_so_the_measure_can_fail(
    sound_server: str, tmp_path: Path
) -> None:
    signal, recording, _ = await cut_and_record(tmp_path, fade_ms=0)
    _, leaves, sound_ends = fade_region(signal, recording)
    step = int(np.max(np.abs(np.diff(recording.astype(np.int32)))))
    assert step > 2500
    assert sound_ends - leaves <= 1


def silent_runs(recording: np.ndarray) -> int:
    """Runs of silence between the first and the last sound of a never-silent signal."""
    sound = recording != 0
    inside = sound[np.argmax(sound) : sound.size - np.argmax(sound[::-1])]
    return int(np.count_nonzero(np.diff(inside.astype(np.int8)) == -1))


async def late_reply(tmp_path: Path, max_stretch_ms: float) -> tuple[np.ndarray, RealBackend]:
    """300 ms of a reply, then the rest one 20 ms block after the speaker needed it."""
    signal = chirp_with_offset(1.0)
    raw = tmp_path / f"late-{max_stretch_ms}.raw"
    async with recorded_speaker(raw, max_stretch_ms=max_stretch_ms) as backend:
        head = RATE * 3 // 10
        play_all(backend, signal[:head], "late", done=False)
        # Late by the device's clock, not the wall's (the first callbacks fill the device's
        # buffer at once): the rest comes once the device has taken a block more than the
        # 300 ms since playing began. Unstretched, that block was silence.
        while not (stats := backend.jitter.stats()).frames_played:
            await asyncio.sleep(0.002)
        started = stats.frames_out - stats.frames_played
        while backend.jitter.stats().frames_out - started < head + 480:
            await asyncio.sleep(0.002)
        play_all(backend, signal[head:], "late")
        assert await backend.drain(timeout=10)
        await asyncio.sleep(0.3)
    return read_raw(raw), backend


@pytest.mark.slow
async def test_late_audio_is_stretched_instead_of_gapping(
    sound_server: str, tmp_path: Path
) -> None:
    """On real streams: the same late delivery gaps with stretching off and plays through
    with it on, every sample of the reply reaching the speaker."""
    plain, plain_backend = await late_reply(tmp_path, max_stretch_ms=0)
    stretched, backend = await late_reply(tmp_path, max_stretch_ms=200)
    if glitched(plain_backend) or glitched(backend):
        pytest.skip("the sound server dropped audio (starved machine): gaps prove nothing")
    assert silent_runs(plain) >= 1
    assert plain_backend.stats().underruns >= 1
    assert silent_runs(stretched) == 0
    assert backend.stats().underruns == 0
    inserted = backend.jitter.stats().stretched
    assert backend.stats().stretched_ms == inserted * 1000 // RATE > 0
    # The whole reply (its first sample is 0, the fade-in's start) and the inserted periods.
    assert np.count_nonzero(stretched) == RATE - 1 + inserted


async def test_truncation_position_matches_what_reached_the_speaker(
    sound_server: str, speech_wav: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    speech = read_wav(speech_wav)
    raw = tmp_path / "spk.raw"
    recorder = pulse.record_monitor("spk", raw)
    monkeypatch.setenv("PULSE_SOURCE", "spk.monitor")
    listener = RealBackend(use_output=False)  # timestamps what reaches the speaker
    speaker = RealBackend(use_input=False)
    await listener.start()
    await speaker.start()
    heard: list[MicBlock] = []
    task = asyncio.create_task(collect(listener, heard, []))
    live: list[tuple[float, int]] = []
    try:
        await asyncio.sleep(0.3)
        play_all(speaker, speech, "item_9")
        for _ in range(10):
            await asyncio.sleep(0.087)
            live.append((time.monotonic(), speaker.played_ms("item_9", 0)))
        speaker.clear()
        truncate_ms = speaker.played_ms("item_9", 0)
        await asyncio.sleep(0.4)
        assert speaker.played_ms("item_9", 0) == truncate_ms  # final, and stays so
    finally:
        await speaker.stop()
        await listener.stop()
        await task
        await stop_recording(recorder)

    # What parec recorded: the item's samples that reached the sink, fade included.
    start, leaves, sound_ends = fade_region(speech, read_raw(raw))
    reached_ms = (sound_ends - start) * 1000 / RATE
    assert abs(truncate_ms - reached_ms) <= 20, (truncate_ms, reached_ms)
    assert 0 < truncate_ms < speech.size * 1000 // RATE

    # While it played: the latency-corrected position against arrival times at the monitor.
    captured = pcm_of(heard)
    mark, offset = landmark(speech, 0)
    first = find(captured, mark) - offset
    assert first >= 0
    block = len(heard[0].pcm) // 2
    arrival = np.concatenate(
        [b.captured_at + np.arange(block) / RATE for b in heard]
    )  # when each captured sample was at the monitor
    for at, position_ms in live:
        truth_ms = np.count_nonzero(arrival[first : first + speech.size] <= at) * 1000 / RATE
        assert abs(position_ms - truth_ms) <= 20, (position_ms, truth_ms)


async def test_devices_that_refuse_24k_are_opened_at_their_rate_and_resampled(
    sound_server: str, speech_wav: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULSE_SOURCE", "spk.monitor")
    speech = read_wav(speech_wav)
    reference = speech.astype(np.float64)
    for _attempt in range(2):  # a second try only if PortAudio reported a device glitch
        backend = await loop_through(speech, "item_r", input_rate=48000, output_rate=48000)
        blocks = backend.captured  # type: ignore[attr-defined]
        captured = pcm_of(blocks).astype(np.float64)
        correlation = np.correlate(captured, reference[2400 : 4800 + 2400], mode="valid")
        lag = int(np.argmax(correlation)) - 2400
        aligned = captured[lag : lag + reference.size]
        similarity = (
            np.dot(aligned, reference) / np.linalg.norm(aligned) / np.linalg.norm(reference)
        )
        if similarity > 0.99 or not glitched(backend):
            break
    assert similarity > 0.99
    stats = backend.stats()
    assert (stats.input_rate, stats.output_rate) == (48000, 48000)
    assert {len(block.pcm) for block in blocks} == {960}  # still 24 kHz, 20 ms
    assert abs(backend.played_ms("item_r", 0) - speech.size * 1000 // RATE) <= 5


async def test_a_device_lost_mid_stream_is_reported_and_the_session_goes_on(
    sound_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = Path(tempfile.mkdtemp(prefix="vc-pa-"))  # short: unix socket paths are limited
    server_pid = await asyncio.to_thread(start_private_pulse, directory)
    try:
        monkeypatch.setenv("PULSE_SERVER", f"unix:{directory}/native")  # read at stream open
        lost: list[str] = []
        backend = RealBackend(on_device_lost=lost.append)
        await backend.start()
        blocks: list[MicBlock] = []
        task = asyncio.create_task(collect(backend, blocks, []))
        backend.play(np.zeros(RATE, np.int16).tobytes(), "item_l", 0)
        await asyncio.sleep(0.3)
        pulse.stop(server_pid)  # the sound server goes away under both streams
        for _ in range(100):
            if len(lost) == 2:
                break
            await asyncio.sleep(0.02)
        assert sorted(message.split()[0] for message in lost) == ["input", "output"]
        assert all("stopped" in message and "\n" not in message for message in lost)
        await asyncio.wait_for(task, 2)  # the mic iterator ended instead of hanging
        backend.play(np.zeros(480, np.int16).tobytes(), "item_l", 0)  # no exception
        backend.clear()
        backend.played_ms("item_l", 0)
        stats = backend.stats()
        assert stats.device_lost is not None and "output device" in stats.device_lost
        assert await backend.drain(timeout=1)
        await backend.stop()
    finally:
        pulse.stop(server_pid)
        shutil.rmtree(directory, ignore_errors=True)


async def test_a_device_that_stops_calling_back_is_reported_lost(
    sound_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A suspended sink: PortAudio reports nothing, the callbacks just stop coming.
    directory = Path(tempfile.mkdtemp(prefix="vc-pa-"))
    server_pid = await asyncio.to_thread(start_private_pulse, directory)
    server = f"unix:{directory}/native"
    try:
        monkeypatch.setenv("PULSE_SERVER", server)
        lost: list[str] = []
        backend = RealBackend(on_device_lost=lost.append)
        await backend.start()
        task = asyncio.create_task(collect(backend, [], []))
        backend.play(np.full(RATE * 10, 1000, np.int16).tobytes(), "item_s", 0)
        for _ in range(30):  # 3 s of healthy streams, polled as the engine does: no alarm
            backend.stats()
            await asyncio.sleep(0.1)
        assert lost == []
        for sink in ("spk", "mic"):  # the speaker, and the sink whose monitor is the mic
            subprocess.run(["pactl", "--server", server, "suspend-sink", sink, "1"], check=True)
        suspended_at = time.monotonic()
        while len(lost) < 2 and time.monotonic() - suspended_at < 6:
            backend.stats()
            await asyncio.sleep(0.1)
        took = time.monotonic() - suspended_at
        assert sorted(message.split()[0] for message in lost) == ["input", "output"], lost
        assert all("stopped calling back" in message for message in lost)
        assert 2.0 < took < 4.0, took
        await asyncio.wait_for(task, 2)  # the mic iterator ended instead of hanging
        assert "output device" in (backend.stats().device_lost or "")
        await backend.stop()
    finally:
        pulse.stop(server_pid)
        shutil.rmtree(directory, ignore_errors=True)


def start_private_pulse(directory: Path) -> int:
    """A second, throw-away PulseAudio server that this test may kill."""
    return pulse.launch(directory, settle_s=0.5)


async def test_a_failing_callback_is_counted_and_the_stream_keeps_playing(
    sound_server: str,
) -> None:
    backend = RealBackend(use_input=False, prebuffer_ms=0)
    await backend.start()
    jitter = backend.jitter

    class FailsOnce:  # stands in for the buffer inside the callback, once
        failed = False

        def read_into(self, out: np.ndarray, dac_time: float) -> int:
            if not self.failed:
                self.failed = True
                raise RuntimeError("a bug in the callback")
            return jitter.read_into(out, dac_time)

        def __getattr__(self, name: str) -> object:  # the rest of the buffer, unchanged
            return getattr(jitter, name)

    assert backend.playback is not None
    backend.playback.jitter = FailsOnce()  # type: ignore[assignment]
    try:
        await asyncio.sleep(0.1)
        backend.play(np.full(2400, 1000, np.int16).tobytes(), "item_e", 0)
        assert await backend.drain(timeout=2)
        stats = backend.stats()
    finally:
        await backend.stop()
    assert stats.callback_errors == 1
    assert stats.frames_played == 2400
    assert stats.device_lost is None
