"""Speaker playback: a PortAudio OutputStream whose callback reads the jitter buffer.

The callback asks the `JitterBuffer` to fill `outdata` and tells it when that block will reach
the DAC (PortAudio's `outputBufferDacTime`, mapped onto `time.monotonic()`), which is what
makes the played position latency-corrected. It never blocks, takes no lock, allocates no
sample buffer, prints nothing and never raises: failures are counted and the block is silent.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from voicecli.audio.devices import DeviceInfo, load_sounddevice
from voicecli.audio.jitter import JitterBuffer


__all__ = ["Playback"]


class Playback:
    """One output stream draining a `JitterBuffer` at `rate`.

    Args:
        device: the output device.
        rate: the rate to open it at; the jitter buffer holds samples at this rate.
        block_ms: callback block length, 10-100 ms.
        jitter: the buffer the asyncio side writes into.
        loop: the asyncio loop to notify if the stream dies on its own.
        on_lost: called on the loop thread with one line when that happens.
    """

    def __init__(
        self,
        device: DeviceInfo,
        rate: int,
        block_ms: int,
        jitter: JitterBuffer,
        loop: asyncio.AbstractEventLoop,
        on_lost: Callable[[str], None],
    ) -> None:
        self.device = device
        self.rate = rate
        self.block_frames = rate * block_ms // 1000
        self.jitter = jitter
        self._loop = loop
        self._on_lost = on_lost
        self._stream: Any = None
        self._close_lock = threading.Lock()
        self._latency = 0.0
        self._closing = False
        self.device_underflows = 0
        self.callback_errors = 0
        self.lost = False

    def open(self) -> None:
        sd = load_sounddevice()
        self._stream = sd.OutputStream(
            device=self.device.index,
            samplerate=self.rate,
            channels=1,
            dtype="int16",
            blocksize=self.block_frames,
            callback=self._callback,
            finished_callback=self._finished,
        )
        self._latency = float(self._stream.latency)
        self._stream.start()

    def close(self) -> None:
        self._closing = True
        with self._close_lock:  # two closers (stop, a late loss) must not share one stream
            stream, self._stream = self._stream, None
        if stream is None:
            return
        try:
            stream.abort()  # stop() would wait for the device buffer to play out
        except Exception:  # noqa: BLE001 - a lost device may fail to stop; closing still frees it
            pass
        try:
            stream.close()
        except Exception:  # noqa: BLE001
            pass

    @property
    def latency(self) -> float:
        return self._latency

    # --- audio thread ------------------------------------------------------------------------

    def _callback(self, outdata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        try:
            if status and status.output_underflow:
                self.device_underflows += 1
            now = time.monotonic()
            current = time_info.currentTime
            lead = time_info.outputBufferDacTime - current
            if current <= 0 or not 0.0 <= lead < 1.0:  # host API gave no usable timing
                lead = self._latency
            self.jitter.read_into(outdata[:, 0], now + lead)
        except Exception:  # noqa: BLE001 - a raise would silently kill the stream
            self.callback_errors += 1
            outdata.fill(0)

    def _finished(self) -> None:
        if not self._closing:
            try:
                self._loop.call_soon_threadsafe(self._lost)
            except RuntimeError:
                pass

    def _lost(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.lost = True
        self._on_lost(
            f"output device {self.device.label()} stopped (unplugged or sound server gone)"
        )
