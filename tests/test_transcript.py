"""The transcript view-model: order by item, late user transcripts, cuts, typed text, notices."""

from __future__ import annotations

import pytest

from tests import events as server
from voicecli.protocol import events as ev
from voicecli.protocol.conversation import Conversation
from voicecli.transcript import LineKind, TranscriptView, cut_at_heard


def apply(conv: Conversation, events: list[ev.Event]) -> None:
    for event in events:
        conv.apply(event)


def user_voice_turn(conv: Conversation, item_id: str, previous: str | None) -> None:
    apply(conv, server.user_spoke(item_id, previous))


def assistant_reply(
    conv: Conversation, item_id: str, previous: str, words: list[str], ms_per_word: int = 300
) -> None:
    apply(conv, server.reply_started(item_id, previous))
    for batch in server.reply_words(item_id, words, ms_per_word):
        apply(conv, batch)


def finish_reply(conv: Conversation, item_id: str, status: str = "completed") -> None:
    apply(conv, server.reply_finished(item_id, conv.get(item_id).parts[0].text, status))


@pytest.mark.parametrize(
    ("heard", "total", "expected"),
    [
        (0, 3000, ""),
        (3000, 3000, "Sure, it's sunny and warm today."),
        (5000, 3000, "Sure, it's sunny and warm today."),
        (1500, 3000, "Sure, it's sunny"),  # 16 of 32 characters: cut lands on a space
        (800, 3000, "Sure,"),  # 9 of 32 characters lands inside "it's": that word goes
        (100, 3000, ""),
        (500, 0, ""),
    ],
)
def test_cut_at_heard(heard: int, total: int, expected: str) -> None:
    assert cut_at_heard("Sure, it's sunny and warm today.", heard, total) == expected


def test_late_user_transcript_lands_on_its_item_not_at_the_end() -> None:
    conv = Conversation()
    view = TranscriptView()
    user_voice_turn(conv, "u1", None)
    assistant_reply(conv, "a1", "u1", ["Paris ", "is ", "the ", "capital."])
    lines = view.lines(conv)
    assert [(line.kind, line.text, line.pending) for line in lines] == [
        (LineKind.USER, "…", True),
        (LineKind.ASSISTANT, "Paris is the capital.", False),
    ]
    assert lines[1].streaming
    finish_reply(conv, "a1")
    # The user's transcript arrives after the whole reply.
    conv.apply(ev.InputTranscriptDelta(item_id="u1", delta="What is "))
    partial = view.lines(conv)[0]
    assert partial.text == "What is " and partial.pending
    conv.apply(
        ev.InputTranscriptCompleted(item_id="u1", transcript="What is the capital of France?")
    )
    lines = view.lines(conv)
    assert [line.text for line in lines] == [
        "What is the capital of France?",
        "Paris is the capital.",
    ]
    assert not lines[0].pending and not lines[1].streaming


def test_transcript_overtaking_its_item_is_kept() -> None:
    conv = Conversation()
    conv.apply(ev.InputTranscriptCompleted(item_id="u1", transcript="hello"))
    user_voice_turn(conv, "u1", None)
    assert TranscriptView().lines(conv)[0].text == "hello"


def test_user_speech_without_transcription_and_failed_transcription() -> None:
    conv = Conversation()
    user_voice_turn(conv, "u1", None)
    assert TranscriptView(transcription=False).lines(conv)[0].text == "(speech)"
    user_voice_turn(conv, "u2", "u1")
    conv.apply(
        ev.InputTranscriptFailed(
            item_id="u2", error=ev.ErrorInfo(code="audio_unintelligible", message="no")
        )
    )
    line = TranscriptView().lines(conv)[1]
    assert line.text == "(could not transcribe)" and line.failed and not line.pending


def test_item_inserted_in_the_middle_is_shown_in_the_middle() -> None:
    conv = Conversation()
    user_voice_turn(conv, "u1", None)
    assistant_reply(conv, "a1", "u1", ["One."])
    finish_reply(conv, "a1")
    apply(conv, server.user_typed("u0", None, "before everything"))
    assert [line.item_id for line in TranscriptView().lines(conv)] == ["u0", "u1", "a1"]


