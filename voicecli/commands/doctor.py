"""`voicecli doctor`: check the audio set-up and the connection, one line per check.

    voicecli doctor [--mic-seconds S] [--input-device D] [--output-device D] [--url URL]
                    [--server local|openai] [--dialect ga|beta] [--model M] [--config FILE]

Checks, in order: PortAudio present; audio devices present; the default (or chosen) input and
output open at 24 kHz (or at their own rate, resampled) and the speaker plays; two seconds of
microphone level; the API key (never printed; not needed when the embedded local server will
be used); the server reachable; the realtime handshake accepted in the configured dialect.
Each line says PASS, FAIL (with the fix) or SKIP (an earlier check it needs failed).

Exit 0 only when every check passes, else 1; 2 for bad flags or config.
"""

from __future__ import annotations

import argparse


__all__ = ["register", "run"]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if not 0.5 <= value <= 30:
        raise argparse.ArgumentTypeError(f"{text} s: use 0.5 to 30 seconds")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from voicecli.config import add_config_arguments

    parser = subparsers.add_parser(
        "doctor",
        help="check audio devices, microphone, API key, server and handshake",
        description="Check, in order, that PortAudio is installed, audio devices exist and open "
        "at 24 kHz, the microphone hears something, the API key is set (never printed), the "
        "server is reachable and accepts the realtime handshake in the configured dialect. "
        "Exit 0 only when every check passes.",
    )
    parser.add_argument(
        "--mic-seconds",
        type=_seconds,
        default=2.0,
        metavar="S",
        help="how long to listen to the microphone (default 2)",
    )
    add_config_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from voicecli.config import config_from_args
    from voicecli.doctor import render, run_checks

    config = config_from_args(args)

    def show(result) -> None:  # type: ignore[no-untyped-def]
        print(render(result), flush=True)

    results = asyncio.run(run_checks(config, mic_seconds=args.mic_seconds, on_result=show))
    passed = sum(1 for result in results if result.passed)
    verdict = "all checks passed" if passed == len(results) else "some checks did not pass"
    print(f"{passed}/{len(results)} checks passed: {verdict}.")
    return 0 if passed == len(results) else 1
