"""Shared test set-up: the private PulseAudio server, espeak-ng speech fixtures, and an env
without real credentials.

`PULSE_SERVER` is set in `pytest_configure`, before anything imports sounddevice, because
PortAudio scans devices at import time.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests import pulse


_started_pid: int | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _started_pid
    os.environ["PULSE_SERVER"] = pulse.SERVER
    # Tests never see a developer's real key or config.
    os.environ.pop("OPENAI_API_KEY", None)
    for name in list(os.environ):
        if name.startswith("VOICECLI_") and name != "VOICECLI_TEST_PA_DIR":
            os.environ.pop(name)
    _started_pid = pulse.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    pulse.stop(_started_pid)


@pytest.fixture(scope="session")
def sound_server() -> str:
    """The PulseAudio server address; skips when the daemon could not be started."""
    if not pulse.is_up():
        pytest.skip("no PulseAudio server (install pulseaudio: scripts/install.sh)")
    return pulse.SERVER


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME (`sandbox / "home"`) and working directory (`sandbox`): no developer
    config, .env or history can leak in."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("XDG_CONFIG_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("speech")


def make_speech(directory: Path, text: str, name: str, lead_silence_ms: int = 100) -> Path:
    """Speak `text` with espeak-ng into a 24 kHz mono 16-bit WAV (no dither: reproducible)."""
    if not shutil.which("espeak-ng") or not shutil.which("sox"):
        pytest.skip("espeak-ng and sox are needed (scripts/install.sh installs them)")
    raw = directory / f"{name}.22k.wav"
    out = directory / f"{name}.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True, capture_output=True)
    subprocess.run(
        [
            "sox",
            "-D",
            str(raw),
            "-r",
            "24000",
            "-c",
            "1",
            "-b",
            "16",
            "-e",
            "signed-integer",
            str(out),
            "pad",
            f"{lead_silence_ms / 1000:.3f}",
            "0",
        ],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="session")
def speech_wav(speech_dir: Path) -> Path:
    """About 2 s of real speech: 'What is the capital of France?'."""
    return make_speech(speech_dir, "What is the capital of France?", "capital")
