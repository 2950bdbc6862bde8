"""CPU used by the real `voicecli talk` (Textual UI + engine + audio) with a session open.

    .venv/bin/python -m bench.tui_cpu                 # ~8 minutes; writes bench/results/tui.md
    .venv/bin/python -m bench.tui_cpu --repeat 1 --window 10 --only duplex   # a quick look

The program runs in tmux (120x40) on the benchmarks' private PulseAudio server, as in a user's
terminal. The realtime server is a separate process (`voicecli serve`, speech responder, real-
time pace), so its work is not counted; one pair of scenarios uses the embedded server (no
--url, what a user without an API key gets), where it is. CPU is utime + stime of the talk
process from /proc/PID/stat over a window, as percent of one core (CPU seconds / wall seconds
x 100). Each scenario runs `--repeat` times in a fresh process, the rounds interleaved so a
busy spell on the (shared) machine does not hit one scenario only; the table gives the median
and the range.

Scenarios:

- idle: connected, server VAD listening, the mic streaming (silence) to the server;
- duplex: an espeak-ng question played into the mic every 4 s, so the mic streams speech while
  replies play (and the user barges in on them); the screen updates the state, the meters, the
  streaming transcript and the per-turn line;
- duplex + inspector: the same with the event inspector open;
- text only: no audio devices, idle;
- engine only: the same engine, audio backend and settings without any UI, a baseline: the
  difference to the talk rows is what the UI costs;
- audio streams only: the floor. A process that opens the same PortAudio input and output
  streams (default devices, 24 kHz mono int16, talk's block lengths: 40 ms in, 20 ms out;
  through ALSA's pulse plugin to the PulseAudio null sinks) with empty callbacks and does
  nothing else. Its CPU is PortAudio's and the pulse plugin's threads in our process plus the
  two callbacks entering Python 75 times a second: every audio row pays it, and a sound card
  driven by ALSA directly would cost less.
- event-loop wake-ups only: the machine's price of a wake-up. An asyncio loop that sleeps 20 ms
  at a time and does nothing else; its CPU over 50 wake-ups a second is what one costs here.
  Talk's main thread wakes for the mic, the socket, its ticks and Textual's frames, so on a
  machine where this row is high every row above it is too.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "tui.md"
FLOOR = "audio streams only (floor)"
WAKES_PER_S = 50
WAKES = f"event-loop wake-ups only, {WAKES_PER_S}/s"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def speech(directory: Path) -> Path:
    raw, out = directory / "q.22k.wav", directory / "q.wav"
    subprocess.run(["espeak-ng", "-w", str(raw), "What is the capital of France?"], check=True)
    subprocess.run(
        ["sox", "-D", str(raw), "-r", "24000", "-c", "1", "-b", "16", str(out)], check=True
    )
    return out


class Talk:
    """A program exec'd in a tmux server of its own, so the pane's pid is the program's."""

    def __init__(self, home: Path, argv: list[str]) -> None:
        from tests import pulse

        self.socket = f"voicecli-bench-{uuid.uuid4().hex[:10]}"
        home.mkdir(parents=True, exist_ok=True)
        env = {
            "PULSE_SERVER": pulse.SERVER,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_STATE_HOME": str(home / "state"),
            "PYTHONPATH": str(ROOT),
        }
        command = " ".join(["exec", f"'{sys.executable}'", *argv])
        self.tmux(
            "new-session", "-d", "-s", "talk", "-x", "120", "-y", "40", "-c", str(home),
            *[part for name, value in env.items() for part in ("-e", f"{name}={value}")],
            command,
        )  # fmt: skip
        self.pid = int(self.tmux("display-message", "-p", "-t", "talk", "#{pane_pid}"))

    def tmux(self, *args: str) -> str:
        # COLUMNS/LINES would override the pane's real size inside the app.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        return subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, env=env, timeout=10
        ).stdout.strip()

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "talk")

    def wait_for(self, text: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.screen():
            if time.monotonic() > deadline:
                raise SystemExit(f"bench.tui_cpu: '{text}' never showed:\n{self.screen()}")
            time.sleep(0.2)

    def close(self) -> None:
        self.tmux("send-keys", "-t", "talk", "q")
        time.sleep(1.0)
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        tmp = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
        (tmp / self.socket).unlink(missing_ok=True)


@dataclass
class Scenario:
    name: str
    argv: list[str]
    speech: bool = False
    keys: str = ""
    runs: list[float] = field(default_factory=list)
    turns: list[int] = field(default_factory=list)


def measure(scenario: Scenario, talk: Talk, window: float, question: Path) -> None:
    from bench.e2e import cpu_seconds
    from tests import pulse

    talk.wait_for("● connected")
    if scenario.keys:
        talk.tmux("send-keys", "-t", "talk", scenario.keys)
    time.sleep(2.0)  # settle: the first frames, the audio streams warming up
    start_cpu, start = cpu_seconds(talk.pid), time.monotonic()
    next_play, players = start, []
    while (now := time.monotonic()) < start + window:
        if scenario.speech and now >= next_play:
            players.append(pulse.play_into_mic(question))
            next_play += 4.0
        time.sleep(0.05)
    used, elapsed = cpu_seconds(talk.pid) - start_cpu, time.monotonic() - start
    for player in players:
        player.wait(timeout=10)
    turns = max(
        (int(word) for line in talk.screen().splitlines() if line.strip().startswith("turn ")
         for word in line.split()[1:2] if word.isdigit()),
        default=0,
    )  # fmt: skip
    scenario.runs.append(100 * used / elapsed)
    scenario.turns.append(turns)
    print(f"{scenario.name:46s} {scenario.runs[-1]:5.1f} % ({turns} turns)", flush=True)


def scenarios(url: str) -> list[Scenario]:
    talk = ["-m", "voicecli", "talk", "--no-history"]
    remote = [*talk, "--url", url]
    engine = ["-m", "bench.tui_cpu", "--engine-only", url]
    return [
        Scenario(WAKES, ["-m", "bench.tui_cpu", "--wakes"]),
        Scenario(FLOOR, ["-m", "bench.tui_cpu", "--floor"]),
        Scenario("idle, VAD listening", remote),
        Scenario("duplex conversation", remote, speech=True),
        Scenario("duplex + inspector open", remote, speech=True, keys="i"),
        Scenario("text only, idle", [*remote, "--text-only"]),
        Scenario("engine only, no UI: idle", engine),
        Scenario("engine only, no UI: duplex", engine, speech=True),
        Scenario("idle, embedded local server", talk),
        Scenario("duplex, embedded local server", talk, speech=True),
    ]


def run(window: float, repeat: int, only: str) -> list[Scenario]:
    with tempfile.TemporaryDirectory(prefix="voicecli-bench-") as tmp:
        tmp_path = Path(tmp)
        question = speech(tmp_path)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "voicecli", "serve", "--port", str(port),
             "--responder", "speech", "--pace", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp, text=True,
        )  # fmt: skip
        try:
            server.stdout.readline()  # "listening on ..."
            chosen = [s for s in scenarios(f"ws://127.0.0.1:{port}/v1/realtime") if only in s.name]
            for round_ in range(repeat):
                for index, scenario in enumerate(chosen):
                    talk = Talk(tmp_path / f"home-{round_}-{index}", scenario.argv)
                    try:
                        measure(scenario, talk, window, question)
                    finally:
                        talk.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    return chosen


