"""Sample-rate conversion with soxr, for devices that refuse 24 kHz and for WAV files.

`resample` converts a whole signal at once; `StreamResampler` converts a live stream block by
block (soxr keeps the filter state, so block edges do not click) and `Rebuffer` cuts its
irregular output back into fixed blocks. Pure: numpy and soxr only.
"""

from __future__ import annotations

import numpy as np
import soxr


__all__ = ["Rebuffer", "StreamResampler", "resample", "to_int16"]


def to_int16(samples: np.ndarray) -> np.ndarray:
    """Round and clip float samples (int16 scale) to int16."""
    return np.clip(np.rint(samples), -32768, 32767).astype(np.int16)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Resample a whole int16 mono signal (soxr HQ); a copy even when the rates match."""
    if from_rate == to_rate:
        return samples.astype(np.int16, copy=True)
    if not samples.size:
        return np.zeros(0, np.int16)
    return soxr.resample(samples.astype(np.int16, copy=False), from_rate, to_rate, quality="HQ")


class StreamResampler:
    """Resample an int16 mono stream chunk by chunk; `flush()` returns the filter's tail."""

    def __init__(self, from_rate: int, to_rate: int) -> None:
        self.from_rate = from_rate
        self.to_rate = to_rate
        self._stream = soxr.ResampleStream(from_rate, to_rate, 1, dtype="int16", quality="HQ")
        self._fed = False

    def process(self, samples: np.ndarray) -> np.ndarray:
        self._fed = True
        return self._stream.resample_chunk(samples.astype(np.int16, copy=False))

    def flush(self) -> np.ndarray:
        """Everything still inside the filter; the next `process` starts a fresh stream."""
        if not self._fed:
            return np.zeros(0, np.int16)
        tail = self._stream.resample_chunk(np.zeros(0, np.int16), last=True)
        self._stream.clear()
        self._fed = False
        return tail


class Rebuffer:
    """Collects samples of any length and hands them out in blocks of exactly `size`."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._pending = np.zeros(0, np.int16)

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        joined = np.concatenate([self._pending, samples]) if self._pending.size else samples
        whole = joined.size // self.size * self.size
        self._pending = joined[whole:].copy()
        return [joined[i : i + self.size] for i in range(0, whole, self.size)]

    @property
    def pending(self) -> int:
        return self._pending.size
