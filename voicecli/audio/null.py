"""The null backend: no devices at all, for headless runs and tests.

The mic is endless silence at real-time pace (or absent), and output is discarded, but it
goes through the same jitter buffer on a simulated clock, so played positions, truncation,
prebuffering and fades behave exactly as with a speaker.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from voicecli.audio.simulated import SILENCE, SimulatedBackend


__all__ = ["NullBackend"]


class NullBackend(SimulatedBackend):
    """Silent mic (`mic="silence"`) or none (`mic="none"`: `mic_blocks()` ends at once).

    Args:
        mic: "silence" or "none".
        realtime: pace like a device (default) or play output the moment it is queued.
        options: the rest of `SimulatedBackend`'s keyword arguments (block_ms, prebuffer_ms,
            output_latency_ms, ...).
    """

    def __init__(
        self,
        *,
        mic: Literal["silence", "none"] = "silence",
        realtime: bool = True,
        **options: Any,
    ) -> None:
        if mic not in ("silence", "none"):
            raise ValueError("mic must be 'silence' or 'none'")
        super().__init__(realtime=realtime, trailing_silence_ms=None, **options)
        self.mic_mode = mic

    def _open_source(self) -> np.ndarray | str | None:
        if self.mic_mode == "none":
            return None
        if not self.realtime:
            return None  # endless silence as fast as possible would only spin
        return SILENCE
