"""The jitter buffer, pure: prebuffer, wrap-around, underruns, clear with fade, played positions.

No audio devices: the tests play the consumer themselves, block by block, with explicit DAC
times, so every case is deterministic.
"""

from __future__ import annotations

import threading
import tracemalloc

import numpy as np
import pytest

from voicecli.audio.jitter import JitterBuffer


RATE = 24000
BLOCK = 480  # 20 ms


def ramp(count: int, start: int = 1) -> np.ndarray:
    """Distinct, recognisable samples: start, start+1, ... (wrapping inside int16)."""
    return ((np.arange(count) + start) % 30000 + 1).astype(np.int16)


def pull(buffer: JitterBuffer, blocks: int, t0: float = 0.0, block: int = BLOCK) -> np.ndarray:
    """Run the consumer for `blocks` blocks; block i reaches the DAC at t0 + i * block/RATE."""
    out = np.zeros(block, np.int16)
    chunks = []
    for index in range(blocks):
        buffer.read_into(out, t0 + index * block / RATE)
        chunks.append(out.copy())
    return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def test_prebuffer_waits_its_time_then_plays_exactly() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60)
    buffer.write(ramp(960))
    assert not pull(buffer, 3).any()  # 60 ms of waiting
    buffer.write(ramp(960, start=961))
    played = pull(buffer, 5)
    assert np.array_equal(played[:1920], ramp(1920))
    assert not played[1920:].any()


def test_prebuffer_waits_even_when_a_big_delta_arrives_first() -> None:
    """A fixed wait, not a fixed amount: the slack that absorbs the next delta being late."""
    buffer = JitterBuffer(RATE, prebuffer_ms=60)
    buffer.write(ramp(24000))
    assert not pull(buffer, 3).any()
    assert np.array_equal(pull(buffer, 1), ramp(480))


def test_prebuffer_deadline_plays_a_short_tail_after_waiting() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60)
    buffer.write(ramp(240))  # a 10 ms tail that will never reach 60 ms
    silent = pull(buffer, 3)  # 60 ms of waiting
    assert not silent.any()
    played = pull(buffer, 1)
    assert np.array_equal(played[:240], ramp(240))


def test_zero_prebuffer_plays_at_once() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0)
    buffer.write(ramp(100))
    assert np.array_equal(pull(buffer, 1)[:100], ramp(100))


@pytest.mark.parametrize("seed", range(12))
def test_wrap_around_keeps_every_sample_in_order(seed: int) -> None:
    rng = np.random.default_rng(seed)
    capacity_ms = 50  # 1200 samples: the stream wraps many times
    buffer = JitterBuffer(
        RATE, prebuffer_ms=0, capacity_ms=capacity_ms, max_capacity_ms=50, adaptive=False
    )
    block = int(rng.integers(64, 600))
    out = np.zeros(block, np.int16)
    sent, got = [], []
    position = 1
    for _ in range(400):
        if buffer.buffered < 1200 and rng.random() < 0.6:
            count = int(rng.integers(1, 1200 - buffer.buffered + 1))
            chunk = ramp(count, start=position)
            position += count
            assert buffer.write(chunk) == count
            sent.append(chunk)
        used = buffer.read_into(out, 0.0)
        got.append(out[:used].copy())
    got.append(pull(buffer, 1200 // block + 2, block=block))
    sent_all, got_all = np.concatenate(sent), np.concatenate(got)
    assert np.array_equal(got_all[got_all != 0][: sent_all.size], sent_all)
    assert buffer.stats().dropped == 0


def test_underrun_zero_fills_counts_and_rearms_prebuffer() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=40, adaptive=False)
    buffer.write(ramp(960), "a", 0)
    played = pull(buffer, 5)  # 40 ms wait, 40 ms of audio, then a dry block
    assert not played[:960].any()
    assert np.array_equal(played[960:1920], ramp(960))
    assert not played[1920:].any()
    assert buffer.stats().dry_events == 1
    buffer.write(ramp(960, start=961), "a", 0)  # the same part continues: a real gap
    assert buffer.stats().underruns == 1
    assert not pull(buffer, 2).any()  # re-armed: waits 40 ms again
    assert np.array_equal(pull(buffer, 2), ramp(960, start=961))


def test_running_dry_at_the_end_of_a_part_is_not_an_underrun() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0)
    buffer.write(ramp(480), "a", 0)
    pull(buffer, 3)
    buffer.write(ramp(480), "b", 0)
    pull(buffer, 3)
    stats = buffer.stats()
    assert stats.dry_events == 2
    assert stats.underruns == 0


