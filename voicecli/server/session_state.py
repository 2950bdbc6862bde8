"""The effective session configuration of one connection: defaults, updates, wire shapes.

The configuration is held dialect-neutral as a complete `SessionConfig` (no UNSET fields) plus
the GA-only passthrough fields (`tracing`, `truncation`, `prompt`, `include`, ...). Updates are
validated against the dialect's spec (`validation.py`) and decoded with the dialect's own
tables (`Dialect.decode_session`), so the server reads the same shapes the client writes.
`render()` produces the full `session` object of `session.created` / `session.updated` in the
connection's dialect, as observed on the wire (protocol reference §3.1, §3.2).

Pure: standard library only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from voicecli.protocol.dialects import UNSET, Dialect, SessionConfig, TurnDetection
from voicecli.server.validation import (
    Problem,
    beta_session_spec,
    ga_session_spec,
    invalid_value,
)


__all__ = ["DEFAULT_INSTRUCTIONS", "SessionState", "complete_turn_detection"]

DEFAULT_INSTRUCTIONS = (
    "You are the voicecli local test server. You do not understand speech; your replies come "
    "from a responder (echo, speech or scripted)."
)
# GA passthrough fields and their session.created defaults (LOG-GA).
_GA_EXTRAS_DEFAULTS: dict[str, Any] = {
    "tracing": None,
    "truncation": "auto",
    "prompt": None,
    "include": None,
}
_GA_EXTRA_KEYS = ("tracing", "truncation", "prompt", "include", "reasoning", "parallel_tool_calls")
_GA_SPEC = ga_session_spec()
_SERVER_VAD = TurnDetection()
_BETA_SPEC = beta_session_spec()


def complete_turn_detection(
    turn_detection: TurnDetection | None, default_silence_ms: int
) -> TurnDetection | None:
    """Fill the fields a client left out with the server's defaults (a replaced object)."""
    if turn_detection is None:
        return None
    create = True if turn_detection.create_response is None else turn_detection.create_response
    interrupt = (
        True if turn_detection.interrupt_response is None else turn_detection.interrupt_response
    )
    if turn_detection.type == "semantic_vad":
        return TurnDetection(
            type="semantic_vad",
            eagerness=turn_detection.eagerness or "auto",
            create_response=create,
            interrupt_response=interrupt,
        )
    return TurnDetection(
        type="server_vad",
        threshold=0.5 if turn_detection.threshold is None else turn_detection.threshold,
        prefix_padding_ms=(
            300 if turn_detection.prefix_padding_ms is None else turn_detection.prefix_padding_ms
        ),
        silence_duration_ms=(
            default_silence_ms
            if turn_detection.silence_duration_ms is None
            else turn_detection.silence_duration_ms
        ),
        idle_timeout_ms=turn_detection.idle_timeout_ms,
        create_response=create,
        interrupt_response=interrupt,
    )


