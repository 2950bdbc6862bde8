"""WAV files in and out for the file backend: any PCM WAV in, 24 kHz mono PCM16 out.

Reading downmixes to mono and resamples to 24 kHz with soxr; problems become one-line
`AudioError`s. Writing streams blocks to disk as they are played. Standard library `wave`.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from voicecli.audio.resample import resample, to_int16
from voicecli.errors import AudioError


__all__ = ["WavWriter", "read_wav"]


def read_wav(path: str | Path, rate: int = 24000) -> np.ndarray:
    """The WAV's audio as int16 mono at `rate`. Raises AudioError for unreadable files."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as wav:
            channels = wav.getnchannels()
            width = wav.getsampwidth()
            file_rate = wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except FileNotFoundError:
        raise AudioError(f"input WAV '{path}' does not exist") from None
    except (wave.Error, EOFError, OSError) as exc:
        raise AudioError(f"cannot read '{path}' as a PCM WAV file: {exc}") from None
    samples = _decode(frames, width, path)
    if channels > 1:
        usable = samples.size - samples.size % channels
        samples = samples[:usable].reshape(-1, channels).mean(axis=1)
    mono = to_int16(samples) if samples.dtype != np.int16 else samples
    return resample(mono, file_rate, rate)


def _decode(frames: bytes, width: int, path: Path) -> np.ndarray:
    if width == 1:  # unsigned 8-bit
        return (np.frombuffer(frames, np.uint8).astype(np.float32) - 128.0) * 256.0
    if width == 2:
        return np.frombuffer(frames, "<i2").astype(np.int16)
    if width == 3:
        raw = np.frombuffer(frames, np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        return value.astype(np.float32) / 256.0
    if width == 4:
        return np.frombuffer(frames, "<i4").astype(np.float64) / 65536.0
    raise AudioError(f"'{path}' uses {8 * width}-bit samples; only 8/16/24/32-bit PCM is supported")


class WavWriter:
    """A 16-bit mono WAV written block by block; `close()` finalises the header."""

    def __init__(self, path: str | Path, rate: int = 24000) -> None:
        self.path = Path(path)
        try:
            self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            raise AudioError(f"cannot write output WAV '{self.path}': {exc.strerror}") from None
        self._wav = wave.open(self._file, "wb")
        self._wav.setnchannels(1)
        self._wav.setsampwidth(2)
        self._wav.setframerate(rate)
        self.frames = 0

    def write(self, samples: np.ndarray) -> None:
        self._wav.writeframes(samples.astype("<i2", copy=False).tobytes())
        self.frames += samples.size

    def close(self) -> None:
        self._wav.close()
        self._file.close()
