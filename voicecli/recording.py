"""`--record DIR`: one talk session on disk, as it sounded and as it went over the wire.

Per session, in DIR:

- `voicecli-<date>-<time>.wav`: stereo PCM16 at 24 kHz; the microphone on the left, the
  assistant on the right, on one timeline, with silence wherever nothing was heard.
- `voicecli-<date>-<time>.jsonl`: one JSON object per line for every event sent and received
  (`{"at": unix s, "dir": "sent"|"received", "type": ..., "event": {...}}`) and for the
  engine's own notes (`"dir": "engine"`, with `"note"`): reconnects, barge-ins, errors.
  Audio payloads are replaced by `"<N bytes>"`, any other string longer than
  `MAX_STRING_CHARS` is cut, and every secret given (the API key) is replaced by
  `[redacted]` in the finished line, so it cannot reach the file by any field.

Timeline: a mic block goes where its first sample was captured (`MicBlock.captured_at`, the
monotonic clock). Assistant audio goes where the player starts it: right after what is
already queued, or, when the player ran dry, once its prebuffer has filled (the caller says
how long that is: `AudioStats.prebuffer_ms`); a barge-in (`clear`) cuts it where the fade
began. Measured against the simulated speaker this is right to within one audio block (20 ms:
the player starts on block boundaries), and to within what the player stretched: the
assistant audio is recorded as received, so where the player played pitch periods twice
while the next delta was late (`AudioStats.stretched_ms`), the rest of that reply reached the
speaker that much later than the recording shows (a recording with holes where no sound was
would be worse). The output device's own latency is not modelled: with a real sound card the
right channel runs that much (typically 10-50 ms) early.

Both files are written as the session goes: the WAV header is updated with every block of
samples written (about once a second), and each JSONL line is flushed, so a crash leaves
readable files. Audio is kept in memory only for the last few seconds (what may still be
placed or cut).

Imports: standard library and numpy.
"""

from __future__ import annotations

import json
import time
import wave
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from voicecli.errors import UsageError


__all__ = ["MAX_STRING_CHARS", "SessionRecording", "elide"]

SAMPLE_RATE = 24000
MAX_STRING_CHARS = 2000
"""Longer strings in a captured event (other than audio) keep their start and their length."""
_KEEP_CHARS = 200
_AUDIO_DELTA_TYPES = frozenset({"response.output_audio.delta", "response.audio.delta"})
_HOLD_BACK_S = 1.0
"""Samples this recent stay in memory: a mic block arrives a little after it was captured."""
_WRITE_EVERY_S = 1.0
REDACTED = "[redacted]"


def _audio_note(base64_text: str) -> str:
    return f"<{len(base64_text) * 3 // 4} bytes>"


def elide(data: Any, *, audio_delta: bool = False) -> Any:
    """A copy of a wire event fit for a capture: base64 audio replaced by `<N bytes>` (the
    `audio` fields, and `delta` of audio deltas), other long strings cut to their start plus
    `…<N chars>`."""
    if isinstance(data, Mapping):
        if audio_delta is False and data.get("type") in _AUDIO_DELTA_TYPES:
            audio_delta = True
        out: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, str) and (key == "audio" or (key == "delta" and audio_delta)):
                out[key] = _audio_note(value)
            else:
                out[key] = elide(value)
        return out
    if isinstance(data, list):
        return [elide(value) for value in data]
    if isinstance(data, str) and len(data) > MAX_STRING_CHARS:
        return f"{data[:_KEEP_CHARS]}…<{len(data)} chars>"
    return data


class _Channel:
    """Samples not yet written, from absolute sample index `base` on (PCM16 bytes)."""

    def __init__(self) -> None:
        self.pending = bytearray()

    @property
    def samples(self) -> int:
        return len(self.pending) // 2

    def put(self, offset: int, pcm: bytes) -> None:
        """Place `pcm` at `offset` samples after the base (overwriting what is there)."""
        if offset < 0:
            pcm = pcm[-offset * 2 :]
            offset = 0
        if not pcm:
            return
        end = offset * 2 + len(pcm)
        if len(self.pending) < end:
            self.pending.extend(bytes(end - len(self.pending)))
        self.pending[offset * 2 : end] = pcm

    def silence(self, start: int, end: int) -> None:
        start, end = max(start, 0) * 2, min(end * 2, len(self.pending))
        if end > start:
            self.pending[start:end] = bytes(end - start)

    def take(self, count: int) -> np.ndarray:
        """The first `count` samples (zero-padded), removed from the pending ones."""
        out = np.zeros(count, np.int16)
        have = min(count, self.samples)
        if have:
            out[:have] = np.frombuffer(bytes(self.pending[: have * 2]), "<i2")
            del self.pending[: have * 2]
        return out


