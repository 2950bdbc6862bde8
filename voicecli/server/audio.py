"""Audio helpers for the local server: wire formats, G.711, tones, WAV files and espeak-ng.

Internally the server works in the API's own reference format, PCM16 little-endian mono at
24 kHz (`pcm16`). The G.711 formats (`g711_ulaw`, `g711_alaw`) are 8 kHz with one byte per
sample; they are converted at the edges (numpy codecs below, soxr for the rate change).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np


__all__ = [
    "SAMPLE_RATE",
    "bytes_per_ms",
    "bytes_to_ms",
    "decode_to_pcm16",
    "encode_from_pcm16",
    "espeak_available",
    "read_wav",
    "resample_pcm16",
    "silence",
    "speak",
    "to_float",
    "tone",
    "tone_for_text",
]

SAMPLE_RATE = 24000
_FORMAT_RATES = {"pcm16": 24000, "g711_ulaw": 8000, "g711_alaw": 8000}
_FORMAT_WIDTHS = {"pcm16": 2, "g711_ulaw": 1, "g711_alaw": 1}


def format_rate(audio_format: str) -> int:
    return _FORMAT_RATES[audio_format]


def sample_width(audio_format: str) -> int:
    return _FORMAT_WIDTHS[audio_format]


def bytes_per_ms(audio_format: str) -> float:
    """48 for PCM16 at 24 kHz, 8 for G.711 (protocol reference §7)."""
    return _FORMAT_RATES[audio_format] * _FORMAT_WIDTHS[audio_format] / 1000


def bytes_to_ms(n_bytes: int, audio_format: str) -> float:
    return n_bytes / bytes_per_ms(audio_format)


# --- G.711 (ITU-T) codecs -------------------------------------------------------------------

_ULAW_BIAS = 0x84
# Segment end points of the 14-bit (mu-law) and 13-bit (A-law) companding curves (G.711).
_ULAW_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])
_ALAW_SEGMENT_ENDS = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])


def _ulaw_decode_table() -> np.ndarray:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = (((mantissa << 3) + _ULAW_BIAS) << exponent) - _ULAW_BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> np.ndarray:
    codes = np.arange(256, dtype=np.int32) ^ 0x55
    sign = codes & 0x80
    exponent = (codes >> 4) & 0x07
    mantissa = codes & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << (exponent - 1)
    )
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


_ULAW_TABLE = _ulaw_decode_table()
_ALAW_TABLE = _alaw_decode_table()


def _ulaw_encode(samples: np.ndarray) -> bytes:
    value = samples.astype(np.int32) >> 2
    mask = np.where(value < 0, 0x7F, 0xFF)
    value = np.minimum(np.abs(value), 8159) + (_ULAW_BIAS >> 2)
    segment = np.searchsorted(_ULAW_SEGMENT_ENDS, value)
    code = (np.minimum(segment, 7) << 4) | ((value >> (np.minimum(segment, 7) + 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return ((code ^ mask) & 0xFF).astype(np.uint8).tobytes()


def _alaw_encode(samples: np.ndarray) -> bytes:
    value = samples.astype(np.int32) >> 3
    mask = np.where(value >= 0, 0xD5, 0x55)
    value = np.where(value >= 0, value, -value - 1)
    segment = np.searchsorted(_ALAW_SEGMENT_ENDS, value)
    clipped = np.minimum(segment, 7)
    low_bits = np.where(clipped < 2, value >> 1, value >> np.maximum(clipped, 1)) & 0x0F
    code = np.where(segment >= 8, 0x7F, (clipped << 4) | low_bits)
    return ((code ^ mask) & 0xFF).astype(np.uint8).tobytes()


# --- conversions --------------------------------------------------------------------------


def resample_pcm16(pcm: bytes, rate_in: int, rate_out: int) -> bytes:
    if rate_in == rate_out or not pcm:
        return pcm
    import soxr

    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
    out = soxr.resample(samples, rate_in, rate_out)
    return (np.clip(out, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()


def to_float(data: bytes, audio_format: str) -> np.ndarray:
    """Samples of `data` (in its wire format and native rate) as float32 in [-1, 1)."""
    if audio_format == "pcm16":
        usable = len(data) - len(data) % 2
        ints = np.frombuffer(data[:usable], dtype="<i2")
    else:
        table = _ULAW_TABLE if audio_format == "g711_ulaw" else _ALAW_TABLE
        ints = table[np.frombuffer(data, dtype=np.uint8)]
    return ints.astype(np.float32) / 32768.0


def decode_to_pcm16(data: bytes, audio_format: str) -> bytes:
    """Wire audio -> PCM16 24 kHz mono."""
    if audio_format == "pcm16":
        return data[: len(data) - len(data) % 2]
    table = _ULAW_TABLE if audio_format == "g711_ulaw" else _ALAW_TABLE
    pcm8k = table[np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()
    return resample_pcm16(pcm8k, 8000, SAMPLE_RATE)


def encode_from_pcm16(pcm: bytes, audio_format: str) -> bytes:
    """PCM16 24 kHz mono -> wire audio."""
    if audio_format == "pcm16":
        return pcm
    pcm8k = resample_pcm16(pcm, SAMPLE_RATE, 8000)
    samples = np.frombuffer(pcm8k, dtype="<i2")
    return _ulaw_encode(samples) if audio_format == "g711_ulaw" else _alaw_encode(samples)


# --- synthetic and recorded audio ------------------------------------------------------------


def silence(duration_ms: float) -> bytes:
    return bytes(2 * int(SAMPLE_RATE * duration_ms / 1000))


def tone(duration_ms: float, frequency: float = 440.0, level_dbfs: float = -12.0) -> bytes:
    """A sine tone (PCM16 24 kHz) with 10 ms fades so it starts and stops without clicks."""
    n = int(SAMPLE_RATE * duration_ms / 1000)
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
    wave_ = np.sin(2 * np.pi * frequency * t) * (10 ** (level_dbfs / 20))
    fade = min(n // 2, SAMPLE_RATE // 100)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        wave_[:fade] *= ramp
        wave_[n - fade :] *= ramp[::-1]
    return (wave_ * 32767).astype("<i2").tobytes()


def tone_for_text(text: str) -> bytes:
    """A tone about as long as speaking `text` would take (~65 ms per character, 0.4-10 s)."""
    duration_ms = min(10_000.0, max(400.0, 65.0 * len(text.strip())))
    return tone(duration_ms)


def read_wav(path: str | Path) -> bytes:
    """A 16-bit WAV file (any rate, any channel count) as PCM16 24 kHz mono."""
    with wave.open(str(path), "rb") as wav:
        return _wav_to_pcm16(wav)


def _wav_to_pcm16(wav: wave.Wave_read) -> bytes:
    if wav.getsampwidth() != 2:
        raise ValueError(f"only 16-bit WAV is supported, not {8 * wav.getsampwidth()}-bit")
    frames = wav.readframes(wav.getnframes())
    samples = np.frombuffer(frames, dtype="<i2")
    channels = wav.getnchannels()
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype("<i2")
    return resample_pcm16(samples.tobytes(), wav.getframerate(), SAMPLE_RATE)


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, timeout_s: float = 20.0) -> bytes | None:
    """`text` spoken by espeak-ng as PCM16 24 kHz, or None when espeak-ng is not usable."""
    if not text.strip() or not espeak_available():
        return None
    try:
        result = subprocess.run(
            ["espeak-ng", "--stdout", text], capture_output=True, timeout=timeout_s, check=True
        )
        with wave.open(io.BytesIO(_fix_streamed_wav(result.stdout)), "rb") as wav:
            return _wav_to_pcm16(wav)
    except (OSError, subprocess.SubprocessError, wave.Error, EOFError, ValueError):
        return None


def _fix_streamed_wav(data: bytes) -> bytes:
    """espeak-ng writes a WAV to a pipe with placeholder sizes; patch them from the real length."""
    if len(data) < 44 or data[:4] != b"RIFF":
        return data
    fixed = bytearray(data)
    fixed[4:8] = (len(data) - 8).to_bytes(4, "little")
    data_at = fixed.find(b"data", 12)
    if data_at >= 0:
        fixed[data_at + 4 : data_at + 8] = (len(data) - data_at - 8).to_bytes(4, "little")
    return bytes(fixed)
