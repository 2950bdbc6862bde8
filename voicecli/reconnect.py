"""Keeping a conversation alive across connections: what to do when a session ends, when to
renew one before the server's time limit, and what context to replay into the new one.

A Realtime reconnect is never a resume: the new connection is a new, empty session (protocol
reference §2.2, §7). So the talk engine opens a new session, sends its `session.update` again,
and replays the conversation as text items. This module holds the decisions, without I/O:

- `ReconnectTracker.decide(error, now)`: after a connection ended with `error`, `retry` after
  a jittered backoff delay (close 1006/1011/1012/1013, a 1001 that is not the time limit,
  network errors, a keepalive ping timeout: whatever `ConnectError.recoverable` says), `renew`
  at once (the server's `session_expired` + 1001), `fatal` (invalid key, quota,
  `beta_api_shape_disabled`, HTTP 4xx at the handshake: retrying cannot help) or `give_up`
  after `attempts` failures in a row. A session that stayed up `stable_after_s` resets the
  count, so a long conversation survives any number of well-spaced blips but a server that
  drops every connection at once is given up on.
- `renew_at(created_at, expires_at, margin_s)`: when to renew proactively (the engine waits
  for a turn boundary after that).
- `replay_plan(lines)`: the conversation as text items for the new session: user lines as
  they were transcribed or typed, assistant lines only as far as the user heard them (the
  transcript view already cuts an interrupted reply there), most recent last, within a size
  budget. Mic audio is never replayed: a new session starts listening afresh.
- `Replayed`: recognises the replayed items when the new session announces them, so the
  transcript does not show them twice; `JoinedConversation` shows the earlier sessions' items
  followed by the live session's as one conversation.

Pure: standard library, `voicecli.errors`, the protocol conversation and the transcript lines
(`backoff()` comes from `voicecli.session`, which loads websockets only when connecting).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum

from voicecli.errors import ConnectError, SessionExpired
from voicecli.protocol.conversation import Conversation, ItemState
from voicecli.session import backoff
from voicecli.transcript import PENDING_SPEECH, UNINTELLIGIBLE, UNTRANSCRIBED, Line, LineKind


__all__ = [
    "MAX_REPLAY_CHARS",
    "Decision",
    "JoinedConversation",
    "ReconnectSettings",
    "ReconnectTracker",
    "ReplayItem",
    "Replayed",
    "Step",
    "renew_at",
    "replay_plan",
]

MAX_REPLAY_CHARS = 24_000
"""Text replayed into a new session, at most (~6k tokens: a long conversation's recent part;
the model's context also holds the instructions and the new turns)."""


MIN_RENEWABLE_S = 1.0
"""A session that "expires" sooner than this after opening is renewed like a failure is
retried (with backoff, counted), so a broken server cannot make us reconnect in a tight loop."""


@dataclass(frozen=True, slots=True)
class ReconnectSettings:
    """How hard to try to keep a session going. See the module docstring."""

    attempts: int = 5
    """Failed connections in a row before giving up; 0 never reconnects after a drop."""
    renew: bool = True
    """Renew before the server's time limit, and at once when it is reached."""
    renew_margin_s: float = 120.0
    """Renew this long before `expires_at`, at the next turn boundary."""
    initial_delay_s: float = 1.0
    """The first retry waits a random 0..this (so clients cut off together spread out)."""
    min_delay_s: float = 1.0
    max_delay_s: float = 30.0
    stable_after_s: float = 30.0
    """A session that lasted this long counts as a success: the failure count starts over."""
    max_replay_chars: int = MAX_REPLAY_CHARS

    def __post_init__(self) -> None:
        if self.attempts < 0:
            raise ValueError("attempts cannot be negative")
        if self.renew_margin_s < 0:
            raise ValueError("renew_margin_s cannot be negative")

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        return backoff(
            initial_delay=self.initial_delay_s,
            min_delay=self.min_delay_s,
            max_delay=self.max_delay_s,
            rng=rng,
        )


# --------------------------------------------------------------------------------------------
# What to do when a connection ends
# --------------------------------------------------------------------------------------------


class Step(StrEnum):
    RETRY = "retry"
    """Connect again after `delay_s`."""
    RENEW = "renew"
    """The session reached its time limit: connect again now."""
    FATAL = "fatal"
    """Retrying cannot help: stop with `error`."""
    GIVE_UP = "give_up"
    """Too many failures in a row: stop with `error`."""


@dataclass(frozen=True, slots=True)
class Decision:
    step: Step
    error: ConnectError
    """The error that ended the connection, or (`give_up`) the one to stop with."""
    delay_s: float = 0.0
    attempt: int = 0
    """Which attempt in a row this retry is (1-based; 0 for renew, fatal)."""

    @property
    def status(self) -> str:
        """What the UI shows meanwhile: `renewing` or `reconnecting`."""
        return "renewing" if self.step is Step.RENEW else "reconnecting"


class ReconnectTracker:
    """Counts failures in a row and hands out backoff delays (pure: time is passed in)."""

    def __init__(self, settings: ReconnectSettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self._rng = rng
        self._delays = settings.delays(rng)
        self.failures = 0
        """Failures since the last session that stayed up long enough."""
        self._up_since: float | None = None

    def connected(self, now: float) -> None:
        """A session is ready (after `session.created`)."""
        self._up_since = now

    def decide(self, error: ConnectError, now: float) -> Decision:
        """What to do after a session ended (or a connection attempt failed) with `error`."""
        up_since, self._up_since = self._up_since, None
        if up_since is not None and now - up_since >= self.settings.stable_after_s:
            self.failures = 0
            self._delays = self.settings.delays(self._rng)
        if isinstance(error, SessionExpired):
            if not self.settings.renew:
                return Decision(Step.FATAL, error)
            if up_since is not None and now - up_since >= MIN_RENEWABLE_S:
                return Decision(Step.RENEW, error)
            # "Expired" right after opening: a broken server, counted like any failure.
        if not error.recoverable or self.settings.attempts == 0:
            return Decision(Step.FATAL, error)
        if self.failures >= self.settings.attempts:
            tries = "attempt" if self.failures == 1 else "attempts"
            given_up = ConnectError(f"{error} (gave up after {self.failures} reconnect {tries})")
            given_up.__cause__ = error
            return Decision(Step.GIVE_UP, given_up)
        self.failures += 1
        return Decision(Step.RETRY, error, next(self._delays), self.failures)


def renew_at(created_at: float, expires_at: float, margin_s: float) -> float:
    """When to renew a session that runs from `created_at` to `expires_at` (same clock):
    `margin_s` before the end, but never in the first half (a short session with a long margin
    would otherwise be renewed over and over)."""
    return max(expires_at - margin_s, created_at + (expires_at - created_at) / 2)


# --------------------------------------------------------------------------------------------
# The replay
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplayItem:
    role: str
    """`user` or `assistant`."""
    text: str
    source_id: str | None = None
    """The item it stands for in an earlier session."""


_NOT_WORDS = frozenset({PENDING_SPEECH, UNTRANSCRIBED, UNINTELLIGIBLE})


def replay_plan(lines: Iterable[Line], max_chars: int = MAX_REPLAY_CHARS) -> list[ReplayItem]:
    """The text items that give a new session the conversation so far (see module docstring).

    `lines` are the transcript lines (`TranscriptView.lines()`); an assistant line's text is
    what the user heard of it. Lines without words are left out: speech whose transcript never
    came or failed, a typed message the server never confirmed, an empty reply, tool calls,
    notices and errors. When everything does not fit in `max_chars`, the oldest lines go.
    """
    items: list[ReplayItem] = []
    for line in lines:
        text = line.text.strip()
        if line.pending or not text or text in _NOT_WORDS:
            continue
        if line.kind is LineKind.USER and not line.failed:
            items.append(ReplayItem("user", text, line.item_id))
        elif line.kind is LineKind.ASSISTANT:
            items.append(ReplayItem("assistant", text, line.item_id))
    kept: list[ReplayItem] = []
    budget = max_chars
    for item in reversed(items):
        if len(item.text) > budget:
            break
        budget -= len(item.text)
        kept.append(item)
    kept.reverse()
    return kept


def _item_matches(item: ItemState, planned: ReplayItem) -> bool:
    return item.type == "message" and item.role == planned.role and item.text == planned.text


class Replayed:
    """Tells the replayed items apart when the new session announces them.

    Ids are not used: some compatible servers replace client-assigned item ids. An item is a
    replay when it is a message with the role and text of a planned item not yet seen, taken
    in plan order (a planned item the server refused is skipped, not waited for).
    """

    def __init__(self, plan: Sequence[ReplayItem] = ()) -> None:
        self._waiting = list(plan)
        self.ids: set[str] = set()

    @property
    def waiting(self) -> int:
        """Planned items the new session has not announced yet."""
        return len(self._waiting)

    def observe(self, item: ItemState) -> bool:
        """Note a new item of the live session; True if it is one of the replayed ones."""
        if item.id in self.ids:
            return True
        for index, planned in enumerate(self._waiting):
            if _item_matches(item, planned):
                del self._waiting[: index + 1]
                self.ids.add(item.id)
                return True
        return False


class JoinedConversation(Conversation):
    """Read-only: the items of earlier sessions, then the live session's minus its replays.

    What the transcript and the history show after a reconnect: one conversation, each line
    once, in the order it happened.
    """

    def __init__(self, earlier: Sequence[ItemState], live: Conversation, hidden: set[str]) -> None:
        super().__init__(live.output_audio_format)
        self._earlier = list(earlier)
        self._live = live
        self._hidden = hidden

    @property
    def items(self) -> list[ItemState]:
        return self._earlier + [item for item in self._live.items if item.id not in self._hidden]

    @property
    def ids(self) -> list[str]:
        return [item.id for item in self.items]

    @property
    def last_item_id(self) -> str | None:
        items = self.items
        return items[-1].id if items else None

    def get(self, item_id: str) -> ItemState | None:
        if item_id not in self._hidden:
            item = self._live.get(item_id)
            if item is not None:
                return item
        for item in self._earlier:
            if item.id == item_id:
                return item
        return None

    def __contains__(self, item_id: object) -> bool:
        return isinstance(item_id, str) and self.get(item_id) is not None

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[ItemState]:
        return iter(self.items)

    def audio_ms(self, item_id: str, content_index: int) -> float:
        item = self.get(item_id)
        part = item.part(content_index) if item else None
        return part.audio_ms if part else 0.0

    def apply(self, event: object) -> None:  # type: ignore[override]
        raise TypeError("a joined conversation is read-only; events go to the live session")
