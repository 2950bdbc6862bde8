"""`voicecli serve` as a user runs it: the real program in a subprocess."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.cli import assert_one_line_error


VOICECLI = str(Path(sys.executable).with_name("voicecli"))


def run_serve(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed `voicecli` script itself (tests/conftest.py cleared VOICECLI_SERVER_KEY)."""
    return subprocess.run([VOICECLI, "serve", *args], capture_output=True, text=True, timeout=20)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--port", "notanumber"], "invalid port 'notanumber'"),
        (["--port", "70000"], "invalid port 70000"),
        (["--pace", "-1"], "-1 is negative"),
        (["--responder", "parrot"], "invalid choice: 'parrot'"),
        (["--responder", "scripted"], "--responder scripted needs --script FILE"),
        (["--responder", "scripted", "--script", "/no/such/file"], "cannot read script"),
        (["--script", "x.txt"], "--script only works with --responder scripted"),
        (["--expire-after", "0"], "--expire-after must be more than 0 seconds"),
        (["--auth", "key"], "VOICECLI_SERVER_KEY"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], needle: str):
    assert_one_line_error(run_serve(*args), needle)


def test_a_bad_script_line_is_reported_with_its_line_number(tmp_path: Path):
    script = tmp_path / "replies.jsonl"
    script.write_text('{"text": "fine"}\n{"text": broken}\n')
    result = run_serve("--responder", "scripted", "--script", str(script))
    assert_one_line_error(result, "replies.jsonl:2: not valid JSON")


def test_a_port_in_use_is_one_line_and_exit_2():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_serve("--port", str(port))
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}: the port is already in use")


async def test_serve_prints_the_url_serves_and_stops_cleanly_on_ctrl_c():
    process = subprocess.Popen(
        [VOICECLI, "serve", "--port", "0", "--pace", "0", "--seed", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.search(r"ws://127\.0\.0\.1:\d+/v1/realtime", line)
        assert match, line
        async with connect(match.group(0) + "?model=gpt-realtime") as ws:
            created = json.loads(await ws.recv())
            assert created["type"] == "session.created"
            assert created["session"]["model"] == "gpt-realtime"
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0
    assert stdout == ""  # exactly one line was printed
    assert "Traceback" not in stderr
