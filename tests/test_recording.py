"""`--record DIR`: the stereo WAV (mic left, assistant right, one timeline) and the JSONL
capture (every event both ways, audio elided, secrets never written)."""

from __future__ import annotations

import asyncio
import base64
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_speech
from tests.test_engine import concat_wav
from voicecli.audio import FileBackend
from voicecli.audio.wav import read_wav
from voicecli.engine import TalkEngine, TalkSettings, opener_for
from voicecli.errors import UsageError
from voicecli.recording import MAX_STRING_CHARS, SessionRecording, elide
from voicecli.server import LocalServer, ServerOptions
from voicecli.session import ConnectionSettings


RATE = 24000


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def tone(ms: int, value: int) -> bytes:
    return np.full(RATE * ms // 1000, value, "<i2").tobytes()


def read_stereo(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, RATE)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), "<i2")
    return frames[0::2], frames[1::2]


def at(ms: float) -> int:
    return round(ms * RATE / 1000)


# --- the WAV -------------------------------------------------------------------------------


def test_mic_and_assistant_on_one_timeline(tmp_path: Path) -> None:
    clock = Clock()
    recording = SessionRecording.create(tmp_path, clock=clock, wall_clock=lambda: 1.8e9)
    start = clock.now
    recording.mic(tone(100, 1000), captured_at=start + 0.2)  # 200..300 ms
    recording.mic(tone(100, 1100), captured_at=start + 0.3)  # 300..400 ms
    clock.now = start + 0.5
    recording.play(tone(200, 2000))  # plays 500..700 ms
    recording.play(tone(300, 3000))  # queued behind it: 700..1000 ms
    clock.now = start + 0.8
    recording.clear()  # barge-in at 800 ms: the rest of the second one is never heard
    clock.now = start + 1.0
    recording.play(tone(100, 4000))  # 1000..1100 ms
    clock.now = start + 1.5
    recording.close()

    left, right = read_stereo(recording.wav_path)
    assert left.size == right.size == at(1500)
    assert not left[: at(200)].any()
    assert (left[at(200) : at(300)] == 1000).all() and (left[at(300) : at(400)] == 1100).all()
    assert not left[at(400) :].any()
    assert not right[: at(500)].any()
    assert (right[at(500) : at(700)] == 2000).all()
    assert (right[at(700) : at(800)] == 3000).all()
    assert not right[at(800) : at(1000)].any()  # cut by the clear
    assert (right[at(1000) : at(1100)] == 4000).all()
    assert not right[at(1100) :].any()


def test_audio_queued_beyond_the_end_is_not_written(tmp_path: Path) -> None:
    clock = Clock()
    recording = SessionRecording.create(tmp_path, clock=clock)
    recording.play(tone(2000, 500))  # arrives faster than real time
    clock.now += 0.5
    recording.close()
    left, right = read_stereo(recording.wav_path)
    assert right.size == at(500) and (right == 500).all() and not left.any()


def test_the_wav_is_readable_while_the_session_runs(tmp_path: Path) -> None:
    """Written as it goes, header included: a crash leaves a playable file."""
    clock = Clock()
    recording = SessionRecording.create(tmp_path, clock=clock)
    block = tone(20, 700)
    for n in range(200):  # 4 s of mic, captured in real time
        clock.now = 100.0 + n * 0.02
        recording.mic(block, captured_at=clock.now)
    left, right = read_stereo(recording.wav_path)  # not closed
    assert recording.frames_written == left.size >= at(2000)  # all but the last second or so
    assert (left == 700).all() and not right.any()
    recording.close()
    left, _ = read_stereo(recording.wav_path)
    assert left.size == at(3980) + 480 and (left == 700).all()


def test_a_late_mic_block_for_time_already_written_is_dropped_not_misplaced(
    tmp_path: Path,
) -> None:
    clock = Clock()
    recording = SessionRecording.create(tmp_path, clock=clock)
    for n in range(150):
        clock.now = 100.0 + n * 0.02
        recording.mic(tone(20, 100), captured_at=clock.now)
    written = recording.frames_written
    recording.mic(tone(100, 9999), captured_at=100.0)  # long written: only its tail would fit
    recording.close()
    left, _ = read_stereo(recording.wav_path)
    assert written > at(100) and not (left[:written] == 9999).any()


# --- the capture ---------------------------------------------------------------------------


def test_capture_elides_audio_and_long_strings() -> None:
    audio = base64.b64encode(bytes(4800)).decode()
    assert elide({"type": "input_audio_buffer.append", "audio": audio}) == {
        "type": "input_audio_buffer.append",
        "audio": "<4800 bytes>",
    }
    delta = {"type": "response.output_audio.delta", "delta": audio, "item_id": "i"}
    assert elide(delta)["delta"] == "<4800 bytes>"
    # A transcript delta's `delta` is words: kept.
    words = {"type": "response.output_audio_transcript.delta", "delta": "Hello"}
    assert elide(words) == words
    item = {
        "type": "conversation.item.create",
        "item": {"content": [{"type": "input_audio", "audio": audio, "transcript": "hi"}]},
    }
    assert elide(item)["item"]["content"][0] == {
        "type": "input_audio",
        "audio": "<4800 bytes>",
        "transcript": "hi",
    }
    session = {"type": "session.update", "session": {"audio": {"input": {"format": "pcm"}}}}
    assert elide(session) == session  # `audio` that is not base64 audio stays
    long = {"type": "x", "padding": "A" * (MAX_STRING_CHARS + 1)}
    cut = elide(long)["padding"]
    assert len(cut) < 300 and cut.endswith(f"<{MAX_STRING_CHARS + 1} chars>")


