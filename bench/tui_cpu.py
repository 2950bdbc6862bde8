"""CPU used by the real `voicecli talk` (Textual UI + engine + audio) with a session open.

    .venv/bin/python -m bench.tui_cpu            # about 3 minutes; writes bench/results/tui.md
    .venv/bin/python -m bench.tui_cpu --window 10

The program runs in tmux (120x40) on the private PulseAudio server, like a user's terminal.
The realtime server runs in a separate process (`voicecli serve`, speech responder, real-time
pace) so its work is not counted; a last pair of runs uses the embedded server (no --url, what
a user without an API key gets) where it is. CPU is read from /proc/PID/stat (utime + stime)
over a window: percent of one core = CPU seconds / wall seconds x 100.

Scenarios, each in a fresh talk process:

- idle: connected, server VAD listening, the mic streaming (silence) to the server;
- duplex: an espeak-ng question played into the mic every 4 s, so the mic streams speech while
  replies play (and the user barges in on them); the screen updates states, meters, the
  streaming transcript and the per-turn line;
- duplex + inspector: the same with the event inspector open;
- text only: no audio devices, idle;
- engine only: the same engine, audio backend and settings without any UI (a baseline: the
  difference to the first two rows is what the UI costs).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "tui.md"
TICKS = os.sysconf("SC_CLK_TCK")


def ensure_sound_server() -> int | None:
    from tests import pulse

    os.environ["PULSE_SERVER"] = pulse.SERVER
    pid = pulse.start()
    if not pulse.is_up():
        raise SystemExit("bench.tui_cpu: no PulseAudio server (run scripts/install.sh)")
    return pid


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / TICKS


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
    """`voicecli talk ARGS` exec'd in its own tmux server, so the pane's pid is the program."""

    def __init__(self, home: Path, args: list[str], program: str = "voicecli talk") -> None:
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
        module = "voicecli talk" if program == "voicecli talk" else "bench.tui_cpu --engine-only"
        command = " ".join(["exec", f"'{sys.executable}'", "-m", module, *args])
        self.tmux(
            "new-session", "-d", "-s", "talk", "-x", "120", "-y", "40", "-c", str(home),
            *[part for name, value in env.items() for part in ("-e", f"{name}={value}")],
            command,
        )  # fmt: skip
        self.pid = int(self.tmux("display-message", "-p", "-t", "talk", "#{pane_pid}"))

    def tmux(self, *args: str) -> str:
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


@dataclass
class Result:
    name: str
    cpu_percent: float
    window_s: float
    turns: int


def measure(
    name: str, talk: Talk, window: float, speech_wav: Path | None, keys: str = ""
) -> Result:
    from tests import pulse

    talk.wait_for("● connected")
    if keys:
        talk.tmux("send-keys", "-t", "talk", keys)
    time.sleep(2.0)  # settle: the first frames, the audio streams warming up
    start_cpu, start = cpu_seconds(talk.pid), time.monotonic()
    next_play = start
    players = []
    while (now := time.monotonic()) < start + window:
        if speech_wav is not None and now >= next_play:
            players.append(pulse.play_into_mic(speech_wav))
            next_play += 4.0
        time.sleep(0.05)
    used, elapsed = cpu_seconds(talk.pid) - start_cpu, time.monotonic() - start
    for player in players:
        player.wait(timeout=10)
    screen = talk.screen()
    turns = max(
        (int(word) for line in screen.splitlines() if line.strip().startswith("turn ")
         for word in line.split()[1:2] if word.isdigit()),
        default=0,
    )  # fmt: skip
    result = Result(name, 100 * used / elapsed, elapsed, turns)
    print(f"{name:44s} {result.cpu_percent:5.1f} % of one core ({turns} turns)", flush=True)
    return result


def run(window: float, only: str = "") -> list[Result]:
    results = []
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
            url = ["--url", f"ws://127.0.0.1:{port}/v1/realtime", "--no-history"]
            engine = [f"ws://127.0.0.1:{port}/v1/realtime"]
            talk = "voicecli talk"
            scenarios = [
                ("idle, VAD listening (separate server)", talk, url, None, ""),
                ("duplex conversation (separate server)", talk, url, question, ""),
                ("duplex + inspector open (separate server)", talk, url, question, "i"),
                ("text only, idle (separate server)", talk, [*url, "--text-only"], None, ""),
                ("idle, embedded local server", talk, ["--no-history"], None, ""),
                ("duplex, embedded local server", talk, ["--no-history"], question, ""),
                ("engine only, no UI: idle", "engine", engine, None, ""),
                ("engine only, no UI: duplex", "engine", engine, question, ""),
            ]
            for index, (name, program, args, wav, keys) in enumerate(scenarios):
                if only and only not in name:
                    continue
                talk = Talk(tmp_path / f"home{index}", args, program)
                try:
                    results.append(measure(name, talk, window, wav, keys))
                finally:
                    talk.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    return results


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def write(results: list[Result], window: float) -> None:
    import textual

    today = datetime.date.today().isoformat()
    lines = [
        "# `voicecli talk`: CPU of the running TUI",
        "",
        f"Measured {today} with `python -m bench.tui_cpu --window {window:g}` on {cpu_model()} "
        f"({os.cpu_count()} cores, shared with other work), Python {platform.python_version()}, "
        f"Textual {textual.__version__}, PulseAudio null sinks.",
        "",
        "The real program in tmux (120x40); CPU = utime + stime of its process from "
        f"/proc/PID/stat over {window:g} s after 2 s of settling, as percent of one core. "
        "Goal: under 5 %.",
        "",
        "| scenario | CPU (% of one core) | turns on screen |",
        "|---|---:|---:|",
    ]
    lines += [f"| {r.name} | {r.cpu_percent:.1f} | {r.turns} |" for r in results]
    lines += [
        "",
        "- *separate server*: `voicecli serve --responder speech --pace 1` in another process, "
        "talk connects with `--url`; only the client is measured.",
        "- *embedded local server*: no `--url` and no key, so the local server (espeak-ng "
        "replies, VAD, pacing) runs inside the talk process and is counted.",
        "- *duplex*: the question is played into the mic every 4 s while replies play; the mic "
        "streams all the time (server VAD), so audio flows both ways at once.",
        "- *engine only*: `TalkEngine` + the real audio backend with talk's default settings "
        "and no UI, against the same server: the difference to the talk rows is the UI's "
        "share.",
        "- The UI redraws at most 15 times a second from `engine.snapshot()`, and only what "
        "changed; the audio engine's 20 ms tick and the mic's 50 blocks/s are included.",
        "",
    ]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("\n".join(lines))
    print(f"wrote {RESULTS.relative_to(ROOT)}")


def engine_only(url: str) -> int:
    """The same engine, audio and settings as talk's defaults, without any UI: the baseline
    that tells the UI's share. Prints what the measuring side waits for."""
    import asyncio

    from voicecli.audio import RealBackend
    from voicecli.config import load_config
    from voicecli.engine import TalkEngine, TalkSettings, TurnFinished, opener_for
    from voicecli.session import ConnectionSettings

    settings = TalkSettings.from_config(load_config({}, dotenv_path=None))
    engine = TalkEngine(settings, opener_for(ConnectionSettings(url=url)), RealBackend())

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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured per run")
    parser.add_argument("--only", default="", help="run only scenarios whose name has this")
    parser.add_argument("--engine-only", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_only:
        return engine_only(args.engine_only)
    for tool in ("tmux", "espeak-ng", "sox", "paplay"):
        if not shutil.which(tool):
            raise SystemExit(f"bench.tui_cpu: {tool} is needed")
    started = ensure_sound_server()
    try:
        results = run(args.window, args.only)
    finally:
        from tests import pulse

        pulse.stop(started)
    if not args.only:  # a partial run does not replace the published table
        write(results, args.window)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
