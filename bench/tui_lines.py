"""What a streaming transcript delta costs the talk screen as the conversation grows.

    .venv/bin/python -m bench.tui_lines          # ~20 s; writes bench/results/tui_lines.md

The conversation pane (`TranscriptPane`) in a Textual app of 120x40 (headless) holds N lines of
earlier turns, then a reply streams into it one word per delta, as transcript deltas arrive:
each delta is `sync()` with the new lines (unchanged lines as the same objects, as the engine's
`TranscriptView` hands them back) and the frame Textual draws for it. The figure is the CPU time
of the process per delta (`time.process_time`, so waiting is not counted), median of 5 runs of
200 deltas each; a 60-minute session has a few hundred lines. The harness's own share (Pilot's
pause after each delta) is measured the same way with deltas that change nothing.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

from textual.app import App, ComposeResult

from voicecli.transcript import Line, LineKind
from voicecli.tui.widgets import TranscriptPane


ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "tui_lines.md"
SIZES = (10, 100, 400, 1000)
DELTAS = 200
RUNS = 5


class PaneApp(App[None]):
    CSS_PATH = ROOT / "voicecli" / "tui" / "voicecli.tcss"

    def compose(self) -> ComposeResult:
        yield TranscriptPane(id="conversation")


def history(lines: int) -> list[Line]:
    question = "What is the capital of France, and what is it known for? "
    answer = "The capital of France is Paris, known for the Eiffel Tower and the Louvre. "
    return [
        Line(f"l{i}", LineKind.USER if i % 2 == 0 else LineKind.ASSISTANT,
             (question if i % 2 == 0 else answer) * 2)
        for i in range(lines)
    ]  # fmt: skip


async def per_delta(lines: int) -> tuple[float, float, int]:
    """CPU ms per delta (median of the runs), the harness's share of it, and how many deltas
    changed the pane's height."""
    app = PaneApp()
    async with app.run_test(size=(120, 40)) as pilot:
        pane = app.query_one(TranscriptPane)
        before = history(lines)
        pane.sync(before)
        await pilot.pause()
        runs, grew = [], 0
        for run in range(RUNS):
            text = ""
            start = time.process_time()
            for word in range(DELTAS):
                text += f" word{word}"
                height = pane.virtual_size.height
                reply = Line(f"r{run}", LineKind.ASSISTANT, text, streaming=True)
                pane.sync([*before, reply])
                await pilot.pause()
                grew += pane.virtual_size.height != height
            runs.append((time.process_time() - start) * 1000 / DELTAS)
        start = time.process_time()
        for _ in range(DELTAS):
            pane.sync([*before, reply])  # the same lines: nothing to draw
            await pilot.pause()
        harness = (time.process_time() - start) * 1000 / DELTAS
    return statistics.median(runs), harness, grew // RUNS


def main() -> int:
    rows = []
    for lines in SIZES:
        ms, harness, grew = asyncio.run(per_delta(lines))
        rows.append((lines, ms, harness, grew))
        print(
            f"{lines:5d} lines before the reply: {ms:5.2f} ms CPU per delta, of which the "
            f"harness {harness:.2f} ({grew} of {DELTAS} deltas added a row)",
            flush=True,
        )
    from bench.report import cpu_name, markdown_table

    table = markdown_table(
        (
            "lines before the reply",
            "CPU per delta (ms)",
            "of which the harness (ms)",
            "deltas that added a row",
        ),
        [
            (str(n), f"{ms:.2f}", f"{harness:.2f}", f"{grew} of {DELTAS}")
            for n, ms, harness, grew in rows
        ],
    )
    RESULTS.write_text(
        "# `voicecli talk`: a transcript delta as the conversation grows\n\n"
        f"Measured {datetime.date.today().isoformat()} with `python -m bench.tui_lines` on "
        f"{cpu_name()} ({os.cpu_count()} cores), Python {platform.python_version()}. How: "
        "see the module's docstring (CPU per delta: `sync()` and the frame it causes, median "
        f"of {RUNS} runs of {DELTAS} one-word deltas).\n\n{table}\n"
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
