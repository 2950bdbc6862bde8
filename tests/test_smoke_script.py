"""The pure parts of `voicecli smoke`: script parsing, expectations, the report and exit code."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from voicecli.errors import UsageError
from voicecli.metrics import TurnMetrics
from voicecli.protocol.events import Usage
from voicecli.smoke.report import Report, Target, TurnResult
from voicecli.smoke.runner import reply_metrics
from voicecli.smoke.script import TurnSpec, apply_expects, parse_expectation, parse_script


SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "docs" / "smoke-report.schema.json").read_text()
)
TARGET = Target(
    "local", "ws://127.0.0.1:1/v1/realtime", "gpt-realtime", "ga", "alloy", "vad", "fast"
)


# --- expectations ------------------------------------------------------------------------------


def test_expectation_sides_and_case() -> None:
    plain = parse_expectation("Paris")
    user = parse_expectation("user:capital of \\w+")
    explicit = parse_expectation("assistant:user:")
    assert (plain.on, plain.pattern) == ("assistant", "Paris")
    assert (user.on, user.pattern) == ("user", "capital of \\w+")
    assert (explicit.on, explicit.pattern) == ("assistant", "user:")
    assert plain.matches("It is PARIS.", None)
    assert not plain.matches(None, "paris")
    assert user.matches("Paris", "What is the Capital of France?")
    assert not user.matches("capital of France", None)


def test_expect_flags_map_to_turns_in_order() -> None:
    turns = [TurnSpec("text", "a"), TurnSpec("wav", "b.wav"), TurnSpec("text", "c")]
    mapped = apply_expects(turns, ["first", "", "user:third"])
    assert [len(turn.expectations) for turn in mapped] == [1, 0, 1]
    assert mapped[2].expectations[0].on == "user"
    assert apply_expects(turns, ["x"])[1:] == turns[1:]
    with pytest.raises(UsageError, match="4 --expect given for 3 turn"):
        apply_expects(turns, ["a", "b", "c", "d"])
    with pytest.raises(UsageError, match="--expect #2: '\\[' is not a valid regular expression"):
        apply_expects(turns, ["ok", "["])


# --- scripts -------------------------------------------------------------------------------------


def test_script_turns_expectations_and_paths(tmp_path: Path) -> None:
    text = (
        "# comment\n"
        '{"wav": "q.wav", "expect": "paris", "expect_user": ["capital", "france"]}\n'
        "\n"
        '{"text": "And Italy?", "expect": ["rome"]}\n'
        '{"wav": "/abs/x.wav"}\n'
    )
    turns = parse_script(text, source="run.jsonl", base_dir=tmp_path)
    assert [(t.kind, t.value) for t in turns] == [
        ("wav", str(tmp_path / "q.wav")),
        ("text", "And Italy?"),
        ("wav", "/abs/x.wav"),
    ]
    assert [(e.on, e.pattern) for e in turns[0].expectations] == [
        ("assistant", "paris"),
        ("user", "capital"),
        ("user", "france"),
    ]
    assert turns[1].source == "run.jsonl:4"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "s.jsonl:1: not valid JSON (Expecting value)"),
        ("[1, 2]", 's.jsonl:1: each line must be a JSON object such as {"text": "Hi"}'),
        ('{"text": "a", "say": "b"}', "s.jsonl:1: unknown key 'say' (use wav, text, expect"),
        ('{"text": "a", "wav": "b.wav"}', "s.jsonl:1: give exactly one of 'wav' and 'text'"),
        ("{}", "s.jsonl:1: give exactly one of 'wav' and 'text'"),
        ('{"text": "  "}', "s.jsonl:1: 'text' must be a non-empty string"),
        ('{"text": "a", "expect": 3}', "s.jsonl:1: expect must be a regular expression or a list"),
        ('{"text": "a", "expect_user": "("}', "s.jsonl:1: expect_user: '(' is not a valid"),
    ],
)
def test_script_errors_name_file_and_line(line: str, message: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_script(line, source="s.jsonl")
    assert str(raised.value).startswith(message)


def test_empty_script_is_an_error() -> None:
    with pytest.raises(UsageError, match="script s.jsonl has no turns"):
        parse_script("# only a comment\n\n", source="s.jsonl")


# --- the report ---------------------------------------------------------------------------------


def finished(index: int, status: str = "completed", *, audio: bool = True) -> TurnMetrics:
    turn = TurnMetrics(index=index, trigger="text", response_id=f"resp_{index}", anchor_at=10.0)
    turn.response_created_at = 10.004
    turn.first_text_at = 10.020
    if audio:
        turn.first_audio_at = 10.021
        turn.first_played_at = 10.090
        turn.audio_ms = 1500.0
    turn.done_at = 11.6
    turn.status = status
    turn.usage = Usage(input_tokens=10, output_tokens=20, output_audio_tokens=15)
    turn.cost_usd = 0.001
    return turn


def result(
    index: int, *expects: str, status: str = "completed", assistant: str = "Hi"
) -> TurnResult:
    expectations = tuple(parse_expectation(text) for text in expects)
    spec = TurnSpec("text", f"turn {index}", expectations)
    outcome = TurnResult(index=index, spec=spec, status=status)
    if status not in ("timeout", "not_run"):
        outcome.metrics = finished(index, status)
        outcome.assistant_transcript = assistant
        outcome.user_transcript = f"turn {index}"
        outcome.check_expectations()
    return outcome


def validate(report: Report) -> dict[str, object]:
    data = report.as_json()
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(
        data
    )
    return data


def test_exit_codes() -> None:
    assert Report(TARGET, [result(1, "hi"), result(2)]).exit_code == 0
    assert Report(TARGET, [result(1, "bye")]).exit_code == 1
    assert Report(TARGET, [result(1), result(2, status="timeout")]).exit_code == 1
    assert Report(TARGET, [result(1, status="failed")]).exit_code == 1
    assert Report(TARGET, [result(1, status="incomplete")]).exit_code == 1
    assert Report(TARGET, [result(1)], error="cannot reach x").exit_code == 2


def test_report_json_and_table() -> None:
    report = Report(
        TARGET,
        [result(1, "hi", "user:turn"), result(2, "nope"), result(3, status="timeout")],
        started_at="2026-11-21T10:00:00+00:00",
    )
    report.turns[2].note = "no reply within 5 s: the server did not start a response"
    data = validate(report)
    first, second, third = data["turns"]  # type: ignore[misc]
    assert first["latency_ms"] == {
        "response_created": 4.0,
        "first_audio": 21.0,
        "first_transcript": 20.0,
        "first_played": 90.0,
        "total": 1600.0,
    }
    assert first["audio"]["realtime_factor"] == round(1500 / 1579, 3)
    assert [e["matched"] for e in first["expectations"]] == [True, True]
    assert second["passed"] is False and second["expectations"][0]["matched"] is False
    assert third["status"] == "timeout" and third["latency_ms"]["total"] is None
    assert data["summary"]["expectations_failed"] == 1  # type: ignore[index]
    assert data["summary"]["usage"]["input_tokens"] == 20  # type: ignore[index]
    table = report.render()
    assert "NO MATCH" in table and "TIMEOUT" in table
    assert "expect assistant ~ /nope/: NO MATCH" in table
    assert "note:      no reply within 5 s" in table
    assert table.endswith("FAIL: 2/3 turns completed, 2/3 expectations matched, $0.0020")


def test_not_run_expectations_are_null() -> None:
    report = Report(TARGET, [result(1, "x", status="not_run")], error="cannot reach ws://h")
    data = validate(report)
    assert data["turns"][0]["expectations"] == [  # type: ignore[index]
        {"on": "assistant", "pattern": "x", "matched": None}
    ]
    assert data["passed"] is False and data["exit_code"] == 2


def test_reply_is_the_last_response_not_cancelled() -> None:
    cut, answer, late = finished(1, "cancelled"), finished(2), finished(3, "cancelled")
    assert reply_metrics([cut, answer, late]) is answer
    assert reply_metrics([cut]) is cut
    assert reply_metrics([]) is None
