"""`voicecli history`: list, show, export, search and delete past conversations.

    voicecli history list [--limit N]
    voicecli history show ID
    voicecli history export ID [--format md|json|txt] [--output FILE]
    voicecli history search TEXT [--limit N]
    voicecli history delete ID [--yes]
    voicecli history path

ID is a number from `history list`, or `last` for the newest conversation. Every action takes
`--db PATH` (default: the config's `[history] path`, else
`$XDG_DATA_HOME/voicecli/history.sqlite3`) and `--config FILE`.

A history that does not exist yet is not an error: it is empty. A `--db` that does not
exist, an unknown id or an unreadable file is one line on stderr and exit 2. `search` exits 1
when nothing matches, like grep.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from voicecli.history.store import HistoryStore


__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "history",
        help="list, show, export, search and delete past conversations",
        description="Past conversations, kept line by line in a local SQLite database.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--db",
        metavar="PATH",
        help="history database (default: [history] path from the config, else "
        "$XDG_DATA_HOME/voicecli/history.sqlite3)",
    )
    common.add_argument(
        "--config",
        dest="config_path",
        metavar="FILE",
        help="config file (default: $VOICECLI_CONFIG or ~/.config/voicecli/config.toml)",
    )
    actions = parser.add_subparsers(dest="history_action", metavar="ACTION")

    listing = actions.add_parser(
        "list",
        parents=[common],
        help="conversations, newest first",
        description="Conversations, newest first: when, how long, model, voice, lines, and "
        "how each ended.",
    )
    listing.add_argument("--limit", type=_positive, metavar="N", help="show at most N")

    show = actions.add_parser(
        "show",
        parents=[common],
        help="one conversation, line by line",
        description="One conversation line by line, with interruptions and per-turn latency, "
        "token usage and cost where they were measured.",
    )
    show.add_argument("id", metavar="ID", help="conversation id (see 'history list'), or 'last'")

    export = actions.add_parser(
        "export",
        parents=[common],
        help="write one conversation as Markdown, JSON or text",
        description="Write one conversation as Markdown, JSON or plain text.",
    )
    export.add_argument("id", metavar="ID", help="conversation id, or 'last'")
    export.add_argument(
        "--format",
        dest="fmt",
        choices=("md", "json", "txt"),
        default="md",
        help="output format (default: md)",
    )
    export.add_argument("--output", "-o", metavar="FILE", help="write to FILE, not stdout")

    search = actions.add_parser(
        "search",
        parents=[common],
        help="find lines containing some text",
        description="Lines containing TEXT (case-insensitive), newest conversation first. "
        "Exits 1 when nothing matches.",
    )
    search.add_argument("text", metavar="TEXT")
    search.add_argument("--limit", type=_positive, metavar="N", help="show at most N lines")

    delete = actions.add_parser(
        "delete",
        parents=[common],
        help="delete one conversation",
        description="Delete one conversation and all its lines (asks first unless --yes).",
    )
    delete.add_argument("id", metavar="ID", help="conversation id, or 'last'")
    delete.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    actions.add_parser(
        "path",
        parents=[common],
        help="print where the history database is",
        description="Print the history database path and whether it exists.",
    )
    parser.set_defaults(func=run, history_action=None)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    from voicecli.errors import UsageError

    action = args.history_action
    if action is None:
        raise UsageError(
            "say what to do: 'voicecli history list', 'show ID', 'export ID', 'search TEXT', "
            "'delete ID' or 'path'"
        )
    path, explicit = _database_path(args)
    if action == "path":
        state = "exists" if path.exists() else "does not exist yet"
        sys.stdout.write(f"{path} ({state})\n")
        return 0
    if not path.exists() and not explicit:
        return _without_database(args, path)

    from voicecli.history.store import HistoryStore

    with HistoryStore.open(path, create=False) as store:
        return _ACTIONS[action](store, args)


def _database_path(args: argparse.Namespace) -> tuple[Path, bool]:
    """(the database path, whether the user named it with --db)."""
    if args.db:
        return Path(args.db).expanduser().absolute(), True
    from voicecli.config import load_config

    config = load_config(config_path=args.config_path)
    return config.history_file.expanduser().absolute(), False


def _without_database(args: argparse.Namespace, path: Path) -> int:
    """The default database does not exist yet: the history is empty."""
    from voicecli.history.store import HistoryError

    if args.history_action in ("show", "export", "delete"):
        raise HistoryError(
            f"there is no conversation {args.id}: the history is empty (no database at {path})"
        )
    sys.stdout.write(f"No conversations yet (the history database {path} does not exist yet).\n")
    return 0


def _conversation_id(store: HistoryStore, text: str) -> int:
    from voicecli.history.store import HistoryError

    if text.lower() in ("last", "latest"):
        latest = store.latest_conversation_id()
        if latest is None:
            raise HistoryError("there is no last conversation: the history is empty")
        return latest
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise HistoryError(
            f"{text!r} is not a conversation id: use a number from 'voicecli history list', "
            "or 'last'"
        )
    return value


def _list(store: HistoryStore, args: argparse.Namespace) -> int:
    from voicecli.history.export import list_table

    conversations = store.conversations(limit=args.limit)
    if not conversations:
        sys.stdout.write(f"No conversations yet in {store.path}.\n")
        return 0
    sys.stdout.write("\n".join(list_table(conversations)) + "\n")
    return 0


def _show(store: HistoryStore, args: argparse.Namespace) -> int:
    from voicecli.history.export import show_lines

    conversation = store.conversation(_conversation_id(store, args.id))
    sys.stdout.write("\n".join(show_lines(conversation, store.messages(conversation.id))) + "\n")
    return 0


def _export(store: HistoryStore, args: argparse.Namespace) -> int:
    from voicecli.history.export import export
    from voicecli.history.store import HistoryError

    conversation = store.conversation(_conversation_id(store, args.id))
    text = export(conversation, store.messages(conversation.id), args.fmt)
    if not args.output:
        sys.stdout.write(text)
        return 0
    output = Path(args.output).expanduser()
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise HistoryError(f"cannot write {output}: {exc.strerror or exc}") from None
    sys.stdout.write(f"Wrote conversation {conversation.id} to {output} ({args.fmt}).\n")
    return 0


def _search(store: HistoryStore, args: argparse.Namespace) -> int:
    from voicecli.errors import UsageError
    from voicecli.history.export import search_lines

    if not args.text.strip():
        raise UsageError("give some text to search for")
    if not store.conversations(limit=1):
        sys.stdout.write(f"No conversations yet in {store.path}.\n")
        return 0
    hits = store.search(args.text, limit=args.limit)
    if not hits:
        sys.stdout.write(f"No lines contain {args.text!r}.\n")
        return 1
    sys.stdout.write("\n".join(search_lines(hits)) + "\n")
    return 0


def _delete(store: HistoryStore, args: argparse.Namespace) -> int:
    from voicecli.errors import UsageError
    from voicecli.history.export import format_duration

    conversation = store.conversation(_conversation_id(store, args.id))
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"not deleting conversation {conversation.id} without confirmation: add --yes"
            )
        question = (
            f"Delete conversation {conversation.id} ({conversation.message_count} lines, "
            f"{format_duration(conversation.duration_s)})? [y/N] "
        )
        try:
            answer = input(question)
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            sys.stdout.write("Nothing deleted.\n")
            return 1
    lines = store.delete_conversation(conversation.id)
    sys.stdout.write(f"Deleted conversation {conversation.id} ({lines} lines).\n")
    return 0


_ACTIONS = {
    "list": _list,
    "show": _show,
    "export": _export,
    "search": _search,
    "delete": _delete,
}
