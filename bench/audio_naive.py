"""The naive playback baseline the jitter buffer is compared with.

What many examples do: a list of chunks guarded by a lock; the callback pops chunks under the
lock until it has enough samples, concatenating (allocating) as it goes, and zero-fills what is
missing. No prebuffer, no fade, no played position.
"""

from __future__ import annotations

import threading

import numpy as np


__all__ = ["NaivePlayer"]


class NaivePlayer:
    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._lock = threading.Lock()
        self._leftover = np.zeros(0, np.int16)
        self.frames_played = 0

    def play(self, pcm: bytes) -> None:
        with self._lock:
            self._chunks.append(np.frombuffer(pcm, "<i2").copy())

    def clear(self) -> None:
        with self._lock:
            self._chunks.clear()
            self._leftover = np.zeros(0, np.int16)

    def callback(self, outdata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        with self._lock:
            data = self._leftover
            while data.size < frames and self._chunks:
                data = np.concatenate([data, self._chunks.pop(0)])
            self._leftover = data[frames:]
        count = min(frames, data.size)
        outdata[:count, 0] = data[:count]
        outdata[count:, 0] = 0
        self.frames_played += count
