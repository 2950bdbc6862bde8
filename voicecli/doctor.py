"""`voicecli doctor`: prove the audio set-up and the connection work, one check at a time.

The checks are data (`CHECKS`, in order): each has a name, the checks it needs to have passed,
and an async function that returns `(detail, fix)` on success or raises `CheckFailed(detail,
fix)`. `run_checks()` runs them in order; a check whose prerequisite did not pass is skipped
(and counts as not passed). Resources that span checks (the open audio streams, the embedded
local server) live in the `Context` and are closed at the end.

1. PortAudio present        5. API key present (never printed; "not needed" for the local server)
2. audio devices present    6. server reachable (TCP, and TLS for wss://)
3. devices open at 24 kHz   7. realtime handshake accepted in the configured dialect
   (or at their own rate with resampling), and the speaker plays
4. microphone level over 2 s

Nothing here prints: `voicecli.commands.doctor` renders the results.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from voicecli.errors import (
    AuthError,
    BetaShapeDisabled,
    ConnectError,
    HandshakeError,
    UnreachableError,
    VoiceCliError,
)


if TYPE_CHECKING:
    from voicecli.config import Config
    from voicecli.connect import Target
    from voicecli.session import ConnectionSettings


__all__ = [
    "CHECKS",
    "Check",
    "CheckFailed",
    "CheckResult",
    "Context",
    "render",
    "run_checks",
]

PASS, FAIL, SKIP = "pass", "fail", "skip"

DEVICES_FIX = (
    "start your sound server (PulseAudio or PipeWire) or connect a microphone and speakers; "
    "'voicecli devices' lists what PortAudio sees"
)
CHOOSE_DEVICE_FIX = (
    "choose another device with --input-device / --output-device (see 'voicecli devices')"
)
QUIET_DBFS = -60.0
"""A microphone whose loudest sample in 2 s stays below this is muted or turned down (a room
with nobody speaking still peaks around -50 dBFS on a working microphone)."""


class CheckFailed(Exception):
    """A check found a problem: what it found, and how to fix it (one line each)."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    title: str
    status: str
    """`pass`, `fail` or `skip`."""
    detail: str
    fix: str | None = None

    @property
    def passed(self) -> bool:
        return self.status == PASS


@dataclass(slots=True)
class Context:
    """What the checks share: the config and what earlier checks found or opened."""

    config: Config
    mic_seconds: float = 2.0
    stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)
    sounddevice: Any = None
    input_spec: int | str | None = None
    output_spec: int | str | None = None
    backend: Any = None
    """The open `RealBackend` (from check 3 until the end)."""
    target: Target | None = None
    connection: ConnectionSettings | None = None
    """The settings to connect with (the local server's url once it listens)."""


