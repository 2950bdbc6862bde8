"""Per-turn latency, usage and cost bookkeeping."""

from __future__ import annotations

import json

import pytest

from voicecli.config import DEFAULT_PRICES, ModelPrices
from voicecli.metrics import MetricsTracker, TurnMetrics, cost_usd, format_turn
from voicecli.protocol.events import Usage


PRICES = ModelPrices(
    text_input=4.0,
    text_cached_input=0.4,
    text_output=16.0,
    audio_input=32.0,
    audio_cached_input=0.4,
    audio_output=64.0,
)


def test_cost_bills_cached_input_at_the_cached_rate() -> None:
    usage = Usage(
        input_tokens=1500,
        output_tokens=300,
        input_text_tokens=1000,
        input_audio_tokens=500,
        cached_tokens=600,
        cached_text_tokens=400,
        cached_audio_tokens=200,
        output_text_tokens=100,
        output_audio_tokens=200,
    )
    expected = (
        600 * 4.0 + 400 * 0.4 + 300 * 32.0 + 200 * 0.4 + 100 * 16.0 + 200 * 64.0
    ) / 1_000_000
    assert cost_usd(usage, PRICES) == pytest.approx(expected)


def test_cost_counts_unsplit_totals_as_text() -> None:
    usage = Usage(input_text_tokens=1000, cached_tokens=1000)
    assert cost_usd(usage, PRICES) == pytest.approx(1000 * 0.4 / 1_000_000)
    bare = Usage(input_tokens=1000, output_tokens=100)
    assert cost_usd(bare, PRICES) == pytest.approx((1000 * 4.0 + 100 * 16.0) / 1_000_000)
    images = Usage(input_tokens=300, input_text_tokens=100, input_image_tokens=200)
    assert cost_usd(images, PRICES) == pytest.approx(100 * 4.0 / 1_000_000)


def test_cost_of_the_protocol_reference_example_with_default_prices() -> None:
    # realtime-protocol.md §10.4: 60 text + 90 audio in, 10 text + 40 audio out, nothing cached.
    usage = Usage(
        input_tokens=150,
        output_tokens=50,
        input_text_tokens=60,
        input_audio_tokens=90,
        output_text_tokens=10,
        output_audio_tokens=40,
    )
    prices = DEFAULT_PRICES["gpt-realtime"]
    expected = (60 * 4.0 + 90 * 32.0 + 10 * 16.0 + 40 * 64.0) / 1_000_000
    assert cost_usd(usage, prices) == pytest.approx(expected)


def test_a_voice_turn_has_every_latency() -> None:
    tracker = MetricsTracker(PRICES)
    tracker.user_turn_ended(10.0, "voice")
    tracker.response_created("r1", 10.2)
    tracker.text_delta("r1", 10.35)
    tracker.audio_delta("r1", 100.0, 10.4)
    tracker.audio_delta("r1", 900.0, 10.6)
    tracker.text_delta("r1", 10.7)  # only the first counts
    tracker.first_played("r1", 10.5)
    turn = tracker.response_done("r1", "completed", Usage(input_tokens=5), 10.9)
    assert turn is not None and turn.finished
    assert turn.trigger == "voice" and turn.index == 1
    assert turn.response_ms == pytest.approx(200)
    assert turn.first_text_ms == pytest.approx(350)
    assert turn.ttfb_ms == pytest.approx(400)
    assert turn.ttfa_ms == pytest.approx(500)
    assert turn.audio_ms == 1000.0
    assert turn.stream_ms == pytest.approx(500)
    assert turn.realtime_factor == pytest.approx(2.0)
    assert turn.total_ms == pytest.approx(900)
    assert turn.cost_usd == pytest.approx(5 * 4.0 / 1_000_000)


def test_heard_cannot_precede_arrival() -> None:
    tracker = MetricsTracker()
    tracker.user_turn_ended(0.0, "ptt")
    tracker.response_created("r1", 0.1)
    tracker.audio_delta("r1", 100.0, 0.3)
    tracker.first_played("r1", 0.25)  # backend estimate a little early
    assert tracker.current("r1").ttfa_ms == pytest.approx(300)


