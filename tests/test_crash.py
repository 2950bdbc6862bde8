"""`voicecli smoke` killed with SIGKILL mid-session: the history database opens cleanly and
holds every line that had completed before the kill.

Which lines had completed is read from the session's `--record` capture, which is flushed
line by line: an assistant reply is complete once its `response.done` was received, and the
engine had finished handling that event (history written) once a later event was captured.
(The tmux `talk` variant is not here yet; the engine and the recorder are the same.)
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.test_key_hygiene import child_env
from voicecli.history.store import HistoryStore
from voicecli.server import LocalServer, ServerOptions


TURNS = 8


def completed_replies(capture: Path) -> int:
    """Replies whose `response.done` was handled before the capture's last received line."""
    if not capture.exists():
        return 0
    lines = []
    for text in capture.read_text(encoding="utf-8").splitlines():
        try:
            lines.append(json.loads(text))
        except ValueError:
            break  # the line being written at the kill
    received = [line["type"] for line in lines if line["dir"] == "received"]
    done_at = [i for i, kind in enumerate(received) if kind == "response.done"]
    return sum(1 for i in done_at if i < len(received) - 1)


@pytest.mark.slow
async def test_sigkill_mid_session_keeps_every_completed_line(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    record = tmp_path / "record"
    texts = [f"line number {n}" for n in range(1, TURNS + 1)]
    args = [sys.executable, "-m", "voicecli", "smoke", "--history-path", str(db)]
    args += ["--record", str(record)]
    for text in texts:
        args += ["--text", text]
    async with LocalServer(ServerOptions(responder="echo", pace=1)) as server:
        child = await asyncio.create_subprocess_exec(
            *args,
            "--url",
            server.url,
            cwd=tmp_path,
            env=child_env(tmp_path, None),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while (
            not list(record.glob("*.jsonl")) or completed_replies(next(record.glob("*.jsonl"))) < 3
        ):
            assert child.returncode is None, "smoke ended before it could be killed"
            assert time.monotonic() < deadline, "smoke did not get going"
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)  # somewhere into the next turn
        os.kill(child.pid, signal.SIGKILL)
        await child.wait()
    assert child.returncode == -signal.SIGKILL

    [capture] = record.glob("*.jsonl")
    completed = completed_replies(capture)
    assert 3 <= completed < TURNS  # killed mid-session
    with HistoryStore.open(db) as store:
        assert store.integrity_check() == "ok"
        [conversation] = store.conversations()
        assert conversation.ended_at is None and conversation.end_reason is None  # killed
        messages = store.messages(conversation.id)
    done = [(m.role, m.text) for m in messages if not m.pending]
    expected = []
    for text in texts[:completed]:
        expected += [("user", text), ("assistant", f"You said: {text}")]
    assert done[: len(expected)] == expected
    # At most the turn in flight at the kill beyond that, never a line twice.
    assert len(messages) <= len(expected) + 2
    assert len({m.seq for m in messages}) == len(messages)
