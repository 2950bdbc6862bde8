"""`voicecli talk` refuses bad input before any screen opens: one line on stderr, exit 2.

Checked through `voicecli.cli.main` (the real parser and config loading) with a clean home,
and once in a fresh interpreter to show Textual is not even imported for a refused start.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from voicecli.cli import main
from voicecli.commands.talk import LOCAL_DEMO_NOTICE, build_setup
from voicecli.config import load_config


@pytest.fixture(autouse=True)
def clean_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)  # no stray .env
    return tmp_path


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(["talk", *argv])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("voicecli: "), err
    assert "Traceback" not in err
    return err


def test_bad_voice_mode_and_url_are_one_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    assert "--voice" in refused(capsys, "--voice", "nobody")
    assert "--mode" in refused(capsys, "--mode", "telepathy")
    assert "WebSocket URL" in refused(capsys, "--url", "http://example.com/realtime")
    assert "beta" in refused(capsys, "--dialect", "beta", "--voice", "marin")


def test_openai_without_a_key_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert "OPENAI_API_KEY" in refused(capsys, "--server", "openai")


def test_unknown_audio_devices_are_refused(
    capsys: pytest.CaptureFixture[str], sound_server: str
) -> None:
    assert "no input device matches 'no-such-mic'" in refused(
        capsys, "--input-device", "no-such-mic"
    )
    assert "no output device with index 99" in refused(capsys, "--output-device", "99")


def test_a_scripted_local_server_without_a_script_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert "script" in refused(capsys, "--text-only", "--responder", "scripted")


def test_a_refused_start_does_not_load_textual(clean_home: Path) -> None:
    probe = (
        "import sys\n"
        "from voicecli.cli import main\n"
        "code = main(['talk', '--voice', 'nobody'])\n"
        "print(code, 'textual' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=clean_home
    )
    assert result.stdout.split() == ["2", "False"], result.stderr


def test_without_a_key_talk_uses_the_local_demo_server_and_says_so(clean_home: Path) -> None:
    config = load_config({}, env={"HOME": str(clean_home)}, dotenv_path=None)
    setup = build_setup(config, text_only=True)
    assert setup.local_server is not None and setup.server_label == "local demo server"
    assert setup.notices == (LOCAL_DEMO_NOTICE,)
    assert setup.make_audio() is None  # --text-only opens no device at all

    with_key = load_config(
        {"connection.url": "ws://127.0.0.1:9/v1/realtime"},
        env={"HOME": str(clean_home), "OPENAI_API_KEY": "sk-test-0123456789abcdef"},
        dotenv_path=None,
    )
    remote = build_setup(with_key, text_only=True)
    assert remote.local_server is None and remote.notices == ()
    assert remote.server_label == "ws://127.0.0.1:9/v1/realtime"
    assert remote.connection.api_key == "sk-test-0123456789abcdef"