def test_adaptive_prebuffer_grows_by_the_gap_and_is_capped() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60, max_prebuffer_ms=200)
    buffer.write(ramp(2400), "a", 0)
    pull(buffer, 3 + 5 + 2)  # wait, 100 ms of audio, then 40 ms dry
    buffer.write(ramp(2400), "a", 0)
    assert buffer.stats().underruns == 1
    assert buffer.prebuffer == 1440 + 960  # grew by the 40 ms gap
    for _ in range(3):
        pull(buffer, 20)  # wait (up to 200 ms), play 100 ms, run dry
        buffer.write(ramp(2400), "a", 0)
    assert buffer.stats().underruns == 4
    assert buffer.prebuffer == 4800  # capped at 200 ms
    fixed = JitterBuffer(RATE, prebuffer_ms=60, adaptive=False)
    for _ in range(3):
        fixed.write(ramp(2400), "a", 0)
        pull(fixed, 15)
    assert fixed.prebuffer == 1440


def test_clear_fades_what_would_play_next_and_drops_the_rest() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0, fade_ms=15)
    loud = np.full(24000, 20000, np.int16)
    buffer.write(loud, "a", 0)
    pull(buffer, 2)
    buffer.clear()
    cut = pull(buffer, 3)
    fade = cut[:360]
    assert fade[0] > 19000 and fade[-1] == 0
    assert np.all(np.diff(fade.astype(np.int32)) <= 0)  # monotone fade
    assert np.max(np.abs(np.diff(fade.astype(np.int32)))) <= 20000 / 360 + 1
    assert not cut[360:].any()
    stats = buffer.stats()
    assert stats.buffered == 0
    assert stats.frames_played == 960 + 360


def test_clear_without_fade_is_a_hard_cut() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0, fade_ms=0)
    buffer.write(np.full(4800, 20000, np.int16))
    pull(buffer, 1)
    buffer.clear()
    assert not pull(buffer, 1).any()


def test_clear_fades_over_what_is_left_when_less_than_the_fade_is_queued() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0, fade_ms=15)
    buffer.write(np.full(480 + 100, 20000, np.int16))
    pull(buffer, 1)
    buffer.clear()
    cut = pull(buffer, 1)
    assert cut[99] == 0 and cut[0] > 19000
    assert not cut[100:].any()


def test_clear_while_prebuffering_drops_without_playing() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60)
    buffer.write(ramp(480), "a", 0)
    buffer.clear()
    assert not pull(buffer, 5).any()
    assert buffer.played_samples("a", 0, now=1.0) == 0


def test_audio_after_a_clear_plays_and_late_audio_of_a_cut_part_is_dropped() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0, fade_ms=15)
    buffer.write(np.full(4800, 1000, np.int16), "old", 0)
    pull(buffer, 1)
    buffer.clear()
    assert buffer.write(np.full(480, 1000, np.int16), "old", 0) == 0  # late delta
    buffer.write(ramp(960), "new", 0)
    played = pull(buffer, 4)
    assert np.array_equal(played[480:1440], ramp(960))
    assert buffer.stats().dropped == 480
    assert buffer.received_samples("new", 0) == 960


def test_played_position_is_corrected_by_output_latency() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0)
    buffer.write(ramp(24000), "a", 0)
    latency = 0.040
    pull(buffer, 10, t0=latency)  # 200 ms handed out; block i reaches the DAC at 40 ms + i*20
    assert buffer.played_samples("a", 0, now=0.0) == 0
    assert buffer.played_samples("a", 0, now=0.030) == 0
    assert buffer.played_samples("a", 0, now=0.050) == 240  # 10 ms past the first DAC time
    assert buffer.played_samples("a", 0, now=0.2) == 160 * 24  # 200 - 40 ms
    assert buffer.played_samples("a", 0, now=5.0) == 4800  # never more than handed out
    assert buffer.played_ms("a", 0, now=0.2) == 160


