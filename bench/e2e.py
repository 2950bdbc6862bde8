"""End-to-end benchmarks of the client against the local server (in its own process).

    .venv/bin/python -m bench.e2e            # about 1.5 minutes; prints one table
    .venv/bin/python -m bench.e2e --quick    # a 15 s conversation and smaller bursts

(`python -m bench.run` runs these and the audio engine's benchmarks together.)

What is measured, and how:

- A duplex conversation in real time (60 s; `--quick` 15 s): espeak-ng speech with pauses is
  played into the virtual microphone (the private PulseAudio server's `mic` sink) while the
  client, a `TalkEngine` on the real audio backend, streams the microphone, and the local
  server's echo responder answers each turn by streaming the user's audio back at real-time
  pace, which the client plays. Without a sound server the same speech is fed through the
  smoke run's file-based audio instead (the table says which).
- Client-added latency, from timestamps taken in the client (the session's receive and send
  taps, the audio backend's `play()` and `mic_blocks()`) and in the server process (when it
  hands each event to its WebSocket). Both use CLOCK_MONOTONIC (`time.monotonic()`), which is
  one clock for every process on the machine, so their differences are meaningful:
    * upstream: the end of a captured mic block (its `captured_at` + 20 ms) -> its
      `input_audio_buffer.append` frame handed to the socket; and, of that, the part inside the
      engine (block handed to the engine -> frame handed to the socket);
    * delivery: the server handing an event to its socket -> the client's reader receiving the
      frame (loopback TCP, websockets, the client's event loop waking up);
    * delta -> audio backend: a `response.output_audio.delta` frame received -> its PCM handed
      to `AudioBackend.play()` (decode, event queue, engine, turn policy);
    * per turn, the gap between `speech_stopped` and `response.created` (and the first audio
      delta) as the client measured it vs as the server sent them: what the client's view of
      the server's latency adds or removes.
- CPU and memory of the client process over the conversation: user + system CPU time from
  `/proc/self/stat` over wall time (100 % = one core), RSS from `/proc/self/status` sampled
  every second (start, end, peak). The server runs in another process and is not counted (its
  CPU is shown for reference).
- Decode throughput: audio-delta frames (100 ms of PCM16 each, like the server's) through the
  protocol core (`RealtimeClient.receive_text` + `events_received`), in us/event and events/s;
  and a burst through the whole client (session, engine, audio backend): the server sends
  5 minutes of reply audio (60 s with `--quick`) as fast as it can while a heartbeat task
  records the longest event-loop stall.

Writes the table to bench/results/e2e.md with the date and the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import Row, cpu_name, load_note, markdown_table, private_sound_server


RESULTS = Path(__file__).resolve().parent / "results" / "e2e.md"
ROOT = Path(__file__).resolve().parents[1]

_TYPE = re.compile(r'"type":\s*"([^"]+)"')
_RESPONSE_ID = re.compile(r'"response_id":\s*"([^"]+)"')
_ITEM_ID = re.compile(r'"item_id":\s*"([^"]+)"')
_DELTA_TYPES = ("response.output_audio.delta", "response.audio.delta")
_SERVER_LOGGED = (
    "input_audio_buffer.speech_started",
    "input_audio_buffer.speech_stopped",
    "input_audio_buffer.committed",
    "response.created",
    "response.done",
    *_DELTA_TYPES,
)


# --- /proc ------------------------------------------------------------------------------------


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of a process, from /proc/<pid>/stat (fields 14 and 15)."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # fields[0] is field 3 (state)
    ticks = int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def status_kib(name: str, pid: int | str = "self") -> int:
    """A `kB` line of /proc/<pid>/status, such as VmRSS or VmHWM."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    raise KeyError(name)


