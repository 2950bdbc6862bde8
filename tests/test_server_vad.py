"""The local server's energy VAD: synthetic signals (pure), real espeak-ng speech through the
detector, and real speech streamed over a WebSocket to the running server."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect

from tests.conftest import make_speech
from voicecli.server import LocalServer, ServerOptions, audio
from voicecli.server.vad import (
    EnergyVad,
    VadEvent,
    semantic_silence_ms,
    threshold_dbfs,
)


def feed_all(vad: EnergyVad, pcm: bytes, chunk_bytes: int = 960) -> list[VadEvent]:
    events: list[VadEvent] = []
    for start in range(0, len(pcm), chunk_bytes):
        events += vad.feed(audio.to_float(pcm[start : start + chunk_bytes], "pcm16"))
    return events


def tone_at(level_dbfs: float, ms: float) -> bytes:
    return audio.tone(ms, level_dbfs=level_dbfs)


def test_threshold_maps_zero_to_one_onto_minus_70_to_minus_10_dbfs():
    assert threshold_dbfs(0.0) == -70.0
    assert threshold_dbfs(0.5) == -40.0
    assert threshold_dbfs(1.0) == -10.0
    assert threshold_dbfs(7) == -10.0  # clamped


def test_silence_never_starts_speech():
    vad = EnergyVad(24000)
    assert feed_all(vad, audio.silence(3000)) == []
    assert vad.position_ms == pytest.approx(3000)


def test_start_includes_prefix_padding_and_stop_includes_the_silence_window():
    vad = EnergyVad(24000, threshold=0.5, prefix_padding_ms=300, silence_duration_ms=500)
    pcm = audio.silence(1000) + tone_at(-20, 1200) + audio.silence(1000)
    events = feed_all(vad, pcm)
    assert [e.kind for e in events] == ["speech_started", "speech_stopped"]
    # The tone fades in over 10 ms: its first voiced frame is at 1000 ms.
    assert events[0].ms == pytest.approx(1000 - 300, abs=10)
    assert events[1].ms == pytest.approx(2200 + 500, abs=10)


def test_events_do_not_depend_on_how_the_audio_is_chunked():
    pcm = audio.silence(700) + tone_at(-25, 800) + audio.silence(900) + tone_at(-25, 300)
    pcm += audio.silence(900)
    results = {
        chunk: feed_all(EnergyVad(24000, silence_duration_ms=400), pcm, chunk)
        for chunk in (2, 480, 962, 4800, len(pcm))
    }
    first = results[2]
    assert len(first) == 4
    assert all(events == first for events in results.values())


def test_a_click_shorter_than_the_minimum_does_not_start_speech():
    pcm = audio.silence(500) + tone_at(-10, 30) + audio.silence(1000)
    assert feed_all(EnergyVad(24000), pcm) == []


def test_threshold_decides_whether_quiet_audio_is_speech():
    quiet = audio.silence(300) + tone_at(-50, 600) + audio.silence(800)
    assert feed_all(EnergyVad(24000, threshold=0.5), quiet) == []  # -50 < -40 dBFS
    assert [e.kind for e in feed_all(EnergyVad(24000, threshold=0.2), quiet)] == [
        "speech_started",
        "speech_stopped",
    ]
    loud_only = EnergyVad(24000, threshold=0.9)  # -16 dBFS
    assert feed_all(loud_only, audio.silence(300) + tone_at(-20, 600)) == []


def test_a_pause_shorter_than_the_silence_window_keeps_the_turn_open():
    pcm = tone_at(-20, 500) + audio.silence(300) + tone_at(-20, 500) + audio.silence(700)
    events = feed_all(EnergyVad(24000, silence_duration_ms=400), pcm)
    assert [e.kind for e in events] == ["speech_started", "speech_stopped"]
    events = feed_all(EnergyVad(24000, silence_duration_ms=200), pcm)
    assert [e.kind for e in events] == ["speech_started", "speech_stopped"] * 2


def test_hysteresis_keeps_soft_syllables_inside_the_turn():
    # A -42 dBFS peak (-45 dBFS RMS) is below the start threshold (-40) but above the
    # continue threshold (-46).
    pcm = tone_at(-20, 400) + tone_at(-42, 600) + audio.silence(600)
    events = feed_all(EnergyVad(24000, silence_duration_ms=300), pcm)
    assert [e.kind for e in events] == ["speech_started", "speech_stopped"]
    assert events[1].ms == pytest.approx(1000 + 300, abs=10)  # the last frame fades out


def test_padding_never_reaches_before_the_start_or_the_previous_turn():
    vad = EnergyVad(24000, prefix_padding_ms=300, silence_duration_ms=200)
    pcm = audio.silence(100) + tone_at(-20, 300) + audio.silence(250) + tone_at(-20, 300)
    events = feed_all(vad, pcm + audio.silence(400))
    assert events[0] == VadEvent("speech_started", 0)
    first_stop = events[1].ms
    assert events[2].kind == "speech_started"
    assert events[2].ms == first_stop  # 300 ms padding would reach into the first turn


def test_reset_moves_the_floor_and_forgets_speech_in_progress():
    vad = EnergyVad(24000, prefix_padding_ms=300)
    feed_all(vad, audio.silence(1000) + tone_at(-20, 200))
    assert vad.in_speech
    vad.reset()
    assert not vad.in_speech
    events = feed_all(vad, tone_at(-20, 300) + audio.silence(600))
    assert events[0] == VadEvent("speech_started", 1200)  # not 1200 - 300


def test_start_ms_offsets_every_timestamp():
    vad = EnergyVad(8000, prefix_padding_ms=100, silence_duration_ms=200, start_ms=5000)
    samples = np.concatenate(
        [np.zeros(8000), 0.3 * np.sin(np.arange(4000) * 0.3), np.zeros(4000)]
    ).astype(np.float32)
    events = vad.feed(samples)
    assert events == [VadEvent("speech_started", 5900), VadEvent("speech_stopped", 6700)]


def test_semantic_vad_eagerness_maps_to_a_quarter_of_the_documented_maximum_wait():
    assert semantic_silence_ms("low") == 2000
    assert semantic_silence_ms("medium") == 1000
    assert semantic_silence_ms("auto") == 1000
    assert semantic_silence_ms(None) == 1000
    assert semantic_silence_ms("high") == 500


# --- real speech ------------------------------------------------------------------------------


def true_bounds_ms(pcm: bytes) -> tuple[float, float]:
    """First and last sample above 1% of full scale: where the speech really is."""
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32))
    loud = np.nonzero(samples > 328)[0]
    return loud[0] / 24, loud[-1] / 24


@pytest.fixture(scope="module")
def question(speech_dir: Path) -> bytes:
    wav = make_speech(speech_dir, "What is the capital of France?", "vad-question", 0)
    return audio.read_wav(wav)


@pytest.mark.parametrize("silence_ms", [200, 500])
def test_real_speech_is_found_where_it_is(question: bytes, silence_ms: int):
    onset, offset = true_bounds_ms(question)
    lead = 1000
    pcm = audio.silence(lead) + question + audio.silence(1500)
    events = feed_all(EnergyVad(24000, 0.5, 300, silence_ms), pcm, 960)
    assert [e.kind for e in events] == ["speech_started", "speech_stopped"]
    assert events[0].ms == pytest.approx(lead + onset - 300, abs=30)
    assert events[1].ms == pytest.approx(lead + offset + silence_ms, abs=30)


async def test_real_speech_over_the_socket_gives_vad_events_and_an_echo(question: bytes):
    onset, offset = true_bounds_ms(question)
    pcm = audio.silence(800) + question + audio.silence(1200)
    options = ServerOptions(pace=0, responder="echo")
    async with LocalServer(options) as server, connect(server.url, max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        for start in range(0, len(pcm), 960):  # 20 ms appends, like a microphone
            chunk = base64.b64encode(pcm[start : start + 960]).decode()
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": chunk}))
        events: list[dict] = []
        while not events or events[-1]["type"] != "response.done":
            events.append(json.loads(await ws.recv()))
    by_type = {event["type"]: event for event in events}
    started = by_type["input_audio_buffer.speech_started"]
    stopped = by_type["input_audio_buffer.speech_stopped"]
    assert started["audio_start_ms"] == pytest.approx(800 + onset - 300, abs=30)
    assert stopped["audio_end_ms"] == pytest.approx(800 + offset + 200, abs=30)
    assert (
        started["item_id"]
        == stopped["item_id"]
        == by_type["input_audio_buffer.committed"]["item_id"]
    )
    echoed = b"".join(
        base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta"
    )
    # The echo is the committed turn: from audio_start_ms to audio_end_ms.
    turn_ms = stopped["audio_end_ms"] - started["audio_start_ms"]
    assert len(echoed) / 48 == pytest.approx(turn_ms, abs=1)
    assert by_type["response.done"]["response"]["status"] == "completed"
