"""Per-turn latency, usage and cost of a realtime conversation, and a session summary.

Pure bookkeeping: the engine calls the `MetricsTracker` methods with timestamps from its clock
(seconds, monotonic); nothing here reads a clock, a socket or a device.

Definitions (all latencies in milliseconds, measured on the client, from the *anchor*):

- anchor: the moment the user's turn ended as the client saw it: arrival of
  `input_audio_buffer.speech_stopped` (server VAD; note that the server sends it only after
  its `silence_duration_ms` of silence), the push-to-talk release that committed the audio, or
  the moment a typed message was sent.
- `response_ms`: anchor -> arrival of `response.created`.
- `ttfb_ms` (time to first byte): anchor -> arrival of the first `response.output_audio.delta`.
- `first_text_ms`: anchor -> arrival of the first assistant transcript or text delta.
- `ttfa_ms` (time to first audio): anchor -> the first sample of the reply reaching the output
  device, as reported by the audio backend (its latency-corrected played position); absent
  without an audio device.
- `audio_ms`: assistant audio received for the response (its duration when played).
- `stream_ms`: first audio delta -> `response.done` (how long the audio took to arrive).
- `realtime_factor`: `audio_ms / stream_ms`, how many times faster than real time the audio
  arrived; below 1.0 playback would run dry.
- `total_ms`: anchor -> `response.done`.

Usage comes from `response.done`; cost = tokens x the model's prices (USD per 1M tokens, from
the config's `[prices]`, see `voicecli.config.ModelPrices`). Cached input tokens are a subset
of the input tokens and are billed at the cached rate.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Protocol

from voicecli.config import ModelPrices
from voicecli.protocol.events import Usage


__all__ = [
    "MetricsTracker",
    "SessionSummary",
    "TurnMetrics",
    "Timings",
    "cost_usd",
    "format_timings",
    "format_turn",
]


def cost_usd(usage: Usage, prices: ModelPrices) -> float:
    """What `usage` costs at `prices` (USD per 1M tokens).

    Cached tokens are billed at the cached rate and the rest of the input at the full rate.
    Totals the server gives without a text/audio split (a cached total without details, input
    or output tokens beyond the listed text, audio and image tokens) are billed as text.
    Image tokens have no price in the table and are not billed.
    """
    cached_text = usage.cached_text_tokens
    cached_audio = usage.cached_audio_tokens
    cached_text += max(0, usage.cached_tokens - cached_text - cached_audio)
    listed_in = usage.input_text_tokens + usage.input_audio_tokens + usage.input_image_tokens
    input_text = usage.input_text_tokens + max(0, usage.input_tokens - listed_in)
    listed_out = usage.output_text_tokens + usage.output_audio_tokens
    output_text = usage.output_text_tokens + max(0, usage.output_tokens - listed_out)
    text_in = max(0, input_text - cached_text)
    audio_in = max(0, usage.input_audio_tokens - cached_audio)
    total = (
        text_in * prices.text_input
        + cached_text * prices.text_cached_input
        + audio_in * prices.audio_input
        + cached_audio * prices.audio_cached_input
        + output_text * prices.text_output
        + usage.output_audio_tokens * prices.audio_output
    )
    return total / 1_000_000


def _ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start) * 1000.0)


@dataclass(slots=True)
class TurnMetrics:
    """One response and the user turn that led to it. Times are clock seconds."""

    index: int
    """1-based turn number in the session."""
    trigger: str
    """What ended the user's turn: `voice` (server VAD), `ptt`, `text`, or `server` when a
    response came without a user turn the client saw."""
    response_id: str = ""
    anchor_at: float | None = None
    response_created_at: float | None = None
    first_audio_at: float | None = None
    first_text_at: float | None = None
    first_played_at: float | None = None
    done_at: float | None = None
    audio_ms: float = 0.0
    status: str | None = None
    """`completed`, `cancelled`, `incomplete` or `failed` (from `response.done`)."""
    interrupted: bool = False
    """The user barged in on this reply."""
    usage: Usage | None = None
    cost_usd: float | None = None
    """None when the model has no known price or the server sent no usage."""
    underruns: int | None = None
    """Playback underruns during the reply (from the audio backend), when known."""

    @property
    def response_ms(self) -> float | None:
        return _ms(self.anchor_at, self.response_created_at)

    @property
    def ttfb_ms(self) -> float | None:
        return _ms(self.anchor_at, self.first_audio_at)

    @property
    def first_text_ms(self) -> float | None:
        return _ms(self.anchor_at, self.first_text_at)

    @property
    def ttfa_ms(self) -> float | None:
        return _ms(self.anchor_at, self.first_played_at)

    @property
    def stream_ms(self) -> float | None:
        return _ms(self.first_audio_at, self.done_at)

    @property
    def realtime_factor(self) -> float | None:
        stream = self.stream_ms
        if not stream or not self.audio_ms:
            return None
        return self.audio_ms / stream

    @property
    def total_ms(self) -> float | None:
        return _ms(self.anchor_at, self.done_at)

    @property
    def finished(self) -> bool:
        return self.done_at is not None

    def as_dict(self) -> dict[str, object]:
        """Plain data for JSON reports (`voicecli smoke --json`)."""
        usage = self.usage
        return {
            "index": self.index,
            "trigger": self.trigger,
            "response_id": self.response_id,
            "status": self.status,
            "interrupted": self.interrupted,
            "response_ms": _round(self.response_ms),
            "ttfb_ms": _round(self.ttfb_ms),
            "first_text_ms": _round(self.first_text_ms),
            "ttfa_ms": _round(self.ttfa_ms),
            "audio_ms": _round(self.audio_ms),
            "stream_ms": _round(self.stream_ms),
            "realtime_factor": None
            if self.realtime_factor is None
            else round(self.realtime_factor, 3),
            "total_ms": _round(self.total_ms),
            "underruns": self.underruns,
            "usage": None if usage is None else _usage_dict(usage),
            "cost_usd": self.cost_usd,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _usage_dict(usage: Usage) -> dict[str, int]:
    return {name: getattr(usage, name) for name in Usage.__dataclass_fields__}


def _add_usage(a: Usage, b: Usage) -> Usage:
    return Usage(
        **{name: getattr(a, name) + getattr(b, name) for name in Usage.__dataclass_fields__}
    )


@dataclass(frozen=True, slots=True)
class SessionSummary:
    """Totals and typical latencies over the finished turns of a session."""

    turns: int
    completed: int
    interrupted: int
    usage: Usage
    cost_usd: float | None
    """Sum over turns with a known cost; None when no turn had one."""
    ttfb_ms_median: float | None
    ttfa_ms_median: float | None
    total_ms_median: float | None
    ttfb_ms_max: float | None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


class MetricsTracker:
    """Collects `TurnMetrics` as events happen; `turns` lists the finished ones in order."""

    def __init__(self, prices: ModelPrices | None = None) -> None:
        self.prices = prices
        self.turns: list[TurnMetrics] = []
        self._anchor: tuple[float, str] | None = None
        self._open: dict[str, TurnMetrics] = {}
        self._count = 0
        self.revision = 0
        """Bumped whenever `summary()` may change (a turn finished; a finished turn was first
        heard or interrupted), so a reader polling it can keep the last one until then."""

    # --- events --------------------------------------------------------------------------

    def user_turn_ended(self, now: float, trigger: str) -> None:
        """The user finished a turn (`voice`, `ptt` or `text`); the next response answers it.

        A later turn end replaces an unanswered one: only the latest counts.
        """
        self._anchor = (now, trigger)

    def discard_pending(self) -> None:
        """The user turn will get no response (e.g. its commit was refused)."""
        self._anchor = None

    def response_created(self, response_id: str, now: float) -> TurnMetrics:
        anchor_at, trigger = self._anchor if self._anchor else (None, "server")
        self._anchor = None
        self._count += 1
        turn = TurnMetrics(
            index=self._count,
            trigger=trigger,
            response_id=response_id,
            anchor_at=anchor_at,
            response_created_at=now,
        )
        self._open[response_id] = turn
        return turn

    def audio_delta(self, response_id: str, ms: float, now: float) -> None:
        turn = self._open.get(response_id)
        if turn is None:
            return
        if turn.first_audio_at is None:
            turn.first_audio_at = now
        turn.audio_ms += ms

    def text_delta(self, response_id: str, now: float) -> None:
        turn = self._open.get(response_id)
        if turn is not None and turn.first_text_at is None:
            turn.first_text_at = now

    def first_played(self, response_id: str, at: float) -> None:
        """The first sample of this response reached the device at `at` (clock seconds)."""
        turn = self._turn(response_id)
        if turn is not None and turn.first_played_at is None:
            if turn.first_audio_at is not None:
                at = max(at, turn.first_audio_at)  # cannot be heard before it arrived
            turn.first_played_at = at
            self.revision += 1

    def interrupted(self, response_id: str) -> None:
        turn = self._turn(response_id)
        if turn is not None:
            turn.interrupted = True
            self.revision += 1

    def set_underruns(self, response_id: str, underruns: int) -> None:
        turn = self._turn(response_id)
        if turn is not None:
            turn.underruns = underruns

    def response_done(
        self, response_id: str, status: str, usage: Usage | None, now: float
    ) -> TurnMetrics | None:
        """Close the turn of `response_id`; returns it (None for an unknown response)."""
        turn = self._open.pop(response_id, None)
        if turn is None:
            return None
        turn.done_at = now
        turn.status = status
        turn.usage = usage
        if usage is not None and self.prices is not None:
            turn.cost_usd = cost_usd(usage, self.prices)
        self.turns.append(turn)
        self.revision += 1
        return turn

    # --- reading -------------------------------------------------------------------------

    def current(self, response_id: str) -> TurnMetrics | None:
        return self._turn(response_id)

    def summary(self) -> SessionSummary:
        turns = self.turns
        usage = Usage()
        for turn in turns:
            if turn.usage is not None:
                usage = _add_usage(usage, turn.usage)
        costs = [turn.cost_usd for turn in turns if turn.cost_usd is not None]
        ttfb = [t.ttfb_ms for t in turns if t.ttfb_ms is not None]
        return SessionSummary(
            turns=len(turns),
            completed=sum(1 for t in turns if t.status == "completed"),
            interrupted=sum(1 for t in turns if t.interrupted or t.status == "cancelled"),
            usage=usage,
            cost_usd=sum(costs) if costs else None,
            ttfb_ms_median=_median(ttfb),
            ttfa_ms_median=_median([t.ttfa_ms for t in turns if t.ttfa_ms is not None]),
            total_ms_median=_median([t.total_ms for t in turns if t.total_ms is not None]),
            ttfb_ms_max=max(ttfb) if ttfb else None,
        )

    def _turn(self, response_id: str) -> TurnMetrics | None:
        turn = self._open.get(response_id)
        if turn is not None:
            return turn
        for finished in reversed(self.turns):  # playback outlives the response
            if finished.response_id == response_id:
                return finished
        return None


class Timings(Protocol):
    """A turn's latencies as `TurnMetrics` has them (and the history's stored figures)."""

    @property
    def ttfb_ms(self) -> float | None: ...
    @property
    def first_text_ms(self) -> float | None: ...
    @property
    def ttfa_ms(self) -> float | None: ...
    @property
    def total_ms(self) -> float | None: ...


def format_timings(timings: Timings) -> str:
    """`first audio 812 ms, heard 870 ms, done 2140 ms` (first text when no audio came);
    empty when nothing was measured."""
    parts = []
    if timings.ttfb_ms is not None:
        parts.append(f"first audio {timings.ttfb_ms:.0f} ms")
    elif timings.first_text_ms is not None:
        parts.append(f"first text {timings.first_text_ms:.0f} ms")
    if timings.ttfa_ms is not None:
        parts.append(f"heard {timings.ttfa_ms:.0f} ms")
    if timings.total_ms is not None:
        parts.append(f"done {timings.total_ms:.0f} ms")
    return ", ".join(parts)


def format_turn(turn: TurnMetrics) -> str:
    """The one-line per-turn summary the TUI shows, e.g.

    `turn 3 (voice): first audio 812 ms, heard 870 ms, done 2140 ms · 540 in / 120 out tokens
    · $0.0123`
    """
    timing = format_timings(turn)
    parts = [f"turn {turn.index} ({turn.trigger})" + (f": {timing}" if timing else "")]
    if turn.interrupted or turn.status == "cancelled":
        parts.append("interrupted")
    elif turn.status and turn.status != "completed":
        parts.append(turn.status)
    if turn.usage is not None:
        parts.append(f"{turn.usage.input_tokens} in / {turn.usage.output_tokens} out tokens")
    if turn.cost_usd is not None:
        parts.append(f"${turn.cost_usd:.4f}")
    return " · ".join(parts)