def machine() -> str:
    cores = len(os.sched_getaffinity(0))
    return (
        f"{cpu_name()}, nproc {cores}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def stats_ms(values: list[float]) -> str:
    if not values:
        return "no samples"
    array = np.asarray(values, dtype=np.float64)
    return (
        f"median {np.median(array):.2f} ms, p99 {np.percentile(array, 99):.2f} ms, "
        f"max {np.max(array):.2f} ms"
    )


# --- the server process -------------------------------------------------------------------------


def serve(log_path: str, responder: str, script: str | None, pace: float) -> None:
    """The child process: a LocalServer whose sends are timestamped into `log_path`."""
    from voicecli.server import LocalServer, ServerOptions
    from voicecli.server import local as server_local

    log = open(log_path, "w", buffering=1)  # noqa: SIM115 - lives as long as the process
    original = server_local._ConnectionRunner._send

    async def timed_send(self: Any, text: str) -> bool:
        sent_at = time.monotonic()  # when the server hands the frame to its WebSocket
        result = await original(self, text)
        event = json.loads(text)
        kind = event.get("type", "")
        if kind in _SERVER_LOGGED:
            response = event.get("response_id") or (event.get("response") or {}).get("id", "")
            log.write(f"{sent_at:.6f} {kind} {response}\n")
        return result

    server_local._ConnectionRunner._send = timed_send  # instrumentation for this process only

    async def main() -> None:
        options = ServerOptions(responder=responder, script=script, pace=pace)
        async with LocalServer(options) as server:
            print(server.url, flush=True)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            await stop.wait()

    asyncio.run(main())
    log.close()


@dataclass
class ServerProcess:
    """`python -m bench.e2e serve ...` in a child process; its log of send timestamps."""

    responder: str = "echo"
    script: str | None = None
    pace: float = 1.0
    process: subprocess.Popen[str] | None = None
    url: str = ""
    log_path: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".log")[1]))

    def __enter__(self) -> ServerProcess:
        command = [sys.executable, "-m", "bench.e2e", "serve", "--log", str(self.log_path)]
        command += ["--responder", self.responder, "--pace", str(self.pace)]
        if self.script:
            command += ["--script", self.script]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("ws://"):
            raise SystemExit("bench.e2e: the local server process did not start")
        return self

    def cpu_seconds(self) -> float:
        assert self.process is not None
        return cpu_seconds(self.process.pid)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def events(self) -> list[tuple[float, str, str]]:
        rows = []
        for line in self.log_path.read_text().splitlines():
            parts = line.split(" ")
            rows.append((float(parts[0]), parts[1], parts[2] if len(parts) > 2 else ""))
        self.log_path.unlink(missing_ok=True)
        return rows


# --- client-side probes ---------------------------------------------------------------------------


@dataclass
class Probe:
    """Timestamps the client takes (monotonic seconds)."""

    received: list[tuple[float, str, str]] = field(default_factory=list)
    """(arrival, type, response_id) of interesting frames, from the receive tap."""
    plays: list[tuple[float, str]] = field(default_factory=list)
    """(when, item_id) of each chunk of assistant PCM handed to `AudioBackend.play()`."""
    delta_items: list[str] = field(default_factory=list)
    """The item_id of each audio delta received, in the order of `received`'s deltas."""
    upstream_ms: list[float] = field(default_factory=list)
    """Mic block's last sample captured -> its append frame handed to the socket."""
    engine_upstream_ms: list[float] = field(default_factory=list)
    """Mic block handed to the engine -> its append frame handed to the socket."""
    _block: tuple[float, float] = (0.0, 0.0)
    _appends: deque[tuple[float, float]] = field(default_factory=deque)

    def on_received(self, text: str) -> None:
        now = time.monotonic()
        head = text[:200]
        match = _TYPE.search(head) or _TYPE.search(text)
        kind = match.group(1) if match else "?"
        if kind in _SERVER_LOGGED:
            found = _RESPONSE_ID.search(head) or _RESPONSE_ID.search(text)
            response = found.group(1) if found else ""
            if kind == "response.created":  # the id is the response object's
                response = _response_object_id(text)
            if kind in _DELTA_TYPES:
                item = _ITEM_ID.search(head) or _ITEM_ID.search(text)
                self.delta_items.append(item.group(1) if item else "")
            self.received.append((now, kind, response))

    def on_sent(self, text: str) -> None:
        match = _TYPE.search(text[:80])
        if match and match.group(1) == "input_audio_buffer.append":
            # The client frames every block appended so far as one append (batching).
            now = time.monotonic()
            while self._appends:
                block_end, handed = self._appends.popleft()
                self.upstream_ms.append((now - block_end) * 1000)
                self.engine_upstream_ms.append((now - handed) * 1000)

    def block_handed(self, captured_at: float, samples: int) -> None:
        self._block = (captured_at + samples / 24000, time.monotonic())

    def appended(self) -> None:
        self._appends.append(self._block)


