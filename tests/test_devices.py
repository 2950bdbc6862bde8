"""Devices: listing, choosing by index or name, rate checks, and the one-line errors.

Runs against real PortAudio on the private PulseAudio server (devices `pulse` and `default`).
The "PortAudio missing" case runs in a subprocess whose library lookup is made to fail,
because the library cannot be uninstalled for one test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from voicecli.audio.devices import (
    PORTAUDIO_INSTALL,
    list_devices,
    parse_device_spec,
    pick_stream_rate,
    resolve_device,
)
from voicecli.cli import main
from voicecli.errors import AudioError


ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.audio


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **env},
    )


def test_list_devices_marks_defaults_rates_and_24k(sound_server: str) -> None:
    devices = list_devices(check_24k=True)
    names = {d.name for d in devices}
    assert {"pulse", "default"} <= names
    default = next(d for d in devices if d.name == "default")
    assert default.default_input and default.default_output
    assert default.default_samplerate == 44100
    assert default.input_24k is True and default.output_24k is True
    assert sum(d.default_input for d in devices) == 1


def test_resolve_by_default_index_exact_name_and_substring(sound_server: str) -> None:
    assert resolve_device(None, "input").name == "default"
    pulse = resolve_device("PUL", "output")
    assert pulse.name == "pulse"
    assert resolve_device(pulse.index, "input").index == pulse.index
    assert resolve_device("default", "output").name == "default"


def test_unknown_and_ambiguous_devices_are_one_clear_line(sound_server: str) -> None:
    with pytest.raises(AudioError, match=r"no input device matches 'nosuchmic'") as unknown:
        resolve_device("nosuchmic", "input")
    assert "\n" not in str(unknown.value) and "voicecli devices" in str(unknown.value)
    with pytest.raises(AudioError, match="no output device with index 99"):
        resolve_device(99, "output")
    with pytest.raises(AudioError, match="matches several input devices") as ambiguous:
        resolve_device("u", "input")  # "pulse" and "default"
    assert "by index" in str(ambiguous.value)


def test_parse_device_spec_takes_index_or_name() -> None:
    assert parse_device_spec("3") == 3
    assert parse_device_spec(" USB mic ") == "USB mic"
    assert parse_device_spec("") is None
    assert parse_device_spec("default") is None
    assert parse_device_spec(None) is None


def test_rate_falls_back_to_native_when_refused_and_fails_clearly_when_both_are(
    sound_server: str,
) -> None:
    device = resolve_device(None, "input")
    assert pick_stream_rate(device, "input", preferred=24000) == 24000
    # PortAudio really refuses 7 Hz, so the device's own rate is chosen instead.
    assert pick_stream_rate(device, "input", preferred=7) == 44100
    fake_native = type(device)(**{**_fields(device), "default_samplerate": 3.0})
    with pytest.raises(AudioError, match=r"does not support mono 16-bit audio at 3 Hz") as exc:
        pick_stream_rate(fake_native, "output", preferred=7)
    assert "Invalid sample rate" in str(exc.value)


def _fields(device: object) -> dict[str, object]:
    return {name: getattr(device, name) for name in device.__slots__}  # type: ignore[attr-defined]


def test_devices_command_lists_inputs_and_outputs(
    sound_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["devices"]) == 0
    out = capsys.readouterr().out
    assert out.index("Input devices:") < out.index("Output devices:")
    default_rows = [line for line in out.splitlines() if line.startswith("  *")]
    assert len(default_rows) == 2 and all("default" in row for row in default_rows)
    assert "44100 Hz" in out and "24 kHz mono" in out and "yes" in out


def test_devices_command_json(sound_server: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"index", "name", "default_samplerate", "input_24k"} <= set(listed[0])


def test_no_devices_is_one_line_not_a_traceback() -> None:
    result = run_python(
        "from voicecli.cli import main; raise SystemExit(main(['devices']))",
        PULSE_SERVER="unix:/nonexistent/socket",
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "voicecli: PortAudio sees no audio devices (no sound card, or no sound server running?)"
    ]
    backend = run_python(
        "import asyncio\n"
        "from voicecli.audio import RealBackend\n"
        "from voicecli.errors import AudioError\n"
        "try:\n"
        "    asyncio.run(RealBackend().start())\n"
        "except AudioError as exc:\n"
        "    print(exc)\n",
        PULSE_SERVER="unix:/nonexistent/socket",
    )
    assert backend.stdout.startswith("PortAudio sees no audio input device"), backend.stderr
    assert backend.stderr == ""


def test_portaudio_missing_says_how_to_install_it() -> None:
    # The lookup sounddevice does at import is made to fail, as on a machine without PortAudio.
    result = run_python(
        "import ctypes.util\n"
        "ctypes.util.find_library = lambda name: None\n"
        "from voicecli.cli import main\n"
        "raise SystemExit(main(['devices']))\n"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines == [f"voicecli: {PORTAUDIO_INSTALL}"]
    for install in ("apt install libportaudio2", "dnf install portaudio", "pacman -S portaudio"):
        assert install in lines[0]
    assert "brew install portaudio" in lines[0]


def test_unsupported_settings_are_one_line(sound_server: str) -> None:
    import asyncio

    from voicecli.audio import RealBackend

    async def start() -> None:
        backend = RealBackend(use_input=False, output_rate=7)
        try:
            await backend.start()
        finally:
            await backend.stop()

    with pytest.raises(AudioError) as exc:
        asyncio.run(start())
    message = str(exc.value)
    assert message.startswith("cannot open output device 1 'default' at 7 Hz: Invalid sample rate")
    assert "\n" not in message


async def test_backend_opens_devices_chosen_by_name_or_index(sound_server: str) -> None:
    from voicecli.audio import RealBackend

    backend = RealBackend(input_device="PULS", output_device="0")
    await backend.start()
    try:
        assert backend.capture is not None and backend.capture.device.name == "pulse"
        assert backend.playback is not None and backend.playback.device.index == 0
    finally:
        await backend.stop()
    with pytest.raises(AudioError, match="no input device matches 'nosuch'"):
        await RealBackend(input_device="nosuch").start()
