"""A sound device simulated on the asyncio loop: the clock behind the file and null backends.

One task ticks once per block on absolute deadlines (so it does not drift): it hands the
previous block of "microphone" samples to the mic queue and asks the same `JitterBuffer` the
real speaker uses for the next block of output. Truncation math, prebuffering, underruns and
fades therefore behave as with a device, headless.

In fast mode (`realtime=False`) there is no clock: input blocks are queued as fast as the
consumer takes them (none are dropped), and output is "played" the moment it is queued.

With `echo_gain_db` set (real-time only), the simulated microphone also hears the simulated
speaker: each mic sample adds the output sample that reached the DAC `echo_delay_ms` earlier,
scaled by the gain. That is the speaker leaking into a laptop's microphone, for echo-guard
tests that need no sound server.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

import numpy as np

from voicecli.audio.backend import SAMPLE_RATE, BackendBase, MicBlock
from voicecli.audio.jitter import JitterBuffer


__all__ = ["SimulatedBackend"]

SILENCE = "silence"


class SimulatedBackend(BackendBase):
    """Base of `FileBackend` and `NullBackend`.

    Args:
        realtime: pace input and output like a device (True) or run as fast as possible.
        trailing_silence_ms: after the input runs out, this much silence, then the mic ends;
            None: silence until `stop()` (real-time mode only; fast mode then just ends).
        output_latency_ms: pretend the speaker needs this long to play a block (real-time).
        echo_gain_db: the mic hears the speaker at this gain (None: it does not; real-time).
        echo_delay_ms: ...this long after each sample reached the DAC (0-1000 ms).
        block_ms, prebuffer_ms, max_prebuffer_ms, fade_ms, max_stretch_ms: as for the real
            backend.
    """

    def __init__(
        self,
        *,
        realtime: bool = True,
        trailing_silence_ms: int | None = 0,
        output_latency_ms: float = 0.0,
        echo_gain_db: float | None = None,
        echo_delay_ms: float = 0.0,
        block_ms: int = 20,
        prebuffer_ms: float = 60,
        max_prebuffer_ms: float = 200,
        fade_ms: float = 15,
        max_stretch_ms: float = 200,
        on_device_lost: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(
            block_ms=block_ms,
            prebuffer_ms=prebuffer_ms if realtime else 0,
            max_prebuffer_ms=max_prebuffer_ms if realtime else 0,
            fade_ms=fade_ms,
            # Fast mode plays what it is given at once: nothing is ever late.
            max_stretch_ms=max_stretch_ms if realtime else 0,
            on_device_lost=on_device_lost,
        )
        self.realtime = realtime
        self.trailing_silence_ms = trailing_silence_ms
        self.output_latency = output_latency_ms / 1000
        self._source: np.ndarray | str | None = None  # samples, SILENCE, or None (no mic)
        self._source_pos = 0
        self._trailing_left: int | None = 0
        self._out = np.zeros(self.block_samples, np.int16)
        self._task: asyncio.Task[None] | None = None
        self._started_at = 0.0
        if not 0 <= echo_delay_ms <= 1000:
            raise ValueError("echo_delay_ms must be between 0 and 1000")
        self.echo_gain = None if echo_gain_db is None else 10 ** (echo_gain_db / 20)
        # What the speaker played, by DAC sample index since start (a ring of 2 s): the echo.
        self._echo_delay = round(echo_delay_ms * SAMPLE_RATE / 1000)
        self._echo_line = np.zeros(2 * SAMPLE_RATE, np.float64)

    # --- hooks for subclasses ----------------------------------------------------------------

    def _open_source(self) -> np.ndarray | str | None:
        """The mic's samples (24 kHz int16), SILENCE for endless silence, or None for no mic."""
        return None

    def _sink(self, samples: np.ndarray) -> None:
        """Where played samples go (the file backend writes them to a WAV)."""

    def _close_sink(self) -> None:
        pass

    # --- AudioBackend ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is not None:
            return
        self._source = self._open_source()
        self._source_pos = 0
        trailing = self.trailing_silence_ms
        self._trailing_left = None if trailing is None else SAMPLE_RATE * trailing // 1000
        if not self.realtime:
            self._trailing_left = self._trailing_left or 0
        self._started_at = time.monotonic()
        if self._source is None:
            self.mic.close()
        run = self._run_realtime() if self.realtime else self._feed_fast()
        self._task = asyncio.get_running_loop().create_task(run, name="simulated-audio")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.mic.close()
        self._close_sink()

    def _queue_output(self, pcm: bytes, item_id: str, content_index: int) -> None:
        self.jitter.write(pcm, item_id, content_index)
        if not self.realtime:
            self._play_now()

    # --- the clock ---------------------------------------------------------------------------

    async def _run_realtime(self) -> None:
        loop = asyncio.get_running_loop()
        block_s = self.block_samples / SAMPLE_RATE
        start = loop.time()
        tick = 0
        latency = round(self.output_latency * SAMPLE_RATE)
        lows_seen = 0
        while True:
            now = start + tick * block_s
            self.jitter.read_into(self._out, now + self.output_latency)
            if self.jitter.low_signals != lows_seen:  # as the real backend's loop would
                lows_seen = self.jitter.low_signals
                self.jitter.stretch()
            self._sink(self._out)
            if self.echo_gain is not None:
                self._echo_write(tick * self.block_samples + latency, self._out)
            if tick > 0 and not self.mic.closed:
                self._deliver_next(now - block_s, (tick - 1) * self.block_samples)
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * block_s - loop.time()))

    async def _feed_fast(self) -> None:
        block_s = self.block_samples / SAMPLE_RATE
        index = 0
        while not self.mic.closed:
            block = self._next_block()
            if block is None:
                self.mic.close()
                return
            captured_at = self._started_at + index * block_s
            await self.mic.put_waiting(MicBlock.of(block, captured_at))
            index += 1
            await asyncio.sleep(0)  # let the consumer run between blocks

    def _deliver_next(self, captured_at: float, index: int = 0) -> None:
        block = self._next_block()
        if block is None:
            self.mic.close()
            return
        if self.echo_gain is not None:
            block = self._with_echo(block, index)
        self.mic.put(MicBlock.of(block, captured_at))

    def _echo_write(self, index: int, samples: np.ndarray) -> None:
        """Remember output samples by the DAC sample index they reach the speaker at."""
        line = self._echo_line
        positions = np.arange(index, index + samples.size) % line.size
        line[positions] = samples

    def _with_echo(self, block: np.ndarray, index: int) -> np.ndarray:
        """The mic block captured from sample `index` on, plus what the speaker leaks."""
        line = self._echo_line
        source = np.arange(index, index + block.size) - self._echo_delay
        echo = np.where(source >= 0, line[source % line.size], 0.0) * self.echo_gain
        mixed = block.astype(np.float64) + echo
        return np.clip(np.round(mixed), -32768, 32767).astype(np.int16)

    def _next_block(self) -> np.ndarray | None:
        size = self.block_samples
        source = self._source
        if isinstance(source, np.ndarray) and self._source_pos < source.size:
            block = source[self._source_pos : self._source_pos + size]
            self._source_pos += size
            if block.size < size:
                block = np.concatenate([block, np.zeros(size - block.size, np.int16)])
            return block
        if source is None:
            return None
        if isinstance(source, str) or self._trailing_left is None:
            return np.zeros(size, np.int16)
        if self._trailing_left <= 0:
            return None
        self._trailing_left -= size
        return np.zeros(size, np.int16)

    def _play_now(self) -> None:
        """Fast mode: everything queued is played at once (prebuffer is 0)."""
        jitter: JitterBuffer = self.jitter
        idle = 0
        while jitter.buffered > 0 and idle < 2:  # the first read may only carry out a clear
            count = min(jitter.buffered, self._out.size)
            # DAC time 0 (long past): in fast mode a block is heard as soon as it is "played".
            played = jitter.read_into(self._out[:count], 0.0)
            self._sink(self._out[:played])
            idle = idle + 1 if played == 0 else 0
