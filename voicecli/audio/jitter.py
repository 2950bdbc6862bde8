"""The playback jitter buffer: a preallocated single-producer/single-consumer int16 ring.

The producer is the asyncio thread (`write`, `clear`, `played_samples`, `stats`); the consumer is
the audio callback (`read_into`), which never blocks, takes no lock and allocates no sample
buffer: it copies with at most two slice assignments, fades with preallocated scratch arrays
and zero-fills what it cannot play.

Pure: numpy only, no sounddevice, no clock of its own (the caller passes times), so it is
tested exhaustively without audio hardware.

Threads and the GIL
    Every field is written by exactly one side: the producer owns `_write_pos`, the ring
    reference, the parts table and the clear request; the consumer owns `_read_pos`, the
    playing state, the played-block log and the clear acknowledgements. Each side only reads
    the other's fields, and publishes with a single attribute store *after* the data it guards
    (samples before `_write_pos`, the clear target before `_clear_gen`, a log entry before
    `_log_count`). Under CPython's GIL a single attribute store is atomic and stores are seen in
    program order, so no lock is needed. Free-threaded CPython (PEP 703) would need this
    revisited. "No allocation" means no sample buffers: CPython still creates small int and
    numpy-view objects in the callback, which is unavoidable and cheap.

Positions
    Stream positions are absolute sample counts since the buffer was made; the ring index is
    `position % capacity`. Positions never wrap, so "how much is queued" is `write - read`.

Prebuffer and underruns
    Playback starts (and restarts after running dry) once audio has waited `prebuffer` in the
    buffer, measured in output frames, however much is queued by then. Waiting a fixed time
    rather than for a fixed amount is what absorbs delivery jitter: a big first delta would
    otherwise start playback at once with no slack for the next one being late. Simulated with
    bench/audio.py's schedules (3 s responses, deltas 20-120 ms, 0-80 ms late), waiting for
    60 ms *queued* left a gap in 76% of responses, waiting 60 ms *of time* in 12%; the price is
    that the first sample always waits. Running dry while playing zero-fills, re-arms the
    prebuffer and is reported to the producer; the producer counts it as an underrun only when
    the next audio continues the same content part (a gap the listener hears), not when a part
    simply ended.

    How long to wait is learnt per talk spurt: audio the listener hears without a pause. A
    spurt starts with the first chunk written while nothing is queued (unless it continues the
    part that just ran dry: that is a gap inside the spurt) or after a `clear()`. It starts
    playing at a0 + P, its first chunk's arrival plus the wait P, so a chunk at stream offset
    s is heard at a0 + P + s/rate and is late, a gap, when its delay d = (a - a0) - s/rate is
    more than P (less up to one block: the consumer takes whole blocks). Deltas sent at 10x
    real time in bursts, each due at real time + 0-80 ms, reach d = 80 ms: more than the
    60 ms default, and a bigger fixed wait would cost every response its latency. So, with
    `adaptive=True` and arrival times passed to `write(now=...)`, the producer measures d for
    each chunk (a subtraction and a few comparisons; the consumer does nothing new) and keeps
    per spurt the largest d and the smallest d of a *paced* chunk, one that came no sooner
    than the previous chunk's length after it (the sender was not ahead of real time, as the
    first chunk of a spurt never is). Their difference, the spread, is the wait the spurt
    would have needed had its first chunk been as early as its earliest paced one: how late
    a first chunk comes is luck, and the largest d alone under-estimates whenever it came
    late. When a spurt starts, P becomes the largest spread of the last `delay_history`
    spurts, widened by one spacing between the paced delays they saw (the spread over their
    count less one: the next spurt's can fall outside the range seen, most likely when it was
    learnt from one spurt), plus one block; never below the configured prebuffer nor above
    `max_prebuffer`. It follows a worse network after one spurt and comes back down after
    `delay_history` calmer ones, so one bad response does not cost latency for ever.
    On bench/audio.py's bursts and a steady 20 ms consumer (`python -m bench.audio --simulate
    1000`: 1000 sessions of 5 responses), the 4000 responses after each session's first gapped
    284 times with the fixed 60 ms and 14 times with this rule (P at their start: median
    90 ms). While choosing it: P from the largest d alone gave 168 (median 61 ms), from the
    spread without the spacing 27 (82 ms). The first responses, which have nothing to learn
    from, gapped 95 times whatever the rule.

    P does not change inside a spurt except by the fallback: each underrun raises it by the
    gap's length, up to `max_prebuffer`, for the rest of the spurt (which then records at
    least that P, in case the gap came from the device rather than the network). Without
    arrival times only the fallback runs and its raises last. The first spurt has nothing to
    learn from and waits the configured prebuffer. A `clear()` ends the spurt: what it
    measured counts, and barge-in audio after it starts a new one even while the old audio is
    still queued. A stall longer than any allowed wait raises P to `max_prebuffer` only, and
    ages out like any other spurt. The spurt is anchored on its first chunk's arrival, not on
    the consumer's play start: the consumer only knows DAC times, which are the device's
    output latency after the callback that needed the audio, and its wait starts at the
    first callback after a0, so the anchor errs on the safe side by less than a block.

Stretching (when the next delta is late anyway)
    The first response of a session has nothing to learn from, and any response can meet a
    delay beyond what was learnt. For those, playback slows down instead of stopping, as
    WebRTC's NetEQ does ("preemptive expand"): after each block, while the part being played
    is still arriving (not `finish`ed, not cut), the consumer counts a low-water signal when
    less than low water is left queued (one comparison: it does nothing else). The driver
    answers on the loop with `stretch()`, which lengthens the queued audio back towards low
    water by playing pitch periods twice (`voicecli.audio.stretch`: cross-faded, no click,
    pitch unchanged; only where the audio repeats or is near silence; never one period twice
    in a row, so at most 1.5x slower). It rewrites only audio the consumer cannot be reading
    (from one block plus 5 ms past the read position, and it gives up if the consumer moved
    meanwhile), never audio it inserted before (repeating a repeat would freeze the voice),
    and at most `max_stretch_ms` per talk spurt: a stalled delivery still ends in a gap that
    is heard and counted. The parts table keeps which stream positions carry the part's own
    samples and which are inserted (they carry none), so the played position, and
    `audio_end_ms` from it, stays in the original audio; the delay estimate subtracts
    inserted samples, so it measures the sender, not the stretch.
    Low water defaults to the prebuffer plus two blocks (100 ms at the defaults): a reply's
    worth of slack beyond the block the device takes next and the one after it, which
    `stretch()` leaves alone; with less, what it may stretch is too short to bridge a delay.
    On bench/audio.py's schedules and a steady 20 ms consumer (`python -m bench.audio
    --simulate 1000`), see bench/results/audio.md for the figures: with 10x bursts, first
    responses that gap 95 times in 1000 without stretching do not gap. While choosing low
    water (bursts, 1000 sessions): 80 ms left 2 first responses of 1000 gapping and stretched
    61 % of responses by a median 24 ms; 100 ms none, stretching 80 % by a median 36 ms.
    A server that paces its audio at exactly real time keeps the queue at the prebuffer,
    below low water, so its replies are stretched a little at their start.

Clear (barge-in)
    `clear()` records the write position as the clear target and bumps a generation counter.
    At its next run the consumer fades out up to `fade` samples of what it would have played
    next (a linear ramp to zero: no click), then jumps its read position to the target,
    dropping everything queued before the clear, and re-arms the prebuffer. Audio written
    after the clear plays normally; further audio for a part that was cut is dropped.

Played position (for `conversation.item.truncate`)
    The producer records, per (item_id, content_index), the spans of stream positions its audio
    occupies. The consumer logs, per block, when the block's first frame reaches the DAC
    (`dac_time`, from PortAudio's outputBufferDacTime) and which stream positions it carried.
    The heard position at time `now` is read off that log, so it is corrected by the device's
    output latency. A part that was cut by `clear()` is final: everything handed to the device
    before the cut plus the fade is heard (the device's own buffer is not discarded), and no
    more. Both are clamped to the audio received, so a part never counts more than it got.

Played levels (for the echo guard)
    `played_levels(cursor)` reads the same log from the producer side: for each block handed
    to the device since `cursor`, the DAC times and RMS levels of its audio in short spans.
    The samples are still in the ring (the producer only overwrites a position once the ring
    has wrapped past it, and a grown ring keeps what the old one held), so the callback does
    no extra work for it. Silence (idle time, gaps, the zero-filled rest of a block) has no
    entry.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from voicecli.audio.stretch import expand


__all__ = ["JitterBuffer", "JitterStats", "PartKey"]

PartKey = tuple[str, int]
"""(item_id, content_index): the unit the server truncates."""

_LOG_SIZE = 256  # played-block log entries: 5 s of 20 ms blocks, far beyond any output latency
_ACK_SIZE = 64  # clear acknowledgements the producer may fall behind on


@dataclass(frozen=True, slots=True)
class JitterStats:
    """A snapshot of the buffer's counters (taken on the producer side)."""

    buffered: int
    """Samples queued and not yet handed to the device."""
    prebuffer: int
    """Current prebuffer wait in samples (when adaptive: set per talk spurt from recent
    delivery delays, raised after underruns)."""
    underruns: int
    """Gaps inside a content part: the device ran dry and the same part continued later."""
    dry_events: int
    """Times the consumer ran out of audio while playing (underruns plus part/response ends)."""
    frames_out: int
    """Frames the consumer produced, silence included."""
    frames_played: int
    """Stream samples handed to the device (fades included)."""
    zero_frames: int
    """Silent frames produced: idle time, prebuffer waits, gaps and the rest of a cut block."""
    clears: int
    """clear() requests."""
    dropped: int
    """Samples thrown away: audio for a part already cut, or beyond the maximum capacity."""
    capacity: int
    """Current ring capacity in samples."""
    spurts: int = 0
    """Talk spurts seen with arrival times (see "Prebuffer and underruns")."""
    spurt_spread: int = 0
    """The latest talk spurt's delivery spread in samples: its largest delay beyond its
    earliest paced chunk's (see "Prebuffer and underruns"; 0 if none)."""
    stretched: int = 0
    """Samples inserted by `stretch()` (pitch periods played twice while audio ran low)."""
    stretches: int = 0
    """`stretch()` calls that inserted something."""


