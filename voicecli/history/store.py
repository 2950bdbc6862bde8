"""The conversation history database: conversations and their lines in one SQLite file.

`HistoryStore` wraps a stdlib `sqlite3` connection. Every write method is its own transaction
and has committed when it returns, so a talk session writes each line the moment it completes
and a crash (even SIGKILL) loses nothing that was written:

    store = HistoryStore.open(config.history_file, redact=[config.api_key])
    conversation = store.begin_conversation(model="gpt-realtime", voice="alloy", dialect="ga",
                                            server_url=url)
    line = store.add_message(conversation, role="user", kind="voice", text="", pending=True,
                             item_id="item_1")          # a placeholder: transcript still coming
    store.update_message(line, text="What's the time?", pending=False)   # it arrived late
    reply = store.add_message(conversation, role="assistant", text="It is noon.",
                              item_id="item_2", response_id="resp_1",
                              figures=MessageFigures(ttfb_ms=812, input_tokens=540))
    store.update_message(reply, interrupted=True, heard_ms=1200, text="It is")
    store.end_conversation(conversation, "user quit")

Durability: WAL journal with `synchronous=NORMAL` by default. A commit then returns once the
transaction is in the WAL file (handed to the OS, no fsync), which survives the process being
killed at any moment; the database can never be corrupted, and only a power loss or kernel
crash can drop the last few commits. `synchronous=FULL` would add an fsync per line; it is
offered as `durability="full"`, but it is not the default because the writes happen on the
asyncio thread that feeds the audio, where an fsync on a busy laptop disk can stall for tens
of milliseconds (on the development VM a commit took ~0.02 ms with NORMAL, ~0.27 ms with
FULL; a loaded laptop disk can be a hundred times slower).

Privacy: server URLs are stored through `safe_url` (no userinfo, no key-like query
parameters), every text written passes through the `redact` list (the API key), deleted rows
are overwritten (`secure_delete`) and the WAL is checkpointed after a delete.

The schema and its migrations are in `voicecli.history.schema`; a file written by a newer
voicecli is refused, not guessed at, and one from another program is never written into.

Imports: standard library only.
"""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from voicecli.errors import VoiceCliError
from voicecli.history.schema import APPLICATION_ID, KINDS, MIGRATIONS, ROLES, SCHEMA_VERSION


if TYPE_CHECKING:
    from voicecli.config import Config
    from voicecli.metrics import TurnMetrics


__all__ = [
    "ConversationRecord",
    "HistoryError",
    "HistoryStore",
    "MessageFigures",
    "MessageRecord",
    "SearchHit",
    "safe_url",
]

REDACTED = "[redacted]"


class HistoryError(VoiceCliError):
    """The history database cannot be opened, read or written, or an id is unknown."""

    exit_code = 2


# --------------------------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageFigures:
    """Per-turn figures stored on an assistant line: latency (ms), usage (tokens), cost (USD).

    Every field is optional: None means not measured. Latencies follow `voicecli.metrics`.
    """

    response_ms: float | None = None
    ttfb_ms: float | None = None
    first_text_ms: float | None = None
    ttfa_ms: float | None = None
    total_ms: float | None = None
    audio_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    input_text_tokens: int | None = None
    input_audio_tokens: int | None = None
    cached_tokens: int | None = None
    cached_text_tokens: int | None = None
    cached_audio_tokens: int | None = None
    output_text_tokens: int | None = None
    output_audio_tokens: int | None = None
    cost_usd: float | None = None

    @classmethod
    def from_turn(cls, turn: TurnMetrics) -> MessageFigures:
        """The figures of a `voicecli.metrics.TurnMetrics` (usage only when the server sent it)."""
        usage = turn.usage
        tokens: dict[str, int | None] = {}
        for name in _USAGE_FIELDS:
            tokens[name] = getattr(usage, name) if usage is not None else None
        return cls(
            response_ms=turn.response_ms,
            ttfb_ms=turn.ttfb_ms,
            first_text_ms=turn.first_text_ms,
            ttfa_ms=turn.ttfa_ms,
            total_ms=turn.total_ms,
            audio_ms=turn.audio_ms or None,
            cost_usd=turn.cost_usd,
            **tokens,
        )

    @property
    def empty(self) -> bool:
        return all(getattr(self, name) is None for name in FIGURE_FIELDS)