def test_played_position_per_part_with_several_parts_in_a_row() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0)
    buffer.write(ramp(1200), "item1", 0)
    buffer.write(ramp(600), "item1", 1)
    buffer.write(ramp(2400), "item2", 0)
    pull(buffer, 5)  # 2400 samples handed out at DAC times 0..100 ms
    now = 2400 / RATE
    assert buffer.played_samples("item1", 0, now) == 1200
    assert buffer.played_samples("item1", 1, now) == 600
    assert buffer.played_samples("item2", 0, now) == 600
    assert buffer.played_samples("nope", 0, now) == 0


def test_played_position_stays_put_during_an_underrun() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0, adaptive=False)
    buffer.write(ramp(600), "a", 0)
    pull(buffer, 4)  # 25 ms of audio, then silence
    assert buffer.played_samples("a", 0, now=0.079) == 600
    buffer.write(ramp(600), "a", 0)
    pull(buffer, 2, t0=0.08)
    assert buffer.played_samples("a", 0, now=0.085) == 600 + 120
    assert buffer.played_samples("a", 0, now=1.0) == 1200


def test_cut_part_reports_handed_out_audio_plus_fade_before_and_after_the_cut() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0, fade_ms=15)
    buffer.write(ramp(24000), "a", 0)
    buffer.write(ramp(4800), "b", 0)  # queued behind "a": never heard
    pull(buffer, 10, t0=0.040)  # 4800 samples handed out
    buffer.clear()
    predicted = buffer.played_samples("a", 0, now=0.100)
    assert predicted == 4800 + 360  # final: the device buffer still plays, then the fade
    pull(buffer, 1, t0=0.240)  # the consumer carries out the cut
    assert buffer.played_samples("a", 0, now=0.100) == predicted
    assert buffer.played_samples("a", 0, now=9.0) == predicted
    assert buffer.played_samples("b", 0, now=9.0) == 0


def test_prediction_follows_the_consumer_when_it_ran_before_the_cut() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0, fade_ms=15)
    buffer.write(ramp(24000), "a", 0)
    pull(buffer, 2)
    buffer.clear()
    # The callback raced the clear: one more block went out before it saw the request.
    buffer._clear_seen = buffer._clear_gen
    pull(buffer, 1, t0=0.04)
    buffer._clear_seen = 0
    pull(buffer, 1, t0=0.06)
    assert buffer.played_samples("a", 0, now=1.0) == 1440 + 360


def test_part_never_counts_more_than_received_even_if_written_twice() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0)
    buffer.write(ramp(480), "a", 0)
    buffer.write(ramp(480), "b", 0)
    buffer.write(ramp(480), "a", 0)  # a part that resumes after another part
    pull(buffer, 4)
    assert buffer.received_samples("a", 0) == 960
    assert buffer.played_samples("a", 0, now=0.1) == 960
    assert buffer.played_samples("b", 0, now=0.1) == 480


def test_two_clears_before_the_consumer_runs_resolve_together() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0, fade_ms=15)
    buffer.write(ramp(4800), "a", 0)
    pull(buffer, 1)
    buffer.clear()
    buffer.write(ramp(4800), "b", 0)
    buffer.clear()
    pull(buffer, 2, t0=0.02)
    assert buffer.played_samples("a", 0, now=1.0) == 480 + 360
    assert buffer.played_samples("b", 0, now=1.0) == 0
    assert buffer.buffered == 0


def test_ring_grows_for_a_burst_and_keeps_order_across_the_old_wrap() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0, capacity_ms=100, max_capacity_ms=10_000)
    buffer.write(ramp(2000))
    first = pull(buffer, 3)  # read position is now mid-ring
    burst = ramp(24000, start=2001)
    assert buffer.write(burst) == 24000
    assert buffer.stats().capacity >= 24000 + 560
    rest = pull(buffer, 55)
    whole = np.concatenate([first, rest])
    assert np.array_equal(whole[:26000], ramp(26000))