def _response_object_id(text: str) -> str:
    match = re.search(r'"response":\s*\{[^{}]*?"id":\s*"([^"]+)"', text)
    return match.group(1) if match else ""


def probed_backend(cls: type, probe: Probe) -> type:
    """`cls` with `play()` and `mic_blocks()` timestamped into `probe`."""

    class Probed(cls):  # type: ignore[valid-type, misc]
        def play(self, pcm: bytes, item_id: str, content_index: int) -> None:
            probe.plays.append((time.monotonic(), item_id))
            super().play(pcm, item_id, content_index)

        async def mic_blocks(self):  # type: ignore[no-untyped-def]
            async for block in super().mic_blocks():
                probe.block_handed(block.captured_at, len(block.pcm) // 2)
                yield block

    return Probed


def probed_opener(settings: Any, probe: Probe) -> Callable[..., Any]:
    """The engine's opener, with the probe's taps in front of the engine's."""
    from voicecli.session import RealtimeSession

    async def open_session(on_sent: Callable[[str], None], on_received: Callable[[str], None]):  # type: ignore[no-untyped-def]
        def sent(text: str) -> None:
            probe.on_sent(text)
            on_sent(text)

        def received(text: str) -> None:
            probe.on_received(text)
            on_received(text)

        session = await RealtimeSession.open(settings, on_sent=sent, on_received=received)
        append = session.append_audio

        def append_audio(pcm: bytes) -> None:
            probe.appended()
            append(pcm)

        session.append_audio = append_audio  # type: ignore[method-assign]
        return session

    return open_session


class Heartbeat:
    """Measures how late a 5 ms sleep wakes up: the event loop's stalls."""

    def __init__(self, period_s: float = 0.005) -> None:
        self.period = period_s
        self.lateness_ms: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._beat())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _beat(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.period)
            self.lateness_ms.append((loop.time() - before - self.period) * 1000)

    @property
    def longest_ms(self) -> float:
        return max(self.lateness_ms, default=0.0)


# --- speech ---------------------------------------------------------------------------------------

SENTENCES = (
    "What is the capital of France?",
    "Tell me a short story about a robot.",
    "How far away is the moon?",
    "Please repeat that more slowly.",
)


def conversation_pcm(seconds: float, pause_s: float = 3.5) -> tuple[np.ndarray, int]:
    """Speech turns separated by pauses, about `seconds` long (24 kHz int16), and the count."""
    from voicecli.server import audio

    pieces: list[np.ndarray] = [np.zeros(2400, np.int16)]
    total, turns = 0.1, 0
    while total < seconds - pause_s:
        text = SENTENCES[turns % len(SENTENCES)]
        pcm = audio.speak(text) or audio.tone_for_text(text)
        speech = np.frombuffer(pcm, "<i2")
        pieces += [speech, np.zeros(int(24000 * pause_s), np.int16)]
        total += speech.size / 24000 + pause_s
        turns += 1
    return np.concatenate(pieces), turns


def write_wav(path: Path, samples: np.ndarray) -> Path:
    import wave

    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(24000)
        wav.writeframes(samples.astype("<i2").tobytes())
    return path


def sound_server_up() -> bool:
    from tests import pulse

    return os.environ.get("PULSE_SERVER") == pulse.SERVER and pulse.is_up()


# --- 1. the duplex conversation -------------------------------------------------------------------


@dataclass
class Conversation:
    audio: str
    seconds: float
    turns_spoken: int
    turns: list[Any]
    probe: Probe
    server_events: list[tuple[float, str, str]]
    cpu_percent: float
    server_cpu_percent: float
    rss_kib: list[int]
    hwm_kib: int
    stalls_ms: list[float]
    mic_pacing: str
    audio_lost: str | None = None


