"""The talk screen's wording and the inspector's grouping, as pure functions (no terminal)."""

from __future__ import annotations

import dataclasses
import time

from voicecli.echo import EchoMode
from voicecli.engine import EngineSnapshot, LogEntry
from voicecli.metrics import MetricsTracker
from voicecli.protocol.events import Usage
from voicecli.transcript import Line, LineKind
from voicecli.tui.eventlog import InspectorModel, format_row, is_stream
from voicecli.tui.render import (
    level_dbfs,
    meter,
    meter_cells,
    state_text,
    status_text,
    time_left,
    transcript_line,
    turn_text,
)
from voicecli.turns import Mode, State


def snapshot(**changes: object) -> EngineSnapshot:
    base = EngineSnapshot(
        connection="connected",
        connection_error=None,
        url="ws://127.0.0.1:1/v1/realtime",
        dialect="ga",
        model="gpt-realtime",
        voice="marin",
        session_id="sess_1",
        expires_at=10_000,
        mode=Mode.VAD,
        eagerness="auto",
        state=State.LISTENING,
        muted=False,
        recording=False,
        hold_source=None,
        text_only=False,
        echo_mode=EchoMode.GATE,
        echo_closed=False,
        mic_level=0.0,
        out_level=0.0,
        underruns=0,
        audio_lost=None,
        last_turn=None,
        summary=MetricsTracker().summary(),
    )
    return dataclasses.replace(base, **changes)


# --- status and state ----------------------------------------------------------------------


def test_time_left_counts_down_to_expired() -> None:
    assert time_left(None, 0) is None
    assert time_left(3600, 2.5) == "59 min left"  # whole minutes: no redraw every second
    assert time_left(7325, 0) == "122 min left"
    assert time_left(300, 0) == "5 min left"
    assert time_left(299, 0) == "4:59 left"  # the last five minutes count seconds
    assert time_left(100, 39.5) == "1:00 left"
    assert time_left(100, 99) == "0:01 left"
    assert time_left(100, 100) == "expired"


def test_status_line_names_everything_the_issue_asks_for() -> None:
    text = status_text(snapshot(), server="local demo server", now=10_000 - 125).plain
    assert text == (
        "● connected │ local demo server │ ga │ gpt-realtime │ marin │ vad │ echo gate │ 2:05 left"
    )
    semantic = status_text(snapshot(mode=Mode.SEMANTIC, eagerness="high"), server="x", now=0)
    assert "│ semantic (high) │" in semantic.plain
    reconnecting = status_text(snapshot(), server="x", now=0, connection="reconnecting (1 of 3)")
    assert reconnecting.plain.startswith("● reconnecting (1 of 3) │")
    assert reconnecting.spans[0].style == "yellow"
    text_only = status_text(snapshot(text_only=True), server="x", now=0).plain
    assert "text only" in text_only and "echo" not in text_only and "marin" not in text_only


def test_state_indicator_words_and_hints() -> None:
    def shown(**changes: object) -> str:
        return state_text(snapshot(**changes)).plain.strip()

    assert shown(connection="connecting") == "◌ connecting…"
    assert shown() == "◉ LISTENING"
    assert shown(state=State.USER_SPEAKING) == "● YOU ARE SPEAKING"
    assert shown(state=State.THINKING) == "◌ THINKING"
    assert shown(state=State.ASSISTANT_SPEAKING, echo_closed=True).startswith(
        "♪ ASSISTANT SPEAKING   echo guard"
    )
    assert shown(state=State.MUTED, muted=True) == "⊘ MUTED   m to unmute"
    assert shown(mode=Mode.PTT, state=State.IDLE) == "○ IDLE   space to talk"
    ptt_hold = state_text(snapshot(mode=Mode.PTT, state=State.IDLE), ptt_style="hold").plain
    assert ptt_hold.strip().endswith("hold space to talk")
    rec = shown(mode=Mode.PTT, state=State.USER_SPEAKING, recording=True, hold_source="toggle")
    assert rec == "● REC   space to send"
    assert shown(recording=True, hold_source="button").endswith("release the button to send")
    assert shown(text_only=True, state=State.IDLE).endswith("Enter to type a message")


def test_meter_scale() -> None:
    assert level_dbfs(0.0) == -60.0
    assert round(level_dbfs(0.5), 1) == -6.0
    assert meter("mic", 0.0, width=10).plain == "mic ▕░░░░░░░░░░▏"
    assert meter("out", 1.0, width=10).plain == "out ▕██████████▏"
    half = meter("mic", 10 ** (-30 / 20), width=10, note="gated").plain
    assert half == "mic ▕█████░░░░░▏ gated"
    assert meter_cells(10 ** (-30 / 20), width=10) == 5 and meter_cells(0.0) == 0
    assert meter("out", 0.9).spans[0].style == "red"


def test_turn_line_shows_latency_tokens_and_cost() -> None:
    from voicecli.config import DEFAULT_PRICES

    tracker = MetricsTracker(DEFAULT_PRICES["gpt-realtime"])
    tracker.user_turn_ended(10.0, "voice")
    tracker.response_created("resp_1", 10.2)
    tracker.audio_delta("resp_1", 500, 10.45)
    turn = tracker.response_done(
        "resp_1", "completed", Usage(input_tokens=100, output_tokens=50), 11.0
    )
    text = turn_text(turn)
    assert text.plain.startswith("turn 1 (voice): first audio 450 ms")
    assert "100 in / 50 out tokens" in text.plain and "$0.0012" in text.plain
    assert turn_text(None).plain == "no turns yet"
    tracker.user_turn_ended(20.0, "voice")
    tracker.response_created("resp_2", 20.5)
    tracker.audio_delta("resp_2", 500, 21.2)
    slow = turn_text(tracker.response_done("resp_2", "completed", None, 22.0))
    assert any("red" in str(span.style) for span in slow.spans)  # a reply a second late


