"""Durable conversation history: every completed line of a talk session in a SQLite file.

- `store` — `HistoryStore`: the database (schema, migrations, writes committed per line,
  reading, search, delete) and `safe_url` (server URLs without credentials).
- `recorder` — `HistoryRecorder` / `attach(engine, store)`: turns a talk session's transcript
  lines and turn metrics into store calls as they complete.
- `export` — the `history list` table, the `show` view, and Markdown / JSON / text exports.

The database lives at `Config.history_file` (`$XDG_DATA_HOME/voicecli/history.sqlite3` unless
`[history] path` says otherwise). No UI here; `voicecli.commands.history` is the command line.
"""

from __future__ import annotations

from voicecli.history.store import (
    ConversationRecord,
    HistoryError,
    HistoryStore,
    MessageFigures,
    MessageRecord,
    SearchHit,
    safe_url,
)


__all__ = [
    "ConversationRecord",
    "HistoryError",
    "HistoryStore",
    "MessageFigures",
    "MessageRecord",
    "SearchHit",
    "safe_url",
]