def test_capture_lines_never_hold_a_secret(tmp_path: Path) -> None:
    secret = "sk-test-CAPTURE-0123456789"
    recording = SessionRecording.create(tmp_path, secrets=[None])
    recording.add_secret(secret)
    recording.sent({"type": "conversation.item.create", "item": {"text": f"key {secret}!"}})
    recording.received({"type": "error", "error": {"message": f"bad key {secret}"}}, "error")
    recording.received(None, "protocol_error", note=f"frame {secret}")
    recording.note("engine", f"note {secret}")
    recording.close()
    text = recording.jsonl_path.read_text(encoding="utf-8")
    assert secret not in text and text.count("[redacted]") == 4
    lines = [json.loads(line) for line in text.splitlines()]
    assert [(line["dir"], line["type"]) for line in lines] == [
        ("sent", "conversation.item.create"),
        ("received", "error"),
        ("received", "protocol_error"),
        ("engine", "engine"),
    ]
    assert all(isinstance(line["at"], float) for line in lines)


def test_each_session_gets_its_own_files(tmp_path: Path) -> None:
    first = SessionRecording.create(tmp_path / "rec", wall_clock=lambda: 1.8e9)
    second = SessionRecording.create(tmp_path / "rec", wall_clock=lambda: 1.8e9)
    first.close()
    second.close()
    names = sorted(p.name for p in (tmp_path / "rec").iterdir())
    stem = first.wav_path.stem
    assert names == [f"{stem}-2.jsonl", f"{stem}-2.wav", f"{stem}.jsonl", f"{stem}.wav"]


def test_an_unwritable_directory_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match=r"^--record: cannot create .*file/sub") as caught:
        SessionRecording.create(blocker / "sub")
    assert "\n" not in str(caught.value)


# --- a recorded session --------------------------------------------------------------------


@pytest.mark.slow
async def test_a_recorded_voice_session(tmp_path: Path, speech_dir: Path) -> None:
    """The echo responder answers with the user's own audio: in the WAV the right channel
    holds the same speech as the left, as far after it as the simulated speaker really played
    it; the capture holds every frame of the session."""
    question = make_speech(speech_dir, "What is the capital of France?", "capital")
    mic = concat_wav(tmp_path / "mic.wav", [300, question, 4000])
    options = ServerOptions(responder="echo", pace=1)
    async with LocalServer(options) as server:
        played = tmp_path / "speaker.wav"  # what the simulated speaker played, on the mic's clock
        # No stretching: the recording holds assistant audio as received (see its module).
        audio = FileBackend(mic, played, realtime=True, trailing_silence_ms=0, max_stretch_ms=0)
        engine = TalkEngine(
            TalkSettings(record_dir=tmp_path / "rec"),
            opener_for(ConnectionSettings(url=server.url)),
            audio,
        )
        task = asyncio.create_task(engine.run())
        while not engine.metrics.turns:
            await asyncio.sleep(0.05)
            assert not task.done()
        while engine.policy.playing:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # the last block through the speaker, some silence after
        engine.stop()
        await asyncio.wait_for(task, 10)

    recording = engine.recording
    assert recording is not None and recording.closed
    left, right = read_stereo(recording.wav_path)
    with wave.open(str(question), "rb") as source:
        spoken = np.frombuffer(source.readframes(source.getnframes()), "<i2").astype(np.float32)
    voiced = np.nonzero(np.abs(spoken) > 50)[0]
    spoken = spoken[voiced[0] : voiced[-1] + 1]  # the words, without the silence around them

    def found_at(channel: np.ndarray) -> tuple[int, float]:
        """Where `spoken` is in `channel` (sample offset) and how well it matches (0..1)."""
        signal = channel.astype(np.float32)
        scores = np.correlate(signal, spoken, "valid")
        offset = int(np.argmax(scores))
        window = signal[offset : offset + spoken.size]
        match = float(scores[offset] / (np.linalg.norm(window) * np.linalg.norm(spoken) + 1e-9))
        return offset, match

    mic_at, mic_match = found_at(left)
    echo_at, echo_match = found_at(right)
    assert mic_match > 0.999 and echo_match > 0.999  # the same speech, sample for sample
    assert not right[: mic_at + spoken.size].any()  # nothing played while the user spoke
    # The gap from question to echo is the one the simulated speaker really had, to within
    # one 20 ms audio block: the player starts on a block boundary, the recording does not
    # know which (the speaker's WAV and the mic file share one timeline).
    speaker_gap = found_at(read_wav(played))[0] - found_at(read_wav(mic))[0]
    assert abs((echo_at - mic_at) - speaker_gap) <= at(20)

    lines = [json.loads(line) for line in recording.jsonl_path.read_text().splitlines()]
    sent = [line for line in lines if line["dir"] == "sent"]
    received = [line for line in lines if line["dir"] == "received"]
    log_sent = [e for e in engine.log if e.direction == "sent"]
    log_received = [e for e in engine.log if e.direction == "received"]
    assert [line["type"] for line in sent] == [e.type for e in log_sent]
    assert [line["type"] for line in received] == [e.type for e in log_received]
    appends = [line for line in sent if line["type"] == "input_audio_buffer.append"]
    assert appends and all(line["event"]["audio"].endswith(" bytes>") for line in appends)
    deltas = [line for line in received if line["type"] == "response.output_audio.delta"]
    assert deltas and all(line["event"]["delta"].endswith(" bytes>") for line in deltas)
    assert lines[-1]["dir"] == "engine" and lines[-1]["type"] == "ended"
