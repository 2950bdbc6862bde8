"""The schema oracle itself: it accepts the reference traffic and it can fail.

If the oracle could not fail, every "validates against the oracle" test built on it would be
worthless, so the failure cases here are as important as the passing ones.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.schema_oracle import validate_client_event, validate_server_event


FIXTURES = Path(__file__).parent / "fixtures"

# Deviations of the §10 reference traffic from the SDK types, each explained.
KNOWN_DEVIATIONS = {
    # The beta SDK types made `usage` required; the §10.2 beta capture (like 2024 servers)
    # has no usage on the completed input transcription.
    ("beta_voice_turn.jsonl", "conversation.item.input_audio_transcription.completed"): [
        "usage: Field required"
    ],
}


def _fixture_events() -> list[tuple[str, int, dict]]:
    events = []
    for path in sorted(FIXTURES.glob("*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            events.append((path.name, number, json.loads(line)))
    return events


@pytest.mark.parametrize(
    ("name", "number", "event"),
    _fixture_events(),
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_reference_traffic_is_valid(name: str, number: int, event: dict) -> None:
    dialect = "beta" if name.startswith("beta") else "ga"
    problems = validate_server_event(event, dialect)
    assert problems == KNOWN_DEVIATIONS.get((name, event["type"]), []), (number, event["type"])


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_misspelled_client_field_is_flagged(dialect: str) -> None:
    session = {"instruction": "Be brief."}  # should be `instructions`
    if dialect == "ga":
        session["type"] = "realtime"
    problems = validate_client_event({"type": "session.update", "session": session}, dialect)
    assert problems == [
        f"session.instruction: unknown field (not in "
        f"{'RealtimeSessionCreateRequest' if dialect == 'ga' else 'Session'})"
    ]


def test_misspelled_nested_field_is_flagged() -> None:
    event = {
        "type": "session.update",
        "session": {"type": "realtime", "audio": {"input": {"transcripton": {"model": "x"}}}},
    }
    assert validate_client_event(event, "ga") == [
        "session.audio.input.transcripton: unknown field (not in RealtimeAudioConfigInput)"
    ]


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_misspelled_field_inside_a_union_member_is_flagged(dialect: str) -> None:
    event = {
        "type": "conversation.item.create",
        "item": {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "hi", "txt": "typo"}],
        },
    }
    problems = validate_client_event(event, dialect)
    assert len(problems) == 1 and problems[0].startswith("item.content[0].txt: unknown field")


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_wrong_enum_value_is_flagged(dialect: str) -> None:
    event = {"type": "conversation.item.create", "item": {"type": "message", "role": "robot"}}
    assert validate_client_event(event, dialect)


def test_wrong_enum_value_in_session_is_flagged() -> None:
    event = {"type": "session.update", "session": {"type": "realtime", "output_modalities": ["x"]}}
    problems = validate_client_event(event, "ga")
    assert any("output_modalities.0" in problem for problem in problems)


def test_beta_session_shape_is_rejected_in_ga() -> None:
    event = {"type": "session.update", "session": {"voice": "sage", "modalities": ["text"]}}
    problems = validate_client_event(event, "ga")
    assert any("type: Field required" in problem for problem in problems)
    assert any(problem.startswith("session.voice: unknown field") for problem in problems)


@pytest.mark.parametrize("dialect", ["ga", "beta"])
def test_unknown_types_and_non_objects_are_flagged(dialect: str) -> None:
    assert validate_client_event({"type": "scooby.dooby.doo"}, dialect)
    assert validate_client_event({"event_id": "evt_1"}, dialect) == ["missing or non-string 'type'"]
    assert validate_client_event([], dialect) == ["event is a list, not an object"]
    assert validate_server_event({"type": "response.done"}, dialect)  # `response` missing


def test_dialect_specific_names_are_checked() -> None:
    delta = {
        "type": "response.output_audio.delta",
        "event_id": "event_1",
        "response_id": "resp_1",
        "item_id": "item_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "AAAA",
    }
    assert validate_server_event(delta, "ga") == []
    assert validate_server_event(delta, "beta")
    assert validate_server_event({**delta, "type": "response.audio.delta"}, "beta") == []


def test_untyped_keys_are_allowed_only_where_observed() -> None:
    delta = {
        "type": "response.output_audio_transcript.delta",
        "event_id": "event_1",
        "response_id": "resp_1",
        "item_id": "item_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "hi",
        "obfuscation": "x",
    }
    assert validate_server_event(delta, "ga") == []
    audio = {**delta, "type": "response.output_audio.delta", "delta": "AAAA"}
    assert validate_server_event(audio, "ga") == [
        "obfuscation: unknown field (not in ResponseAudioDeltaEvent)"
    ]
