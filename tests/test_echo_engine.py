"""The echo guard inside the talk engine, against the real local server, with no sound server.

The file backend's simulated microphone hears its simulated speaker (`echo_gain_db`,
`echo_delay_ms`), at full level: the worst case of a laptop's speakers next to its microphone.
The server's echo responder answers with the user's own audio, so a reply the microphone lets
through is speech to the server's VAD, which takes it as the user talking again: the model
answers itself. These runs are real time (a few seconds each); the same scene on a real sound
server is in tests/test_talk_tmux.py.
"""

from __future__ import annotations

import asyncio
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import make_speech
from voicecli.audio import FileBackend
from voicecli.audio.wav import read_wav
from voicecli.echo import EchoMode, EchoSettings
from voicecli.engine import TalkEngine, TalkSettings, opener_for
from voicecli.server import LocalServer, ServerOptions
from voicecli.session import ConnectionSettings


pytestmark = pytest.mark.slow


def write_wav(path: Path, samples: np.ndarray) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(24000)
        out.writeframes(np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes())
    return path


async def talk(mic_wav: Path, guard: EchoMode, seconds: float) -> dict[str, Any]:
    """Run a talk session whose mic is `mic_wav` plus the speaker's echo; what happened."""
    audio = FileBackend(
        mic_wav, realtime=True, trailing_silence_ms=None, echo_gain_db=0.0, echo_delay_ms=40
    )
    async with LocalServer(ServerOptions(responder="echo", pace=1.0)) as server:
        settings = TalkSettings(echo=EchoSettings(mode=guard))
        engine = TalkEngine(settings, opener_for(ConnectionSettings(url=server.url)), audio)
        task = asyncio.create_task(engine.run())
        await asyncio.sleep(seconds)
        engine.stop()
        await asyncio.wait_for(task, 10)

    def count(direction: str, kind: str) -> int:
        return sum(1 for e in engine.log if e.direction == direction and e.type == kind)

    return {
        "speech_started": count("received", "input_audio_buffer.speech_started"),
        "truncates": count("sent", "conversation.item.truncate"),
        "responses": count("received", "response.created"),
        "silenced": engine.echo.blocks_silenced,
    }


async def test_the_gate_keeps_the_model_from_answering_its_own_echo(speech_wav: Path) -> None:
    unguarded, gated = await asyncio.gather(
        talk(speech_wav, EchoMode.OFF, seconds=6.5),
        talk(speech_wav, EchoMode.GATE, seconds=6.5),
    )
    # Without a guard the reply is heard, cut as a barge-in and answered, again and again.
    assert unguarded["speech_started"] >= 2 and unguarded["truncates"] >= 1, unguarded
    # With the gate: one question, one answer, heard to the end.
    assert gated["speech_started"] == 1, gated
    assert gated["truncates"] == 0 and gated["responses"] == 1, gated
    assert gated["silenced"] >= 50, gated  # the reply's ~2 s were held back


async def test_a_user_speaking_up_still_interrupts_through_the_gate(
    speech_dir: Path, speech_wav: Path, tmp_path: Path
) -> None:
    # A quiet question (12 dB down), so the reply plays quietly; 0.9 s after the question the
    # user talks over the reply at a normal level, 12 dB above its (full-level) echo.
    question = read_wav(speech_wav, 24000).astype(np.float64) * 10 ** (-12 / 20)
    stop = read_wav(make_speech(speech_dir, "Stop, stop.", "stop"), 24000).astype(np.float64)
    mic = write_wav(
        tmp_path / "mic.wav", np.concatenate([question, np.zeros(int(0.9 * 24000)), stop])
    )
    gated, half = await asyncio.gather(
        talk(mic, EchoMode.GATE, seconds=6.5),
        talk(mic, EchoMode.HALF_DUPLEX, seconds=6.5),
    )
    # The gate lets the user through: a second turn that cuts the reply where it was heard.
    assert gated["speech_started"] == 2 and gated["truncates"] == 1, gated
    # Half-duplex cannot: the mic is shut for the whole reply.
    assert half["speech_started"] == 1 and half["truncates"] == 0, half
