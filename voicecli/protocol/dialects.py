"""The two wire dialects of the Realtime protocol (GA and beta) as data.

Everything that differs between the GA interface and the retired beta shape lives here as
tables: event names in both directions, the handshake headers and subprotocols that select a
dialect, the shape of the `session` object, and the content-part type names of assistant items.
The client core uses it to read and write; the local server uses the same tables in the other
direction, so the two cannot drift apart.

Neutral names are the GA wire names. Beta names are aliases that normalise onto them.

Pure: standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


__all__ = [
    "BETA",
    "BETA_SUBPROTOCOL",
    "DIALECTS",
    "GA",
    "UNSET",
    "Dialect",
    "SessionConfig",
    "TurnDetection",
    "Transcription",
    "dialect_named",
]


class _Unset:
    """Marks a session field that an update leaves alone (distinct from `None`, which clears)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Any = _Unset()

BETA_SUBPROTOCOL = "openai-beta.realtime-v1"

# Beta server-event names that were renamed in GA. Everything else is spelled the same.
_BETA_TO_GA_SERVER = {
    "response.audio.delta": "response.output_audio.delta",
    "response.audio.done": "response.output_audio.done",
    "response.audio_transcript.delta": "response.output_audio_transcript.delta",
    "response.audio_transcript.done": "response.output_audio_transcript.done",
    "response.text.delta": "response.output_text.delta",
    "response.text.done": "response.output_text.done",
    # Beta has one "created" event where GA has "added" + "done"; GA SDK unions still list
    # `.created`, so a GA client accepts it too and treats it like `.added`.
    "conversation.item.created": "conversation.item.added",
    "transcription_session.created": "session.created",
    "transcription_session.updated": "session.updated",
}

# GA-only server events: a beta server never sends them (`None` = not sent in this dialect).
_GA_ONLY_SERVER = {"conversation.item.done"}

# Audio formats: neutral name -> GA format object / beta string.
_GA_FORMATS: dict[str, dict[str, Any]] = {
    "pcm16": {"type": "audio/pcm", "rate": 24000},
    "g711_ulaw": {"type": "audio/pcmu"},
    "g711_alaw": {"type": "audio/pcma"},
}
_GA_FORMAT_NAMES = {"audio/pcm": "pcm16", "audio/pcmu": "g711_ulaw", "audio/pcma": "g711_alaw"}


@dataclass(frozen=True, slots=True)
class TurnDetection:
    """Server-side turn detection (`server_vad` or `semantic_vad`). `None` fields are not sent."""

    type: str = "server_vad"
    threshold: float | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None
    idle_timeout_ms: int | None = None
    eagerness: str | None = None
    create_response: bool | None = None
    interrupt_response: bool | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"type": self.type}
        for name in (
            "threshold",
            "prefix_padding_ms",
            "silence_duration_ms",
            "idle_timeout_ms",
            "eagerness",
            "create_response",
            "interrupt_response",
        ):
            value = getattr(self, name)
            if value is not None:
                wire[name] = value
        return wire

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any] | None) -> TurnDetection | None:
        if wire is None:
            return None
        known = {k: wire[k] for k in cls.__dataclass_fields__ if k in wire}
        return cls(**known)


