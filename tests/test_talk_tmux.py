"""The real `voicecli talk` in a real terminal (tmux) on the virtual sound server.

Each test starts `python -m voicecli talk` in a private tmux server (its own socket, 120x40),
with the embedded local server (no API key), a clean HOME and the test PulseAudio server. It
"speaks" by playing an espeak-ng sentence into the sound server and reads the screen with
`tmux capture-pane`, like a user would.

- Two sinks (the default): the client plays into `spk`, its microphone hears `mic` only.
- One shared sink (echo tests): `PULSE_SOURCE=spk.monitor` makes the client record what it
  plays itself, as laptop speakers next to a laptop microphone do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tests import pulse
from tests.conftest import make_speech


pytestmark = [
    pytest.mark.tmux,
    pytest.mark.audio,
    pytest.mark.slow,
    pytest.mark.skipif(not shutil.which("tmux"), reason="tmux is not installed"),
]

ROOT = Path(__file__).resolve().parent.parent


class TalkInTmux:
    """`voicecli talk ARGS` in its own tmux server; the pane stays open after it exits."""

    def __init__(self, home: Path, args: list[str], env: dict[str, str] | None = None) -> None:
        self.socket = f"voicecli-test-{uuid.uuid4().hex[:12]}"  # a tmux server of its own
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        environment = {
            "PULSE_SERVER": pulse.SERVER,
            "HOME": str(home),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_STATE_HOME": str(home / "state"),
            "PYTHONPATH": str(ROOT),
            **(env or {}),
        }
        command = " ".join(
            [f"'{sys.executable}'", "-m", "voicecli", "talk", *(f"'{a}'" for a in args)]
        )
        self._tmux(
            "new-session",
            "-d",
            "-s",
            "talk",
            "-x",
            "120",
            "-y",
            "40",
            "-c",
            str(home),
            *[part for name, value in environment.items() for part in ("-e", f"{name}={value}")],
            f'{command}; echo "EXIT=$?"; sleep 600',
        )

    def _tmux(self, *args: str) -> str:
        # COLUMNS/LINES (set by some shells and by pytest's terminal writer) would override
        # the pane's real size inside the app.
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10, env=env
        )
        return result.stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "talk")

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "talk", *keys)

    def pid(self) -> int:
        """The `voicecli talk` process: the only child of the pane's shell."""
        [shell] = self._tmux("list-panes", "-t", "talk", "-F", "#{pane_pid}").split()
        children = Path(f"/proc/{shell}/task/{shell}/children").read_text().split()
        assert len(children) == 1, children
        return int(children[0])

    def wait_for(self, predicate: Callable[[str], object], timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if predicate(screen):
                return screen
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s; the screen shows:\n{screen}")
            time.sleep(0.1)

    def state(self, screen: str) -> str:
        match = re.search(r"(◌ connecting…|[○◉●◌♪⊘] [A-Z][A-Z ]+[A-Z])", screen)
        return match.group(1) if match else ""

    def watch(self, done: Callable[[str], object], timeout: float = 20.0) -> tuple[list[str], str]:
        """Distinct states shown, in order, until `done(screen)`; and the last screen."""
        states: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            state = self.state(screen)
            if state and (not states or states[-1] != state):
                states.append(state)
            if done(screen):
                return states, screen
            if time.monotonic() > deadline:
                pytest.fail(f"timed out; states {states}; the screen shows:\n{screen}")
            time.sleep(0.05)

    def quit(self) -> str:
        self.keys("q")
        return self.wait_for(lambda screen: "EXIT=" in screen, timeout=10)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True)
        tmp = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}"
        (tmp / self.socket).unlink(missing_ok=True)  # tmux leaves the socket file behind

    def __enter__(self) -> TalkInTmux:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def transcript(screen: str) -> list[str]:
    """The conversation lines inside the pane's box."""
    rows = [row.strip("│ ").rstrip() for row in screen.splitlines() if row.startswith("│")]
    return [row for row in rows if row]


