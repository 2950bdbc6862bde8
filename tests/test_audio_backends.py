"""The file and null backends: the same engine headless, on a simulated clock or flat out.

Also the pieces they rest on: WAV reading and writing, soxr resampling, the interface.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from voicecli.audio import AudioBackend, FileBackend, MicBlock, NullBackend, RealBackend
from voicecli.audio.backend import MicQueue
from voicecli.audio.resample import Rebuffer, StreamResampler, resample
from voicecli.audio.stream import StallWatch
from voicecli.audio.wav import WavWriter, read_wav
from voicecli.errors import AudioError


RATE = 24000


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path


def tone(seconds: float, frequency: float = 440.0, rate: int = RATE, level: int = 10000):
    t = np.arange(int(rate * seconds)) / rate
    return (level * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


async def take_all(backend: AudioBackend) -> tuple[list[MicBlock], list[float]]:
    blocks, arrivals = [], []
    async for block in backend.mic_blocks():
        blocks.append(block)
        arrivals.append(time.monotonic())
    return blocks, arrivals


def pcm_of(blocks: list[MicBlock]) -> np.ndarray:
    return np.frombuffer(b"".join(block.pcm for block in blocks), "<i2")


def test_all_backends_satisfy_the_interface() -> None:
    for backend in (RealBackend(), FileBackend(), NullBackend()):
        assert isinstance(backend, AudioBackend)
        assert backend.sample_rate == 24000


def test_importing_the_audio_package_does_not_load_sounddevice() -> None:
    code = "import sys, voicecli.audio; print('sounddevice' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr


async def test_file_input_at_real_time_pace_then_trailing_silence(tmp_path: Path) -> None:
    speech = tone(0.5)
    backend = FileBackend(write_wav(tmp_path / "in.wav", speech), trailing_silence_ms=200)
    started = time.monotonic()
    await backend.start()
    blocks, arrivals = await take_all(backend)
    elapsed = time.monotonic() - started
    await backend.stop()
    assert {len(block.pcm) for block in blocks} == {960}
    audio = pcm_of(blocks)
    assert np.array_equal(audio[: speech.size], speech)
    assert not audio[speech.size :].any() and audio.size == speech.size + 4800
    assert 0.68 <= elapsed <= 0.9  # 35 blocks of 20 ms
    assert float(np.median(np.diff(arrivals))) == pytest.approx(0.02, abs=0.003)
    assert np.allclose(np.diff([b.captured_at for b in blocks]), 0.02, atol=1e-6)
    assert blocks[3].rms > 0.1 and blocks[-1].rms == 0.0


async def test_file_input_as_fast_as_possible_loses_nothing(tmp_path: Path) -> None:
    speech = tone(4.0)
    backend = FileBackend(write_wav(tmp_path / "in.wav", speech), realtime=False)
    started = time.monotonic()
    await backend.start()
    blocks: list[MicBlock] = []
    async for block in backend.mic_blocks():
        blocks.append(block)
        if len(blocks) % 50 == 0:
            await asyncio.sleep(0.01)  # a slow consumer: the reader waits, nothing is dropped
    await backend.stop()
    assert time.monotonic() - started < 1.0
    assert np.array_equal(pcm_of(blocks), speech)
    assert backend.stats().mic_dropped == 0


async def test_input_wav_is_downmixed_and_resampled_to_24k(tmp_path: Path) -> None:
    left = tone(1.0, 300, rate=44100)
    stereo = np.stack([left, left], axis=1).reshape(-1)
    path = write_wav(tmp_path / "stereo44.wav", stereo, rate=44100, channels=2)
    samples = read_wav(path)
    assert samples.dtype == np.int16 and abs(samples.size - 24000) <= 1
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    assert int(np.argmax(spectrum)) == 300  # 1 s of signal: bin = Hz


def test_unreadable_wavs_are_one_line_errors(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="does not exist"):
        read_wav(tmp_path / "missing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    with pytest.raises(AudioError, match="cannot read .* as a PCM WAV file") as exc:
        read_wav(junk)
    assert "\n" not in str(exc.value)
    with pytest.raises(AudioError, match="cannot write output WAV"):
        WavWriter(tmp_path / "no" / "such" / "dir.wav")


async def test_realtime_output_wav_keeps_the_timeline(tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    backend = FileBackend(None, out, prebuffer_ms=0)
    await backend.start()
    await asyncio.sleep(0.2)
    reply = tone(0.3)
    backend.play(reply.tobytes(), "item_1", 0)
    assert await backend.drain(timeout=2)
    await asyncio.sleep(0.1)
    await backend.stop()
    written = read_wav(out)
    start = int(np.nonzero(written)[0][0])
    assert 0.17 * RATE <= start <= 0.25 * RATE  # silence until the reply came
    assert np.array_equal(written[start : start + reply.size - 1], reply[1:])  # sin(0) == 0
    assert 0.55 * RATE <= written.size <= 0.75 * RATE
    assert backend.played_ms("item_1", 0) == 300


async def test_fast_output_wav_is_the_concatenation(tmp_path: Path) -> None:
    out = tmp_path / "fast.wav"
    backend = FileBackend(None, out, realtime=False)
    await backend.start()
    first, second = tone(0.2, 300), tone(0.1, 500)
    backend.play(first.tobytes(), "a", 0)
    backend.play(second.tobytes(), "b", 0)
    assert backend.played_ms("a", 0) == 200 and backend.played_ms("b", 0) == 100
    assert await backend.drain(timeout=1)
    await backend.stop()
    assert np.array_equal(read_wav(out), np.concatenate([first, second]))


async def test_null_backend_mic_is_silence_at_pace_or_absent() -> None:
    silent = NullBackend()
    await silent.start()
    blocks: list[MicBlock] = []

    async def first_blocks() -> None:
        async for block in silent.mic_blocks():
            blocks.append(block)
            if len(blocks) == 10:
                return

    started = time.monotonic()
    await asyncio.wait_for(first_blocks(), 2)
    assert 0.17 <= time.monotonic() - started <= 0.35
    assert not pcm_of(blocks).any() and {len(b.pcm) for b in blocks} == {960}
    await silent.stop()
    absent = NullBackend(mic="none")
    await absent.start()
    assert await asyncio.wait_for(take_all(absent), 1) == ([], [])
    await absent.stop()
    with pytest.raises(ValueError):
        NullBackend(mic="loud")  # type: ignore[arg-type]


async def test_null_backend_tracks_played_position_and_truncation_headless() -> None:
    backend = NullBackend(mic="none", output_latency_ms=40)
    await backend.start()
    backend.play(tone(1.0).tobytes(), "item_1", 0)
    backend.play(tone(0.5).tobytes(), "item_2", 0)
    await asyncio.sleep(0.5)
    live = backend.played_ms("item_1", 0)
    # 500 ms elapsed - 60 ms prebuffer wait - 40 ms latency, give or take a block
    assert 380 <= live <= 420
    stats = backend.stats()
    assert stats.out_rms > 0.1 and stats.buffered_ms > 900
    backend.clear()
    cut = backend.played_ms("item_1", 0)
    assert live < cut <= live + 40 + 15 + 25  # what the device still plays, plus the fade
    await asyncio.sleep(0.2)
    assert backend.played_ms("item_1", 0) == cut
    assert backend.played_ms("item_2", 0) == 0  # queued behind: never heard, no truncate
    backend.play(tone(0.1).tobytes(), "item_1", 0)  # a late delta of the cut part
    assert backend.stats().buffered_ms == 0
    await backend.stop()


async def test_played_ms_never_exceeds_what_was_received() -> None:
    backend = NullBackend(mic="none", prebuffer_ms=0)
    await backend.start()
    backend.play(tone(0.1).tobytes(), "item_1", 0)
    assert await backend.drain(timeout=1)
    assert backend.played_ms("item_1", 0) == 100
    assert backend.played_ms("unknown", 0) == 0
    assert backend.stats().frames_played == 2400
    await backend.stop()


async def test_backend_as_async_context_manager() -> None:
    async with NullBackend(mic="none") as backend:
        backend.play(tone(0.05).tobytes(), "x", 0)
        assert await backend.drain(timeout=1)
    assert backend._task is None


def test_block_length_outside_10_to_100_ms_is_refused() -> None:
    with pytest.raises(ValueError):
        NullBackend(block_ms=5)
    with pytest.raises(ValueError):
        FileBackend(block_ms=120)


def test_stream_resampler_matches_one_shot_and_rebuffer_cuts_exact_blocks() -> None:
    signal = tone(1.0, 440, rate=48000)
    whole = resample(signal, 48000, 24000)
    stream = StreamResampler(48000, 24000)
    parts = [stream.process(signal[i : i + 960]) for i in range(0, signal.size, 960)]
    parts.append(stream.flush())
    pieces = np.concatenate(parts)
    assert abs(pieces.size - whole.size) <= 2
    n = min(pieces.size, whole.size)
    assert np.max(np.abs(pieces[:n].astype(np.int32) - whole[:n])) <= 2
    rebuffer = Rebuffer(480)
    blocks = [b for part in parts for b in rebuffer.push(part)]
    assert all(b.size == 480 for b in blocks)
    assert len(blocks) * 480 + rebuffer.pending == pieces.size
    assert np.array_equal(resample(signal, 48000, 48000), signal)


async def test_mic_queue_drops_the_oldest_block_when_the_consumer_lags() -> None:
    queue = MicQueue(max_blocks=3)
    for index in range(5):
        queue.put(MicBlock(bytes([index]) * 2, float(index)))
    queue.close()
    got = [block async for block in queue.blocks()]
    assert [block.captured_at for block in got] == [2.0, 3.0, 4.0]
    assert queue.dropped == 2
    assert [block async for block in queue.blocks()] == []  # a second iterator ends too


def test_capture_callback_survives_a_closed_loop_and_counts_overflows() -> None:
    """The PortAudio thread may still call back after the loop closed: no raise, no print."""
    from voicecli.audio.capture import Capture
    from voicecli.audio.devices import DeviceInfo

    loop = asyncio.new_event_loop()
    loop.close()
    device = DeviceInfo(0, "test", "none", 1, 0, 24000.0, True, False)
    capture = Capture(device, 24000, 20, MicQueue(), loop, lambda message: None)

    class Timing:  # the two fields PortAudio's time info struct gives the callback
        inputBufferAdcTime = 10.0
        currentTime = 10.04

    class Flags:
        input_overflow = True

        def __bool__(self) -> bool:
            return True

    capture._callback(bytearray(np.ones(480, np.int16).tobytes()), 480, Timing(), Flags())
    assert capture.loop_closed and capture.overflows == 1 and capture.callback_errors == 0
    assert np.array_equal(capture._pool[0], np.ones(480, np.int16))


def test_the_stall_watch_fires_only_after_the_counter_stood_still_long_enough() -> None:
    watch = StallWatch(limit_s=2.0)
    assert not watch.stalled(0, now=10.0)  # first look: nothing to compare with
    assert not watch.stalled(5, now=11.0)
    assert not watch.stalled(9, now=13.5)  # moving, however slowly
    assert not watch.stalled(9, now=15.4)
    assert watch.stalled(9, now=15.5)  # still 9 after 2 s
    assert not watch.stalled(10, now=15.6)  # moving again: the watch starts over
    assert not watch.stalled(10, now=17.5)
    assert watch.stalled(10, now=17.6)
