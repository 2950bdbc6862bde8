"""The `AudioBackend` interface shared by the real, file and null backends, and their plumbing.

The asyncio side always sees 24 kHz mono PCM16: mic blocks come out as `MicBlock`s, assistant
audio goes in with `play()`. Whatever a device really runs at is the backend's business.

This module imports no sounddevice: the file and null backends, the engine and the TUI can
use it on a machine without PortAudio.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol, runtime_checkable

import numpy as np

from voicecli.audio.jitter import JitterBuffer


__all__ = [
    "SAMPLE_RATE",
    "AudioBackend",
    "AudioStats",
    "BackendBase",
    "MicBlock",
    "MicQueue",
    "PLAYED_SPAN_MS",
    "PlayedLevel",
    "level",
]

SAMPLE_RATE = 24000
"""The rate of everything on the asyncio side (the Realtime API's pcm16)."""


@dataclass(frozen=True, slots=True)
class MicBlock:
    """One block of microphone audio, 24 kHz mono PCM16 little-endian."""

    pcm: bytes
    captured_at: float
    """`time.monotonic()` (= the asyncio loop's clock) when the block's first sample was heard."""
    rms: float = 0.0
    """Level of this block, 0..1 of full scale (computed on the asyncio side)."""
    peak: float = 0.0

    @classmethod
    def of(cls, samples: np.ndarray, captured_at: float) -> MicBlock:
        """The block holding int16 `samples`, with their level measured."""
        rms, peak = level(samples)
        return cls(samples.astype("<i2", copy=False).tobytes(), captured_at, rms, peak)


class PlayedLevel(NamedTuple):
    """The level of a few milliseconds of assistant audio handed to the output device.

    What the echo guard compares the microphone with: the speaker can only leak back what
    really reached it, when it reached it.
    """

    start: float
    """`time.monotonic()` when the first sample reaches the DAC (latency-corrected)."""
    end: float
    """When the sample after the last one would."""
    rms: float
    """0..1 of full scale."""
    peak: float


PLAYED_SPAN_MS = 5
"""Length of one `PlayedLevel`: short enough that a mic block's echo is bounded tightly."""


@dataclass(frozen=True, slots=True)
class AudioStats:
    """What the UI polls: levels, counters and the health of the devices."""

    mic_rms: float = 0.0
    """Level of the latest mic block, 0..1 of full scale."""
    mic_peak: float = 0.0
    out_rms: float = 0.0
    """Level of the assistant audio reaching the speaker now, 0..1 of full scale."""
    out_peak: float = 0.0
    underruns: int = 0
    """Gaps inside an assistant audio part: the speaker ran dry and the part went on later."""
    overflows: int = 0
    """Input overflows PortAudio reported (audio the device lost before we got it)."""
    mic_dropped: int = 0
    """Mic blocks thrown away because the asyncio side fell behind."""
    device_underflows: int = 0
    """Output underflows PortAudio reported (the callback was late)."""
    frames_played: int = 0
    """Assistant samples handed to the output device (at the output stream's rate)."""
    buffered_ms: int = 0
    """Assistant audio queued and not yet handed to the device."""
    prebuffer_ms: int = 0
    """Current prebuffer target (sized from recent delivery delays; grows after underruns)."""
    stretched_ms: int = 0
    """Assistant audio lengthened by repeating pitch periods while the next delta was late."""
    callback_errors: int = 0
    """Exceptions caught inside audio callbacks (each one is a bug; the stream kept running)."""
    device_lost: str | None = None
    """None while healthy; one line saying which device stopped, once one has."""
    input_rate: int | None = None
    """Rate the input device runs at (24000 unless it refused and we resample), None if off."""
    output_rate: int | None = None


@runtime_checkable
class AudioBackend(Protocol):
    """What the talk engine needs from audio. All methods are called on the asyncio thread."""

    sample_rate: int
    """Always 24000 on the asyncio side."""

    async def start(self) -> None:
        """Open the streams; raises `AudioError` with one clear line when that fails."""

    async def stop(self) -> None:
        """Close the streams; ends `mic_blocks()`. Safe to call twice or after a device loss."""

    def mic_blocks(self) -> AsyncIterator[MicBlock]:
        """Mic audio as it is captured; one consumer. Ends when the backend stops, the input
        file is exhausted or the input device was lost (see `stats().device_lost`)."""

    def play(self, pcm: bytes, item_id: str, content_index: int) -> None:
        """Queue assistant audio (24 kHz PCM16) for one content part. Never blocks."""

    def clear(self) -> None:
        """Barge-in: fade out within 15 ms and drop everything queued."""

    def end_part(self, item_id: str, content_index: int) -> None:
        """No more audio comes for this part (its done event): playback stops stretching
        its end while waiting for more."""

    def played_ms(self, item_id: str, content_index: int) -> int:
        """How much of this part the listener has heard, corrected by output latency; after
        `clear()` the final figure for a cut part. Never more than received; 0 if unknown."""

    def stats(self) -> AudioStats:
        """A snapshot for the UI."""

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until everything queued has been heard; False if `timeout` passed first."""

    def played_levels(self, cursor: int = 0) -> tuple[list[PlayedLevel], int]:
        """Levels of the assistant audio handed to the output device since `cursor`, oldest
        first in spans of `PLAYED_SPAN_MS`, and the cursor for the next call (pass 0 first).
        Silence has no entry. For the echo guard."""

    def pace_mic(self, batch_ms: int, wake_peak: float = 0.0) -> None:
        """Hand mic blocks over in batches of about `batch_ms` (at least one block), but at
        once when a block's peak reaches `wake_peak` (0..1 of full scale; 0: never). Saves
        wake-ups where a device calls back; blocks keep their own `captured_at`."""


def level(samples: np.ndarray) -> tuple[float, float]:
    """(rms, peak) of int16 samples, 0..1 of full scale."""
    if not samples.size:
        return 0.0, 0.0
    # One dot product and one max: a mic block's level is taken 50 times a second, and
    # np.mean's bookkeeping costs more than the arithmetic on 480 samples.
    as_float = samples.astype(np.float64).reshape(-1)
    rms = math.sqrt(float(as_float.dot(as_float)) / as_float.size) / 32768.0
    peak = float(np.abs(as_float).max()) / 32768.0
    return rms, peak


class MicQueue:
    """Mic blocks from a producer (callback hand-off or file reader) to one async consumer.

    Bounded: when the consumer falls behind, the oldest block is dropped and counted rather
    than blocking the producer. `close()` ends the iterator after what is queued.
    """

    def __init__(self, max_blocks: int = 250) -> None:
        self._queue: asyncio.Queue[MicBlock | None] = asyncio.Queue(max_blocks + 1)
        self._max = max_blocks
        self.dropped = 0
        self.closed = False
        self.last_rms = 0.0
        self.last_peak = 0.0

    def put(self, block: MicBlock) -> None:
        if self.closed:
            return
        if self._queue.qsize() >= self._max:
            self._queue.get_nowait()
            self.dropped += 1
        self.last_rms, self.last_peak = block.rms, block.peak
        self._queue.put_nowait(block)

    async def put_waiting(self, block: MicBlock) -> None:
        """Put, waiting for room instead of dropping (fast file input: nothing may be lost)."""
        while not self.closed and self._queue.qsize() >= self._max:
            await asyncio.sleep(0.001)
        self.put(block)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(None)

    async def blocks(self) -> AsyncIterator[MicBlock]:
        while True:
            block = await self._queue.get()
            if block is None:
                self._queue.put_nowait(None)  # a second iterator ends too
                return
            yield block


class BackendBase:
    """Shared parts of the three backends: the jitter buffer, the mic queue, stats, drain.

    Subclasses drive `self.jitter` as its consumer (a PortAudio callback or a paced task)
    and feed `self.mic` as its producer.
    """

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        *,
        block_ms: int = 20,
        prebuffer_ms: float = 60,
        max_prebuffer_ms: float = 200,
        fade_ms: float = 15,
        max_stretch_ms: float = 200,
        on_device_lost: Callable[[str], None] | None = None,
    ) -> None:
        if not 10 <= block_ms <= 100:
            raise ValueError("block_ms must be between 10 and 100")
        self.block_ms = block_ms
        self.block_samples = SAMPLE_RATE * block_ms // 1000
        self._jitter_options = {
            "prebuffer_ms": prebuffer_ms,
            "max_prebuffer_ms": max_prebuffer_ms,
            "fade_ms": fade_ms,
            "max_stretch_ms": max_stretch_ms,
        }
        self.jitter = JitterBuffer(SAMPLE_RATE, **self._jitter_options)  # type: ignore[arg-type]
        self.mic = MicQueue()
        self.on_device_lost = on_device_lost
        self._device_lost: str | None = None
        self._received: dict[tuple[str, int], int] = {}  # 24 kHz samples received per part

    # --- AudioBackend ------------------------------------------------------------------------

    def mic_blocks(self) -> AsyncIterator[MicBlock]:
        return self.mic.blocks()

    def play(self, pcm: bytes, item_id: str, content_index: int) -> None:
        key = (item_id, content_index)
        self._received[key] = self._received.get(key, 0) + len(pcm) // 2
        self._queue_output(pcm, item_id, content_index)

    def clear(self) -> None:
        self.jitter.clear()

    def end_part(self, item_id: str, content_index: int) -> None:
        self.jitter.finish(item_id, content_index)

    def played_ms(self, item_id: str, content_index: int) -> int:
        heard = self.jitter.played_ms(item_id, content_index, self._now())
        received_ms = self._received.get((item_id, content_index), 0) * 1000 // SAMPLE_RATE
        return min(heard, received_ms)

    def stats(self) -> AudioStats:
        jitter = self.jitter.stats()
        rate = self.jitter.sample_rate
        out_rms, out_peak = self.jitter.output_level(self._now(), window=rate // 50)
        fields: dict[str, object] = {
            "mic_rms": self.mic.last_rms,
            "mic_peak": self.mic.last_peak,
            "out_rms": out_rms,
            "out_peak": out_peak,
            "underruns": jitter.underruns,
            "mic_dropped": self.mic.dropped,
            "frames_played": jitter.frames_played,
            "buffered_ms": jitter.buffered * 1000 // rate,
            "prebuffer_ms": jitter.prebuffer * 1000 // rate,
            "stretched_ms": jitter.stretched * 1000 // rate,
            "device_lost": self._device_lost,
        }
        fields.update(self._extra_stats())
        return AudioStats(**fields)  # type: ignore[arg-type]

    def played_levels(self, cursor: int = 0) -> tuple[list[PlayedLevel], int]:
        jitter = self.jitter
        span = max(1, jitter.sample_rate * PLAYED_SPAN_MS // 1000)
        levels, cursor = jitter.played_levels(cursor, span)
        return [PlayedLevel._make(entry) for entry in levels], cursor

    def pace_mic(self, batch_ms: int, wake_peak: float = 0.0) -> None:
        """File and null input produce blocks on the loop itself: nothing to batch."""

    async def drain(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.jitter.pending_samples(self._now()) > 0 and not self._output_gone():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.01)
        return True

    async def __aenter__(self) -> BackendBase:
        await self.start()  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()  # type: ignore[attr-defined]

    # --- for subclasses ----------------------------------------------------------------------

    def _queue_output(self, pcm: bytes, item_id: str, content_index: int) -> None:
        self.jitter.write(pcm, item_id, content_index, now=self._now())

    def _now(self) -> float:
        return time.monotonic()

    def _output_gone(self) -> bool:
        return False

    def _extra_stats(self) -> dict[str, object]:
        return {}

    def _report_device_lost(self, message: str) -> None:
        """Record a lost device (first one wins) and tell the engine; asyncio thread only."""
        if self._device_lost is None:
            self._device_lost = message
        else:
            self._device_lost = f"{self._device_lost}; {message}"
        if self.on_device_lost is not None:
            self.on_device_lost(message)
