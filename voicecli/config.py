"""voicecli's configuration: every key as data, loaded from defaults, a TOML file, the environment
and command-line flags, each effective value remembering where it came from.

Precedence (later wins): defaults < TOML config file < `VOICECLI_*` environment < flags.
A `.env` file in the current directory is read with python-dotenv and fills in environment
variables that are NOT already set (the real environment always wins).

The config file is `--config FILE`, else `$VOICECLI_CONFIG`, else
`$XDG_CONFIG_HOME/voicecli/config.toml` (`~/.config/voicecli/config.toml`). A file named
explicitly must exist; the default one may be absent.

`KEYS` is the single table of keys: validation, the environment variable names, the shared
command-line flags, `voicecli config show` and `config.example.toml` (see `example_toml()`) all
come from it. Prices live in `[prices."<model>"]` tables (USD per 1M tokens).

The API key is read only from `OPENAI_API_KEY` (environment or `.env`), never from the config
file (a key there is rejected), and is shown only redacted.

Imports: standard library and python-dotenv (lazily).
"""

from __future__ import annotations

import argparse
import difflib
import math
import os
import re
import textwrap
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from voicecli.errors import ConfigError, UsageError


__all__ = [
    "BETA_VOICES",
    "DEFAULT_PRICES",
    "GA_VOICES",
    "KEYS",
    "PRICE_FIELDS",
    "AudioSection",
    "Config",
    "ConfigFile",
    "ConnectionSection",
    "HistorySection",
    "Key",
    "LocalServerSection",
    "ModelPrices",
    "SessionSection",
    "Source",
    "add_config_arguments",
    "check_ws_url",
    "config_from_args",
    "default_config_path",
    "example_toml",
    "find_config_file",
    "load_config",
    "overrides_from_args",
    "redact_key",
]


GA_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "coral",
    "echo",
    "sage",
    "shimmer",
    "verse",
    "marin",
    "cedar",
)
BETA_VOICES = GA_VOICES[:8]
"""The beta shape predates marin and cedar (realtime-protocol.md §1)."""

API_KEY_ENV = "OPENAI_API_KEY"
CONFIG_ENV = "VOICECLI_CONFIG"
ENV_PREFIX = "VOICECLI_"
OPENAI_URL = "wss://api.openai.com/v1/realtime"


# --------------------------------------------------------------------------------------------
# The key table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Key:
    """One configuration key: its place, type, default, allowed values and documentation."""

    section: str
    name: str
    type: type
    """`str`, `int`, `float` or `bool`."""
    default: Any
    help: str
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    flag: str | None = None
    """The shared command-line flag that sets it, if any."""
    device: bool = False
    """Accepts an integer (device index) or a string (name substring); stored as a string."""

    @property
    def dotted(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}{self.section}_{self.name}".upper()


