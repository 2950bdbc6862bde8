"""The jitter buffer's stretching, pure: while a part is still arriving and runs low, the
queued audio is lengthened by repeating pitch periods instead of gapping.

The consumer is played by hand, block by block, as in test_jitter.py; `drive` answers the
consumer's low-water signal the way the playback driver does (on the loop, before the next
device callback).
"""

from __future__ import annotations

import numpy as np
import pytest

from voicecli.audio.jitter import JitterBuffer


RATE = 24000
BLOCK = 480  # 20 ms


def vowel(count: int, start: int = 0, fundamental: float = 150.0) -> np.ndarray:
    """Never-silent voiced audio, continuous across calls by `start` (its sample index)."""
    t = (np.arange(count) + start) / RATE
    wave = 6000 * np.sin(2 * np.pi * fundamental * t) + 2000 * np.sin(4 * np.pi * fundamental * t)
    return np.round(wave + 9000).astype(np.int16)


class Driver:
    """The consumer at 20 ms blocks, and the loop answering its low-water signals."""

    def __init__(self, buffer: JitterBuffer, stretch: bool = True, block: int = BLOCK) -> None:
        self.buffer = buffer
        self.stretch = stretch
        self.out = np.zeros(block, np.int16)
        self.blocks: list[np.ndarray] = []
        self.lows = 0
        self.t = 0.0

    def run(self, blocks: int) -> None:
        for _ in range(blocks):
            self.buffer.read_into(self.out, self.t)
            self.blocks.append(self.out.copy())
            self.t += self.out.size / RATE
            if self.buffer.low_signals != self.lows:
                self.lows = self.buffer.low_signals
                if self.stretch:
                    self.buffer.stretch()

    def played(self) -> np.ndarray:
        return np.concatenate(self.blocks)


def silent_runs(played: np.ndarray) -> int:
    """Runs of silence between the first and the last sound (the audio is never zero)."""
    sound = played != 0
    inside = sound[np.argmax(sound) : sound.size - np.argmax(sound[::-1])]
    return int(np.count_nonzero(np.diff(inside.astype(np.int8)) == -1))


