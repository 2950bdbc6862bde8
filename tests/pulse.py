"""A private PulseAudio daemon: real PortAudio devices on a machine with no sound card.

Two null sinks keep the directions apart: the client plays into `spk` (the default sink) and
records from `mic.monitor` (the default source), so the "microphone" hears only what a test
plays into the `mic` sink. A test that wants the speaker to leak into the mic (echo tests)
points a process at `spk.monitor` with `PULSE_SOURCE=spk.monitor`.

Each sink gets a silent keep-alive loopback, because an idle null sink sleeps in 2 s blocks and
stalls every new stream (see shared/docs/audio-testing.md, gotcha 1).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path


PA_DIR = Path(os.environ.get("VOICECLI_TEST_PA_DIR", f"/tmp/voicecli-pa-{os.getuid()}"))
SERVER = f"unix:{PA_DIR}/native"

# fmt: off
DEFAULT_PA = """\
load-module module-native-protocol-unix auth-anonymous=1 socket={dir}/native
load-module module-null-sink sink_name=spk sink_properties=device.description=Speaker rate=24000 channels=1 format=s16le
load-module module-null-sink sink_name=mic sink_properties=device.description=Mic rate=24000 channels=1 format=s16le
set-default-sink spk
set-default-source mic.monitor
load-module module-null-source source_name=silence_spk rate=24000 channels=1 format=s16le
load-module module-loopback source=silence_spk sink=spk latency_msec=20 source_dont_move=true sink_dont_move=true
load-module module-null-source source_name=silence_mic rate=24000 channels=1 format=s16le
load-module module-loopback source=silence_mic sink=mic latency_msec=20 source_dont_move=true sink_dont_move=true
"""  # noqa: E501
# fmt: on


def is_up(server: str = SERVER) -> bool:
    if not shutil.which("pactl"):
        return False
    probe = subprocess.run(["pactl", "--server", server, "info"], capture_output=True, timeout=10)
    return probe.returncode == 0


def start() -> int | None:
    """Start the daemon unless it already runs; returns the pid we started, or None."""
    if is_up() or not shutil.which("pulseaudio"):
        return None
    # The null sink's first render cycle after start is 2 s: streams opened earlier stall.
    return launch(PA_DIR, settle_s=2.5)


def launch(directory: Path, settle_s: float) -> int:
    """Start a daemon serving `unix:{directory}/native` with the sinks above; its pid.

    `settle_s` is how long to wait once it answers (see `start()` for why that matters)."""
    (directory / "xdg").mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory / "xdg", 0o700)
    (directory / "default.pa").write_text(DEFAULT_PA.format(dir=directory))
    subprocess.run(
        [
            "pulseaudio",
            "--daemonize=yes",
            "-n",
            "-F",
            str(directory / "default.pa"),
            "--exit-idle-time=-1",
            f"--log-target=file:{directory}/pulse.log",
        ],
        env={**os.environ, "XDG_RUNTIME_DIR": str(directory / "xdg")},
        check=True,
        timeout=30,
    )
    for _ in range(100):
        if is_up(f"unix:{directory}/native"):
            break
        time.sleep(0.1)
    else:
        raise RuntimeError(f"pulseaudio did not come up; see {directory}/pulse.log")
    time.sleep(settle_s)
    return int((directory / "xdg" / "pulse" / "pid").read_text())


def stop(pid: int | None) -> None:
    if pid:
        try:
            os.kill(pid, 15)
        except ProcessLookupError:
            pass


def play_into_mic(wav: Path) -> subprocess.Popen[bytes]:
    """Play a WAV into the `mic` sink (what the client's microphone hears), in the background."""
    return subprocess.Popen(
        ["paplay", "--server", SERVER, "--device=mic", str(wav)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def record_monitor(sink: str, path: Path) -> subprocess.Popen[bytes]:
    """Record a sink's monitor as raw s16le 24 kHz mono into `path`, until terminated."""
    return subprocess.Popen(
        [
            "parec",
            "--server",
            SERVER,
            f"--device={sink}.monitor",
            "--rate=24000",
            "--channels=1",
            "--format=s16le",
            "--raw",
            str(path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