KEYS: tuple[Key, ...] = (
    # [connection]
    Key(
        "connection",
        "server",
        str,
        "auto",
        "Which server to talk to. auto: OpenAI when OPENAI_API_KEY is set and no url is given, "
        "else the embedded local server; local: always the embedded local server; openai: "
        "OpenAI (or the url, if set), needs OPENAI_API_KEY.",
        choices=("auto", "local", "openai"),
        flag="--server",
    ),
    Key(
        "connection",
        "url",
        str,
        "",
        "WebSocket URL of a realtime server (ws:// or wss://); model= is added to the query "
        "when absent. Empty: chosen by `server`.",
        flag="--url",
    ),
    Key("connection", "model", str, "gpt-realtime", "Realtime model name.", flag="--model"),
    Key(
        "connection",
        "dialect",
        str,
        "ga",
        "Wire dialect: ga (current) or beta (the retired `OpenAI-Beta: realtime=v1` shape).",
        choices=("ga", "beta"),
        flag="--dialect",
    ),
    Key(
        "connection",
        "open_timeout",
        float,
        10.0,
        "Seconds to wait for the connection and the server's session.created.",
        minimum=0.5,
        maximum=120.0,
        flag="--open-timeout",
    ),
    Key(
        "connection",
        "reconnect_attempts",
        int,
        5,
        "After a dropped connection (network, server restart, keepalive timeout): how many "
        "times in a row to reconnect, with backoff, before giving up; the conversation is "
        "replayed into the new session. 0 never reconnects.",
        minimum=0,
        maximum=100,
        flag="--reconnect-attempts",
    ),
    Key(
        "connection",
        "renew_margin_s",
        float,
        120.0,
        "Seconds before the server's session time limit (60 minutes) to move to a new session, "
        "at the next pause between turns, with the conversation replayed.",
        minimum=0.0,
        maximum=1800.0,
        flag="--renew-margin",
    ),
    # [session]
    Key(
        "session",
        "voice",
        str,
        "alloy",
        "Assistant voice: " + ", ".join(GA_VOICES) + " (marin and cedar are GA only).",
        choices=GA_VOICES,
        flag="--voice",
    ),
    Key(
        "session",
        "instructions",
        str,
        "",
        "System instructions for the assistant. Empty: the server's default.",
        flag="--instructions",
    ),
    Key(
        "session",
        "mode",
        str,
        "vad",
        "Turn taking: vad (server voice activity detection), semantic (semantic VAD) or ptt "
        "(push-to-talk, no server turn detection).",
        choices=("vad", "semantic", "ptt"),
        flag="--mode",
    ),
    Key(
        "session",
        "eagerness",
        str,
        "auto",
        "How soon semantic VAD answers: auto, low, medium or high (mode = semantic only).",
        choices=("auto", "low", "medium", "high"),
        flag="--eagerness",
    ),
    Key(
        "session",
        "vad_threshold",
        float,
        0.5,
        "Server VAD activation threshold, 0.0-1.0; higher needs louder speech (mode = vad).",
        minimum=0.0,
        maximum=1.0,
        flag="--vad-threshold",
    ),
    Key(
        "session",
        "prefix_padding_ms",
        int,
        300,
        "Audio kept from before detected speech, in ms (mode = vad).",
        minimum=0,
        maximum=2000,
        flag="--prefix-padding-ms",
    ),
    Key(
        "session",
        "silence_duration_ms",
        int,
        500,
        "Silence that ends a turn, in ms (mode = vad).",
        minimum=50,
        maximum=5000,
        flag="--silence-duration-ms",
    ),
    Key(
        "session",
        "transcription_model",
        str,
        "gpt-4o-mini-transcribe",
        "Model that transcribes your speech. Empty: no transcription of your side.",
        flag="--transcription-model",
    ),
    Key(
        "session",
        "output",
        str,
        "audio",
        "What the assistant answers with: audio (with a transcript) or text.",
        choices=("audio", "text"),
        flag="--output-modality",
    ),
    # [audio]
    Key(
        "audio",
        "input_device",
        str,
        "",
        "Microphone: a device index or a name substring (see `voicecli devices`). Empty: the "
        "system default.",
        flag="--input-device",
        device=True,
    ),
    Key(
        "audio",
        "output_device",
        str,
        "",
        "Speaker: a device index or a name substring. Empty: the system default.",
        flag="--output-device",
        device=True,
    ),
    Key(
        "audio",
        "block_ms",
        int,
        40,
        "Microphone block length in ms (the capture and echo-guard granularity). 40 ms blocks "
        "cost measurably less CPU than 20 and delay nothing that matters: speech is sent in "
        "batches of 40 ms anyway, and the onset of speech reaches the server at most one block "
        "late.",
        minimum=10,
        maximum=100,
        flag="--block-ms",
    ),
    Key(
        "audio",
        "output_block_ms",
        int,
        20,
        "Speaker block length in ms: the output latency grows with it (PortAudio buffers about "
        "two blocks), and a barge-in silences the speaker from the next block on.",
        minimum=10,
        maximum=100,
    ),
    Key(
        "audio",
        "batch_ms",
        int,
        100,
        "While nobody speaks, mic audio is sent in batches this long (fewer wake-ups and "
        "frames: less CPU); the onset of speech is sent at once. Set it to block_ms to send "
        "every block.",
        minimum=10,
        maximum=500,
    ),
    Key(
        "audio",
        "speech_batch_ms",
        int,
        40,
        "Batch length while the server hears you speaking: the end of your speech reaches "
        "its VAD at most this much later. Push-to-talk always sends every block.",
        minimum=10,
        maximum=200,
    ),
    Key(
        "audio",
        "prebuffer_ms",
        int,
        60,
        "How long the first assistant audio of a reply (or after an underrun) waits before "
        "playback starts, in ms; absorbs network jitter.",
        minimum=0,
        maximum=1000,
        flag="--prebuffer-ms",
    ),
    Key(
        "audio",
        "max_stretch_ms",
        int,
        200,
        "When the next assistant audio is late and playback runs low, the queued audio is "
        "played slower by repeating pitch periods (no gap, pitch unchanged); at most this "
        "many ms per stretch of speech. 0 turns it off: late audio then gaps.",
        minimum=0,
        maximum=1000,
    ),
    Key(
        "audio",
        "echo_guard",
        str,
        "gate",
        "Keeping the assistant from hearing itself on speakers: gate (the mic passes only "
        "when clearly louder than the echo of what the speaker played at that moment, so you "
        "can still interrupt by speaking up), half-duplex (mic muted while the assistant is "
        "audible; no barge-in), off (for headphones).",
        choices=("gate", "half-duplex", "off"),
        flag="--echo-guard",
    ),
    Key(
        "audio",
        "echo_margin_db",
        float,
        6.0,
        "Gate: how many dB the mic must be above the loudest echo the playback can explain. "
        "Raise it if the assistant still interrupts itself; lower it to interrupt more easily.",
        minimum=1.0,
        maximum=30.0,
    ),
    Key(
        "audio",
        "ptt_style",
        str,
        "toggle",
        "Push-to-talk key: toggle (press to start, press to send) or hold (talk while held; "
        "needs a terminal that reports key releases).",
        choices=("toggle", "hold"),
        flag="--ptt-style",
    ),
    # [local_server]
    Key(
        "local_server",
        "responder",
        str,
        "speech",
        "What the embedded local server answers with: speech (espeak-ng), echo (your audio "
        "back) or scripted (replays `script`).",
        choices=("speech", "echo", "scripted"),
        flag="--responder",
    ),
    Key(
        "local_server",
        "script",
        str,
        "",
        "JSON Lines script for the scripted responder.",
        flag="--script",
    ),
    Key(
        "local_server",
        "pace",
        float,
        1.0,
        "How fast the local server streams its replies, in wall seconds per second of audio: "
        "1.0 = real time, 0.5 = twice as fast, 0 = all at once.",
        minimum=0.0,
        maximum=10.0,
        flag="--pace",
    ),
    # [history]
    Key(
        "history",
        "enabled",
        bool,
        True,
        "Keep conversations in the local history database.",
        flag="--history",
    ),
    Key(
        "history",
        "path",
        str,
        "",
        "History database file. Empty: $XDG_DATA_HOME/voicecli/history.sqlite3.",
        flag="--history-path",
    ),
    Key(
        "history",
        "record_dir",
        str,
        "",
        "Record each session into this directory: a stereo WAV (mic left, assistant right) and "
        "a JSONL capture of every event both ways (audio elided, API key never written). "
        "Empty: no recording.",
        flag="--record",
    ),
)