def engine_only(url: str) -> int:
    """The same engine, audio and settings as talk's defaults, without any UI: the baseline
    that tells the UI's share. Prints what the measuring side waits for."""
    import asyncio

    from voicecli.commands.talk import _audio_factory
    from voicecli.config import load_config
    from voicecli.engine import TalkEngine, TalkSettings, TurnFinished, opener_for
    from voicecli.session import ConnectionSettings

    config = load_config({}, dotenv_path=None)
    make_audio, _hint = _audio_factory(config)  # the backend exactly as talk builds it
    engine = TalkEngine(
        TalkSettings.from_config(config), opener_for(ConnectionSettings(url=url)), make_audio()
    )

    def on_update(update: object) -> None:
        if isinstance(update, TurnFinished):
            print(f"turn {update.metrics.index} done", flush=True)

    engine.subscribe(on_update)

    async def run() -> None:
        task = asyncio.create_task(engine.run())
        while not engine.policy.connected and not task.done():
            await asyncio.sleep(0.05)
        print("● connected (engine only)", flush=True)
        await task

    asyncio.run(run())
    return 0


def streams_only() -> int:
    """The floor: the same PortAudio streams as the real backend, callbacks doing nothing."""
    import threading

    from voicecli.audio.devices import load_sounddevice
    from voicecli.config import load_config

    sd = load_sounddevice()
    audio = load_config({}, dotenv_path=None).audio  # talk's block lengths

    def record(indata: object, frames: int, time_info: object, status: object) -> None:
        pass

    silence = bytes(2 * 24 * audio.output_block_ms)

    def play(outdata: Any, frames: int, time_info: object, status: object) -> None:
        outdata[:] = silence

    options = {"samplerate": 24000, "channels": 1, "dtype": "int16"}
    with (  # raw streams (bytes, not numpy arrays), as talk's
        sd.RawInputStream(callback=record, blocksize=24 * audio.block_ms, **options),
        sd.RawOutputStream(callback=play, blocksize=24 * audio.output_block_ms, **options),
    ):
        print("● connected (audio streams only)", flush=True)
        threading.Event().wait()  # until the benchmark kills the pane
    return 0