def test_audio_beyond_the_maximum_capacity_is_dropped_and_counted() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0, capacity_ms=100, max_capacity_ms=200)
    assert buffer.write(ramp(6000)) == 4800
    assert buffer.stats().dropped == 1200
    assert buffer.write(ramp(10)) == 0


def test_bytes_are_little_endian_pcm16_and_a_stray_odd_byte_is_ignored() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0)
    samples = np.array([1, -2, 300, -32768, 32767], np.int16)
    assert buffer.write(samples.astype("<i2").tobytes() + b"\x01") == 5
    assert np.array_equal(pull(buffer, 1)[:5], samples)


def test_heard_position_and_pending_drain_to_zero() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0)
    buffer.write(ramp(960))
    pull(buffer, 3, t0=0.04)
    assert buffer.pending_samples(now=0.04) == 960
    assert buffer.pending_samples(now=0.08) == 0


def test_output_level_follows_what_reaches_the_dac() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=0)
    buffer.write(np.full(960, 16384, np.int16))
    pull(buffer, 4, t0=0.04)
    assert buffer.output_level(now=0.0) == (0.0, 0.0)
    rms, peak = buffer.output_level(now=0.07)
    assert rms == pytest.approx(0.5) and peak == pytest.approx(0.5)
    assert buffer.output_level(now=0.2) == (0.0, 0.0)