def test_playback_reported_after_response_done_still_lands_on_its_turn() -> None:
    tracker = MetricsTracker()
    tracker.user_turn_ended(0.0, "text")
    tracker.response_created("r1", 0.1)
    tracker.audio_delta("r1", 2000.0, 0.2)
    tracker.response_done("r1", "completed", None, 0.4)
    tracker.first_played("r1", 0.5)
    tracker.interrupted("r1")
    assert tracker.turns[0].ttfa_ms == pytest.approx(500)
    assert tracker.turns[0].interrupted


def test_response_without_a_user_turn_has_no_latencies() -> None:
    tracker = MetricsTracker(PRICES)
    tracker.response_created("r1", 1.0)
    turn = tracker.response_done("r1", "completed", None, 2.0)
    assert turn.trigger == "server"
    assert turn.ttfb_ms is None and turn.total_ms is None and turn.realtime_factor is None
    assert turn.cost_usd is None  # no usage


def test_latest_turn_end_wins_and_discard_forgets_it() -> None:
    tracker = MetricsTracker()
    tracker.user_turn_ended(1.0, "voice")
    tracker.user_turn_ended(3.0, "voice")
    tracker.response_created("r1", 3.5)
    assert tracker.current("r1").response_ms == pytest.approx(500)
    tracker.user_turn_ended(5.0, "ptt")
    tracker.discard_pending()
    tracker.response_created("r2", 6.0)
    assert tracker.current("r2").trigger == "server"


def test_unknown_response_events_are_ignored() -> None:
    tracker = MetricsTracker()
    tracker.audio_delta("nope", 10.0, 1.0)
    tracker.text_delta("nope", 1.0)
    tracker.first_played("nope", 1.0)
    assert tracker.response_done("nope", "completed", None, 1.0) is None
    assert tracker.turns == []


def test_session_summary() -> None:
    tracker = MetricsTracker(PRICES)
    for index, (ttfb, status) in enumerate(
        [(0.3, "completed"), (0.5, "cancelled"), (0.9, "completed")]
    ):
        start = index * 10.0
        rid = f"r{index}"
        tracker.user_turn_ended(start, "voice")
        tracker.response_created(rid, start + 0.1)
        tracker.audio_delta(rid, 500.0, start + ttfb)
        usage = Usage(
            input_tokens=100, output_tokens=10, input_text_tokens=100, output_text_tokens=10
        )
        tracker.response_done(rid, status, usage, start + 1.0)
    summary = tracker.summary()
    assert summary.turns == 3
    assert summary.completed == 2
    assert summary.interrupted == 1
    assert summary.usage.input_tokens == 300 and summary.usage.output_text_tokens == 30
    assert summary.cost_usd == pytest.approx(3 * (100 * 4.0 + 10 * 16.0) / 1_000_000)
    assert summary.ttfb_ms_median == pytest.approx(500)
    assert summary.ttfb_ms_max == pytest.approx(900)
    assert summary.ttfa_ms_median is None
    assert summary.total_ms_median == pytest.approx(1000)


def test_empty_summary() -> None:
    summary = MetricsTracker().summary()
    assert summary.turns == 0 and summary.cost_usd is None and summary.ttfb_ms_median is None


def test_turn_as_dict_is_json_ready() -> None:
    tracker = MetricsTracker(PRICES)
    tracker.user_turn_ended(0.0, "text")
    tracker.response_created("r1", 0.05)
    tracker.audio_delta("r1", 480.0, 0.1)
    turn = tracker.response_done("r1", "completed", Usage(output_audio_tokens=40), 0.3)
    data = json.loads(json.dumps(turn.as_dict()))
    assert data["ttfb_ms"] == 100.0
    assert data["realtime_factor"] == pytest.approx(2.4)
    assert data["usage"]["output_audio_tokens"] == 40
    assert data["cost_usd"] == pytest.approx(40 * 64.0 / 1_000_000)


def test_format_turn_line() -> None:
    turn = TurnMetrics(
        index=3,
        trigger="voice",
        anchor_at=0.0,
        first_audio_at=0.812,
        first_played_at=0.87,
        done_at=2.14,
        status="completed",
        usage=Usage(input_tokens=540, output_tokens=120),
        cost_usd=0.0123,
    )
    assert format_turn(turn) == (
        "turn 3 (voice): first audio 812 ms, heard 870 ms, done 2140 ms"
        " · 540 in / 120 out tokens · $0.0123"
    )
    cut = TurnMetrics(index=4, trigger="ptt", anchor_at=0.0, first_text_at=0.2, status="cancelled")
    assert format_turn(cut) == "turn 4 (ptt): first text 200 ms · interrupted"