class SessionRecording:
    """A session being recorded. Create with `SessionRecording.create(directory)`."""

    def __init__(
        self,
        wav_path: Path,
        jsonl_path: Path,
        *,
        secrets: Iterable[str | None] = (),
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.wav_path = wav_path
        self.jsonl_path = jsonl_path
        self._secrets = [secret for secret in secrets if secret]
        self._clock = clock
        self._wall = wall_clock
        self._t0 = clock()
        self._base = 0
        """Absolute sample index of the first sample not yet written."""
        self._mic = _Channel()
        self._assistant = _Channel()
        self._assistant_end = 0
        """Absolute sample index where the assistant audio queued so far ends."""
        self.closed = False
        try:
            self._jsonl: TextIO = open(jsonl_path, "x", encoding="utf-8", buffering=1)  # noqa: SIM115
            self._wav_file = open(wav_path, "xb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise UsageError(f"--record: cannot write {exc.filename}: {exc.strerror}") from None
        self._wav = wave.open(self._wav_file, "wb")
        self._wav.setnchannels(2)
        self._wav.setsampwidth(2)
        self._wav.setframerate(SAMPLE_RATE)
        self.frames_written = 0

    @classmethod
    def create(
        cls,
        directory: str | Path,
        *,
        secrets: Iterable[str | None] = (),
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> SessionRecording:
        """Start recording into `directory` (created if needed) under a new name from the
        date and time. Raises UsageError when the directory cannot be written."""
        directory = Path(directory).expanduser()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"--record: cannot create {directory}: {exc.strerror}") from None
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(wall_clock()))
        stem, number = f"voicecli-{stamp}", 1
        while (directory / f"{stem}.wav").exists() or (directory / f"{stem}.jsonl").exists():
            number += 1
            stem = f"voicecli-{stamp}-{number}"
        return cls(
            directory / f"{stem}.wav",
            directory / f"{stem}.jsonl",
            secrets=secrets,
            clock=clock,
            wall_clock=wall_clock,
        )

    def add_secret(self, secret: str | None) -> None:
        """Never write `secret` (e.g. the API key, once the session knows it)."""
        if secret and secret not in self._secrets:
            self._secrets.append(secret)

    # --- audio -------------------------------------------------------------------------

    def _index(self, at: float) -> int:
        return max(0, round((at - self._t0) * SAMPLE_RATE))

    def mic(self, pcm: bytes, captured_at: float) -> None:
        """A block of mic audio (24 kHz PCM16) whose first sample was captured at
        `captured_at` (the recording's clock)."""
        if self.closed:
            return
        self._mic.put(self._index(captured_at) - self._base, pcm)
        self._write_settled()

    def play(self, pcm: bytes, prebuffer_s: float = 0.0) -> None:
        """Assistant audio handed to the player now; a player that ran dry starts it after
        `prebuffer_s` (its jitter buffer's prebuffer)."""
        if self.closed:
            return
        now = self._index(self._clock())
        start = (
            self._assistant_end
            if self._assistant_end >= now
            else self._index(self._clock() + prebuffer_s)
        )
        start = max(start, self._base)
        self._assistant.put(start - self._base, pcm)
        self._assistant_end = start + len(pcm) // 2
        self._write_settled()

    def clear(self) -> None:
        """The player dropped what was queued (barge-in): it is not heard."""
        if self.closed:
            return
        cut = max(self._index(self._clock()), self._base)
        if self._assistant_end > cut:
            self._assistant.silence(cut - self._base, self._assistant_end - self._base)
            self._assistant_end = cut

    def _write_settled(self) -> None:
        settled = self._index(self._clock() - _HOLD_BACK_S)
        if settled - self._base >= _WRITE_EVERY_S * SAMPLE_RATE:
            self._write(settled - self._base)

    def _write(self, count: int) -> None:
        if count <= 0:
            return
        frames = np.empty(count * 2, np.int16)
        frames[0::2] = self._mic.take(count)
        frames[1::2] = self._assistant.take(count)
        self._wav.writeframes(frames.astype("<i2", copy=False).tobytes())  # updates the header
        self._base += count
        self.frames_written += count

    # --- events ------------------------------------------------------------------------

    def sent(self, data: Mapping[str, Any]) -> None:
        self._line({"dir": "sent", "type": data.get("type"), "event": elide(data)})

    def received(self, data: Mapping[str, Any] | None, event_type: str, note: str = "") -> None:
        line: dict[str, Any] = {"dir": "received", "type": event_type}
        if data is not None:
            line["event"] = elide(data)
        if note:
            line["note"] = elide(note)
        self._line(line)

    def note(self, tag: str, text: str) -> None:
        self._line({"dir": "engine", "type": tag, "note": elide(text)})

    def _line(self, fields: dict[str, Any]) -> None:
        if self.closed:
            return
        text = json.dumps({"at": round(self._wall(), 3), **fields}, ensure_ascii=False, default=str)
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        self._jsonl.write(text + "\n")

    # --- the end -----------------------------------------------------------------------

    def close(self) -> None:
        """Write what is left (up to now; assistant audio queued beyond now was never heard)
        and close both files. Idempotent."""
        if self.closed:
            return
        self.clear()
        end = max(self._index(self._clock()), self._base + self._mic.samples)
        self._write(end - self._base)
        self.closed = True
        self._wav.close()
        self._wav_file.close()
        self._jsonl.close()
