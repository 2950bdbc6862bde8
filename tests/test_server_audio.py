"""Audio helpers of the local server: wire-format arithmetic, G.711, tones, WAV and espeak-ng."""

from __future__ import annotations

import shutil
import warnings
import wave
from pathlib import Path

import numpy as np
import pytest

from voicecli.server import audio


def rms_dbfs(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) / 32768
    return float(10 * np.log10(np.mean(samples * samples)))


def test_wire_format_arithmetic_matches_the_protocol():
    assert audio.bytes_per_ms("pcm16") == 48
    assert audio.bytes_per_ms("g711_ulaw") == audio.bytes_per_ms("g711_alaw") == 8
    assert audio.bytes_to_ms(4800, "pcm16") == 100
    assert audio.bytes_to_ms(800, "g711_alaw") == 100


def test_tone_has_the_requested_length_and_level():
    pcm = audio.tone(500, level_dbfs=-12)
    assert len(pcm) == 500 * 48
    # A sine's RMS is 3 dB below its peak; the fades take a little more.
    assert rms_dbfs(pcm) == pytest.approx(-15.0, abs=0.2)
    assert audio.silence(250) == bytes(250 * 48)


def test_tone_for_text_is_about_as_long_as_saying_it():
    assert len(audio.tone_for_text("hi")) == 400 * 48  # minimum
    assert len(audio.tone_for_text("x" * 20)) == 1300 * 48
    assert len(audio.tone_for_text("x" * 1000)) == 10_000 * 48  # maximum


@pytest.mark.parametrize("audio_format", ["g711_ulaw", "g711_alaw"])
def test_g711_round_trip_keeps_the_signal(audio_format: str):
    pcm = audio.tone(400, frequency=300, level_dbfs=-6)
    encoded = audio.encode_from_pcm16(pcm, audio_format)
    assert len(encoded) == 400 * 8
    decoded = audio.decode_to_pcm16(encoded, audio_format)
    original = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    back = np.frombuffer(decoded, dtype="<i2").astype(np.float64)[: len(original)]
    error = np.sqrt(np.mean((original - back) ** 2)) / np.sqrt(np.mean(original**2))
    assert error < 0.05  # G.711 is ~38 dB SNR; the resampling costs a little


def test_g711_codecs_match_the_itu_reference_bit_for_bit():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # the C reference, gone in Python 3.13
    every_sample = np.arange(-32768, 32768, dtype="<i2")
    assert audio._ulaw_encode(every_sample) == audioop.lin2ulaw(every_sample.tobytes(), 2)
    assert audio._alaw_encode(every_sample) == audioop.lin2alaw(every_sample.tobytes(), 2)
    codes = bytes(range(256))
    assert audio._ULAW_TABLE.astype("<i2").tobytes() == audioop.ulaw2lin(codes, 2)
    assert audio._ALAW_TABLE.astype("<i2").tobytes() == audioop.alaw2lin(codes, 2)


def test_to_float_reads_each_format():
    pcm = audio.tone(100)
    assert len(audio.to_float(pcm, "pcm16")) == 2400
    assert len(audio.to_float(pcm + b"\x01", "pcm16")) == 2400  # a dangling byte is ignored
    assert len(audio.to_float(audio.encode_from_pcm16(pcm, "g711_ulaw"), "g711_ulaw")) == 800


def write_wav(path: Path, rate: int, channels: int, frames: np.ndarray, width: int = 2) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        wav.writeframes(frames.tobytes())
    return path


def test_read_wav_converts_to_24_khz_mono(tmp_path: Path):
    t = np.arange(44100) / 44100
    left = (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype("<i2")
    stereo = np.column_stack([left, left]).reshape(-1)
    pcm = audio.read_wav(write_wav(tmp_path / "s.wav", 44100, 2, stereo))
    assert len(pcm) == pytest.approx(24000 * 2, abs=4)
    assert rms_dbfs(pcm) == pytest.approx(-9.0, abs=0.3)


def test_read_wav_refuses_8_bit(tmp_path: Path):
    path = write_wav(tmp_path / "b.wav", 8000, 1, np.zeros(800, dtype=np.uint8), width=1)
    with pytest.raises(ValueError, match="16-bit"):
        audio.read_wav(path)


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng is not installed")
def test_speak_gives_24_khz_speech():
    pcm = audio.speak("What is the capital of France?")
    assert pcm is not None
    assert 1.5 < len(pcm) / 48000 < 2.5  # espeak says it in ~1.86 s
    assert rms_dbfs(pcm) > -30


def test_speak_without_espeak_or_text_gives_none(monkeypatch: pytest.MonkeyPatch):
    assert audio.speak("   ") is None
    monkeypatch.setattr(audio.shutil, "which", lambda name: None)
    assert audio.speak("hello") is None