KEYS_BY_DOTTED: Mapping[str, Key] = {key.dotted: key for key in KEYS}
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(key.section for key in KEYS))


# --------------------------------------------------------------------------------------------
# Prices
# --------------------------------------------------------------------------------------------

PRICE_FIELDS = (
    "text_input",
    "text_cached_input",
    "text_output",
    "audio_input",
    "audio_cached_input",
    "audio_output",
)


@dataclass(frozen=True, slots=True)
class ModelPrices:
    """USD per 1M tokens, as in `response.done` usage: text and audio, input/cached/output."""

    text_input: float
    text_cached_input: float
    text_output: float
    audio_input: float
    audio_cached_input: float
    audio_output: float


# OpenAI's public prices, USD per 1M tokens, checked 2026 on developers.openai.com model pages.
# gpt-realtime: the same figures are listed for gpt-realtime-1.5 and gpt-realtime-2 (text
# 4 / 0.40 / 16, audio 32 / 0.40 / 64) and match the gpt-realtime GA launch; its own page was
# not in the stored material. gpt-realtime-mini: text input 0.60 is confirmed by the pricing
# page's comparison row; text cached 0.06 and audio 10 / 0.30 / 20 are the gpt-realtime-2.1-mini
# page's figures, assumed equal for gpt-realtime-mini (unconfirmed). Override them in the file.
DEFAULT_PRICES: Mapping[str, ModelPrices] = {
    "gpt-realtime": ModelPrices(4.0, 0.40, 16.0, 32.0, 0.40, 64.0),
    "gpt-realtime-mini": ModelPrices(0.60, 0.06, 2.40, 10.0, 0.30, 20.0),
}