def wakes_only() -> int:
    """An asyncio loop that wakes WAKES_PER_S times a second and does nothing else."""
    import asyncio

    async def run() -> None:
        print("● connected (wake-ups only)", flush=True)
        while True:
            await asyncio.sleep(1 / WAKES_PER_S)

    asyncio.run(run())
    return 0


def verdict(chosen: list[Scenario]) -> list[str]:
    """The goal (for the rows that are `voicecli talk`), the floor under every audio row, and
    the UI's share (a talk row minus its engine-only baseline)."""
    by_name = {s.name: s for s in chosen}
    median = {s.name: statistics.median(s.runs) for s in chosen}
    talk_rows = [
        name for name in median if not name.startswith("engine") and name not in (FLOOR, WAKES)
    ]
    over = [f"{name} ({median[name] - 5.0:+.1f})" for name in talk_rows if median[name] >= 5]
    lines = [
        "**Goal (under 5 % of one core): "
        + ("met.**" if not over else f"not met** by (points over): {', '.join(over)}.")
    ]
    if FLOOR in median:
        floor = median[FLOOR]
        above = [
            f"{name} {median[name] - floor:.1f}"
            for name in ("idle, VAD listening", "duplex conversation")
            if name in median
        ]
        lines.append(
            f"Floor: the two PortAudio streams alone, callbacks empty, cost {floor:.1f} %; "
            f"points above it: {', '.join(above)}."
        )
    if WAKES in median:
        each_us = median[WAKES] / 100 / WAKES_PER_S * 1e6
        lines.append(
            f"One event-loop wake-up costs this machine about {each_us:.0f} µs of CPU "
            f"(the wake-ups row: {median[WAKES]:.2f} % for {WAKES_PER_S} a second)."
        )
    for talk, engine in (
        ("idle, VAD listening", "engine only, no UI: idle"),
        ("duplex conversation", "engine only, no UI: duplex"),
    ):
        if talk not in median or engine not in median:
            continue
        share = median[talk] - median[engine]
        runs = by_name[talk].runs + by_name[engine].runs
        line = (
            f"UI share, {talk}: {share:+.1f} points ({median[talk]:.1f} % with the UI, "
            f"{median[engine]:.1f} % for the engine and audio alone)"
        )
        spread = max(max(by_name[n].runs) - min(by_name[n].runs) for n in (talk, engine))
        if abs(share) <= spread:
            line += f": within the run-to-run spread ({min(runs):.1f}–{max(runs):.1f} %)"
        lines.append(line + ".")
    return [line + "  " for line in lines[:-1]] + lines[-1:]