@dataclass
class SessionState:
    """What the session is set to right now."""

    config: SessionConfig
    extras: dict[str, Any] = field(default_factory=dict)
    default_silence_ms: int = 200

    @classmethod
    def initial(
        cls,
        *,
        voice: str = "alloy",
        instructions: str = DEFAULT_INSTRUCTIONS,
        turn_detection: TurnDetection | None = _SERVER_VAD,
        default_silence_ms: int = 200,
    ) -> SessionState:
        """The defaults of a fresh session, as the real `session.created` shows them."""
        config = SessionConfig(
            instructions=instructions,
            voice=voice,
            output_modalities=("audio",),
            input_audio_format="pcm16",
            output_audio_format="pcm16",
            transcription=None,
            noise_reduction=None,
            turn_detection=complete_turn_detection(turn_detection, default_silence_ms),
            tools=(),
            tool_choice="auto",
            max_output_tokens="inf",
            speed=1.0,
            temperature=0.8,
        )
        return cls(config=config, default_silence_ms=default_silence_ms)

    # --- reading ----------------------------------------------------------------------------

    @property
    def output_modalities(self) -> tuple[str, ...]:
        return tuple(self.config.output_modalities)

    @property
    def transcription_enabled(self) -> bool:
        return self.config.transcription is not None

    # --- updating ---------------------------------------------------------------------------

    def check_update(self, dialect: Dialect, session: Any, *, voice_locked: bool) -> Problem | None:
        """Why `session` (the `session` of a `session.update`) is refused, or None."""
        spec = _GA_SPEC if dialect.name == "ga" else _BETA_SPEC
        problem = spec(session, "session")
        if problem is not None:
            return problem
        if dialect.name == "ga":
            if session.get("type") == "transcription":
                # [U] The real server switches to a transcription session; this one cannot.
                return Problem(
                    "invalid_value",
                    "Invalid value: 'transcription'. This local server only runs 'realtime' "
                    "sessions.",
                    "session.type",
                )
            modalities = session.get("output_modalities")
            if modalities is not None and len(set(modalities)) != 1:
                return invalid_value("session.output_modalities", modalities, (["audio"], ["text"]))
        update = dialect.decode_session(session)
        if voice_locked and update.voice is not UNSET and update.voice != self.config.voice:
            # [U] code and message carried over by other implementations, not confirmed live.
            return Problem(
                "cannot_update_voice",
                "Cannot update a conversation's voice if assistant audio is present.",
                "session.voice" if dialect.name == "beta" else "session.audio.output.voice",
            )
        return None

    def apply_update(self, dialect: Dialect, session: Mapping[str, Any]) -> None:
        """Merge a checked update: only the fields present change."""
        update = dialect.decode_session(session)
        changes = {
            f.name: getattr(update, f.name)
            for f in dataclasses.fields(SessionConfig)
            if f.name != "extra" and getattr(update, f.name) is not UNSET
        }
        if "turn_detection" in changes:
            changes["turn_detection"] = complete_turn_detection(
                changes["turn_detection"], self.default_silence_ms
            )
        if "tools" in changes:
            changes["tools"] = tuple(dict(tool) for tool in changes["tools"])
        self.config = dataclasses.replace(self.config, **changes)
        for key in _GA_EXTRA_KEYS if dialect.name == "ga" else ("tracing",):
            if key in session:
                self.extras[key] = session[key]

    # --- rendering --------------------------------------------------------------------------

    def render(
        self, dialect: Dialect, *, session_id: str, model: str, expires_at: int
    ) -> dict[str, Any]:
        """The full `session` object of `session.created` / `session.updated`."""
        wire = dialect.encode_session(self.config)
        turn_detection = self.config.turn_detection
        if dialect.name == "ga":
            wire.pop("temperature", None)
            audio_in = wire["audio"]["input"]
            if turn_detection is not None and turn_detection.type == "server_vad":
                # GA always shows idle_timeout_ms for server_vad, null when unset (LOG-GA).
                audio_in["turn_detection"]["idle_timeout_ms"] = turn_detection.idle_timeout_ms
            if audio_in.get("transcription") is not None:
                audio_in["transcription"].setdefault("language", None)
                audio_in["transcription"].setdefault("prompt", None)
            session = {
                "type": "realtime",
                "object": "realtime.session",
                "id": session_id,
                "model": model,
                **{key: value for key, value in wire.items() if key != "type"},
            }
            for key, default in _GA_EXTRAS_DEFAULTS.items():
                session[key] = self.extras.get(key, default)
            for key in ("reasoning", "parallel_tool_calls"):
                if key in self.extras:
                    session[key] = self.extras[key]
            session["expires_at"] = expires_at
            return session
        session = {"id": session_id, "object": "realtime.session", "model": model}
        session["expires_at"] = expires_at
        session.update(wire)
        if "tracing" in self.extras:
            session["tracing"] = self.extras["tracing"]
        return session
