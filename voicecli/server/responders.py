"""Responders: what the local server "says" when it answers a turn.

A responder is a small object with two methods, called by the server for each response and for
each committed user audio item when input transcription is on:

    reply(turn: Turn) -> Reply           # may block briefly (espeak-ng); runs in a worker thread
    transcribe(audio: bytes, turn_index: int) -> str

Built in:

* `echo` - replays the user's own committed audio as the assistant's audio, so a user hears
  the round trip of their microphone. Transcript: "Echo of 1.9 seconds of your audio."
  Text turns get "You said: ..." with a tone about as long as saying it.
* `speech` - speaks a short reply with espeak-ng (a tone when espeak-ng is missing).
* `scripted` - replies read from a file, one per response (see `ScriptedResponder`).

Audio is always PCM16 24 kHz mono here; the server converts to the session's output format.
"""

from __future__ import annotations

import json
import wave
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from voicecli.server import audio


__all__ = [
    "EchoResponder",
    "FunctionCall",
    "FunctionOutput",
    "Reply",
    "Responder",
    "ScriptError",
    "ScriptedResponder",
    "SpeechResponder",
    "Turn",
    "placeholder_transcript",
    "responder_named",
]


@dataclass(frozen=True, slots=True)
class FunctionOutput:
    call_id: str
    name: str | None
    output: str


@dataclass(frozen=True, slots=True)
class Turn:
    """What a responder knows about the turn it answers."""

    index: int
    """0 for the first response of the connection, then 1, 2, ..."""
    modalities: tuple[str, ...]
    """`("audio",)` (audio with transcript) or `("text",)`."""
    user_text: str | None = None
    """The text of the latest user message, when it was typed."""
    user_audio: bytes | None = None
    """The latest user audio item (PCM16 24 kHz mono), when it was spoken."""
    function_outputs: tuple[FunctionOutput, ...] = ()
    """Function results the client sent since the last assistant output."""
    instructions: str = ""
    voice: str = "alloy"
    tools: tuple[Mapping[str, Any], ...] = ()

    @property
    def user_audio_ms(self) -> float:
        return len(self.user_audio or b"") / 48


@dataclass(frozen=True, slots=True)
class FunctionCall:
    name: str
    arguments: str
    """JSON text, streamed to the client in `response.function_call_arguments.delta` pieces."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer. `audio=None` in an audio turn means "a tone as long as saying `text`"."""

    text: str = ""
    audio: bytes | None = None
    function_call: FunctionCall | None = None
    delay_ms: int = 0
    """Wait this long after `response.created` before the first output (simulated thinking)."""


class Responder(Protocol):
    name: str

    def reply(self, turn: Turn) -> Reply: ...

    def transcribe(self, audio: bytes, turn_index: int) -> str: ...


def placeholder_transcript(pcm: bytes) -> str:
    """What the server "heard" when nothing better is known: `[1.9 s of audio]`."""
    return f"[{len(pcm) / 48000:.1f} s of audio]"


def _seconds(pcm: bytes) -> str:
    return f"{len(pcm) / 48000:.1f}"


class EchoResponder:
    """Plays the user's own audio back (see module docstring)."""

    name = "echo"

    def reply(self, turn: Turn) -> Reply:
        if turn.user_audio is not None and not turn.function_outputs:
            text = f"Echo of {_seconds(turn.user_audio)} seconds of your audio."
            return Reply(text=text, audio=turn.user_audio if "audio" in turn.modalities else None)
        return Reply(text=_text_answer(turn))

    def transcribe(self, audio: bytes, turn_index: int) -> str:
        return placeholder_transcript(audio)


class SpeechResponder:
    """Answers in a synthetic voice (espeak-ng), or a tone when espeak-ng is not installed."""

    name = "speech"

    def reply(self, turn: Turn) -> Reply:
        if turn.user_audio is not None and not turn.function_outputs:
            text = (
                f"I heard {_seconds(turn.user_audio)} seconds of audio. I am the voicecli local "
                "server, so I cannot understand it, but the round trip works."
            )
        else:
            text = _text_answer(turn)
        if "audio" not in turn.modalities:
            return Reply(text=text)
        return Reply(text=text, audio=audio.speak(text) or audio.tone_for_text(text))

    def transcribe(self, audio: bytes, turn_index: int) -> str:
        return placeholder_transcript(audio)


def _text_answer(turn: Turn) -> str:
    if turn.function_outputs:
        results = "; ".join(output.output for output in turn.function_outputs)
        return f"The function returned {results}."
    if turn.user_text:
        return f"You said: {turn.user_text}"
    return "Hello from the voicecli local server."


# --- scripted replies -----------------------------------------------------------------------


