"""Microphone capture: a PortAudio input stream whose callback hands blocks to asyncio.

The callback copies `indata` (the block's bytes) into a preallocated pool of blocks and wakes
the loop with `call_soon_threadsafe` to hand them over; it never polls, blocks, prints or
raises. Everything else happens on the asyncio thread: turning the block into bytes (the only
copy out of the pool), resampling to 24 kHz when the device would not open there, the level
for the meter, and queueing the `MicBlock`.

Batching: waking the loop is most of what a block costs (a self-pipe write, an epoll wake-up,
then the append's base64/JSON/WebSocket frame), so the loop can ask for one wake-up per
`wake_every` blocks; the blocks keep their own capture times and are handed over together (and
the protocol client sends them as one append). A block at or above `wake_peak` wakes the loop
at once whatever the batch, so the onset of speech is never held back. The engine chooses both
(`TalkEngine`: batches while nobody speaks, every block while push-to-talk is held).

Why a pool instead of `bytes(indata)` in the callback: `bench/audio.py` measures both copies
at a few hundred nanoseconds per block (`bytes()` is about 0.15 us cheaper), which is nothing
next to the ~50 us the whole callback costs (mostly `call_soon_threadsafe` waking the loop).
So cost does not decide; the rules do: no allocation in the hot path, and memory stays bounded
when the loop stalls (the oldest unread blocks are overwritten and counted as dropped instead
of piling up as bytes objects in the loop's queue).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from voicecli.audio.backend import SAMPLE_RATE, MicBlock, MicQueue, level
from voicecli.audio.devices import DeviceInfo
from voicecli.audio.resample import Rebuffer, StreamResampler
from voicecli.audio.stream import DeviceStream


__all__ = ["Capture"]


class Capture(DeviceStream):
    """One input stream feeding a `MicQueue` with 24 kHz blocks of `block_ms`.

    Args:
        device: the input device.
        rate: the rate to open it at (24000, or its native rate when it refuses 24 kHz).
        block_ms: block length, 10-100 ms.
        mic: where `MicBlock`s go.
        loop: the asyncio loop that consumes them.
        on_lost: called on the loop thread with one line if the stream dies on its own.
        pool_blocks: how many blocks the loop may lag behind before blocks are dropped.
    """

    direction = "input"

    def __init__(
        self,
        device: DeviceInfo,
        rate: int,
        block_ms: int,
        mic: MicQueue,
        loop: asyncio.AbstractEventLoop,
        on_lost: Callable[[str], None],
        pool_blocks: int = 50,
    ) -> None:
        super().__init__(device, rate, block_ms, loop, on_lost)
        self.out_block = SAMPLE_RATE * block_ms // 1000
        self._mic = mic
        self._pool = np.zeros((pool_blocks, self.block_frames), np.int16)
        self._slots = [self._pool[i] for i in range(pool_blocks)]  # views made once, not per call
        self._slot_bytes = [memoryview(slot).cast("B") for slot in self._slots]
        self._slot_frames = np.zeros(pool_blocks, np.int64)
        self._slot_time = np.zeros(pool_blocks, np.float64)  # when each block was captured
        self._pool_size = pool_blocks
        self._seq = 0  # next block the callback writes (callback-owned)
        self._woken = 0  # blocks the callback has woken the loop for (callback-owned)
        self._delivered = 0  # blocks handed to the mic queue (loop-owned)
        # Both set from the loop, read by the callback (single int stores: atomic).
        self.wake_every = 1
        """Wake the loop once per this many blocks."""
        self.wake_peak = 0
        """Wake it at once for a block whose peak reaches this (int16 units; 0: never)."""
        self._resampler = StreamResampler(rate, SAMPLE_RATE) if rate != SAMPLE_RATE else None
        self._rebuffer = Rebuffer(self.out_block) if self._resampler else None
        self.overflows = 0
        self.dropped = 0
        self.blocks = 0
        self.loop_closed = False

    # --- audio thread ------------------------------------------------------------------------

    def _callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        try:
            if status and status.input_overflow:
                self.overflows += 1
            seq = self._seq
            slot = seq % self._pool_size
            if frames == self.block_frames:
                self._slot_bytes[slot][:] = indata
            else:  # PortAudio promised `blocksize`; cope if a host API bends that
                frames = min(frames, self.block_frames)
                self._slot_bytes[slot][: 2 * frames] = memoryview(indata)[: 2 * frames]
            self._slot_frames[slot] = frames
            now = time.monotonic()
            adc = time_info.inputBufferAdcTime
            delay = time_info.currentTime - adc
            if adc <= 0 or not 0.0 <= delay < 1.0:
                delay = self._latency + frames / self.rate
            self._slot_time[slot] = now - delay
            self._seq = seq + 1  # publish last: the slot is in place
            due = seq + 1 - self._woken >= self.wake_every
            if not due and self.wake_peak:
                block = self._slots[slot]  # max/min: no temporary array, unlike abs()
                due = max(int(block.max()), -int(block.min())) >= self.wake_peak
            if due:
                self._woken = seq + 1
                self._loop.call_soon_threadsafe(self._deliver_until, seq + 1)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            self.loop_closed = True
        except Exception:  # noqa: BLE001 - a raise would silently kill the stream
            self.callback_errors += 1

    def _progress(self) -> int:
        return self._seq

    # --- asyncio thread ----------------------------------------------------------------------

    def flush(self) -> None:
        """Hand over every block captured so far, without waiting for the next wake-up."""
        self._deliver_until(self._seq)

    def _deliver_until(self, end: int) -> None:
        start = max(self._delivered, end - self._pool_size)
        self.dropped += start - self._delivered
        for seq in range(start, end):
            self._deliver(seq)
        self._delivered = max(self._delivered, end)

    def _deliver(self, seq: int) -> None:
        if self._seq - seq >= self._pool_size:  # the callback lapped us: slot reused
            self.dropped += 1
            return
        slot = seq % self._pool_size
        captured_at = float(self._slot_time[slot])
        # The block's bytes are the one copy out of the pool (what MicBlock carries anyway).
        pcm = self._pool[slot, : int(self._slot_frames[slot])].tobytes()
        if self._seq - seq >= self._pool_size:  # ...while we were copying
            self.dropped += 1
            return
        self.blocks += 1
        samples = np.frombuffer(pcm, np.int16)
        if self._resampler is None or self._rebuffer is None:
            rms, peak = level(samples)
            self._mic.put(MicBlock(pcm, captured_at, rms, peak))
            return
        converted = self._resampler.process(samples)
        end_time = captured_at + samples.size / self.rate
        blocks = self._rebuffer.push(converted)
        # Approximate capture times: the newest output sample is about the newest input one.
        behind = self._rebuffer.pending + self.out_block * len(blocks)
        for block in blocks:
            self._mic.put(MicBlock.of(block, end_time - behind / SAMPLE_RATE))
            behind -= self.out_block