class _Part:
    __slots__ = ("spans", "cut_gen", "cut_end", "done")

    def __init__(self) -> None:
        # [start, end, carried]: stream positions [start, end), in write order, and how many
        # of the part's own samples they carry: end - start, or 0 for a period `stretch()`
        # inserted (the listener hears audio again, not more of it).
        self.spans: list[list[int]] = []
        self.cut_gen = 0  # clear generation that cut this part (0: not cut)
        self.cut_end: int | None = None  # fade end of that clear, once the consumer did it
        self.done = False  # `finish()`: no more audio comes for it

    def received(self) -> int:
        return sum(carried for _, _, carried in self.spans)

    def heard_until(self, position: int) -> int:
        """The part's own samples at stream positions before `position`."""
        heard = 0
        for start, end, carried in self.spans:
            if position >= end:
                heard += carried
            elif position > start and carried:
                heard += position - start
        return heard

    def add(self, start: int, end: int, carried: int) -> None:
        last = self.spans[-1] if self.spans else None
        if last is not None and last[1] == start and (last[2] > 0) == (carried > 0):
            last[1], last[2] = end, last[2] + carried
        else:
            self.spans.append([start, end, carried])

    def replace_tail(self, start: int, pieces: list[tuple[int, int]]) -> None:
        """The audio from `start` on, inside the last span, became `pieces` of `expand()`.

        That span is the part's own audio up to the write position: `write()` and
        `expand()` both end on input, adjacent input merges into one span, and `stretch()`
        starts past anything it inserted before (repeating a repeat would freeze the voice).
        """
        head = self.spans.pop()[0]
        if head < start:
            self.add(head, start, start - head)
        for length, carried in pieces:
            self.add(start, start + length, carried)
            start += length


