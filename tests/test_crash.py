"""voicecli killed with SIGKILL mid-session: the history database opens cleanly and holds
every line that had completed before the kill.

- `voicecli smoke` as a child process. Which lines had completed is read from the session's
  `--record` capture, which is flushed line by line: an assistant reply is complete once its
  `response.done` was received, and the engine had finished handling that event (history
  written) once a later event was captured.
- The real `voicecli talk` in tmux on the test sound server: one spoken and three typed turns,
  then a long reply that is still being spoken when the process is killed. Which lines had
  completed is read from the screen: a turn's summary line ("turn N (...)") is drawn only
  after the engine handled that turn's `response.done`, and the history recorder commits the
  turn's lines before the engine's update reaches the screen.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import pulse
from tests.test_key_hygiene import child_env
from tests.test_talk_tmux import TalkInTmux, transcript
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


# --- talk in tmux --------------------------------------------------------------------------

TYPED = ["line number 1", "line number 2", "line number 3"]
LONG_REQUEST = "tell me a long story about the sea, the wind and the little boats"
"""Its echo reply lasts about 5 s at real-time pace: long enough to be killed in."""


def conversation_on(screen: str) -> list[tuple[str, str]]:
    """The user and assistant lines on screen as (role, text); notices left out."""
    lines = []
    for line in transcript(screen):
        match = re.fullmatch(r"(You|You \(typed\)|Assistant): (.*)", line)
        if match:
            lines.append(("assistant" if match[1] == "Assistant" else "user", match[2]))
    return lines


def answered(turn: int) -> Callable[[str], bool]:
    """The screen once turn `turn` is summarised and its reply has been played out."""
    return lambda screen: f"turn {turn} (" in screen and "◉ LISTENING" in screen


@pytest.mark.slow
@pytest.mark.tmux
@pytest.mark.audio
@pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed")
def test_talk_in_tmux_killed_mid_reply_keeps_every_completed_line(
    sound_server: str, speech_wav: Path, tmp_path: Path
) -> None:
    db = tmp_path / "history.sqlite3"
    args = ["--responder", "echo", "--pace", "1", "--history-path", str(db)]
    with TalkInTmux(tmp_path / "home", args) as talk:
        talk.wait_for(lambda s: "● connected" in s and "LISTENING" in s)
        pulse.play_into_mic(speech_wav).wait(timeout=15)
        talk.wait_for(answered(1), timeout=20)
        talk.keys("Enter")  # into the text box
        for turn, text in enumerate(TYPED, start=2):
            talk.keys("-l", text)
            talk.keys("Enter")
            completed = talk.wait_for(answered(turn), timeout=20)
        talk.keys("-l", LONG_REQUEST)
        talk.keys("Enter")
        talk.wait_for(lambda s: "♪ ASSISTANT SPEAKING" in s and "turn 5 (" not in s)
        time.sleep(1.0)  # well into the reply
        pid = talk.pid()
        at_kill = talk.screen()
        os.kill(pid, signal.SIGKILL)
        after = talk.wait_for(lambda s: "EXIT=" in s, timeout=10)

    assert "EXIT=137" in after  # 128 + SIGKILL: it had no chance to clean up
    shown = conversation_on(completed)
    assert len(shown) == 8, completed
    (_, spoken), (_, echoed), *typed = shown
    assert re.fullmatch(r"\[2\.\d s of audio\]", spoken) and echoed.startswith("Echo of 2.")
    assert typed == [
        line for text in TYPED for line in (("user", text), ("assistant", f"You said: {text}"))
    ]

    with HistoryStore.open(db, create=False) as store:
        assert store.integrity_check() == "ok"
        [conversation] = store.conversations()
        assert conversation.ended_at is None and conversation.end_reason is None  # killed
        messages = store.messages(conversation.id)
    done = [(m.role, m.text) for m in messages if m.role in ("user", "assistant") and not m.pending]
    assert done[: len(shown)] == shown
    # The request in flight had reached the server (its line is complete); its reply, still
    # being spoken at the kill, had not completed.
    assert "turn 5 (" not in at_kill and "♪ ASSISTANT SPEAKING" in at_kill
    assert done[len(shown) :] == [("user", LONG_REQUEST)], messages
    assert len({m.seq for m in messages}) == len(messages)
