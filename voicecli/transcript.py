"""The conversation as display lines, in conversation order, for the TUI and reports.

`TranscriptView.lines(conversation)` turns the protocol `Conversation` (items ordered by
`previous_item_id`, not by arrival) plus a few things only the client knows into `Line`s:

- user speech: the input transcription on its own item, wherever that item sits, even when the
  transcript arrives after the assistant answered; a placeholder while it is pending, a mark
  when transcription failed or is off;
- typed messages: the text as typed, shown at once (pending) and then on the server's item;
- assistant replies: streaming transcript or text; an interrupted reply is marked and cut where
  the user stopped hearing it. The cut uses the transcript the server kept when it tells us,
  otherwise the heard position (the server's `conversation.item.truncated`, or the client's
  own barge-in position before that) as a fraction of the audio received, at a word boundary;
- function calls and their outputs;
- notices and errors, placed after the item that was last when they happened.

Pure: no I/O; the Conversation comes from `voicecli.protocol.conversation`.

`lines()` runs for every transcript delta a UI shows (up to ten times a second while a reply
streams) over the whole conversation, so it keeps each item's `Line` with a fingerprint of what
it was made from and makes a new one only for items whose fingerprint changed: usually just
the streaming reply. Unchanged lines come back as the same objects, which also makes a UI's
comparison with what it shows an identity check.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from voicecli.protocol.conversation import Conversation, ItemState, PartState


__all__ = ["Line", "LineKind", "TranscriptView", "cut_at_heard"]


class LineKind(StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    NOTICE = "notice"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the transcript. `key` is stable across renders (for diffing widgets)."""

    key: str
    kind: LineKind
    text: str
    item_id: str | None = None
    response_id: str | None = None
    pending: bool = False
    """Waiting for its text: a user transcript not yet arrived, a typed message the server
    has not confirmed, or an assistant reply with nothing yet (`text` is a placeholder)."""
    streaming: bool = False
    """An assistant reply still arriving."""
    typed: bool = False
    """A message the user typed (shown exactly as typed)."""
    interrupted: bool = False
    """The user cut this reply short; `text` is what they heard, `full_text` what was said."""
    heard_ms: int | None = None
    full_text: str | None = None
    failed: bool = False
    """The user's audio could not be transcribed."""
    code: str | None = None
    """The server error code of an error line."""


PENDING_SPEECH = "…"
UNTRANSCRIBED = "(speech)"
UNINTELLIGIBLE = "(could not transcribe)"


def cut_at_heard(text: str, heard_ms: float, audio_ms: float) -> str:
    """The part of `text` a listener heard after `heard_ms` of `audio_ms`, at a word boundary.

    Proportional to time: speech runs at a roughly even rate of characters per second. A word
    the listener heard only the start of is dropped.
    """
    if heard_ms >= audio_ms > 0:
        return text
    if audio_ms <= 0 or heard_ms <= 0:
        return ""
    end = round(len(text) * heard_ms / audio_ms)
    if end >= len(text):
        return text
    if text[end].isspace():
        return text[:end].rstrip()
    space = max(text.rfind(" ", 0, end), text.rfind("\n", 0, end))
    return text[:space].rstrip() if space > 0 else ""


@dataclass(slots=True)
class _Note:
    key: str
    kind: LineKind
    text: str
    after_item: str | None
    code: str | None = None


@dataclass(slots=True)
class _Typed:
    key: str
    text: str