CheckFunction = Callable[[Context], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    title: str
    run: CheckFunction
    needs: tuple[str, ...] = ()


# --- 1. PortAudio -------------------------------------------------------------------------------


async def check_portaudio(ctx: Context) -> str:
    from voicecli.audio.devices import PORTAUDIO_INSTALL, load_sounddevice
    from voicecli.errors import AudioError

    try:
        sd = load_sounddevice()
    except AudioError as exc:
        if str(exc) == PORTAUDIO_INSTALL:
            raise CheckFailed(
                "the PortAudio library is not installed",
                PORTAUDIO_INSTALL.split("; ", 1)[1],
            ) from None
        raise CheckFailed(
            str(exc), "reinstall PortAudio (libportaudio2 on Debian/Ubuntu)"
        ) from None
    ctx.sounddevice = sd
    return str(sd.get_portaudio_version()[1])


# --- 2. devices ---------------------------------------------------------------------------------


async def check_devices(ctx: Context) -> str:
    from voicecli.audio.devices import list_devices, parse_device_spec, resolve_device
    from voicecli.errors import AudioError

    devices = await asyncio.to_thread(list_devices)
    inputs = [d for d in devices if d.max_input_channels > 0]
    outputs = [d for d in devices if d.max_output_channels > 0]
    if not inputs and not outputs:
        raise CheckFailed("PortAudio sees no audio devices at all", DEVICES_FIX)
    if not inputs or not outputs:
        missing = "input (microphone)" if not inputs else "output (speaker)"
        raise CheckFailed(f"PortAudio sees no {missing} device", DEVICES_FIX)
    audio = ctx.config.audio
    ctx.input_spec = parse_device_spec(audio.input_device)
    ctx.output_spec = parse_device_spec(audio.output_device)
    try:
        mic = resolve_device(ctx.input_spec, "input")
        speaker = resolve_device(ctx.output_spec, "output")
    except AudioError as exc:
        raise CheckFailed(str(exc), CHOOSE_DEVICE_FIX) from None
    return (
        f"{len(inputs)} input(s), {len(outputs)} output(s); using input {mic.label()} and "
        f"output {speaker.label()}"
    )


# --- 3. open at 24 kHz ------------------------------------------------------------------------


async def check_open(ctx: Context) -> str:
    from voicecli.audio import RealBackend
    from voicecli.errors import AudioError

    audio = ctx.config.audio
    backend = RealBackend(
        ctx.input_spec,
        ctx.output_spec,
        block_ms=audio.block_ms,
        output_block_ms=audio.output_block_ms,
        prebuffer_ms=audio.prebuffer_ms,
    )
    try:
        await backend.start()
    except AudioError as exc:
        raise CheckFailed(str(exc), CHOOSE_DEVICE_FIX) from None
    ctx.backend = backend
    ctx.stack.push_async_callback(backend.stop)
    # A short silence proves the speaker's callbacks run (silence: a doctor makes no noise).
    backend.play(bytes(48 * 200), "doctor", 0)
    backend.end_part("doctor", 0)  # all of it: nothing to stretch while it drains
    if not await backend.drain(timeout=3.0):
        raise CheckFailed(
            "the output device opened but did not play 200 ms of audio within 3 s (stalled)",
            "check the sound server, or " + CHOOSE_DEVICE_FIX,
        )
    stats = backend.stats()
    return f"input {_rate(stats.input_rate)}, output {_rate(stats.output_rate)}; the speaker plays"


def _rate(rate: int | None) -> str:
    if rate is None or rate == 24000:
        return "at 24 kHz"
    return f"at {rate / 1000:g} kHz, resampled to 24 kHz"


# --- 4. microphone level ----------------------------------------------------------------------


async def check_mic_level(ctx: Context) -> str:
    backend, seconds = ctx.backend, ctx.mic_seconds
    samples = 0
    peak = 0.0
    energy = 0.0
    loop = asyncio.get_running_loop()
    started = loop.time()  # the loop's clock is time.monotonic(), like `captured_at`
    deadline = started + seconds
    blocks = backend.mic_blocks()
    with contextlib.suppress(TimeoutError, StopAsyncIteration):
        while (left := deadline - loop.time()) > 0:
            block = await asyncio.wait_for(anext(blocks), left)
            if block.captured_at < started:
                continue  # queued while the earlier check ran
            count = len(block.pcm) // 2
            samples += count
            peak = max(peak, block.peak)
            energy += block.rms * block.rms * count  # the block's level, measured on arrival
    got_s = samples / 24000
    if got_s < seconds / 2:
        raise CheckFailed(
            f"the microphone delivered only {got_s:.1f} s of audio in {seconds:g} s",
            "the input stream stalls: check the sound server, or " + CHOOSE_DEVICE_FIX,
        )
    if peak == 0:
        raise CheckFailed(
            f"the microphone delivered {got_s:.1f} s of digital silence",
            "unmute it (or raise its input volume) in the system mixer, or " + CHOOSE_DEVICE_FIX,
        )
    peak_db = _dbfs(peak)
    rms_db = _dbfs(math.sqrt(energy / samples))
    if peak_db < QUIET_DBFS:
        raise CheckFailed(
            f"the microphone is nearly silent (peak {peak_db:.0f} dBFS over {got_s:.1f} s)",
            "raise its input volume in the system mixer, or " + CHOOSE_DEVICE_FIX,
        )
    return f"{got_s:.1f} s of audio, peak {peak_db:.0f} dBFS, average {rms_db:.0f} dBFS"


def _dbfs(level: float) -> float:
    return 20 * math.log10(level) if level > 0 else -math.inf


# --- 5. API key ---------------------------------------------------------------------------------


async def check_api_key(ctx: Context) -> str:
    from voicecli.config import API_KEY_ENV

    config = ctx.config
    server, url = config.connection.server, config.connection.url
    source = config.api_key_source.detail if config.api_key_source else API_KEY_ENV
    if config.api_key:
        if server == "local":
            return f"set ({source}), not needed: --server local uses the embedded local server"
        return f"set ({source})"
    if server == "openai" and not url:
        raise CheckFailed(
            f"{API_KEY_ENV} is not set, and server = openai needs it",
            f"set {API_KEY_ENV} in the environment or in .env (or use --server local)",
        )
    if server == "local" or not url:
        return "not set: not needed, the embedded local server will be used"
    return "not set: connecting to the url without a key (the handshake shows if it needs one)"


# --- 6. server reachable ----------------------------------------------------------------------


async def check_server(ctx: Context) -> str:
    from voicecli.connect import plan_target

    config = ctx.config
    try:
        # The echo responder needs nothing (no espeak-ng, no script) to answer a handshake.
        target = plan_target(config, local_responder="echo")
    except VoiceCliError as exc:
        raise CheckFailed(
            str(exc), "fix the url or server setting (see 'voicecli config show')"
        ) from None
    ctx.target = target
    if target.local_server is not None:
        try:
            ctx.connection = await ctx.stack.enter_async_context(target.running())
        except ConnectError as exc:
            raise CheckFailed(
                str(exc), "free a local port, or pass --url to a running server"
            ) from None
    else:
        ctx.connection = target.connection
    endpoint = ctx.connection.endpoint
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    started = time.monotonic()
    try:
        await asyncio.wait_for(_tcp_probe(host, port, secure), ctx.connection.open_timeout)
    except TimeoutError:
        raise CheckFailed(
            f"{host}:{port} did not answer within {ctx.connection.open_timeout:g} s",
            "check your network, firewall or proxy, and the url",
        ) from None
    except socket.gaierror:
        raise CheckFailed(
            f"the host name {host!r} does not resolve",
            "check the url and your DNS / network connection",
        ) from None
    except ssl.SSLError as exc:
        reason = getattr(exc, "reason", None) or str(exc)
        raise CheckFailed(
            f"{host}:{port} accepts connections but the TLS handshake failed ({reason})",
            "check the url (wss:// needs a TLS server) and any TLS-intercepting proxy",
        ) from None
    except OSError as exc:
        detail = (
            "connection refused"
            if isinstance(exc, ConnectionRefusedError)
            else (exc.strerror or str(exc))
        )
        raise CheckFailed(
            f"cannot reach {host}:{port}: {detail}",
            "start the server, or check the url, your network and proxy settings",
        ) from None
    took = (time.monotonic() - started) * 1000
    what = "TCP + TLS" if secure else "TCP"
    where = "the embedded local server" if target.local_server is not None else target.label
    return f"{where} at {host}:{port} answers ({what} {took:.0f} ms)"


async def _tcp_probe(host: str, port: int, secure: bool) -> None:
    context = ssl.create_default_context() if secure else None
    _, writer = await asyncio.open_connection(
        host, port, ssl=context, server_hostname=host if secure else None
    )
    writer.close()
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()


# --- 7. handshake -------------------------------------------------------------------------------


async def check_handshake(ctx: Context) -> str:
    from voicecli.session import RealtimeSession

    connection = ctx.connection
    assert connection is not None
    dialect = connection.dialect.name
    started = time.monotonic()
    try:
        session = await RealtimeSession.open(connection)
    except BetaShapeDisabled:
        raise CheckFailed(
            "the server refused the beta dialect (close 4000 beta_api_shape_disabled)",
            'use the GA dialect: --dialect ga, or dialect = "ga" in [connection]',
        ) from None
    except AuthError as exc:
        raise CheckFailed(
            str(exc), "check OPENAI_API_KEY (and that the key has realtime access)"
        ) from None
    except HandshakeError as exc:
        raise CheckFailed(str(exc), "check that the url is a realtime endpoint") from None
    except UnreachableError as exc:
        raise CheckFailed(str(exc), "check the url, your network and proxy settings") from None
    except ConnectError as exc:
        raise CheckFailed(str(exc), "check the url and the server's logs") from None
    took = (time.monotonic() - started) * 1000
    try:
        # session.created is queued for events(); the core has already applied it.
        model = session.client.model or connection.model
    finally:
        await session.close()
    return f"session.created in {took:.0f} ms ({dialect.upper()} dialect, model {model})"


# --- running ------------------------------------------------------------------------------------

CHECKS: tuple[Check, ...] = (
    Check("portaudio", "PortAudio library", check_portaudio),
    Check("devices", "audio devices", check_devices, ("portaudio",)),
    Check("open", "devices open at 24 kHz", check_open, ("devices",)),
    Check("mic_level", "microphone level", check_mic_level, ("open",)),
    Check("api_key", "API key", check_api_key),
    Check("server", "server reachable", check_server, ("api_key",)),
    Check("handshake", "realtime handshake", check_handshake, ("server",)),
)


async def run_checks(
    config: Config,
    *,
    mic_seconds: float = 2.0,
    checks: Sequence[Check] = CHECKS,
    on_result: Callable[[CheckResult], None] | None = None,
) -> list[CheckResult]:
    """Run `checks` in order (each result also goes to `on_result` as soon as it is known)."""
    ctx = Context(config=config, mic_seconds=mic_seconds)
    titles = {check.name: check.title for check in checks}
    results: dict[str, CheckResult] = {}
    async with ctx.stack:
        for check in checks:
            missing = [n for n in check.needs if n in titles and not results[n].passed]
            if missing:
                result = CheckResult(
                    check.name, check.title, SKIP, f"not run: needs '{titles[missing[0]]}' to pass"
                )
            else:
                result = await _run_one(check, ctx)
            results[check.name] = result
            if on_result is not None:
                on_result(result)
    return list(results.values())


async def _run_one(check: Check, ctx: Context) -> CheckResult:
    try:
        detail = await check.run(ctx)
    except CheckFailed as exc:
        return CheckResult(check.name, check.title, FAIL, exc.detail, exc.fix)
    except VoiceCliError as exc:  # an unexpected but clear error: still one line
        return CheckResult(check.name, check.title, FAIL, str(exc), "see 'voicecli doctor --help'")
    return CheckResult(check.name, check.title, PASS, detail)


def render(result: CheckResult) -> str:
    """One line: `PASS  PortAudio library: PortAudio V19.6.0-devel`, with `Fix:` on failures."""
    line = f"{result.status.upper():<4}  {result.title}: {result.detail}"
    if result.fix and result.status == FAIL:
        line += f". Fix: {result.fix}"
    return line
