"""A pure energy voice-activity detector with the semantics of the Realtime API's server VAD.

Audio is cut into 10 ms frames and each frame's RMS level (dBFS) is compared with a threshold.

* `threshold` (0..1, API default 0.5) maps linearly onto a level: 0 -> -70 dBFS (anything
  but digital silence), 0.5 -> -40 dBFS, 1 -> -10 dBFS (only very loud audio). Normal speech
  into a headset sits around -30..-15 dBFS and room noise below -50 dBFS, so the default
  separates them like the real server does. Once speech has started, frames count as voiced
  down to 6 dB below the threshold (hysteresis), so soft syllables do not end a turn.
* Speech starts after `MIN_SPEECH_MS` of consecutive voiced frames (a click does not start a
  turn). `audio_start_ms` is the first voiced frame minus `prefix_padding_ms`, never earlier
  than the end of the previous turn or the last reset.
* Speech stops once `silence_duration_ms` pass without a voiced frame. `audio_end_ms` is the
  end of the last voiced frame plus the silence window, i.e. it includes the silence, as the
  API documents.
* Milliseconds count from the first sample ever fed (the start of all audio appended in the
  session), whatever the sample rate.

`semantic_vad` cannot be reproduced with energy alone: the real model ends a turn as soon as
the utterance sounds finished and otherwise waits up to 8 s (low), 4 s (medium/auto) or
2 s (high). This detector approximates it with a fixed silence window of a quarter of those
maxima: 2000, 1000 and 500 ms (`semantic_silence_ms`).

Pure: numpy only, no clocks, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


__all__ = [
    "FRAME_MS",
    "MIN_SPEECH_MS",
    "EnergyVad",
    "VadEvent",
    "semantic_silence_ms",
    "threshold_dbfs",
]

FRAME_MS = 10
MIN_SPEECH_MS = 50
HYSTERESIS_DB = 6.0
_SEMANTIC_SILENCE_MS = {"low": 2000, "medium": 1000, "auto": 1000, "high": 500}


def threshold_dbfs(threshold: float) -> float:
    """The frame level (dBFS) at which audio counts as speech, for an API threshold 0..1."""
    clamped = min(1.0, max(0.0, threshold))
    return -70.0 + 60.0 * clamped


def semantic_silence_ms(eagerness: str | None) -> int:
    """The silence window that approximates `semantic_vad` at this eagerness."""
    return _SEMANTIC_SILENCE_MS.get(eagerness or "auto", 1000)


@dataclass(frozen=True, slots=True)
class VadEvent:
    """`kind` is `speech_started` (ms = audio_start_ms) or `speech_stopped` (ms = audio_end_ms)."""

    kind: str
    ms: int


class EnergyVad:
    """Feed float samples in order; get speech_started / speech_stopped events back."""

    def __init__(
        self,
        sample_rate: int,
        threshold: float = 0.5,
        prefix_padding_ms: int = 300,
        silence_duration_ms: int = 500,
        start_ms: float = 0.0,
    ) -> None:
        """`start_ms`: the session time of the first sample this detector will see."""
        self.sample_rate = sample_rate
        self.prefix_padding_ms = prefix_padding_ms
        self.silence_duration_ms = silence_duration_ms
        self.start_db = threshold_dbfs(threshold)
        self.continue_db = self.start_db - HYSTERESIS_DB
        self._frame = sample_rate * FRAME_MS // 1000
        self._pending = np.zeros(0, dtype=np.float32)
        self._start_ms = start_ms
        self._frames_seen = 0  # whole frames analysed so far
        self._floor_ms = start_ms  # audio_start_ms never reaches before this point
        self._in_speech = False
        self._candidate_frame: int | None = None  # first voiced frame of a possible onset
        self._last_voiced_frame = -1

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    @property
    def position_ms(self) -> float:
        """Milliseconds of audio fed so far (including a not yet analysed partial frame)."""
        samples = self._frames_seen * self._frame + len(self._pending)
        return self._start_ms + samples * 1000 / self.sample_rate

    def reset(self) -> None:
        """Forget any speech in progress (after a manual commit or clear). Time keeps counting."""
        self._in_speech = False
        self._candidate_frame = None
        self._floor_ms = self.position_ms

    def feed(self, samples: np.ndarray) -> list[VadEvent]:
        if len(self._pending):
            samples = np.concatenate([self._pending, samples])
        whole = len(samples) - len(samples) % self._frame
        self._pending = samples[whole:].copy()
        events: list[VadEvent] = []
        if whole:
            frames = samples[:whole].reshape(-1, self._frame).astype(np.float64)
            levels = 10 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)
            for level in levels:
                event = self._step(float(level))
                if event is not None:
                    events.append(event)
        return events

    def _ms(self, frame_index: int) -> float:
        return self._start_ms + frame_index * FRAME_MS

    def _step(self, level_db: float) -> VadEvent | None:
        index = self._frames_seen
        self._frames_seen += 1
        if self._in_speech:
            if level_db >= self.continue_db:
                self._last_voiced_frame = index
                return None
            silent_ms = self._ms(index + 1) - self._ms(self._last_voiced_frame + 1)
            if silent_ms >= self.silence_duration_ms:
                self._in_speech = False
                end_ms = self._ms(self._last_voiced_frame + 1) + self.silence_duration_ms
                self._floor_ms = end_ms
                return VadEvent("speech_stopped", int(round(end_ms)))
            return None
        if level_db < self.start_db:
            self._candidate_frame = None
            return None
        if self._candidate_frame is None:
            self._candidate_frame = index
        voiced_ms = self._ms(index + 1) - self._ms(self._candidate_frame)
        if voiced_ms < MIN_SPEECH_MS:
            return None
        self._in_speech = True
        self._last_voiced_frame = index
        onset_ms = self._ms(self._candidate_frame)
        self._candidate_frame = None
        start_ms = max(self._floor_ms, onset_ms - self.prefix_padding_ms)
        return VadEvent("speech_started", int(math.floor(start_ms)))