FIGURE_FIELDS = tuple(f.name for f in fields(MessageFigures))
_USAGE_FIELDS = tuple(name for name in FIGURE_FIELDS if name.endswith("_tokens"))


@dataclass(frozen=True, slots=True)
class ConversationRecord:
    """One conversation. Times are Unix seconds."""

    id: int
    started_at: float
    ended_at: float | None
    end_reason: str | None
    """Why it ended (`user quit`, a connection error, ...); None if it never ended cleanly."""
    model: str | None
    voice: str | None
    dialect: str | None
    server_url: str | None
    """Without credentials (see `safe_url`)."""
    message_count: int = 0
    last_activity_at: float | None = None
    """The latest time any of its lines started or ended (for conversations that never ended)."""

    @property
    def duration_s(self) -> float | None:
        end = self.ended_at if self.ended_at is not None else self.last_activity_at
        return None if end is None else max(0.0, end - self.started_at)


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """One line of a conversation."""

    id: int
    conversation_id: int
    seq: int
    """Position in the conversation, from 1."""
    role: str
    kind: str
    text: str
    """What was said; for an interrupted reply, what the user heard."""
    full_text: str | None
    """For an interrupted reply: everything the model said."""
    pending: bool
    """The line was not final when written (a transcript still to come) and never became so."""
    item_id: str | None
    response_id: str | None
    interrupted: bool
    heard_ms: int | None
    started_at: float | None
    ended_at: float | None
    figures: MessageFigures


@dataclass(frozen=True, slots=True)
class SearchHit:
    conversation_id: int
    conversation_started_at: float
    message: MessageRecord


# --------------------------------------------------------------------------------------------
# Key hygiene
# --------------------------------------------------------------------------------------------

_SECRET_PARAM = re.compile(
    r"key|token|secret|auth|pass|pwd|sig|credential|session|bearer|jwt|cookie|code", re.I
)
_SECRET_VALUE = re.compile(r"^(sk|ek|rk|pk)[-_]|^bearer\s", re.I)