def test_output_level_falls_to_zero_when_idle_blocks_follow_the_audio() -> None:
    # Idle blocks keep coming every period after a reply: the level they report is silence,
    # not the reply's last block (a meter stuck on after every reply was the bug).
    buffer = JitterBuffer(RATE, prebuffer_ms=0)
    buffer.write(np.full(BLOCK + BLOCK // 2, 16384, np.int16))
    pull(buffer, 10)
    last_dac = 9 * BLOCK / RATE
    assert buffer.output_level(now=last_dac + 0.001, window=BLOCK) == (0.0, 0.0)
    # Half a block of audio then silence: the window ending just after the audio counts the
    # silence it covers, so the RMS is between full level and zero.
    rms, peak = buffer.output_level(now=(BLOCK + BLOCK // 2 + BLOCK // 4) / RATE, window=BLOCK)
    assert 0.0 < rms < 0.5 and peak == pytest.approx(0.5)


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(0)
    with pytest.raises(ValueError):
        JitterBuffer(RATE, prebuffer_ms=-1)


def test_consumer_allocates_no_sample_buffers() -> None:
    """Big blocks make any per-call temporary visible: one block of 2 s is 96 kB."""
    block = 48000
    buffer = JitterBuffer(RATE, prebuffer_ms=0, capacity_ms=5000, max_capacity_ms=5000)
    out = np.zeros(block, np.int16)
    chunk = ramp(30000)
    buffer.write(chunk, "a", 0)
    buffer.read_into(out, 0.0)  # warm up
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        for round_ in range(12):  # wrap-around, underrun, prebuffer, fade
            buffer.write(chunk, "a", round_, now=round_ * 2.0)  # the estimator runs too
            if round_ % 4 == 3:
                buffer.clear()
            buffer.read_into(out, round_ * 2.0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak - base < 20_000


def test_threads_producer_and_consumer_keep_every_sample_in_order() -> None:
    """Real threads, as with PortAudio: the GIL-only SPSC protocol must not lose or reorder."""
    buffer = JitterBuffer(RATE, prebuffer_ms=0, capacity_ms=20, max_capacity_ms=60_000)
    total = 24000 * 4
    sent = ramp(total)
    got = np.zeros(total, np.int16)
    received = 0
    done = threading.Event()

    def consumer() -> None:
        nonlocal received
        out = np.zeros(97, np.int16)
        while received < total:
            used = buffer.read_into(out, 0.0)
            got[received : received + used] = out[:used]
            received += used
        done.set()

    thread = threading.Thread(target=consumer)
    thread.start()
    rng = np.random.default_rng(7)
    position = 0
    while position < total:
        count = min(total - position, int(rng.integers(1, 3000)))
        assert buffer.write(sent[position : position + count]) == count
        position += count
    assert done.wait(20)
    thread.join()
    assert np.array_equal(got, sent)
    assert buffer.stats().capacity > 480  # the ring grew while the consumer was reading


# --- the delivery-delay estimator: prebuffer per talk spurt --------------------------------

MS = RATE // 1000  # samples per millisecond


def spurt(
    buffer: JitterBuffer, item: str, arrivals: list[tuple[float, int]], t0: float = 0.0
) -> None:
    """Write one talk spurt: (arrival time after t0, samples) per chunk, in order."""
    for at, count in arrivals:
        buffer.write(ramp(count), item, 0, now=t0 + at)


def finish(buffer: JitterBuffer, t0: float) -> float:
    """Let the consumer play everything queued and run dry; returns the time after."""
    blocks = (buffer.buffered + buffer.prebuffer) // BLOCK + 3
    pull(buffer, blocks, t0=t0)
    assert buffer.buffered == 0
    return t0 + blocks * BLOCK / RATE


def test_delay_is_measured_from_the_spurts_first_chunk() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60)
    # 20 ms chunks: the third is due 40 ms after the first and comes at 70 ms: 30 ms late.
    spurt(buffer, "a", [(0.0, BLOCK), (0.020, BLOCK), (0.070, BLOCK), (0.071, BLOCK)])
    stats = buffer.stats()
    assert stats.spurts == 1
    assert stats.spurt_spread == 30 * MS
    assert buffer.prebuffer == 60 * MS  # nothing changes inside the spurt


def test_chunks_sent_ahead_of_real_time_do_not_widen_the_spread() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60)
    # A burst at 10x: every chunk after the first is early, none is paced.
    spurt(buffer, "a", [(i * 0.002, BLOCK) for i in range(20)])
    assert buffer.stats().spurt_spread == 0


def test_a_paced_chunk_earlier_than_the_first_widens_the_spread() -> None:
    """The first chunk came late: a paced chunk shows how early it could have come."""
    buffer = JitterBuffer(RATE, prebuffer_ms=60)
    arrivals = [
        (0.000, BLOCK),  # delay 0
        (0.005, BLOCK),  # due at 20 ms: delay -15 ms, but it came early (not paced)
        (0.030, BLOCK),  # due at 40: delay -10 ms, came a chunk's length after: paced
        (0.100, BLOCK),  # due at 60: delay +40 ms
    ]
    spurt(buffer, "a", arrivals)
    assert buffer.stats().spurt_spread == (40 + 10) * MS


def test_prebuffer_rises_for_the_next_spurt_and_the_consumer_waits_it() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60, max_prebuffer_ms=200)
    # Four chunks on time, then one due at 80 ms that comes at 160: five paced delays.
    late = [(0.0, BLOCK), (0.020, BLOCK), (0.040, BLOCK), (0.060, BLOCK), (0.160, BLOCK)]
    spurt(buffer, "a", late)
    assert buffer.prebuffer == 60 * MS
    t = finish(buffer, 0.0)
    spurt(buffer, "b", [(0.0, 10 * BLOCK)], t0=t)
    # The 80 ms spread, one spacing between the five paced delays (80 / 4), one block.
    assert buffer.prebuffer == (80 + 20) * MS + BLOCK
    assert buffer.stats().spurts == 2
    played = pull(buffer, 7, t0=t)
    assert not played[: 6 * BLOCK].any()  # waited 120 ms
    assert np.array_equal(played[6 * BLOCK :], ramp(BLOCK))


def test_the_spacing_added_shrinks_as_paced_delays_accumulate() -> None:
    """One spurt with two paced delays says little about the range: the widening is a whole
    spread; calm spurts that follow add evidence and it shrinks, though the spread stays."""
    buffer = JitterBuffer(RATE, prebuffer_ms=60, max_prebuffer_ms=300)
    spurt(buffer, "a", [(0.0, BLOCK), (0.060, BLOCK)])  # 40 ms spread, 2 paced
    t = finish(buffer, 0.0)
    targets = []
    for index in range(3):
        steady = [(i * 0.020, BLOCK) for i in range(5)]  # spread 0, 5 paced
        spurt(buffer, f"calm{index}", steady, t0=t)
        targets.append(buffer.prebuffer)
        t = finish(buffer, t)
    spread = 40 * MS
    assert targets == [
        spread + spread // 1 + BLOCK,  # 2 paced delays seen
        spread + spread // 6 + BLOCK,  # 7
        spread + spread // 11 + BLOCK,  # 12
    ]


def test_the_raised_prebuffer_absorbs_what_the_default_did_not() -> None:
    """Two spurts delivered alike: the first gaps at 60 ms, the second no longer does."""
    buffer = JitterBuffer(RATE, prebuffer_ms=60, max_prebuffer_ms=200)
    arrivals = [(0.0, BLOCK), (0.100, 9 * BLOCK)]  # the second chunk 80 ms late
    t = 0.0
    for item in ("a", "b"):
        out = np.zeros(BLOCK, np.int16)
        chunks = []
        pending = list(arrivals)
        for index in range(25):
            now = t + index * BLOCK / RATE
            while pending and t + pending[0][0] <= now:
                at, count = pending.pop(0)
                buffer.write(ramp(count), item, 0, now=t + at)
            buffer.read_into(out, now)
            chunks.append(out.copy())
        played = np.concatenate(chunks)
        sounding = np.nonzero(played)[0]
        inside = played[sounding[0] : sounding[-1] + 1]
        if item == "a":
            assert not inside.all()  # a gap
        else:
            assert inside.all() and inside.size == 10 * BLOCK  # none
        t += 25 * BLOCK / RATE
    assert buffer.stats().underruns == 1


def test_prebuffer_never_goes_below_the_configured_one_or_above_the_maximum() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60, max_prebuffer_ms=150)
    spurt(buffer, "a", [(0.0, BLOCK), (0.021, BLOCK)])  # 1 ms late: needs 21 ms
    t = finish(buffer, 0.0)
    spurt(buffer, "b", [(0.0, BLOCK), (0.5, BLOCK)], t0=t)  # a 480 ms stall
    assert buffer.prebuffer == 60 * MS  # not lowered to what the first spurt needed
    t = finish(buffer, t)
    spurt(buffer, "c", [(0.0, BLOCK)], t0=t)
    assert buffer.prebuffer == 150 * MS  # the stall asks for more than the maximum


def test_prebuffer_comes_back_down_after_delay_history_calm_spurts() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60, max_prebuffer_ms=200, delay_history=3)
    spurt(buffer, "bad", [(0.0, BLOCK), (0.120, BLOCK)])  # 100 ms late
    t = finish(buffer, 0.0)
    targets = []
    for index in range(5):
        spurt(buffer, f"calm{index}", [(0.0, BLOCK), (0.020, BLOCK)], t0=t)
        targets.append(buffer.prebuffer)
        t = finish(buffer, t)
    # The 100 ms spread stays for 3 spurts, its widening shrinking (2, 4, 6 paced delays),
    # then the calm ones alone ask for less than the configured 60 ms.
    spread = 100 * MS
    assert targets == [
        200 * MS,  # 100 + 100 + one block: clamped to the maximum
        spread + spread // 3 + BLOCK,
        spread + spread // 5 + BLOCK,
        60 * MS,
        60 * MS,
    ]


