"""The smoke report: per-turn results, the exit code, the printed table and the JSON document.

The JSON follows `docs/smoke-report.schema.json` (`SCHEMA_ID`); the table shows the same
figures. Latencies are the client-side ones of `voicecli.metrics` (milliseconds from the end
of the user's turn as the client saw it: `speech_stopped` arriving in VAD mode, the commit in
push-to-talk mode, the send of a text turn).

Pure: no I/O, no clock (the runner fills in the times).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from voicecli.metrics import TurnMetrics
from voicecli.protocol.events import Usage
from voicecli.smoke.script import Expectation, TurnSpec


__all__ = ["SCHEMA_ID", "Report", "Target", "TurnResult"]

SCHEMA_ID = "https://voicecli.dev/schemas/smoke-report-1.json"

COMPLETED = "completed"
TIMEOUT = "timeout"
NOT_RUN = "not_run"
ERROR = "error"


@dataclass(slots=True)
class TurnResult:
    """What happened in one turn."""

    index: int
    """1-based."""
    spec: TurnSpec
    status: str = NOT_RUN
    """`completed`, `failed`, `incomplete`, `cancelled` (from the reply's `response.done`),
    `timeout` (no reply within `--timeout`), `error` (the connection failed during the turn) or
    `not_run` (an earlier turn timed out, or the connection failed)."""
    input_ms: float | None = None
    """Length of the WAV input (None for text)."""
    user_transcript: str | None = None
    assistant_transcript: str | None = None
    metrics: TurnMetrics | None = None
    """The reply's metrics (the last response of the turn that was not interrupted)."""
    responses: int = 0
    """Responses during the turn, interrupted ones included."""
    audio_file: str | None = None
    matched: list[bool] = field(default_factory=list)
    """One per `spec.expectations` once checked."""
    note: str | None = None
    """Why a turn failed or timed out, in one line."""

    def check_expectations(self) -> None:
        self.matched = [
            expectation.matches(self.assistant_transcript, self.user_transcript)
            for expectation in self.spec.expectations
        ]

    @property
    def passed(self) -> bool:
        return (
            self.status == COMPLETED
            and all(self.matched)
            and len(self.matched) == len(self.spec.expectations)
        )

    def failed_expectations(self) -> list[Expectation]:
        return [e for e, ok in zip(self.spec.expectations, self.matched, strict=False) if not ok]


@dataclass(frozen=True, slots=True)
class Target:
    """Where the run went and how it was set up."""

    server: str
    """`local`, `url` or `openai`."""
    url: str
    model: str
    dialect: str
    voice: str | None
    mode: str
    pace: str


@dataclass(slots=True)
class Report:
    target: Target
    turns: list[TurnResult]
    started_at: str = ""
    """ISO 8601 with the timezone."""
    duration_s: float = 0.0
    session_id: str | None = None
    server_model: str | None = None
    """The model the server says the session uses."""
    out_dir: str | None = None
    error: str | None = None
    """The connection or audio error that ended the run (exit 2)."""
    exception: BaseException | None = field(default=None, repr=False)
    """That error as raised (the command re-raises it after printing the report)."""

    @property
    def exit_code(self) -> int:
        if self.error is not None:
            return 2
        return 0 if all(turn.passed for turn in self.turns) else 1

    # --- JSON ------------------------------------------------------------------------------

    def as_json(self) -> dict[str, Any]:
        turns = [_turn_json(turn) for turn in self.turns]
        finished = [t.metrics for t in self.turns if t.metrics is not None]
        costs = [m.cost_usd for m in finished if m.cost_usd is not None]
        checks = [ok for turn in self.turns for ok in turn.matched]
        total = Usage()
        for metrics in finished:
            if metrics.usage is not None:
                total = _add(total, metrics.usage)
        return {
            "$schema": SCHEMA_ID,
            "voicecli_version": _version(),
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "target": {
                "server": self.target.server,
                "url": self.target.url,
                "model": self.target.model,
                "dialect": self.target.dialect,
                "voice": self.target.voice,
                "mode": self.target.mode,
                "pace": self.target.pace,
            },
            "session": {"id": self.session_id, "model": self.server_model},
            "out_dir": self.out_dir,
            "passed": self.exit_code == 0,
            "exit_code": self.exit_code,
            "error": self.error,
            "turns": turns,
            "summary": {
                "turns": len(self.turns),
                "completed": sum(1 for t in self.turns if t.status == COMPLETED),
                "timed_out": sum(1 for t in self.turns if t.status == TIMEOUT),
                "not_run": sum(1 for t in self.turns if t.status == NOT_RUN),
                "expectations": len(checks),
                "expectations_failed": checks.count(False),
                "usage": _usage_json(total) if finished else None,
                "cost_usd": round(sum(costs), 6) if costs else None,
            },
        }

    # --- the table -------------------------------------------------------------------------

    def render(self) -> str:
        """The readable report: one row of figures per turn, then transcripts and checks."""
        header = (
            "#",
            "input",
            "status",
            "created",
            "1st audio",
            "1st text",
            "audio/wall",
            "total",
            "tokens in/out",
            "cost",
        )
        rows = [header]
        for turn in self.turns:
            m = turn.metrics
            rows.append(
                (
                    str(turn.index),
                    turn.spec.label(28),
                    _status_cell(turn),
                    _ms(m.response_ms) if m else "-",
                    _ms(m.ttfb_ms) if m else "-",
                    _ms(m.first_text_ms) if m else "-",
                    _audio_cell(m),
                    _ms(m.total_ms) if m else "-",
                    _tokens_cell(m),
                    f"${m.cost_usd:.4f}" if m and m.cost_usd is not None else "-",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [
            "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append("")
        lines.append(
            "Latencies in ms from the end of the user's turn as the client saw it "
            "(speech_stopped, commit or text sent); audio/wall: reply audio vs the time it "
            "took to arrive."
        )
        for turn in self.turns:
            lines.append("")
            lines.append(f"Turn {turn.index}: {turn.spec.label(60)}")
            if turn.spec.kind == "wav" or turn.user_transcript is not None:
                lines.append(f"  user:      {_quote(turn.user_transcript)}")
            lines.append(f"  assistant: {_quote(turn.assistant_transcript)}")
            for expectation, ok in zip(turn.spec.expectations, turn.matched, strict=False):
                lines.append(f"  expect {expectation.describe()}: {'ok' if ok else 'NO MATCH'}")
            if turn.audio_file:
                lines.append(f"  audio:     {turn.audio_file}")
            if turn.note:
                lines.append(f"  note:      {turn.note}")
        lines.append("")
        lines.append(self.summary_line())
        return "\n".join(lines)

    def summary_line(self) -> str:
        done = sum(1 for t in self.turns if t.status == COMPLETED)
        checks = [ok for turn in self.turns for ok in turn.matched]
        costs = [t.metrics.cost_usd for t in self.turns if t.metrics and t.metrics.cost_usd]
        parts = [f"{done}/{len(self.turns)} turns completed"]
        if checks:
            parts.append(f"{checks.count(True)}/{len(checks)} expectations matched")
        if costs:
            parts.append(f"${sum(costs):.4f}")
        verdict = {0: "PASS", 1: "FAIL", 2: "ERROR"}[self.exit_code]
        if self.error:
            parts.append(self.error)
        return f"{verdict}: " + ", ".join(parts)


# --- helpers ----------------------------------------------------------------------------------


def _version() -> str:
    from voicecli import __version__

    return __version__


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _usage_json(usage: Usage) -> dict[str, int]:
    return {name: getattr(usage, name) for name in Usage.__dataclass_fields__}


def _add(a: Usage, b: Usage) -> Usage:
    return Usage(**{n: getattr(a, n) + getattr(b, n) for n in Usage.__dataclass_fields__})


def _turn_json(turn: TurnResult) -> dict[str, Any]:
    spec, m = turn.spec, turn.metrics
    if spec.kind == "wav":
        given: dict[str, Any] = {"kind": "wav", "wav": spec.value, "duration_ms": turn.input_ms}
    else:
        given = {"kind": "text", "text": spec.value}
    factor = m.realtime_factor if m else None
    return {
        "index": turn.index,
        "input": given,
        "status": turn.status,
        "passed": turn.passed,
        "trigger": m.trigger if m else None,
        "response_id": m.response_id if m else None,
        "user_transcript": turn.user_transcript,
        "assistant_transcript": turn.assistant_transcript,
        "assistant_audio_file": turn.audio_file,
        "latency_ms": {
            "response_created": _round(m.response_ms) if m else None,
            "first_audio": _round(m.ttfb_ms) if m else None,
            "first_transcript": _round(m.first_text_ms) if m else None,
            "first_played": _round(m.ttfa_ms) if m else None,
            "total": _round(m.total_ms) if m else None,
        },
        "audio": {
            "assistant_ms": _round(m.audio_ms) if m else None,
            "wall_ms": _round(m.stream_ms) if m else None,
            "realtime_factor": None if factor is None else round(factor, 3),
            "underruns": m.underruns if m else None,
        },
        "usage": _usage_json(m.usage) if m and m.usage is not None else None,
        "cost_usd": m.cost_usd if m else None,
        "responses": turn.responses,
        "expectations": [
            {"on": e.on, "pattern": e.pattern, "matched": ok}
            for e, ok in zip(spec.expectations, _padded(turn), strict=True)
        ],
        "note": turn.note,
    }


def _padded(turn: TurnResult) -> Sequence[bool | None]:
    """Match results, None for expectations never checked (the turn did not run)."""
    checked: list[bool | None] = list(turn.matched)
    return checked + [None] * (len(turn.spec.expectations) - len(checked))


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 10:
        return f"{value:.1f} ms"
    return f"{value:.0f} ms" if value < 10_000 else f"{value / 1000:.1f} s"


def _audio_cell(m: TurnMetrics | None) -> str:
    if m is None or not m.audio_ms:
        return "-"
    wall = f"{m.stream_ms / 1000:.1f}" if m.stream_ms is not None else "?"
    return f"{m.audio_ms / 1000:.1f}/{wall} s"


def _tokens_cell(m: TurnMetrics | None) -> str:
    if m is None or m.usage is None:
        return "-"
    return f"{m.usage.input_tokens}/{m.usage.output_tokens}"


def _status_cell(turn: TurnResult) -> str:
    if turn.status == COMPLETED and not turn.passed:
        return "NO MATCH"
    return {COMPLETED: "ok", TIMEOUT: "TIMEOUT", NOT_RUN: "not run", ERROR: "ERROR"}.get(
        turn.status, turn.status.upper()
    )


def _quote(text: str | None) -> str:
    if text is None:
        return "(none)"
    return text if text else '""'
