"""The local server's responders: echo, speech and scripted (file formats and their errors)."""

from __future__ import annotations

import json
import shutil
import wave
from pathlib import Path

import numpy as np
import pytest

from voicecli.server import (
    EchoResponder,
    FunctionOutput,
    ScriptedResponder,
    ScriptError,
    SpeechResponder,
    Turn,
    audio,
    responder_named,
)


AUDIO = ("audio",)
TEXT = ("text",)


def test_echo_replays_the_users_audio_and_says_so():
    user = audio.tone(1900)
    reply = EchoResponder().reply(Turn(0, AUDIO, user_audio=user))
    assert reply.audio == user
    assert reply.text == "Echo of 1.9 seconds of your audio."
    assert EchoResponder().reply(Turn(0, TEXT, user_audio=user)).audio is None


def test_echo_answers_text_and_function_results_in_words():
    assert EchoResponder().reply(Turn(0, AUDIO, user_text="Hi")).text == "You said: Hi"
    outputs = (FunctionOutput("call_1", "get_weather", '{"sky":"clear"}'),)
    turn = Turn(1, AUDIO, user_audio=audio.tone(100), function_outputs=outputs)
    assert EchoResponder().reply(turn).text == 'The function returned {"sky":"clear"}.'
    assert EchoResponder().reply(Turn(0, AUDIO)).text == "Hello from the voicecli local server."
    assert EchoResponder().transcribe(audio.tone(1900), 0) == "[1.9 s of audio]"


@pytest.mark.skipif(not shutil.which("espeak-ng"), reason="espeak-ng is not installed")
def test_speech_speaks_with_espeak():
    reply = SpeechResponder().reply(Turn(0, AUDIO, user_text="Good morning"))
    assert reply.text == "You said: Good morning"
    assert reply.audio is not None
    assert reply.audio != audio.tone_for_text(reply.text)
    assert 0.8 < len(reply.audio) / 48000 < 4
    heard = SpeechResponder().reply(Turn(0, AUDIO, user_audio=audio.tone(2000)))
    assert heard.text.startswith("I heard 2.0 seconds of audio.")


def test_speech_falls_back_to_a_tone_without_espeak(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(audio, "speak", lambda text: None)
    reply = SpeechResponder().reply(Turn(0, AUDIO, user_text="x"))
    assert reply.audio == audio.tone_for_text(reply.text)
    assert SpeechResponder().reply(Turn(0, TEXT, user_text="x")).audio is None


def test_plain_text_script_gives_one_line_per_response_and_starts_over():
    script = ScriptedResponder.from_text("# a comment\nFirst answer.\n\nSecond answer.\n")
    texts = [script.reply(Turn(index, AUDIO)).text for index in range(3)]
    assert texts == ["First answer.", "Second answer.", "First answer."]
    reply = script.reply(Turn(0, AUDIO))
    assert reply.audio == audio.tone_for_text("First answer.")


def write_wav(path: Path, seconds: float) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(np.zeros(int(16000 * seconds), dtype="<i2").tobytes())
    return path


def test_jsonl_script_with_every_key(tmp_path: Path):
    write_wav(tmp_path / "answer.wav", 0.5)
    lines = [
        {"say": "Tone.", "audio_ms": 250, "delay_ms": 120, "user": "Question one?"},
        {"text": "From a file.", "audio": "answer.wav", "user_transcript": "Question two?"},
        {"text": "Quiet.", "audio": "silence", "audio_ms": 100},
        {"text": "Your words.", "audio": "echo"},
        {"function_call": {"name": "lookup", "arguments": {"q": "x"}}},
        {"function_call": {"name": "raw", "arguments": '{"a": 1}'}},
    ]
    path = tmp_path / "script.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines))
    script = ScriptedResponder.from_file(path)
    first = script.reply(Turn(0, AUDIO))
    assert (first.text, len(first.audio), first.delay_ms) == ("Tone.", 250 * 48, 120)
    assert script.transcribe(b"", 0) == "Question one?"
    second = script.reply(Turn(1, AUDIO))
    assert len(second.audio) == 500 * 48  # resampled from 16 kHz
    assert script.transcribe(audio.tone(300), 1) == "Question two?"
    assert script.reply(Turn(2, AUDIO)).audio == audio.silence(100)
    user = audio.tone(700)
    assert script.reply(Turn(3, AUDIO, user_audio=user)).audio == user
    assert script.transcribe(audio.tone(300), 2) == "[0.3 s of audio]"
    call = script.reply(Turn(4, AUDIO))
    assert (call.text, call.audio) == ("", None)
    assert (call.function_call.name, json.loads(call.function_call.arguments)) == (
        "lookup",
        {"q": "x"},
    )
    assert script.reply(Turn(5, AUDIO)).function_call.arguments == '{"a": 1}'
    assert script.reply(Turn(0, TEXT)).audio is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "has no replies"),
        ("# only a comment\n", "has no replies"),
        ('{"text": "ok"}\n{"text": oops}', "script.jsonl:2: not valid JSON"),
        ('{"txt": "typo"}', "unknown key 'txt'"),
        ('{"text": "x", "audio": "missing.wav"}', "does not exist"),
        ('{"text": "x", "delay_ms": -5}', "'delay_ms' must be a non-negative integer"),
        ('{"text": "x", "audio_ms": "long"}', "'audio_ms' must be a non-negative number"),
        ('{"function_call": {"arguments": {}}}', "'function_call' needs a 'name'"),
        ('{"text": "x"}\n["a list"]', "script.jsonl:2: each line must be a JSON object"),
        ('{"text": 5}', "must be strings"),
    ],
)
def test_script_errors_name_the_file_and_line(tmp_path: Path, content: str, message: str):
    path = tmp_path / "script.jsonl"
    path.write_text(content)
    with pytest.raises(ScriptError, match=message):
        ScriptedResponder.from_file(path)


def test_a_wav_that_is_not_16_bit_is_refused_when_the_script_loads(tmp_path: Path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF nonsense")
    (tmp_path / "s.jsonl").write_text('{"text": "x", "audio": "bad.wav"}')
    with pytest.raises(ScriptError, match="cannot read"):
        ScriptedResponder.from_file(tmp_path / "s.jsonl")


def test_responder_named():
    assert isinstance(responder_named("echo"), EchoResponder)
    assert isinstance(responder_named("speech"), SpeechResponder)
    with pytest.raises(ScriptError, match="needs a script"):
        responder_named("scripted")
    with pytest.raises(ScriptError, match="cannot read script"):
        responder_named("scripted", "/no/such/script.txt")
    with pytest.raises(ValueError, match="unknown responder 'parrot'"):
        responder_named("parrot")
