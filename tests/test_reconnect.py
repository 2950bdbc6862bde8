"""The pure reconnect decisions: retry vs fatal vs renew vs give up, renewal timing, the replay
plan, recognising replayed items, and the joined conversation."""

from __future__ import annotations

import random

import pytest

from voicecli.errors import (
    AuthError,
    BetaShapeDisabled,
    ConnectError,
    HandshakeError,
    SessionExpired,
    UnreachableError,
)
from voicecli.protocol import events as ev
from voicecli.protocol.conversation import Conversation, ItemState, PartState
from voicecli.reconnect import (
    JoinedConversation,
    ReconnectSettings,
    ReconnectTracker,
    Replayed,
    ReplayItem,
    Step,
    renew_at,
    replay_plan,
)
from voicecli.session import classify_close, handshake_error
from voicecli.transcript import PENDING_SPEECH, UNTRANSCRIBED, Line, LineKind


def tracker(**settings: object) -> ReconnectTracker:
    return ReconnectTracker(ReconnectSettings(**settings), rng=random.Random(1))  # type: ignore[arg-type]


def closed(code: int, reason: str = "", error_code: str | None = None) -> ConnectError:
    last = (
        ev.ErrorInfo(type="invalid_request_error", code=error_code, message="m")
        if error_code
        else None
    )
    return classify_close(code, reason, last)


# --- decide --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        closed(1006),
        closed(1011),
        closed(1012),
        closed(1013),
        closed(1001, "going away"),
        closed(1006, "keepalive ping timeout"),
        UnreachableError("cannot reach ws://x: connection refused"),
    ],
    ids=["1006", "1011", "1012", "1013", "1001-not-the-cap", "ping-timeout", "network"],
)
def test_recoverable_failures_are_retried_with_growing_jittered_delays(error: ConnectError) -> None:
    t = tracker(initial_delay_s=1.0, min_delay_s=1.0, max_delay_s=8.0, attempts=6)
    t.connected(0.0)
    decisions = [t.decide(error, 1.0)] + [t.decide(error, 1.0 + n) for n in range(5)]
    assert [d.step for d in decisions] == [Step.RETRY] * 6
    assert [d.attempt for d in decisions] == [1, 2, 3, 4, 5, 6]
    assert all(d.status == "reconnecting" and d.error is error for d in decisions)
    delays = [d.delay_s for d in decisions]
    assert 0 <= delays[0] <= 1.0
    # Equal jitter: each later delay lies in [d/2, d] for d = 1, 1.618, 2.618, ... capped at 8.
    for n, delay in enumerate(delays[1:]):
        cap = min(1.618**n, 8.0)
        assert cap / 2 <= delay <= cap


@pytest.mark.parametrize(
    "error",
    [
        AuthError("the server rejected the API key (invalid_api_key); check OPENAI_API_KEY"),
        closed(1000, "", "invalid_api_key"),
        closed(1008, "", "insufficient_quota"),
        closed(4000, "invalid_request_error.beta_api_shape_disabled"),
        BetaShapeDisabled("beta disabled"),
        HandshakeError("ws://x answered HTTP 404 Not Found instead of opening a WebSocket"),
        closed(1000),
    ],
    ids=["auth-handshake", "auth-error-event", "quota", "beta-4000", "beta", "http-404", "1000"],
)
def test_fatal_failures_stop_at_once(error: ConnectError) -> None:
    t = tracker()
    t.connected(0.0)
    decision = t.decide(error, 100.0)
    assert decision.step is Step.FATAL and decision.error is error


def test_http_5xx_at_the_handshake_is_retried_but_4xx_is_not() -> None:
    from websockets.datastructures import Headers
    from websockets.exceptions import InvalidStatus
    from websockets.http11 import Response

    def status(code: int) -> ConnectError:
        return handshake_error(InvalidStatus(Response(code, "x", Headers(), b"")), "ws://x")

    t = tracker()
    assert t.decide(status(503), 0.0).step is Step.RETRY
    assert t.decide(status(429), 0.0).step is Step.RETRY
    assert t.decide(status(400), 0.0).step is Step.FATAL
    assert t.decide(status(401), 0.0).step is Step.FATAL


