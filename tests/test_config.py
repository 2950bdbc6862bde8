"""Configuration: precedence (defaults < file < env < flags), sources, `.env`, file location,
validation errors (one sentence naming the file/variable/flag, the key and the problem), the API
key rule, prices, the shared flags, and config.example.toml matching the key table."""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

import pytest

from voicecli.config import (
    BETA_VOICES,
    DEFAULT_PRICES,
    GA_VOICES,
    KEYS,
    PRICE_FIELDS,
    Config,
    ModelPrices,
    Source,
    add_config_arguments,
    example_toml,
    find_config_file,
    load_config,
    overrides_from_args,
    redact_key,
)
from voicecli.errors import ConfigError, UsageError


REPO = Path(__file__).resolve().parent.parent
FAKE_KEY = "sk-proj-FAKEFAKEFAKE-0123456789-wxyz"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


def load(
    home: Path,
    file_text: str | None = None,
    env: dict[str, str] | None = None,
    flags: dict[str, Any] | None = None,
    dotenv_text: str | None = None,
) -> Config:
    """load_config with a private HOME, an optional config file and .env."""
    config_path = None
    if file_text is not None:
        config_path = home / "voicecli.toml"
        config_path.write_text(file_text)
    dotenv_path = None
    if dotenv_text is not None:
        dotenv_path = home / ".env"
        dotenv_path.write_text(dotenv_text)
    full_env = {"HOME": str(home), **(env or {})}
    return load_config(
        flags or {}, full_env, str(config_path) if config_path else None, dotenv_path=dotenv_path
    )


# --- defaults and precedence -----------------------------------------------------------------


def test_defaults_come_from_the_key_table(home: Path) -> None:
    config = load(home)
    for key in KEYS:
        assert config.get(key.dotted) == key.default, key.dotted
        assert config.source(key.dotted) == Source("default")
    assert dict(config.prices) == dict(DEFAULT_PRICES)
    assert config.api_key is None and config.api_key_redacted == "(not set)"
    assert config.file.path == home / ".config" / "voicecli" / "config.toml"
    assert not config.file.exists and config.file.chosen_by == "default"
    assert config.history_file == home / ".local" / "share" / "voicecli" / "history.sqlite3"


def test_flag_beats_env_beats_file_beats_default(home: Path) -> None:
    file_text = '[session]\nvoice = "ash"\nmode = "ptt"\n[audio]\nblock_ms = 40\n'
    env = {"VOICECLI_SESSION_VOICE": "coral", "VOICECLI_AUDIO_BLOCK_MS": "30"}
    flags = {"session.voice": "sage"}
    config = load(home, file_text, env, flags)
    path = str(home / "voicecli.toml")

    assert config.session.voice == "sage"
    assert config.source("session.voice") == Source("flag", "--voice")
    assert config.audio.block_ms == 30
    assert config.source("audio.block_ms") == Source("env", "VOICECLI_AUDIO_BLOCK_MS")
    assert config.session.mode == "ptt"
    assert config.source("session.mode") == Source("file", path)
    assert config.session.eagerness == "auto"
    assert config.source("session.eagerness") == Source("default")


def test_typed_values_from_env_and_flags(home: Path) -> None:
    env = {
        "VOICECLI_HISTORY_ENABLED": "off",
        "VOICECLI_SESSION_VAD_THRESHOLD": "0.75",
        "VOICECLI_LOCAL_SERVER_PACE": "4",
    }
    config = load(home, env=env, flags={"audio.prebuffer_ms": "120", "audio.input_device": "3"})
    assert config.history.enabled is False
    assert config.session.vad_threshold == 0.75
    assert config.local_server.pace == 4.0
    assert config.audio.prebuffer_ms == 120
    assert config.audio.input_device == "3"


def test_toml_types(home: Path) -> None:
    config = load(
        home,
        '[audio]\ninput_device = 2\noutput_device = "USB"\n'
        "[connection]\nopen_timeout = 5\n[history]\nenabled = false\n",
    )
    assert config.audio.input_device == "2"  # an index, kept as text for the device resolver
    assert config.audio.output_device == "USB"
    assert config.connection.open_timeout == 5.0 and isinstance(
        config.connection.open_timeout, float
    )
    assert config.history.enabled is False


