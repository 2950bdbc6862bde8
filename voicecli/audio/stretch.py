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
x[T-1] (before x[T]). On voiced speech the two periods are nearly alike and the insertion is
hard to hear; on silence it is silence; on noise it is noise of the same colour. A gap of
silence in the middle of a word is what the listener would hear otherwise.

Pure: numpy only. `expand` returns the longer audio and which stretches of it are inserted,
so the buffer can keep its played position in the original audio's samples (what
`conversation.item.truncate` needs): an inserted period carries none of them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


__all__ = ["Expanded", "best_period", "expand"]

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


def best_period(x: np.ndarray, min_lag: int, max_lag: int) -> int:
    """The lag in [min_lag, max_lag] at which `x` best repeats itself: the normalised
    correlation of x[0:T] with x[T:2T] (needs `x.size >= 2 * max_lag`), the shortest of the
    nearly best (two periods repeat as well as one: the pitch period is the shorter).
    Silence or anything with no better choice gives `max_lag`, the lag that gains the most."""
    signal = np.asarray(x, np.float32)
    coarse = signal[: 2 * max_lag : _DECIMATE]
    low, high = max(1, min_lag // _DECIMATE), max_lag // _DECIMATE
    best = _best_lag(coarse, low, high)
    if best is None:
        return max_lag
    centre = best * _DECIMATE
    refined = _best_lag(signal, max(min_lag, centre - _DECIMATE), min(max_lag, centre + _DECIMATE))
    return max_lag if refined is None else refined


def _best_lag(signal: np.ndarray, low: int, high: int) -> int | None:
    """The shortest lag in [low, high] whose normalised correlation is a peak within
    `_NEARLY` of the highest, None on silence."""
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
            return low + index
    return low + int(np.argmax(scores))


def expand(
    x: np.ndarray, want: int, min_lag: int, max_lag: int, limit: int | None = None
) -> Expanded:
    """`x` (int16) with at least `want` samples inserted where it allows, as whole periods,
    but never more than `limit` (None: no limit beyond `want` and one period).

    Each insertion repeats the next period of input and needs the one after it for the
    cross-fade, so at most about all of `x` can be inserted (it then plays at half speed
    while it lasts). With nothing possible (shorter than two periods) it returns `x`
    unchanged.
    """
    source = np.asarray(x, np.int16)
    out: list[np.ndarray] = []
    pieces: list[tuple[int, int]] = []
    position = gained = 0
    while gained < want:
        lag_limit = min(max_lag, (source.size - position) // 2)
        if lag_limit < min_lag:
            break
        rest = source[position:]
        lag = best_period(rest, min_lag, lag_limit)
        if limit is not None and gained + lag > limit:
            break
        out.append(rest[:lag])
        out.append(_cross_fade(rest[lag : 2 * lag], rest[:lag]))
        pieces += [(lag, lag), (lag, 0)]
        position += lag  # the output goes on at x[lag]: the period just repeated is behind it
        gained += lag
    if position < source.size:
        out.append(source[position:])
        pieces.append((source.size - position, source.size - position))
    if not gained:
        return Expanded(source.copy(), [(source.size, source.size)] if source.size else [])
    return Expanded(np.concatenate(out), _merged(pieces))


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
