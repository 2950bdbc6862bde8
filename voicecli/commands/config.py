"""`voicecli config path` and `voicecli config show`: where the config file is, and every
effective setting with the place it came from (default, file, env, flag).

The API key is only ever shown redacted.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any


if TYPE_CHECKING:
    from voicecli.config import Config


__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    from voicecli.config import add_config_arguments

    parser = subparsers.add_parser(
        "config",
        help="show the config file location and the effective settings",
        description="Show where the config file is and the effective settings with their source.",
    )
    actions = parser.add_subparsers(dest="config_action", metavar="ACTION")
    path = actions.add_parser("path", help="print the config file path and whether it exists")
    path.add_argument("--config", dest="config_path", metavar="FILE", help="config file to use")
    path.set_defaults(func=run)
    show = actions.add_parser(
        "show",
        help="print every effective setting and its source",
        description="Print every effective setting and where it came from: default, the config "
        "file, a VOICECLI_* environment variable, or a flag given here.",
    )
    show.add_argument("--json", action="store_true", help="print JSON instead of a table")
    add_config_arguments(show)
    show.set_defaults(func=run)
    parser.set_defaults(func=run, config_action=None)


def run(args: argparse.Namespace) -> int:
    from voicecli.config import config_from_args, find_config_file
    from voicecli.errors import UsageError

    if args.config_action is None:
        raise UsageError("say what to do: 'voicecli config path' or 'voicecli config show'")
    if args.config_action == "path":
        file = find_config_file(args.config_path)
        state = "exists" if file.exists else "does not exist"
        print(f"{file.path} ({state}; chosen by {file.chosen_by})")
        return 0
    config = config_from_args(args)
    if args.json:
        print(json.dumps(_as_json(config), indent=2))
    else:
        print("\n".join(_as_table(config)))
    return 0


def _resolved_server(config: Config) -> str:
    from voicecli.errors import VoiceCliError

    try:
        kind = config.server_kind()
    except VoiceCliError as exc:
        return f"unusable: {exc}"
    return {
        "local": "the embedded local server",
        "url": config.connection.url,
        "openai": "OpenAI (wss://api.openai.com/v1/realtime)",
    }[kind]


def _as_table(config: Config) -> list[str]:
    from voicecli.config import KEYS, PRICE_FIELDS, SECTIONS, toml_value

    file = config.file
    state = "exists" if file.exists else "not found, using defaults"
    lines = [f"config file: {file.path} ({state}; chosen by {file.chosen_by})"]
    rows: list[tuple[str, str, str]] = []
    for section in SECTIONS:
        rows.append((f"[{section}]", "", ""))
        for key in KEYS:
            if key.section == section:
                value = toml_value(config.get(key.dotted))
                rows.append((f"  {key.name}", value, str(config.source(key.dotted))))
    for model, prices in config.prices.items():
        rows.append((f'[prices."{model}"]', "", ""))
        for name in PRICE_FIELDS:
            source = config.sources.get(f"prices.{model}.{name}")
            rows.append((f"  {name}", toml_value(getattr(prices, name)), str(source or "file")))
    name_width = max(len(name) for name, value, _ in rows if value)
    value_width = min(max(len(value) for _, value, _ in rows), 40)
    for name, value, source in rows:
        if not value and not source:
            lines += ["", name]
        else:
            lines.append(f"{name:<{name_width}} = {value:<{value_width}}  {source}")
    key_source = f"  {config.api_key_source}" if config.api_key_source else ""
    lines += [
        "",
        f"api key: {config.api_key_redacted}{key_source}",
        f"connects to: {_resolved_server(config)}",
        f"history file: {config.history_file}",
    ]
    return lines


def _as_json(config: Config) -> dict[str, Any]:
    from voicecli.config import KEYS, PRICE_FIELDS

    def entry(value: Any, source: Any) -> dict[str, Any]:
        return {"value": value, "source": source.kind, "detail": source.detail}

    values = {key.dotted: entry(config.get(key.dotted), config.source(key.dotted)) for key in KEYS}
    prices = {
        model: {
            name: entry(getattr(prices, name), config.sources[f"prices.{model}.{name}"])
            for name in PRICE_FIELDS
        }
        for model, prices in config.prices.items()
    }
    return {
        "file": {
            "path": str(config.file.path),
            "exists": config.file.exists,
            "chosen_by": config.file.chosen_by,
        },
        "values": values,
        "prices": prices,
        "api_key": config.api_key_redacted,
        "connects_to": _resolved_server(config),
        "history_file": str(config.history_file),
    }