def test_gives_up_after_the_attempts_with_one_clear_sentence() -> None:
    t = tracker(attempts=3)
    t.connected(0.0)
    error = UnreachableError("cannot reach ws://127.0.0.1:9/v1/realtime: connection refused")
    steps = [t.decide(error, 1.0).step for _ in range(4)]
    assert steps == [Step.RETRY, Step.RETRY, Step.RETRY, Step.GIVE_UP]
    final = t.decide(error, 2.0)
    assert final.step is Step.GIVE_UP and not final.error.recoverable
    assert str(final.error) == (
        "cannot reach ws://127.0.0.1:9/v1/realtime: connection refused "
        "(gave up after 3 reconnect attempts)"
    )
    assert "\n" not in str(final.error)


def test_a_session_that_lasted_resets_the_count() -> None:
    t = tracker(attempts=2, stable_after_s=30.0)
    drop = closed(1006)
    t.connected(0.0)
    assert t.decide(drop, 5.0).attempt == 1
    t.connected(6.0)
    assert t.decide(drop, 10.0).attempt == 2  # up 4 s only: still counting
    t.connected(11.0)
    assert t.decide(drop, 50.0).attempt == 1  # up 39 s: a success, start over
    t.connected(51.0)
    assert t.decide(drop, 52.0).attempt == 2
    assert t.decide(drop, 53.0).step is Step.GIVE_UP  # no session in between


def test_no_attempts_means_no_reconnect() -> None:
    t = tracker(attempts=0)
    t.connected(0.0)
    assert t.decide(closed(1006), 100.0).step is Step.FATAL


def test_the_time_limit_renews_at_once_and_is_not_counted() -> None:
    t = tracker(attempts=1)
    expired = closed(
        1001, "Your session hit the maximum duration of 60 minutes.", "session_expired"
    )
    assert isinstance(expired, SessionExpired)
    for hour in range(5):
        t.connected(hour * 3600.0)
        decision = t.decide(expired, hour * 3600.0 + 3600)
        assert decision.step is Step.RENEW and decision.delay_s == 0
        assert decision.status == "renewing"
    assert t.failures == 0


def test_an_expiry_right_after_opening_is_a_failure_not_a_renewal() -> None:
    t = tracker(attempts=2)
    expired = closed(1001, "Your session hit the maximum duration of 60 minutes.")
    t.connected(0.0)
    assert t.decide(expired, 0.2).step is Step.RETRY
    t.connected(1.0)
    assert t.decide(expired, 1.1).step is Step.RETRY
    t.connected(2.0)
    assert t.decide(expired, 2.1).step is Step.GIVE_UP


def test_renewal_switched_off_makes_the_time_limit_final() -> None:
    t = tracker(renew=False)
    t.connected(0.0)
    assert t.decide(SessionExpired("the session reached the time limit"), 3600).step is Step.FATAL


def test_renew_at() -> None:
    assert renew_at(1000.0, 1000.0 + 3600, 120) == 1000.0 + 3480
    assert renew_at(0.0, 10.0, 2.0) == 8.0
    # A margin longer than the session: not before half of it.
    assert renew_at(0.0, 10.0, 120.0) == 5.0
    assert renew_at(0.0, 3600.0, 0.0) == 3600.0


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        ReconnectSettings(attempts=-1)
    with pytest.raises(ValueError):
        ReconnectSettings(renew_margin_s=-1)


# --- the replay plan -----------------------------------------------------------------------


def user(text: str, **fields: object) -> Line:
    return Line(key=f"u{text}", kind=LineKind.USER, text=text, item_id=f"u-{text}", **fields)  # type: ignore[arg-type]


def assistant(text: str, **fields: object) -> Line:
    return Line(key=f"a{text}", kind=LineKind.ASSISTANT, text=text, item_id=f"a-{text}", **fields)  # type: ignore[arg-type]


def test_replay_plan_keeps_user_lines_and_what_was_heard_of_the_replies() -> None:
    lines = [
        Line(key="n1", kind=LineKind.NOTICE, text="talking to the local server"),
        user("What is the capital of France?"),
        assistant("Paris is", interrupted=True, heard_ms=900, full_text="Paris is the capital."),
        user("remember the word pineapple", typed=True),
        Line(key="t1", kind=LineKind.TOOL, text="get_weather({})", item_id="fc1"),
        assistant("I will."),
        Line(key="e1", kind=LineKind.ERROR, text="Server error x: y.", code="x"),
    ]
    assert replay_plan(lines) == [
        ReplayItem("user", "What is the capital of France?", "u-What is the capital of France?"),
        ReplayItem("assistant", "Paris is", "a-Paris is"),
        ReplayItem("user", "remember the word pineapple", "u-remember the word pineapple"),
        ReplayItem("assistant", "I will.", "a-I will."),
    ]