# --------------------------------------------------------------------------------------------
# Effective configuration
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Source:
    """Where an effective value came from."""

    kind: str
    """`default`, `file`, `env` or `flag`."""
    detail: str = ""
    """The file path, the environment variable (with `.env` if it came from there), the flag."""

    def __str__(self) -> str:
        return f"{self.kind} ({self.detail})" if self.detail else self.kind


@dataclass(frozen=True, slots=True)
class ConnectionSection:
    """[connection]: which server, model and wire dialect."""

    server: str
    url: str
    model: str
    dialect: str
    open_timeout: float
    reconnect_attempts: int
    renew_margin_s: float


@dataclass(frozen=True, slots=True)
class SessionSection:
    """[session]: what the assistant is and how turns are taken."""

    voice: str
    instructions: str
    mode: str
    eagerness: str
    vad_threshold: float
    prefix_padding_ms: int
    silence_duration_ms: int
    transcription_model: str
    output: str


@dataclass(frozen=True, slots=True)
class AudioSection:
    """[audio]: devices, block sizes and the echo guard."""

    input_device: str
    output_device: str
    block_ms: int
    output_block_ms: int
    batch_ms: int
    speech_batch_ms: int
    prebuffer_ms: int
    max_stretch_ms: int
    echo_guard: str
    echo_margin_db: float
    ptt_style: str


@dataclass(frozen=True, slots=True)
class LocalServerSection:
    """[local_server]: the embedded server used when there is no OpenAI key."""

    responder: str
    script: str
    pace: float


@dataclass(frozen=True, slots=True)
class HistorySection:
    """[history]: the local conversation database."""

    enabled: bool
    path: str
    """As configured; `Config.history_file` is the resolved path."""
    record_dir: str
    """`--record DIR`: where to record sessions (empty: no recording)."""


_SECTION_CLASSES: Mapping[str, type] = {
    "connection": ConnectionSection,
    "session": SessionSection,
    "audio": AudioSection,
    "local_server": LocalServerSection,
    "history": HistorySection,
}


@dataclass(frozen=True, slots=True)
class ConfigFile:
    """The config file in use: its path, whether it exists, and what chose it."""

    path: Path
    exists: bool
    chosen_by: str
    """`--config`, `VOICECLI_CONFIG` or `default`."""


@dataclass(frozen=True, slots=True)
class Config:
    """The effective configuration. Sections are frozen dataclasses named like the TOML tables."""

    connection: ConnectionSection
    session: SessionSection
    audio: AudioSection
    local_server: LocalServerSection
    history: HistorySection
    prices: Mapping[str, ModelPrices]
    file: ConfigFile
    history_file: Path
    sources: Mapping[str, Source]
    """`"section.key"` (and `"prices.<model>.<field>"`) -> where the value came from."""
    api_key: str | None = field(default=None, repr=False)
    """From OPENAI_API_KEY only. Never print it: use `api_key_redacted`."""
    api_key_source: Source | None = None

    def get(self, dotted: str) -> Any:
        section, name = dotted.split(".", 1)
        return getattr(getattr(self, section), name)

    def source(self, dotted: str) -> Source:
        return self.sources[dotted]

    @property
    def api_key_redacted(self) -> str:
        return redact_key(self.api_key)

    def server_kind(self) -> str:
        """Where `talk` connects: `local` (embedded server), `url` (connection.url) or `openai`.

        `server = local` ignores any url; `openai` uses the url when one is set (a proxy or
        compatible endpoint); `auto` picks the url, else OpenAI when a key is set, else local.
        Raises UsageError when OpenAI is chosen explicitly but no key is set.
        """
        server, url = self.connection.server, self.connection.url
        if server == "local":
            return "local"
        if url:
            return "url"
        if server == "openai":
            if not self.api_key:
                raise UsageError(
                    f"server = openai needs an API key: set {API_KEY_ENV} in the environment "
                    "or in .env, or use --server local"
                )
            return "openai"
        return "openai" if self.api_key else "local"

    def price_for(self, model: str) -> ModelPrices | None:
        """Prices for `model`, matching dated snapshots (`gpt-realtime-2025-08-28`) by prefix."""
        if model in self.prices:
            return self.prices[model]
        # Only a date suffix counts: gpt-realtime-2 or gpt-realtime-mini are other models.
        family = _SNAPSHOT_DATE.sub("", model)
        return self.prices.get(family) if family != model else None