# --- transcript lines ----------------------------------------------------------------------


def test_transcript_line_marks() -> None:
    def shown(**fields: object) -> str:
        return transcript_line(Line(key="k", **fields)).plain  # type: ignore[arg-type]

    assert shown(kind=LineKind.USER, text="hi") == "You: hi"
    assert shown(kind=LineKind.USER, text="hi there", typed=True) == "You (typed): hi there"
    assert shown(kind=LineKind.USER, text="…", pending=True) == "You: …"
    assert shown(kind=LineKind.ASSISTANT, text="Hel", streaming=True) == "Assistant: Hel ▌"
    assert (
        shown(kind=LineKind.ASSISTANT, text="The capital", interrupted=True, heard_ms=1240)
        == "Assistant: The capital  ⏹ interrupted after 1.2 s"
    )
    assert shown(kind=LineKind.NOTICE, text="local demo") == "· local demo"
    assert shown(kind=LineKind.ERROR, text="Server error x: y.", code="x") == "✖ Server error x: y."
    assert shown(kind=LineKind.TOOL, text="f({})") == "Tool: f({})"


# --- the inspector -------------------------------------------------------------------------


def entry(direction: str, type_: str, at: float = 0.0, **data: object) -> LogEntry:
    return LogEntry(at, direction, type_, {"type": type_, "event_id": "e", **data})


def test_streams_are_grouped_until_a_non_streaming_event() -> None:
    model = InspectorModel()
    model.add(entry("received", "session.created", 1.0, session={"id": "s"}))
    for index in range(5):
        model.add(entry("sent", "input_audio_buffer.append", 2.0 + index, audio="<960 bytes>"))
        model.add(entry("received", "response.output_audio.delta", 2.1, delta="<4800 bytes>"))
        model.add(entry("received", "response.output_audio_transcript.delta", 2.2, delta="ab "))
    model.add(entry("sent", "conversation.item.truncate", 3.0, item_id="i", audio_end_ms=850))
    model.add(entry("sent", "input_audio_buffer.append", 4.0, audio="<960 bytes>"))
    model.add(LogEntry(5.0, "engine", "barge-in", note="heard 850 ms"))

    rows = model.last(100)
    assert [(r.direction, r.type, r.count) for r in rows] == [
        ("received", "session.created", 1),
        ("sent", "input_audio_buffer.append", 5),
        ("received", "response.output_audio.delta", 5),
        ("received", "response.output_audio_transcript.delta", 5),
        ("sent", "conversation.item.truncate", 1),
        ("sent", "input_audio_buffer.append", 1),
        ("engine", "barge-in", 1),
    ]
    assert rows[1].audio_bytes == 4800 and rows[2].audio_bytes == 24000
    assert rows[1].at == 2.0  # a group shows when it began
    lines = [format_row(row) for row in rows]
    assert lines[1].endswith("→ input_audio_buffer.append ×5  4800 bytes")
    assert lines[3].endswith('response.output_audio_transcript.delta ×5  "ab ab ab ab ab "')
    assert lines[4].endswith('→ conversation.item.truncate  {"item_id":"i","audio_end_ms":850}')
    assert lines[6].endswith("· barge-in  heard 850 ms")
    stamp = time.strftime("%H:%M:%S", time.localtime(1.0))
    assert lines[0].startswith(f"{stamp}.000 ← session.created")


def test_inspector_keeps_a_bounded_history_and_counts_changes() -> None:
    model = InspectorModel(max_rows=3)
    for index in range(10):
        model.add(entry("received", "session.updated", float(index)))
    assert len(model.rows) == 3 and model.version == 10
    assert [row.at for row in model.last(2)] == [8.0, 9.0]
    assert is_stream("response.text.delta") and not is_stream("response.done")


def test_long_events_are_cut_in_the_inspector() -> None:
    model = InspectorModel()
    model.add(entry("received", "session.updated", 0.0, session={"instructions": "x" * 1000}))
    line = format_row(model.rows[-1])
    assert len(line) <= 300 and line.endswith("…")
    assert '{"session":{"instructions":"xxx' in line


def test_final_rows_are_handed_out_once_and_the_open_run_separately() -> None:
    model = InspectorModel(max_rows=4)
    model.add(entry("received", "session.created", 0.0))
    model.add(entry("sent", "input_audio_buffer.append", 1.0, audio="<960 bytes>"))
    assert [r.type for r in model.final_since(0)] == ["session.created"]
    assert [r.type for r in model.open_rows()] == ["input_audio_buffer.append"]
    written = model.final_count
    model.add(entry("sent", "input_audio_buffer.append", 1.1, audio="<960 bytes>"))
    assert model.final_since(written) == [] and model.open_rows()[0].count == 2
    model.add(entry("received", "input_audio_buffer.speech_started", 2.0))
    assert [(r.type, r.count) for r in model.final_since(written)] == [
        ("input_audio_buffer.append", 2),
        ("input_audio_buffer.speech_started", 1),
    ]
    assert model.open_rows() == []
    written = model.final_count
    for index in range(6):  # more than are kept: the oldest are gone, not handed out
        model.add(entry("received", "session.updated", 3.0 + index))
    assert [r.at for r in model.final_since(written)] == [5.0, 6.0, 7.0, 8.0]