def test_dotenv_fills_in_but_never_overrides_the_environment(home: Path) -> None:
    dotenv = (
        f"OPENAI_API_KEY={FAKE_KEY}\n"
        "VOICECLI_SESSION_VOICE=verse\n"
        "VOICECLI_CONNECTION_MODEL=from-dotenv\n"
    )
    config = load(home, env={"VOICECLI_CONNECTION_MODEL": "from-env"}, dotenv_text=dotenv)
    assert config.api_key == FAKE_KEY
    assert config.api_key_source == Source("env", "OPENAI_API_KEY from .env")
    assert config.session.voice == "verse"
    assert config.source("session.voice") == Source("env", "VOICECLI_SESSION_VOICE from .env")
    assert config.connection.model == "from-env"
    assert config.source("connection.model") == Source("env", "VOICECLI_CONNECTION_MODEL")


def test_real_environment_key_wins_over_dotenv(home: Path) -> None:
    config = load(home, env={"OPENAI_API_KEY": FAKE_KEY}, dotenv_text="OPENAI_API_KEY=sk-other\n")
    assert config.api_key == FAKE_KEY
    assert config.api_key_source == Source("env", "OPENAI_API_KEY")


def test_unknown_voicecli_environment_variables_are_ignored(home: Path) -> None:
    config = load(home, env={"VOICECLI_TEST_PA_DIR": "/tmp/x", "VOICECLI_SESION_VOICE": "x"})
    assert config.session.voice == "alloy"


# --- where the file is ---------------------------------------------------------------------


def test_config_file_location_order(home: Path, tmp_path: Path) -> None:
    env = {"HOME": str(home)}
    assert find_config_file(None, env, None).path == home / ".config/voicecli/config.toml"
    xdg = tmp_path / "xdg"
    env["XDG_CONFIG_HOME"] = str(xdg)
    assert find_config_file(None, env, None).path == xdg / "voicecli/config.toml"
    named = tmp_path / "named.toml"
    env["VOICECLI_CONFIG"] = str(named)
    located = find_config_file(None, env, None)
    assert (located.path, located.chosen_by, located.exists) == (named, "VOICECLI_CONFIG", False)
    flagged = tmp_path / "flag.toml"
    flagged.write_text("")
    located = find_config_file(str(flagged), env, None)
    assert (located.path, located.chosen_by, located.exists) == (flagged, "--config", True)


def test_the_default_file_is_read_when_present(home: Path) -> None:
    path = home / ".config" / "voicecli" / "config.toml"
    path.parent.mkdir(parents=True)
    path.write_text('[connection]\nmodel = "gpt-realtime-mini"\n')
    config = load(home)
    assert config.connection.model == "gpt-realtime-mini"
    assert config.source("connection.model") == Source("file", str(path))
    assert config.file.exists


def test_a_named_file_must_exist(home: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match=f"^config file {missing} \\(from --config\\) does not"):
        load_config({}, {"HOME": str(home)}, str(missing), dotenv_path=None)
    with pytest.raises(ConfigError, match=r"\(from \$VOICECLI_CONFIG\) does not exist$"):
        load_config(
            {}, {"HOME": str(home), "VOICECLI_CONFIG": str(missing)}, None, dotenv_path=None
        )


