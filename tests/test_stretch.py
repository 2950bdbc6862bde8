"""Time-stretching by pitch-period repetition (voicecli.audio.stretch), pure.

What the jitter buffer relies on: the period found is the signal's own, the input survives
untouched around the inserted periods (so the played position can be kept in its samples),
the inserted audio adds no click, and nothing happens where nothing can.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicecli.audio.stretch import MIN_CORRELATION, best_period, expand
from voicecli.audio.wav import read_wav


RATE = 24000
MIN_LAG, MAX_LAG = RATE // 400, RATE * 15 // 1000  # 2.5-15 ms, as the buffer asks


def voiced(fundamental: float, seconds: float = 0.2, seed: int = 0) -> np.ndarray:
    """A vowel-like tone: a fundamental and three harmonics with random phases."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(RATE * seconds)) / RATE
    wave = sum(
        amplitude * np.sin(2 * np.pi * fundamental * harmonic * t + rng.uniform(0, 2 * np.pi))
        for harmonic, amplitude in ((1, 6000), (2, 3000), (3, 1500), (5, 800))
    )
    return np.round(wave).astype(np.int16)


def plain_samples(samples: np.ndarray, pieces: list[tuple[int, int]]) -> np.ndarray:
    """The output with its inserted pieces taken out."""
    kept, position = [], 0
    for length, carried in pieces:
        if carried:
            kept.append(samples[position : position + length])
        position += length
    return np.concatenate(kept) if kept else np.zeros(0, np.int16)


def max_step(samples: np.ndarray) -> int:
    return int(np.abs(np.diff(samples.astype(np.int64))).max())


@pytest.mark.parametrize("fundamental", [80.0, 120.0, 150.0, 210.0, 300.0])
def test_best_period_is_the_fundamentals(fundamental: float) -> None:
    found, correlation = best_period(voiced(fundamental), MIN_LAG, MAX_LAG)
    assert found == pytest.approx(RATE / fundamental, abs=1)
    assert correlation > 0.99


def test_silence_has_no_period_and_takes_the_longest() -> None:
    assert best_period(np.zeros(1000, np.int16), MIN_LAG, MAX_LAG) == (MAX_LAG, 1.0)


@pytest.mark.parametrize("want", [1, 100, 400, 2000])
def test_expand_inserts_whole_periods_and_keeps_the_input_intact(want: int) -> None:
    source = voiced(150.0, 0.1)
    expanded = expand(source, want, MIN_LAG, MAX_LAG)
    assert expanded.samples.size == source.size + expanded.inserted
    assert sum(length for length, _ in expanded.pieces) == expanded.samples.size
    assert sum(carried for _, carried in expanded.pieces) == source.size
    # Around the inserted periods the input plays as it was, in order.
    np.testing.assert_array_equal(plain_samples(expanded.samples, expanded.pieces), source)
    # As much as was wanted when the input allows it, at most half of it (1.5x slower).
    assert expanded.inserted >= min(want, source.size // 2 - MAX_LAG)
    assert expanded.inserted <= source.size // 2
    # The first period is the input's own: a stretch never changes what starts it.
    first_length, first_carried = expanded.pieces[0]
    assert first_carried == first_length >= MIN_LAG


def test_each_insertion_is_one_pitch_period_with_the_input_around_it() -> None:
    """Never two repeats in a row: a period repeated over and over would freeze the voice."""
    expanded = expand(voiced(150.0, 0.2), 4000, MIN_LAG, MAX_LAG)
    assert expanded.inserted >= 4 * 160
    pieces = expanded.pieces
    for index, (length, carried) in enumerate(pieces):
        if not carried:
            assert 159 <= length <= 161  # one period of the 150 Hz voice
            assert pieces[index + 1][1] >= length  # followed by at least a period of input


def test_audio_that_does_not_repeat_is_left_alone() -> None:
    """Noise (or an onset) does not correlate with itself a period on: repeating it would
    be heard, so nothing is inserted."""
    noise = np.random.default_rng(3).normal(0, 4000, 2400).astype(np.int16)
    assert best_period(noise, MIN_LAG, MAX_LAG)[1] < MIN_CORRELATION
    expanded = expand(noise, 1000, MIN_LAG, MAX_LAG)
    assert expanded.inserted == 0
    np.testing.assert_array_equal(expanded.samples, noise)


def test_a_limit_is_never_passed() -> None:
    for limit in (0, 59, 100, 161, 400):
        expanded = expand(voiced(150.0, 0.2), 4000, MIN_LAG, MAX_LAG, limit=limit)
        assert expanded.inserted <= limit


def test_expanding_speech_adds_no_click(speech_wav: Path) -> None:
    """On real speech (espeak-ng), every stretch's largest sample-to-sample step stays that of
    its input: the cross-fades join periods that match."""
    speech = read_wav(speech_wav, RATE)
    checked = 0
    for start in range(0, speech.size - 1200, 700):
        piece = speech[start : start + 1200]
        if max_step(piece) < 200:
            continue  # near silence: nothing to hear either way
        expanded = expand(piece, 600, MIN_LAG, MAX_LAG)
        assert max_step(expanded.samples) <= 1.05 * max_step(piece)
        checked += expanded.inserted > 0
    assert checked >= 20  # stretches that inserted something, in voiced speech


def test_nothing_is_inserted_where_nothing_can_be() -> None:
    short = voiced(150.0, 0.004)  # 96 samples: less than two of the shortest periods
    for source, want in ((short, 500), (voiced(150.0, 0.1), 0), (np.zeros(0, np.int16), 10)):
        expanded = expand(source, want, MIN_LAG, MAX_LAG)
        assert expanded.inserted == 0
        np.testing.assert_array_equal(expanded.samples, source)


def test_silence_stretches_as_silence() -> None:
    expanded = expand(np.zeros(2000, np.int16), 700, MIN_LAG, MAX_LAG)
    assert expanded.inserted >= 700
    assert not expanded.samples.any()
