"""The echo guard: gate relative to the playback envelope, half-duplex, and the laptop hint."""

from __future__ import annotations

import math

import numpy as np
import pytest

from voicecli.echo import EchoGuard, EchoMode, EchoSettings, laptop_pair_hint, rms


def tone(level: float, ms: int = 20, freq: float = 440.0) -> bytes:
    """A sine block whose RMS is `level` of full scale."""
    n = 24 * ms
    t = np.arange(n) / 24000.0
    samples = np.sin(2 * np.pi * freq * t) * level * math.sqrt(2) * 32767
    return samples.astype("<i2").tobytes()


def test_rms_of_known_signals() -> None:
    assert rms(b"") == 0.0
    assert rms(bytes(960)) == 0.0
    assert rms(tone(0.25)) == pytest.approx(0.25, rel=0.01)
    full = np.full(480, -32768, dtype="<i2").tobytes()
    assert rms(full) == pytest.approx(1.0)


def test_off_passes_everything_unchanged() -> None:
    guard = EchoGuard(EchoSettings(mode=EchoMode.OFF))
    guard.on_playback_level(0.9, 0.0)
    block = tone(0.01)
    assert guard.filter(block, 0.0) is block
    assert not guard.closed


def test_gate_silences_echo_and_passes_a_louder_talker() -> None:
    guard = EchoGuard(EchoSettings(mode=EchoMode.GATE, gate_margin_db=6.0, gate_hold_s=0.25))
    guard.on_playback_level(0.2, 0.0)
    echo = tone(0.15)  # the speaker leaking back, a little quieter than what plays
    out = guard.filter(echo, 0.01)
    assert out == bytes(len(echo)) and guard.closed
    talker = tone(0.5)  # the user speaking up over the assistant (+8 dB)
    assert guard.filter(talker, 0.02) == talker
    assert not guard.closed
    # The gate holds open briefly so quieter syllables of the talker are not chopped...
    guard.on_playback_level(0.2, 0.2)
    assert guard.filter(echo, 0.2) == echo
    # ...and closes again after the hold.
    guard.on_playback_level(0.2, 0.3)
    assert guard.filter(echo, 0.3) == bytes(len(echo))
    assert guard.blocks_silenced == 2


def test_gate_envelope_decays_after_playback_stops() -> None:
    settings = EchoSettings(mode=EchoMode.GATE, release_s=0.25, silence_dbfs=-50.0)
    guard = EchoGuard(settings)
    guard.on_playback_level(0.3, 0.0)
    guard.on_playback_level(0.0, 0.05)  # playback stopped; the echo tail decays
    assert guard.playback_envelope(0.05) == pytest.approx(0.3 * math.exp(-0.05 / 0.25))
    quiet_voice = tone(0.05)
    assert guard.filter(quiet_voice, 0.1) == bytes(len(quiet_voice))
    # 0.3 * exp(-t/0.25) falls below 0.05 / 2 (6 dB margin) after about 0.62 s.
    assert guard.filter(quiet_voice, 0.7) == quiet_voice


def test_gate_is_open_when_nothing_plays() -> None:
    guard = EchoGuard(EchoSettings(mode=EchoMode.GATE))
    whisper = tone(0.001)
    assert guard.filter(whisper, 0.0) == whisper
    guard.on_playback_level(0.001, 1.0)  # below the -50 dBFS silence floor
    assert guard.filter(whisper, 1.0) == whisper


def test_half_duplex_closes_while_audible_and_for_the_tail() -> None:
    guard = EchoGuard(EchoSettings(mode=EchoMode.HALF_DUPLEX, tail_s=0.3))
    loud = tone(0.8)
    assert guard.filter(loud, 0.0) == loud
    guard.on_assistant_audible(True, 1.0)
    assert guard.filter(loud, 1.5) == bytes(len(loud))  # even a loud talker: no barge-in
    guard.on_assistant_audible(False, 2.0)
    assert guard.filter(loud, 2.2) == bytes(len(loud))
    assert guard.filter(loud, 2.31) == loud


def test_half_duplex_also_follows_the_measured_playback_level() -> None:
    guard = EchoGuard(EchoSettings(mode=EchoMode.HALF_DUPLEX, tail_s=0.3))
    guard.on_playback_level(0.2, 5.0)  # audio still coming out of the device
    block = tone(0.5)
    assert guard.filter(block, 5.1) == bytes(len(block))
    assert guard.filter(block, 5.31) == block


@pytest.mark.parametrize(
    ("mic", "speaker", "hinted"),
    [
        ("MacBook Pro Microphone", "MacBook Pro Speakers", True),
        ("Built-in Microphone", "Built-in Output", True),
        ("Internal Microphone", "Internal Speakers", True),
        ("HDA Intel PCH: ALC256 Analog (hw:0,0)", "HDA Intel PCH: ALC256 Analog (hw:0,0)", True),
        ("Microphone Array (Realtek(R) Audio)", "Speakers (Realtek(R) Audio)", True),
        ("MacBook Pro Microphone", "External Headphones", False),
        ("Jabra Headset Microphone", "Jabra Headset", False),
        ("Microphone (USB Audio)", "Speakers (USB Audio)", False),
        ("HDA Intel PCH: ALC256 Analog (hw:0,0)", "USB Audio Device (hw:1,0)", False),
        ("default", "default", False),
        ("pulse", "pulse", False),
        (None, "MacBook Pro Speakers", False),
    ],
)
def test_laptop_pair_hint(mic: str | None, speaker: str | None, hinted: bool) -> None:
    hint = laptop_pair_hint(mic, speaker)
    assert (hint is not None) is hinted
    if hint:
        assert "\n" not in hint and "headphones" in hint


def test_hint_mentions_the_active_guard() -> None:
    hint = laptop_pair_hint("Built-in Microphone", "Built-in Output", EchoMode.GATE)
    assert hint is not None and "(gate)" in hint