def test_a_larger_spread_raises_at_once_and_the_largest_recent_one_wins() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60, max_prebuffer_ms=200, delay_history=4)
    t = 0.0
    targets = []
    for index, late in enumerate((0.050, 0.090, 0.070)):
        spurt(buffer, f"r{index}", [(0.0, BLOCK), (0.020 + late, BLOCK)], t0=t)
        targets.append(buffer.prebuffer)
        t = finish(buffer, t)
    spurt(buffer, "last", [(0.0, BLOCK)], t0=t)
    targets.append(buffer.prebuffer)
    # Each spurt has 2 paced delays; the largest spread (90 ms) wins once it is seen.
    assert targets == [
        60 * MS,
        50 * MS * 2 + BLOCK,
        90 * MS + 90 * MS // 3 + BLOCK,
        90 * MS + 90 * MS // 5 + BLOCK,
    ]


def test_new_audio_while_audio_is_queued_continues_the_spurt() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60)
    spurt(buffer, "a", [(0.0, 10 * BLOCK)])
    pull(buffer, 4)
    spurt(buffer, "b", [(0.100, BLOCK)])  # due at 200 ms (after a's 10 blocks): early
    assert buffer.stats().spurts == 1
    assert buffer.stats().spurt_spread == 0


def test_clear_ends_the_spurt_and_barge_in_audio_starts_a_new_one() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60, max_prebuffer_ms=200)
    spurt(buffer, "a", [(0.0, BLOCK), (0.090, 50 * BLOCK)])  # 70 ms late, 1 s queued
    pull(buffer, 6)
    buffer.clear()  # the old audio is still queued: the consumer has not cut yet
    spurt(buffer, "a", [(5.0, BLOCK)])  # a late delta of the cut part: dropped, not measured
    assert buffer.stats().spurts == 1
    # The new response comes seconds after the old spurt's anchor: measured from the old one
    # its delays would be seconds; it is a spurt of its own and on time.
    spurt(buffer, "b", [(5.0, BLOCK), (5.020, BLOCK), (5.040, BLOCK)])
    stats = buffer.stats()
    assert stats.spurts == 2
    assert stats.spurt_spread == 0
    assert buffer.prebuffer == 2 * 70 * MS + BLOCK  # what the cut spurt measured counts
    played = pull(buffer, 1 + 8 + 3, t0=5.0)  # the fade, the 160 ms wait, the new audio
    assert played[:BLOCK].any() and not played[BLOCK : 9 * BLOCK].any()
    assert np.array_equal(played[9 * BLOCK :], np.tile(ramp(BLOCK), 3))


