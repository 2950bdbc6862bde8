"""One module per `voicecli` subcommand.

Each module exposes `register(subparsers)` that adds its parser and sets `func` to a
`run(args) -> int`. Heavy imports (Textual, sounddevice, websockets) happen inside `run`, so
`voicecli --help` and the light commands start fast.
"""

COMMANDS = ("talk", "serve", "smoke", "devices", "doctor", "config", "history")
