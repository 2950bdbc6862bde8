"""Echo guard: keep the model from hearing (and answering) its own voice on speakers.

Two cheap strategies from field-notes §3.4, selectable with `EchoMode`:

- `gate`: a mic block passes only when it is clearly louder than the echo the speaker could
  have put into it. The gate compares like with like: the audio backend reports what it
  really handed to the output device, in ~5 ms spans with the time each reaches the DAC
  (`on_played`, from `AudioBackend.played_levels()`), and each mic block comes with the time
  its first sample left the ADC (`MicBlock.captured_at`). PortAudio's timestamps already take
  out both devices' latencies (a sound takes 40-60 ms from the output callback to the input
  callback on PulseAudio, but its DAC and ADC times agree within 0-5 ms), so the echo in a
  block captured over [t0, t1] comes from audio played over [t0, t1] shifted by a small,
  unknown delay: `delay_min_s`..`delay_max_s` (-30..+120 ms) covers devices that report their
  latency badly, resamplers and the acoustic path; a tail decaying with `release_s` covers
  the room. The most echo a block can hold is then the loudest block-long stretch of
  playback anywhere in that window, times the echo path's gain; the block passes when it is
  `gate_margin_db` above that (the user talking over the assistant), and the gate holds open
  for `gate_hold_s` so the user's quieter syllables are not chopped.
  The first gate compared each block with the playback level sampled once per 20 ms tick:
  the onset of a reply could be 6 dB above that stale level, so it leaked, the hold kept the
  gate open and the server's VAD took the reply for the user (12 of 20 runs of the shared-sink
  tmux test answered themselves; 0 of 20 with this gate).
- `half-duplex`: the mic is silent whenever assistant audio is audible, plus `tail_s` after.
  Robust, but the user cannot interrupt by voice (push-to-talk and typing still can).

The echo path's gain starts at `echo_gain_db` (0 dB: the speaker leaks into the mic at full
level, the worst case, as on one shared sound-server sink). With `learn_echo` it then follows
what the mic really hears while the assistant talks and the gate is closed: the loudest ratio
of mic to playback over the last `learn_window_s` of such blocks. It falls only when that much
assistant audio never came near the old value, and rises at most `learn_rise_db_per_s`, so a
user talking just below the gate cannot lock it. On a laptop whose mic hears its speakers
20 dB down, a normal voice can interrupt once the first two seconds of a reply are learned.
An echo path louder than `echo_gain_db` + `gate_margin_db` (a boosted mic) opens the gate
and is never learned: raise the margin (`audio.echo_margin_db`) or use half-duplex.

A closed mic becomes digital silence of the same length rather than nothing, so the server's
input timeline and VAD keep running.

`laptop_pair_hint()` gives a one-line hint when the input and output devices look like a
laptop's built-in microphone and speakers.

Pure: numpy only (levels, and the window's loudest stretch); no devices, no clock of its own.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass
from enum import StrEnum

import numpy as np


__all__ = ["EchoGuard", "EchoMode", "EchoSettings", "laptop_pair_hint", "rms"]

SAMPLE_RATE = 24000
"""Rate of the mic blocks (PCM16 mono), for their duration."""

_MUTED = 10 ** (-70 / 20)
"""A mic block this quiet is digital silence (a muted or suspended input), not a quiet echo
path: learning from it would teach the gate that the speaker cannot be heard."""


class EchoMode(StrEnum):
    OFF = "off"
    GATE = "gate"
    HALF_DUPLEX = "half-duplex"


@dataclass(frozen=True, slots=True)
class EchoSettings:
    mode: EchoMode = EchoMode.OFF
    gate_margin_db: float = 6.0
    """How much louder than the most echo the playback can explain the mic must be to pass."""
    echo_gain_db: float = 0.0
    """Assumed loudness of the echo relative to what was played, until learned (0 dB: the
    speaker leaks into the mic at full level, the worst case)."""
    learn_echo: bool = True
    """Follow the echo path's real gain (see the module docstring)."""
    learn_window_s: float = 2.0
    """The learned gain is the loudest echo seen over this much assistant audio..."""
    learn_rise_db_per_s: float = 3.0
    """...but rises no faster than this (a user talking below the gate must not lock it)."""
    min_echo_gain_db: float = -30.0
    max_echo_gain_db: float = 20.0
    """Bounds of the learned echo gain."""
    delay_min_s: float = -0.03
    delay_max_s: float = 0.12
    """Range of the echo's arrival at the ADC after its DAC time (timestamps that are off,
    the acoustic path). Measured on PulseAudio: 0-5 ms."""
    release_s: float = 0.05
    """Time constant of the room's echo tail after the delay window (about -170 dB/s)."""
    gate_hold_s: float = 0.2
    """Once open, the gate stays open this long after the mic was last loud enough."""
    tail_s: float = 0.3
    """Half-duplex: the mic stays closed this long after the assistant falls silent."""
    silence_dbfs: float = -50.0
    """Echo quieter than this is ignored (no gating at all)."""