async def connected_engine(
    url: str, home: str, backend: Any, probe: Probe
) -> tuple[Any, asyncio.Task[None]]:
    """A `TalkEngine` with the default settings (HOME=`home`: no developer config) on
    `backend`, probed, running and connected to `url`; and its task."""
    from voicecli.config import load_config
    from voicecli.engine import TalkEngine, TalkSettings
    from voicecli.session import ConnectionSettings

    config = load_config({}, env={"HOME": home}, dotenv_path=None)
    opener = probed_opener(ConnectionSettings(url=url), probe)
    engine = TalkEngine(TalkSettings.from_config(config), opener, backend)
    task = asyncio.create_task(engine.run())
    while not engine.policy.connected:
        if task.done():
            task.result()  # it ended before connecting: raise why
        await asyncio.sleep(0.01)
    return engine, task


def mic_pacing(block_ms: int, batch_ms: int, speech_batch_ms: int) -> str:
    """How talk hands mic blocks over (as `RealBackend.pace_mic` rounds batches to blocks)."""

    def batch(ms: int) -> int:
        return max(1, round(ms / block_ms)) * block_ms

    return (
        f"blocks of {block_ms} ms, batched as talk does (up to {batch(batch_ms)} ms while "
        f"nobody speaks, {batch(speech_batch_ms)} ms while the server hears speech, onsets "
        "at once)"
    )


async def duplex_conversation(seconds: float) -> Conversation:
    pcm, spoken = conversation_pcm(seconds)
    probe = Probe()
    real = sound_server_up()
    from voicecli.config import load_config

    audio = load_config({}, {}, dotenv_path=None).audio  # talk's defaults
    with ServerProcess(responder="echo", pace=1.0) as server, tempfile.TemporaryDirectory() as tmp:
        if real:
            from tests import pulse
            from voicecli.audio import RealBackend

            backend = probed_backend(RealBackend, probe)(
                block_ms=audio.block_ms, output_block_ms=audio.output_block_ms
            )
        else:
            from voicecli.smoke.audio import SmokeAudio

            backend = probed_backend(SmokeAudio, probe)(
                realtime=True, block_ms=audio.block_ms, output_block_ms=audio.output_block_ms
            )
        engine, task = await connected_engine(server.url, tmp, backend, probe)
        heartbeat = Heartbeat()
        heartbeat.start()
        rss = [status_kib("VmRSS")]
        cpu0, server_cpu0, wall0 = cpu_seconds(), server.cpu_seconds(), time.monotonic()
        if real:
            player = pulse.play_into_mic(write_wav(Path(tmp) / "talk.wav", pcm))
            speaking: Any = asyncio.to_thread(player.wait)
        else:
            speaking = backend.feed(pcm)
        speaking_task = asyncio.ensure_future(speaking)
        deadline = wall0 + pcm.size / 24000 + 2.0  # the last echo plays after the speech
        while time.monotonic() < deadline:
            await asyncio.sleep(1.0)
            rss.append(status_kib("VmRSS"))
        await speaking_task
        cpu1, server_cpu1, wall1 = cpu_seconds(), server.cpu_seconds(), time.monotonic()
        audio_lost = engine.snapshot().audio_lost
        await heartbeat.stop()
        engine.stop()
        await task
        hwm = status_kib("VmHWM")
    wall = wall1 - wall0
    return Conversation(
        audio="real PortAudio streams on the PulseAudio null sinks" if real else "file audio",
        seconds=wall,
        turns_spoken=spoken,
        turns=list(engine.metrics.turns),
        probe=probe,
        server_events=server.events(),
        cpu_percent=(cpu1 - cpu0) / wall * 100,
        server_cpu_percent=(server_cpu1 - server_cpu0) / wall * 100,
        rss_kib=rss,
        hwm_kib=hwm,
        stalls_ms=heartbeat.lateness_ms,
        mic_pacing=mic_pacing(audio.block_ms, audio.batch_ms, audio.speech_batch_ms),
        audio_lost=audio_lost,
    )


