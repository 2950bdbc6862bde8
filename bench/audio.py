"""Audio engine benchmarks on real PortAudio streams (the private PulseAudio null sinks).

    .venv/bin/python -m bench.audio           # about 3 minutes; prints one table
    .venv/bin/python -m bench.audio --quick   # fewer repetitions, for a smoke run
    .venv/bin/python -m bench.audio --simulate 1000   # underruns on a simulated consumer only

Measures callback cost, mic block -> base64 append, first delta -> first sample, clear() ->
silence, underruns under jittery and bursty delivery (against a naive list-under-a-lock
player), and how far the truncation position is from what a loopback capture of the speaker
really got. Writes the table to bench/results/audio.md with the date and the machine.

The callbacks are timed by wrapping the engine's callback methods for the run (the wrapper's
own bookkeeping happens after the measured interval).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import platform
import sys
import time
import timeit
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import Row, cpu_name, load_note, markdown_table, private_sound_server


RATE = 24000
BLOCK = 480
RESULTS = Path(__file__).resolve().parent / "results" / "audio.md"


# --- probes: timing wrappers around the engine's callbacks -----------------------------------


@dataclass
class Probe:
    """Per-callback records: entry time, cost, and (for output) what was produced."""

    entries: list[float] = field(default_factory=list)
    costs_ns: list[int] = field(default_factory=list)
    produced: list[np.ndarray] = field(default_factory=list)
    frames_after: list[int] = field(default_factory=list)
    dac: list[float] = field(default_factory=list)
    cleared: list[tuple[float, float, int]] = field(default_factory=list)  # entry, dac, faded
    keep_output: bool = False

    def reset(self) -> None:
        self.entries.clear()
        self.costs_ns.clear()
        self.produced.clear()
        self.frames_after.clear()
        self.dac.clear()
        self.cleared.clear()

    def output(self) -> np.ndarray:
        return np.concatenate(self.produced) if self.produced else np.zeros(0, np.int16)


@contextlib.contextmanager
def probed(cls: type, probe: Probe, output: bool) -> Iterator[None]:
    original = cls._callback

    def timed(self: Any, data: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        entry = time.monotonic()
        clear_seen = self.jitter._clear_seen if output else 0
        start = time.perf_counter_ns()
        original(self, data, frames, time_info, status)
        cost = time.perf_counter_ns() - start
        probe.entries.append(entry)
        probe.costs_ns.append(cost)
        if output:
            jitter = self.jitter
            slot = (jitter._log_count - 1) % len(jitter._log_dac)
            dac = float(jitter._log_dac[slot])
            probe.dac.append(dac)
            probe.frames_after.append(jitter._frames_played)
            if jitter._clear_seen != clear_seen:
                probe.cleared.append((entry, dac, int(jitter._log_count_n[slot])))
            if probe.keep_output:
                probe.produced.append(np.frombuffer(data, np.int16).copy())

    cls._callback = timed
    try:
        yield
    finally:
        cls._callback = original


def percentiles(values: list[float] | np.ndarray) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(np.median(array)), float(np.percentile(array, 99))


# --- signals and delivery schedules -----------------------------------------------------------


def offset_chirp(seconds: float, seed: int = 0) -> np.ndarray:
    """Never zero (so gaps and fades are exact to find) and never repeating (so it aligns)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(RATE * seconds)) / RATE
    low = 150 + 50 * rng.random()
    frequency = low + 100 * t / seconds
    phase = 2 * np.pi * np.cumsum(frequency) / RATE
    return (8000 + 5000 * np.sin(phase)).astype(np.int16)


Schedule = list[tuple[float, bytes]]


def jittered(signal: np.ndarray, seed: int, jitter_s: float = 0.080) -> Schedule:
    """Deltas of 20-120 ms at 1x real time, each late by 0-80 ms, delivered in order."""
    rng = np.random.default_rng(seed)
    schedule, position, last = [], 0, 0.0
    while position < signal.size:
        size = int(rng.integers(1, 7)) * 480
        due = position / RATE + rng.uniform(0, jitter_s)
        last = max(last, due)
        schedule.append((last, signal[position : position + size].tobytes()))
        position += size
    return schedule