def test_a_gap_inside_a_spurt_raises_the_prebuffer_at_once_and_is_remembered() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60, max_prebuffer_ms=300)
    buffer.write(ramp(2 * BLOCK), "a", 0, now=0.0)
    pull(buffer, 3 + 2 + 2)  # wait 60 ms, play 40 ms, 40 ms dry
    buffer.write(ramp(2 * BLOCK), "a", 0, now=0.140)  # the same part: a gap, not a new spurt
    stats = buffer.stats()
    assert stats.spurts == 1 and stats.underruns == 1
    assert buffer.prebuffer == 60 * MS + 2 * BLOCK  # the fallback, inside the spurt
    assert stats.spurt_spread == 100 * MS  # due at 40 ms, came at 140
    t = finish(buffer, 7 * BLOCK / RATE)
    spurt(buffer, "b", [(0.0, BLOCK)], t0=t)
    assert buffer.prebuffer == 2 * 100 * MS + BLOCK  # 2 paced delays: widened by the spread


def test_a_gap_the_delays_do_not_explain_keeps_the_fallbacks_slack() -> None:
    """The device pulled faster than real time: every chunk was on time, yet it gapped."""
    buffer = JitterBuffer(RATE, prebuffer_ms=60, max_prebuffer_ms=200)
    buffer.write(ramp(4 * BLOCK), "a", 0, now=0.0)
    pull(buffer, 3 + 5)  # the consumer ran ahead: 4 blocks played and one dry by "now"
    buffer.write(ramp(4 * BLOCK), "a", 0, now=0.080)  # due at 80 ms, came at 80: on time
    assert buffer.stats().spurt_spread == 0
    raised = buffer.prebuffer
    assert raised > 60 * MS
    t = finish(buffer, 1.0)
    spurt(buffer, "b", [(0.0, BLOCK)], t0=t)
    assert buffer.prebuffer == raised