def test_interrupted_reply_is_cut_where_the_user_stopped_hearing() -> None:
    conv = Conversation()
    view = TranscriptView()
    user_voice_turn(conv, "u1", None)
    words = ["Sure, ", "it's ", "sunny ", "and ", "warm ", "today."]
    assistant_reply(conv, "a1", "u1", words, ms_per_word=500)  # 3000 ms of audio
    # The client barged in after 1500 ms: the line is cut at once...
    view.heard("a1", 0, 1500)
    line = view.lines(conv)[1]
    assert line.interrupted and not line.streaming
    assert line.text == "Sure, it's sunny"
    assert line.full_text == "Sure, it's sunny and warm today."
    assert line.heard_ms == 1500
    # ...and the server's confirmation (clamped) takes over from the client's figure.
    conv.apply(ev.ItemTruncated(item_id="a1", content_index=0, audio_end_ms=1000))
    finish_reply(conv, "a1", status="incomplete")
    line = view.lines(conv)[1]
    assert line.heard_ms == 1000
    # `finish_reply` sent a final item after the truncation: that is the server-kept text.
    assert line.text == "Sure, it's sunny and warm today."


def test_server_kept_transcript_wins_over_the_estimate() -> None:
    conv = Conversation()
    user_voice_turn(conv, "u1", None)
    assistant_reply(conv, "a1", "u1", ["Sure, ", "it's ", "sunny ", "and ", "warm."], 500)
    conv.apply(ev.ItemTruncated(item_id="a1", content_index=0, audio_end_ms=700))
    assert TranscriptView().lines(conv)[1].text == "Sure,"
    conv.apply(
        ev.ItemRetrieved(
            item=ev.Item(
                id="a1",
                type="message",
                role="assistant",
                status="incomplete",
                content=(ev.ContentPart(type="output_audio", transcript="Sure, it"),),
            )
        )
    )
    line = TranscriptView().lines(conv)[1]
    assert line.text == "Sure, it" and line.interrupted


def test_reply_interrupted_before_anything_was_heard() -> None:
    conv = Conversation()
    view = TranscriptView()
    user_voice_turn(conv, "u1", None)
    assistant_reply(conv, "a1", "u1", ["Hello ", "there."])
    view.heard("a1", 0, 0)
    line = view.lines(conv)[1]
    assert line.interrupted and line.text == "" and line.full_text == "Hello there."


def test_assistant_placeholder_before_any_text() -> None:
    conv = Conversation()
    user_voice_turn(conv, "u1", None)
    conv.apply(server.reply_started("a1", "u1")[0])  # output_item.added, before item.added
    line = TranscriptView().lines(conv)[1]
    assert line.pending and line.streaming and line.text == "…"
    assert line.response_id == server.response_id("a1")


def test_typed_message_shows_at_once_then_on_its_item() -> None:
    conv = Conversation()
    view = TranscriptView()
    user_voice_turn(conv, "u1", None)
    view.typed("tell me a joke")
    lines = view.lines(conv)
    assert lines[-1].typed and lines[-1].pending and lines[-1].text == "tell me a joke"
    apply(conv, server.user_typed("u2", "u1", "tell me a joke"))
    lines = view.lines(conv)
    assert len(lines) == 2
    assert lines[1].item_id == "u2" and lines[1].typed and not lines[1].pending


def test_notices_and_errors_sit_after_the_item_that_was_last() -> None:
    conv = Conversation()
    view = TranscriptView()
    view.notice("Connected to the local server.", after_item=conv.last_item_id)
    user_voice_turn(conv, "u1", None)
    view.error("Server error: bad thing.", after_item=conv.last_item_id, code="invalid_value")
    assistant_reply(conv, "a1", "u1", ["Hi."])
    lines = view.lines(conv)
    assert [line.kind for line in lines] == [
        LineKind.NOTICE,
        LineKind.USER,
        LineKind.ERROR,
        LineKind.ASSISTANT,
    ]
    assert lines[2].code == "invalid_value"
    assert len({line.key for line in lines}) == 4
    # A note whose item is deleted moves to the end rather than vanishing.
    conv.apply(ev.ItemDeleted(item_id="u1"))
    assert view.lines(conv)[-1].kind is LineKind.ERROR


def test_function_call_and_output_lines() -> None:
    conv = Conversation()
    conv.apply(
        ev.OutputItemAdded(
            response_id="r1",
            item=ev.Item(id="f1", type="function_call", status="in_progress", name="get_weather"),
        )
    )
    conv.apply(
        ev.FunctionCallArgumentsDone(
            response_id="r1", item_id="f1", call_id="c1", arguments='{"city":"Paris"}'
        )
    )
    conv.apply(
        ev.ItemAdded(
            item=ev.Item(id="o1", type="function_call_output", call_id="c1", output="sunny"),
            previous_item_id="f1",
        )
    )
    lines = TranscriptView().lines(conv)
    assert [line.text for line in lines] == ['get_weather({"city":"Paris"})', "→ sunny"]
    assert all(line.kind is LineKind.TOOL for line in lines)
