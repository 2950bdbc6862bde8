"""The history database's schema and its migrations.

`MIGRATIONS[n]` upgrades a version-`n` database to version `n + 1`; the store runs the missing
steps in one write transaction and records the result in `PRAGMA user_version`. To change the
schema, append a step (never edit a released one) and the store picks it up.

`APPLICATION_ID` marks the file as voicecli's (`PRAGMA application_id`), so the store refuses
to write into some other program's database.

Imports: standard library only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence


__all__ = ["APPLICATION_ID", "KINDS", "MIGRATIONS", "ROLES", "SCHEMA_VERSION"]

APPLICATION_ID = 0x56434C49
"""`PRAGMA application_id` of a voicecli history file ("VCLI"), so other databases are refused."""

ROLES = ("user", "assistant", "tool", "notice", "error")
"""Who a line is from: the user, the assistant, a function call or its output, or voicecli."""

KINDS = ("voice", "typed", "text", "system")
"""How it was said: spoken (user speech, assistant audio), typed by the user, assistant text
without audio, or a line voicecli added (notices, errors, tool calls)."""


_SCHEMA_V1 = """
CREATE TABLE conversations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so an old id stays unknown
    started_at  REAL NOT NULL,                      -- Unix seconds
    ended_at    REAL,
    end_reason  TEXT,
    model       TEXT,
    voice       TEXT,
    dialect     TEXT,
    server_url  TEXT                                -- without credentials
);
CREATE INDEX conversations_started ON conversations (started_at);

CREATE TABLE messages (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id     INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq                 INTEGER NOT NULL,
    role                TEXT NOT NULL
                        CHECK (role IN ('user', 'assistant', 'tool', 'notice', 'error')),
    kind                TEXT NOT NULL CHECK (kind IN ('voice', 'typed', 'text', 'system')),
    text                TEXT NOT NULL DEFAULT '',
    full_text           TEXT,
    pending             INTEGER NOT NULL DEFAULT 0,
    item_id             TEXT,
    response_id         TEXT,
    interrupted         INTEGER NOT NULL DEFAULT 0,
    heard_ms            INTEGER,
    started_at          REAL,
    ended_at            REAL,
    response_ms         REAL,
    ttfb_ms             REAL,
    first_text_ms       REAL,
    ttfa_ms             REAL,
    total_ms            REAL,
    audio_ms            REAL,
    input_tokens        INTEGER,
    output_tokens       INTEGER,
    input_text_tokens   INTEGER,
    input_audio_tokens  INTEGER,
    cached_tokens       INTEGER,
    cached_text_tokens  INTEGER,
    cached_audio_tokens INTEGER,
    output_text_tokens  INTEGER,
    output_audio_tokens INTEGER,
    cost_usd            REAL,
    UNIQUE (conversation_id, seq)
);
CREATE INDEX messages_item ON messages (conversation_id, item_id);
"""


def _statements(script: str) -> list[str]:
    """The statements of a schema script (whose comments hold no semicolons)."""
    return [statement.strip() for statement in script.split(";") if statement.strip()]


def _migrate_to_1(db: sqlite3.Connection) -> None:
    # One statement at a time: `executescript` would COMMIT the migration's transaction.
    for statement in _statements(_SCHEMA_V1):
        db.execute(statement)


MIGRATIONS: Sequence[Callable[[sqlite3.Connection], None]] = (_migrate_to_1,)
"""`MIGRATIONS[n]` upgrades a version-`n` database to version `n + 1` (inside a transaction)."""

SCHEMA_VERSION = len(MIGRATIONS)