def rms(pcm: bytes) -> float:
    """Root mean square of PCM16 samples, as a fraction of full scale (0..1)."""
    if len(pcm) < 2:
        return 0.0
    samples = np.frombuffer(pcm, dtype="<i2", count=len(pcm) // 2).astype(np.float32)
    return float(np.sqrt(np.mean(samples * samples))) / 32768.0


def _db_to_ratio(db: float) -> float:
    return 10.0 ** (db / 20.0)


class EchoGuard:
    """Decides, block by block, whether the mic may be heard by the server.

    Feed it what the speaker played (`on_played`, from the backend's `played_levels()`, in
    play order) and, for half-duplex, whether assistant audio is still queued or playing
    (`on_assistant_audible`); pass every mic block through `filter()`.
    """

    def __init__(self, settings: EchoSettings | None = None) -> None:
        self.settings = settings = settings or EchoSettings()
        if settings.delay_min_s > settings.delay_max_s or settings.release_s <= 0:
            raise ValueError("echo delay range is empty or the release time is not positive")
        self._played: deque[tuple[float, float, float]] = deque()  # (start, end, rms), DAC time
        self._tail_level = 0.0  # the loudest played span already left the delay window...
        self._tail_at = -math.inf  # ...decayed from here
        self._window_start = -math.inf
        self._audible = False
        self._audible_until = -math.inf
        self._open_until = -math.inf
        self._silence = _db_to_ratio(settings.silence_dbfs)
        self._margin = _db_to_ratio(settings.gate_margin_db)
        self._min_gain = _db_to_ratio(settings.min_echo_gain_db)
        self._max_gain = _db_to_ratio(settings.max_echo_gain_db)
        self._gain = min(self._max_gain, max(self._min_gain, _db_to_ratio(settings.echo_gain_db)))
        self._configured_gain = self._gain
        self._echo_time = 0.0  # seconds of mic blocks the gate held while echo was possible
        self._ratios: deque[tuple[float, float]] = deque()  # (echo time, ratio), falling
        self.closed = False
        """Whether the last mic block was silenced (for the UI)."""
        self.blocks_silenced = 0
        self.last_echo = 0.0
        """The most echo the last mic block could hold (0..1 of full scale), for tests/UI."""

    @property
    def mode(self) -> EchoMode:
        return self.settings.mode

    @property
    def echo_gain_db(self) -> float:
        """The echo path's gain the gate assumes now (learned or configured)."""
        return 20.0 * math.log10(self._gain)

    # --- inputs ------------------------------------------------------------------------------

    def on_played(self, start: float, end: float, level: float) -> None:
        """Audio of RMS `level` (0..1) reaches the DAC from `start` to `end` (in play order)."""
        if level <= 0.0:
            return
        if end > self._window_start:
            self._played.append((start, end, level))
        else:
            self._fold_into_tail(end, level)
        if level > self._silence:
            self._audible_until = max(self._audible_until, end + self.settings.tail_s)

    def on_playback_level(self, level: float, now: float) -> None:
        """The output level the device is playing now (RMS, 0..1): keeps half-duplex closed."""
        if level > self._silence:
            self._audible_until = max(self._audible_until, now + self.settings.tail_s)

    def on_assistant_audible(self, audible: bool, now: float) -> None:
        """Whether assistant audio is queued or playing (from the turn policy)."""
        if self._audible and not audible:
            self._audible_until = max(self._audible_until, now + self.settings.tail_s)
        self._audible = audible

    # --- the decision ------------------------------------------------------------------------

    def echo_reference(self, start: float, end: float) -> float:
        """The most played level (RMS, 0..1) that can leak into a mic block captured from
        `start` to `end` (ADC time): the loudest stretch of playback as long as the block,
        anywhere in the delay window, or the decayed tail of what played before it."""
        settings = self.settings
        length = max(end - start, 1e-3)
        first = start - settings.delay_max_s  # the earliest echo delay's stretch starts here
        last = start - settings.delay_min_s  # ...and the latest one's here
        self._advance(first)
        loudest = 0.0  # as power (RMS squared)
        if self._tail_level > 0.0:
            age = max(0.0, first - self._tail_at)
            loudest = (self._tail_level * math.exp(-age / settings.release_s)) ** 2
        # The played energy up to each span boundary (silence between spans adds none).
        times: list[float] = []
        energy: list[float] = []
        total = 0.0
        previous_end = -math.inf
        for span_start, span_end, level in self._played:
            if span_start >= last + length:
                break
            span_start = max(span_start, previous_end)  # DAC-time jitter must not overlap
            if span_end <= span_start:
                continue
            times.append(span_start)
            energy.append(total)
            total += level * level * (span_end - span_start)
            times.append(span_end)
            energy.append(total)
            previous_end = span_end
        if times:
            # The mean power over [x, x + length] is piecewise linear in x with corners where
            # either edge meets a span boundary: its maximum is at one of those (or an end).
            bounds = np.asarray(times)
            cumulative = np.asarray(energy)
            corners = np.concatenate([bounds, bounds - length, (first, last)])
            corners = corners[(corners >= first) & (corners <= last)]
            power = (
                np.interp(corners + length, bounds, cumulative)
                - np.interp(corners, bounds, cumulative)
            ) / length
            loudest = max(loudest, float(power.max()))
        return math.sqrt(loudest)

    def gate_passes(self, mic_level: float, start: float, end: float) -> bool:
        """Gate mode: whether a mic block of RMS `mic_level` captured from `start` to `end`
        may reach the server."""
        reference = self.echo_reference(start, end)
        echo = reference * self._gain
        self.last_echo = echo
        if echo <= self._silence:
            return True
        if mic_level > echo * self._margin:
            self._open_until = end + self.settings.gate_hold_s
            return True
        if start < self._open_until:
            return True  # holding open for the user's quieter syllables
        if self.settings.learn_echo and mic_level > _MUTED:
            self._learn(mic_level / reference, end - start)
        return False

    def half_duplex_passes(self, now: float) -> bool:
        return not (self._audible or now < self._audible_until)

    def should_pass(
        self,
        mic_level: float,
        now: float,
        start: float | None = None,
        end: float | None = None,
    ) -> bool:
        """Whether a mic block of this level, captured from `start` to `end` (default: the
        20 ms just before `now`), may reach the server."""
        mode = self.settings.mode
        if mode is EchoMode.OFF:
            return True
        if mode is EchoMode.HALF_DUPLEX:
            return self.half_duplex_passes(now)
        if end is None:
            end = now if start is None else start + 0.02
        if start is None:
            start = end - 0.02
        return self.gate_passes(mic_level, start, end)

    def filter(
        self,
        pcm: bytes,
        now: float,
        captured_at: float | None = None,
        level: float | None = None,
    ) -> bytes:
        """The block itself, or silence of the same length when the guard holds the mic.

        `captured_at` is when its first sample was captured (`MicBlock.captured_at`; default:
        the block ended at `now`), `level` its RMS if already known.
        """
        if self.settings.mode is EchoMode.OFF:
            self.closed = False
            return pcm
        duration = len(pcm) / (2 * SAMPLE_RATE)
        start = now - duration if captured_at is None else captured_at
        passes = self.should_pass(
            rms(pcm) if level is None else level, now, start, start + duration
        )
        self.closed = not passes
        if passes:
            return pcm
        self.blocks_silenced += 1
        return bytes(len(pcm))

    # --- internals ---------------------------------------------------------------------------

    def _advance(self, window_start: float) -> None:
        """Move played spans that ended before the delay window into the decaying tail."""
        if window_start <= self._window_start:
            return
        self._window_start = window_start
        played = self._played
        while played and played[0][1] <= window_start:
            _, end, level = played.popleft()
            self._fold_into_tail(end, level)

    def _fold_into_tail(self, end: float, level: float) -> None:
        if self._tail_level > 0.0 and end > self._tail_at:
            decayed = self._tail_level * math.exp(-(end - self._tail_at) / self.settings.release_s)
            self._tail_level, self._tail_at = max(decayed, level), end
        elif level >= self._tail_level or self._tail_level == 0.0:
            self._tail_level, self._tail_at = level, max(end, self._tail_at)

    def _learn(self, ratio: float, duration: float) -> None:
        """Follow the echo path's gain from a block the gate held (echo only, we assume): the
        loudest ratio of mic to playback over the last `learn_window_s` of such blocks (not
        below the configured gain until that much was seen), rising at a limited rate."""
        self._echo_time += duration
        ratios = self._ratios
        while ratios and ratios[-1][1] <= ratio:
            ratios.pop()
        ratios.append((self._echo_time, ratio))
        horizon = self._echo_time - self.settings.learn_window_s
        while ratios[0][0] <= horizon:
            ratios.popleft()
        target = ratios[0][1]
        if horizon < 0.0:
            target = max(target, self._configured_gain)
        if target > self._gain:
            rise = _db_to_ratio(self.settings.learn_rise_db_per_s * duration)
            target = min(target, self._gain * rise)
        self._gain = min(self._max_gain, max(self._min_gain, target))


# --- the laptop hint -----------------------------------------------------------------------

_BUILT_IN = re.compile(r"built-?in|macbook|internal|laptop|\bimac\b", re.I)
_PERSONAL = re.compile(r"head(set|phone)|ear(bud|phone)|airpods|bluetooth|\busb\b|bt\b", re.I)
_CARD = re.compile(r"\((hw:\d+)|\(([^()]*\([^()]*\)[^()]*|[^()]+)\)\s*$")


def _card(name: str) -> str | None:
    """The sound card a device name points at: `hw:0` on ALSA, `Realtek(R) Audio` on Windows."""
    match = _CARD.search(name)
    if not match:
        return None
    return (match.group(1) or match.group(2) or "").strip().lower() or None


def laptop_pair_hint(
    input_name: str | None, output_name: str | None, mode: EchoMode = EchoMode.OFF
) -> str | None:
    """One line of advice when input and output look like a laptop's built-in pair, else None.

    A pair is suspicious when both names say built-in/internal (macOS, PulseAudio), or when
    both sit on the same sound card (ALSA `hw:N`, Windows `Speakers (Card)`) and neither is a
    headset or headphones.
    """
    if not input_name or not output_name:
        return None
    if _PERSONAL.search(input_name) or _PERSONAL.search(output_name):
        return None
    both_built_in = bool(_BUILT_IN.search(input_name) and _BUILT_IN.search(output_name))
    in_card, out_card = _card(input_name), _card(output_name)
    same_card = in_card is not None and in_card == out_card
    if not (both_built_in or same_card):
        return None
    if mode is EchoMode.OFF:
        return (
            "The mic and speakers look like this computer's built-in pair: use headphones, or "
            "turn on the echo guard (gate or half-duplex) so the assistant does not hear itself."
        )
    return (
        f"The mic and speakers look like this computer's built-in pair; the echo guard is on "
        f"({mode.value}), and headphones still work best."
    )
