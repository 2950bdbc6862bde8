"""Audio devices as PortAudio sees them: loading sounddevice, listing, choosing, rate checks.

Every failure here becomes an `AudioError` with one sentence a user can act on: PortAudio
missing (with the install line per platform), no devices, an unknown device, settings the
device refuses. sounddevice is imported lazily, inside `load_sounddevice()`, because importing
it fails outright without the PortAudio library and scans devices as a side effect.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from voicecli.errors import AudioError


__all__ = [
    "PORTAUDIO_INSTALL",
    "DeviceInfo",
    "Kind",
    "describe_portaudio_error",
    "list_devices",
    "load_sounddevice",
    "parse_device_spec",
    "pick_stream_rate",
    "resolve_device",
]

Kind = Literal["input", "output"]

PORTAUDIO_INSTALL = (
    "the PortAudio library is not installed; install it with "
    "'sudo apt install libportaudio2' (Debian/Ubuntu), 'sudo dnf install portaudio' (Fedora), "
    "'sudo pacman -S portaudio' (Arch) or 'brew install portaudio' (macOS)"
)

_INVALID_SAMPLE_RATE = -9997  # paInvalidSampleRate


@functools.cache
def load_sounddevice() -> ModuleType:
    """Import sounddevice, turning a missing PortAudio into one clear AudioError."""
    try:
        import sounddevice
    except OSError as exc:
        if "PortAudio" in str(exc):
            raise AudioError(PORTAUDIO_INSTALL) from None
        raise AudioError(f"cannot load PortAudio: {exc}") from None
    return sounddevice


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    index: int
    name: str
    hostapi: str
    max_input_channels: int
    max_output_channels: int
    default_samplerate: float
    default_input: bool
    default_output: bool
    input_24k: bool | None = None
    """Whether 24 kHz mono int16 input opens (None: not checked or not an input)."""
    output_24k: bool | None = None

    def label(self) -> str:
        return f"{self.index} '{self.name}'"


def parse_device_spec(text: str | int | None) -> int | str | None:
    """`--device` value: an index (digits) or a name substring; empty means the default."""
    if text is None or isinstance(text, int):
        return text
    text = text.strip()
    if not text or text.lower() == "default":
        return None
    return int(text) if text.isdigit() else text


def list_devices(check_24k: bool = False) -> list[DeviceInfo]:
    """All devices with their default rates, defaults marked; optionally probe 24 kHz mono."""
    sd = load_sounddevice()
    default_in, default_out = _defaults(sd)
    devices = []
    for raw in sd.query_devices():
        index = int(raw["index"])
        info = DeviceInfo(
            index=index,
            name=str(raw["name"]),
            hostapi=str(sd.query_hostapis(raw["hostapi"])["name"]),
            max_input_channels=int(raw["max_input_channels"]),
            max_output_channels=int(raw["max_output_channels"]),
            default_samplerate=float(raw["default_samplerate"]),
            default_input=index == default_in,
            default_output=index == default_out,
        )
        if check_24k:
            info = _with_24k_checks(sd, info)
        devices.append(info)
    return devices


def resolve_device(spec: int | str | None, kind: Kind) -> DeviceInfo:
    """The device to open for `kind`: the default (None), an index, or a name substring.

    A substring must match one device's name (case-insensitive); an exact name wins over
    partial matches. Raises AudioError for no devices, no match or several matches.
    """
    devices = [d for d in list_devices() if _channels(d, kind) > 0]
    if not devices:
        raise AudioError(
            f"PortAudio sees no audio {kind} device (no sound card, or no sound server "
            "running?); 'voicecli devices' lists what it sees"
        )
    if spec is None:
        chosen = [d for d in devices if (d.default_input if kind == "input" else d.default_output)]
        if not chosen:
            raise AudioError(
                f"there is no default {kind} device; choose one by index or name "
                "(see 'voicecli devices')"
            )
        return chosen[0]
    if isinstance(spec, int):
        for device in devices:
            if device.index == spec:
                return device
        raise AudioError(f"there is no {kind} device with index {spec} (see 'voicecli devices')")
    wanted = spec.lower()
    exact = [d for d in devices if d.name.lower() == wanted]
    if len(exact) == 1:
        return exact[0]
    partial = [d for d in devices if wanted in d.name.lower()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise AudioError(f"no {kind} device matches '{spec}' (see 'voicecli devices')")
    names = ", ".join(d.label() for d in partial)
    raise AudioError(f"'{spec}' matches several {kind} devices ({names}); choose one by index")


def pick_stream_rate(device: DeviceInfo, kind: Kind, preferred: int = 24000) -> int:
    """The rate to open `device` at: `preferred` if it accepts mono int16 there, else its own.

    Raises AudioError when the device refuses both.
    """
    sd = load_sounddevice()
    try:
        _check(sd, device.index, kind, preferred)
        return preferred
    except sd.PortAudioError as exc:
        native = int(device.default_samplerate)
        if _error_code(exc) != _INVALID_SAMPLE_RATE or native == preferred:
            raise _unsupported(device, kind, preferred, exc) from None
    try:
        _check(sd, device.index, kind, native)
    except sd.PortAudioError as exc:
        raise _unsupported(device, kind, native, exc) from None
    return native


def describe_portaudio_error(exc: BaseException) -> str:
    """PortAudio's message without sounddevice's error-code decoration."""
    args = getattr(exc, "args", ())
    text = args[0] if args and isinstance(args[0], str) else str(exc) or type(exc).__name__
    # sounddevice prefixes "Error opening InputStream: "; the caller already says what failed.
    prefix, _, rest = text.partition(": ")
    return rest if prefix.startswith("Error opening") and rest else text


# --- internals -------------------------------------------------------------------------------


def _defaults(sd: Any) -> tuple[int, int]:
    default_in, default_out = sd.default.device
    # sounddevice may hold names or -1 here; resolve to indices where it can.
    return _as_index(sd, default_in, "input"), _as_index(sd, default_out, "output")


def _as_index(sd: Any, value: int | str, kind: str) -> int:
    if isinstance(value, int):
        return value
    try:
        return int(sd.query_devices(value, kind)["index"])
    except (ValueError, sd.PortAudioError):
        return -1


def _channels(device: DeviceInfo, kind: Kind) -> int:
    return device.max_input_channels if kind == "input" else device.max_output_channels


def _check(sd: Any, index: int, kind: Kind, rate: int) -> None:
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    check(device=index, channels=1, dtype="int16", samplerate=rate)


def _with_24k_checks(sd: Any, info: DeviceInfo) -> DeviceInfo:
    results: dict[str, bool | None] = {"input_24k": None, "output_24k": None}
    for kind in ("input", "output"):
        if _channels(info, kind) > 0:  # type: ignore[arg-type]
            try:
                _check(sd, info.index, kind, 24000)  # type: ignore[arg-type]
                results[f"{kind}_24k"] = True
            except sd.PortAudioError:
                results[f"{kind}_24k"] = False
    return DeviceInfo(**{**_fields(info), **results})


def _fields(info: DeviceInfo) -> dict[str, Any]:
    return {name: getattr(info, name) for name in DeviceInfo.__slots__}  # type: ignore[attr-defined]


def _error_code(exc: BaseException) -> int | None:
    args = getattr(exc, "args", ())
    return args[1] if len(args) > 1 and isinstance(args[1], int) else None


def _unsupported(device: DeviceInfo, kind: Kind, rate: int, exc: BaseException) -> AudioError:
    return AudioError(
        f"{kind} device {device.label()} does not support mono 16-bit audio at {rate} Hz "
        f"({describe_portaudio_error(exc)})"
    )
