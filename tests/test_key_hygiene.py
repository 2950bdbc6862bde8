"""The API key never leaves the Authorization header: sessions with a recognisable fake key
against the local server in `auth="key"` mode (so the key is really checked), then every file
written (logs, captures, history database and its WAL, recordings, reports, turn audio) and
everything printed is searched for it.

Run as child processes, like a user runs voicecli: `voicecli smoke` with the key in the
environment, and a talk engine that reconnects mid-session with Python's DEBUG logging on
(websockets logs every handshake header at DEBUG).
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from voicecli.server import Faults, LocalServer, ServerOptions


FAKE_KEY = "sk-test-HYGIENE-1234567890"
TELLTALES = (FAKE_KEY, "HYGIENE-1234567890", "HYGIENE")
"""The key, and parts of it that a partial leak (a truncation, a prefix strip) would keep."""


def child_env(tmp_path: Path, key: str | None) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("VOICECLI_", "XDG_")) and name != "OPENAI_API_KEY"
    }
    env.update(
        HOME=str(tmp_path / "home"),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        XDG_STATE_HOME=str(tmp_path / "state"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        PYTHONUNBUFFERED="1",
    )
    if key is not None:
        env["OPENAI_API_KEY"] = key
    return env


async def run_child(tmp_path: Path, args: list[str], key: str | None) -> tuple[int, str, str]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    child = await asyncio.create_subprocess_exec(
        *args,
        cwd=work,
        env=child_env(tmp_path, key),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(child.communicate(), 60)
    assert child.returncode is not None
    return child.returncode, stdout.decode(), stderr.decode()


def files_written(root: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in root.rglob("*") if path.is_file()}


def assert_no_key(files: dict[Path, bytes], *printed: str) -> None:
    for telltale in TELLTALES:
        for path, data in files.items():
            assert telltale.encode() not in data, f"{telltale!r} written to {path}"
        for text in printed:
            assert telltale not in text, f"{telltale!r} printed:\n{text}"


@pytest.mark.slow
async def test_smoke_with_a_fake_key_writes_it_nowhere(tmp_path: Path) -> None:
    options = ServerOptions(responder="echo", pace=0, auth="key", api_key=FAKE_KEY)
    async with LocalServer(options) as server:
        code, stdout, stderr = await run_child(
            tmp_path,
            [
                sys.executable,
                "-m",
                "voicecli",
                "smoke",
                "--url",
                server.url,
                "--text",
                f"hello, my key is {FAKE_KEY[:7]}",  # a prefix is fine; the key is not
                "--text",
                "and a second turn",
                "--record",
                str(tmp_path / "record"),
                "--history-path",
                str(tmp_path / "history.sqlite3"),
                "--out",
                str(tmp_path / "out"),
                "--json",
                str(tmp_path / "report.json"),
            ],
            FAKE_KEY,
        )
        served = server.connections_served
    assert code == 0, stderr
    assert served == 1  # the key was accepted: it was sent, in the header
    files = files_written(tmp_path)
    written = {path.relative_to(tmp_path).parts[0] for path in files}
    assert {"record", "out", "report.json", "history.sqlite3"} <= written
    assert any(path.suffix == ".jsonl" for path in files) and any(
        path.suffix == ".wav" for path in files
    )
    assert b"You said: and a second turn" in files[tmp_path / "report.json"]
    assert_no_key(files, stdout, stderr)


async def test_a_refused_key_is_one_line_without_the_key(tmp_path: Path) -> None:
    options = ServerOptions(auth="key", api_key="sk-test-the-right-one-000000")
    async with LocalServer(options) as server:
        code, stdout, stderr = await run_child(
            tmp_path,
            [
                sys.executable,
                "-m",
                "voicecli",
                "smoke",
                "--url",
                server.url,
                "--text",
                "hi",
                "--record",
                str(tmp_path / "record"),
                "--history-path",
                str(tmp_path / "h.db"),
            ],
            FAKE_KEY,
        )
    assert code == 2
    [line] = [line for line in stderr.splitlines() if line.startswith("voicecli:")]
    assert "401" in line and "OPENAI_API_KEY" in line
    assert_no_key(files_written(tmp_path), stdout, stderr)


TALK_CHILD = r"""
import asyncio, logging, sys
from pathlib import Path