def safe_url(url: str | None) -> str | None:
    """`url` without credentials: no userinfo, no fragment, and no query parameter whose name
    looks like a key or token (`api-key`, `token`, `sig`, ...) or whose value looks like a key
    (`sk-...`). Harmless parameters such as `model` stay. Unparseable input gives None."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not parts.scheme or not host:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    query = [
        (name, value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
        if not _SECRET_PARAM.search(name) and not _SECRET_VALUE.search(value)
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))


_MESSAGE_COLUMNS = (
    "id, conversation_id, seq, role, kind, text, full_text, pending, item_id, response_id, "
    "interrupted, heard_ms, started_at, ended_at, " + ", ".join(FIGURE_FIELDS)
)

_KEEP: Any = object()
"""Default of `update_message` arguments: leave the column as it is."""


# --------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------


class HistoryStore:
    """Conversations and their lines in one SQLite file. Use from one thread.

    Create with `HistoryStore.open(path)`; close with `close()` or a `with` block.
    """

    def __init__(
        self,
        db: sqlite3.Connection,
        path: Path,
        *,
        redact: Iterable[str | None] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self.path = path
        self._secrets = sorted({s for s in redact if s and len(s) >= 4}, key=len, reverse=True)
        self._clock = clock

    @classmethod
    def for_config(cls, config: Config) -> HistoryStore | None:
        """The history a session run with `config` records into (None when `[history]
        enabled` is off), with the API key redacted from everything written.

        Raises:
            HistoryError: as `open()`, with the way out (`--no-history`) added.
        """
        if not config.history.enabled:
            return None
        try:
            return cls.open(config.history_file, redact=[config.api_key])
        except HistoryError as exc:
            raise HistoryError(f"{exc} (or run with --no-history)") from None

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        create: bool = True,
        redact: Iterable[str | None] = (),
        durability: str = "normal",
        clock: Callable[[], float] = time.time,
        busy_timeout_s: float = 2.0,
    ) -> HistoryStore:
        """Open (and with `create`, create) the history database at `path`.

        Args:
            path: the database file; its directory is created when `create` is set.
            create: make a new database if the file is missing; otherwise that is an error.
            redact: secrets (the API key) replaced by `[redacted]` in every text written.
            durability: `normal` (survives a killed process) or `full` (also a power loss,
                at the cost of an fsync per write).
            clock: Unix time source for the default timestamps.
            busy_timeout_s: how long a write waits for another process's write to finish.

        Raises:
            HistoryError: the file cannot be opened, is not a voicecli history database, or
                was written by a newer voicecli.
        """
        if durability not in ("normal", "full"):
            raise ValueError(f"durability must be 'normal' or 'full', not {durability!r}")
        path = Path(path).expanduser().absolute()
        if path.is_dir():
            raise HistoryError(f"{path} is a directory, not a history database")
        if not create and not path.exists():
            raise HistoryError(f"there is no history database at {path}")
        if create:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise HistoryError(f"cannot create {path.parent}: {exc.strerror}") from None
        uri = f"file:{quote(str(path))}?mode={'rwc' if create else 'rw'}"
        try:
            db = sqlite3.connect(
                uri, uri=True, isolation_level=None, timeout=busy_timeout_s, check_same_thread=True
            )
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot open history database {path}: {exc}") from None
        store = cls(db, path, redact=redact, clock=clock)
        try:
            store._prepare(durability)
        except sqlite3.Error as exc:
            db.close()
            raise HistoryError(f"cannot use {path} as a history database: {exc}") from None
        except HistoryError:
            db.close()
            raise
        return store

    def _prepare(self, durability: str) -> None:
        db = self._db
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA secure_delete = ON")  # deleted conversations are overwritten
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if application_id not in (0, APPLICATION_ID) or (application_id == 0 and version):
            raise HistoryError(f"{self.path} is not a voicecli history database")
        if application_id == 0:
            tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise HistoryError(f"{self.path} is not a voicecli history database")
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"{self.path} was written by a newer voicecli (schema {version}, this one "
                f"knows {SCHEMA_VERSION}); upgrade voicecli to read it"
            )
        mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            raise HistoryError(f"{self.path}: the file system does not support WAL mode")
        db.execute(f"PRAGMA synchronous = {durability.upper()}")
        if version < SCHEMA_VERSION:
            self._migrate(version)

    def _migrate(self, version: int) -> None:
        with self._transaction() as db:
            # Re-read inside the write lock: another process may have migrated meanwhile.
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for step in MIGRATIONS[version:]:
                step(db)
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed on exit. IMMEDIATE takes the write lock up front,
        so concurrent writers wait (busy timeout) instead of failing half-way."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise HistoryError(f"cannot {doing} in {self.path}: {exc}") from None

    def _scrub(self, text: str | None) -> str | None:
        if text is None:
            return None
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def integrity_check(self) -> str:
        """`ok`, or SQLite's description of the damage."""
        rows = self._db.execute("PRAGMA integrity_check").fetchall()
        return "; ".join(str(row[0]) for row in rows)

    # --- writing -------------------------------------------------------------------------

    def begin_conversation(
        self,
        *,
        model: str | None = None,
        voice: str | None = None,
        dialect: str | None = None,
        server_url: str | None = None,
        started_at: float | None = None,
    ) -> int:
        """Start a conversation; returns its id. `server_url` is stored via `safe_url`."""
        with self._errors("start a conversation"), self._transaction() as db:
            cursor = db.execute(
                "INSERT INTO conversations (started_at, model, voice, dialect, server_url) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    self._clock() if started_at is None else started_at,
                    self._scrub(model),
                    self._scrub(voice),
                    self._scrub(dialect),
                    self._scrub(safe_url(server_url)),
                ),
            )
            return int(cursor.lastrowid or 0)

    def update_conversation(
        self,
        conversation_id: int,
        *,
        model: str | None = _KEEP,
        voice: str | None = _KEEP,
        dialect: str | None = _KEEP,
        server_url: str | None = _KEEP,
    ) -> None:
        """Change what is known about a conversation (e.g. the model `session.created` named)."""
        values: dict[str, Any] = {}
        for name, value in (("model", model), ("voice", voice), ("dialect", dialect)):
            if value is not _KEEP:
                values[name] = self._scrub(value)
        if server_url is not _KEEP:
            values["server_url"] = self._scrub(safe_url(server_url))
        self._update("conversations", conversation_id, values, "update a conversation")

    def end_conversation(
        self, conversation_id: int, reason: str, *, ended_at: float | None = None
    ) -> None:
        """Mark a conversation ended, and why (`user quit`, `connection lost: ...`)."""
        values = {
            "ended_at": self._clock() if ended_at is None else ended_at,
            "end_reason": self._scrub(reason),
        }
        self._update("conversations", conversation_id, values, "end a conversation")

    def add_message(
        self,
        conversation_id: int,
        *,
        role: str,
        text: str,
        kind: str | None = None,
        full_text: str | None = None,
        pending: bool = False,
        item_id: str | None = None,
        response_id: str | None = None,
        interrupted: bool = False,
        heard_ms: int | None = None,
        started_at: float | None = None,
        ended_at: float | None = None,
        figures: MessageFigures | None = None,
    ) -> int:
        """Append a line to a conversation and commit it; returns the message id.

        Args:
            role: one of `ROLES`.
            kind: one of `KINDS`; default `voice` for user and assistant, else `system`.
            pending: a placeholder whose final text comes later (`update_message`).
            started_at, ended_at: Unix seconds; `ended_at` defaults to now unless pending.
            figures: per-turn latency, usage and cost (assistant lines).

        Raises:
            HistoryError: unknown conversation, bad role or kind, or a database failure.
        """
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
        if kind is None:
            kind = "voice" if role in ("user", "assistant") else "system"
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        now = self._clock()
        if started_at is None:
            started_at = now
        if ended_at is None and not pending:
            ended_at = now
        values: dict[str, Any] = {
            "conversation_id": conversation_id,
            "role": role,
            "kind": kind,
            "text": self._scrub(text) or "",
            "full_text": self._scrub(full_text),
            "pending": int(pending),
            "item_id": item_id,
            "response_id": response_id,
            "interrupted": int(interrupted),
            "heard_ms": heard_ms,
            "started_at": started_at,
            "ended_at": ended_at,
        }
        if figures is not None:
            values.update({name: getattr(figures, name) for name in FIGURE_FIELDS})
        with self._errors("add a line"), self._transaction() as db:
            if not db.execute(
                "SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone():
                raise HistoryError(f"there is no conversation {conversation_id}")
            seq = db.execute(
                "SELECT coalesce(max(seq), 0) + 1 FROM messages WHERE conversation_id = ?",
                (conversation_id,),
            ).fetchone()[0]
            values["seq"] = seq
            columns = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            cursor = db.execute(
                f"INSERT INTO messages ({columns}) VALUES ({marks})", tuple(values.values())
            )
            return int(cursor.lastrowid or 0)

    def update_message(
        self,
        message_id: int,
        *,
        text: str = _KEEP,
        full_text: str | None = _KEEP,
        kind: str = _KEEP,
        pending: bool = _KEEP,
        item_id: str | None = _KEEP,
        response_id: str | None = _KEEP,
        interrupted: bool = _KEEP,
        heard_ms: int | None = _KEEP,
        started_at: float | None = _KEEP,
        ended_at: float | None = _KEEP,
        figures: MessageFigures | None = _KEEP,
    ) -> None:
        """Change some fields of a line and commit; arguments not given stay as they are.

        Typical: a late user transcript fills a placeholder (`text=..., pending=False`), an
        interrupted reply gets its heard length (`interrupted=True, heard_ms=...`), a turn's
        figures arrive (`figures=...`; fields that are None keep their stored value).
        """
        values: dict[str, Any] = {}
        given = {
            "text": text,
            "full_text": full_text,
            "kind": kind,
            "pending": pending,
            "item_id": item_id,
            "response_id": response_id,
            "interrupted": interrupted,
            "heard_ms": heard_ms,
            "started_at": started_at,
            "ended_at": ended_at,
        }
        for name, value in given.items():
            if value is _KEEP:
                continue
            if name in ("text", "full_text"):
                value = self._scrub(value)
                if name == "text" and value is None:
                    value = ""
            elif name in ("pending", "interrupted"):
                value = int(bool(value))
            elif name == "kind" and value not in KINDS:
                raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {value!r}")
            values[name] = value
        if pending is False and ended_at is _KEEP:
            values["ended_at"] = _Coalesce(self._clock())
        if figures is not _KEEP and figures is not None:
            for name in FIGURE_FIELDS:
                value = getattr(figures, name)
                if value is not None:
                    values[name] = value
        self._update("messages", message_id, values, "update a line")

    def _update(self, table: str, row_id: int, values: dict[str, Any], doing: str) -> None:
        noun = "conversation" if table == "conversations" else "line"
        with self._errors(doing), self._transaction() as db:
            if not values:
                if not db.execute(f"SELECT 1 FROM {table} WHERE id = ?", (row_id,)).fetchone():
                    raise HistoryError(f"there is no {noun} {row_id}")
                return
            assignments = ", ".join(
                f"{name} = coalesce({name}, ?)" if isinstance(value, _Coalesce) else f"{name} = ?"
                for name, value in values.items()
            )
            parameters = [v.value if isinstance(v, _Coalesce) else v for v in values.values()]
            cursor = db.execute(
                f"UPDATE {table} SET {assignments} WHERE id = ?", (*parameters, row_id)
            )
            if cursor.rowcount == 0:
                raise HistoryError(f"there is no {noun} {row_id}")

    def delete_conversation(self, conversation_id: int) -> int:
        """Delete a conversation and its lines; returns how many lines went with it."""
        with self._errors("delete a conversation"):
            with self._transaction() as db:
                count = db.execute(
                    "SELECT count(*) FROM messages WHERE conversation_id = ?", (conversation_id,)
                ).fetchone()[0]
                cursor = db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
                if cursor.rowcount == 0:
                    raise HistoryError(f"there is no conversation {conversation_id}")
            # Move the overwritten pages into the main file and empty the WAL, so the deleted
            # text does not linger there (best effort: a reader elsewhere may hold it open).
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return int(count)

    # --- reading -------------------------------------------------------------------------

    def conversations(self, limit: int | None = None) -> list[ConversationRecord]:
        """Conversations, newest first, with their line counts."""
        query = (
            "SELECT c.id, c.started_at, c.ended_at, c.end_reason, c.model, c.voice, c.dialect, "
            "c.server_url, count(m.id), max(coalesce(m.ended_at, m.started_at)) "
            "FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id "
            "GROUP BY c.id ORDER BY c.started_at DESC, c.id DESC"
        )
        parameters: tuple[Any, ...] = ()
        if limit is not None:
            query += " LIMIT ?"
            parameters = (limit,)
        with self._errors("read conversations"):
            rows = self._db.execute(query, parameters).fetchall()
        return [_conversation(row) for row in rows]

    def conversation(self, conversation_id: int) -> ConversationRecord:
        """One conversation. Raises HistoryError when there is no such id."""
        with self._errors("read a conversation"):
            row = self._db.execute(
                "SELECT c.id, c.started_at, c.ended_at, c.end_reason, c.model, c.voice, "
                "c.dialect, c.server_url, count(m.id), max(coalesce(m.ended_at, m.started_at)) "
                "FROM conversations c LEFT JOIN messages m ON m.conversation_id = c.id "
                "WHERE c.id = ? GROUP BY c.id",
                (conversation_id,),
            ).fetchone()
        if row is None:
            raise HistoryError(f"there is no conversation {conversation_id}")
        return _conversation(row)

    def latest_conversation_id(self) -> int | None:
        with self._errors("read conversations"):
            row = self._db.execute(
                "SELECT id FROM conversations ORDER BY started_at DESC, id DESC LIMIT 1"
            ).fetchone()
        return None if row is None else int(row[0])

    def messages(self, conversation_id: int) -> list[MessageRecord]:
        """The lines of a conversation in order (empty for an unknown id)."""
        with self._errors("read lines"):
            rows = self._db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? ORDER BY seq",
                (conversation_id,),
            ).fetchall()
        return [_message(row) for row in rows]

    def message(self, message_id: int) -> MessageRecord:
        with self._errors("read a line"):
            row = self._db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE id = ?", (message_id,)
            ).fetchone()
        if row is None:
            raise HistoryError(f"there is no line {message_id}")
        return _message(row)

    def message_for_item(self, conversation_id: int, item_id: str) -> MessageRecord | None:
        """The first line of a conversation written for server item `item_id`, if any."""
        with self._errors("read a line"):
            row = self._db.execute(
                f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE conversation_id = ? "
                "AND item_id = ? ORDER BY seq LIMIT 1",
                (conversation_id, item_id),
            ).fetchone()
        return None if row is None else _message(row)

    def search(self, text: str, limit: int | None = None) -> list[SearchHit]:
        """Lines whose text contains `text`, ignoring case (Unicode-aware), newest conversation
        first and in order within it.

        A substring scan, not FTS5: it finds parts of words, works on every SQLite build (FTS5
        is optional) and keeps the file readable by any sqlite3; a personal history is small
        enough that the scan takes milliseconds.
        """
        needle = text.casefold()
        if not needle:
            return []
        self._db.create_function("voicecli_fold", 1, _fold, deterministic=True)
        query = (
            f"SELECT {', '.join('m.' + c for c in _MESSAGE_COLUMNS.split(', '))}, c.started_at "
            "FROM messages m JOIN conversations c ON c.id = m.conversation_id "
            "WHERE instr(voicecli_fold(m.text), ?) > 0 "
            "OR instr(voicecli_fold(coalesce(m.full_text, '')), ?) > 0 "
            "ORDER BY c.started_at DESC, c.id DESC, m.seq"
        )
        parameters: tuple[Any, ...] = (needle, needle)
        if limit is not None:
            query += " LIMIT ?"
            parameters += (limit,)
        with self._errors("search"):
            rows = self._db.execute(query, parameters).fetchall()
        return [
            SearchHit(
                conversation_id=int(row[1]),
                conversation_started_at=row[-1],
                message=_message(row[:-1]),
            )
            for row in rows
        ]


@dataclass(frozen=True, slots=True)
class _Coalesce:
    """An update value that only fills the column when it is still NULL."""

    value: Any


def _fold(value: str | None) -> str:
    return value.casefold() if isinstance(value, str) else ""


def _conversation(row: Sequence[Any]) -> ConversationRecord:
    return ConversationRecord(
        id=int(row[0]),
        started_at=float(row[1]),
        ended_at=row[2],
        end_reason=row[3],
        model=row[4],
        voice=row[5],
        dialect=row[6],
        server_url=row[7],
        message_count=int(row[8]),
        last_activity_at=row[9],
    )


def _message(row: Sequence[Any]) -> MessageRecord:
    figures = MessageFigures(
        **dict(zip(FIGURE_FIELDS, row[14 : 14 + len(FIGURE_FIELDS)], strict=True))
    )
    return MessageRecord(
        id=int(row[0]),
        conversation_id=int(row[1]),
        seq=int(row[2]),
        role=row[3],
        kind=row[4],
        text=row[5],
        full_text=row[6],
        pending=bool(row[7]),
        item_id=row[8],
        response_id=row[9],
        interrupted=bool(row[10]),
        heard_ms=row[11],
        started_at=row[12],
        ended_at=row[13],
        figures=figures,
    )
