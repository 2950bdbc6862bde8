"""Time-stretching for the jitter buffer: play queued audio a little slower while the next
delta is late, so the listener hears the speech drawn out by a few pitch periods instead of a
gap.

This is the "preemptive expand" of WebRTC's NetEQ, reduced to what the buffer needs: find the
lag T (2.5-15 ms: one pitch period of a voice) at which the audio best repeats itself, and
play one period twice, the repeat cross-faded into the original so neither junction clicks:

    x[0:T]                                  as it was
    x[T:2T] fading out + x[0:T] fading in   the inserted period (heard twice, in effect)
    x[T:]                                   as it was

Both junctions are continuous: the cross-fade starts on x[T] (after x[T-1]) and ends on
x[T-1] (before x[T]). Where the audio really repeats (voiced speech: correlation at T of at
least `MIN_CORRELATION`) or is nearly silent, the insertion is hard to hear. Elsewhere (an
onset, a plosive, noise) nothing is inserted: the search moves on by a period. After each
insertion the next period plays as it was, so at most a third of what plays is inserted
(1.5x slower at most) and a period is never repeated twice in a row.

Pure: numpy only. `expand` returns the longer audio and which stretches of it are inserted,
so the buffer can keep its played position in the original audio's samples (what
`conversation.item.truncate` needs): an inserted period carries none of them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


__all__ = ["MIN_CORRELATION", "Expanded", "best_period", "expand"]

MIN_CORRELATION = 0.7
"""A period is repeated only where the audio correlates this well with itself one period on
(NetEQ asks 0.9 for its own choice of places; a voice stays above 0.7 through a vowel)."""
QUIET = 100.0
"""Below this RMS (of 32768) audio is near silence: repeating any of it is inaudible."""
_DECIMATE = 4  # the coarse lag search runs at a quarter of the rate, then is refined
_NEARLY = 0.05  # correlation this close to the best counts as as good (octave errors)


class Expanded(NamedTuple):
    """The result of `expand`."""

    samples: np.ndarray
    """int16, the input with `inserted` samples more."""
    pieces: list[tuple[int, int]]
    """(length, original samples it carries) for consecutive pieces of `samples`: an input
    piece carries its own length, an inserted period carries 0."""

    @property
    def inserted(self) -> int:
        return sum(length - carried for length, carried in self.pieces)


def best_period(x: np.ndarray, min_lag: int, max_lag: int) -> tuple[int, float]:
    """(lag, correlation): the lag in [min_lag, max_lag] at which `x` best repeats itself,
    by the normalised correlation of x[0:T] with x[T:2T] (needs `x.size >= 2 * max_lag`),
    the shortest of the nearly best (two periods repeat as well as one: the pitch period is
    the shorter). Silence gives (`max_lag`, 1.0): any lag repeats it."""
    signal = np.asarray(x[: 2 * max_lag], np.float32)
    # A 4-sample mean before taking every 4th: without it, what lies above the coarse
    # rate's Nyquist folds down and misleads the search on unvoiced sounds.
    usable = signal.size - signal.size % _DECIMATE
    coarse = signal[:usable].reshape(-1, _DECIMATE).mean(axis=1)
    low, high = max(1, min_lag // _DECIMATE), max_lag // _DECIMATE
    best = _best_lag(coarse, low, high)
    if best is None:
        return max_lag, 1.0
    centre = best[0] * _DECIMATE
    refined = _best_lag(signal, max(min_lag, centre - _DECIMATE), min(max_lag, centre + _DECIMATE))
    return (max_lag, 1.0) if refined is None else refined


def _best_lag(signal: np.ndarray, low: int, high: int) -> tuple[int, float] | None:
    """The shortest lag in [low, high] whose normalised correlation is a peak within
    `_NEARLY` of the highest, and that correlation; None on silence."""
    scores: list[float] = []
    for lag in range(low, high + 1):
        head, tail = signal[:lag], signal[lag : 2 * lag]
        if tail.size < lag:
            break
        energy = float(np.dot(head, head)) * float(np.dot(tail, tail))
        scores.append(float(np.dot(head, tail)) / np.sqrt(energy) if energy > 1.0 else -1.0)
    if not scores or max(scores) <= -1.0:
        return None
    good = max(scores) - _NEARLY
    for index, score in enumerate(scores):
        peak = index + 1 == len(scores) or score >= scores[index + 1]
        if score >= good and peak:
            return low + index, score
    index = int(np.argmax(scores))
    return low + index, scores[index]


def expand(
    x: np.ndarray, want: int, min_lag: int, max_lag: int, limit: int | None = None
) -> Expanded:
    """`x` (int16) with at least `want` samples inserted where it allows, as whole periods,
    but never more than `limit` (None: `want` and at most one period more).

    Each insertion repeats a period that correlates well with the next one (or is quiet),
    and is followed by a period as it was, so at most half as much as `x` is inserted; less
    where the audio does not repeat. With nothing possible it returns `x` unchanged.
    """
    source = np.asarray(x, np.int16)
    out: list[np.ndarray] = []
    pieces: list[tuple[int, int]] = []
    position = gained = 0
    ceiling = want + max_lag if limit is None else limit
    while gained < want:
        lag_limit = min(max_lag, (source.size - position) // 2, ceiling - gained)
        if lag_limit < min_lag:
            break
        rest = source[position:]
        lag, correlation = best_period(rest, min_lag, lag_limit)
        if correlation < MIN_CORRELATION and not _quiet(rest[: 2 * lag]):
            out.append(rest[:lag])  # no repeat here: move on a period
            pieces.append((lag, lag))
            position += lag
            continue
        out.append(rest[:lag])
        out.append(_cross_fade(rest[lag : 2 * lag], rest[:lag]))
        out.append(rest[lag : 2 * lag])  # the next period as it was: never two repeats in a row
        pieces += [(lag, lag), (lag, 0), (lag, lag)]
        position += 2 * lag
        gained += lag
    if position < source.size:
        out.append(source[position:])
        pieces.append((source.size - position, source.size - position))
    if not gained:
        return Expanded(source.copy(), [(source.size, source.size)] if source.size else [])
    return Expanded(np.concatenate(out), _merged(pieces))


def _quiet(samples: np.ndarray) -> bool:
    as_float = samples.astype(np.float32)
    return float(np.sqrt(np.dot(as_float, as_float) / max(1, as_float.size))) < QUIET


def _cross_fade(leaving: np.ndarray, arriving: np.ndarray) -> np.ndarray:
    """`leaving` fading out while `arriving` fades in (equal lengths), as int16."""
    count = leaving.size
    rise = (np.arange(count, dtype=np.float32) + 0.5) / count
    mixed = leaving.astype(np.float32) * (1.0 - rise) + arriving.astype(np.float32) * rise
    return np.clip(np.rint(mixed), -32768, 32767).astype(np.int16)


def _merged(pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Adjacent pieces of the same kind (input / inserted) as one."""
    merged: list[tuple[int, int]] = []
    for length, carried in pieces:
        if merged and (carried > 0) == (merged[-1][1] > 0):
            merged[-1] = (merged[-1][0] + length, merged[-1][1] + carried)
        else:
            merged.append((length, carried))
    return merged