def write(chosen: list[Scenario], window: float, repeat: int, load: tuple[float, ...]) -> None:
    import textual

    from bench.report import cpu_name, load_note, markdown_table

    rows = [
        (
            s.name,
            f"{statistics.median(s.runs):.1f}",
            f"{min(s.runs):.1f}–{max(s.runs):.1f}",
            str(max(s.turns)),
        )
        for s in chosen
    ]
    lines = [
        "# `voicecli talk`: CPU of the running TUI",
        "",
        f"Measured {datetime.date.today().isoformat()} with `python -m bench.tui_cpu --window "
        f"{window:g} --repeat {repeat}` on {cpu_name()} ({os.cpu_count()} cores, shared with "
        f"other work; {load_note(load)}), Python {platform.python_version()}, Textual "
        f"{textual.__version__}, PulseAudio null sinks.",
        "",
        "The real program in tmux (120x40). CPU = utime + stime of its process from "
        f"/proc/PID/stat over {window:g} s (after 2 s of settling), as percent of one core; "
        f"median and range of {repeat} runs, each in a fresh process. Goal: under 5 %.",
        "",
        markdown_table(("scenario", "CPU % (median)", "range", "turns on screen"), rows),
        "",
        *verdict(chosen),
        "",
        "- The realtime server is `voicecli serve --responder speech --pace 1` in another "
        "process (talk connects with `--url`) except in the *embedded local server* rows, "
        "where, as for a user without an API key, it runs inside the talk process and counts.",
        "- *duplex*: the question is played into the mic every 4 s while replies play; the mic "
        "streams all the time (server VAD), so audio flows both ways at once.",
        "- *engine only*: `TalkEngine` + the real audio backend with talk's default settings "
        "and no UI, against the same server: the difference to the talk rows is the UI's "
        "share.",
        "- *audio streams only (floor)*: a process that opens the same PortAudio input and "
        "output streams (default devices through ALSA's pulse plugin, 24 kHz mono, talk's "
        "blocks: 40 ms in, 20 ms out; raw streams, as talk's) with empty callbacks: "
        "PortAudio's and the plugin's threads and 75 callbacks a second into Python. Every "
        "audio row pays it; a sound "
        "card that ALSA drives directly would cost less.",
        "- *event-loop wake-ups only*: an asyncio loop sleeping 20 ms at a time and doing "
        "nothing else: what this machine charges for a wake-up (kernel, timer, asyncio's "
        "loop). Talk's main thread wakes for mic blocks, WebSocket frames, its ticks and "
        "Textual's frames; a machine with a high figure here is dear for every row.",
        "- Every audio row: 25 mic blocks a second (40 ms), handed to the event loop in "
        "batches (one wake-up and one `input_audio_buffer.append` frame per 80 ms while "
        "nobody speaks, per block while the server hears speech, a loud block at once; "
        "base64 + JSON + WebSocket write per frame: on loopback the write syscall also does "
        "the server side's TCP receive). The engine ticks every 50 ms while assistant audio "
        "plays, every 20 ms while push-to-talk is held, else every 100 ms.",
        "- The UI redraws at most 10 times a second from `engine.snapshot()`, and only what "
        "changed (fixed-size widgets repaint without a layout pass; the meters only when a "
        "level crosses a cell; the status, state, meters and turn line keep each look they "
        "showed as drawn, Textual's styles included, so showing it again is a lookup; "
        "containers with nothing to draw are "
        "painted as background; the conversation pane draws its own rows, so a transcript "
        "delta repaints the rows of its line and lays the screen out only when it adds a "
        "row). With the inspector open, its live area changes every frame "
        "and each finished row grows its log, which costs Textual a layout pass.",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=15.0, help="seconds measured per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per scenario")
    parser.add_argument("--only", default="", help="only scenarios whose name has this")
    parser.add_argument("--engine-only", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--floor", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--wakes", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_only:
        return engine_only(args.engine_only)
    if args.floor:
        return streams_only()
    if args.wakes:
        return wakes_only()
    for tool in ("tmux", "espeak-ng", "sox", "paplay"):
        if not shutil.which(tool):
            raise SystemExit(f"bench.tui_cpu: {tool} is needed")
    from bench.report import private_sound_server

    load = os.getloadavg()
    with private_sound_server("bench.tui_cpu"):
        chosen = run(args.window, args.repeat, args.only)
    if not args.only:  # a partial run does not replace the published table
        write(chosen, args.window, args.repeat, load)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