def bursty(signal: np.ndarray, seed: int, speed: float = 10.0) -> Schedule:
    """Bursts of 300-800 ms of audio sent at 10x real time, each burst due at its real-time
    position plus 0-80 ms, deltas of 20-120 ms."""
    rng = np.random.default_rng(seed)
    schedule, position, last = [], 0, 0.0
    while position < signal.size:
        burst_end = min(signal.size, position + int(rng.uniform(0.3, 0.8) * RATE))
        start = position / RATE + rng.uniform(0, 0.080)
        burst_start = position
        while position < burst_end:
            size = min(int(rng.integers(1, 7)) * 480, burst_end - position)
            last = max(last, start + (position - burst_start) / RATE / speed)  # in order
            schedule.append((last, signal[position : position + size].tobytes()))
            position += size
    return schedule


async def deliver(play: Callable[[bytes], None], schedule: Schedule) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    for at, pcm in schedule:
        delay = start + at - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        play(pcm)


def gaps(produced: np.ndarray) -> tuple[int, float]:
    """Silent stretches inside the played signal (which is never zero): (count, total ms)."""
    sounding = np.nonzero(produced)[0]
    if not sounding.size:
        return 0, 0.0
    inside = produced[sounding[0] : sounding[-1] + 1] == 0
    edges = np.diff(inside.astype(np.int8))
    return int(np.count_nonzero(edges == 1)), float(np.count_nonzero(inside)) * 1000 / RATE


# --- scenarios ------------------------------------------------------------------------------


@dataclass
class SessionGaps:
    """One session's responses: gaps [(count, silent ms), ...], and for ours what the
    adaptation cost (the prebuffer in effect at each response's start) and the engine's own
    underrun count. First-sample times are from the first delta's play() to the callback
    that handed its first sample."""

    per_response: list[tuple[int, float]]
    counted: int = 0  # the engine's own stats.underruns (ours only)
    prebuffer_ms: list[float] = field(default_factory=list)  # ours only
    first_sample_ms: list[float] = field(default_factory=list)
    spurts: int = 0  # talk spurts the delay estimator saw (0: no arrival times reached it)
    stretched_ms: list[float] = field(default_factory=list)  # ours only, per response


def schedules_for(
    make: Callable[..., Schedule], seeds: list[int], seconds: float
) -> list[Schedule]:
    return [make(offset_chirp(seconds, seed), seed) for seed in seeds]


class FirstPlay:
    """Remembers when a response's first delta was handed over (and runs `then` once)."""

    def __init__(self, play: Callable[[bytes], None], then: Callable[[], None]) -> None:
        self.at: float | None = None
        self._play, self._then = play, then

    def __call__(self, pcm: bytes) -> None:
        first = self.at is None
        if first:
            self.at = time.monotonic()
        self._play(pcm)
        if first:
            self._then()


def first_sample_ms(probe: Probe, start: int, asked: float | None) -> float:
    """From `asked` to the entry of the first callback after block `start` that played sound."""
    for index in range(start, len(probe.produced)):
        if probe.produced[index].any():
            return (probe.entries[index] - (asked or 0.0)) * 1000
    return float("nan")


async def session_ours(schedules: list[Schedule], costs: list[int]) -> SessionGaps:
    """One talk session: several responses in a row through a new real backend (so the
    delay estimator starts from nothing)."""
    from voicecli.audio import RealBackend
    from voicecli.audio.playback import Playback

    probe = Probe(keep_output=True)
    starts, asked, targets, stretched = [], [], [], []
    with probed(Playback, probe, output=True):
        backend = RealBackend(use_input=False)
        await backend.start()
        await asyncio.sleep(0.2)
        probe.reset()
        rate = backend.jitter.sample_rate
        for index, schedule in enumerate(schedules):
            starts.append(len(probe.produced))
            item = f"response_{index}"
            before = backend.jitter.stats().stretched
            play = FirstPlay(
                lambda pcm, item=item: backend.play(pcm, item, 0),
                lambda: targets.append(backend.jitter.prebuffer * 1000 / rate),
            )
            await deliver(play, schedule)
            backend.end_part(item, 0)  # the done event, right after the last delta
            asked.append(play.at)
            await backend.drain(timeout=5)
            stretched.append((backend.jitter.stats().stretched - before) * 1000 / rate)
            await asyncio.sleep(0.3)
        stats = backend.stats()
        await backend.stop()
    costs.extend(probe.costs_ns)
    waits = [first_sample_ms(probe, start, at) for start, at in zip(starts, asked, strict=True)]
    spurts = backend.jitter.stats().spurts
    return SessionGaps(
        per_response(probe, starts), stats.underruns, targets, waits, spurts, stretched
    )