def conversation_rows(run: Conversation) -> list[Row]:
    probe = run.probe
    rows: list[Row] = []
    server = run.server_events
    deltas_sent = [t for t, kind, _ in server if kind in _DELTA_TYPES]
    deltas_received = [t for t, kind, _ in probe.received if kind in _DELTA_TYPES]
    completed = sum(1 for turn in run.turns if turn.status == "completed")
    rows.append(
        (
            "Duplex conversation",
            f"{run.seconds:.0f} s, {run.turns_spoken} turns spoken, {completed} replies completed",
            f"{run.audio}; echo responder at real-time pace, server in its own process",
        )
    )
    if run.audio_lost:
        rows.append(("WARNING: audio device lost mid-run", run.audio_lost, "figures unreliable"))
    rows.append(
        (
            "Upstream: mic block captured -> append frame sent",
            stats_ms(probe.upstream_ms),
            f"{len(probe.upstream_ms)} {run.mic_pacing}; "
            f"inside the engine: {stats_ms(probe.engine_upstream_ms)}",
        )
    )
    if len(deltas_sent) == len(deltas_received):
        delivery = [(c - s) * 1000 for s, c in zip(deltas_sent, deltas_received, strict=True)]
        rows.append(
            (
                "Delivery: server sends delta -> client receives",
                stats_ms(delivery),
                f"{len(delivery)} audio deltas; loopback TCP + websockets + loop wake-up",
            )
        )
    handed = _delta_to_play_ms(deltas_received, probe.delta_items, probe.plays)
    rows.append(
        (
            "Delta received -> PCM handed to AudioBackend.play()",
            stats_ms(handed),
            f"{len(handed)} of {len(deltas_received)} deltas matched (per item, in order); "
            "decode + event queue + engine + turn policy",
        )
    )
    created_gap, first_gap, ss_delivery = [], [], []
    server_by_response = _per_response(server)
    client_by_response = _per_response(probe.received)
    for response, client in client_by_response.items():
        sent = server_by_response.get(response)
        if not sent or "speech_stopped" not in client or "speech_stopped" not in sent:
            continue
        if "response.created" in client and "response.created" in sent:
            client_ms = (client["response.created"] - client["speech_stopped"]) * 1000
            server_ms = (sent["response.created"] - sent["speech_stopped"]) * 1000
            created_gap.append(client_ms - server_ms)
        if "delta" in client and "delta" in sent:
            client_ms = (client["delta"] - client["speech_stopped"]) * 1000
            server_ms = (sent["delta"] - sent["speech_stopped"]) * 1000
            first_gap.append(client_ms - server_ms)
        ss_delivery.append((client["speech_stopped"] - sent["speech_stopped"]) * 1000)
    rows.append(
        (
            "speech_stopped -> response.created: client view - server's",
            stats_ms(created_gap),
            f"{len(created_gap)} turns; speech_stopped itself arrived after "
            f"{stats_ms(ss_delivery)}",
        )
    )
    rows.append(
        (
            "speech_stopped -> first audio delta: client view - server's",
            stats_ms(first_gap),
            "what the client's clock adds to the server's time to first byte",
        )
    )
    ttfa = [t.ttfa_ms - t.ttfb_ms for t in run.turns if t.ttfa_ms and t.ttfb_ms]
    rows.append(
        (
            "First delta received -> first sample played (TTFA - TTFB)",
            stats_ms(ttfa),
            "60 ms prebuffer + block + output latency (from the backend's played position)",
        )
    )
    rows.append(
        (
            "Client CPU over the conversation",
            f"{run.cpu_percent:.1f} % of one core",
            f"user+system from /proc/self/stat; server process: {run.server_cpu_percent:.1f} %",
        )
    )
    rss = [kib / 1024 for kib in run.rss_kib]
    rows.append(
        (
            "Client RSS over the conversation",
            f"start {rss[0]:.1f} MiB, end {rss[-1]:.1f} MiB, max {max(rss):.1f} MiB",
            f"sampled each second from /proc/self/status; VmHWM {run.hwm_kib / 1024:.1f} MiB "
            "(whole process life)",
        )
    )
    rows.append(
        (
            "Event-loop stall during the conversation",
            f"longest {max(run.stalls_ms, default=0):.1f} ms",
            f"5 ms heartbeat lateness: p99 {np.percentile(run.stalls_ms, 99):.2f} ms",
        )
    )
    return rows


