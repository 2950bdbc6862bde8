"""`voicecli devices`: the audio devices PortAudio sees, and whether 24 kHz mono opens on each.

Inputs and outputs are listed separately with their index (what `--input-device` /
`--output-device` take, as does any part of the name), host API, channels and default rate; `*`
marks the system defaults. The last column says whether the device accepts 24 kHz mono
16-bit directly; "no" is fine, voicecli then opens the device's own rate and resamples.
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import asdict


__all__ = ["register", "run"]

_BLUETOOTH = re.compile(
    r"bluez|bluetooth|\bbt\b|headset|hands-?free|airpods|\bhfp\b", re.IGNORECASE
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "devices",
        help="list audio input and output devices",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    parser.add_argument("--json", action="store_true", help="print the list as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voicecli.audio.devices import list_devices, load_sounddevice
    from voicecli.errors import AudioError

    load_sounddevice()
    devices = list_devices(check_24k=True)
    if args.json:
        print(json.dumps([asdict(device) for device in devices], indent=2))
        return 0
    if not devices:
        raise AudioError(
            "PortAudio sees no audio devices (no sound card, or no sound server running?)"
        )
    for kind in ("input", "output"):
        print(_table(devices, kind))
    print("* = default device. Choose a device by index or by any part of its name.")
    if any(_BLUETOOTH.search(device.name) for device in devices):
        print(
            "Bluetooth headsets drop to low-quality 16 kHz audio while their microphone is "
            "open: use another microphone with them if you can."
        )
    return 0


def _table(devices: list, kind: str) -> str:
    rows = [d for d in devices if getattr(d, f"max_{kind}_channels") > 0]
    title = f"{kind.capitalize()} devices:"
    if not rows:
        return f"{title}\n  (none)\n"
    header = ("", "index", "name", "host API", "channels", "default rate", "24 kHz mono")
    lines = [header]
    for device in rows:
        ok = getattr(device, f"{kind}_24k")
        lines.append(
            (
                "*" if getattr(device, f"default_{kind}") else "",
                str(device.index),
                device.name,
                device.hostapi,
                str(getattr(device, f"max_{kind}_channels")),
                f"{device.default_samplerate:g} Hz",
                "yes" if ok else ("no (resampled)" if ok is False else "?"),
            )
        )
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    text = [
        "  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip()
        for row in lines
    ]
    return "\n".join([title, *text, ""])