_SNAPSHOT_DATE = re.compile(r"-\d{4}-\d{2}-\d{2}$")


def redact_key(key: str | None) -> str:
    """A key as it may be shown: `sk-...abcd` for long keys, `(set, hidden)` for short ones."""
    if not key:
        return "(not set)"
    if len(key) >= 20:
        return f"{key[:3]}...{key[-4:]}"
    return "(set, hidden)"


# --------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------


def _home(env: Mapping[str, str]) -> Path:
    return Path(env.get("HOME") or Path.home())


def default_config_path(env: Mapping[str, str]) -> Path:
    """`$XDG_CONFIG_HOME/voicecli/config.toml`, XDG_CONFIG_HOME defaulting to ~/.config."""
    base = env.get("XDG_CONFIG_HOME") or str(_home(env) / ".config")
    return Path(base) / "voicecli" / "config.toml"


def default_history_path(env: Mapping[str, str]) -> Path:
    """`$XDG_DATA_HOME/voicecli/history.sqlite3`, XDG_DATA_HOME defaulting to ~/.local/share."""
    base = env.get("XDG_DATA_HOME") or str(_home(env) / ".local" / "share")
    return Path(base) / "voicecli" / "history.sqlite3"


def _expand(path: str, env: Mapping[str, str]) -> Path:
    if path == "~" or path.startswith("~/"):
        return _home(env) / path[2:]
    return Path(path)


def find_config_file(
    config_path: str | None = None,
    env: Mapping[str, str] | None = None,
    dotenv_path: str | Path | None = ".env",
) -> ConfigFile:
    """The config file `load_config` would read (for `voicecli config path`)."""
    real_env = dict(os.environ if env is None else env)
    return locate_config_file(config_path, {**_read_dotenv(dotenv_path), **real_env})


def locate_config_file(config_path: str | None, env: Mapping[str, str]) -> ConfigFile:
    if config_path:
        path, chosen_by = _expand(config_path, env), "--config"
    elif env.get(CONFIG_ENV):
        path, chosen_by = _expand(env[CONFIG_ENV], env), CONFIG_ENV
    else:
        path, chosen_by = default_config_path(env), "default"
    path = path.absolute()
    return ConfigFile(path=path, exists=path.is_file(), chosen_by=chosen_by)


# --------------------------------------------------------------------------------------------
# Values: parsing and validation
# --------------------------------------------------------------------------------------------

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_TYPE_NAMES = {str: "a string", int: "a whole number", float: "a number", bool: "true or false"}


def _convert(key: Key, raw: Any, from_text: bool) -> Any:
    """`raw` as the key's type, or raises ValueError with the problem.

    `from_text` values (environment, flags) are strings to parse; TOML values already carry a
    type, which must match (an int is accepted for a float; a device may be an int or a string).
    """
    if key.device:
        if isinstance(raw, bool) or not isinstance(raw, (int, str)):
            raise ValueError(f"expected a device index or name, got {raw!r}")
        return str(raw)
    if from_text and isinstance(raw, str):
        text = raw.strip()
        if key.type is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise ValueError(f"expected true or false, got {raw!r}")
        if key.type is int:
            try:
                return int(text)
            except ValueError:
                raise ValueError(f"expected a whole number, got {raw!r}") from None
        if key.type is float:
            try:
                return float(text)
            except ValueError:
                raise ValueError(f"expected a number, got {raw!r}") from None
        return raw
    if key.type is float and isinstance(raw, int) and not isinstance(raw, bool):
        return float(raw)
    if (key.type is not bool and isinstance(raw, bool)) or not isinstance(raw, key.type):
        raise ValueError(f"expected {_TYPE_NAMES[key.type]}, got {raw!r}")
    return raw


