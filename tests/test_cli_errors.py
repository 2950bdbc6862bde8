"""Bad input in a real `voicecli` process: one clear line on stderr, exit code 2, no traceback.

The configuration cases run through every command that takes the shared config flags
(`config show`, `talk`, `smoke`, `doctor`), so they all fail the same way before touching audio
or the network.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import assert_one_line_error, run_voicecli, user_environment


FAKE_KEY = "sk-proj-CLI-ERRORS-FAKE-KEY-0123456789-q7q7"

CONFIG_COMMANDS = [["config", "show"], ["talk"], ["smoke"], ["doctor"]]


def voicecli(
    tmp_path: Path, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_voicecli(*argv, home=tmp_path / "home", cwd=tmp_path, env=env)


def assert_one_clear_line(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert_one_line_error(result, *fragments)
    assert FAKE_KEY not in result.stdout + result.stderr


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return str(path)


@pytest.fixture(params=CONFIG_COMMANDS, ids=lambda c: " ".join(c))
def command(request: pytest.FixtureRequest) -> list[str]:
    return request.param


def test_bad_config_key(tmp_path: Path, command: list[str]) -> None:
    path = write(tmp_path, '[session]\nvoise = "ash"\n')
    result = voicecli(tmp_path, *command, "--config", path)
    assert_one_clear_line(result, path, "unknown key 'voise' in [session]", "did you mean 'voice'")


def test_bad_config_value(tmp_path: Path, command: list[str]) -> None:
    path = write(tmp_path, "[audio]\nblock_ms = 1000\n")
    result = voicecli(tmp_path, *command, "--config", path)
    assert_one_clear_line(result, path, "[audio] block_ms: 1000 is above the maximum 100")


def test_wrong_type_in_config(tmp_path: Path, command: list[str]) -> None:
    path = write(tmp_path, '[session]\nvad_threshold = "high"\n')
    result = voicecli(tmp_path, *command, "--config", path)
    assert_one_clear_line(result, "[session] vad_threshold: expected a number, got 'high'")


def test_api_key_in_config_file(tmp_path: Path, command: list[str]) -> None:
    path = write(tmp_path, f'[connection]\napi_key = "{FAKE_KEY}"\n')
    result = voicecli(tmp_path, *command, "--config", path)
    assert_one_clear_line(result, "the API key is read only from OPENAI_API_KEY")


def test_invalid_toml(tmp_path: Path, command: list[str]) -> None:
    path = write(tmp_path, "[session\n")
    result = voicecli(tmp_path, *command, "--config", path)
    assert_one_clear_line(result, path, "not valid TOML")


def test_missing_named_config_file(tmp_path: Path, command: list[str]) -> None:
    result = voicecli(tmp_path, *command, "--config", str(tmp_path / "nope.toml"))
    assert_one_clear_line(result, "nope.toml (from --config) does not exist")


def test_unknown_voice_flag(tmp_path: Path, command: list[str]) -> None:
    result = voicecli(tmp_path, *command, "--voice", "bob")
    assert_one_clear_line(result, "--voice: unknown voice 'bob'; choose one of alloy")


def test_unknown_voice_in_environment(tmp_path: Path, command: list[str]) -> None:
    result = voicecli(tmp_path, *command, env={"VOICECLI_SESSION_VOICE": "bob"})
    assert_one_clear_line(result, "VOICECLI_SESSION_VOICE: unknown voice 'bob'")


def test_beta_voice_mismatch(tmp_path: Path, command: list[str]) -> None:
    result = voicecli(tmp_path, *command, "--dialect", "beta", "--voice", "marin")
    assert_one_clear_line(result, "voice 'marin' is not available in the beta dialect")


@pytest.mark.parametrize("url", ["http://x", "garbage", "ws://host:notaport/"])
def test_bad_url_flag(tmp_path: Path, command: list[str], url: str) -> None:
    result = voicecli(tmp_path, *command, "--url", url)
    assert_one_clear_line(result, f"--url: {url!r} is not a")


def test_bad_number_flag(tmp_path: Path, command: list[str]) -> None:
    result = voicecli(tmp_path, *command, "--block-ms", "fast")
    assert_one_clear_line(result, "--block-ms: expected a whole number, got 'fast'")


def test_unknown_flag_is_one_line(tmp_path: Path) -> None:
    result = voicecli(tmp_path, "config", "show", "--no-such-flag")
    assert_one_clear_line(
        result, "unrecognized arguments: --no-such-flag (see 'voicecli config show --help')"
    )


def test_unknown_command_points_at_the_top_level_help(tmp_path: Path) -> None:
    result = voicecli(tmp_path, "tlak")
    assert_one_clear_line(result, "invalid choice: 'tlak'", "(see 'voicecli --help')")


def test_output_to_a_reader_that_went_away_is_not_an_error(tmp_path: Path) -> None:
    reader = subprocess.Popen(["head", "-c", "1"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    assert reader.stdin is not None
    # A listing far larger than the pipe's buffer, so writing it outlives the reader.
    path = write(tmp_path, f'[session]\ninstructions = "{"x" * 200_000}"\n')
    result = subprocess.run(
        [sys.executable, "-m", "voicecli", "config", "show", "--json", "--config", path],
        stdout=reader.stdin,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=user_environment(tmp_path),
        timeout=60,
    )
    reader.stdin.close()
    reader.wait(timeout=10)
    assert (result.returncode, result.stderr) == (0, "")