class _Spurt:
    """Delivery delays within one talk spurt, in samples (producer side).

    A chunk's delay is how much later than the spurt's first chunk it arrived, beyond what
    its stream offset allows for. A chunk is *paced* when its delay did not fall below the
    previous chunk's: it came at least that chunk's length after it, so the sender was not
    ahead of real time, as the first chunk of a spurt never is.
    """

    __slots__ = (
        "arrived",
        "position",
        "last",
        "latest",
        "earliest",
        "paced",
        "underran",
        "inserted",
    )

    def __init__(self, arrived: float, position: int) -> None:
        self.arrived = arrived  # the first chunk's arrival time
        self.position = position  # and stream position
        self.inserted = 0  # samples `stretch()` added since: not the sender's audio
        self.last = 0  # the latest chunk's delay
        self.latest = 0  # the largest delay: the prebuffer this spurt needed
        self.earliest = 0  # the smallest delay of a paced chunk (the first one's is 0)
        self.paced = 1  # paced chunks, the first one included
        self.underran = False

    def add(self, delay: int) -> None:
        if delay > self.latest:
            self.latest = delay
        if delay >= self.last:
            self.paced += 1
            if delay < self.earliest:
                self.earliest = delay
        self.last = delay

    def spread(self) -> int:
        """The prebuffer the spurt would have needed had its first chunk come as early as
        its earliest paced chunk."""
        return self.latest - self.earliest


class _SpurtRecord(NamedTuple):
    """What a finished talk spurt tells the next one (samples)."""

    spread: int
    paced: int
    floor: int  # the prebuffer an underrun raised it to (0: it did not underrun)