def _check(key: Key, value: Any) -> None:
    """Raises ValueError when `value` (already of the right type) is not allowed."""
    if key.choices is not None and value not in key.choices:
        if key.dotted == "session.voice":
            raise ValueError(f"unknown voice {value!r}; choose one of {', '.join(key.choices)}")
        hint = _did_you_mean(str(value), key.choices)
        raise ValueError(f"{value!r} is not one of {', '.join(key.choices)}{hint}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    if key.minimum is not None and value < key.minimum:
        raise ValueError(f"{value!r} is below the minimum {_num(key.minimum)}")
    if key.maximum is not None and value > key.maximum:
        raise ValueError(f"{value!r} is above the maximum {_num(key.maximum)}")
    if key.dotted == "connection.model" and not value.strip():
        raise ValueError("the model name cannot be empty")
    if key.dotted == "connection.url" and value:
        check_ws_url(value)


def check_ws_url(url: str) -> None:
    """Raises ValueError unless `url` is a usable ws:// or wss:// URL."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ValueError(f"{url!r} is not a valid URL") from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(
            f"{url!r} is not a WebSocket URL: use ws://HOST:PORT/PATH or wss://HOST/PATH"
        )


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _did_you_mean(word: str, options: Any) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


class _Layers:
    """Effective values and their sources, filled layer by layer (later layers win)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {key.dotted: key.default for key in KEYS}
        self.sources: dict[str, Source] = {key.dotted: Source("default") for key in KEYS}

    def set(self, dotted: str, value: Any, source: Source) -> None:
        self.values[dotted] = value
        self.sources[dotted] = source


def _file_error(path: Path, where: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {problem}" if where else f"{path}: {problem}")


def _read_toml(file: ConfigFile) -> dict[str, Any]:
    if not file.exists:
        if file.chosen_by != "default":
            how = "--config" if file.chosen_by == "--config" else f"${file.chosen_by}"
            raise ConfigError(f"config file {file.path} (from {how}) does not exist")
        return {}
    try:
        with file.path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file.path}: not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file.path}: not valid TOML: the file is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {file.path}: {exc.strerror}") from None


def _looks_like_api_key(name: str) -> bool:
    lowered = name.lower()
    return "api_key" in lowered or "apikey" in lowered or lowered in ("key", "secret", "token")


def _reject_api_key(path: Path, name: str, where: str) -> None:
    if _looks_like_api_key(name):
        raise _file_error(
            path,
            where,
            f"'{name}' is not allowed here: the API key is read only from {API_KEY_ENV} "
            "(environment or .env), never from the config file",
        )


def _apply_file(layers: _Layers, data: Mapping[str, Any], path: Path) -> dict[str, ModelPrices]:
    prices: dict[str, ModelPrices] = dict(DEFAULT_PRICES)
    for section, table in data.items():
        _reject_api_key(path, section, "")
        if section == "prices":
            prices = _read_prices(layers, table, path)
            continue
        if section not in SECTIONS:
            if not isinstance(table, dict):
                homes = [k.section for k in KEYS if k.name == section]
                where = f"the [{homes[0]}] section" if homes else "a section such as [session]"
                raise _file_error(path, "", f"'{section}' must be inside {where}")
            hint = _did_you_mean(section, [*SECTIONS, "prices"])
            raise _file_error(path, "", f"unknown section [{section}]{hint}")
        if not isinstance(table, dict):
            raise _file_error(path, "", f"[{section}] must be a table, got {table!r}")
        for name, raw in table.items():
            where = f"[{section}] {name}"
            _reject_api_key(path, name, f"[{section}]")
            key = KEYS_BY_DOTTED.get(f"{section}.{name}")
            if key is None:
                names = [k.name for k in KEYS if k.section == section]
                raise _file_error(
                    path, "", f"unknown key '{name}' in [{section}]{_did_you_mean(name, names)}"
                )
            try:
                value = _convert(key, raw, from_text=False)
                _check(key, value)
            except ValueError as exc:
                raise _file_error(path, where, str(exc)) from None
            layers.set(key.dotted, value, Source("file", str(path)))
    return prices


def _read_prices(layers: _Layers, table: Any, path: Path) -> dict[str, ModelPrices]:
    prices: dict[str, ModelPrices] = dict(DEFAULT_PRICES)
    if not isinstance(table, dict):
        raise _file_error(path, "", '[prices] must contain tables such as [prices."gpt-realtime"]')
    for model, fields in table.items():
        where = f'[prices."{model}"]'
        if not isinstance(fields, dict):
            raise _file_error(
                path, "", f'prices.{model} must be a table such as [prices."{model}"]'
            )
        base = DEFAULT_PRICES.get(model)
        values: dict[str, float] = {
            name: getattr(base, name) for name in PRICE_FIELDS if base is not None
        }
        for name, raw in fields.items():
            _reject_api_key(path, name, where)
            if name not in PRICE_FIELDS:
                hint = _did_you_mean(name, PRICE_FIELDS)
                raise _file_error(path, where, f"unknown price '{name}'{hint}")
            if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 0:
                raise _file_error(
                    path, f"{where} {name}", f"expected a price in USD (>= 0), got {raw!r}"
                )
            values[name] = float(raw)
            layers.sources[f"prices.{model}.{name}"] = Source("file", str(path))
        missing = [name for name in PRICE_FIELDS if name not in values]
        if missing:
            raise _file_error(
                path, where, f"a model without built-in prices needs all of {', '.join(missing)}"
            )
        prices[model] = ModelPrices(**values)
    return prices


