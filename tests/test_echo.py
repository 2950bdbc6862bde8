"""The echo guard: the gate against what the speaker really played, half-duplex, the laptop hint.

The gate tests simulate the echo path sample by sample: what the speaker plays (reported to the
guard in 5 ms spans by DAC time, as the backends do) reaches the microphone `delay` later,
`loss` dB quieter, and the user may talk on top. Mic blocks are 20 ms with their ADC time.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import pytest

from voicecli.echo import EchoGuard, EchoMode, EchoSettings, laptop_pair_hint, rms


RATE = 24000
BLOCK = 480  # 20 ms mic blocks
SPAN = 120  # 5 ms played spans (backend.PLAYED_SPAN_MS)
T0 = 1000.0  # monotonic time of sample 0


def tone(level: float, ms: int = 20, freq: float = 440.0) -> bytes:
    """A sine block whose RMS is `level` of full scale."""
    n = 24 * ms
    t = np.arange(n) / 24000.0
    samples = np.sin(2 * np.pi * freq * t) * level * math.sqrt(2) * 32767
    return samples.astype("<i2").tobytes()


def speechlike(seconds: float, level_db: float, seed: int) -> np.ndarray:
    """Syllables of noise (80-250 ms, each at its own level within +-8 dB of `level_db`, sharp
    onsets) with short pauses: the envelope of speech without needing a synthesiser."""
    rng = np.random.default_rng(seed)
    out = np.zeros(int(seconds * RATE))
    at = 0
    while at < out.size:
        length = int(rng.uniform(0.08, 0.25) * RATE)
        level = 10 ** ((level_db + rng.uniform(-8, 8)) / 20) * 32768
        ramp = np.minimum(1.0, np.arange(length) / (0.005 * RATE))  # 5 ms attack
        decay = np.exp(-np.arange(length) / (0.6 * length))
        syllable = rng.standard_normal(length) * level * ramp * decay / np.sqrt(np.mean(decay**2))
        out[at : at + length] = syllable[: out.size - at]
        at += length + int(rng.uniform(0.0, 0.12) * RATE)
    return out


def bursts(seconds: float, level_db: float) -> np.ndarray:
    """Tone bursts starting at full level mid-block: the onset that fooled the old gate."""
    out = np.zeros(int(seconds * RATE))
    t = np.arange(out.size) / RATE
    amplitude = 10 ** (level_db / 20) * 32768 * math.sqrt(2)
    for start in np.arange(0.013, seconds - 0.2, 0.37):
        on = (t >= start) & (t < start + 0.15)
        out[on] = amplitude * np.sin(2 * np.pi * 700 * t[on])
    return out


def feed_played(guard: EchoGuard, played: np.ndarray) -> None:
    """What the backend reports: the level of each 5 ms span by DAC time (silence: none)."""
    for start in range(0, played.size, SPAN):
        span = played[start : start + SPAN]
        level = float(np.sqrt(np.mean(span * span))) / 32768
        if level > 0:
            guard.on_played(T0 + start / RATE, T0 + (start + span.size) / RATE, level)


@dataclass
class Outcome:
    passed: np.ndarray  # per mic block: the gate let it through
    level: np.ndarray  # per mic block: its RMS
    guard: EchoGuard

    def first_pass_after(self, seconds: float) -> float | None:
        """Seconds from `seconds` to the first block passed from then on (None: never)."""
        first = int(seconds * RATE) // BLOCK
        hits = np.nonzero(self.passed[first:])[0]
        return None if not hits.size else (first + int(hits[0])) * BLOCK / RATE - seconds

    def leaks(self, until: float) -> int:
        """Blocks before `until` that passed with sound in them (echo reaching the server)."""
        last = int(until * RATE) // BLOCK
        audible = self.level[:last] > 10 ** (-50 / 20)
        return int(np.sum(self.passed[:last] & audible))


def run_gate(
    played: np.ndarray,
    *,
    delay_ms: float,
    loss_db: float = 0.0,
    user: np.ndarray | None = None,
    user_at: float = 0.0,
    settings: EchoSettings | None = None,
) -> Outcome:
    """Play `played`; the mic hears it `delay_ms` later and `loss_db` down, plus `user` from
    `user_at` seconds on. Returns what the gate did with each mic block."""
    guard = EchoGuard(settings or EchoSettings(mode=EchoMode.GATE))
    feed_played(guard, played)
    mic = np.zeros(played.size + RATE)
    shift = round(delay_ms * RATE / 1000)
    mic[shift : shift + played.size] += played * 10 ** (loss_db / 20)
    if user is not None:
        at = int(user_at * RATE)
        mic[at : at + user.size] += user[: mic.size - at]
    mic = np.clip(np.round(mic), -32768, 32767).astype("<i2")
    passed, levels = [], []
    for start in range(0, mic.size - BLOCK + 1, BLOCK):
        pcm = mic[start : start + BLOCK].tobytes()
        captured_at = T0 + start / RATE
        out = guard.filter(pcm, captured_at + 0.08, captured_at)  # handled 80 ms later
        passed.append(not guard.closed)
        levels.append(rms(pcm))
        assert out == pcm if not guard.closed else out == bytes(len(pcm))
    return Outcome(np.array(passed), np.array(levels), guard)


# --- basics --------------------------------------------------------------------------------


def test_rms_of_known_signals() -> None:
    assert rms(b"") == 0.0
    assert rms(bytes(960)) == 0.0
    assert rms(tone(0.25)) == pytest.approx(0.25, rel=0.01)
    full = np.full(480, -32768, dtype="<i2").tobytes()
    assert rms(full) == pytest.approx(1.0)


def test_off_passes_everything_unchanged() -> None:
    guard = EchoGuard(EchoSettings(mode=EchoMode.OFF))
    guard.on_played(0.0, 1.0, 0.9)
    block = tone(0.01)
    assert guard.filter(block, 0.5) is block
    assert not guard.closed


def test_the_echo_reference_is_the_played_level_over_one_block() -> None:
    guard = EchoGuard(EchoSettings(mode=EchoMode.GATE, delay_min_s=0.0, delay_max_s=0.1))
    assert guard.echo_reference(10.0, 10.02) == 0.0  # nothing played
    for index in range(200):  # one second of a steady 0.2 RMS signal in 5 ms spans
        guard.on_played(10.0 + index * 0.005, 10.005 + index * 0.005, 0.2)
    assert guard.echo_reference(10.5, 10.52) == pytest.approx(0.2)
    # A lone 5 ms burst can put at most a quarter of a 20 ms block's energy into it.
    lone = EchoGuard(EchoSettings(mode=EchoMode.GATE, delay_min_s=0.0, delay_max_s=0.1))
    lone.on_played(20.0, 20.005, 0.4)
    assert lone.echo_reference(20.05, 20.07) == pytest.approx(0.4 * math.sqrt(5 / 20))
    assert lone.echo_reference(19.0, 19.02) == 0.0  # before it played: no echo yet


def test_a_span_older_than_the_delay_window_counts_as_a_decaying_tail() -> None:
    settings = EchoSettings(mode=EchoMode.GATE, delay_min_s=0.0, delay_max_s=0.1, release_s=0.05)
    guard = EchoGuard(settings)
    guard.on_played(0.0, 0.02, 0.3)
    # The block at 0.17 s looks back to 0.07 s: 50 ms after the span ended, one time constant.
    assert guard.echo_reference(0.17, 0.19) == pytest.approx(0.3 * math.exp(-1))
    assert guard.echo_reference(0.42, 0.44) == pytest.approx(0.3 * math.exp(-6))


# --- the assistant alone never opens the gate ----------------------------------------------


@pytest.mark.parametrize("delay_ms", [0, 20, 45, 60, 90, 120])
@pytest.mark.parametrize("loss_db", [0.0, -6.0])
@pytest.mark.parametrize("signal", ["speech", "bursts"])
def test_the_assistant_alone_never_opens_the_gate(
    delay_ms: int, loss_db: float, signal: str
) -> None:
    played = speechlike(4.0, -18, seed=delay_ms) if signal == "speech" else bursts(4.0, -6)
    outcome = run_gate(played, delay_ms=delay_ms, loss_db=loss_db)
    assert outcome.leaks(until=5.0) == 0
    assert outcome.guard.blocks_silenced > 40


def test_real_speech_alone_at_full_loopback_level_never_opens_the_gate(
    speech_wav: object,
) -> None:
    from voicecli.audio.wav import read_wav

    speech = read_wav(speech_wav, RATE).astype(np.float64)  # type: ignore[arg-type]
    played = np.concatenate([speech, speech * 1.4])  # up to -18 dBFS peaks... and louder
    for delay_ms in (0, 30, 60, 120):
        assert run_gate(played, delay_ms=delay_ms).leaks(until=10.0) == 0


def test_jittery_dac_times_do_not_open_the_gate() -> None:
    # Output callbacks do not run like clockwork: DAC times of successive spans may overlap
    # or leave small gaps. The echo itself is still exactly what was played.
    played = speechlike(3.0, -15, seed=7)
    guard = EchoGuard(EchoSettings(mode=EchoMode.GATE))
    rng = np.random.default_rng(1)
    for start in range(0, played.size, SPAN):
        span = played[start : start + SPAN]
        jitter = rng.uniform(-0.001, 0.001) if start % BLOCK == 0 else 0.0
        level = float(np.sqrt(np.mean(span * span))) / 32768
        at = T0 + start / RATE + jitter
        guard.on_played(at, at + SPAN / RATE, level)
    mic = np.clip(np.round(played), -32768, 32767).astype("<i2")
    shift = round(0.04 * RATE)
    mic = np.concatenate([np.zeros(shift, "<i2"), mic])
    leaked = 0
    for start in range(0, mic.size - BLOCK + 1, BLOCK):
        pcm = mic[start : start + BLOCK].tobytes()
        guard.filter(pcm, T0 + start / RATE + 0.08, T0 + start / RATE)
        leaked += not guard.closed and rms(pcm) > 0.003
    assert leaked == 0


# --- the user can still interrupt ----------------------------------------------------------


@pytest.mark.parametrize("delay_ms", [20, 60, 120])
@pytest.mark.parametrize("loss_db", [0.0, -6.0])
def test_a_louder_user_opens_the_gate_over_the_echo(delay_ms: int, loss_db: float) -> None:
    played = speechlike(4.0, -20, seed=3)
    user = speechlike(1.5, -10, seed=11)  # 10 dB louder than the assistant plays
    outcome = run_gate(played, delay_ms=delay_ms, loss_db=loss_db, user=user, user_at=1.5)
    assert outcome.leaks(until=1.5) == 0
    # Within a few blocks (the server's VAD then needs 50 ms more, which the hold covers)...
    opened_after = outcome.first_pass_after(1.5)
    assert opened_after is not None and opened_after <= 0.15
    # ...and most of what the user says gets through (the hold bridges quieter syllables).
    talking = slice(int(1.5 * RATE) // BLOCK, int(3.0 * RATE) // BLOCK)
    assert outcome.passed[talking].mean() >= 0.7


def test_a_user_6_db_louder_than_a_full_level_echo_still_gets_through() -> None:
    played = speechlike(4.0, -20, seed=5)
    user = speechlike(1.5, -14, seed=12)
    outcome = run_gate(played, delay_ms=45, user=user, user_at=1.5)
    opened_after = outcome.first_pass_after(1.5)
    assert opened_after is not None and opened_after <= 0.4


def test_the_gate_holds_briefly_after_the_user_then_closes_on_echo_again() -> None:
    settings = EchoSettings(mode=EchoMode.GATE, gate_hold_s=0.2)
    guard = EchoGuard(settings)
    for index in range(400):  # 2 s of steady playback at 0.1 RMS
        guard.on_played(index * 0.005, (index + 1) * 0.005, 0.1)
    echo, talker = tone(0.1), tone(0.5)
    assert guard.filter(echo, 0.6, 0.5) == bytes(len(echo)) and guard.closed
    assert guard.filter(talker, 0.62, 0.52) == talker
    # Held for 0.2 s after the end of the loud block (0.54 s)...
    assert guard.filter(echo, 0.64, 0.54) == echo
    assert guard.filter(echo, 0.82, 0.72) == echo
    assert guard.filter(echo, 0.84, 0.74) == bytes(len(echo))  # ...and no longer


def test_the_echo_tail_holds_a_quiet_voice_back_only_briefly() -> None:
    settings = EchoSettings(mode=EchoMode.GATE, release_s=0.05, delay_max_s=0.12)
    guard = EchoGuard(settings)
    for index in range(100):  # 0.5 s of playback at 0.3 RMS, then silence
        guard.on_played(index * 0.005, (index + 1) * 0.005, 0.3)
    quiet_voice = tone(0.03)
    assert guard.filter(quiet_voice, 0.7, 0.6) == bytes(len(quiet_voice))
    # 0.3 * exp(-t / 0.05) is below 0.03 / 2 (6 dB margin) 150 ms after the window passed.
    assert guard.filter(quiet_voice, 0.9, 0.8) == quiet_voice


def test_the_gate_is_open_when_nothing_or_only_a_whisper_plays() -> None:
    guard = EchoGuard(EchoSettings(mode=EchoMode.GATE))
    whisper = tone(0.001)
    assert guard.filter(whisper, 0.0) == whisper
    guard.on_played(0.9, 1.1, 0.001)  # below the -50 dBFS floor
    assert guard.filter(whisper, 1.0, 0.98) == whisper


def test_a_block_without_capture_time_is_taken_to_end_now() -> None:
    guard = EchoGuard(EchoSettings(mode=EchoMode.GATE, delay_min_s=0.0, delay_max_s=0.0))
    guard.on_played(5.0, 5.02, 0.2)
    echo = tone(0.2)
    assert guard.filter(echo, 5.02) == bytes(len(echo))  # the block 5.00-5.02
    assert guard.filter(echo, 5.2) == echo  # nothing was playing at 5.18-5.2


# --- learning the echo path ----------------------------------------------------------------


def test_a_quiet_echo_path_is_learned_so_a_normal_voice_interrupts() -> None:
    # A laptop whose mic hears its speakers 20 dB down; the user talks 8 dB below what the
    # assistant plays, i.e. 12 dB above its echo.
    played = speechlike(6.0, -16, seed=21)
    user = speechlike(1.0, -24, seed=22)
    early = run_gate(played, delay_ms=30, loss_db=-20, user=user, user_at=0.5)
    assert early.first_pass_after(0.5) is None or early.first_pass_after(0.5) > 0.4
    late = run_gate(played, delay_ms=30, loss_db=-20, user=user, user_at=4.0)
    assert late.guard.echo_gain_db == pytest.approx(-20, abs=3)
    opened_after = late.first_pass_after(4.0)
    assert opened_after is not None and opened_after <= 0.1
    assert late.leaks(until=4.0) == 0


def test_a_muted_mic_does_not_teach_the_gate_that_there_is_no_echo() -> None:
    guard = EchoGuard(EchoSettings(mode=EchoMode.GATE))
    for index in range(1200):  # 6 s of steady playback at 0.1 RMS
        guard.on_played(index * 0.005, (index + 1) * 0.005, 0.1)
    silent = bytes(960)
    for block in range(150):  # 3 s of a muted input: digital silence
        guard.filter(silent, block * 0.02 + 0.1, block * 0.02)
    assert guard.echo_gain_db == pytest.approx(0.0)
    echo = tone(0.1)  # unmuted: the speaker at full level
    assert guard.filter(echo, 3.1, 3.0) == bytes(len(echo))


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        EchoGuard(EchoSettings(mode=EchoMode.GATE, delay_min_s=0.1, delay_max_s=0.0))
    with pytest.raises(ValueError):
        EchoGuard(EchoSettings(mode=EchoMode.GATE, release_s=0.0))


def test_an_empty_block_is_no_trouble() -> None:
    guard = EchoGuard(EchoSettings(mode=EchoMode.GATE))
    guard.on_played(0.0, 1.0, 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no division by a zero-length block
        assert guard.filter(b"", 0.5, 0.5) == b""


def test_without_learning_the_configured_echo_gain_stays() -> None:
    settings = EchoSettings(mode=EchoMode.GATE, learn_echo=False, echo_gain_db=-3.0)
    outcome = run_gate(speechlike(4.0, -16, seed=2), delay_ms=30, loss_db=-20, settings=settings)
    assert outcome.guard.echo_gain_db == pytest.approx(-3.0)


def test_a_learned_full_level_echo_stays_near_0_db_and_never_leaks() -> None:
    outcome = run_gate(speechlike(10.0, -18, seed=31), delay_ms=45)
    assert -3.0 <= outcome.guard.echo_gain_db <= 0.5
    assert outcome.leaks(until=11.0) == 0


def test_a_user_talking_just_below_the_gate_raises_the_gain_only_slowly() -> None:
    settings = EchoSettings(mode=EchoMode.GATE, learn_rise_db_per_s=3.0)
    guard = EchoGuard(settings)
    for index in range(1200):  # 6 s of steady playback at 0.1 RMS
        guard.on_played(index * 0.005, (index + 1) * 0.005, 0.1)
    echo = tone(0.01)  # a -20 dB echo path, learned over the first 3 s
    for block in range(150):
        guard.filter(echo, block * 0.02 + 0.1, block * 0.02)
    assert guard.echo_gain_db == pytest.approx(-20, abs=0.5)
    murmur = tone(0.015)  # +3.5 dB over the echo: under the 6 dB margin, held back
    for block in range(150, 200):  # 1 s of it
        assert guard.filter(murmur, block * 0.02 + 0.1, block * 0.02) == bytes(len(murmur))
    assert guard.echo_gain_db <= -20 + 3.5 + 0.1
    assert guard.echo_gain_db > -20 + 2.0


# --- half-duplex -----------------------------------------------------------------------------


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


def test_half_duplex_follows_what_the_speaker_played() -> None:
    guard = EchoGuard(EchoSettings(mode=EchoMode.HALF_DUPLEX, tail_s=0.3))
    guard.on_played(7.0, 7.4, 0.2)  # reaches the DAC until 7.4 s
    block = tone(0.5)
    assert guard.filter(block, 7.6) == bytes(len(block))
    assert guard.filter(block, 7.71) == block


# --- cost ------------------------------------------------------------------------------------


def test_the_gate_costs_little_per_block() -> None:
    guard = EchoGuard(EchoSettings(mode=EchoMode.GATE))
    block = tone(0.1)
    started = time.perf_counter()
    for index in range(1000):  # 20 s of talk: four 5 ms spans played per 20 ms mic block
        at = index * 0.02
        for span in range(4):
            guard.on_played(at + span * 0.005 + 0.1, at + (span + 1) * 0.005 + 0.1, 0.1)
        guard.filter(block, at + 0.1, at)
    per_block = (time.perf_counter() - started) / 1000
    assert per_block < 0.001  # typically ~50 us: well under 1% of a core at 50 blocks/s


# --- the laptop hint -------------------------------------------------------------------------


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
