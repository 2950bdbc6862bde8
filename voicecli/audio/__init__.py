"""The audio engine: microphone capture, speaker playback through a jitter buffer, devices.

Three backends share one interface (`AudioBackend`): `RealBackend` (PortAudio via
sounddevice), `FileBackend` (WAV in, WAV out) and `NullBackend` (silence in, output
discarded). Importing this package never imports sounddevice; only `RealBackend.start()` and
`voicecli.audio.devices` load it, and a missing PortAudio becomes a one-line `AudioError`.
"""

from __future__ import annotations

from voicecli.audio.backend import SAMPLE_RATE, AudioBackend, AudioStats, MicBlock
from voicecli.audio.filebackend import FileBackend
from voicecli.audio.jitter import JitterBuffer
from voicecli.audio.null import NullBackend
from voicecli.audio.real import RealBackend


__all__ = [
    "SAMPLE_RATE",
    "AudioBackend",
    "AudioStats",
    "FileBackend",
    "JitterBuffer",
    "MicBlock",
    "NullBackend",
    "RealBackend",
]