def rms_over_time(raw: Path, window_s: float = 0.1) -> np.ndarray:
    samples = np.frombuffer(raw.read_bytes(), "<i2").astype(np.float32)
    size = int(24000 * window_s)
    count = len(samples) // size
    blocks = samples[: count * size].reshape(count, size)
    return np.sqrt(np.mean(blocks * blocks, axis=1)) / 32768


def test_real_talk_hears_a_spoken_turn_and_answers(
    sound_server: str, speech_wav: Path, tmp_path: Path
) -> None:
    speaker = tmp_path / "speaker.raw"
    recorder = pulse.record_monitor("spk", speaker)
    try:
        with TalkInTmux(tmp_path / "home", ["--responder", "echo", "--pace", "1"]) as talk:
            talk.wait_for(lambda s: "● connected" in s and "LISTENING" in s)
            first = talk.screen()
            pulse.play_into_mic(speech_wav).wait(timeout=15)
            states, screen = talk.watch(
                lambda s: "turn 1 (voice)" in s and "◉ LISTENING" in s, timeout=20
            )
            lines = transcript(screen)
            after = talk.quit()
    finally:
        recorder.terminate()
        recorder.wait(timeout=5)

    assert "local demo server — no API key; replies are synthetic" in first
    assert "local demo server │ ga │ gpt-realtime │ alloy │ vad │ echo gate" in first
    for expected in ("● YOU ARE SPEAKING", "♪ ASSISTANT SPEAKING"):
        assert expected in states, states
    assert states.index("● YOU ARE SPEAKING") < states.index("♪ ASSISTANT SPEAKING")
    assert states[-1] == "◉ LISTENING"
    user = [line for line in lines if line.startswith("You: ")]
    assistant = [line for line in lines if line.startswith("Assistant: ")]
    assert len(user) == 1 and re.fullmatch(r"You: \[2\.\d s of audio\]", user[0]), lines
    assert len(assistant) == 1 and assistant[0].startswith("Assistant: Echo of 2."), lines
    assert lines.index(user[0]) < lines.index(assistant[0])
    # The reply really reached the speaker: about as long as the question, and loud.
    loud = rms_over_time(speaker) > 0.01
    assert 1.5 <= loud.sum() * 0.1 <= 6.0
    assert "EXIT=0" in after and "Traceback" not in after
    # What ALSA/PortAudio print on file descriptor 2 goes to a log, not over the screen.
    assert "ALSA lib" not in screen and "ALSA lib" not in first


def paplay_into_speaker(wav: Path) -> None:
    """Play a WAV into the shared sink, as the user talking in the room; returns when done."""
    subprocess.run(
        ["paplay", "--server", pulse.SERVER, "--device=spk", str(wav)], check=True, timeout=15
    )


def run_echo_session(home: Path, speech_wav: Path, guard: str, settle_s: float) -> str:
    """Speak once into the shared sink; return the screen `settle_s` after the first reply."""
    args = ["--responder", "echo", "--pace", "1", "--echo-guard", guard, "--no-history"]
    with TalkInTmux(home, args, env={"PULSE_SOURCE": "spk.monitor"}) as talk:
        talk.wait_for(lambda s: "● connected" in s and "LISTENING" in s)
        # The user talks in the room: the speaker and the microphone share the air.
        paplay_into_speaker(speech_wav)
        talk.wait_for(lambda s: "turn 1 (voice)" in s, timeout=20)
        time.sleep(settle_s)
        screen = talk.screen()
        talk.quit()
    return screen


def assert_answered_once(screen: str, guard: str) -> None:
    """One user turn, one reply, nothing interrupted: the model did not hear itself."""
    lines = transcript(screen)
    users = [line for line in lines if line.startswith("You: ")]
    assert len(users) == 1, screen
    assert not any("interrupted" in line for line in lines), screen
    assert "turn 1 (voice)" in screen and "◉ LISTENING" in screen
    assert f"echo {guard}" in screen