async def session_naive(schedules: list[Schedule], costs: list[int]) -> SessionGaps:
    from bench.audio_naive import NaivePlayer
    from voicecli.audio.devices import load_sounddevice

    sd = load_sounddevice()
    player = NaivePlayer()
    probe = Probe(keep_output=True)

    def callback(outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        entry = time.monotonic()
        start = time.perf_counter_ns()
        player.callback(outdata, frames, time_info, status)
        probe.costs_ns.append(time.perf_counter_ns() - start)
        probe.entries.append(entry)
        probe.produced.append(outdata[:, 0].copy())

    stream = sd.OutputStream(
        samplerate=RATE, channels=1, dtype="int16", blocksize=BLOCK, callback=callback
    )
    await asyncio.to_thread(stream.start)
    await asyncio.sleep(0.2)
    probe.reset()
    starts, asked = [], []
    played = 0
    for schedule in schedules:
        starts.append(len(probe.produced))
        played += sum(len(pcm) // 2 for _, pcm in schedule)
        play = FirstPlay(player.play, lambda: None)
        await deliver(play, schedule)
        asked.append(play.at)
        while player.frames_played < played:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
    await asyncio.to_thread(stream.close)
    costs.extend(probe.costs_ns)
    waits = [first_sample_ms(probe, start, at) for start, at in zip(starts, asked, strict=True)]
    return SessionGaps(per_response(probe, starts), first_sample_ms=waits)


@dataclass
class Underruns:
    """Every session of one delivery scenario, ours and the naive player's side by side."""

    ours: list[SessionGaps]
    naive: list[SessionGaps]

    @staticmethod
    def total(sessions: list[SessionGaps], first: bool | None = None) -> tuple[int, float]:
        """(gaps, silent ms) over all responses, only the first (True) or the later ones."""
        picked = [
            result
            for session in sessions
            for index, result in enumerate(session.per_response)
            if first is None or (index == 0) == first
        ]
        return sum(c for c, _ in picked), sum(ms for _, ms in picked)


async def underruns(
    make: Callable[..., Schedule],
    sessions: int,
    per_session: int,
    seconds: float,
    ours_costs: list[int],
    naive_costs: list[int],
) -> Underruns:
    """`sessions` sessions of `per_session` responses, each session with its own seeds. Ours
    and the naive player run at the same time on the same schedules (two streams on the same
    sink), which halves the run time and gives both the same loop and machine load."""
    result = Underruns([], [])
    for session in range(sessions):
        seeds = [10 * session + response + 1 for response in range(per_session)]
        schedules = schedules_for(make, seeds, seconds)
        ours, naive = await asyncio.gather(
            session_ours(schedules, ours_costs), session_naive(schedules, naive_costs)
        )
        result.ours.append(ours)
        result.naive.append(naive)
    return result


def underrun_rows(name: str, found: Underruns, seconds: float) -> list[Row]:
    sessions, per_session = len(found.ours), len(found.ours[0].per_response)
    gaps_all, silent_all = Underruns.total(found.ours)
    gaps_first, silent_first = Underruns.total(found.ours, first=True)
    gaps_later, silent_later = Underruns.total(found.ours, first=False)
    naive_gaps, naive_silent = Underruns.total(found.naive)
    counted = sum(session.counted for session in found.ours)
    later = sessions * (per_session - 1)
    targets = [t for session in found.ours for t in session.prebuffer_ms[1:]]
    firsts = [t for session in found.ours for t in session.prebuffer_ms[:1]]
    waits_first = [w for session in found.ours for w in session.first_sample_ms[:1]]
    waits_later = [w for session in found.ours for w in session.first_sample_ms[1:]]
    naive_waits = [w for session in found.naive for w in session.first_sample_ms]
    label = f"deltas at {name} ({sessions} sessions x {per_session} responses of {seconds:g} s)"
    if any(session.spurts == 0 for session in found.ours):
        label += " [delay estimator off: the backend passed no arrival times]"
    later_text = (
        f"median {np.median(targets):.0f} ms, max {np.max(targets):.0f} ms" if targets else "-"
    )
    waits_later_text = f"{np.median(waits_later):.0f} ms" if waits_later else "-"
    stretched = [ms for session in found.ours for ms in session.stretched_ms]
    return [
        (
            f"Underruns, {label}",
            f"{gaps_all} gaps / {silent_all:.0f} ms silent: first responses {gaps_first} / "
            f"{silent_first:.0f} ms, the {later} later ones {gaps_later} / "
            f"{silent_later:.0f} ms (stats.underruns={counted}); "
            f"naive: {naive_gaps} gaps / {naive_silent:.0f} ms",
            f"goal 0; naive/ours: gaps {ratio(naive_gaps, gaps_all)}, "
            f"silent ms {ratio(naive_silent, silent_all)}; {stretch_text(stretched)}",
        ),
        (
            f"Prebuffer at response start, {name} (what adapting costs)",
            f"first responses {np.max(firsts):.0f} ms; later ones {later_text}",
            f"first delta -> first sample handed, median: first responses "
            f"{np.median(waits_first):.0f} ms, later {waits_later_text}; "
            f"naive {np.median(naive_waits):.0f} ms",
        ),
    ]


def per_response(probe: Probe, starts: list[int]) -> list[tuple[int, float]]:
    ends = [*starts[1:], len(probe.produced)]
    return [gaps(np.concatenate(probe.produced[a:b])) for a, b in zip(starts, ends, strict=True)]


async def first_sample(repeats: int) -> dict[str, tuple[float, float]]:
    """play() of the first delta -> the callback that hands its first sample, and its DAC time."""
    from voicecli.audio import RealBackend
    from voicecli.audio.playback import Playback

    probe = Probe()
    results: dict[str, list[float]] = {"100": [], "100dac": [], "20": [], "20dac": []}
    signal = offset_chirp(1.0)
    with probed(Playback, probe, output=True):
        backend = RealBackend(use_input=False)
        await backend.start()
        for repeat in range(repeats):
            for size in (100, 20):
                await asyncio.sleep(0.25 + 0.02 * np.random.random())
                probe.reset()
                played_before = backend.jitter._frames_played
                asked = time.monotonic()
                item = f"first_{repeat}_{size}"
                if size == 100:
                    backend.play(signal[:2400].tobytes(), item, 0)
                else:  # 20 ms deltas at real time: the prebuffer has to fill first
                    schedule = [
                        (i * 0.02, signal[i * 480 : (i + 1) * 480].tobytes()) for i in range(10)
                    ]
                    await deliver(lambda pcm, item=item: backend.play(pcm, item, 0), schedule)
                backend.end_part(item, 0)  # as the engine does on the done event
                for _ in range(100):
                    if probe.frames_after and probe.frames_after[-1] > played_before:
                        break
                    await asyncio.sleep(0.005)
                index = next(i for i, f in enumerate(probe.frames_after) if f > played_before)
                results[str(size)].append((probe.entries[index] - asked) * 1000)
                results[f"{size}dac"].append((probe.dac[index] - asked) * 1000)
                await backend.drain(timeout=2)
        await backend.stop()
    return {key: percentiles(values) for key, values in results.items()}


async def clear_to_silence(repeats: int) -> dict[str, tuple[float, float]]:
    from voicecli.audio import RealBackend
    from voicecli.audio.playback import Playback

    probe = Probe()
    handed, at_dac = [], []
    rng = np.random.default_rng(3)
    with probed(Playback, probe, output=True):
        backend = RealBackend(use_input=False)
        await backend.start()
        for repeat in range(repeats):
            backend.play(offset_chirp(2.0, repeat).tobytes(), f"clear_{repeat}", 0)
            backend.end_part(f"clear_{repeat}", 0)
            await asyncio.sleep(rng.uniform(0.3, 0.6))
            probe.reset()
            asked = time.monotonic()
            backend.clear()
            for _ in range(100):
                if probe.cleared:
                    break
                await asyncio.sleep(0.005)
            entry, dac, faded = probe.cleared[0]
            handed.append((entry - asked) * 1000 + faded * 1000 / RATE)
            at_dac.append((dac - asked) * 1000 + faded * 1000 / RATE)
            await asyncio.sleep(0.15)
        await backend.stop()
    return {"handed": percentiles(handed), "dac": percentiles(at_dac)}


@dataclass
class LoopbackResult:
    truncate_errors: list[float]
    live_errors: list[float]
    uncorrected_errors: list[float]
    append_ready_ms: list[float]
    capture_costs: list[int]
    playback_costs: list[int]


async def loopback_truth(trials: int) -> LoopbackResult:
    """Speaker and a listener on the speaker's monitor: truncation and live positions vs truth."""
    from voicecli.audio import MicBlock, RealBackend
    from voicecli.audio.capture import Capture
    from voicecli.audio.playback import Playback

    try:
        from voicecli.protocol.encode import audio_append
    except ImportError:  # pragma: no cover - the protocol package is someone else's
        import base64

        def audio_append(audio: bytes) -> dict[str, Any]:
            return {"type": "input_audio_buffer.append", "audio": base64.b64encode(audio).decode()}

    capture_probe, playback_probe = Probe(), Probe()
    result = LoopbackResult([], [], [], [], [], [])
    blocks: list[MicBlock] = []
    ready: list[float] = []
    rng = np.random.default_rng(11)

    async def listen(listener: RealBackend) -> None:
        async for block in listener.mic_blocks():
            text = json.dumps(audio_append(block.pcm))  # ready for the socket
            ready.append(time.monotonic())
            blocks.append(block)
            del text

    os.environ["PULSE_SOURCE"] = "spk.monitor"  # read when the capture stream opens
    with probed(Capture, capture_probe, output=False), probed(Playback, playback_probe, True):
        listener = RealBackend(use_output=False)
        speaker = RealBackend(use_input=False)
        await listener.start()
        del os.environ["PULSE_SOURCE"]
        await speaker.start()
        task = asyncio.create_task(listen(listener))
        await asyncio.sleep(0.3)
        for trial in range(trials):
            signal = offset_chirp(2.0, seed=100 + trial)
            item = f"trial_{trial}"
            capture_probe.reset()
            blocks.clear()
            ready.clear()
            played_before = speaker.jitter._frames_played
            speaker.play(signal.tobytes(), item, 0)
            speaker.end_part(item, 0)
            live: list[tuple[float, int, int]] = []
            cut_at = time.monotonic() + rng.uniform(0.5, 1.5)
            while time.monotonic() < cut_at:
                await asyncio.sleep(rng.uniform(0.03, 0.12))
                handed = (speaker.jitter._frames_played - played_before) * 1000 // RATE
                live.append((time.monotonic(), speaker.played_ms(item, 0), handed))
            speaker.clear()
            truncate_ms = speaker.played_ms(item, 0)
            await asyncio.sleep(0.35)
            offsets = trial_truth(signal, blocks)
            if offsets is None:
                continue
            first, arrival, sound_end = offsets
            result.truncate_errors.append(truncate_ms - (sound_end - first) * 1000 / RATE)
            for at, position, handed in live[1:]:
                truth = np.count_nonzero(arrival[first : first + signal.size] <= at) * 1000 / RATE
                if 0 < truth < signal.size * 1000 / RATE:
                    result.live_errors.append(position - truth)
                    result.uncorrected_errors.append(handed - truth)
            count = min(len(ready), len(capture_probe.entries))
            result.append_ready_ms += [
                (ready[i] - capture_probe.entries[i]) * 1000 for i in range(count)
            ]
            result.capture_costs += capture_probe.costs_ns
        await speaker.stop()
        await listener.stop()
        await task
    result.playback_costs = playback_probe.costs_ns
    return result


def trial_truth(signal: np.ndarray, blocks: list[Any]) -> tuple[int, np.ndarray, int] | None:
    """(where the signal starts in the capture, arrival time per sample, where sound ends)."""
    captured = np.frombuffer(b"".join(block.pcm for block in blocks), "<i2")
    mark = signal[2400:2464]
    for index in np.nonzero(captured == mark[0])[0]:
        if np.array_equal(captured[index : index + mark.size], mark):
            first = int(index) - 2400
            break
    else:
        return None
    size = len(blocks[0].pcm) // 2
    arrival = np.concatenate([b.captured_at + np.arange(size) / RATE for b in blocks])
    sound_end = int(np.nonzero(captured)[0][-1]) + 1
    return first, arrival, sound_end


# --- offline microbenchmarks (no device) ------------------------------------------------------


def offline_costs() -> dict[str, tuple[float, float]]:
    from voicecli.audio.jitter import JitterBuffer

    buffer = JitterBuffer(RATE, prebuffer_ms=0, capacity_ms=2000)
    out = np.zeros(BLOCK, np.int16)
    chunk = offset_chirp(0.1)
    samples = []
    for index in range(20000):
        if buffer.buffered < 4800:
            buffer.write(chunk, "item", 0)
        start = time.perf_counter_ns()
        buffer.read_into(out, index * 0.02)
        samples.append(time.perf_counter_ns() - start)
    read_cost = percentiles(np.array(samples) / 1000)

    indata = bytearray(np.arange(BLOCK, dtype=np.int16).tobytes())  # a raw stream's block
    slot = memoryview(np.zeros(BLOCK, np.int16)).cast("B")
    loops = 200_000

    def copy_into_slot() -> None:
        slot[:] = indata

    pool_ns = min(timeit.repeat(copy_into_slot, number=loops, repeat=3))
    bytes_ns = min(timeit.repeat(lambda: bytes(indata), number=loops, repeat=3))
    return {
        "read_into": read_cost,
        "copy": (pool_ns / loops * 1e9, bytes_ns / loops * 1e9),
    }


# --- the same schedules on a simulated consumer (no device, many sessions) -------------------


def simulated_session(
    make: Callable[..., Schedule],
    seeds: list[int],
    seconds: float,
    phase: float,
    timed: bool = True,
    stretch: bool = True,
) -> tuple[list[int], list[float], list[float]]:
    """One session through a `JitterBuffer` with the backend's defaults, its consumer a steady
    20 ms callback: (gaps per response, prebuffer in ms at each response's start, ms stretched
    per response). Chunks are written when due, before the callback of that moment, and the
    part is finished after its last chunk (its done event); a low-water signal is answered
    with `stretch()` before the next callback, as the loop does between two device callbacks.
    `timed=False` passes no arrival times (the fixed prebuffer and its raise-on-underrun
    fallback only); `stretch=False` never stretches."""
    from voicecli.audio.jitter import JitterBuffer

    buffer = JitterBuffer(
        RATE, prebuffer_ms=60, max_prebuffer_ms=200, max_stretch_ms=200 if stretch else 0
    )
    out = np.zeros(BLOCK, np.int16)
    tick = phase  # in blocks: the consumer's phase is a fraction of one
    counts, targets, stretched = [], [], []
    lows = 0
    for index, seed in enumerate(seeds):
        schedule = make(offset_chirp(seconds, seed), seed)
        start = (tick + 10) * BLOCK / RATE  # 200 ms after the previous response drained
        before = buffer.stats().stretched
        produced, next_chunk = [], 0
        while next_chunk < len(schedule) or buffer.buffered > 0:
            now = tick * BLOCK / RATE
            while next_chunk < len(schedule) and start + schedule[next_chunk][0] <= now:
                at, pcm = schedule[next_chunk]
                buffer.write(pcm, f"r{index}", 0, now=start + at if timed else None)
                if next_chunk == 0:
                    targets.append(buffer.prebuffer * 1000 / RATE)
                next_chunk += 1
                if next_chunk == len(schedule):
                    buffer.finish(f"r{index}", 0)
            buffer.read_into(out, now)
            if buffer.low_signals != lows:
                lows = buffer.low_signals
                buffer.stretch()
            produced.append(out.copy())
            tick += 1
        counts.append(gaps(np.concatenate(produced))[0])
        stretched.append((buffer.stats().stretched - before) * 1000 / RATE)
        tick += 15  # 300 ms of idle callbacks before the next response
        for _ in range(15):
            buffer.read_into(out, tick * BLOCK / RATE)
    return counts, targets, stretched


SIMULATED_VARIANTS = {
    "ours": {"timed": True, "stretch": True},
    "no stretching": {"timed": True, "stretch": False},
    "fixed 60 ms": {"timed": False, "stretch": False},
}


def simulated_rows(name: str, make: Callable[..., Schedule], sessions: int) -> list[Row]:
    rng = np.random.default_rng(0)
    phases = rng.uniform(0, 1, sessions)
    found: dict[str, tuple[int, int, list[float], list[float]]] = {}
    for variant, options in SIMULATED_VARIANTS.items():
        first = later = 0
        targets: list[float] = []
        stretched: list[float] = []
        for session in range(sessions):
            seeds = [10 * session + response + 1 for response in range(5)]
            counts, starts, lengthened = simulated_session(
                make, seeds, 2.0, phases[session], **options
            )
            first += counts[0]
            later += sum(counts[1:])
            targets += starts[1:]
            stretched += lengthened
        found[variant] = (first, later, targets, stretched)
    first, later, targets, stretched = found["ours"]
    others = "; ".join(
        f"{variant}: {found[variant][0]} / {found[variant][1]}"
        for variant in SIMULATED_VARIANTS
        if variant != "ours"
    )
    return [
        (
            f"Underruns, {name}, simulated consumer ({sessions} sessions x 5 responses)",
            f"first responses {first} gaps in {sessions}, later ones {later} in "
            f"{4 * sessions}; {others}",
            f"steady 20 ms callbacks, no device; prebuffer at later responses' start: median "
            f"{np.median(targets):.0f} ms, max {np.max(targets):.0f} ms; "
            f"{stretch_text(stretched)}",
        )
    ]


def stretch_text(stretched: list[float]) -> str:
    """What stretching cost: how many responses it lengthened, and by how much."""
    touched = [ms for ms in stretched if ms > 0]
    if not touched:
        return f"stretched: none of {len(stretched)} responses"
    return (
        f"stretched: {len(touched)} of {len(stretched)} responses, by median "
        f"{np.median(touched):.0f} ms, max {max(touched):.0f} ms"
    )


# --- the table --------------------------------------------------------------------------------

HOW = """How it is measured:

- Callback costs: `perf_counter_ns` around the engine's own callback on the live streams of
  the scenarios in the table; "naive" is `bench/audio_naive.py` (a list of chunks under a
  lock, popped and concatenated in the callback, no prebuffer) on the same device and
  schedules.
- Underruns: each scenario is 5 sessions (a new backend each, so the delay estimator starts
  from nothing) of 5 responses of a signal that is never zero, each session with its own
  seeds; every block the callback produced is kept, and a gap is a run of silence inside a
  response. The first response of a session has nothing to learn from, so its figure is
  given apart. Ours and the naive player run at the same time on the same schedules (two
  streams on the same sink). Jitter: deltas of 20-120 ms due at real time, each 0-80 ms
  late, in order. Bursts: 300-800 ms of audio sent at 10x real time, each burst due at real
  time + 0-80 ms. The backend is told the response's audio is done right after its last
  delta (as the engine does on the done event). "Stretched": responses the player
  lengthened by repeating pitch periods while it ran low (see `JitterBuffer.stretch`), and
  by how much: the price of the gaps it avoided.
- What adapting costs: the prebuffer in effect when each response's first delta was
  written, and the time from that `play()` to the callback that handed the first sample.
- Simulated consumer: the same schedules (seeds 1-5, 11-15, ... per session) through a
  `JitterBuffer` with the backend's defaults, drained by a steady 20 ms callback without a
  device, a low-water signal answered with `stretch()` before the next callback; beside it
  the same without stretching, and without arrival times either (the fixed 60 ms and its
  raise-on-underrun only); enough sessions to show rates that 25 real responses cannot. A
  real device's callbacks are less regular (on these PulseAudio null sinks they drift up to
  about 6 ms early and back).
- Mic block -> append: from the capture callback's entry to `json.dumps(audio_append(pcm))`
  finishing on the asyncio loop.
- First delta and clear(): from the `play()` / `clear()` call to the callback that hands the
  first sample / the last faded sample; "at DAC" adds the block's DAC time from PortAudio.
- Truncation: a second backend captures `spk.monitor` (what reached the speaker's sink). After
  `clear()` at a random moment, `played_ms` is compared with the samples of the item found in
  that capture up to the end of the fade. While playing, `played_ms` at random moments is
  compared with how many samples had arrived at the monitor by then (capture timestamps from
  PortAudio's inputBufferAdcTime); "without latency correction" uses the samples handed to
  the device instead.
"""


def machine() -> str:
    from voicecli.audio.devices import load_sounddevice

    sd = load_sounddevice()
    return (
        f"{platform.system()} {platform.release()}, {cpu_name()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"sounddevice {sd.__version__}, {sd.get_portaudio_version()[1]}; "
        "output and input: PulseAudio null sinks at 24 kHz via ALSA"
    )


def ratio(naive: float, ours: float) -> str:
    if ours == 0:
        return "naive only" if naive else "both 0"
    return f"{naive / ours:.1f}x"


async def run(quick: bool) -> list[Row]:
    repeats = 3 if quick else 8
    sessions, per_session = (2, 2) if quick else (5, 5)
    seconds = 2.0
    rows: list[Row] = []

    ours_costs: list[int] = []
    naive_costs: list[int] = []
    for name, make in (("1x + 0-80 ms jitter", jittered), ("10x bursts", bursty)):
        found = await underruns(make, sessions, per_session, seconds, ours_costs, naive_costs)
        rows += underrun_rows(name, found, seconds)
        rows += simulated_rows(name, make, 50 if quick else 200)

    loopback = await loopback_truth(repeats)
    median, p99 = percentiles(np.array(loopback.playback_costs + ours_costs) / 1000)
    naive_median, naive_p99 = percentiles(np.array(naive_costs) / 1000)
    rows.insert(
        0,
        (
            "Playback callback cost per 20 ms block (live)",
            f"median {median:.0f} us, p99 {p99:.0f} us",
            f"naive list+lock callback: median {naive_median:.0f} us, p99 {naive_p99:.0f} us",
        ),
    )
    median, p99 = percentiles(np.array(loopback.capture_costs) / 1000)
    rows.insert(
        1,
        (
            "Capture callback cost per 20 ms block (live)",
            f"median {median:.0f} us, p99 {p99:.0f} us",
            "",
        ),
    )
    offline = offline_costs()
    median, p99 = offline["read_into"]
    pool_ns, bytes_ns = offline["copy"]
    rows.insert(
        2,
        (
            "JitterBuffer.read_into alone (no device, 20k blocks)",
            f"median {median:.1f} us, p99 {p99:.1f} us",
            f"capture copy: pool slot {pool_ns:.0f} ns vs bytes(indata) {bytes_ns:.0f} ns",
        ),
    )
    median, p99 = percentiles(loopback.append_ready_ms)
    rows.append(
        (
            "Mic block -> base64 append JSON ready",
            f"median {median:.2f} ms, p99 {p99:.2f} ms",
            "from the capture callback to json.dumps(audio_append(...)) on the loop",
        )
    )
    first = await first_sample(repeats)
    rows.append(
        (
            "First delta (100 ms) -> first sample handed / at DAC",
            f"median {first['100'][0]:.1f} / {first['100dac'][0]:.1f} ms",
            f"p99 {first['100'][1]:.1f} / {first['100dac'][1]:.1f} ms; "
            "= 60 ms prebuffer wait + up to one block, + output latency at the DAC",
        )
    )
    rows.append(
        (
            "First delta (20 ms deltas at 1x) -> handed / at DAC",
            f"median {first['20'][0]:.1f} / {first['20dac'][0]:.1f} ms",
            f"p99 {first['20'][1]:.1f} / {first['20dac'][1]:.1f} ms",
        )
    )
    cleared = await clear_to_silence(repeats)
    rows.append(
        (
            "clear() -> silence handed / at DAC (15 ms fade included)",
            f"median {cleared['handed'][0]:.1f} / {cleared['dac'][0]:.1f} ms",
            f"p99 {cleared['handed'][1]:.1f} / {cleared['dac'][1]:.1f} ms",
        )
    )
    errors = np.abs(loopback.truncate_errors)
    rows.append(
        (
            f"audio_end_ms after clear() vs loopback capture ({len(errors)} cuts)",
            f"median abs. error {np.median(errors):.1f} ms, max {np.max(errors):.1f} ms",
            "goal <= 20 ms",
        )
    )
    live = np.abs(loopback.live_errors)
    raw = np.abs(loopback.uncorrected_errors)
    rows.append(
        (
            f"played_ms while playing vs loopback ({len(live)} samples)",
            f"median abs. error {np.median(live):.1f} ms, max {np.max(live):.1f} ms",
            f"without latency correction: median {np.median(raw):.1f} ms, max {np.max(raw):.1f} ms",
        )
    )
    return rows


def render(rows: list[Row], elapsed: float) -> str:
    table = markdown_table(("Measure", "Result", "Notes"), rows)
    return f"{table}\n\n(total run time {elapsed:.0f} s)\n"


def results_text(
    rows: list[Row], elapsed: float, command: str, load: tuple[float, float, float]
) -> str:
    """bench/results/audio.md: the table, the machine and the load, and how it was measured."""
    today = datetime.date.today().isoformat()
    return (
        f"# Audio engine benchmarks\n\n`{command}`, {today}.\n\n"
        f"Machine: {machine()}; {load_note(load)}.\n\n"
        f"{render(rows, elapsed)}\n{HOW}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.audio", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--no-write", action="store_true", help="do not update the results file")
    parser.add_argument(
        "--simulate",
        type=int,
        metavar="SESSIONS",
        help="only the underrun schedules on the simulated consumer, this many sessions",
    )
    args = parser.parse_args(argv)
    if args.simulate:
        rows = [
            row
            for name, make in (("1x + 0-80 ms jitter", jittered), ("10x bursts", bursty))
            for row in simulated_rows(name, make, args.simulate)
        ]
        print(markdown_table(("Measure", "Result", "Notes"), rows))
        return 0
    with private_sound_server("bench.audio"):
        load = os.getloadavg()
        started = time.monotonic()
        rows = asyncio.run(run(args.quick))
        elapsed = time.monotonic() - started
        print(render(rows, elapsed))
        if not args.no_write:
            command = ".venv/bin/python -m bench.audio" + (" --quick" if args.quick else "")
            RESULTS.parent.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(results_text(rows, elapsed, command, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
