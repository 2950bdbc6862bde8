"""`voicecli talk`: a voice (and text) conversation with a realtime model in a terminal UI.

    voicecli talk [--voice V] [--model M] [--mode vad|semantic|ptt] [--instructions TEXT]
                  [--input-device D] [--output-device D] [--url URL] [--server local|openai]
                  [--dialect ga|beta] [--config FILE] [--text-only] [...every config flag]

Settings come from flags > `VOICECLI_*` environment > the TOML config > defaults (`.env` is
read too). With no OPENAI_API_KEY and no --url, talk starts the embedded local server on its
own event loop and says so on screen. Everything that can be checked is checked before the
screen opens (voice, mode, URL, the key for OpenAI, the audio devices, the local server's
script), so bad input is one line on stderr and exit 2, never a half-drawn screen.

`build_setup()` makes the `voicecli.tui.setup.TalkSetup` the app runs with; Textual itself is
imported only inside `run()`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from voicecli.audio import RealBackend
    from voicecli.config import Config
    from voicecli.engine import TalkEngine
    from voicecli.history.store import HistoryStore
    from voicecli.server import LocalServer
    from voicecli.tui.setup import TalkSetup


__all__ = ["build_setup", "register", "run"]

LOCAL_DEMO_NOTICE = "local demo server — no API key; replies are synthetic"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from voicecli.config import add_config_arguments

    parser = subparsers.add_parser(
        "talk",
        help="talk with a realtime model: voice and text, in a terminal UI",
        description="Talk with a realtime speech model: hands-free (server or semantic VAD) or "
        "push-to-talk, with live transcripts, typed messages and an event inspector. Without "
        "OPENAI_API_KEY (and without --url) it talks to the embedded local demo server. "
        "Press ? in the app for the keys.",
    )
    parser.add_argument(
        "--text-only",
        action="store_true",
        help="open no audio device at all: type messages and read the replies",
    )
    add_config_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from voicecli.config import config_from_args
    from voicecli.history.store import HistoryStore

    config = config_from_args(args)
    setup = build_setup(config, text_only=args.text_only)
    store = HistoryStore.for_config(config)
    if store is not None:
        setup.on_engine = _recorder(store, config, setup)

    from voicecli.tui.app import TalkApp  # Textual loads only now that the input is valid

    state_dir = _state_dir()
    app = TalkApp(setup, crash_log=state_dir / "talk-crash.log")
    try:
        with _native_stderr_to(state_dir / "talk-stderr.log"):
            app.run()
    finally:
        if store is not None:
            store.close()
    if app.fatal_error is not None:
        raise app.fatal_error
    return app.return_code or 0


def build_setup(config: Config, *, text_only: bool = False) -> TalkSetup:
    """The app's collaborators for `config`; raises the typed error for anything invalid."""
    from voicecli.engine import TalkSettings
    from voicecli.session import ConnectionSettings
    from voicecli.tui.setup import TalkSetup

    settings = TalkSettings.from_config(config, text_only=text_only)
    kind = config.server_kind()  # UsageError: --server openai without a key
    notices: list[str] = []
    local_server = None
    if kind == "local":
        local_server = _local_server(config)
        # The url is the local server's, known once it listens; this one only validates.
        connection = ConnectionSettings.from_config(config, url="ws://127.0.0.1:9/")
        label = "local demo server"
        notices.append(
            LOCAL_DEMO_NOTICE
            if not config.api_key
            else "local demo server (--server local) — replies are synthetic"
        )
    else:
        connection = ConnectionSettings.from_config(config)
        label = "OpenAI" if kind == "openai" else connection.display_url

    make_audio = _no_audio
    if not text_only:
        make_audio, hint = _audio_factory(config)
        if hint:
            notices.append(hint)
    return TalkSetup(
        settings=settings,
        server_label=label,
        local_server=local_server,
        connection=connection,
        make_audio=make_audio,
        ptt_style=config.audio.ptt_style,
        notices=tuple(notices),
    )


def _no_audio() -> None:
    return None


def _local_server(config: Config) -> LocalServer:
    from voicecli.errors import UsageError
    from voicecli.server import LocalServer, ScriptError, ServerOptions

    local = config.local_server
    try:
        return LocalServer(
            ServerOptions(
                responder=local.responder,
                script=local.script or None,
                pace=local.pace,
                model=config.connection.model,
                voice=config.session.voice,
            )
        )
    except (ScriptError, ValueError) as exc:
        raise UsageError(f"local server: {exc}") from None


def _audio_factory(config: Config) -> tuple[Callable[[], RealBackend], str | None]:
    """A factory of real backends on the configured devices, checked now (one clear line for a
    device that does not exist), and the laptop-speakers hint if the pair looks built-in."""
    from voicecli.audio import RealBackend
    from voicecli.audio.devices import parse_device_spec, resolve_device
    from voicecli.echo import EchoMode, laptop_pair_hint

    audio = config.audio
    input_spec = parse_device_spec(audio.input_device)
    output_spec = parse_device_spec(audio.output_device)
    mic = resolve_device(input_spec, "input")
    speaker = resolve_device(output_spec, "output")
    hint = laptop_pair_hint(mic.name, speaker.name, EchoMode(audio.echo_guard))

    def make_audio() -> RealBackend:
        return RealBackend(
            input_spec,
            output_spec,
            block_ms=audio.block_ms,
            output_block_ms=audio.output_block_ms,
            prebuffer_ms=audio.prebuffer_ms,
            max_stretch_ms=audio.max_stretch_ms,
        )

    return make_audio, hint


def _recorder(
    store: HistoryStore, config: Config, setup: TalkSetup
) -> Callable[[TalkEngine], None]:
    from voicecli.history.recorder import attach

    local = setup.local_server is not None
    server_url = "local demo server" if local else setup.connection.display_url

    def on_engine(engine: TalkEngine) -> None:
        attach(
            engine,
            store,
            model=config.connection.model,
            dialect=config.connection.dialect,
            server_url=server_url,
        )

    return on_engine


def _state_dir() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "voicecli"


@contextlib.contextmanager
def _native_stderr_to(log: Path) -> Iterator[None]:
    """Send what C libraries write to file descriptor 2 (ALSA's "underrun occurred", PortAudio
    warnings) to `log` while the screen is up, so it cannot scribble over the UI. Textual
    draws on `sys.__stderr__`, which is pointed at a duplicate of the terminal meanwhile."""
    if not sys.__stderr__ or not os.isatty(2):
        yield
        return
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    except OSError:
        yield  # nowhere to put it: keep the terminal as it is
        return
    original_stderr = sys.__stderr__
    sys.__stderr__.flush()
    terminal_fd = os.dup(2)
    terminal = os.fdopen(terminal_fd, "w", buffering=1, encoding=original_stderr.encoding)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    sys.__stderr__ = terminal
    try:
        yield
    finally:
        terminal.flush()
        os.dup2(terminal_fd, 2)
        sys.__stderr__ = original_stderr
        terminal.close()
