"""The real audio backend: PortAudio (via sounddevice) microphone and speaker.

Devices are chosen by index or name substring (`None` = the system default). Each stream
opens at 24 kHz when the device accepts it, else at the device's native rate with soxr
converting on the asyncio side. A stream that dies mid-session (device unplugged, sound server
gone), or that stops calling back for a few seconds (suspended or hung), is reported through
`stats().device_lost` and `on_device_lost`; the session keeps running without it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import numpy as np

from voicecli.audio.backend import SAMPLE_RATE, BackendBase
from voicecli.audio.capture import Capture
from voicecli.audio.devices import (
    DeviceInfo,
    Kind,
    describe_portaudio_error,
    load_sounddevice,
    parse_device_spec,
    pick_stream_rate,
    resolve_device,
)
from voicecli.audio.jitter import JitterBuffer
from voicecli.audio.playback import Playback
from voicecli.audio.resample import StreamResampler
from voicecli.audio.stream import DeviceStream
from voicecli.errors import AudioError


__all__ = ["RealBackend"]

# Push the resampler's tail out when deltas pause this long. `end_part` flushes a finished
# part at once; this only catches a server that never says a part is done. (Shorter would
# restart the resampler inside a late part: a click at every late delta.)
_RESAMPLER_IDLE_FLUSH_S = 1.0
_CAPTURE_POOL = 50  # mic blocks the loop may lag behind before the oldest are overwritten


class RealBackend(BackendBase):
    """Microphone and speaker through PortAudio.

    Args:
        input_device: index, name substring or None for the default input (strings of
            digits count as an index, "" and "default" as the default).
        output_device: likewise for the output.
        use_input: open the microphone (False: `mic_blocks()` yields nothing).
        use_output: open the speaker (False: `play()` only counts what it is given).
        block_ms: the microphone's callback block length, 10-100 ms (default 20).
        output_block_ms: the speaker's, 10-100 ms (None: the same as the microphone's).
        prebuffer_ms: assistant audio queued before playback starts (default 60).
        max_prebuffer_ms: ceiling for the adaptive prebuffer after underruns.
        fade_ms: barge-in fade-out (default 15).
        max_stretch_ms: the most a stretch of speech is lengthened (by repeating pitch
            periods) while the next audio is late; 0: never (see `JitterBuffer.stretch`).
        input_rate / output_rate: force a device rate (None: 24000, or the device's own
            rate if it refuses 24 kHz).
        on_device_lost: called on the loop thread with one line when a stream dies.
    """

    def __init__(
        self,
        input_device: int | str | None = None,
        output_device: int | str | None = None,
        *,
        use_input: bool = True,
        use_output: bool = True,
        block_ms: int = 20,
        output_block_ms: int | None = None,
        prebuffer_ms: float = 60,
        max_prebuffer_ms: float = 200,
        fade_ms: float = 15,
        max_stretch_ms: float = 200,
        input_rate: int | None = None,
        output_rate: int | None = None,
        on_device_lost: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(
            block_ms=block_ms,
            prebuffer_ms=prebuffer_ms,
            max_prebuffer_ms=max_prebuffer_ms,
            fade_ms=fade_ms,
            max_stretch_ms=max_stretch_ms,
            on_device_lost=on_device_lost,
        )
        # "3" means index 3 and "" or "default" the default, as on the command line.
        self.input_device = parse_device_spec(input_device)
        self.output_device = parse_device_spec(output_device)
        if output_block_ms is not None and not 10 <= output_block_ms <= 100:
            raise ValueError("output_block_ms must be between 10 and 100")
        self.output_block_ms = output_block_ms or block_ms
        self.use_input = use_input
        self.use_output = use_output
        self._forced_rates = {"input": input_rate, "output": output_rate}
        self.capture: Capture | None = None
        self.playback: Playback | None = None
        self._resampler: StreamResampler | None = None
        self._resampler_key: tuple[str, int] | None = None
        self._flush_handle: asyncio.TimerHandle | None = None
        self._started = False
        self._mic_pace = (1, 0)  # (blocks per wake-up, peak that wakes at once), int16 units

    async def start(self) -> None:
        if self._started:
            return
        loop = asyncio.get_running_loop()
        # Device scans and stream opens block for tens of milliseconds: keep them off the loop.
        await asyncio.to_thread(self._open, loop)
        self._started = True
        if self.capture is None:
            self.mic.close()

    async def stop(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        capture, playback = self.capture, self.playback
        await asyncio.to_thread(self._close_streams, capture, playback)
        self.mic.close()
        self._started = False

    # --- opening -----------------------------------------------------------------------------

    def _open(self, loop: asyncio.AbstractEventLoop) -> None:
        load_sounddevice()
        plans: list[tuple[Kind, DeviceInfo, int]] = []
        if self.use_input:
            plans.append(self._plan("input", self.input_device))
        if self.use_output:
            plans.append(self._plan("output", self.output_device))
        for kind, device, rate in plans:
            if kind == "input":
                self.capture = Capture(
                    device,
                    rate,
                    self.block_ms,
                    self.mic,
                    loop,
                    self._input_lost,
                    pool_blocks=_CAPTURE_POOL,
                )
                self.capture.wake_every, self.capture.wake_peak = self._mic_pace
            else:
                self.jitter = JitterBuffer(rate, **self._jitter_options)  # type: ignore[arg-type]
                if rate != SAMPLE_RATE:
                    self._resampler = StreamResampler(SAMPLE_RATE, rate)
                self.playback = Playback(
                    device, rate, self.output_block_ms, self.jitter, loop, self._output_lost
                )
        try:
            for stream in (self.playback, self.capture):
                if stream is not None:
                    self._open_stream(stream)
        except AudioError:
            self._close_streams(self.capture, self.playback)
            raise

    def _plan(self, kind: Kind, spec: int | str | None) -> tuple[Kind, DeviceInfo, int]:
        device = resolve_device(spec, kind)
        forced = self._forced_rates[kind]
        rate = forced if forced else pick_stream_rate(device, kind, SAMPLE_RATE)
        return kind, device, rate

    @staticmethod
    def _open_stream(stream: DeviceStream) -> None:
        sd = load_sounddevice()
        try:
            stream.open()
        except (sd.PortAudioError, ValueError) as exc:
            raise AudioError(
                f"cannot open {stream.direction} device {stream.device.label()} at "
                f"{stream.rate} Hz: {describe_portaudio_error(exc)}"
            ) from None

    @staticmethod
    def _close_streams(capture: Capture | None, playback: Playback | None) -> None:
        for stream in (capture, playback):
            if stream is not None:
                stream.close()

    # --- device loss -------------------------------------------------------------------------

    # A dead stream has stopped calling back; `stop()` frees it with the other one.

    def _input_lost(self, message: str) -> None:
        self.mic.close()
        self._report_device_lost(message)

    def _output_lost(self, message: str) -> None:
        self._report_device_lost(message)

    def _output_gone(self) -> bool:
        return self.playback is None or self.playback.lost

    # --- output ------------------------------------------------------------------------------

    def _queue_output(self, pcm: bytes, item_id: str, content_index: int) -> None:
        if self._output_gone():
            return  # nobody would hear it; `received` still counts it
        resampler = self._resampler
        if resampler is None:
            self.jitter.write(pcm, item_id, content_index, now=self._now())
            return
        key = (item_id, content_index)
        if key != self._resampler_key:
            self._flush_resampler()
            self._resampler_key = key
        samples = np.frombuffer(pcm, "<i2", count=len(pcm) // 2)
        self.jitter.write(resampler.process(samples), item_id, content_index, now=self._now())
        if self._flush_handle is not None:
            self._flush_handle.cancel()
        loop = asyncio.get_running_loop()
        self._flush_handle = loop.call_later(_RESAMPLER_IDLE_FLUSH_S, self._flush_resampler)

    def _flush_resampler(self) -> None:
        if self._resampler is None or self._resampler_key is None:
            return
        tail = self._resampler.flush()
        if tail.size:
            self.jitter.write(tail, *self._resampler_key)

    def end_part(self, item_id: str, content_index: int) -> None:
        if self._resampler_key == (item_id, content_index):
            self._flush_resampler()  # the part's last samples, before it is closed
        super().end_part(item_id, content_index)

    def clear(self) -> None:
        if self._resampler is not None:
            self._resampler.flush()  # the tail belongs to the audio being dropped
            self._resampler_key = None
        super().clear()

    # --- input pacing ------------------------------------------------------------------------

    def pace_mic(self, batch_ms: int, wake_peak: float = 0.0) -> None:
        # At most half the capture pool: a batch must be read before the callback laps it.
        blocks = max(1, min(round(batch_ms / self.block_ms), _CAPTURE_POOL // 2))
        peak = max(0, min(32767, round(wake_peak * 32768)))
        if (blocks, peak) == self._mic_pace:
            return
        shorter = blocks < self._mic_pace[0]
        self._mic_pace = (blocks, peak)
        capture = self.capture
        if capture is not None:
            capture.wake_every, capture.wake_peak = blocks, peak
            if shorter:
                capture.flush()  # what waited for the longer batch goes now

    # --- stats -------------------------------------------------------------------------------

    def _extra_stats(self) -> dict[str, object]:
        capture, playback = self.capture, self.playback
        # Polled with the stats (the engine does every tick): a stalled stream is lost.
        now = time.monotonic()
        for stream in (capture, playback):
            if stream is not None:
                stream.check_stall(now)
        return {
            "overflows": capture.overflows if capture else 0,
            "device_underflows": playback.device_underflows if playback else 0,
            "callback_errors": (capture.callback_errors if capture else 0)
            + (playback.callback_errors if playback else 0),
            "mic_dropped": self.mic.dropped + (capture.dropped if capture else 0),
            "input_rate": capture.rate if capture else None,
            "output_rate": playback.rate if playback else None,
        }
