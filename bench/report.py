"""What every benchmark's results share: the Markdown table, the machine, the load, and the
private sound server they run on.

Benchmarks measure and report; how a figure was measured is in the docstring of the module
that measures it.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator, Sequence
from pathlib import Path


Row = tuple[str, str, str]
"""(measure, result, notes)."""


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table with its columns padded to line up in plain text too."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in rows]
    return "\n".join(out)


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (the architecture where there is none)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def load_note(load: tuple[float, float, float]) -> str:
    """The load average when the run began: other work on the machine skews the figures."""
    return f"load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min) at the start"


@contextlib.contextmanager
def private_sound_server(who: str) -> Iterator[None]:
    """The tests' private PulseAudio setup, in a daemon of the benchmarks' own (started here
    unless it runs, stopped after if started here), so a test run that starts or stops the
    tests' daemon meanwhile cannot disturb the measurements. Enter it before anything imports
    sounddevice: PortAudio finds its devices at import time."""
    os.environ.setdefault("VOICECLI_TEST_PA_DIR", f"/tmp/voicecli-pa-bench-{os.getuid()}")
    from tests import pulse  # reads VOICECLI_TEST_PA_DIR when first imported

    os.environ["PULSE_SERVER"] = pulse.SERVER
    started_pid = pulse.start()
    if not pulse.is_up():
        raise SystemExit(f"{who}: no PulseAudio server (run scripts/install.sh)")
    try:
        yield
    finally:
        pulse.stop(started_pid)