def per_turn_table(run: Conversation) -> str:
    """The conversation's turns one by one: the server's view and the client's, in ms from
    speech_stopped (server: when it sent each event; client: when each arrived)."""
    server = _per_response(run.server_events)
    client = _per_response(run.probe.received)
    ttfa = {turn.response_id: turn.ttfa_ms for turn in run.turns}
    lines = [
        "| Turn | response.created server / client | first delta server / client | "
        "first sample played (client) |",
        "|---|---|---|---|",
    ]
    for number, (response, seen) in enumerate(client.items(), start=1):
        sent = server.get(response, {})
        if "speech_stopped" not in seen or "speech_stopped" not in sent:
            continue

        def gap(times: dict[str, float], name: str) -> str:
            if name not in times:
                return "-"
            return f"{(times[name] - times['speech_stopped']) * 1000:.2f}"

        played = ttfa.get(response)
        lines.append(
            f"| {number} | {gap(sent, 'response.created')} / {gap(seen, 'response.created')} | "
            f"{gap(sent, 'delta')} / {gap(seen, 'delta')} | "
            f"{'-' if played is None else f'{played:.1f}'} |"
        )
    return "\n".join(lines)


def _delta_to_play_ms(
    arrivals: list[float], items: list[str], plays: list[tuple[float, str]]
) -> list[float]:
    """The k-th delta of an item is the k-th `play()` of that item (the engine plays every
    delta once, in order, unless the user interrupted the response)."""
    played: dict[str, list[float]] = {}
    for at, item in plays:
        played.setdefault(item, []).append(at)
    seen: dict[str, int] = {}
    result = []
    for at, item in zip(arrivals, items, strict=True):
        index = seen.get(item, 0)
        seen[item] = index + 1
        times = played.get(item, [])
        if index < len(times):
            result.append((times[index] - at) * 1000)
    return result


def _per_response(events: list[tuple[float, str, str]]) -> dict[str, dict[str, float]]:
    """For each response: when its speech_stopped, response.created and first delta went by.

    The speech_stopped of a response is the last one before its response.created.
    """
    result: dict[str, dict[str, float]] = {}
    last_stopped: float | None = None
    for at, kind, response in events:
        if kind == "input_audio_buffer.speech_stopped":
            last_stopped = at
        elif kind == "response.created" and response:
            entry = result.setdefault(response, {})
            entry["response.created"] = at
            if last_stopped is not None:
                entry["speech_stopped"] = last_stopped
                last_stopped = None
        elif kind in _DELTA_TYPES and response in result:
            result[response].setdefault("delta", at)
    return result


# --- 2. decode throughput -------------------------------------------------------------------------


def delta_frames(count: int, chunk_ms: int = 100) -> list[str]:
    rng = np.random.default_rng(1)
    frames = []
    for index in range(count):
        pcm = rng.integers(-3000, 3000, 24 * chunk_ms, dtype=np.int16).tobytes()
        frames.append(
            json.dumps(
                {
                    "type": "response.output_audio.delta",
                    "event_id": f"event_{index}",
                    "response_id": "resp_1",
                    "item_id": "item_1",
                    "output_index": 0,
                    "content_index": 0,
                    "delta": base64.b64encode(pcm).decode("ascii"),
                }
            )
        )
    return frames


def decode_rows(count: int) -> list[Row]:
    from voicecli.protocol.client import RealtimeClient
    from voicecli.protocol.decode import decode_server_event
    from voicecli.protocol.dialects import GA

    frames = delta_frames(count)
    client = RealtimeClient(GA)
    client.receive_text(
        json.dumps(
            {
                "type": "response.created",
                "event_id": "e",
                "response": {
                    "id": "resp_1",
                    "object": "realtime.response",
                    "status": "in_progress",
                },
            }
        )
    )
    client.events_received()
    started = time.perf_counter()
    for frame in frames:
        client.receive_text(frame)
        client.events_received()
    core_s = time.perf_counter() - started
    started = time.perf_counter()
    for frame in frames:
        decode_server_event(frame, GA)
    decode_s = time.perf_counter() - started
    per_event = core_s / count * 1e6
    return [
        (
            f"Decode audio deltas in the protocol core ({count} x 100 ms)",
            f"{per_event:.1f} us/event, {count / core_s:,.0f} events/s",
            f"decode_server_event alone {decode_s / count * 1e6:.1f} us/event; "
            f"= {count * 0.1 / core_s:,.0f} s of audio decoded per second",
        )
    ]


