"""`voicecli history` as a user runs it: a real process, a real database file in a private
XDG data directory, and every kind of bad input ending in one line and exit 2."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from tests.cli import assert_one_line_error, run_voicecli, user_environment
from voicecli.history.export import EXPORT_JSON_SCHEMA
from voicecli.history.store import HistoryStore, MessageFigures


START = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


@pytest.fixture
def home(tmp_path: Path) -> Path:
    for name in ("data", "config", "work"):
        (tmp_path / name).mkdir()
    return tmp_path


def environment(home: Path, **extra: str) -> dict[str, str]:
    """Private XDG directories under `home`, and UTC so the tables' times are known."""
    return {
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "TZ": "UTC",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def voicecli(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    # cwd: no stray .env
    return run_voicecli(
        "history", *args, home=home, cwd=home / "work", env=environment(home, **env), timeout=30
    )


def default_db(home: Path) -> Path:
    return home / "data" / "voicecli" / "history.sqlite3"


def fill(path: Path) -> tuple[int, int]:
    """Two conversations: an older finished one and a newer one that never ended."""
    with HistoryStore.open(path) as store:
        old = store.begin_conversation(
            model="gpt-realtime", voice="alloy", dialect="ga", started_at=START
        )
        store.add_message(
            old, role="user", text="What is the capital of Norway?", started_at=START + 2
        )
        reply = store.add_message(
            old,
            role="assistant",
            text="The capital of Norway is Oslo, a city by a fjord.",
            started_at=START + 4,
            response_id="resp_1",
            figures=MessageFigures(ttfb_ms=640, total_ms=1800, input_tokens=300, output_tokens=80),
        )
        store.update_message(
            reply, interrupted=True, heard_ms=2300, text="The capital of Norway is Oslo,"
        )
        store.add_message(old, role="user", kind="typed", text="thanks!", started_at=START + 9)
        store.end_conversation(old, "user quit", ended_at=START + 75)
        new = store.begin_conversation(
            model="gpt-realtime-mini", voice="marin", started_at=START + 3600
        )
        store.add_message(
            new,
            role="user",
            text="Any news from OSLO today?",
            started_at=START + 3601,
            ended_at=START + 3601,
        )
    return old, new


# --- an empty history ----------------------------------------------------------------------


def test_an_empty_history_is_friendly_and_creates_nothing(home: Path) -> None:
    for args in (("list",), ("search", "anything")):
        result = voicecli(home, *args)
        assert result.returncode == 0 and result.stderr == ""
        assert result.stdout.startswith("No conversations yet")
    assert not default_db(home).exists()
    result = voicecli(home, "path")
    assert result.stdout == f"{default_db(home)} (does not exist yet)\n"


def test_an_existing_but_empty_database_lists_nothing(home: Path) -> None:
    HistoryStore.open(default_db(home)).close()
    result = voicecli(home, "list")
    assert (result.returncode, result.stdout) == (
        0,
        f"No conversations yet in {default_db(home)}.\n",
    )


# --- list, show, export, search, delete ------------------------------------------------------


def test_list_shows_newest_first(home: Path) -> None:
    old, new = fill(default_db(home))
    result = voicecli(home, "list")
    assert result.returncode == 0 and result.stderr == ""
    header, first, second = result.stdout.splitlines()
    assert header.split() == ["ID", "STARTED", "DURATION", "MODEL", "VOICE", "LINES", "ENDED"]
    assert first.split() == [
        str(new), "2023-11-14", "23:13:20", "1s", "gpt-realtime-mini", "marin", "1",
        "(did", "not", "end", "cleanly)",
    ]  # fmt: skip
    assert second.split() == [
        str(old), "2023-11-14", "22:13:20", "1m", "15s", "gpt-realtime", "alloy", "3", "user",
        "quit",
    ]  # fmt: skip
    limited = voicecli(home, "list", "--limit", "1")
    assert len(limited.stdout.splitlines()) == 2


def test_show_prints_the_conversation_with_marks_and_figures(home: Path) -> None:
    old, new = fill(default_db(home))
    result = voicecli(home, "show", str(old))
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.splitlines() == [
        f"Conversation {old}: started 2023-11-14 22:13:20, ended 2023-11-14 22:14:35 "
        "(user quit), 1m 15s, 3 lines",
        "model gpt-realtime, voice alloy, dialect ga",
        "",
        "[22:13:22] You (voice): What is the capital of Norway?",
        "[22:13:24] Assistant: The capital of Norway is Oslo, [interrupted, heard 2.3 s]",
        "           first audio 640 ms, done 1800 ms · 300 in / 80 out tokens",
        "[22:13:29] You (typed): thanks!",
    ]
    last = voicecli(home, "show", "last")
    assert last.stdout.startswith(f"Conversation {new}: ")


def test_export_in_every_format(home: Path) -> None:
    old, _ = fill(default_db(home))
    as_json = voicecli(home, "export", str(old), "--format", "json")
    assert as_json.returncode == 0
    document = json.loads(as_json.stdout)
    jsonschema.validate(document, EXPORT_JSON_SCHEMA, format_checker=jsonschema.FormatChecker())
    assert [m["text"] for m in document["messages"]] == [
        "What is the capital of Norway?",
        "The capital of Norway is Oslo,",
        "thanks!",
    ]
    assert document["messages"][1]["heard_ms"] == 2300

    as_md = voicecli(home, "export", str(old))  # md is the default
    assert as_md.stdout.startswith(f"# Conversation {old}\n")
    assert "**You (typed)** (22:13:29): thanks!" in as_md.stdout

    target = home / "work" / "out.txt"
    as_txt = voicecli(home, "export", str(old), "--format", "txt", "--output", str(target))
    assert as_txt.returncode == 0
    assert as_txt.stdout == f"Wrote conversation {old} to {target} (txt).\n"
    text = target.read_text()
    assert "[22:13:22] You (voice): What is the capital of Norway?" in text
    assert "thanks!" in text


def test_search_finds_lines_in_any_case_and_exits_1_on_no_match(home: Path) -> None:
    old, new = fill(default_db(home))
    result = voicecli(home, "search", "oslo")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        f"#{new} 2023-11-14 23:13:21  You (voice): Any news from OSLO today?",
        f"#{old} 2023-11-14 22:13:24  Assistant: The capital of Norway is Oslo,",
    ]
    nothing = voicecli(home, "search", "zanzibar")
    assert (nothing.returncode, nothing.stdout) == (1, "No lines contain 'zanzibar'.\n")


def test_delete_with_yes(home: Path) -> None:
    old, new = fill(default_db(home))
    result = voicecli(home, "delete", str(old), "--yes")
    assert (result.returncode, result.stdout) == (0, f"Deleted conversation {old} (3 lines).\n")
    assert_one_line_error(voicecli(home, "show", str(old)), f"no conversation {old}")
    assert voicecli(home, "show", str(new)).returncode == 0


def test_delete_without_yes_and_without_a_terminal_refuses(home: Path) -> None:
    old, _ = fill(default_db(home))
    assert_one_line_error(voicecli(home, "delete", str(old)), "--yes")
    assert voicecli(home, "show", str(old)).returncode == 0


@pytest.mark.parametrize(("answer", "deleted"), [("y", True), ("n", False)])
def test_delete_asks_on_a_terminal(home: Path, answer: str, deleted: bool) -> None:
    old, _ = fill(default_db(home))
    pid, terminal = pty.fork()
    if pid == 0:  # the child: voicecli with the pty as its terminal
        os.chdir(home / "work")
        os.execve(
            sys.executable,
            [sys.executable, "-m", "voicecli", "history", "delete", str(old)],
            user_environment(home, environment(home)),
        )
    output = b""
    while b"[y/N]" not in output:
        output += os.read(terminal, 1024)
    assert f"Delete conversation {old} (3 lines, 1m 15s)?".encode() in output
    os.write(terminal, f"{answer}\n".encode())
    while True:
        try:
            chunk = os.read(terminal, 1024)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    os.close(terminal)
    assert os.waitstatus_to_exitcode(status) == (0 if deleted else 1)
    assert (b"Deleted conversation" in output) is deleted
    assert (voicecli(home, "show", str(old)).returncode == 2) is deleted


# --- where the database is ---------------------------------------------------------------------


def test_db_flag_config_file_and_environment_choose_the_database(home: Path) -> None:
    by_flag = home / "work" / "flag.sqlite3"
    by_config = home / "work" / "config.sqlite3"
    by_env = home / "work" / "env.sqlite3"
    for path, model in ((by_flag, "flag-model"), (by_config, "config-model"), (by_env, "env")):
        with HistoryStore.open(path) as store:
            store.begin_conversation(model=model)
    config = home / "config" / "voicecli" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[history]\npath = "{by_config}"\n')

    assert "config-model" in voicecli(home, "list").stdout
    assert "env" in voicecli(home, "list", VOICECLI_HISTORY_PATH=str(by_env)).stdout.split()
    assert "flag-model" in voicecli(home, "list", "--db", str(by_flag)).stdout
    assert voicecli(home, "path").stdout == f"{by_config} (exists)\n"


# --- bad input: one line, exit 2 ---------------------------------------------------------------


def test_bad_input_is_one_line_and_exit_2(home: Path) -> None:
    old, _ = fill(default_db(home))
    garbage = home / "work" / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database " * 200)
    missing = home / "work" / "missing.sqlite3"

    assert_one_line_error(voicecli(home, "list", "--db", str(missing)), "no history database")
    assert not missing.exists()
    assert_one_line_error(voicecli(home, "list", "--db", str(home)), "is a directory")
    assert_one_line_error(voicecli(home, "list", "--db", str(garbage)), "not a database")
    assert_one_line_error(voicecli(home, "show", "999"), "no conversation 999")
    assert_one_line_error(voicecli(home, "show", "abc"), "'abc' is not a conversation id")
    assert_one_line_error(voicecli(home, "show", "0"), "not a conversation id")
    assert_one_line_error(voicecli(home, "delete", "999", "--yes"), "no conversation 999")
    assert_one_line_error(voicecli(home, "export", str(old), "--format", "pdf"), "pdf")
    assert_one_line_error(
        voicecli(home, "export", str(old), "--output", str(home / "nowhere" / "x.md")),
        "cannot write",
    )
    assert_one_line_error(voicecli(home, "list", "--limit", "0"), "positive")
    assert_one_line_error(voicecli(home, "search", "  "), "text to search")
    assert_one_line_error(voicecli(home), "say what to do")


def test_show_on_a_missing_default_database_is_an_unknown_id(home: Path) -> None:
    assert_one_line_error(voicecli(home, "show", "1"), "no conversation 1", "history is empty")
    assert_one_line_error(voicecli(home, "export", "last"), "no conversation last")
