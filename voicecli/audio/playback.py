"""Speaker playback: a PortAudio output stream whose callback reads the jitter buffer.

The callback asks the `JitterBuffer` to fill a block of its own, copies it into PortAudio's
buffer (`outdata`, bytes), and tells the buffer when that block will reach the DAC
(PortAudio's `outputBufferDacTime`, mapped onto `time.monotonic()`), which is what makes the
played position latency-corrected. It never blocks, takes no lock, allocates no
sample buffer, prints nothing and never raises: failures are counted and the block is silent.

When the buffer signals low water (a part still arriving is running short), the callback asks
the loop, once until it has run, to `stretch()` the queued audio: the stretching is numpy work
that belongs on the producer's side, not in the audio thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from voicecli.audio.devices import DeviceInfo
from voicecli.audio.jitter import JitterBuffer
from voicecli.audio.stream import DeviceStream


__all__ = ["Playback"]


class Playback(DeviceStream):
    """One output stream draining a `JitterBuffer` at `rate`.

    Args:
        device: the output device.
        rate: the rate to open it at; the jitter buffer holds samples at this rate.
        block_ms: callback block length, 10-100 ms.
        jitter: the buffer the asyncio side writes into.
        loop: the asyncio loop to notify if the stream dies on its own.
        on_lost: called on the loop thread with one line when that happens.
    """

    direction = "output"

    def __init__(
        self,
        device: DeviceInfo,
        rate: int,
        block_ms: int,
        jitter: JitterBuffer,
        loop: asyncio.AbstractEventLoop,
        on_lost: Callable[[str], None],
    ) -> None:
        super().__init__(device, rate, block_ms, loop, on_lost)
        self.jitter = jitter
        self.device_underflows = 0
        self.calls = 0
        """Callbacks run so far (the stall watch's progress)."""
        self._lows_seen = 0
        self._stretch_asked = False
        # The jitter buffer fills this block, which is then copied into PortAudio's bytes.
        self._block = np.zeros(self.block_frames, np.int16)
        self._block_bytes = memoryview(self._block).cast("B")

    # --- audio thread ------------------------------------------------------------------------

    def _callback(self, outdata: Any, frames: int, time_info: Any, status: Any) -> None:
        try:
            if status and status.output_underflow:
                self.device_underflows += 1
            now = time.monotonic()
            current = time_info.currentTime
            lead = time_info.outputBufferDacTime - current
            if current <= 0 or not 0.0 <= lead < 1.0:  # host API gave no usable timing
                lead = self._latency
            if frames == self.block_frames:
                self.jitter.read_into(self._block, now + lead)
                outdata[:] = self._block_bytes
            else:
                self._fill_odd_block(outdata, frames, now + lead)
        except Exception:  # noqa: BLE001 - a raise would silently kill the stream
            self.callback_errors += 1
            outdata[:] = bytes(len(outdata))
        self.calls += 1
        try:
            lows = self.jitter.low_signals
            if lows != self._lows_seen and not self._stretch_asked:
                self._lows_seen = lows
                self._stretch_asked = True
                self._loop.call_soon_threadsafe(self._stretch)
        except Exception:  # noqa: BLE001 - a closing loop: nothing to stretch for any more
            pass

    def _fill_odd_block(self, outdata: Any, frames: int, dac_time: float) -> None:
        """PortAudio promised `blocksize` frames; cope if a host API bends that."""
        done = 0
        while done < frames:
            count = min(frames - done, self.block_frames)
            self.jitter.read_into(self._block[:count], dac_time + done / self.rate)
            outdata[2 * done : 2 * (done + count)] = self._block_bytes[: 2 * count]
            done += count

    # --- asyncio thread ----------------------------------------------------------------------

    def _stretch(self) -> None:
        self._stretch_asked = False
        self.jitter.stretch()

    def _progress(self) -> int:
        return self.calls
