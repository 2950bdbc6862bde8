"""What `Capture` and `Playback` share: one PortAudio stream's lifetime and its loss.

A subclass says which way the audio flows (`direction`) and supplies the audio callback; this
class opens the mono int16 stream with it, closes it once (from whichever side gets there
first), and turns a stream that ends on its own (device unplugged, sound server gone) into one
`on_lost` call on the asyncio thread. `open()` and `close()` are blocking PortAudio calls:
run them off the loop.

A stream can also stall without ending: a suspended sound server sink, a Bluetooth device that
drops out, a driver that hangs. PortAudio reports nothing then; the callback simply stops
coming. `check_stall()` (polled from the asyncio side) turns a callback that has not run for a
few seconds into the same one `on_lost` call, so the session says so instead of showing the
assistant "speaking" for ever.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, ClassVar

from voicecli.audio.devices import DeviceInfo, Kind, load_sounddevice


__all__ = ["DeviceStream", "StallWatch"]

STALL_S = 2.5
"""A running stream whose callback has not run for this long is reported lost. Callbacks come
every 10-100 ms; even a starved machine's xruns delay them by far less."""


class StallWatch:
    """Whether a counter the audio callback advances has stood still for `limit_s` (pure)."""

    def __init__(self, limit_s: float = STALL_S) -> None:
        self.limit_s = limit_s
        self._progress: int | None = None
        self._since = 0.0

    def stalled(self, progress: int, now: float) -> bool:
        if progress != self._progress:
            self._progress, self._since = progress, now
            return False
        return now - self._since >= self.limit_s


class DeviceStream:
    """One PortAudio stream on `device` at `rate`, in blocks of `block_ms`.

    Args:
        device: the device to open.
        rate: the rate to open it at.
        block_ms: callback block length, 10-100 ms.
        loop: the asyncio loop to notify if the stream dies on its own.
        on_lost: called on the loop thread with one line when that happens.
    """

    direction: ClassVar[Kind]

    def __init__(
        self,
        device: DeviceInfo,
        rate: int,
        block_ms: int,
        loop: asyncio.AbstractEventLoop,
        on_lost: Callable[[str], None],
    ) -> None:
        self.device = device
        self.rate = rate
        self.block_frames = rate * block_ms // 1000
        self._loop = loop
        self._on_lost = on_lost
        self._stream: Any = None
        self._close_lock = threading.Lock()
        self._latency = 0.0
        self._closing = False
        self.lost = False
        self._watch = StallWatch()
        self.callback_errors = 0
        """Exceptions caught in the callback (each one a bug; the stream kept running)."""

    def open(self) -> None:
        sd = load_sounddevice()
        # Raw streams: the callback gets the host buffer as bytes. sounddevice's numpy streams
        # wrap every block in a new array first, a third of what the playback callback costs.
        kind = sd.RawInputStream if self.direction == "input" else sd.RawOutputStream
        self._stream = kind(
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
        """The stream's latency in seconds, as PortAudio reported it when it opened."""
        return self._latency

    # --- audio thread ------------------------------------------------------------------------

    def _callback(self, data: Any, frames: int, time_info: Any, status: Any) -> None:
        """`data`: the block as `frames` int16 samples (mono), a writable buffer of bytes."""
        raise NotImplementedError

    def _finished(self) -> None:
        if not self._closing:
            try:
                self._loop.call_soon_threadsafe(self._lost)
            except RuntimeError:  # the loop is closed: nobody is left to tell
                pass

    def _progress(self) -> int:
        """A count the callback advances each time it runs (read from the asyncio thread)."""
        raise NotImplementedError

    # --- asyncio thread ----------------------------------------------------------------------

    def check_stall(self, now: float) -> None:
        """Report the stream lost if its callback has stopped coming (see the module doc)."""
        if self._closing or self._stream is None:
            return
        if self._watch.stalled(self._progress(), now):
            self._lost(
                f"stopped calling back ({self._watch.limit_s:g} s without audio: device "
                "suspended, disconnected or hung)"
            )

    def _lost(self, why: str = "stopped (unplugged or sound server gone)") -> None:
        if self._closing:
            return
        self._closing = True
        self.lost = True
        self._on_lost(f"{self.direction} device {self.device.label()} {why}")