# --- validation errors ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_text", "problem"),
    [
        ("[sesion]\nvoice = 'ash'\n", "unknown section [sesion] (did you mean 'session'?)"),
        ("[session]\nvoise = 'ash'\n", "unknown key 'voise' in [session] (did you mean 'voice'?)"),
        ("voice = 'ash'\n", "'voice' must be inside the [session] section"),
        ("[audio]\nblock_ms = 'fast'\n", "[audio] block_ms: expected a whole number, got 'fast'"),
        ("[audio]\nblock_ms = 25.5\n", "[audio] block_ms: expected a whole number, got 25.5"),
        ("[audio]\nblock_ms = 5\n", "[audio] block_ms: 5 is below the minimum 10"),
        ("[audio]\nblock_ms = 500\n", "[audio] block_ms: 500 is above the maximum 100"),
        ("[session]\nvad_threshold = 1.5\n", "[session] vad_threshold: 1.5 is above the maximum 1"),
        ("[session]\nvad_threshold = nan\n", "[session] vad_threshold: expected a finite number"),
        ("[history]\nenabled = 'yes'\n", "[history] enabled: expected true or false, got 'yes'"),
        ("[session]\nmode = 'vadd'\n", "[session] mode: 'vadd' is not one of vad, semantic, ptt"),
        ("[session]\nvoice = 'bob'\n", "[session] voice: unknown voice 'bob'; choose one of alloy"),
        ("[connection]\nurl = 'http://x'\n", "[connection] url: 'http://x' is not a WebSocket URL"),
        ("[connection]\nmodel = ''\n", "[connection] model: the model name cannot be empty"),
        ("[audio]\ninput_device = true\n", "[audio] input_device: expected a device index or name"),
        ("[session\nvoice = 1\n", "not valid TOML: "),
        ("[prices.gpt-realtime]\naudio_input = -1\n", "audio_input: expected a price in USD"),
        ("[prices.'gpt-realtime']\naudio_in = 1\n", "unknown price 'audio_in' (did you mean"),
        ("[prices.'new-model']\naudio_input = 1\n", "a model without built-in prices needs all"),
    ],
)
def test_bad_file_is_one_sentence_naming_file_key_and_problem(
    home: Path, file_text: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(home, file_text)
    message = str(caught.value)
    assert message.startswith(f"{home / 'voicecli.toml'}: ")
    assert problem in message
    assert "\n" not in message


def test_a_file_that_is_not_utf8_is_one_sentence(home: Path) -> None:
    path = home / "latin1.toml"
    path.write_bytes("[session]\ninstructions = 'caf\u00e9'\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_config({}, {"HOME": str(home)}, str(path), dotenv_path=None)
    assert str(caught.value) == f"{path}: not valid TOML: the file is not UTF-8 text"


@pytest.mark.parametrize(
    "file_text",
    [
        "[connection]\napi_key = 'sk-123'\n",
        "[connection]\nopenai_api_key = 'sk-123'\n",
        "api_key = 'sk-123'\n",
    ],
)
def test_api_key_in_the_file_is_rejected(home: Path, file_text: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(home, file_text)
    message = str(caught.value)
    assert "the API key is read only from OPENAI_API_KEY" in message
    assert "sk-123" not in message


def test_bad_environment_value_names_the_variable(home: Path) -> None:
    with pytest.raises(ConfigError, match=r"^VOICECLI_AUDIO_BLOCK_MS: expected a whole number"):
        load(home, env={"VOICECLI_AUDIO_BLOCK_MS": "twenty"})
    with pytest.raises(ConfigError, match=r"^VOICECLI_SESSION_VOICE from \.env: unknown voice"):
        load(home, dotenv_text="VOICECLI_SESSION_VOICE=bob\n")


def test_bad_flag_value_is_a_usage_error_naming_the_flag(home: Path) -> None:
    with pytest.raises(UsageError, match=r"^--voice: unknown voice 'bob'; choose one of alloy, "):
        load(home, flags={"session.voice": "bob"})
    with pytest.raises(UsageError, match=r"^--url: 'http://x' is not a WebSocket URL"):
        load(home, flags={"connection.url": "http://x"})
    with pytest.raises(UsageError, match=r"^--pace: -1\.0 is below the minimum 0$"):
        load(home, flags={"local_server.pace": "-1"})
    assert load(home, flags={"local_server.pace": "0"}).local_server.pace == 0.0


def test_voices_depend_on_the_dialect(home: Path) -> None:
    assert set(GA_VOICES) - set(BETA_VOICES) == {"marin", "cedar"}
    for voice in GA_VOICES:
        assert load(home, flags={"session.voice": voice}).session.voice == voice
    for voice in BETA_VOICES:
        config = load(home, flags={"session.voice": voice, "connection.dialect": "beta"})
        assert config.session.voice == voice
    with pytest.raises(UsageError, match="^--voice: voice 'marin' is not available in the beta"):
        load(home, flags={"session.voice": "marin", "connection.dialect": "beta"})
    with pytest.raises(ConfigError, match=r"voicecli\.toml: voice 'cedar' is not available"):
        load(home, '[session]\nvoice = "cedar"\n', flags={"connection.dialect": "beta"})


# --- the API key -----------------------------------------------------------------------------


def test_api_key_is_redacted_everywhere_it_is_shown(home: Path) -> None:
    config = load(home, env={"OPENAI_API_KEY": FAKE_KEY})
    assert config.api_key_redacted == "sk-...wxyz"
    assert FAKE_KEY not in repr(config)
    assert redact_key("short-key") == "(set, hidden)"
    assert redact_key("") == "(not set)" and redact_key(None) == "(not set)"


@pytest.mark.parametrize(
    ("server", "url", "key", "kind"),
    [
        ("auto", "", None, "local"),
        ("auto", "", FAKE_KEY, "openai"),
        ("auto", "ws://127.0.0.1:1/", FAKE_KEY, "url"),
        ("local", "ws://127.0.0.1:1/", FAKE_KEY, "local"),
        ("openai", "", FAKE_KEY, "openai"),
        ("openai", "wss://proxy.example/v1/realtime", None, "url"),
    ],
)
def test_server_choice(home: Path, server: str, url: str, key: str | None, kind: str) -> None:
    env = {"OPENAI_API_KEY": key} if key else {}
    config = load(home, env=env, flags={"connection.server": server, "connection.url": url})
    assert config.server_kind() == kind


def test_openai_without_a_key_is_a_usage_error(home: Path) -> None:
    config = load(home, flags={"connection.server": "openai"})
    with pytest.raises(UsageError, match="^server = openai needs an API key: set OPENAI_API_KEY"):
        config.server_kind()


# --- prices ----------------------------------------------------------------------------------


def test_prices_override_per_model_and_add_models(home: Path) -> None:
    new_model = "\n".join(f"{name} = {i}.5" for i, name in enumerate(PRICE_FIELDS))
    config = load(
        home,
        '[prices."gpt-realtime"]\naudio_output = 50\n[prices."my-model"]\n' + new_model + "\n",
    )
    assert config.prices["gpt-realtime"] == ModelPrices(4.0, 0.40, 16.0, 32.0, 0.40, 50.0)
    assert config.source("prices.gpt-realtime.audio_output").kind == "file"
    assert config.source("prices.gpt-realtime.audio_input").kind == "default"
    assert config.prices["my-model"] == ModelPrices(0.5, 1.5, 2.5, 3.5, 4.5, 5.5)
    assert config.prices["gpt-realtime-mini"] == DEFAULT_PRICES["gpt-realtime-mini"]


def test_price_for_matches_dated_snapshots_only(home: Path) -> None:
    config = load(home)
    assert config.price_for("gpt-realtime") is DEFAULT_PRICES["gpt-realtime"]
    assert config.price_for("gpt-realtime-2025-08-28") is DEFAULT_PRICES["gpt-realtime"]
    mini = DEFAULT_PRICES["gpt-realtime-mini"]
    assert config.price_for("gpt-realtime-mini-2025-10-06") is mini
    assert config.price_for("gpt-realtime-2") is None  # another model, other prices
    assert config.price_for("something-else") is None


# --- shared flags ----------------------------------------------------------------------------


def test_shared_flags_given_become_overrides_and_absent_ones_leave_no_trace() -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(
        [
            "--config",
            "x.toml",
            "--voice",
            "ash",
            "--no-history",
            "--url",
            "ws://h:1/",
            "--pace",
            "2",
        ]
    )
    assert args.config_path == "x.toml"
    assert overrides_from_args(args) == {
        "session.voice": "ash",
        "history.enabled": False,
        "connection.url": "ws://h:1/",
        "local_server.pace": "2",
    }
    assert overrides_from_args(parser.parse_args([])) == {}


def test_shared_flags_for_some_sections_only() -> None:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, sections=("connection",))
    assert overrides_from_args(parser.parse_args(["--model", "m"])) == {"connection.model": "m"}
    with pytest.raises(SystemExit):
        parser.parse_args(["--voice", "ash"])
    with pytest.raises(ValueError, match="unknown config section"):
        add_config_arguments(argparse.ArgumentParser(), sections=("nope",))


def test_every_key_with_a_flag_has_a_unique_flag() -> None:
    flags = [key.flag for key in KEYS if key.flag]
    assert len(flags) == len(set(flags))
    envs = [key.env for key in KEYS]
    assert len(envs) == len(set(envs))


# --- config.example.toml -----------------------------------------------------------------------


def test_example_file_is_generated_from_the_key_table() -> None:
    text = (REPO / "config.example.toml").read_text()
    assert text == example_toml(), (
        "regenerate: .venv/bin/python -m voicecli.config > config.example.toml"
    )


def test_example_file_documents_exactly_the_keys_with_their_defaults() -> None:
    text = (REPO / "config.example.toml").read_text()
    data = tomllib.loads(text)
    prices = data.pop("prices")
    documented = {
        (section, key): value for section, table in data.items() for key, value in table.items()
    }
    assert documented == {(key.section, key.name): key.default for key in KEYS}
    assert prices == {
        model: {name: getattr(p, name) for name in PRICE_FIELDS}
        for model, p in DEFAULT_PRICES.items()
    }
    for key in KEYS:
        assert key.env in text and key.help.split()[0] in text


def test_example_file_loads_to_the_defaults(home: Path) -> None:
    config = load_config(
        {}, {"HOME": str(home)}, str(REPO / "config.example.toml"), dotenv_path=None
    )
    defaults = load(home)
    for key in KEYS:
        assert config.get(key.dotted) == defaults.get(key.dotted)
    assert config.prices == defaults.prices