class JitterBuffer:
    """SPSC int16 ring with prebuffer, fade-out clear and played position per content part.

    Args:
        sample_rate: samples per second of the stream (the output device's rate).
        prebuffer_ms: how long audio waits before playback starts or restarts after running
            dry (default 60 ms).
        max_prebuffer_ms: ceiling for the adaptive prebuffer (ignored unless `adaptive`).
        fade_ms: fade-out length on `clear()`; at most one callback block is faded.
        capacity_ms: initial ring size; the producer doubles it when a burst needs more.
        max_capacity_ms: the ring never grows beyond this; audio past it is dropped and counted.
        adaptive: size the prebuffer of each talk spurt from the delivery delays of recent
            ones (when `write` is given arrival times), and raise it by each underrun's gap.
        delay_history: how many recent talk spurts the prebuffer is sized for.
        low_water_ms: while a part is still arriving, the consumer signals (`low_signals`)
            when less than this is left queued after a block; `stretch()` then lengthens the
            queued audio back towards it. None: the prebuffer plus two of the consumer's
            blocks (100 ms at the defaults): a reply's worth of slack beyond the block the
            device takes next and the one after it, which `stretch()` leaves alone.
        max_stretch_ms: the most `stretch()` inserts per talk spurt (0: never stretch): a
            delivery that stalls for longer still gaps, and says so.
    """

    __slots__ = (
        "sample_rate",
        "_fade_len",
        "_max_capacity",
        "_max_target",
        "_adaptive",
        "_base_target",
        # producer-owned
        "_ring",
        "_write_pos",
        "_target",
        "_clear_gen",
        "_clear_target",
        "_parts",
        "_last_key",
        "_cut_keys",
        "_underruns",
        "_dry_seen",
        "_acks_seen",
        "_clears",
        "_dropped",
        "_kept_from",
        "_spurt",
        "_history",
        "_spurts",
        "_last_spread",
        "_low_water",
        "_low_blocks",
        "_max_stretch",
        "_tail_open",
        "_stretch_used",
        "_stretched",
        "_stretches",
        # consumer-owned
        "_read_pos",
        "_playing",
        "_waited",
        "_clear_seen",
        "_dry_events",
        "_lows",
        "_frames_out",
        "_frames_played",
        "_zero_frames",
        "_dry_zeros_from",
        "_last_block",
        "_log_dac",
        "_log_start",
        "_log_count_n",
        "_log_count",
        "_ack_gen",
        "_ack_end",
        "_acks",
        "_ramp_index",
        "_gain",
        "_scratch",
    )

    def __init__(
        self,
        sample_rate: int = 24000,
        *,
        prebuffer_ms: float = 60,
        max_prebuffer_ms: float = 200,
        fade_ms: float = 15,
        capacity_ms: float = 30_000,
        max_capacity_ms: float = 600_000,
        adaptive: bool = True,
        delay_history: int = 8,
        low_water_ms: float | None = None,
        max_stretch_ms: float = 200,
    ) -> None:
        if sample_rate <= 0:
            raise ValueError("sample_rate must be positive")
        if prebuffer_ms < 0 or fade_ms < 0:
            raise ValueError("prebuffer_ms and fade_ms cannot be negative")
        if delay_history < 1:
            raise ValueError("delay_history must be at least 1")
        low_blocks = 0
        if low_water_ms is None:
            low_water_ms, low_blocks = prebuffer_ms, 2
        if low_water_ms < 0 or max_stretch_ms < 0:
            raise ValueError("low_water_ms and max_stretch_ms cannot be negative")
        self.sample_rate = sample_rate
        self._fade_len = int(sample_rate * fade_ms / 1000)
        capacity = max(1, int(sample_rate * capacity_ms / 1000))
        self._max_capacity = max(capacity, int(sample_rate * max_capacity_ms / 1000))
        self._target = int(sample_rate * prebuffer_ms / 1000)
        self._base_target = self._target
        max_target = max(self._target, int(sample_rate * max_prebuffer_ms / 1000))
        self._max_target = min(max_target, self._max_capacity)
        self._adaptive = adaptive

        self._ring: tuple[np.ndarray, int] = (np.zeros(capacity, np.int16), capacity)
        self._write_pos = 0
        self._clear_gen = 0
        self._clear_target = 0
        self._parts: dict[PartKey, _Part] = {}
        self._last_key: PartKey | None = None
        self._cut_keys: list[PartKey] = []  # cut parts whose fade end is not known yet
        self._underruns = 0
        self._dry_seen = 0
        self._acks_seen = 0
        self._clears = 0
        self._dropped = 0
        self._kept_from = 0  # the oldest stream position the ring still holds (after a grow)
        self._spurt: _Spurt | None = None  # the talk spurt being delivered (timed writes)
        self._history: deque[_SpurtRecord] = deque(maxlen=delay_history)
        self._spurts = 0
        self._last_spread = 0
        # Low water in samples, plus this many of the consumer's blocks (known only once it
        # runs: the default is the prebuffer plus two blocks).
        self._low_water = int(sample_rate * low_water_ms / 1000)
        self._low_blocks = low_blocks
        self._max_stretch = int(sample_rate * max_stretch_ms / 1000)
        self._tail_open = False  # the latest part may still grow: stretching it is useful
        self._stretch_used = 0  # inserted in the current spurt
        self._stretched = 0
        self._stretches = 0

        self._read_pos = 0
        self._playing = False
        self._waited = 0  # frames produced while audio waited for the prebuffer
        self._clear_seen = 0
        self._dry_events = 0  # times the consumer ran out while playing
        self._lows = 0  # blocks after which a growing part had less than low water queued
        self._frames_out = 0
        self._frames_played = 0
        self._zero_frames = 0
        self._dry_zeros_from = 0  # silent frames counted before the latest dry block
        self._last_block = 0
        self._log_dac = np.zeros(_LOG_SIZE, np.float64)
        self._log_start = np.zeros(_LOG_SIZE, np.int64)
        self._log_count_n = np.zeros(_LOG_SIZE, np.int64)
        self._log_count = 0
        self._ack_gen = np.zeros(_ACK_SIZE, np.int64)
        self._ack_end = np.zeros(_ACK_SIZE, np.int64)
        self._acks = 0
        fade = max(1, self._fade_len)
        self._ramp_index = np.arange(1, fade + 1, dtype=np.float32)
        self._gain = np.zeros(fade, np.float32)
        self._scratch = np.zeros(fade, np.float32)

    # --- producer side (asyncio thread) ------------------------------------------------------

    def write(
        self,
        pcm: bytes | np.ndarray,
        item_id: str = "",
        content_index: int = 0,
        now: float | None = None,
    ) -> int:
        """Queue PCM16 (little-endian bytes or an int16 array) for one content part.

        `now` is when the audio arrived, on the clock of `read_into`'s `dac_time`; given, it
        feeds the delivery-delay estimate that sizes the next talk spurt's prebuffer (None:
        the prebuffer only grows after underruns).

        Returns the number of samples queued: 0 when the part was already cut by `clear()`
        (late deltas of an interrupted response are not played), fewer than given when the
        ring would grow beyond its maximum.
        """
        samples = _as_samples(pcm)
        key = (item_id, content_index)
        if not samples.size:
            return 0
        part = self._parts.get(key)
        if part is not None and part.cut_gen:
            self._dropped += samples.size
            return 0
        self._note_dry(key)
        if self._write_pos <= self._read_pos and key != self._last_key:
            self._stretch_used = 0  # silence before this audio: a new talk spurt
        if now is not None:
            self._note_arrival(key, now)
        ring, capacity = self._ring
        write = self._write_pos
        free = capacity - (write - self._read_pos)
        if samples.size > free:
            ring, capacity = self._grow(write + samples.size - self._read_pos)
            free = capacity - (write - self._read_pos)
            if samples.size > free:
                self._dropped += samples.size - free
                samples = samples[:free]
                if not samples.size:
                    return 0
        count = samples.size
        _put(ring, capacity, write, samples)
        if part is None:
            part = self._parts[key] = _Part()
        part.add(write, write + count, count)
        self._last_key = key
        budget = self._max_stretch - self._stretch_used
        self._tail_open = not part.done and budget >= self._lags()[0]
        self._write_pos = write + count  # publish last: the samples are in place
        return count

    def finish(self, item_id: str, content_index: int = 0) -> None:
        """No more audio comes for this part (its done event): its end is not stretched."""
        part = self._parts.get((item_id, content_index))
        if part is None:
            part = self._parts[(item_id, content_index)] = _Part()
        part.done = True
        if (item_id, content_index) == self._last_key:
            self._tail_open = False

    @property
    def low_signals(self) -> int:
        """Blocks after which a part still arriving had less than low water queued: a
        driver that sees this change calls `stretch()` on the producer side."""
        return self._lows

    def stretch(self) -> int:
        """Lengthen the queued audio of the part still arriving by whole pitch periods, up
        to low water, where the consumer will not read before it is done (producer side).

        Returns the samples inserted (0: nothing to do, too little queued past the next
        block, or the spurt's `max_stretch_ms` used up). The part's played position keeps
        counting its own samples only (see `_Part`).
        """
        key = self._last_key
        if not self._tail_open or key is None:
            return 0
        read, write = self._read_pos, self._write_pos
        min_lag, max_lag = self._lags()
        budget = self._max_stretch - self._stretch_used
        if budget < min_lag:  # used up for this spurt: the consumer may stop signalling
            self._tail_open = False
            return 0
        block = self._last_block or self.sample_rate // 50
        want = min(budget, self._low_water + self._low_blocks * block - (write - read))
        if want <= 0:
            return 0
        part = self._parts[key]
        # Past the block the consumer may be reading now, with a margin for this call being
        # late, and within the part's last span: its own audio after anything inserted before
        # and after any other part's (see `_Part.replace_tail`).
        start = max(read + block + self.sample_rate // 200, part.spans[-1][0])
        if write - start < 2 * min_lag:
            return 0
        ring, capacity = self._ring
        original = self._samples_at(start, write - start)
        if original is None:
            return 0
        expanded = expand(original.astype(np.int16), want, min_lag, max_lag, limit=budget)
        inserted = expanded.inserted
        if not inserted:
            return 0
        if write + inserted - read > capacity:
            ring, capacity = self._grow(write + inserted - read)
            if write + inserted - read > capacity:
                return 0
        if self._read_pos != read:
            return 0  # the consumer moved on meanwhile: the next low signal tries again
        # The first period of the expanded audio is the original's: what changes starts one
        # period after `start`, further still from the consumer.
        _put(ring, capacity, start, expanded.samples)
        part.replace_tail(start, expanded.pieces)
        self._stretch_used += inserted
        self._stretched += inserted
        self._stretches += 1
        if self._spurt is not None:
            self._spurt.inserted += inserted
        self._write_pos = write + inserted  # publish last: the samples are in place
        return inserted

    def clear(self) -> None:
        """Barge-in: fade out what is playing and drop everything queued so far.

        Takes effect at the consumer's next block. Parts with audio queued before the clear are
        cut: their played position becomes final, and later audio for them is dropped.
        """
        self._sync_acks()
        self._end_spurt()  # audio after the cut is a new spurt, even with old audio queued
        target = self._write_pos
        generation = self._clear_gen + 1
        for key, part in self._parts.items():
            if not part.cut_gen and part.spans and part.spans[0][0] < target:
                part.cut_gen = generation
                self._cut_keys.append(key)
        self._clears += 1
        self._last_key = None
        self._tail_open = False
        self._stretch_used = 0
        self._clear_target = target
        self._clear_gen = generation  # publish last: the target is in place

    def played_samples(self, item_id: str, content_index: int, now: float) -> int:
        """Samples of this part the listener has heard by `now` (0 for an unknown part).

        `now` is on the same clock as the `dac_time` given to `read_into`. For a part cut by
        `clear()` this is the final count: what was handed to the device before the cut plus
        the fade, predicted from the consumer's position until the consumer has done the cut.
        """
        part = self._parts.get((item_id, content_index))
        if part is None:
            return 0
        self._sync_acks()
        if part.cut_gen:
            end = part.cut_end if part.cut_end is not None else self._predicted_fade_end()
            return part.heard_until(end)
        return part.heard_until(self.heard_position(now))

    def played_ms(self, item_id: str, content_index: int, now: float) -> int:
        """`played_samples` in whole milliseconds (rounded down: never more than heard)."""
        return self.played_samples(item_id, content_index, now) * 1000 // self.sample_rate

    def received_samples(self, item_id: str, content_index: int) -> int:
        part = self._parts.get((item_id, content_index))
        return part.received() if part else 0

    def heard_position(self, now: float) -> int:
        """The stream position that has reached the DAC by `now`, from the played-block log."""
        count = self._log_count
        oldest = max(0, count - _LOG_SIZE + 8)  # leave the consumer room to write
        for entry in range(count - 1, oldest - 1, -1):
            slot = entry % _LOG_SIZE
            dac = float(self._log_dac[slot])
            if dac <= now:
                elapsed = self._elapsed(now, dac)
                return int(self._log_start[slot]) + min(int(self._log_count_n[slot]), elapsed)
        if count > oldest:  # everything logged is still on its way to the DAC
            return int(self._log_start[oldest % _LOG_SIZE])
        return 0

    def pending_samples(self, now: float) -> int:
        """Queued or in-flight samples the listener has not heard yet (0 when drained)."""
        return max(0, self._write_pos - self.heard_position(now))

    def output_level(self, now: float, window: int = 480) -> tuple[float, float]:
        """(rms, peak), 0..1 of full scale, of the `window` samples reaching the DAC at `now`.

        Approximate by design (for meters and the echo guard): silence during gaps reads 0.
        """
        count = self._log_count
        for entry in range(count - 1, max(0, count - _LOG_SIZE + 8) - 1, -1):
            slot = entry % _LOG_SIZE
            dac = float(self._log_dac[slot])
            if dac <= now:
                elapsed = self._elapsed(now, dac)
                played = int(self._log_count_n[slot])
                # A block that carried no audio is silence reaching the DAC now, however
                # recently audio played before it: idle blocks keep coming every period, so
                # reading back past one would show the last reply's level for ever.
                silent = elapsed - played if played else window
                if silent >= window:
                    return 0.0, 0.0
                start = int(self._log_start[slot])
                end = start + min(played, elapsed)
                heard = window - max(0, silent)  # the rest of the window is this block's silence
                return self._level_at(max(0, end - heard), end, window)
        return 0.0, 0.0

    def played_levels(
        self, cursor: int, span: int = 120
    ) -> tuple[list[tuple[float, float, float, float]], int]:
        """Levels of the audio handed to the device since `cursor`, and the next cursor.

        Pass 0 the first time, then the cursor returned. Each entry is `(start, end, rms,
        peak)` for up to `span` consecutive samples: when the first and just after the last
        sample reach the DAC (the clock of `dac_time`), and their level, 0..1 of full scale.
        Entries come in play order; silence has none. Blocks the log no longer holds (the
        caller fell more than 240 blocks behind) or whose samples the ring has overwritten
        are skipped; a cursor beyond the log (from another buffer) starts over.
        """
        count = self._log_count
        if cursor > count:  # a cursor from another buffer: start over
            cursor = 0
        levels: list[tuple[float, float, float, float]] = []
        rate = self.sample_rate
        for entry in range(max(cursor, count - _LOG_SIZE + 8), count):
            slot = entry % _LOG_SIZE
            played = int(self._log_count_n[slot])
            if played <= 0:
                continue
            samples = self._samples_at(int(self._log_start[slot]), played)
            if samples is None:
                continue
            dac = float(self._log_dac[slot])
            rms, peak = _span_levels(samples, span)
            for index, (span_rms, span_peak) in enumerate(zip(rms, peak, strict=True)):
                offset = index * span
                end = min(played, offset + span)
                levels.append((dac + offset / rate, dac + end / rate, span_rms, span_peak))
        return levels, count

    @property
    def buffered(self) -> int:
        """Samples queued and not yet handed to the device."""
        return self._write_pos - self._read_pos

    @property
    def prebuffer(self) -> int:
        return self._target

    def stats(self) -> JitterStats:
        return JitterStats(
            buffered=self.buffered,
            prebuffer=self._target,
            underruns=self._underruns,
            dry_events=self._dry_events,
            frames_out=self._frames_out,
            frames_played=self._frames_played,
            zero_frames=self._zero_frames,
            clears=self._clears,
            dropped=self._dropped,
            capacity=self._ring[1],
            spurts=self._spurts,
            spurt_spread=self._spurt.spread() if self._spurt else self._last_spread,
            stretched=self._stretched,
            stretches=self._stretches,
        )

    # --- consumer side (audio callback) ------------------------------------------------------

    def read_into(self, out: np.ndarray, dac_time: float) -> int:
        """Fill `out` (int16, 1-D) with the next samples; zero-fill what is missing.

        `dac_time` is when `out[0]` will reach the DAC, on the clock `played_samples` is asked
        with. Returns the number of stream samples used. Never raises on valid input, never
        allocates a sample buffer, never blocks.
        """
        frames = out.shape[0]
        # Load order matters: generation, then target, then write position, then ring. Each
        # is published after the one before it, so the ring we hold has every sample below
        # the write position we saw, even if the producer grew it meanwhile.
        generation = self._clear_gen
        target = self._clear_target
        write = self._write_pos
        ring, capacity = self._ring
        read = self._read_pos
        self._last_block = frames
        if generation != self._clear_seen:
            faded = 0
            if self._playing:
                faded = min(self._fade_len, target - read, frames)
                if faded > 0:
                    self._fade_into(out, ring, capacity, read, faded)
                else:
                    faded = 0
            out[faded:] = 0
            self._log(dac_time, read, faded)
            slot = self._acks % _ACK_SIZE
            self._ack_gen[slot] = generation
            self._ack_end[slot] = read + faded
            self._acks += 1
            self._clear_seen = generation
            self._playing = False
            self._waited = 0
            self._frames_out += frames
            self._frames_played += faded
            self._zero_frames += frames - faded
            self._read_pos = max(read, target)
            return faded

        available = write - read
        if not self._playing:
            if available <= 0 or self._waited < self._target:
                if available > 0:
                    self._waited += frames
                out[:] = 0
                self._log(dac_time, read, 0)
                self._frames_out += frames
                self._zero_frames += frames
                return 0
            self._playing = True
            self._waited = 0
        count = min(frames, available)
        index = read % capacity
        first = min(count, capacity - index)
        out[:first] = ring[index : index + first]
        if first < count:
            out[first:count] = ring[: count - first]
        if count < frames:
            out[count:] = 0
            self._playing = False
            self._dry_zeros_from = self._zero_frames
            self._zero_frames += frames - count
            self._dry_events += 1  # publish last
        elif available - count < self._low_water + self._low_blocks * frames and self._tail_open:
            self._lows += 1
        self._log(dac_time, read, count)
        self._frames_out += frames
        self._frames_played += count
        self._read_pos = read + count
        return count

    # --- internals ---------------------------------------------------------------------------

    def _fade_into(
        self, out: np.ndarray, ring: np.ndarray, capacity: int, read: int, faded: int
    ) -> None:
        # gain[i] = 1 - (i + 1) / faded: the last faded sample is silent, so the cut is smooth.
        gain = self._gain[:faded]
        np.multiply(self._ramp_index[:faded], -1.0 / faded, out=gain)
        np.add(gain, 1.0, out=gain)
        scratch = self._scratch[:faded]
        index = read % capacity
        first = min(faded, capacity - index)
        scratch[:first] = ring[index : index + first]
        if first < faded:
            scratch[first:] = ring[: faded - first]
        np.multiply(scratch, gain, out=scratch)
        np.copyto(out[:faded], scratch, casting="unsafe")

    def _lags(self) -> tuple[int, int]:
        """The pitch periods `stretch()` repeats: 2.5-15 ms, a voice's range."""
        return self.sample_rate // 400, self.sample_rate * 15 // 1000

    def _elapsed(self, now: float, dac: float) -> int:
        # The epsilon keeps 479.9999999 (float noise in times) from losing a whole sample.
        return int((now - dac) * self.sample_rate + 1e-6)

    def _log(self, dac_time: float, start: int, count: int) -> None:
        slot = self._log_count % _LOG_SIZE
        self._log_dac[slot] = dac_time
        self._log_start[slot] = start
        self._log_count_n[slot] = count
        self._log_count += 1  # publish last

    def _note_dry(self, key: PartKey) -> None:
        """Classify the consumer's dry events since the last write (producer side)."""
        dry = self._dry_events
        if dry == self._dry_seen:
            return
        if key == self._last_key:
            self._underruns += dry - self._dry_seen
            if self._spurt is not None:
                self._spurt.underran = True
            if self._adaptive:
                # The gap so far: silence since the buffer ran dry, at least one block.
                gap = max(self._zero_frames - self._dry_zeros_from, self._last_block)
                self._target = min(self._max_target, self._target + gap)
        self._dry_seen = dry

    def _note_arrival(self, key: PartKey, now: float) -> None:
        """Measure this chunk's delay within its talk spurt, or start a new spurt."""
        write = self._write_pos
        spurt = self._spurt
        # Nothing queued and not the part that was playing: the listener hears silence
        # before this audio however it is delivered, so a new spurt starts here. (The same
        # part after running dry is an underrun inside the spurt, measured as such.)
        idle = write <= self._read_pos and key != self._last_key
        if spurt is not None and not idle:
            # The sender's own audio: what `stretch()` inserted delays playback, not delivery.
            offset = write - spurt.position - spurt.inserted
            spurt.add(round((now - spurt.arrived) * self.sample_rate) - offset)
            return
        self._end_spurt()
        self._spurt = _Spurt(now, write)
        self._spurts += 1
        if self._adaptive and self._history:
            # Set before the write publishes the audio: the consumer reads the target while
            # it waits, so the whole spurt starts with it.
            self._target = min(self._max_target, max(self._base_target, self._needed()))

    def _needed(self) -> int:
        """The prebuffer the recent spurts ask for (producer side, once per spurt)."""
        spread = max(record.spread for record in self._history)
        paced = sum(record.paced for record in self._history)
        # The largest spread is the range of the `paced` delays seen, and the next spurt's
        # can fall outside it: by about one spacing between them, which shrinks as spurts
        # accumulate. (Mostly it saves the second response, which has learnt from only one.)
        if paced > 1:
            spread += spread // (paced - 1)
        # One block more: the consumer takes whole blocks, so a chunk is due up to one
        # block before its offset says.
        need = spread + (self._last_block or self.sample_rate // 50)
        return max(need, max(record.floor for record in self._history))

    def _end_spurt(self) -> None:
        """Record the open talk spurt's delivery in the history the prebuffer is sized from."""
        spurt = self._spurt
        if spurt is None:
            return
        # After a gap, keep at least the slack the underrun fallback gave: a gap the delays
        # do not explain (the device pulling early) should not come back with the next spurt.
        floor = self._target if spurt.underran else 0
        self._history.append(_SpurtRecord(spurt.spread(), spurt.paced, floor))
        self._last_spread = spurt.spread()
        self._spurt = None

    def _sync_acks(self) -> None:
        """Give cut parts the fade end the consumer acknowledged for their clear."""
        acks = self._acks
        while self._acks_seen < acks:
            slot = self._acks_seen % _ACK_SIZE
            generation = int(self._ack_gen[slot])
            end = int(self._ack_end[slot])
            still_open = []
            for key in self._cut_keys:
                part = self._parts[key]
                if part.cut_gen <= generation:
                    part.cut_end = end
                else:
                    still_open.append(key)
            self._cut_keys = still_open
            self._acks_seen += 1

    def _predicted_fade_end(self) -> int:
        """Where the pending clear's fade will end if the consumer does it at its next block."""
        read = self._read_pos
        if not self._playing:
            return read
        fade = min(self._fade_len, self._clear_target - read, self._last_block or self._fade_len)
        return read + max(0, fade)

    def _grow(self, needed: int) -> tuple[np.ndarray, int]:
        """Replace the ring with a bigger one holding the unread samples (producer only).

        The consumer may still be reading the old ring; that is safe because the old array
        keeps the samples it can reach, and the new one is published (one store) only after
        the copy, with the same absolute positions.
        """
        old, old_capacity = self._ring
        capacity = old_capacity
        while capacity < needed and capacity < self._max_capacity:
            capacity = min(self._max_capacity, capacity * 2)
        if capacity == old_capacity:
            return self._ring
        ring = np.zeros(capacity, np.int16)
        # Everything the old ring holds, played samples too: `played_levels` may still read
        # the latest of those.
        write = self._write_pos
        kept_from = max(self._kept_from, write - old_capacity)
        _copy_ring(old, old_capacity, kept_from, ring, capacity, write - kept_from)
        self._kept_from = kept_from
        self._ring = (ring, capacity)
        return self._ring

    def _samples_at(self, start: int, count: int) -> np.ndarray | None:
        """`count` samples from stream position `start` as float64 (producer side), or None
        when the ring no longer holds them."""
        ring, capacity = self._ring
        if start < max(self._kept_from, self._write_pos - capacity):
            return None
        index = start % capacity
        first = min(count, capacity - index)
        samples = ring[index : index + first].astype(np.float64)
        if first < count:
            samples = np.concatenate([samples, ring[: count - first].astype(np.float64)])
        return samples

    def _level_at(self, start: int, end: int, window: int) -> tuple[float, float]:
        """(rms, peak) of the samples at [start, end) over a `window` the rest of which was
        silent."""
        ring, capacity = self._ring
        if end <= start or self._write_pos - start > capacity:
            return 0.0, 0.0
        index = start % capacity
        count = end - start
        first = min(count, capacity - index)
        samples = ring[index : index + first]
        if first < count:
            samples = np.concatenate([samples, ring[: count - first]])
        as_float = samples.astype(np.float32)
        rms = float(np.sqrt(np.dot(as_float, as_float) / max(window, count))) / 32768.0
        peak = float(np.max(np.abs(as_float))) / 32768.0
        return rms, peak


def _span_levels(samples: np.ndarray, span: int) -> tuple[list[float], list[float]]:
    """(rms, peak) per `span` samples (the last span may be shorter), 0..1 of full scale."""
    full = samples.size - samples.size % span
    spans = samples[:full].reshape(-1, span)
    energy = np.einsum("ij,ij->i", spans, spans) / span
    peak = np.abs(spans).max(axis=1) if full else np.zeros(0)
    rms_list = (np.sqrt(energy) / 32768.0).tolist()
    peak_list = (peak / 32768.0).tolist()
    if full < samples.size:
        rest = samples[full:]
        rms_list.append(float(np.sqrt(np.dot(rest, rest) / rest.size)) / 32768.0)
        peak_list.append(float(np.max(np.abs(rest))) / 32768.0)
    return rms_list, peak_list


def _as_samples(pcm: bytes | np.ndarray) -> np.ndarray:
    if isinstance(pcm, np.ndarray):
        return pcm.reshape(-1).astype(np.int16, copy=False)
    usable = len(pcm) - len(pcm) % 2  # a stray odd byte cannot be a sample
    return np.frombuffer(pcm, dtype="<i2", count=usable // 2)


def _put(ring: np.ndarray, capacity: int, position: int, samples: np.ndarray) -> None:
    """Store `samples` at absolute stream `position` of a ring (wrapping at its end)."""
    count = samples.size
    index = position % capacity
    first = min(count, capacity - index)
    ring[index : index + first] = samples[:first]
    if first < count:
        ring[: count - first] = samples[first:]


def _copy_ring(
    source: np.ndarray,
    source_capacity: int,
    position: int,
    target: np.ndarray,
    target_capacity: int,
    count: int,
) -> None:
    """Copy `count` samples at absolute `position` between two rings of different sizes."""
    done = 0
    while done < count:
        src = (position + done) % source_capacity
        dst = (position + done) % target_capacity
        step = min(count - done, source_capacity - src, target_capacity - dst)
        target[dst : dst + step] = source[src : src + step]
        done += step
