"""Time-stretching by pitch-period repetition (voicecli.audio.stretch), pure.

What the jitter buffer relies on: the period found is the signal's own, the input survives
untouched around the inserted periods (so the played position can be kept in its samples),
the inserted audio adds no click, and nothing happens where nothing can.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from voicecli.audio.stretch import best_period, expand
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
    found = best_period(voiced(fundamental), MIN_LAG, MAX_LAG)
    assert found == pytest.approx(RATE / fundamental, abs=1)


def test_silence_has_no_period_and_takes_the_longest() -> None:
    assert best_period(np.zeros(1000, np.int16), MIN_LAG, MAX_LAG) == MAX_LAG


@pytest.mark.parametrize("want", [1, 100, 400, 2000])
def test_expand_inserts_whole_periods_and_keeps_the_input_intact(want: int) -> None:
    source = voiced(150.0, 0.1)
    expanded = expand(source, want, MIN_LAG, MAX_LAG)
    assert expanded.samples.size == source.size + expanded.inserted
    assert sum(length for length, _ in expanded.pieces) == expanded.samples.size
    assert sum(carried for _, carried in expanded.pieces) == source.size
    # Around the inserted periods the input plays as it was, in order.
    np.testing.assert_array_equal(plain_samples(expanded.samples, expanded.pieces), source)
    # As much as was wanted when the input allows it: at most about all of it (half speed).
    assert expanded.inserted >= min(want, source.size - 2 * MAX_LAG)
    assert expanded.inserted <= source.size - MIN_LAG
    # The first period is the input's own: a stretch never changes what starts it.
    first_length, first_carried = expanded.pieces[0]
    assert first_carried == first_length >= MIN_LAG


def test_each_inserted_period_is_one_pitch_period() -> None:
    expanded = expand(voiced(150.0, 0.1), 480, MIN_LAG, MAX_LAG)
    inserted = [length for length, carried in expanded.pieces if not carried]
    assert inserted
    # Consecutive periods are merged into one piece: k periods of 160 samples (+-1 each).
    for length in inserted:
        periods = round(length / 160)
        assert periods >= 1
        assert periods * 159 <= length <= periods * 161


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
        assert expanded.inserted > 0
        assert max_step(expanded.samples) <= 1.05 * max_step(piece)
        checked += 1
    assert checked >= 20


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
