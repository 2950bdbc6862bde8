"""The `voicecli` command line: parses arguments and dispatches to `voicecli.commands.*`.

`main(argv)` returns the exit code instead of exiting, so tests can call it. Every
`VoiceCliError` becomes one line on stderr and its exit code; no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from voicecli import __version__
from voicecli.commands import COMMANDS
from voicecli.errors import VoiceCliError


__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"voicecli: {message} (see 'voicecli {self._command()} --help')\n")

    def _command(self) -> str:
        parts = self.prog.split()
        return " ".join(parts[1:]) if len(parts) > 1 else ""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="voicecli",
        description="Talk to realtime speech models from the terminal, and smoke-test them.",
    )
    parser.add_argument("--version", action="version", version=f"voicecli {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"voicecli.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"voicecli.commands.{name}":
                raise
            continue  # command not built yet
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except VoiceCliError as exc:
        print(f"voicecli: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
