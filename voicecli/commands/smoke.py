"""`voicecli smoke`: a headless run of known turns against a realtime model, with a report.

    voicecli smoke [--wav FILE ...] [--text TEXT ...] [--script FILE] [--expect REGEX ...]
                   [--out DIR] [--json FILE] [--mode vad|semantic|ptt] [--pace realtime|fast]
                   [--timeout S] [--model M] [--voice V] [--url URL] [--server local|openai]
                   [--responder speech|echo|scripted] [--no-history] [...config flags]

Turns run in the order given (`--wav` and `--text` may be mixed; a `--script`'s turns come
first), in one session. WAVs are streamed as the microphone at real-time pace (default) or as
fast as the server takes them, followed by silence so server VAD ends the turn (in ptt mode
push-to-talk is pressed around the WAV and the audio committed); texts are sent as user
messages. Expectations, the script format and the JSON report are described in
`voicecli.smoke.script` and `docs/smoke-report.schema.json`.

Exit 0: every turn completed and every expectation matched. Exit 1: an expectation did not
match, a turn timed out or its reply failed. Exit 2: bad usage or config, an unreadable input,
or a connection error. No sound card is used.

Without OPENAI_API_KEY and without --url, smoke runs against the embedded local server (it
says so on stderr); with `--pace fast` that server also streams its replies at once, unless
`[local_server] pace` is configured.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    import numpy as np

    from voicecli.config import Config
    from voicecli.smoke.report import Report
    from voicecli.smoke.script import TurnSpec


__all__ = ["register", "run"]


class _AddTurn(argparse.Action):
    """`--wav` and `--text` append to one list, so their order on the command line is kept."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        turns = list(getattr(namespace, self.dest, None) or [])
        turns.append((self.const, str(values)))
        setattr(namespace, self.dest, turns)


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text} s: the timeout must be between 0 and 3600 s")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from voicecli.config import add_config_arguments

    parser = subparsers.add_parser(
        "smoke",
        help="run known turns against a model headlessly and report latency, usage and cost",
        description="Send WAV and text turns to a realtime model (no sound card needed), wait "
        "for each reply, and report transcripts, latencies, tokens and cost per turn. Exit 0 "
        "when every turn completed and every --expect matched, 1 when one did not, 2 on "
        "usage, config or connection errors.",
    )
    turns = parser.add_argument_group("turns and expectations")
    turns.add_argument(
        "--wav",
        dest="turns",
        action=_AddTurn,
        const="wav",
        metavar="FILE",
        help="a turn spoken from a WAV file (any PCM WAV; repeatable)",
    )
    turns.add_argument(
        "--text",
        dest="turns",
        action=_AddTurn,
        const="text",
        metavar="TEXT",
        help="a turn sent as a typed user message (repeatable)",
    )
    turns.add_argument(
        "--script",
        dest="smoke_script",
        metavar="FILE",
        help='JSON Lines turns, one per line: {"wav": "q.wav", "expect": "paris", '
        '"expect_user": "capital"} or {"text": "Hi", "expect": ["hello", "hi"]}',
    )
    turns.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="REGEX",
        help="the i-th --expect must match the i-th turn's assistant transcript "
        "(case-insensitive search); prefix 'user:' to match the user transcript instead; "
        "'' skips a turn",
    )
    run_group = parser.add_argument_group("running and output")
    run_group.add_argument(
        "--pace",
        choices=("realtime", "fast"),
        default="realtime",
        help="stream WAVs at real-time pace like a microphone (default) or as fast as possible",
    )
    run_group.add_argument(
        "--timeout",
        type=_timeout,
        default=60.0,
        metavar="S",
        help="seconds each turn may wait for its reply after its input was sent (default 60)",
    )
    run_group.add_argument(
        "--out", metavar="DIR", help="write each turn's assistant audio as DIR/turn-NN.wav"
    )
    run_group.add_argument(
        "--json",
        dest="json_path",
        metavar="FILE",
        help="also write the report as JSON ('-' for stdout; the table then goes to stderr)",
    )
    run_group.add_argument(
        "--responder",
        choices=("speech", "echo", "scripted"),
        help="what the embedded local server answers with (default: [local_server] responder)",
    )
    # Not [local_server]: its --script and --pace flags mean other things here (--responder
    # replaces the one that matters; the rest comes from the file or the environment).
    add_config_arguments(parser, ("connection", "session", "audio", "history"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import asyncio

    from voicecli.config import config_from_args
    from voicecli.connect import LOCAL_SERVER_NOTICE, plan_target
    from voicecli.history.store import HistoryStore
    from voicecli.smoke.report import TurnResult
    from voicecli.smoke.runner import run_smoke

    config = config_from_args(args)
    specs = _turn_specs(args)
    inputs = _read_inputs(specs, ptt=config.session.mode == "ptt")
    _check_json_folder(args.json_path)
    out_dir = _out_dir(args.out)
    fast = args.pace == "fast"
    responder = args.responder or config.local_server.responder
    local = config.server_kind() == "local"  # UsageError: --server openai without a key
    if local and responder == "scripted" and not config.local_server.script:
        from voicecli.errors import UsageError

        # Here --script is the smoke script, not the local server's reply script.
        raise UsageError(
            "the scripted local server needs its reply script: set [local_server] script in "
            "the config or VOICECLI_LOCAL_SERVER_SCRIPT"
        )
    pace_configured = config.source("local_server.pace").kind != "default"
    target = plan_target(
        config,
        local_pace=0.0 if fast and not pace_configured else None,
        local_responder=args.responder,
    )
    history = HistoryStore.for_config(config)
    if target.kind == "local":
        print(f"voicecli smoke: {_local_notice(config, LOCAL_SERVER_NOTICE)}", file=sys.stderr)
    results = [TurnResult(index=i + 1, spec=spec) for i, spec in enumerate(specs)]
    for index, samples in inputs.items():
        results[index].input_ms = round(samples.size / 24, 1)
    try:
        report = asyncio.run(
            run_smoke(
                config,
                target,
                results,
                inputs,
                realtime=not fast,
                timeout_s=args.timeout,
                out_dir=out_dir,
                history=history,
            )
        )
    finally:
        if history is not None:
            history.close()
    _emit(report, args.json_path)
    if report.exception is not None:
        raise report.exception
    if report.error is not None:
        from voicecli.errors import ConnectError

        raise ConnectError(report.error)
    return report.exit_code


# --- input --------------------------------------------------------------------------------


def _turn_specs(args: argparse.Namespace) -> list[TurnSpec]:
    from voicecli.errors import UsageError
    from voicecli.smoke.script import TurnSpec, apply_expects, read_script

    specs: list[TurnSpec] = read_script(args.smoke_script) if args.smoke_script else []
    for kind, value in args.turns or []:
        if kind == "text" and not value.strip():
            raise UsageError("--text needs a non-empty message")
        specs.append(TurnSpec(kind=kind, value=value, source=f"--{kind}"))
    if not specs:
        raise UsageError("give at least one turn: --wav FILE, --text TEXT or --script FILE")
    return apply_expects(specs, args.expect)


def _read_inputs(specs: list[TurnSpec], *, ptt: bool) -> dict[int, np.ndarray]:
    """Every WAV read now (24 kHz mono), so a bad file fails before anything connects."""
    from voicecli.audio.wav import read_wav
    from voicecli.errors import UsageError

    inputs = {}
    for index, spec in enumerate(specs):
        if spec.kind != "wav":
            continue
        samples = read_wav(spec.value)
        if samples.size < 24 * 100:
            raise UsageError(
                f"{spec.source}: {spec.value} holds {samples.size / 24:.0f} ms of audio; a turn "
                "needs at least 100 ms" + (" (the push-to-talk minimum)" if ptt else "")
            )
        inputs[index] = samples
    return inputs


def _out_dir(path: str | None) -> Path | None:
    from voicecli.errors import UsageError

    if path is None:
        return None
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"--out {out}: that is a file, not a folder") from None
    except OSError as exc:
        raise UsageError(f"cannot create the output folder {out}: {exc.strerror or exc}") from None
    return out


def _check_json_folder(json_path: str | None) -> None:
    """A report that could not be written fails now, not after the whole run."""
    from voicecli.errors import UsageError

    if json_path is None or json_path == "-":
        return
    folder = Path(json_path).parent
    if not folder.is_dir():
        raise UsageError(
            f"cannot write the JSON report {json_path}: the folder {folder} does not exist"
        )


def _local_notice(config: Config, notice: str) -> str:
    if config.connection.server == "local":
        return "using the embedded local server (server = local)"
    return notice


# --- output -------------------------------------------------------------------------------


def _emit(report: Report, json_path: str | None) -> None:
    from voicecli.errors import UsageError

    ran = any(turn.status != "not_run" for turn in report.turns)
    table_stream = sys.stderr if json_path == "-" else sys.stdout
    if ran or report.error is None:
        print(report.render(), file=table_stream, flush=True)
    if json_path is None:
        return
    text = json.dumps(report.as_json(), indent=2, ensure_ascii=False) + "\n"
    if json_path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        Path(json_path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"cannot write the JSON report {json_path}: {exc.strerror or exc}"
        ) from None