async def burst_rows(audio_seconds: float) -> list[Row]:
    """The server sends `audio_seconds` of reply at once; the whole client takes it in."""
    from voicecli.smoke.audio import SmokeAudio

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "burst.jsonl"
        script.write_text(json.dumps({"text": "burst", "audio_ms": audio_seconds * 1000}) + "\n")
        with ServerProcess(responder="scripted", script=str(script), pace=0.0) as server:
            probe = Probe()
            backend = probed_backend(SmokeAudio, probe)(realtime=False)
            engine, task = await connected_engine(server.url, tmp, backend, probe)
            heartbeat = Heartbeat()
            heartbeat.start()
            cpu0 = cpu_seconds()
            engine.send_text("Go.")
            while not engine.metrics.turns:
                await asyncio.sleep(0.005)
            cpu1 = cpu_seconds()
            await heartbeat.stop()
            engine.stop()
            await task
            sent = [t for t, kind, _ in server.events() if kind in _DELTA_TYPES]
    received = [t for t, kind, _ in probe.received if kind in _DELTA_TYPES]
    span = received[-1] - received[0]
    send_span = sent[-1] - sent[0]
    handed = probe.plays[-1][0] - received[0] if probe.plays else float("nan")
    return [
        (
            f"Burst: {audio_seconds:g} s of reply audio sent at once, through the client",
            f"{len(received)} deltas in {span * 1000:.0f} ms = {len(received) / span:,.0f} "
            f"events/s; longest loop stall {heartbeat.longest_ms:.1f} ms",
            f"server sent them in {send_span * 1000:.0f} ms; last delta handed to play() "
            f"{handed * 1000:.0f} ms after the first arrived; client CPU "
            f"{(cpu1 - cpu0) * 1000:.0f} ms",
        )
    ]


# --- the table ------------------------------------------------------------------------------------


async def run(quick: bool) -> tuple[list[Row], str]:
    """The table's rows, and the per-turn table of the conversation (Markdown)."""
    seconds = 15.0 if quick else 60.0
    conversation = await duplex_conversation(seconds)
    rows = conversation_rows(conversation)
    rows += decode_rows(2000 if quick else 20000)
    rows += await burst_rows(60.0 if quick else 300.0)
    return rows, per_turn_table(conversation)


def render(rows: list[Row]) -> str:
    return markdown_table(("Measure", "Result", "Notes"), rows)


def results_text(
    rows: list[Row], turns: str, elapsed: float, command: str, load: tuple[float, float, float]
) -> str:
    today = datetime.date.today().isoformat()
    return (
        f"# End-to-end benchmarks\n\n`{command}`, {today}.\n\nMachine: {machine()}; "
        f"{load_note(load)}.\n\n"
        "Definitions: see the docstring of `bench/e2e.py`. Client and server run in separate "
        "processes on this machine; times are CLOCK_MONOTONIC in both.\n\n"
        f"{render(rows)}\n\n(total run time {elapsed:.0f} s)\n\n"
        "## Per turn of the duplex conversation\n\n"
        "Milliseconds from `input_audio_buffer.speech_stopped`: when the server sent each event "
        "vs when the client received it (each side measured from its own view of "
        "speech_stopped), and when the client played the reply's first sample.\n\n"
        f"{turns}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.e2e", description=__doc__)
    sub = parser.add_subparsers(dest="action")
    child = sub.add_parser("serve", help="(internal) the instrumented server process")
    child.add_argument("--log", required=True)
    child.add_argument("--responder", default="echo")
    child.add_argument("--script")
    child.add_argument("--pace", type=float, default=1.0)
    parser.add_argument("--quick", action="store_true", help="a 15 s conversation, small bursts")
    parser.add_argument("--no-write", action="store_true", help="do not update the results file")
    args = parser.parse_args(argv)
    if args.action == "serve":
        serve(args.log, args.responder, args.script, args.pace)
        return 0
    with private_sound_server("bench.e2e"):
        load = os.getloadavg()
        started = time.monotonic()
        rows, turns = asyncio.run(run(args.quick))
    elapsed = time.monotonic() - started
    print(render(rows))
    print(f"\n(total run time {elapsed:.0f} s)\n")
    print(turns)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        command = ".venv/bin/python -m bench.e2e" + (" --quick" if args.quick else "")
        RESULTS.write_text(results_text(rows, turns, elapsed, command, load))
    return 0


if __name__ == "__main__":
    sys.exit(main())
