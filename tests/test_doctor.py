"""`voicecli doctor`: on the private PulseAudio server (real PortAudio streams), without any
sound server (a subprocess pointed at a socket that does not exist), and against real local
servers on loopback for the key, reachability and handshake checks."""

from __future__ import annotations

import re
import wave
from pathlib import Path

import pytest

from tests import pulse
from tests.cli import run_voicecli
from voicecli.cli import main
from voicecli.config import load_config
from voicecli.doctor import CHECKS, render, run_checks
from voicecli.server import LocalServer, ServerOptions


FAKE_KEY = "sk-proj-DOCTOR-FAKE-KEY-0123456789-abcdefXYZ"
NETWORK_CHECKS = [check for check in CHECKS if check.name in ("api_key", "server", "handshake")]


def config_for(tmp_path: Path, env: dict[str, str] | None = None, **overrides: str):  # type: ignore[no-untyped-def]
    return load_config(
        {f"connection.{name}": value for name, value in overrides.items()},
        env={"HOME": str(tmp_path), **(env or {})},
        dotenv_path=None,
    )


def statuses(output: str) -> list[str]:
    return [line.split()[0] for line in output.splitlines()[:-1]]


def repeated(wav: Path, times: int, out: Path) -> Path:
    with wave.open(str(wav), "rb") as source:
        params, frames = source.getparams(), source.readframes(source.getnframes())
    with wave.open(str(out), "wb") as target:
        target.setparams(params)
        target.writeframes(frames * times)
    return out


@pytest.mark.audio
def test_doctor_passes_on_the_virtual_sound_server(
    sound_server: str, speech_wav: Path, sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    player = pulse.play_into_mic(repeated(speech_wav, 4, sandbox / "talking.wav"))
    try:
        code = main(["doctor", "--mic-seconds", "1.5"])
    finally:
        player.terminate()
        player.wait()
    out = capsys.readouterr().out
    assert code == 0, out
    assert statuses(out) == ["PASS"] * 7
    assert "devices open at 24 kHz: input at 24 kHz, output at 24 kHz; the speaker plays" in out
    mic_line = next(line for line in out.splitlines() if "microphone level" in line)
    assert "peak" in mic_line and "-inf" not in mic_line
    assert "not needed, the embedded local server will be used" in out
    assert out.endswith("7/7 checks passed: all checks passed.\n")


@pytest.mark.audio
def test_doctor_fails_a_silent_microphone(
    sound_server: str, sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["doctor", "--mic-seconds", "0.5"])
    out = capsys.readouterr().out
    assert code == 1
    assert statuses(out) == ["PASS", "PASS", "PASS", "FAIL", "PASS", "PASS", "PASS"]
    (line,) = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert re.fullmatch(
        r"FAIL  microphone level: the microphone delivered 0\.[3-6] s of digital silence\. Fix: "
        r"unmute it \(or raise its input volume\) in the system mixer, or choose another "
        r"device with --input-device / --output-device \(see 'voicecli devices'\)",
        line,
    ), line


def test_doctor_without_a_sound_server(sandbox: Path) -> None:
    env = {"PULSE_SERVER": f"unix:{sandbox}/no-such-server/native"}
    done = run_voicecli("doctor", home=sandbox / "home", cwd=sandbox, env=env)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert statuses(done.stdout) == ["PASS", "FAIL", "SKIP", "SKIP", "PASS", "PASS", "PASS"]
    assert lines[0].startswith("PASS  PortAudio library: PortAudio V19")
    assert lines[1] == (
        "FAIL  audio devices: PortAudio sees no audio devices at all. Fix: start your sound "
        "server (PulseAudio or PipeWire) or connect a microphone and speakers; 'voicecli "
        "devices' lists what PortAudio sees"
    )
    assert lines[2] == "SKIP  devices open at 24 kHz: not run: needs 'audio devices' to pass"
    assert lines[3] == "SKIP  microphone level: not run: needs 'devices open at 24 kHz' to pass"
    assert lines[-1] == "4/7 checks passed: some checks did not pass."


async def test_doctor_reports_a_beta_refusal_clearly(tmp_path: Path) -> None:
    async with LocalServer(ServerOptions(beta_disabled=True)) as server:
        beta = config_for(tmp_path, url=server.url, dialect="beta")
        results = await run_checks(beta, checks=NETWORK_CHECKS)
        ga = await run_checks(config_for(tmp_path, url=server.url), checks=NETWORK_CHECKS)
    key, reachable, handshake = results
    assert (key.status, reachable.status, handshake.status) == ("pass", "pass", "fail")
    assert render(handshake) == (
        "FAIL  realtime handshake: the server refused the beta dialect (close 4000 "
        'beta_api_shape_disabled). Fix: use the GA dialect: --dialect ga, or dialect = "ga" in '
        "[connection]"
    )
    assert [result.status for result in ga] == ["pass", "pass", "pass"]
    assert "GA dialect" in ga[2].detail


async def test_doctor_sends_the_key_but_never_shows_it(tmp_path: Path) -> None:
    options = ServerOptions(auth="key", api_key=FAKE_KEY)
    async with LocalServer(options) as server:
        good = config_for(tmp_path, {"OPENAI_API_KEY": FAKE_KEY}, url=server.url)
        wrong = config_for(tmp_path, {"OPENAI_API_KEY": FAKE_KEY[::-1]}, url=server.url)
        accepted = await run_checks(good, checks=NETWORK_CHECKS)
        refused = await run_checks(wrong, checks=NETWORK_CHECKS)
    assert [result.status for result in accepted] == ["pass", "pass", "pass"]
    assert accepted[0].detail == "set (OPENAI_API_KEY)"
    assert refused[2].status == "fail" and "rejected the API key" in refused[2].detail
    text = "\n".join(render(result) for result in accepted + refused)
    for secret in (FAKE_KEY, FAKE_KEY[::-1], FAKE_KEY[-4:], FAKE_KEY[::-1][-4:]):
        assert secret not in text


async def test_doctor_openai_without_a_key(tmp_path: Path) -> None:
    results = await run_checks(config_for(tmp_path, server="openai"), checks=NETWORK_CHECKS)
    assert [r.status for r in results] == ["fail", "skip", "skip"]
    assert render(results[0]) == (
        "FAIL  API key: OPENAI_API_KEY is not set, and server = openai needs it. Fix: set "
        "OPENAI_API_KEY in the environment or in .env (or use --server local)"
    )
    assert results[2].detail == "not run: needs 'server reachable' to pass"


async def test_doctor_unreachable_url(tmp_path: Path) -> None:
    config = config_for(tmp_path, url="ws://127.0.0.1:9/v1/realtime")
    key, reachable, handshake = await run_checks(config, checks=NETWORK_CHECKS)
    assert key.detail.startswith("not set: connecting to the url without a key")
    assert reachable.status == "fail"
    assert reachable.detail == "cannot reach 127.0.0.1:9: connection refused"
    assert handshake.status == "skip"
