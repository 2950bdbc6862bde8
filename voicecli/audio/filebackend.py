"""The file backend: a WAV file is the microphone, another WAV file is the speaker.

Input: any PCM WAV, downmixed and resampled to 24 kHz mono, handed out in blocks at real-time
pace (like a microphone) or as fast as the consumer takes them, then optional trailing
silence. Output: in real-time mode the WAV holds every block the simulated speaker produced,
silence included, so it lines up with the input's timeline; in fast mode it is just the
concatenation of the assistant audio as it was queued (minus anything a clear dropped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from voicecli.audio.backend import SAMPLE_RATE
from voicecli.audio.simulated import SimulatedBackend
from voicecli.audio.wav import WavWriter, read_wav


__all__ = ["FileBackend"]


class FileBackend(SimulatedBackend):
    """WAV in, WAV out. Either may be None: no mic, or output discarded.

    Args:
        input_wav: the "microphone" (None: `mic_blocks()` ends at once).
        output_wav: where played audio is written (None: discarded, still tracked).
        options: `SimulatedBackend`'s keyword arguments: `realtime` (pace like a device, the
            default, or run as fast as possible), `trailing_silence_ms` (silence after the
            input; None: until `stop()`, real-time only), block_ms, prebuffer_ms, ...
    """

    def __init__(
        self,
        input_wav: str | Path | None = None,
        output_wav: str | Path | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.input_wav = Path(input_wav) if input_wav is not None else None
        self.output_wav = Path(output_wav) if output_wav is not None else None
        self._writer: WavWriter | None = None

    def _open_source(self) -> np.ndarray | str | None:
        if self.output_wav is not None and self._writer is None:
            self._writer = WavWriter(self.output_wav, SAMPLE_RATE)
        if self.input_wav is None:
            return None
        return read_wav(self.input_wav, SAMPLE_RATE)

    def _sink(self, samples: np.ndarray) -> None:
        if self._writer is not None and samples.size:
            self._writer.write(samples)

    def _close_sink(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