class ScriptError(ValueError):
    """A script file that cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class ScriptEntry:
    text: str = ""
    audio: str = "tone"
    """`tone`, `speech`, `silence`, `echo` or the path of a 16-bit WAV file."""
    audio_ms: float | None = None
    """Length of a `tone` / `silence`; default: about as long as saying `text`."""
    function_call: FunctionCall | None = None
    user_transcript: str | None = None
    delay_ms: int = 0


_ENTRY_KEYS = {
    "text",
    "say",
    "audio",
    "audio_ms",
    "function_call",
    "user_transcript",
    "user",
    "delay_ms",
}


@dataclass
class ScriptedResponder:
    """Replies read from a file, one entry per response, starting over after the last.

    Two formats. Plain text: every non-empty line not starting with `#` is the assistant's
    text for one response (spoken as a tone of matching length). JSON Lines: every line is an
    object with any of these keys:

        text (or say)      the assistant's words (transcript, or text in text turns)
        audio              "tone" (default), "speech" (espeak-ng), "silence", "echo" (the
                           user's audio) or a WAV path (relative to the script's folder)
        audio_ms           length of the tone or silence (default: ~65 ms per character)
        function_call      {"name": "get_weather", "arguments": {"city": "Paris"}} (arguments
                           may be an object or a JSON string); emitted after any text
        user_transcript    (or user) the transcript the server reports for the user's audio
                           committed before this response, when transcription is on
        delay_ms           pause after response.created before the first output
    """

    entries: list[ScriptEntry]
    base_dir: Path = field(default_factory=Path.cwd)
    name: str = "scripted"
    _wav_cache: dict[str, bytes] = field(default_factory=dict, repr=False)

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedResponder:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScriptError(f"cannot read script {path}: {exc.strerror or exc}") from None
        return cls.from_text(text, base_dir=path.parent, source=str(path))

    @classmethod
    def from_text(
        cls, text: str, base_dir: Path | None = None, source: str = "<script>"
    ) -> ScriptedResponder:
        base_dir = base_dir or Path.cwd()
        lines = [
            (number, line.strip())
            for number, line in enumerate(text.splitlines(), start=1)
            if line.strip() and not line.strip().startswith("#")
        ]
        if not lines:
            raise ScriptError(f"script {source} has no replies")
        is_jsonl = lines[0][1].startswith("{")
        entries = [
            _parse_entry(line, f"{source}:{number}", base_dir) if is_jsonl else ScriptEntry(line)
            for number, line in lines
        ]
        return cls(entries=entries, base_dir=base_dir)

    def _entry(self, index: int) -> ScriptEntry:
        return self.entries[index % len(self.entries)]

    def reply(self, turn: Turn) -> Reply:
        entry = self._entry(turn.index)
        has_audio = bool(entry.text or entry.audio_ms) or entry.audio not in ("tone", "silence")
        if "audio" not in turn.modalities or not has_audio:
            return Reply(entry.text, None, entry.function_call, entry.delay_ms)
        return Reply(entry.text, self._audio(entry, turn), entry.function_call, entry.delay_ms)

    def transcribe(self, audio_pcm: bytes, turn_index: int) -> str:
        transcript = self._entry(turn_index).user_transcript
        return transcript if transcript is not None else placeholder_transcript(audio_pcm)

    def _audio(self, entry: ScriptEntry, turn: Turn) -> bytes:
        kind = entry.audio
        if kind == "echo":
            return turn.user_audio or audio.tone_for_text(entry.text)
        if kind == "speech":
            return audio.speak(entry.text) or audio.tone_for_text(entry.text)
        if kind == "silence":
            return audio.silence(entry.audio_ms or 65.0 * max(1, len(entry.text)))
        if kind == "tone":
            return audio.tone(entry.audio_ms) if entry.audio_ms else audio.tone_for_text(entry.text)
        if kind not in self._wav_cache:
            self._wav_cache[kind] = audio.read_wav(self.base_dir / kind)
        return self._wav_cache[kind]


def _parse_entry(line: str, where: str, base_dir: Path) -> ScriptEntry:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ScriptError(f"{where}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise ScriptError(f"{where}: each line must be a JSON object")
    unknown = sorted(set(data) - _ENTRY_KEYS)
    if unknown:
        raise ScriptError(f"{where}: unknown key {unknown[0]!r}")
    text = data.get("text", data.get("say", ""))
    audio_kind = data.get("audio", "tone")
    if not isinstance(text, str) or not isinstance(audio_kind, str):
        raise ScriptError(f"{where}: 'text' and 'audio' must be strings")
    if audio_kind not in ("tone", "speech", "silence", "echo"):
        wav = base_dir / audio_kind
        if not wav.is_file():
            raise ScriptError(f"{where}: audio file {wav} does not exist")
        try:
            audio.read_wav(wav)
        except (OSError, EOFError, ValueError, wave.Error) as exc:
            raise ScriptError(f"{where}: cannot read {wav} as a 16-bit WAV ({exc})") from None
    audio_ms = data.get("audio_ms")
    if audio_ms is not None and (not isinstance(audio_ms, int | float) or audio_ms < 0):
        raise ScriptError(f"{where}: 'audio_ms' must be a non-negative number")
    delay_ms = data.get("delay_ms", 0)
    if not isinstance(delay_ms, int) or delay_ms < 0:
        raise ScriptError(f"{where}: 'delay_ms' must be a non-negative integer")
    user = data.get("user_transcript", data.get("user"))
    if user is not None and not isinstance(user, str):
        raise ScriptError(f"{where}: 'user_transcript' must be a string")
    return ScriptEntry(
        text=text,
        audio=audio_kind,
        audio_ms=audio_ms,
        function_call=_parse_call(data.get("function_call"), where),
        user_transcript=user,
        delay_ms=delay_ms,
    )


def _parse_call(call: Any, where: str) -> FunctionCall | None:
    if call is None:
        return None
    if not isinstance(call, dict) or not isinstance(call.get("name"), str):
        raise ScriptError(f"{where}: 'function_call' needs a 'name'")
    arguments = call.get("arguments", {})
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return FunctionCall(name=call["name"], arguments=arguments)


def responder_named(name: str, script: str | Path | None = None) -> Responder:
    """The responder called `name`; raises ScriptError/ValueError with a usable message."""
    if name == "echo":
        return EchoResponder()
    if name == "speech":
        return SpeechResponder()
    if name == "scripted":
        if script is None:
            raise ScriptError("the scripted responder needs a script file (--script FILE)")
        return ScriptedResponder.from_file(script)
    raise ValueError(f"unknown responder {name!r}: choose echo, speech or scripted")
