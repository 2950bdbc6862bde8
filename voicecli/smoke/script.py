"""What a smoke run sends and expects: turns from flags or a script file, and expectations.

A turn is a WAV file (streamed as the microphone) or a text message (sent as a user item),
with any number of expectations. An expectation is a regular expression searched
(case-insensitively, not anchored) in the assistant's transcript of the turn's reply, or, with
a `user:` prefix, in the user's transcript (what the server's input transcription heard).
`assistant:` may be written explicitly.

From flags, `--wav` and `--text` make turns in the order given, and the i-th `--expect`
applies to the i-th turn (turns of a `--script` count first); an empty `--expect ''` matches
anything, so it skips a turn. More `--expect`s than turns is a usage error.

A script file is JSON Lines, one turn per line; blank lines and lines starting with `#` are
ignored:

    {"wav": "question.wav", "expect": "paris", "expect_user": "capital"}
    {"text": "And of Italy?", "expect": ["rome", "italy"]}

Keys: `wav` (a path, relative to the script's folder) or `text` (exactly one of them);
`expect` and `expect_user` (a regex or a list of them). Problems are one `UsageError` naming
the file and line.

Pure: standard library only (WAV contents are checked by the command, not here).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from voicecli.errors import UsageError


__all__ = [
    "Expectation",
    "TurnSpec",
    "apply_expects",
    "parse_expectation",
    "parse_script",
    "read_script",
]

USER_PREFIX = "user:"
ASSISTANT_PREFIX = "assistant:"
_SCRIPT_KEYS = ("wav", "text", "expect", "expect_user")


@dataclass(frozen=True, slots=True)
class Expectation:
    """A regex that must be found in one side's transcript of a turn."""

    on: str
    """`assistant` or `user`."""
    pattern: str
    regex: re.Pattern[str] = field(compare=False, repr=False)

    def matches(self, assistant: str | None, user: str | None) -> bool:
        text = assistant if self.on == "assistant" else user
        return text is not None and self.regex.search(text) is not None

    def describe(self) -> str:
        return f"{self.on} ~ /{self.pattern}/"


def parse_expectation(text: str, where: str = "--expect", on: str | None = None) -> Expectation:
    """`text` as an expectation: `user:REGEX`, `assistant:REGEX` or `REGEX` (assistant).

    `on` forces the side (script keys say it), in which case no prefix is read.
    """
    pattern = text
    if on is None:
        on = "assistant"
        if text.startswith(USER_PREFIX):
            on, pattern = "user", text[len(USER_PREFIX) :]
        elif text.startswith(ASSISTANT_PREFIX):
            pattern = text[len(ASSISTANT_PREFIX) :]
    try:
        regex = re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise UsageError(
            f"{where}: {pattern!r} is not a valid regular expression ({exc})"
        ) from None
    return Expectation(on=on, pattern=pattern, regex=regex)


@dataclass(frozen=True, slots=True)
class TurnSpec:
    """One turn to send: a WAV file or a text message, and what its reply must contain."""

    kind: str
    """`wav` or `text`."""
    value: str
    """The WAV path (as given, resolved against the script's folder) or the text."""
    expectations: tuple[Expectation, ...] = ()
    source: str = ""
    """Where it was defined (`--wav`, `script.jsonl:3`), for messages."""

    @property
    def path(self) -> Path:
        return Path(self.value)

    def label(self, width: int = 40) -> str:
        """A short description: `wav question.wav` or `text "And of Italy?"`."""
        if self.kind == "wav":
            text = f"wav {self.path.name}"
        else:
            text = f'text "{self.value}"'
        return text if len(text) <= width else text[: width - 1] + "…"


def apply_expects(turns: Sequence[TurnSpec], expects: Iterable[str]) -> list[TurnSpec]:
    """Add the i-th `--expect` to the i-th turn (an empty one matches anything: skipped)."""
    expects = list(expects)
    if len(expects) > len(turns):
        raise UsageError(
            f"{len(expects)} --expect given for {len(turns)} turn(s): the i-th --expect applies "
            "to the i-th turn"
        )
    result = list(turns)
    for index, text in enumerate(expects):
        if text == "":
            continue
        where = f"--expect #{index + 1}"
        expectation = parse_expectation(text, where)
        turn = result[index]
        result[index] = replace(turn, expectations=(*turn.expectations, expectation))
    return result


def read_script(path: str | Path) -> list[TurnSpec]:
    """The turns of a script file (see the module docstring)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"script {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read script {path}: {exc}") from None
    return parse_script(text, source=str(path), base_dir=path.parent)


def parse_script(
    text: str, source: str = "<script>", base_dir: Path | None = None
) -> list[TurnSpec]:
    turns: list[TurnSpec] = []
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        turns.append(_parse_turn(stripped, f"{source}:{number}", base_dir))
    if not turns:
        raise UsageError(f"script {source} has no turns")
    return turns


def _parse_turn(line: str, where: str, base_dir: Path | None) -> TurnSpec:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise UsageError(f'{where}: each line must be a JSON object such as {{"text": "Hi"}}')
    unknown = [key for key in data if key not in _SCRIPT_KEYS]
    if unknown:
        raise UsageError(
            f"{where}: unknown key {unknown[0]!r} (use wav, text, expect, expect_user)"
        )
    has_wav, has_text = "wav" in data, "text" in data
    if has_wav == has_text:
        raise UsageError(f"{where}: give exactly one of 'wav' and 'text'")
    kind = "wav" if has_wav else "text"
    value = data[kind]
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where}: '{kind}' must be a non-empty string")
    if kind == "wav" and base_dir is not None and not Path(value).is_absolute():
        value = str(base_dir / value)
    expectations = [
        *_expectations(data.get("expect"), "assistant", f"{where}: expect"),
        *_expectations(data.get("expect_user"), "user", f"{where}: expect_user"),
    ]
    return TurnSpec(kind=kind, value=value, expectations=tuple(expectations), source=where)


def _expectations(value: Any, on: str, where: str) -> list[Expectation]:
    if value is None:
        return []
    patterns = [value] if isinstance(value, str) else value
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise UsageError(f"{where} must be a regular expression or a list of them")
    return [parse_expectation(pattern, where, on=on) for pattern in patterns]
