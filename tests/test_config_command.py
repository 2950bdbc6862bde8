"""`voicecli config path` and `voicecli config show`: locations, every value with its source,
and the API key never printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import run_voicecli
from voicecli.cli import main
from voicecli.config import KEYS


FAKE_KEY = "sk-proj-RECOGNISABLE-FAKE-KEY-1234567890-zz99"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def line_for(output: str, name: str) -> str:
    matches = [line for line in output.splitlines() if line.strip().startswith(f"{name} ")]
    assert len(matches) == 1, (name, output)
    return matches[0]


def test_config_path_default_and_named(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "config", "path")
    default = sandbox / "home" / ".config" / "voicecli" / "config.toml"
    assert (code, out) == (0, f"{default} (does not exist; chosen by default)\n")
    named = sandbox / "mine.toml"
    named.write_text("")
    code, out, _ = run(capsys, "config", "path", "--config", str(named))
    assert (code, out) == (0, f"{named} (exists; chosen by --config)\n")


def test_config_path_follows_voicecli_config_from_dotenv(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path(".env").write_text(f"VOICECLI_CONFIG={sandbox / 'from-dotenv.toml'}\n")
    _, out, _ = run(capsys, "config", "path")
    assert out.startswith(f"{sandbox / 'from-dotenv.toml'} (does not exist; chosen by VOICECLI_")


def test_show_reports_each_value_with_its_source(
    sandbox: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file = sandbox / "c.toml"
    config_file.write_text('[session]\nvoice = "ash"\n[audio]\nblock_ms = 40\n')
    monkeypatch.setenv("VOICECLI_CONNECTION_MODEL", "gpt-realtime-mini")
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_KEY)
    code, out, err = run(capsys, "config", "show", "--config", str(config_file), "--mode", "ptt")
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == f"config file: {config_file} (exists; chosen by --config)"
    assert line_for(out, "voice").split() == ["voice", "=", '"ash"', "file", f"({config_file})"]
    assert line_for(out, "block_ms").split() == ["block_ms", "=", "40", "file", f"({config_file})"]
    assert line_for(out, "model").split() == [
        "model", "=", '"gpt-realtime-mini"', "env", "(VOICECLI_CONNECTION_MODEL)"
    ]  # fmt: skip
    assert line_for(out, "mode").split() == ["mode", "=", '"ptt"', "flag", "(--mode)"]
    assert line_for(out, "eagerness").split() == ["eagerness", "=", '"auto"', "default"]
    for key in KEYS:
        line_for(out, key.name)  # every key is listed once
    assert "api key: sk-...zz99  env (OPENAI_API_KEY)" in out
    assert "connects to: OpenAI" in out
    assert FAKE_KEY not in out + err


def test_show_json_has_sources_and_no_key(
    sandbox: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    Path(".env").write_text(f"OPENAI_API_KEY={FAKE_KEY}\n")
    monkeypatch.setenv("VOICECLI_SESSION_OUTPUT", "text")
    code, out, _ = run(capsys, "config", "show", "--json", "--voice", "marin")
    data = json.loads(out)
    assert code == 0
    assert data["values"]["session.voice"] == {
        "value": "marin",
        "source": "flag",
        "detail": "--voice",
    }
    assert data["values"]["session.output"] == {
        "value": "text", "source": "env", "detail": "VOICECLI_SESSION_OUTPUT"
    }  # fmt: skip
    assert data["values"]["audio.block_ms"] == {"value": 40, "source": "default", "detail": ""}
    assert data["prices"]["gpt-realtime"]["audio_output"]["value"] == 64.0
    assert data["api_key"] == "sk-...zz99"
    assert FAKE_KEY not in out


def test_config_without_an_action_is_a_usage_error(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "config")
    assert (code, out) == (2, "")
    assert err == "voicecli: say what to do: 'voicecli config path' or 'voicecli config show'\n"


def test_show_in_a_real_process_never_prints_the_key(sandbox: Path) -> None:
    env = {"OPENAI_API_KEY": FAKE_KEY, "VOICECLI_SESSION_VOICE": "cedar"}
    result = run_voicecli("config", "show", home=sandbox / "home", cwd=sandbox, env=env)
    assert result.returncode == 0, result.stderr
    assert line_for(result.stdout, "voice").split()[2:] == [
        '"cedar"',
        "env",
        "(VOICECLI_SESSION_VOICE)",
    ]
    assert FAKE_KEY not in result.stdout + result.stderr