class TranscriptView:
    """What the client adds to the server's conversation; renders both as `Line`s."""

    def __init__(self, transcription: bool = True) -> None:
        self.transcription = transcription
        """Whether input transcription is on (else user speech shows as `(speech)`)."""
        self._notes: list[_Note] = []
        self._typed: list[_Typed] = []
        self._cuts: dict[tuple[str, int], int] = {}
        self._cuts_changed = 0
        self._count = 0
        self._made: dict[str, tuple[tuple[object, ...], Line | None]] = {}
        """Per item id: the fingerprint of the item a line was made from, and the line."""

    # --- what the client knows -----------------------------------------------------------

    def notice(self, text: str, after_item: str | None) -> None:
        """An informational line after item `after_item` (None: at the top)."""
        self._notes.append(_Note(self._key("notice"), LineKind.NOTICE, text, after_item))

    def error(self, text: str, after_item: str | None, code: str | None = None) -> None:
        self._notes.append(_Note(self._key("error"), LineKind.ERROR, text, after_item, code))

    def typed(self, text: str) -> None:
        """A message the user just sent; shown until the server's item for it arrives."""
        self._typed.append(_Typed(self._key("typed"), text))

    def heard(self, item_id: str, content_index: int, heard_ms: int) -> None:
        """The user barged in after hearing `heard_ms` of this part (the client's own count)."""
        self._cuts[(item_id, content_index)] = heard_ms
        self._cuts_changed += 1

    def _key(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}-{self._count}"

    # --- rendering -----------------------------------------------------------------------

    def lines(self, conversation: Conversation) -> list[Line]:
        """The whole transcript in conversation order."""
        notes_after: dict[str | None, list[_Note]] = {}
        known = set(conversation.ids)
        for note in self._notes:
            anchor = note.after_item if note.after_item in known else None
            if note.after_item is not None and anchor is None:
                anchor = "\0end"  # its item was deleted: keep it, at the end
            notes_after.setdefault(anchor, []).append(note)

        lines = [_note_line(note) for note in notes_after.get(None, [])]
        unconfirmed = list(self._typed)
        made, kept = self._made, {}
        for item in conversation.items:
            fingerprint = self._fingerprint(item)
            earlier = made.get(item.id)
            if earlier is not None and earlier[0] == fingerprint:
                line = earlier[1]
                if line is not None and line.typed:
                    _confirm(line.text, unconfirmed)
            else:
                line = self._item_line(item, unconfirmed)
            kept[item.id] = (fingerprint, line)
            if line is not None:
                lines.append(line)
            lines += [_note_line(note) for note in notes_after.get(item.id, [])]
        self._made = kept  # deleted items are forgotten
        lines += [_note_line(note) for note in notes_after.get("\0end", [])]
        lines += [
            Line(key=typed.key, kind=LineKind.USER, text=typed.text, typed=True, pending=True)
            for typed in unconfirmed
        ]
        return lines

    def _fingerprint(self, item: ItemState) -> tuple[object, ...]:
        """Everything `_item_line` reads from the item and from this view (cheap to compare:
        unchanged texts are the same objects)."""
        return (
            item.type,
            item.role,
            item.status,
            item.response_id,
            item.name,
            item.arguments,
            item.output,
            self.transcription,
            self._cuts_changed if item.role == "assistant" else 0,
            *[
                (
                    part.type,
                    part.text,
                    part.done,
                    part.transcript_error,
                    part.interrupted,
                    part.heard_ms,
                    part.kept_transcript,
                    part.audio_ms,
                )
                for part in item.parts
            ],
        )

    def _item_line(self, item: ItemState, unconfirmed: list[_Typed]) -> Line | None:
        if item.type == "function_call":
            return Line(
                key=item.id,
                kind=LineKind.TOOL,
                text=f"{item.name or 'function'}({item.arguments})",
                item_id=item.id,
                response_id=item.response_id,
                streaming=item.status == "in_progress",
            )
        if item.type == "function_call_output":
            return Line(
                key=item.id, kind=LineKind.TOOL, text=f"→ {item.output or ''}", item_id=item.id
            )
        if item.type != "message":
            return None
        if item.role == "assistant":
            return self._assistant_line(item)
        if item.role == "user":
            return self._user_line(item, unconfirmed)
        return None  # system messages are instructions, not conversation

    def _user_line(self, item: ItemState, unconfirmed: list[_Typed]) -> Line:
        texts: list[str] = []
        typed = pending = failed = False
        for part in item.parts:
            if part.type == "input_text":
                typed = True
                texts.append(part.text)
            elif part.type == "input_audio":
                text, part_pending, part_failed = self._speech(part)
                texts.append(text)
                pending |= part_pending
                failed |= part_failed
        text = " ".join(t for t in texts if t)
        if typed:
            _confirm(text, unconfirmed)
        if not texts:  # an item event without content yet
            text, pending = PENDING_SPEECH, self.transcription
        return Line(
            key=item.id,
            kind=LineKind.USER,
            text=text,
            item_id=item.id,
            pending=pending,
            typed=typed,
            failed=failed,
        )

    def _speech(self, part: PartState) -> tuple[str, bool, bool]:
        """(text, pending, failed) for one part of the user's speech."""
        if part.transcript_error is not None:
            return (part.text or UNINTELLIGIBLE), False, True
        if part.text:
            return part.text, not part.done, False
        if not self.transcription:
            return UNTRANSCRIBED, False, False
        return PENDING_SPEECH, not part.done, False

    def _assistant_line(self, item: ItemState) -> Line:
        heard_texts: list[str] = []
        full_texts: list[str] = []
        interrupted = False
        heard_total: int | None = None
        for index, part in enumerate(item.parts):
            full_texts.append(part.text)
            heard_ms = part.heard_ms if part.interrupted else self._cuts.get((item.id, index))
            if heard_ms is None:
                heard_texts.append(part.text)
                continue
            interrupted = True
            heard_total = (heard_total or 0) + heard_ms
            if part.kept_transcript is not None:
                heard_texts.append(part.kept_transcript)
            else:
                heard_texts.append(cut_at_heard(part.text, heard_ms, part.audio_ms))
        full = "".join(full_texts)
        text = "".join(heard_texts)
        streaming = item.status == "in_progress" and not interrupted
        pending = not full and streaming
        return Line(
            key=item.id,
            kind=LineKind.ASSISTANT,
            text=PENDING_SPEECH if pending else text,
            item_id=item.id,
            response_id=item.response_id,
            pending=pending,
            streaming=streaming,
            interrupted=interrupted,
            heard_ms=heard_total,
            full_text=full if interrupted else None,
        )


def _confirm(text: str, unconfirmed: list[_Typed]) -> None:
    """The server's item for a message we showed as pending: drop the pending copy."""
    for index, candidate in enumerate(unconfirmed):
        if candidate.text == text:
            del unconfirmed[index]
            return


def _note_line(note: _Note) -> Line:
    return Line(key=note.key, kind=note.kind, text=note.text, code=note.code)
