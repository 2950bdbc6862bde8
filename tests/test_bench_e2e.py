"""The cheap parts of bench/e2e.py: the /proc readers and how timestamps are paired."""

from __future__ import annotations

import time

import numpy as np

from bench import e2e


def test_cpu_seconds_counts_this_process() -> None:
    before = e2e.cpu_seconds()
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    used = e2e.cpu_seconds() - before
    assert 0.15 <= used <= 1.0


def test_rss_grows_with_touched_memory() -> None:
    before = e2e.status_kib("VmRSS")
    block = np.ones(64 * 1024 * 1024, np.uint8)  # touched: really resident
    after = e2e.status_kib("VmRSS")
    assert after - before > 50 * 1024
    assert e2e.status_kib("VmHWM") >= after
    del block


def test_per_response_pairs_each_reply_with_the_speech_stop_before_it() -> None:
    events = [
        (1.0, "input_audio_buffer.speech_stopped", ""),
        (1.1, "response.created", "r1"),
        (1.2, "response.output_audio.delta", "r1"),
        (1.3, "response.output_audio.delta", "r1"),
        (2.0, "response.created", "r2"),  # no user turn before it
        (3.0, "input_audio_buffer.speech_stopped", ""),
        (3.5, "input_audio_buffer.speech_stopped", ""),
        (3.6, "response.created", "r3"),
    ]
    assert e2e._per_response(events) == {
        "r1": {"response.created": 1.1, "speech_stopped": 1.0, "delta": 1.2},
        "r2": {"response.created": 2.0},
        "r3": {"response.created": 3.6, "speech_stopped": 3.5},
    }


def test_deltas_match_plays_per_item_in_order() -> None:
    arrivals = [1.0, 1.1, 2.0, 2.1, 2.2]
    items = ["a", "a", "b", "b", "b"]
    plays = [(1.0005, "a"), (1.1002, "a"), (2.001, "b"), (2.101, "b")]  # b's last never played
    handed = e2e._delta_to_play_ms(arrivals, items, plays)
    assert np.allclose(handed, [0.5, 0.2, 1.0, 1.0])


def test_probe_reads_types_and_ids_from_frames() -> None:
    probe = e2e.Probe()
    probe.on_received(
        '{"type": "response.created", "event_id": "e1", "response": {"object": '
        '"realtime.response", "id": "resp_9", "status": "in_progress"}}'
    )
    probe.on_received(
        '{"type": "response.output_audio.delta", "event_id": "e2", "response_id": "resp_9", '
        '"item_id": "item_4", "output_index": 0, "content_index": 0, "delta": "AAAA"}'
    )
    probe.on_received('{"type": "rate_limits.updated", "event_id": "e3"}')
    assert [(kind, response) for _, kind, response in probe.received] == [
        ("response.created", "resp_9"),
        ("response.output_audio.delta", "resp_9"),
    ]
    assert probe.delta_items == ["item_4"]
    probe.block_handed(captured_at=time.monotonic() - 0.03, samples=480)
    probe.appended()
    probe.on_sent('{"type":"input_audio_buffer.append","event_id":"x","audio":"AAAA"}')
    # The block ended 10 ms ago (captured 30 ms ago, 20 ms long).
    assert 10 <= probe.upstream_ms[0] < 500 and 0 <= probe.engine_upstream_ms[0] < 500


def test_decode_row_measures_the_core() -> None:
    (row,) = e2e.decode_rows(200)
    assert row[0].startswith("Decode audio deltas in the protocol core (200 x 100 ms)")
    assert " us/event, " in row[1] and row[1].endswith(" events/s")