def test_without_a_guard_the_assistant_answers_itself(
    sound_server: str, speech_wav: Path, tmp_path: Path
) -> None:
    # The echo responder's reply (the user's own words played back) is heard by the
    # microphone and starts the next turn, and so on: the model answers itself.
    unguarded = run_echo_session(tmp_path / "off", speech_wav, "off", settle_s=5.0)
    unguarded_users = [line for line in transcript(unguarded) if line.startswith("You: ")]
    assert len(unguarded_users) >= 2, unguarded
    assert any("interrupted" in line for line in transcript(unguarded)), unguarded


def test_half_duplex_keeps_the_assistant_from_answering_itself(
    sound_server: str, speech_wav: Path, tmp_path: Path
) -> None:
    # The microphone is shut while the assistant is audible (and a short tail).
    guarded = run_echo_session(tmp_path / "half", speech_wav, "half-duplex", settle_s=5.0)
    assert_answered_once(guarded, "half-duplex")


def test_echo_gate_keeps_the_assistant_from_answering_itself(
    sound_server: str, speech_wav: Path, tmp_path: Path
) -> None:
    # The default guard: the speaker leaks into the mic at full level (the worst case), and
    # the gate, comparing each mic block with what the speaker played at that moment, holds
    # the mic closed for the whole reply.
    guarded = run_echo_session(tmp_path / "gate", speech_wav, "gate", settle_s=5.0)
    assert_answered_once(guarded, "gate")


def test_echo_gate_still_lets_the_user_interrupt(
    sound_server: str, speech_dir: Path, speech_wav: Path, tmp_path: Path
) -> None:
    # A quiet question (12 dB down) makes a quiet reply; the user then talks over the reply at
    # a normal level, into the same shared sink, 12 dB above the reply's echo.
    quiet = tmp_path / "quiet.wav"
    subprocess.run(["sox", str(speech_wav), str(quiet), "vol", "-12dB"], check=True)
    stop = make_speech(speech_dir, "Stop, stop.", "stop")
    args = ["--responder", "echo", "--pace", "1", "--echo-guard", "gate", "--no-history"]
    with TalkInTmux(tmp_path / "home", args, env={"PULSE_SOURCE": "spk.monitor"}) as talk:
        talk.wait_for(lambda s: "● connected" in s and "LISTENING" in s)
        paplay_into_speaker(quiet)
        talk.wait_for(lambda s: "♪ ASSISTANT SPEAKING" in s, timeout=20)
        paplay_into_speaker(stop)
        talk.wait_for(lambda s: "turn 2 (voice)" in s, timeout=20)
        time.sleep(3.0)
        screen = talk.screen()
        talk.quit()

    lines = transcript(screen)
    users = [line for line in lines if line.startswith("You: ")]
    assistants = [line for line in lines if line.startswith("Assistant: ")]
    assert len(users) == 2, screen  # the question and the interruption; no self-answers
    assert len(assistants) == 2, screen
    assert "interrupted" in assistants[0] and "interrupted" not in assistants[1], screen
    assert "echo gate" in screen


def test_a_session_that_cannot_open_ends_with_one_line_and_exit_2(tmp_path: Path) -> None:
    with TalkInTmux(tmp_path / "home", ["--text-only", "--url", "ws://127.0.0.1:9/"]) as talk:
        screen = talk.wait_for(lambda s: "EXIT=" in s, timeout=20)

    lines = [line for line in screen.splitlines() if line.strip()]
    exit_at = next(i for i, line in enumerate(lines) if line.startswith("EXIT="))
    assert lines[exit_at] == "EXIT=2"
    message = lines[exit_at - 1]
    assert message.startswith("voicecli: ") and "127.0.0.1:9" in message, screen
    assert "Traceback" not in screen
