"""The `voicecli` command line: parses arguments and dispatches to `voicecli.commands.*`.

`main(argv)` returns the exit code instead of exiting, so tests can call it. Every
`VoiceCliError` becomes one line on stderr and its exit code; no traceback reaches the user.
A usage error names the `--help` of the command it concerns.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from voicecli import __version__
from voicecli.commands import COMMANDS
from voicecli.errors import VoiceCliError


__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit 2 (no usage dump)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"voicecli: {message} (see '{self.prog} --help')\n")

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        # Flags no parser knows are reported by the top-level parser, whose help does not
        # list them: remember the innermost command so the hint names its --help instead.
        namespace, extras = super().parse_known_args(args, namespace)
        if not hasattr(namespace, _INNERMOST):
            setattr(namespace, _INNERMOST, self)
        return namespace, extras


_INNERMOST = "_voicecli_innermost_parser"


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
    args, unknown = parser.parse_known_args(argv)
    innermost = getattr(args, _INNERMOST, parser)
    delattr(args, _INNERMOST)
    if unknown:
        innermost.error(f"unrecognized arguments: {' '.join(unknown)}")
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a reader that went away shows up here rather than at exit
        return code
    except VoiceCliError as exc:
        print(f"voicecli: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `voicecli history list | head`: the reader had enough, which is not an error. Point
        # stdout at nothing, or Python's own flush at exit would complain about it again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