def _apply_env(layers: _Layers, env: Mapping[str, str], from_dotenv: set[str]) -> None:
    for key in KEYS:
        if key.env not in env:
            continue
        raw = env[key.env]
        detail = f"{key.env} from .env" if key.env in from_dotenv else key.env
        try:
            value = _convert(key, raw, from_text=True)
            _check(key, value)
        except ValueError as exc:
            raise ConfigError(f"{detail}: {exc}") from None
        layers.set(key.dotted, value, Source("env", detail))


def _apply_flags(layers: _Layers, overrides: Mapping[str, Any]) -> None:
    for dotted, raw in overrides.items():
        key = KEYS_BY_DOTTED.get(dotted)
        if key is None:
            raise UsageError(f"unknown configuration key {dotted!r}")
        flag = key.flag or dotted
        try:
            value = _convert(key, raw, from_text=True)
            _check(key, value)
        except ValueError as exc:
            raise UsageError(f"{flag}: {exc}") from None
        layers.set(dotted, value, Source("flag", flag))


def _check_combinations(layers: _Layers) -> None:
    """Rules between keys, reported against the source of the value that breaks them."""
    voice, dialect = layers.values["session.voice"], layers.values["connection.dialect"]
    if dialect == "beta" and voice not in BETA_VOICES:
        source = layers.sources["session.voice"]
        problem = (
            f"voice {voice!r} is not available in the beta dialect; choose one of "
            f"{', '.join(BETA_VOICES)} or use --dialect ga"
        )
        if source.kind == "flag":
            raise UsageError(f"{source.detail}: {problem}")
        raise ConfigError(f"{source.detail}: {problem}" if source.detail else problem)