@dataclass(frozen=True, slots=True)
class Transcription:
    """Input audio transcription settings."""

    model: str = "gpt-4o-mini-transcribe"
    language: str | None = None
    prompt: str | None = None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"model": self.model}
        if self.language is not None:
            wire["language"] = self.language
        if self.prompt is not None:
            wire["prompt"] = self.prompt
        return wire

    @classmethod
    def from_wire(cls, wire: Mapping[str, Any] | None) -> Transcription | None:
        if wire is None:
            return None
        return cls(
            model=wire.get("model") or "", language=wire.get("language"), prompt=wire.get("prompt")
        )


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """A dialect-neutral session configuration, or a partial update of one.

    Fields left `UNSET` are not sent. `None` is sent as JSON null where the protocol gives
    null a meaning (turn detection off, transcription off, noise reduction off).
    """

    instructions: str = UNSET
    voice: str = UNSET
    output_modalities: tuple[str, ...] = UNSET
    """`("audio",)` (audio with transcript) or `("text",)`; GA allows exactly one."""
    input_audio_format: str = UNSET
    """`pcm16`, `g711_ulaw` or `g711_alaw`."""
    output_audio_format: str = UNSET
    transcription: Transcription | None = UNSET
    noise_reduction: str | None = UNSET
    """`near_field`, `far_field`, or `None` for off."""
    turn_detection: TurnDetection | None = UNSET
    """`None` turns server-side turn detection off (push-to-talk)."""
    tools: tuple[Mapping[str, Any], ...] = UNSET
    tool_choice: str | Mapping[str, Any] = UNSET
    max_output_tokens: int | str = UNSET
    speed: float = UNSET
    temperature: float = UNSET
    """Beta only; GA has no such field and the GA encoder drops it."""
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Wire fields this class does not model, passed through verbatim (forward compatibility)."""


def _set(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not UNSET:
        target[key] = value


def _encode_ga(config: SessionConfig) -> dict[str, Any]:
    session: dict[str, Any] = {"type": "realtime"}
    _set(session, "instructions", config.instructions)
    if config.output_modalities is not UNSET:
        session["output_modalities"] = list(config.output_modalities)
    audio_in: dict[str, Any] = {}
    audio_out: dict[str, Any] = {}
    if config.input_audio_format is not UNSET:
        audio_in["format"] = dict(_GA_FORMATS[config.input_audio_format])
    if config.transcription is not UNSET:
        audio_in["transcription"] = config.transcription and config.transcription.to_wire()
    if config.noise_reduction is not UNSET:
        audio_in["noise_reduction"] = config.noise_reduction and {"type": config.noise_reduction}
    if config.turn_detection is not UNSET:
        audio_in["turn_detection"] = config.turn_detection and config.turn_detection.to_wire()
    if config.output_audio_format is not UNSET:
        audio_out["format"] = dict(_GA_FORMATS[config.output_audio_format])
    _set(audio_out, "voice", config.voice)
    _set(audio_out, "speed", config.speed)
    if audio_in or audio_out:
        session["audio"] = {}
        if audio_in:
            session["audio"]["input"] = audio_in
        if audio_out:
            session["audio"]["output"] = audio_out
    if config.tools is not UNSET:
        session["tools"] = [dict(tool) for tool in config.tools]
    _set(session, "tool_choice", config.tool_choice)
    _set(session, "max_output_tokens", config.max_output_tokens)
    session.update(config.extra)
    return session


def _encode_beta(config: SessionConfig) -> dict[str, Any]:
    session: dict[str, Any] = {}
    _set(session, "instructions", config.instructions)
    _set(session, "voice", config.voice)
    if config.output_modalities is not UNSET:
        # Beta lists text alongside audio; audio output always carries a transcript.
        session["modalities"] = (
            ["text", "audio"] if "audio" in config.output_modalities else ["text"]
        )
    _set(session, "input_audio_format", config.input_audio_format)
    _set(session, "output_audio_format", config.output_audio_format)
    if config.transcription is not UNSET:
        session["input_audio_transcription"] = (
            config.transcription and config.transcription.to_wire()
        )
    if config.noise_reduction is not UNSET:
        session["input_audio_noise_reduction"] = config.noise_reduction and {
            "type": config.noise_reduction
        }
    if config.turn_detection is not UNSET:
        turn_detection = config.turn_detection and config.turn_detection.to_wire()
        if turn_detection:
            # GA only (server VAD idle timeout); the beta session types have no such field.
            turn_detection.pop("idle_timeout_ms", None)
        session["turn_detection"] = turn_detection
    if config.tools is not UNSET:
        session["tools"] = [dict(tool) for tool in config.tools]
    _set(session, "tool_choice", config.tool_choice)
    _set(session, "max_response_output_tokens", config.max_output_tokens)
    _set(session, "speed", config.speed)
    _set(session, "temperature", config.temperature)
    session.update(config.extra)
    return session


def _format_name(wire: Any) -> str:
    if isinstance(wire, Mapping):
        return _GA_FORMAT_NAMES.get(str(wire.get("type")), str(wire.get("type")))
    return str(wire)


def _decode_ga(session: Mapping[str, Any]) -> SessionConfig:
    audio = session.get("audio") or {}
    audio_in = audio.get("input") or {}
    audio_out = audio.get("output") or {}
    values: dict[str, Any] = {}
    if "instructions" in session:
        values["instructions"] = session["instructions"]
    if "output_modalities" in session:
        values["output_modalities"] = tuple(session["output_modalities"] or ())
    if "format" in audio_in:
        values["input_audio_format"] = _format_name(audio_in["format"])
    if "transcription" in audio_in:
        values["transcription"] = Transcription.from_wire(audio_in["transcription"])
    if "noise_reduction" in audio_in:
        values["noise_reduction"] = (audio_in["noise_reduction"] or {}).get("type")
    if "turn_detection" in audio_in:
        values["turn_detection"] = TurnDetection.from_wire(audio_in["turn_detection"])
    if "format" in audio_out:
        values["output_audio_format"] = _format_name(audio_out["format"])
    if "voice" in audio_out:
        voice = audio_out["voice"]
        values["voice"] = voice.get("id") if isinstance(voice, Mapping) else voice
    if "speed" in audio_out:
        values["speed"] = audio_out["speed"]
    if "tools" in session:
        values["tools"] = tuple(session["tools"] or ())
    if "tool_choice" in session:
        values["tool_choice"] = session["tool_choice"]
    if "max_output_tokens" in session:
        values["max_output_tokens"] = session["max_output_tokens"]
    return SessionConfig(**values)


def _decode_beta(session: Mapping[str, Any]) -> SessionConfig:
    values: dict[str, Any] = {}
    if "instructions" in session:
        values["instructions"] = session["instructions"]
    if "voice" in session:
        values["voice"] = session["voice"]
    if "modalities" in session:
        modalities = session["modalities"] or ()
        values["output_modalities"] = ("audio",) if "audio" in modalities else ("text",)
    if "input_audio_format" in session:
        values["input_audio_format"] = session["input_audio_format"]
    if "output_audio_format" in session:
        values["output_audio_format"] = session["output_audio_format"]
    if "input_audio_transcription" in session:
        values["transcription"] = Transcription.from_wire(session["input_audio_transcription"])
    if "input_audio_noise_reduction" in session:
        values["noise_reduction"] = (session["input_audio_noise_reduction"] or {}).get("type")
    if "turn_detection" in session:
        values["turn_detection"] = TurnDetection.from_wire(session["turn_detection"])
    if "tools" in session:
        values["tools"] = tuple(session["tools"] or ())
    if "tool_choice" in session:
        values["tool_choice"] = session["tool_choice"]
    if "max_response_output_tokens" in session:
        values["max_output_tokens"] = session["max_response_output_tokens"]
    if "speed" in session:
        values["speed"] = session["speed"]
    if "temperature" in session:
        values["temperature"] = session["temperature"]
    return SessionConfig(**values)


@dataclass(frozen=True, slots=True)
class Dialect:
    """One wire dialect: how events are named, how a session is shaped, how it is selected."""

    name: str
    """`ga` or `beta`."""
    headers: Mapping[str, str]
    """Extra handshake headers a client sends (besides `Authorization`)."""
    subprotocols: tuple[str, ...]
    """Browser-style subprotocols that select this dialect (credentials not included)."""
    server_aliases: Mapping[str, str]
    """Server-event wire name -> neutral (GA) name, for names that differ."""
    assistant_audio_content: str
    """Content type of assistant audio inside an item (`output_audio` / `audio`)."""
    assistant_text_content: str
    """Content type of assistant text inside an item (`output_text` / `text`)."""

    def neutral_name(self, wire_name: str) -> str:
        """The neutral (GA) name of a server event as it arrived on the wire.

        Both dialects accept the other's spelling: a server that mixes them is still read.
        """
        return _BETA_TO_GA_SERVER.get(wire_name, wire_name)

    def wire_name(self, neutral_name: str) -> str | None:
        """The name a server of this dialect gives a neutral event; `None` if it is not sent."""
        if self.name == "ga":
            return neutral_name
        if neutral_name in _GA_ONLY_SERVER:
            return None
        return _GA_TO_BETA_SERVER.get(neutral_name, neutral_name)

    def encode_session(self, config: SessionConfig) -> dict[str, Any]:
        """The `session` object of a `session.update` in this dialect."""
        return _encode_ga(config) if self.name == "ga" else _encode_beta(config)

    def decode_session(self, session: Mapping[str, Any]) -> SessionConfig:
        """A `session` object from `session.created`/`.updated` (or an update) as neutral config.

        The shape is detected from the object itself, so a GA-shaped session read by a beta
        client (or the reverse) is still understood.
        """
        if "audio" in session or session.get("type") in ("realtime", "transcription"):
            return _decode_ga(session)
        return _decode_beta(session)

    def format_object(self, neutral_format: str) -> Any:
        """An audio format as this dialect writes it (`{"type": "audio/pcm", ...}` / `"pcm16"`)."""
        return dict(_GA_FORMATS[neutral_format]) if self.name == "ga" else neutral_format


_GA_TO_BETA_SERVER = {
    ga: beta for beta, ga in _BETA_TO_GA_SERVER.items() if not beta.startswith("transcription")
}

GA = Dialect(
    name="ga",
    headers={},
    subprotocols=("realtime",),
    server_aliases={},
    assistant_audio_content="output_audio",
    assistant_text_content="output_text",
)

BETA = Dialect(
    name="beta",
    headers={"OpenAI-Beta": "realtime=v1"},
    subprotocols=("realtime", BETA_SUBPROTOCOL),
    server_aliases=dict(_BETA_TO_GA_SERVER),
    assistant_audio_content="audio",
    assistant_text_content="text",
)

DIALECTS: Mapping[str, Dialect] = {"ga": GA, "beta": BETA}


def dialect_named(name: str) -> Dialect:
    """The dialect called `name` (`ga` or `beta`); raises ValueError with the choices."""
    try:
        return DIALECTS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dialect {name!r}: choose 'ga' or 'beta'") from None