out = Path(sys.argv[2])
logging.basicConfig(level=logging.DEBUG, filename=out / "debug.log")

from voicecli.engine import TalkEngine, TalkSettings, opener_for
from voicecli.history.recorder import attach
from voicecli.history.store import HistoryStore
from voicecli.reconnect import ReconnectSettings
from voicecli.session import ConnectionSettings

KEY = sys.argv[3]


async def main():
    settings = TalkSettings(
        text_only=True,
        reconnect=ReconnectSettings(initial_delay_s=0.05, min_delay_s=0.05),
        record_dir=out / "record",
    )
    engine = TalkEngine(settings, opener_for(ConnectionSettings(url=sys.argv[1], api_key=KEY)))
    store = HistoryStore.open(out / "history.sqlite3", redact=[KEY])
    attach(engine, store, server_url=sys.argv[1])
    task = asyncio.create_task(engine.run())

    async def until(predicate):
        while not predicate():
            assert not task.done(), task
            await asyncio.sleep(0.01)

    await until(lambda: engine.policy.connected)
    engine.send_text("first")
    await until(lambda: engine.reconnects == 1)  # the server drops mid-reply
    await until(lambda: engine.policy.connected)
    engine.send_text("second")
    await until(lambda: any(l.text == "You said: second" for l in engine.transcript()))
    engine.stop()
    await task
    store.close()
    for line in engine.transcript():
        print(line.kind, line.text)
    for entry in engine.log:
        print(entry.direction, entry.type, entry.note, entry.data)


asyncio.run(main())
"""


async def test_a_reconnecting_session_with_debug_logging_writes_the_key_nowhere(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    faults = Faults(close_after_events=10, connections=1)
    options = ServerOptions(responder="echo", pace=1, auth="key", api_key=FAKE_KEY, faults=faults)
    async with LocalServer(options) as server:
        code, stdout, stderr = await run_child(
            tmp_path,
            [sys.executable, "-c", TALK_CHILD, server.url, str(out), FAKE_KEY],
            None,
        )
        served = server.connections_served
    assert code == 0, stderr
    assert served == 2  # connected with the key twice
    assert "assistant You said: second" in stdout
    files = files_written(tmp_path)
    log = files[out / "debug.log"].decode()
    assert "Authorization: Bearer [redacted]" in log  # websockets did log the header
    assert_no_key(files, stdout, stderr)


async def test_the_key_never_reaches_the_talk_screen_or_the_inspector() -> None:
    """The whole TUI, inspector open, after a turn on a key-checking server: no trace of it."""
    from tests.test_tui import running
    from voicecli.audio.null import NullBackend
    from voicecli.config import DEFAULT_PRICES
    from voicecli.engine import TalkSettings, opener_for
    from voicecli.session import ConnectionSettings
    from voicecli.tui.setup import TalkSetup

    options = ServerOptions(responder="echo", pace=0, auth="key", api_key=FAKE_KEY)
    async with LocalServer(options) as server:
        setup = TalkSetup(
            settings=TalkSettings(prices=DEFAULT_PRICES["gpt-realtime"]),
            server_label=server.url,
            open_session=opener_for(ConnectionSettings(url=server.url, api_key=FAKE_KEY)),
            make_audio=lambda: NullBackend(mic="silence", realtime=True),
        )
        async with running(setup) as screen:
            await screen.connected()
            await screen.pilot.press("enter", *"hello", "enter", "escape")
            await screen.until(lambda: "turn 1 (text)" in screen.text("#turn"))
            await screen.pilot.press("i")  # the event inspector, every frame both ways
            await screen.pilot.pause(0.3)
            shown = screen.app.export_screenshot()
            log = repr(list(screen.app.engine.log))

    assert "hello" in shown and "session.update" in shown  # the screen really was captured
    for telltale in TELLTALES:
        assert telltale not in shown
        assert telltale not in log
