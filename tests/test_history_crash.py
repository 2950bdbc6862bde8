"""A process writing history is killed with SIGKILL at arbitrary moments: the database opens
cleanly afterwards and holds every line the process had reported as committed.

The child writes lines as fast as it can (placeholder, then the late update that fills it,
then a long reply spanning several pages) and prints `committed <n>` after each write
returns; the parent kills it after a random number of lines, reopens the file and checks.
Several rounds go into the same file, so each round also starts from a crashed database.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from voicecli.history.store import HistoryStore


CHILD = r"""
import sys
from voicecli.history.store import HistoryStore

store = HistoryStore.open(sys.argv[1])
conversation = store.begin_conversation(model="crash-test", voice=sys.argv[2])
print(f"conversation {conversation}", flush=True)
n = 0
while True:
    n += 1
    line = store.add_message(conversation, role="user", text="", pending=True, item_id=f"u{n}")
    store.update_message(line, text=f"question {n}", pending=False)
    # A reply longer than a page (4 KiB), so a kill can land in a multi-page write.
    store.add_message(conversation, role="assistant", text=f"answer {n} " + "la " * 3000)
    print(f"committed {n}", flush=True)
"""


def run_and_kill(db: Path, round_: int, kill_after: int) -> tuple[int, int]:
    """Start a writer, SIGKILL it once it reported `kill_after` lines; returns
    (its conversation id, the last line number it reported committed)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(db), f"round-{round_}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    conversation, reported = 0, 0
    deadline = time.monotonic() + 20
    try:
        while reported < kill_after:
            assert time.monotonic() < deadline, "the writer did not get going"
            line = child.stdout.readline()
            if not line:
                raise AssertionError(f"the writer died: {child.stderr.read()}")  # type: ignore[union-attr]
            word, number = line.split()
            if word == "conversation":
                conversation = int(number)
            else:
                reported = int(number)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL
    # Lines it committed after the last one we read also count as reported: read them too.
    for line in child.stdout.read().splitlines():
        word, number = line.split()
        if word == "committed":
            reported = int(number)
    return conversation, reported


def test_sigkill_never_loses_a_committed_line_or_damages_the_file(tmp_path: Path) -> None:
    db = tmp_path / "history.sqlite3"
    rng = random.Random(6)
    rounds: list[tuple[int, int]] = []
    for round_ in range(4):
        rounds.append(run_and_kill(db, round_, kill_after=rng.randint(5, 60)))

        with HistoryStore.open(db) as store:
            assert store.integrity_check() == "ok"
            for conversation, reported in rounds:
                messages = store.messages(conversation)
                record = store.conversation(conversation)
                assert record.ended_at is None  # killed: it never ended
                # Every reported line is there, complete, in order; at most the one line in
                # flight at the kill is extra (committed, not yet reported).
                questions = [m for m in messages if m.role == "user" and not m.pending]
                answers = [m for m in messages if m.role == "assistant"]
                assert len(questions) >= reported and len(answers) >= reported
                for n in range(1, reported + 1):
                    assert questions[n - 1].text == f"question {n}"
                    assert answers[n - 1].text.startswith(f"answer {n} la la")
                assert len(messages) <= 2 * reported + 2
                assert [m.seq for m in messages] == list(range(1, len(messages) + 1))
    assert len({conversation for conversation, _ in rounds}) == 4