def _read_dotenv(dotenv_path: str | Path | None) -> dict[str, str]:
    if dotenv_path is None or not Path(dotenv_path).is_file():
        return {}
    from dotenv import dotenv_values

    try:
        values = dotenv_values(dotenv_path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {dotenv_path}: {exc}") from None
    return {name: value for name, value in values.items() if value is not None}


def load_config(
    argv_overrides: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_path: str | None = None,
    *,
    dotenv_path: str | Path | None = ".env",
) -> Config:
    """The effective configuration.

    Args:
        argv_overrides: `{"section.key": value}` from flags (see `overrides_from_args`); values
            may be strings (parsed like environment values) or already typed.
        env: the environment (default `os.environ`); never modified.
        config_path: `--config FILE`, or None to use `VOICECLI_CONFIG` / the XDG default.
        dotenv_path: a `.env` file whose variables fill in those missing from `env`
            (default `.env` in the current directory; None to skip).

    Raises:
        ConfigError: a bad file, key, value or environment variable (names which, and why).
        UsageError: a bad flag value.
    """
    real_env = dict(os.environ if env is None else env)
    dotenv = _read_dotenv(dotenv_path)
    from_dotenv = {name for name in dotenv if name not in real_env}
    merged_env = {**dotenv, **real_env}

    file = locate_config_file(config_path, merged_env)
    layers = _Layers()
    prices = _apply_file(layers, _read_toml(file), file.path)
    for model in prices:
        for name in PRICE_FIELDS:
            layers.sources.setdefault(f"prices.{model}.{name}", Source("default"))
    _apply_env(layers, merged_env, from_dotenv)
    _apply_flags(layers, argv_overrides or {})
    _check_combinations(layers)

    sections = {
        name: cls(**{key.name: layers.values[key.dotted] for key in KEYS if key.section == name})
        for name, cls in _SECTION_CLASSES.items()
    }
    history_path = sections["history"].path
    history_file = (
        _expand(history_path, merged_env) if history_path else default_history_path(merged_env)
    )
    api_key = merged_env.get(API_KEY_ENV) or None
    api_key_source = None
    if api_key:
        detail = f"{API_KEY_ENV} from .env" if API_KEY_ENV in from_dotenv else API_KEY_ENV
        api_key_source = Source("env", detail)
    return Config(
        **sections,
        prices=prices,
        file=file,
        history_file=history_file,
        sources=dict(layers.sources),
        api_key=api_key,
        api_key_source=api_key_source,
    )


# --------------------------------------------------------------------------------------------
# Shared command-line flags
# --------------------------------------------------------------------------------------------

_DEST_PREFIX = "cfg."


def add_config_arguments(
    parser: argparse.ArgumentParser, sections: tuple[str, ...] | None = None
) -> None:
    """Add `--config` and the flags of the keys in `sections` (default: all) to `parser`.

    Flags that are not given leave no trace (`argparse.SUPPRESS`), so the environment and the
    file still apply; `overrides_from_args(args)` collects the ones that were given.
    """
    parser.add_argument(
        "--config",
        dest="config_path",
        metavar="FILE",
        help=f"config file (default: ${CONFIG_ENV} or ~/.config/voicecli/config.toml)",
    )
    wanted = SECTIONS if sections is None else sections
    for section in wanted:
        if section not in SECTIONS:
            raise ValueError(f"unknown config section {section!r}")
        group = parser.add_argument_group(f"[{section}] settings (override file and environment)")
        for key in KEYS:
            if key.section != section or key.flag is None:
                continue
            dest = _DEST_PREFIX + key.dotted
            if key.type is bool:
                group.add_argument(
                    key.flag,
                    dest=dest,
                    action=argparse.BooleanOptionalAction,
                    default=argparse.SUPPRESS,
                    help=key.help,
                )
                continue
            metavar = "{" + ",".join(key.choices) + "}" if key.choices else key.name.upper()
            group.add_argument(
                key.flag, dest=dest, metavar=metavar, default=argparse.SUPPRESS, help=key.help
            )


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The `{"section.key": value}` overrides of the shared flags that were given."""
    return {
        dest[len(_DEST_PREFIX) :]: value
        for dest, value in vars(args).items()
        if dest.startswith(_DEST_PREFIX)
    }


def config_from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Config:
    """`load_config` for a command whose parser got `add_config_arguments`."""
    return load_config(overrides_from_args(args), env, getattr(args, "config_path", None))


# --------------------------------------------------------------------------------------------
# config.example.toml
# --------------------------------------------------------------------------------------------


def toml_value(value: Any) -> str:
    """A TOML literal for a str/int/float/bool value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _wrap(text: str, width: int = 96) -> list[str]:
    return textwrap.wrap(text, width=width - 2) or [""]


def example_toml() -> str:
    """The text of `config.example.toml`: every key with its default, help, env and flag."""
    lines = [
        "# voicecli configuration: every key, set to its default.",
        "#",
        "# Copy to ~/.config/voicecli/config.toml (or point --config / $VOICECLI_CONFIG at it)",
        "# and keep only what you change. Precedence: flags > VOICECLI_* environment > this file",
        "# > defaults. A .env file in the current directory fills in unset environment variables.",
        "#",
        "# The API key is NOT set here: voicecli reads it only from OPENAI_API_KEY (environment",
        "# or .env) and always shows it redacted.",
    ]
    for section in SECTIONS:
        lines += ["", f"[{section}]"]
        for key in KEYS:
            if key.section != section:
                continue
            lines.append("")
            lines += [f"# {line}" for line in _wrap(key.help)]
            overrides = f"env {key.env}" + (f", flag {key.flag}" if key.flag else "")
            lines.append(f"# ({overrides})")
            lines.append(f"{key.name} = {toml_value(key.default)}")
    lines += [
        "",
        "# Prices in USD per 1M tokens, used for the cost shown per turn. Override a model's",
        "# figures, or add a model (then all six are needed). Dated snapshots such as",
        '# "gpt-realtime-2025-08-28" use the prices of their family name.',
    ]
    for model, prices in DEFAULT_PRICES.items():
        lines += ["", f'[prices."{model}"]']
        lines += [f"{name} = {toml_value(getattr(prices, name))}" for name in PRICE_FIELDS]
    return "\n".join(lines) + "\n"


def _main() -> int:  # pragma: no cover - developer helper
    """`python -m voicecli.config > config.example.toml` regenerates the example file."""
    print(example_toml(), end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(_main())
