"""`voicecli` as a user runs it: a real process with a private HOME, and the check that bad
input ends in one line on stderr and exit 2.

The developer's key and `VOICECLI_*` settings are already gone from the environment
(`tests/conftest.py`); these helpers also drop the XDG config and data directories, so the
process sees only the files a test writes under its own HOME.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


__all__ = ["assert_one_line_error", "run_voicecli", "user_environment"]


def user_environment(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment for a user whose HOME is `home`, plus `extra`."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("XDG_CONFIG_HOME", "XDG_DATA_HOME")
    }
    env["HOME"] = str(home)
    env.update(extra or {})
    return env


def run_voicecli(
    *argv: str,
    home: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """`python -m voicecli *argv` with HOME=`home` (run in `cwd`, default `home`: no stray
    .env), `env` added to the environment."""
    home.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "voicecli", *argv],
        capture_output=True,
        text=True,
        cwd=cwd or home,
        env=user_environment(home, env),
        timeout=timeout,
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit 2, nothing on stdout, and one `voicecli: ...` line holding every fragment."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("voicecli: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
