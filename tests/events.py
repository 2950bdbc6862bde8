"""Server event sequences for the pure-stack tests, as normalised `voicecli.protocol.events`.

What a realtime server sends for a spoken user turn, a typed user message and an assistant
reply (its start, its words with their audio, its end), so the transcript view-model and the
history recorder tests feed the same, realistic sequences. Each function returns the events
in the order the server sends them; `reply_words` returns one batch per word, as they stream.
Response ids are `resp-<item id>`.
"""

from __future__ import annotations

from voicecli.protocol import events as ev


__all__ = [
    "reply_finished",
    "reply_started",
    "reply_words",
    "response_id",
    "user_spoke",
    "user_typed",
]


def response_id(item_id: str) -> str:
    """The id of the response that produces assistant item `item_id`."""
    return f"resp-{item_id}"


def user_spoke(item_id: str, previous: str | None) -> list[ev.Event]:
    """The server's VAD committed a user utterance (its transcript comes later, if at all)."""
    return [
        ev.InputCommitted(item_id=item_id, previous_item_id=previous),
        _user_message(item_id, previous, ev.ContentPart(type="input_audio")),
    ]


def user_typed(item_id: str, previous: str | None, text: str) -> list[ev.Event]:
    """The server added a typed user message."""
    return [_user_message(item_id, previous, ev.ContentPart(type="input_text", text=text))]


def _user_message(item_id: str, previous: str | None, part: ev.ContentPart) -> ev.ItemAdded:
    item = ev.Item(id=item_id, type="message", role="user", status="completed", content=(part,))
    return ev.ItemAdded(item=item, previous_item_id=previous)


def reply_started(item_id: str, previous: str) -> list[ev.Event]:
    """An assistant message item opened in its response, after `previous`."""
    item = ev.Item(id=item_id, type="message", role="assistant", status="in_progress")
    return [
        ev.OutputItemAdded(response_id=response_id(item_id), item=item),
        ev.ItemAdded(item=item, previous_item_id=previous),
    ]


def reply_words(item_id: str, words: list[str], ms_per_word: int) -> list[list[ev.Event]]:
    """The reply streaming: per word its transcript delta and `ms_per_word` of (silent) audio."""
    response = response_id(item_id)
    return [
        [
            ev.TranscriptDelta(response_id=response, item_id=item_id, delta=word),
            ev.AudioDelta(response_id=response, item_id=item_id, pcm=bytes(ms_per_word * 48)),
        ]
        for word in words
    ]


def reply_finished(item_id: str, transcript: str, status: str = "completed") -> list[ev.Event]:
    """The reply's final events; `transcript` is what the server kept (all of it, unless the
    reply was truncated)."""
    response = response_id(item_id)
    return [
        ev.TranscriptDone(response_id=response, item_id=item_id, transcript=transcript),
        ev.OutputItemDone(
            response_id=response,
            item=ev.Item(
                id=item_id,
                type="message",
                role="assistant",
                status=status,
                content=(ev.ContentPart(type="output_audio", transcript=transcript),),
            ),
        ),
    ]
