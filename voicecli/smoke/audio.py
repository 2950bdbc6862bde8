"""The smoke run's audio: WAV turns as the microphone, a file backend as the speaker.

`FileBackend` takes one input WAV for a whole session; a smoke run needs to speak turn after
turn, each only once the previous reply is over. So `SmokeAudio` keeps the file backend for
the speaker (its jitter buffer, simulated clock, played positions and the session's output
WAV) and supplies the microphone itself:

- real-time pace: a block every `block_ms` on absolute deadlines, like a device: the queued
  turn's samples, else digital silence (a quiet room), so the server's VAD sees the turn end;
- fast pace: only the queued turn's blocks, as fast as the engine takes them (none dropped).

`feed(samples)` queues a turn and returns once the engine has taken its last block (so a
push-to-talk release comes after all of it). `begin_turn()` / `end_turn()` collect the
assistant audio handed to `play()` in between, which the runner writes as that turn's WAV.

No sound card is involved.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import deque
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from voicecli.audio.backend import SAMPLE_RATE, AudioStats, MicBlock, MicQueue, PlayedLevel
from voicecli.audio.filebackend import FileBackend


__all__ = ["SmokeAudio"]


class SmokeAudio:
    """An `AudioBackend` for scripted turns (see the module docstring).

    Args:
        realtime: real-time pace (True) or as fast as possible.
        session_wav: where the speaker's whole output goes (None: not written).
        block_ms: mic block length.
        output_block_ms: the speaker's (None: the same as the mic's).
        prebuffer_ms: assistant audio queued before the speaker starts (real-time pace).
        max_stretch_ms: how much late audio may be stretched per spurt (real-time pace).
    """

    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        *,
        realtime: bool = True,
        session_wav: str | Path | None = None,
        block_ms: int = 20,
        output_block_ms: int | None = None,
        prebuffer_ms: float = 60,
        max_stretch_ms: float = 200,
    ) -> None:
        self.realtime = realtime
        self.block_samples = SAMPLE_RATE * block_ms // 1000
        self.speaker = FileBackend(
            None,
            session_wav,
            realtime=realtime,
            block_ms=output_block_ms or block_ms,
            prebuffer_ms=prebuffer_ms,
            max_stretch_ms=max_stretch_ms,
        )
        self.mic = MicQueue()
        self._pending: deque[np.ndarray] = deque()
        self._delivered = 0
        self._consumed = 0
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._clock_task: asyncio.Task[None] | None = None
        self._recording: list[bytes] | None = None

    # --- AudioBackend ------------------------------------------------------------------------

    async def start(self) -> None:
        await self.speaker.start()
        if self.realtime and self._clock_task is None:
            self._clock_task = asyncio.get_running_loop().create_task(
                self._run_clock(), name="smoke-mic"
            )

    async def stop(self) -> None:
        task, self._clock_task = self._clock_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.mic.close()
        await self.speaker.stop()
        # Nobody will take the rest: release whoever waits in feed() (the runner then sees
        # why the engine stopped).
        for _, waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    async def mic_blocks(self) -> AsyncIterator[MicBlock]:
        async for block in self.mic.blocks():
            yield block
            # The consumer asked for the next block: it has handled this one.
            self._consumed += 1
            self._wake_waiters()

    def play(self, pcm: bytes, item_id: str, content_index: int) -> None:
        if self._recording is not None:
            self._recording.append(pcm)
        self.speaker.play(pcm, item_id, content_index)

    def clear(self) -> None:
        self.speaker.clear()

    def end_part(self, item_id: str, content_index: int) -> None:
        self.speaker.end_part(item_id, content_index)

    def played_ms(self, item_id: str, content_index: int) -> int:
        return self.speaker.played_ms(item_id, content_index)

    def stats(self) -> AudioStats:
        return dataclasses.replace(
            self.speaker.stats(),
            mic_rms=self.mic.last_rms,
            mic_peak=self.mic.last_peak,
            mic_dropped=self.mic.dropped,
        )

    async def drain(self, timeout: float | None = None) -> bool:
        return await self.speaker.drain(timeout)

    def played_levels(self, cursor: int = 0) -> tuple[list[PlayedLevel], int]:
        return self.speaker.played_levels(cursor)

    def pace_mic(self, batch_ms: int, wake_peak: float = 0.0) -> None:
        """The smoke run feeds its mic blocks itself: nothing to batch."""

    # --- turns -------------------------------------------------------------------------------

    async def feed(self, samples: np.ndarray) -> None:
        """Speak `samples` (24 kHz int16) into the mic; returns once the engine took them all
        (or the backend was stopped)."""
        blocks = _blocks(samples, self.block_samples)
        if not blocks:
            return
        if self.realtime:
            self._pending.extend(blocks)
            target = self._delivered + len(self._pending)
        else:
            for block in blocks:
                await self._put(block, asyncio.get_running_loop().time())
            target = self._delivered
        if self._taken() >= target:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((target, waiter))
        await waiter

    def begin_turn(self) -> None:
        """Start collecting the assistant audio handed to `play()`."""
        self._recording = []

    def end_turn(self) -> bytes:
        """The assistant audio played since `begin_turn()` (PCM16 24 kHz mono)."""
        pcm = b"".join(self._recording or [])
        self._recording = None
        return pcm

    # --- internals ---------------------------------------------------------------------------

    async def _run_clock(self) -> None:
        loop = asyncio.get_running_loop()
        block_s = self.block_samples / SAMPLE_RATE
        silence = np.zeros(self.block_samples, np.int16)
        start = loop.time()
        tick = 0
        while True:
            tick += 1
            await asyncio.sleep(max(0.0, start + tick * block_s - loop.time()))
            block = self._pending.popleft() if self._pending else silence
            self._deliver(block, start + (tick - 1) * block_s)

    def _deliver(self, block: np.ndarray, captured_at: float) -> None:
        self.mic.put(MicBlock.of(block, captured_at))
        self._delivered += 1

    async def _put(self, block: np.ndarray, captured_at: float) -> None:
        await self.mic.put_waiting(MicBlock.of(block, captured_at))
        self._delivered += 1

    def _taken(self) -> int:
        # A block the queue dropped (the engine fell 5 s behind) will never be consumed.
        return self._consumed + self.mic.dropped

    def _wake_waiters(self) -> None:
        still = []
        for target, waiter in self._waiters:
            if self._taken() >= target:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                still.append((target, waiter))
        self._waiters = still


def _blocks(samples: np.ndarray, size: int) -> list[np.ndarray]:
    samples = np.asarray(samples, dtype=np.int16)
    blocks = []
    for start in range(0, samples.size, size):
        block = samples[start : start + size]
        if block.size < size:
            block = np.concatenate([block, np.zeros(size - block.size, np.int16)])
        blocks.append(np.ascontiguousarray(block, dtype="<i2"))
    return blocks