def test_replay_plan_leaves_out_lines_without_words() -> None:
    lines = [
        user(PENDING_SPEECH, pending=True),  # transcript never came
        user(UNTRANSCRIBED),  # transcription off
        user("(could not transcribe)", failed=True),
        user("typed but never confirmed", typed=True, pending=True),
        assistant("", interrupted=True, heard_ms=0),  # cut before the first word
        assistant(PENDING_SPEECH, pending=True, streaming=True),
        assistant("  "),
        user("hello"),
    ]
    assert [item.text for item in replay_plan(lines)] == ["hello"]


def test_replay_plan_drops_the_oldest_lines_beyond_the_budget() -> None:
    lines = [user(f"line {n:02d} " + "x" * 90) for n in range(10)]  # 98 chars each
    plan = replay_plan(lines, max_chars=300)
    assert [item.text[:7] for item in plan] == ["line 07", "line 08", "line 09"]
    assert replay_plan(lines, max_chars=50) == []
    assert len(replay_plan(lines)) == 10


# --- recognising replayed items ------------------------------------------------------------


def message(item_id: str, role: str, text: str, kind: str = "input_text") -> ItemState:
    return ItemState(id=item_id, role=role, parts=[PartState(type=kind, text=text, done=True)])


def test_replayed_items_are_recognised_by_role_and_text_in_plan_order() -> None:
    plan = [ReplayItem("user", "hi"), ReplayItem("assistant", "hello"), ReplayItem("user", "hi")]
    replayed = Replayed(plan)
    assert replayed.waiting == 3
    assert replayed.observe(message("s1", "user", "hi"))
    assert replayed.observe(message("s1", "user", "hi"))  # the .done of the same item
    assert not replayed.observe(message("x", "assistant", "hi"))  # wrong role
    assert replayed.observe(message("s2", "assistant", "hello", "output_text"))
    assert replayed.observe(message("s3", "user", "hi"))
    assert replayed.waiting == 0
    # The user says the same thing again later: a new line, not a replay.
    assert not replayed.observe(message("s4", "user", "hi"))
    assert replayed.ids == {"s1", "s2", "s3"}


def test_a_refused_replay_item_does_not_hide_later_lines() -> None:
    replayed = Replayed([ReplayItem("user", "a"), ReplayItem("assistant", "b")])
    # The server refused "a"; "b" arrives, then the user's new line.
    assert replayed.observe(message("s2", "assistant", "b", "output_text"))
    assert not replayed.observe(message("s3", "user", "a"))
    assert replayed.ids == {"s2"}


# --- the joined conversation ---------------------------------------------------------------


def test_joined_conversation_shows_earlier_items_then_the_live_ones_without_replays() -> None:
    earlier = [message("old1", "user", "hi"), message("old2", "assistant", "hello", "output_audio")]
    live = Conversation()
    for item_id, role, text, kind in [
        ("new1", "user", "hi", "input_text"),
        ("new2", "assistant", "hello", "output_text"),
        ("new3", "user", "and now?", "input_text"),
    ]:
        live.apply(
            ev.ItemAdded(
                item=ev.Item(
                    id=item_id,
                    type="message",
                    role=role,
                    content=(ev.ContentPart(type=kind, text=text),),
                ),
                previous_item_id=None if item_id == "new1" else f"new{int(item_id[-1]) - 1}",
            )
        )
    joined = JoinedConversation(earlier, live, {"new1", "new2"})
    assert joined.ids == ["old1", "old2", "new3"]
    assert joined.last_item_id == "new3" and len(joined) == 3
    assert joined.get("old2") is earlier[1] and joined.get("new3") is live.get("new3")
    assert joined.get("new1") is None and "new1" not in joined and "old1" in joined
    assert [item.id for item in joined] == joined.ids
    with pytest.raises(TypeError):
        joined.apply(ev.SpeechStarted())