def late_delivery(stretch: bool, late_ms: int = 20) -> tuple[Driver, int]:
    """300 ms of a reply at once, the rest `late_ms` after the speaker needed it (low water
    at its default: the 60 ms prebuffer and two 20 ms blocks)."""
    buffer = JitterBuffer(RATE, prebuffer_ms=60, max_stretch_ms=200 if stretch else 0)
    driver = Driver(buffer, stretch)
    first = vowel(RATE * 300 // 1000)
    buffer.write(first, "a", 0, now=0.0)
    driver.run(3 + 15 + late_ms // 20)  # prebuffer, the 300 ms, then the delay
    rest = vowel(RATE // 2, start=first.size)
    buffer.write(rest, "a", 0, now=driver.t)
    buffer.finish("a", 0)
    driver.run(60)
    return driver, first.size + rest.size


def test_late_audio_gaps_without_stretching_and_not_with_it() -> None:
    plain, _ = late_delivery(stretch=False)
    assert silent_runs(plain.played()) == 1
    assert plain.buffer.stats().underruns == 1

    stretched, total = late_delivery(stretch=True)
    assert silent_runs(stretched.played()) == 0
    stats = stretched.buffer.stats()
    assert stats.underruns == 0
    assert stats.stretches >= 1
    # Every sample of the reply played, and the inserted periods on top.
    assert np.count_nonzero(stretched.played()) == total + stats.stretched


def test_a_stall_longer_than_stretching_can_bridge_still_gaps_and_is_counted() -> None:
    """Stretching slows playback to 1.5x at most and repeats no period twice: it bridges a
    short delay, not a stalled server, which the listener hears as a gap and the stats
    count as an underrun."""
    driver, _ = late_delivery(stretch=True, late_ms=100)
    assert silent_runs(driver.played()) == 1
    stats = driver.buffer.stats()
    assert stats.underruns == 1
    assert 0 < stats.stretched <= RATE * 40 // 1000


def test_the_played_position_counts_the_replys_own_samples_only() -> None:
    driver, total = late_delivery(stretch=True)
    buffer = driver.buffer
    assert buffer.stats().stretched > 0
    assert buffer.received_samples("a", 0) == total
    assert buffer.played_samples("a", 0, driver.t) == total
    # While it played, the position never ran ahead of the original audio handed out, and
    # never went back.
    heard = [
        buffer.played_samples("a", 0, index * BLOCK / RATE) for index in range(len(driver.blocks))
    ]
    assert heard == sorted(heard)
    assert max(heard) == total


def test_a_cut_inside_stretched_audio_reports_the_original_position() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60)
    driver = Driver(buffer)
    buffer.write(vowel(RATE // 5), "a", 0, now=0.0)
    driver.run(3 + 8)  # into the stretching: 200 ms queued, low water at 80 ms
    assert buffer.stats().stretched > 0
    buffer.clear()
    driver.run(2)
    heard = buffer.played_samples("a", 0, driver.t)
    # Stream samples handed out minus the periods inserted before the cut: never more.
    handed = buffer.stats().frames_played
    assert heard <= handed
    assert heard >= handed - buffer.stats().stretched
    assert heard <= RATE // 5


def test_stretching_never_touches_what_the_consumer_may_be_reading() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60)
    driver = Driver(buffer, stretch=False)
    buffer.write(vowel(RATE // 10), "a", 0, now=0.0)  # 100 ms
    driver.run(3 + 2)  # playing, 60 ms left: below low water
    assert buffer.low_signals > 0
    ring, capacity = buffer._ring  # noqa: SLF001 - the exact samples are the point
    read = buffer._read_pos  # noqa: SLF001
    guarded = ring[read % capacity : read % capacity + BLOCK + RATE // 200].copy()
    assert buffer.stretch() > 0
    np.testing.assert_array_equal(ring[read % capacity : read % capacity + guarded.size], guarded)


def test_a_finished_part_is_not_stretched_and_the_consumer_stops_signalling() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60)
    driver = Driver(buffer)
    buffer.write(vowel(RATE // 5), "a", 0, now=0.0)
    buffer.finish("a", 0)
    driver.run(20)
    assert buffer.low_signals == 0
    assert buffer.stats().stretched == 0
    assert buffer.stretch() == 0


def test_a_finish_before_the_first_audio_counts_too() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60)
    buffer.finish("a", 0)
    buffer.write(vowel(RATE // 5), "a", 0, now=0.0)
    Driver(buffer).run(20)
    assert buffer.stats().stretched == 0


def test_stretching_is_capped_per_talk_spurt_and_the_cap_resets_with_the_next() -> None:
    # A high low water: stretching would go on for much longer than the cap allows.
    buffer = JitterBuffer(RATE, prebuffer_ms=60, low_water_ms=400, max_stretch_ms=50)
    driver = Driver(buffer)
    buffer.write(vowel(RATE // 2), "a", 0, now=0.0)  # then nothing more: a stalled delivery
    driver.run(60)
    first = buffer.stats().stretched
    assert RATE * 35 // 1000 <= first <= RATE * 50 // 1000
    assert buffer.stats().underruns == 0  # running out is not a gap until the part goes on
    signals = buffer.low_signals
    driver.run(5)
    assert buffer.low_signals == signals  # used up: the consumer stopped signalling
    buffer.write(vowel(RATE // 2), "b", 0, now=driver.t)  # the next reply: a new spurt
    driver.run(60)
    assert buffer.stats().stretched - first >= RATE * 35 // 1000


def test_the_delay_estimate_is_the_senders_not_the_stretched_audios() -> None:
    """Inserted periods delay playback, not delivery: the spread learnt is the same."""
    spreads = []
    for stretch in (False, True):
        buffer = JitterBuffer(RATE, prebuffer_ms=60, max_stretch_ms=200 if stretch else 0)
        driver = Driver(buffer, stretch)
        position = 0
        for index in range(20):  # 40 ms chunks due at real time, every third 50 ms late
            due = position / RATE + (0.05 if index % 3 == 2 else 0.0)
            while driver.t < due:
                driver.run(1)
            chunk = vowel(RATE * 40 // 1000, start=position)
            buffer.write(chunk, "a", 0, now=due)
            position += chunk.size
        spreads.append(buffer.stats().spurt_spread)
        if stretch:
            assert buffer.stats().stretched > 0
    assert spreads[0] == spreads[1] > 0


@pytest.mark.parametrize("late_ms", [0, 20])
def test_a_delivery_later_than_the_prebuffer_allows_plays_on_without_a_gap(late_ms: int) -> None:
    driver, _ = late_delivery(stretch=True, late_ms=late_ms)
    assert silent_runs(driver.played()) == 0


def test_threads_stretching_while_the_consumer_plays_keeps_the_reply_exact() -> None:
    """Real threads, as with PortAudio: a producer that delivers late and stretches on every
    low-water signal, a consumer pulling blocks 4x faster than real time. Whatever was
    inserted, the audio the listener heard of the reply's own samples is the reply, in
    order: the stream read back through the part's spans equals what was written."""
    import threading
    import time

    buffer = JitterBuffer(RATE, prebuffer_ms=60, max_stretch_ms=1000, capacity_ms=200)
    reply = vowel(RATE * 3)
    heard: dict[int, int] = {}  # stream position -> sample, as the consumer handed it out
    done = threading.Event()

    def consume() -> None:
        out = np.zeros(BLOCK, np.int16)
        position = 0
        while not done.is_set() or buffer.buffered:
            count = buffer.read_into(out, 0.0)
            heard.update(enumerate(out[:count].tolist(), start=position))
            position += count
            time.sleep(0.005)

    consumer = threading.Thread(target=consume)
    consumer.start()
    rng = np.random.default_rng(7)
    lows = written = 0
    while written < reply.size:
        size = int(rng.integers(1, 6)) * BLOCK
        buffer.write(reply[written : written + size], "a", 0)
        written += size
        deadline = time.monotonic() + rng.uniform(0.0, 0.04)
        while time.monotonic() < deadline:
            if buffer.low_signals != lows:
                lows = buffer.low_signals
                buffer.stretch()
            time.sleep(0.001)
    buffer.finish("a", 0)
    done.set()
    consumer.join(timeout=30)
    assert buffer.stats().stretches >= 5
    part = buffer._parts[("a", 0)]  # noqa: SLF001 - the spans are what is checked
    own = [heard[p] for start, end, carried in part.spans if carried for p in range(start, end)]
    np.testing.assert_array_equal(np.array(own, np.int16), reply)


def test_no_period_is_repeated_twice_in_a_row_however_long_the_stall() -> None:
    """Repeating inserted audio again would freeze the voice on one period (a buzz): every
    inserted period is followed by at least as much of the reply's own audio."""
    buffer = JitterBuffer(RATE, prebuffer_ms=60, low_water_ms=300, max_stretch_ms=1000)
    driver = Driver(buffer)
    reply = vowel(RATE // 2)
    buffer.write(reply, "a", 0, now=0.0)
    driver.run(60)  # until it has all played: a stall after it
    assert buffer.stats().stretches >= 3
    assert buffer.buffered == 0
    spans = buffer._parts[("a", 0)].spans  # noqa: SLF001 - the spans are what is checked
    for index, (start, end, carried) in enumerate(spans):
        if not carried:
            assert end - start <= RATE * 15 // 1000  # one period
            following = spans[index + 1]
            assert following[2] >= end - start
    played = driver.played()
    stream = played[int(np.argmax(played != 0)) :]
    own = [stream[p] for s, e, carried in spans if carried for p in range(s, e)]
    np.testing.assert_array_equal(np.array(own, np.int16), reply)
    assert buffer.played_samples("a", 0, driver.t) == reply.size


@pytest.mark.parametrize("block_ms", [10, 20, 40, 100])
def test_low_water_follows_the_devices_block(block_ms: int) -> None:
    """The default low water is the prebuffer plus two of the consumer's blocks, whatever
    their length: with 100 ms blocks a fixed 80 ms would leave nothing past the blocks
    `stretch()` must not touch. Here the rest of the reply comes just in time: stretching
    has run while the queue was low, and every sample of the reply played."""
    block = RATE * block_ms // 1000
    buffer = JitterBuffer(RATE, prebuffer_ms=60)
    driver = Driver(buffer, block=block)
    first = vowel(RATE * 300 // 1000)
    buffer.write(first, "a", 0, now=0.0)
    driver.run(-(-(RATE * 360 // 1000) // block))  # the prebuffer wait and the 300 ms
    rest = vowel(RATE // 2, start=first.size)
    buffer.write(rest, "a", 0, now=driver.t)
    buffer.finish("a", 0)
    driver.run(2 * RATE // block)
    stats = buffer.stats()
    assert stats.stretched >= RATE * 10 // 1000
    assert silent_runs(driver.played()) == 0
    assert np.count_nonzero(driver.played()) == first.size + rest.size + stats.stretched
