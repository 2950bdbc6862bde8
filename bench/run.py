"""All benchmarks in one command: the audio engine's and the end-to-end ones, one table.

    .venv/bin/python -m bench.run            # about 3 minutes on 2 cores
    .venv/bin/python -m bench.run --quick    # about 40 s, for development

Runs `bench.audio` (real PortAudio streams on the private PulseAudio server: callback costs,
first sample, clear, underruns, truncation accuracy) and `bench.e2e` (client-added latency,
CPU and RSS over a real-time duplex conversation, decode throughput and event-loop stalls
against the local server in its own process), prints them as one table, and writes
bench/results/audio.md and bench/results/e2e.md with the date and the machine.

Benchmarks measure and report; they do not pass or fail (the tests do that).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import traceback

from bench import audio, e2e
from bench.report import Row, load_note, markdown_table, private_sound_server


def render(sections: list[tuple[str, list[Row]]]) -> str:
    rows = [(area, *row) for area, section in sections for row in section]
    return markdown_table(("Area", "Measure", "Result", "Notes"), rows)


async def run_all(quick: bool) -> tuple[list[Row], float, list[Row], str, float]:
    started = time.monotonic()
    try:
        audio_rows = await audio.run(quick)
    except Exception as exc:  # one failing suite must not hide the other's figures
        traceback.print_exc()
        audio_rows = [("bench.audio failed", f"{type(exc).__name__}: {exc}", "see the traceback")]
    audio_s = time.monotonic() - started
    _release_freed_memory()
    started = time.monotonic()
    e2e_rows, turns = await e2e.run(quick)
    return audio_rows, audio_s, e2e_rows, turns, time.monotonic() - started


def _release_freed_memory() -> None:
    """Hand the heap the audio benchmarks freed back to the system before the end-to-end
    one measures the client's RSS (their simulated sessions leave megabytes of free heap
    that would otherwise count as the client's)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the figure includes that heap
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, shorter runs")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/results/")
    args = parser.parse_args(argv)
    with private_sound_server("bench.run"):  # before anything imports sounddevice
        load = os.getloadavg()
        audio_rows, audio_s, e2e_rows, turns, e2e_s = asyncio.run(run_all(args.quick))
    print(render([("audio", audio_rows), ("e2e", e2e_rows)]))
    print(
        f"\n(audio {audio_s:.0f} s, end to end {e2e_s:.0f} s; machine: {e2e.machine()}; "
        f"{load_note(load)})"
    )
    if not args.no_write:
        command = ".venv/bin/python -m bench.run" + (" --quick" if args.quick else "")
        audio.RESULTS.parent.mkdir(parents=True, exist_ok=True)
        audio.RESULTS.write_text(audio.results_text(audio_rows, audio_s, command, load))
        e2e.RESULTS.write_text(e2e.results_text(e2e_rows, turns, e2e_s, command, load))
        print(f"Wrote {audio.RESULTS} and {e2e.RESULTS}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
