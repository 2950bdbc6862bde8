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
import datetime
import os
import sys
import time
import traceback

from bench import audio, e2e


def use_private_sound_server() -> None:
    """A PulseAudio daemon of the benchmarks' own, so a test run that starts or stops the
    tests' daemon meanwhile cannot disturb the measurements (tests/pulse.py reads this)."""
    os.environ.setdefault("VOICECLI_TEST_PA_DIR", f"/tmp/voicecli-pa-bench-{os.getuid()}")


def render(sections: list[tuple[str, list[e2e.Row]]]) -> str:
    header = ("Area", "Measure", "Result", "Notes")
    rows = [(area, *row) for area, section in sections for row in section]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(row) for row in rows]
    return "\n".join(out)


async def run_all(quick: bool) -> tuple[list[e2e.Row], float, list[e2e.Row], str, float]:
    started = time.monotonic()
    try:
        audio_rows = await audio.run(quick)
    except Exception as exc:  # one failing suite must not hide the other's figures
        traceback.print_exc()
        audio_rows = [("bench.audio failed", f"{type(exc).__name__}: {exc}", "see the traceback")]
    audio_s = time.monotonic() - started
    started = time.monotonic()
    e2e_rows, turns = await e2e.run(quick)
    return audio_rows, audio_s, e2e_rows, turns, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, shorter runs")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/results/")
    args = parser.parse_args(argv)
    use_private_sound_server()
    started_pid = audio.ensure_sound_server()  # before anything imports sounddevice
    load = os.getloadavg()
    try:
        audio_rows, audio_s, e2e_rows, turns, e2e_s = asyncio.run(run_all(args.quick))
    finally:
        if started_pid:
            from tests import pulse

            pulse.stop(started_pid)
    print(render([("audio", audio_rows), ("e2e", e2e_rows)]))
    print(
        f"\n(audio {audio_s:.0f} s, end to end {e2e_s:.0f} s; machine: {e2e.machine()}; "
        f"{e2e.load_note(load)})"
    )
    if not args.no_write:
        command = ".venv/bin/python -m bench.run" + (" --quick" if args.quick else "")
        today = datetime.date.today().isoformat()
        audio.RESULTS.parent.mkdir(parents=True, exist_ok=True)
        audio.RESULTS.write_text(
            f"# Audio engine benchmarks\n\n`{command}`, {today}.\n\n"
            f"Machine: {audio.machine()}; {e2e.load_note(load)}.\n\n"
            f"{audio.render(audio_rows, audio_s)}"
        )
        e2e.RESULTS.write_text(e2e.results_text(e2e_rows, turns, e2e_s, command, load))
        print(f"Wrote {audio.RESULTS} and {e2e.RESULTS}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
