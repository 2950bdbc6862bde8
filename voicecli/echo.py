"""Echo guard: keep the model from hearing (and answering) its own voice on speakers.

Two cheap strategies from field-notes §3.4, selectable with `EchoMode`:

- `gate`: a mic gate relative to the playback level. The playback level (what the output
  device is playing right now, from the audio backend) is smoothed with an instant attack and
  a slow release, which covers the acoustic delay and the room's echo tail. A mic block passes
  only when it is louder than that envelope by `gate_margin_db`; once open the gate holds for
  `gate_hold_s` so a talker's quiet syllables are not chopped. Barge-in still works when the
  user speaks up.
- `half-duplex`: the mic is silent whenever assistant audio is audible, plus `tail_s` after.
  Robust, but the user cannot interrupt by voice (push-to-talk and typing still can).

A closed mic becomes digital silence of the same length rather than nothing, so the server's
input timeline and VAD keep running.

`laptop_pair_hint()` gives a one-line hint when the input and output devices look like a
laptop's built-in microphone and speakers.

Pure: numpy for the level only; no devices, no clock of its own.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

import numpy as np


__all__ = ["EchoGuard", "EchoMode", "EchoSettings", "laptop_pair_hint", "rms"]


class EchoMode(StrEnum):
    OFF = "off"
    GATE = "gate"
    HALF_DUPLEX = "half-duplex"


@dataclass(frozen=True, slots=True)
class EchoSettings:
    mode: EchoMode = EchoMode.OFF
    gate_margin_db: float = 6.0
    """How much louder than the playback envelope the mic must be to pass the gate."""
    gate_hold_s: float = 0.25
    """Once open, the gate stays open this long after the mic was last loud enough."""
    release_s: float = 0.25
    """Time constant of the playback envelope's decay (acoustic delay + echo tail)."""
    tail_s: float = 0.3
    """Half-duplex: the mic stays closed this long after the assistant falls silent."""
    silence_dbfs: float = -50.0
    """Playback quieter than this counts as silent (no gating at all)."""


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

    Feed it the playback level (`on_playback_level`, as often as the backend reports it) and,
    for half-duplex, whether assistant audio is still queued or playing (`on_assistant_audible`);
    pass every mic block through `filter()`.
    """

    def __init__(self, settings: EchoSettings | None = None) -> None:
        self.settings = settings or EchoSettings()
        self._envelope = 0.0
        self._envelope_at: float | None = None
        self._audible = False
        self._audible_until = -math.inf
        self._open_until = -math.inf
        self._silence = _db_to_ratio(self.settings.silence_dbfs)
        self._margin = _db_to_ratio(self.settings.gate_margin_db)
        self.closed = False
        """Whether the last mic block was silenced (for the UI)."""
        self.blocks_silenced = 0

    @property
    def mode(self) -> EchoMode:
        return self.settings.mode

    def playback_envelope(self, now: float) -> float:
        """The smoothed playback level (0..1) at `now`."""
        if self._envelope_at is None:
            return 0.0
        elapsed = max(0.0, now - self._envelope_at)
        return self._envelope * math.exp(-elapsed / self.settings.release_s)

    def on_playback_level(self, level: float, now: float) -> None:
        """The output level the device is playing now (RMS, 0..1)."""
        current = self.playback_envelope(now)
        self._envelope = max(level, current)  # instant attack, exponential release
        self._envelope_at = now
        if level > self._silence:
            self._audible_until = now + self.settings.tail_s

    def on_assistant_audible(self, audible: bool, now: float) -> None:
        """Whether assistant audio is queued or playing (from the turn policy)."""
        if self._audible and not audible:
            self._audible_until = max(self._audible_until, now + self.settings.tail_s)
        self._audible = audible

    def should_pass(self, mic_level: float, now: float) -> bool:
        """Whether a mic block of this level may reach the server."""
        mode = self.settings.mode
        if mode is EchoMode.OFF:
            return True
        if mode is EchoMode.HALF_DUPLEX:
            return not (self._audible or now < self._audible_until)
        envelope = self.playback_envelope(now)
        if envelope <= self._silence:
            return True
        if mic_level > envelope * self._margin:
            self._open_until = now + self.settings.gate_hold_s
            return True
        return now < self._open_until

    def filter(self, pcm: bytes, now: float) -> bytes:
        """The block itself, or silence of the same length when the guard holds the mic."""
        if self.settings.mode is EchoMode.OFF:
            self.closed = False
            return pcm
        passes = self.should_pass(rms(pcm), now)
        self.closed = not passes
        if passes:
            return pcm
        self.blocks_silenced += 1
        return bytes(len(pcm))


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
