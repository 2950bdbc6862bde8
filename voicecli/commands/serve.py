"""`voicecli serve`: run the local realtime-compatible server until Ctrl-C.

Prints one line with the WebSocket URL, then serves GA (and beta, per connection) clients.
Bad flags, a port in use or a missing script file end with one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import os
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from voicecli.server import LocalServer


__all__ = ["register", "run"]

KEY_ENV = "VOICECLI_SERVER_KEY"


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: use a number 0-65535") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {port}: use a number 0-65535")
    return port


def _non_negative(kind: type) -> object:
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text} is negative")
        return value

    return parse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="run a local realtime-compatible server (offline demo and test backend)",
        description="Run a local server that speaks the OpenAI Realtime protocol (GA, and beta "
        "for clients that ask for it). It binds 127.0.0.1 unless told otherwise and runs "
        "until Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8765, help="port (default 8765, 0 = any)")
    parser.add_argument(
        "--responder",
        choices=("echo", "speech", "scripted"),
        default="echo",
        help="echo = replay your audio; speech = espeak-ng reply; scripted = read --script",
    )
    parser.add_argument("--script", metavar="FILE", help="reply script for --responder scripted")
    parser.add_argument(
        "--pace",
        type=_non_negative(float),
        default=1.0,
        help="wall seconds per second of reply audio (1 = real time, 0 = as fast as possible)",
    )
    parser.add_argument(
        "--expire-after",
        type=_non_negative(float),
        default=3600.0,
        metavar="SECONDS",
        help="session length before session_expired and close 1001 (default 3600)",
    )
    parser.add_argument(
        "--auth",
        choices=("any", "require", "key", "reject"),
        default="any",
        help=f"which API keys to accept (key = exactly ${KEY_ENV})",
    )
    parser.add_argument(
        "--auth-failure",
        choices=("401", "403", "error"),
        default="401",
        help="how a refused key is answered: HTTP 401/403, or an error event and close",
    )
    parser.add_argument(
        "--beta-disabled",
        action="store_true",
        help="refuse beta connections like the real API: error, then close 4000",
    )
    parser.add_argument(
        "--manual-turns",
        action="store_true",
        help="start sessions without server VAD (clients can still turn it on)",
    )
    parser.add_argument(
        "--late-transcript",
        action="store_true",
        help="send user input transcripts after the reply has started",
    )
    parser.add_argument("--seed", type=int, help="seed for ids and jitter (reproducible runs)")
    faults = parser.add_argument_group("fault switches (per connection, events count from 1)")
    faults.add_argument(
        "--close-after", type=_non_negative(int), metavar="N", help="drop TCP after N events"
    )
    faults.add_argument(
        "--jitter-ms",
        type=_non_negative(float),
        default=0.0,
        metavar="J",
        help="delay each delta by a random 0..J ms",
    )
    faults.add_argument(
        "--malformed-after",
        type=_non_negative(int),
        metavar="N",
        help="send one invalid JSON frame after N events",
    )
    faults.add_argument(
        "--oversized-after",
        type=_non_negative(int),
        metavar="N",
        help="send one oversized frame after N events",
    )
    faults.add_argument(
        "--oversized-bytes",
        type=_non_negative(int),
        default=20 * 1024 * 1024,
        metavar="BYTES",
        help="size of that frame (default 20 MiB)",
    )
    faults.add_argument(
        "--silent-at", type=_non_negative(int), metavar="N", help="go silent before event N"
    )
    faults.add_argument(
        "--silent-for",
        type=_non_negative(float),
        default=5.0,
        metavar="SECONDS",
        help="how long --silent-at stays silent (default 5)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from voicecli.errors import UsageError
    from voicecli.server import Faults, LocalServer, ScriptError, ServerOptions

    if args.responder == "scripted" and not args.script:
        raise UsageError("--responder scripted needs --script FILE")
    if args.script and args.responder != "scripted":
        raise UsageError("--script only works with --responder scripted")
    if args.expire_after == 0:
        raise UsageError("--expire-after must be more than 0 seconds")
    api_key = os.environ.get(KEY_ENV) if args.auth == "key" else None
    if args.auth == "key" and not api_key:
        raise UsageError(f"--auth key compares with ${KEY_ENV}, which is not set")
    options = ServerOptions(
        host=args.host,
        port=args.port,
        responder=args.responder,
        script=args.script,
        pace=args.pace,
        expire_after_s=args.expire_after,
        auth=args.auth,
        api_key=api_key,
        auth_failure=args.auth_failure,
        beta_disabled=args.beta_disabled,
        turn_detection=None if args.manual_turns else ServerOptions().turn_detection,
        late_transcript=args.late_transcript,
        seed=args.seed,
        faults=Faults(
            close_after_events=args.close_after,
            delta_jitter_ms=args.jitter_ms,
            malformed_after_events=args.malformed_after,
            oversized_after_events=args.oversized_after,
            oversized_bytes=args.oversized_bytes,
            silent_at_event=args.silent_at,
            silent_for_s=args.silent_for,
        ),
    )
    try:
        server = LocalServer(options)
    except ScriptError as exc:
        raise UsageError(str(exc)) from None
    asyncio.run(_serve(server, args))
    return 0


async def _serve(server: LocalServer, args: argparse.Namespace) -> None:
    import asyncio
    import signal

    from voicecli.errors import UsageError

    try:
        await server.start()
    except OSError as exc:
        raise UsageError(_bind_problem(exc, args.host, args.port)) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    print(
        f"voicecli serve: listening on {server.url} ({args.responder} responder, pace "
        f"{args.pace:g}); Ctrl-C stops",
        flush=True,
    )
    try:
        await stop.wait()
    finally:
        await server.stop()


def _bind_problem(exc: OSError, host: str, port: int) -> str:
    import errno

    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {host}:{port}: the port is already in use"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot listen on {host}:{port}: permission denied (ports below 1024 need root)"
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"cannot listen on {host}:{port}: this machine has no such address"
    return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
