"""Settings of the local server: `ServerOptions` (what to run) and `Faults` (how to misbehave).

Everything has a default that makes the server behave like the real API: GA unless the client
asks for beta, server VAD on, replies paced at real time, sessions expire after 60 minutes,
any API key accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from voicecli.protocol.dialects import TurnDetection
from voicecli.server.responders import Responder


__all__ = ["AUTH_FAILURES", "AUTH_MODES", "Faults", "ServerOptions"]

AUTH_MODES = ("any", "require", "key", "reject")
AUTH_FAILURES = ("401", "403", "error")


@dataclass(frozen=True)
class Faults:
    """Switches for reliability tests. Event counts are per connection and 1-based."""

    close_after_events: int | None = None
    """Drop the TCP connection (no close frame: the client sees 1006) after N server events."""
    delta_jitter_ms: float = 0.0
    """Delay each audio/text delta by a random 0..J ms on top of its paced time."""
    malformed_after_events: int | None = None
    """After N events, send one text frame that is not valid JSON."""
    oversized_after_events: int | None = None
    """After N events, send one huge (but valid) event of an unknown type."""
    oversized_bytes: int = 20 * 1024 * 1024
    silent_at_event: int | None = None
    """Before event N, stop sending and reading (pings go unanswered too, like a dead peer)
    for `silent_for_s` seconds, or until the server stops."""
    silent_for_s: float = 0.0
    connections: int | None = None
    """Misbehave on the first N connections only (None: on every one), so a client that
    reconnects finds a healthy server."""

    def for_connection(self, number: int) -> Faults:
        """The faults connection `number` (1-based) gets: these, or none at all."""
        if self.connections is None or number <= self.connections:
            return self
        return Faults()


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port; read it back from `LocalServer.port`."""
    responder: Responder | str = "echo"
    """A responder object, or `echo`, `speech` or `scripted` (which needs `script`)."""
    script: str | Path | None = None
    pace: float = 1.0
    """Wall seconds per second of reply audio: 1 = real time, 0.5 = twice as fast, 0 = at once."""
    expire_after_s: float = 3600.0
    """Session length: then `session_expired` and close 1001 (the real limit is 60 minutes)."""
    model: str = "gpt-realtime"
    """Reported when the client's URL has no `?model=`."""
    voice: str = "alloy"
    instructions: str | None = None
    turn_detection: TurnDetection | None = field(default_factory=TurnDetection)
    """Initial turn detection: server VAD like the real API; None starts in manual mode."""
    silence_duration_ms: int = 200
    auth: str = "any"
    """`any` key or none; `require` some key; `key` exactly `api_key`; `reject` every key."""
    api_key: str | None = None
    auth_failure: str = "401"
    """How a refused key is answered: HTTP `401` / `403` at the handshake, or `error`
    (accept, send `invalid_api_key`, close)."""
    beta_disabled: bool = False
    """Answer beta-dialect connections like the real API after the 2026 shutdown."""
    late_transcript: bool = False
    """Send user input transcripts after the reply has started instead of right at commit."""
    conversation_created: bool = False
    faults: Faults = field(default_factory=Faults)
    seed: int | None = None
    """Seed for ids, obfuscation and jitter: the same seed gives the same ids."""
    max_message_bytes: int = 64 * 1024 * 1024
    """Largest client frame accepted (a 15 MiB append is ~20 MiB of JSON)."""

    def __post_init__(self) -> None:
        if self.auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, not {self.auth!r}")
        if self.auth_failure not in AUTH_FAILURES:
            raise ValueError(
                f"auth_failure must be one of {', '.join(AUTH_FAILURES)}, not {self.auth_failure!r}"
            )
        if self.auth == "key" and not self.api_key:
            raise ValueError("auth='key' needs the expected api_key")
        if self.pace < 0:
            raise ValueError("pace cannot be negative")
        if self.expire_after_s <= 0:
            raise ValueError("expire_after_s must be positive")