def test_without_arrival_times_only_the_underrun_fallback_moves_the_prebuffer() -> None:
    timed = JitterBuffer(RATE, prebuffer_ms=60, max_prebuffer_ms=200)
    untimed = JitterBuffer(RATE, prebuffer_ms=60, max_prebuffer_ms=200)
    for buffer, times in ((timed, True), (untimed, False)):
        buffer.write(ramp(2 * BLOCK), "a", 0, now=0.0 if times else None)
        pull(buffer, 7)
        buffer.write(ramp(2 * BLOCK), "a", 0, now=0.140 if times else None)  # a gap
        finish(buffer, 1.0)
        buffer.write(ramp(BLOCK), "b", 0, now=2.0 if times else None)
        buffer.write(ramp(BLOCK), "b", 0, now=2.5 if times else None)  # 480 ms late
        finish(buffer, 2.0)
        buffer.write(ramp(BLOCK), "c", 0, now=3.0 if times else None)
    assert untimed.stats().spurts == 0 and untimed.stats().spurt_spread == 0
    assert untimed.prebuffer == 60 * MS + 2 * BLOCK  # the gap's raise lasts
    assert timed.stats().spurts == 3
    assert timed.prebuffer == 200 * MS  # b's 480 ms stall, clamped


def test_non_adaptive_buffer_measures_but_keeps_its_prebuffer() -> None:
    buffer = JitterBuffer(RATE, prebuffer_ms=60, adaptive=False)
    spurt(buffer, "a", [(0.0, BLOCK), (0.100, BLOCK)])
    t = finish(buffer, 0.0)
    spurt(buffer, "b", [(0.0, BLOCK)], t0=t)
    assert buffer.stats().spurts == 2
    assert buffer.prebuffer == 60 * MS


def test_delay_history_must_hold_a_spurt() -> None:
    with pytest.raises(ValueError):
        JitterBuffer(RATE, delay_history=0)


# A session of responses delivered like bench/audio.py's bursts, on a steady consumer.


def bursts(seconds: float, rng: np.random.Generator) -> list[tuple[float, int]]:
    """300-800 ms of audio at 10x real time, each burst due at real time + 0-80 ms."""
    total = int(RATE * seconds)
    schedule, position, last = [], 0, 0.0
    while position < total:
        burst_end = min(total, position + int(rng.uniform(0.3, 0.8) * RATE))
        start = position / RATE + rng.uniform(0, 0.080)
        burst_start = position
        while position < burst_end:
            size = min(int(rng.integers(1, 7)) * BLOCK, burst_end - position)
            last = max(last, start + (position - burst_start) / RATE / 10)
            schedule.append((last, size))
            position += size
    return schedule


def session_gaps(timed: bool, seed: int, responses: int = 5) -> list[int]:
    """Gaps per response (runs of silence between the first and last sample played)."""
    rng = np.random.default_rng(seed)
    buffer = JitterBuffer(RATE, prebuffer_ms=60, max_prebuffer_ms=200)
    out = np.zeros(BLOCK, np.int16)
    t = rng.uniform(0, 0.02)  # the consumer's phase
    counts = []
    for response in range(responses):
        schedule = bursts(2.0, rng)
        start, total, played = t + 0.2, sum(count for _, count in schedule), []
        while schedule or sum(np.count_nonzero(block) for block in played) < total:
            while schedule and start + schedule[0][0] <= t:
                at, count = schedule.pop(0)
                buffer.write(ramp(count), f"r{response}", 0, now=start + at if timed else None)
            buffer.read_into(out, t + 0.04)
            played.append(out.copy())
            t += BLOCK / RATE
        sound = np.concatenate(played) != 0
        inside = sound[np.argmax(sound) : sound.size - np.argmax(sound[::-1])]
        counts.append(int(np.count_nonzero(np.diff(inside.astype(np.int8)) == -1)))
    return counts


def test_bursts_at_10x_gap_less_once_the_first_response_taught_the_spread() -> None:
    """Not one seed: 100 sessions of 5 responses. The first response of each session gaps
    alike either way (nothing learnt yet); after it, learning removes nearly every gap the
    fixed 60 ms leaves (seeds 0-399: 2 gaps in the 1600 later responses, against 113)."""
    timed = [session_gaps(True, seed) for seed in range(100)]
    untimed = [session_gaps(False, seed) for seed in range(100)]
    assert [s[0] for s in timed] == [s[0] for s in untimed]
    later_timed = sum(sum(s[1:]) for s in timed)
    later_untimed = sum(sum(s[1:]) for s in untimed)
    assert later_untimed >= 15
    assert later_timed * 8 <= later_untimed
