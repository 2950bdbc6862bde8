"""What the talk screen shows, as pure functions of the engine's published state.

Each function takes plain values (an `EngineSnapshot`, a transcript `Line`, a level) and
returns a Rich `Text`, so widgets only compare and display, and the wording is tested without a
terminal. Nothing here reads a clock: callers pass `now`.
"""

from __future__ import annotations

import math

from rich.text import Text

from voicecli.engine import EngineSnapshot
from voicecli.metrics import TurnMetrics, format_turn
from voicecli.transcript import Line, LineKind
from voicecli.turns import Mode, State


__all__ = [
    "LOCAL_DEMO_NOTICE",
    "level_dbfs",
    "meter",
    "meter_cells",
    "state_text",
    "status_text",
    "time_left",
    "transcript_line",
    "turn_text",
]

LOCAL_DEMO_NOTICE = "local demo server — no API key; replies are synthetic"

_CONNECTION_STYLES = {
    "idle": "dim",
    "connecting": "yellow",
    "connected": "green",
    "reconnecting": "yellow",
    "closed": "dim",
    "failed": "bold red",
}

_STATE_LOOK: dict[State, tuple[str, str, str]] = {
    # state: (symbol, words, style)
    State.IDLE: ("○", "idle", "dim"),
    State.LISTENING: ("◉", "listening", "green"),
    State.USER_SPEAKING: ("●", "you are speaking", "bold cyan"),
    State.THINKING: ("◌", "thinking", "yellow"),
    State.ASSISTANT_SPEAKING: ("♪", "assistant speaking", "bold magenta"),
    State.MUTED: ("⊘", "muted", "bold red"),
}


CLOCK_IN_SECONDS_S = 300
"""The time left is shown in whole minutes until this many seconds remain: a clock ticking in
seconds would redraw the status line every second of the session."""


def time_left(expires_at: int | None, now: float) -> str | None:
    """`59 min left` until the server ends the session; `4:59 left` in the last five
    minutes; `expired`."""
    if expires_at is None:
        return None
    seconds = int(expires_at - now)
    if seconds <= 0:
        return "expired"
    if seconds >= CLOCK_IN_SECONDS_S:
        return f"{seconds // 60} min left"
    minutes, secs = divmod(seconds, 60)
    return f"{minutes}:{secs:02d} left"


def status_text(
    snapshot: EngineSnapshot,
    *,
    server: str,
    now: float,
    connection: str | None = None,
) -> Text:
    """The status line: connection, server, dialect, model, voice, mode, echo guard, time left.

    `connection` overrides the engine's own status (the app knows about reconnecting).
    """
    status = connection or snapshot.connection
    text = Text()
    text.append(f"● {status}", _CONNECTION_STYLES.get(status.split()[0], ""))
    parts = [server]
    if snapshot.dialect:
        parts.append(snapshot.dialect)
    if snapshot.model:
        parts.append(snapshot.model)
    if snapshot.voice and not snapshot.text_only:
        parts.append(snapshot.voice)
    mode = snapshot.mode.value
    if snapshot.mode is Mode.SEMANTIC:
        mode += f" ({snapshot.eagerness})"
    parts.append("text only" if snapshot.text_only else mode)
    if not snapshot.text_only:
        parts.append(f"echo {snapshot.echo_mode.value}")
    left = time_left(snapshot.expires_at, now)
    if left:
        parts.append(left)
    for part in parts:
        text.append(" │ ", "dim")
        text.append(part)
    return text


def state_text(snapshot: EngineSnapshot, *, ptt_style: str = "toggle") -> Text:
    """The state indicator, with the one hint that matters in that state."""
    if snapshot.connection in ("idle", "connecting"):
        return Text("◌ connecting…", "yellow")
    state = snapshot.state
    symbol, words, style = _STATE_LOOK[state]
    if snapshot.recording:
        symbol, words, style = "●", "REC", "bold white on red"
    text = Text(f" {symbol} {words.upper()} ", style)
    hint = _hint(snapshot, ptt_style)
    if hint:
        text.append("  " + hint, "dim")
    return text


def _hint(snapshot: EngineSnapshot, ptt_style: str) -> str:
    if snapshot.text_only:
        return "text only: Enter to type a message"
    if snapshot.audio_lost:
        return "audio device lost: typing still works"
    if snapshot.state is State.MUTED:
        return "m to unmute"
    if snapshot.recording:
        if snapshot.hold_source == "button":
            return "release the button to send"
        if snapshot.hold_source == "keys":
            return "let go of space to send"
        return "space to send"
    if snapshot.mode is Mode.PTT and snapshot.state is State.IDLE:
        return "hold space to talk" if ptt_style == "hold" else "space to talk"
    if snapshot.echo_closed:
        return "echo guard: mic gated while the assistant speaks"
    return ""


METER_WIDTH = 14


def level_dbfs(level: float) -> float:
    """An RMS level (0..1 of full scale) in dBFS, floored at -60."""
    if level <= 1e-6:
        return -60.0
    return max(-60.0, 20 * math.log10(level))


def meter_cells(level: float, width: int = METER_WIDTH) -> int:
    """How many of `width` cells a level fills on the -60..0 dBFS scale."""
    return round((level_dbfs(level) + 60) / 60 * width)


def meter(label: str, level: float, width: int = METER_WIDTH, *, note: str = "") -> Text:
    """`mic ▕██████░░░░░░░░▏` on a -60..0 dBFS scale (red near full scale).

    No figure: it would change on every frame while someone speaks, and each change is a
    repaint; the bar changes only when a level crosses a cell (about 4 dB).
    """
    filled = meter_cells(level, width)
    text = Text(f"{label} ")
    text.append("▕")
    db = filled / width * 60 - 60
    style = "red" if db > -6 else ("yellow" if db > -18 else "green")
    text.append("█" * filled, style)
    text.append("░" * (width - filled), "dim")
    text.append("▏")
    if note:
        text.append(f" {note}", "yellow")
    return text


def turn_text(turn: TurnMetrics | None) -> Text:
    """The per-turn line: latency (speech stopped → first audio), tokens and cost."""
    if turn is None:
        return Text("no turns yet", "dim")
    text = Text(format_turn(turn))
    ttfb = turn.ttfb_ms
    if ttfb is not None and ttfb >= 1000:
        text.stylize("bold red")  # a reply that starts a second late is felt as slow
    return text


_WHO = {
    LineKind.USER: ("You", "bold cyan"),
    LineKind.ASSISTANT: ("Assistant", "bold magenta"),
    LineKind.TOOL: ("Tool", "bold blue"),
}


def transcript_line(line: Line) -> Text:
    """One transcript line as shown: who, what, and its marks (typed, streaming, cut)."""
    if line.kind is LineKind.NOTICE:
        return Text(f"· {line.text}", "dim italic")
    if line.kind is LineKind.ERROR:
        return Text(f"✖ {line.text}", "bold red")
    who, style = _WHO[line.kind]
    text = Text()
    text.append(who, style)
    if line.typed:
        text.append(" (typed)", "dim")
    text.append(": ")
    if line.failed:
        text.append(line.text, "red")
    elif line.pending:
        text.append(line.text, "dim")
    else:
        text.append(line.text)
    if line.streaming and not line.pending:
        text.append(" ▌", "magenta")
    if line.interrupted:
        heard = f" after {line.heard_ms / 1000:.1f} s" if line.heard_ms is not None else ""
        text.append(f"  ⏹ interrupted{heard}", "yellow")
    return text
