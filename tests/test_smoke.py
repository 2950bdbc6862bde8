"""`voicecli smoke` end to end: the real command against the embedded local server on loopback,
with espeak-ng WAV turns and text turns, checking exit codes, the JSON report against its
documented schema, the per-turn WAVs and the history."""

from __future__ import annotations

import json
import wave
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.conftest import make_speech
from voicecli.cli import main
from voicecli.history.store import HistoryStore
from voicecli.server import LocalServer, ServerOptions


SCHEMA = json.loads(
    (Path(__file__).resolve().parents[1] / "docs" / "smoke-report.schema.json").read_text()
)
LATENCIES = ("response_created", "first_audio", "first_transcript", "first_played", "total")


def smoke(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["smoke", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def validated(path: Path) -> dict[str, Any]:
    report = json.loads(path.read_text())
    jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.FormatChecker()).validate(
        report
    )
    return report


def assert_latencies_positive(turn: dict[str, Any]) -> None:
    assert turn["status"] == "completed"
    for name in LATENCIES:
        value = turn["latency_ms"][name]
        assert value is not None and value > 0, (name, turn["latency_ms"])
    latency = turn["latency_ms"]
    assert latency["response_created"] <= latency["first_audio"] <= latency["total"]
    assert latency["first_audio"] <= latency["first_played"]
    assert turn["audio"]["assistant_ms"] > 0 and turn["audio"]["wall_ms"] > 0


def wav_ms(path: Path) -> float:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (24000, 1, 2)
        return wav.getnframes() / 24


def test_schema_is_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_wav_and_text_turns_pass_with_matching_expectations(
    sandbox: Path, speech_wav: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir, report_path = sandbox / "out", sandbox / "report.json"
    code, out, err = smoke(
        capsys,
        "--no-history",
        "--pace",
        "fast",
        "--wav",
        str(speech_wav),
        "--text",
        "What about Italy?",
        "--expect",
        r"heard \d\.\d seconds",
        "--expect",
        "you said: what about italy",
        "--out",
        str(out_dir),
        "--json",
        str(report_path),
    )
    assert code == 0, out + err
    assert "embedded local server" in err
    assert "PASS: 2/2 turns completed, 2/2 expectations matched" in out

    report = validated(report_path)
    assert (report["passed"], report["exit_code"], report["error"]) == (True, 0, None)
    assert report["target"]["server"] == "local" and report["target"]["pace"] == "fast"
    assert report["target"]["url"].startswith("ws://127.0.0.1:")
    speech, text = report["turns"]
    assert speech["input"]["kind"] == "wav" and speech["trigger"] == "voice"
    assert speech["input"]["duration_ms"] == pytest.approx(wav_ms(speech_wav), abs=1)
    assert speech["user_transcript"].startswith("[") and "s of audio]" in speech["user_transcript"]
    assert text["trigger"] == "text" and text["user_transcript"] == "What about Italy?"
    assert text["assistant_transcript"] == "You said: What about Italy?"
    for turn in (speech, text):
        assert_latencies_positive(turn)
        assert turn["expectations"][0]["matched"] is True
        assert turn["usage"]["output_audio_tokens"] > 0 and turn["cost_usd"] > 0
        # The WAV holds exactly the reply audio the client played.
        assert wav_ms(Path(turn["assistant_audio_file"])) == pytest.approx(
            turn["audio"]["assistant_ms"], abs=1
        )
    assert report["summary"]["cost_usd"] == pytest.approx(speech["cost_usd"] + text["cost_usd"])
    assert (out_dir / "session.wav").is_file()


def test_non_matching_expectation_exits_1(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = sandbox / "report.json"
    code, out, _ = smoke(
        capsys,
        "--no-history",
        "--pace",
        "fast",
        "--text",
        "Hello",
        "--text",
        "Goodbye",
        "--expect",
        "hello",
        "--expect",
        "user:nothing like this",
        "--json",
        str(report_path),
    )
    assert code == 1
    assert "NO MATCH" in out and "FAIL: 2/2 turns completed, 1/2 expectations matched" in out
    report = validated(report_path)
    assert (report["passed"], report["exit_code"]) == (False, 1)
    first, second = report["turns"]
    assert (first["passed"], second["passed"]) == (True, False)
    assert second["expectations"] == [
        {"on": "user", "pattern": "nothing like this", "matched": False}
    ]
    assert report["summary"]["expectations_failed"] == 1


def test_unreachable_url_exits_2_with_one_line(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report_path = sandbox / "report.json"
    code, out, err = smoke(
        capsys,
        "--no-history",
        "--text",
        "Hello",
        "--url",
        "ws://127.0.0.1:9/v1/realtime",
        "--json",
        str(report_path),
    )
    assert code == 2
    assert out == ""
    assert err == "voicecli: cannot reach ws://127.0.0.1:9/v1/realtime: connection refused\n"
    report = validated(report_path)
    assert report["exit_code"] == 2 and "connection refused" in report["error"]
    assert report["turns"][0]["status"] == "not_run"
    assert report["turns"][0]["latency_ms"]["total"] is None


def test_timeout_exits_1_and_skips_the_rest(
    sandbox: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = sandbox / "slow.jsonl"
    script.write_text('{"text": "Too late.", "delay_ms": 5000}\n')
    monkeypatch.setenv("VOICECLI_LOCAL_SERVER_SCRIPT", str(script))
    report_path = sandbox / "report.json"
    code, out, _ = smoke(
        capsys,
        "--no-history",
        "--pace",
        "fast",
        "--responder",
        "scripted",
        "--timeout",
        "0.5",
        "--text",
        "Hello",
        "--text",
        "Again",
        "--json",
        str(report_path),
    )
    assert code == 1
    assert "TIMEOUT" in out and "not run" in out
    report = validated(report_path)
    first, second = report["turns"]
    assert first["status"] == "timeout"
    assert first["note"] == "the reply did not finish within 0.5 s"
    assert second["status"] == "not_run"
    assert report["summary"]["timed_out"] == 1 and report["summary"]["not_run"] == 1


def test_script_file_turns_and_ptt(
    sandbox: Path, speech_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wav = make_speech(speech_dir, "Good morning", "morning")
    (sandbox / "turns").mkdir()
    (sandbox / "turns" / "morning.wav").write_bytes(wav.read_bytes())
    script = sandbox / "turns" / "run.jsonl"
    script.write_text(
        "# a voice turn, then a typed one\n"
        '{"wav": "morning.wav", "expect": "round trip", "expect_user": "s of audio"}\n'
        "\n"
        '{"text": "Thanks", "expect": ["you said", "thanks"]}\n'
    )
    report_path = sandbox / "report.json"
    code, out, err = smoke(
        capsys,
        "--no-history",
        "--pace",
        "fast",
        "--mode",
        "ptt",
        "--script",
        str(script),
        "--json",
        str(report_path),
    )
    assert code == 0, out + err
    report = validated(report_path)
    speech, text = report["turns"]
    assert speech["trigger"] == "ptt" and speech["input"]["wav"].endswith("turns/morning.wav")
    assert [e["on"] for e in speech["expectations"]] == ["assistant", "user"]
    assert len(text["expectations"]) == 2
    for turn in (speech, text):
        assert_latencies_positive(turn)


@pytest.mark.slow
def test_realtime_vad_turn_with_echo_responder(
    sandbox: Path, speech_wav: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """At real-time pace the WAV takes its own length to stream; server VAD ends the turn."""
    report_path = sandbox / "report.json"
    code, out, err = smoke(
        capsys,
        "--no-history",
        "--responder",
        "echo",
        "--silence-duration-ms",
        "300",
        "--wav",
        str(speech_wav),
        "--expect",
        "echo of",
        "--json",
        str(report_path),
    )
    assert code == 0, out + err
    report = validated(report_path)
    (turn,) = report["turns"]
    assert_latencies_positive(turn)
    assert report["target"]["pace"] == "realtime"
    # The echo comes back at real time: about as long to arrive as it lasts.
    assert 0.7 < turn["audio"]["realtime_factor"] < 1.5
    # First sample played = first delta + the 60 ms prebuffer, within a few blocks.
    played_after = turn["latency_ms"]["first_played"] - turn["latency_ms"]["first_audio"]
    assert 0 < played_after < 200
    # The session took at least the speech itself plus the echo of it.
    assert report["duration_s"] > 2 * wav_ms(speech_wav) / 1000


def test_history_records_the_run(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = sandbox / "history.sqlite3"
    code, _, _ = smoke(capsys, "--history-path", str(db), "--pace", "fast", "--text", "Remember me")
    assert code == 0
    with HistoryStore.open(db, create=False) as store:
        (conversation,) = store.conversations()
        messages = store.messages(conversation.id)
    assert conversation.end_reason == "smoke run finished"
    assert [(m.role, m.text) for m in messages] == [
        ("user", "Remember me"),
        ("assistant", "You said: Remember me"),
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ((), "voicecli: give at least one turn: --wav FILE, --text TEXT or --script FILE\n"),
        (
            ("--text", "a", "--expect", "x", "--expect", "y"),
            "voicecli: 2 --expect given for 1 turn(s): the i-th --expect applies to the i-th "
            "turn\n",
        ),
        (
            ("--text", "a", "--expect", "user:("),
            "voicecli: --expect #1: '(' is not a valid regular expression (missing ), "
            "unterminated subpattern at position 0)\n",
        ),
        (("--wav", "missing.wav"), "voicecli: input WAV 'missing.wav' does not exist\n"),
        (
            ("--script", "nope.jsonl"),
            "voicecli: script nope.jsonl does not exist\n",
        ),
        (
            ("--text", "a", "--responder", "scripted"),
            "voicecli: the scripted local server needs its reply script: set [local_server] "
            "script in the config or VOICECLI_LOCAL_SERVER_SCRIPT\n",
        ),
        (
            ("--text", "a", "--server", "openai"),
            "voicecli: server = openai needs an API key: set OPENAI_API_KEY in the environment "
            "or in .env, or use --server local\n",
        ),
    ],
)
def test_usage_errors_exit_2_with_one_line(
    sandbox: Path,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    message: str,
) -> None:
    code, out, err = smoke(capsys, "--no-history", *argv)
    assert (code, out, err) == (2, "", message)


def test_bad_timeout_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["smoke", "--text", "a", "--timeout", "0"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == (
        "voicecli: argument --timeout: 0 s: the timeout must be between 0 and 3600 s "
        "(see 'voicecli smoke --help')\n"
    )


def test_short_wav_is_refused(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = sandbox / "click.wav"
    with wave.open(str(short), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(24000)
        out.writeframes(bytes(48 * 50))
    code, _, err = smoke(capsys, "--no-history", "--wav", str(short))
    assert code == 2
    assert err == (f"voicecli: --wav: {short} holds 50 ms of audio; a turn needs at least 100 ms\n")


def test_unwritable_outputs_are_refused_before_connecting(
    sandbox: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = sandbox / "no-such-folder" / "report.json"
    code, out, err = smoke(capsys, "--no-history", "--text", "hi", "--json", str(report))
    assert (code, out) == (2, "")
    assert err == (
        f"voicecli: cannot write the JSON report {report}: the folder {report.parent} does not "
        "exist\n"
    )
    (sandbox / "taken").write_text("")
    code, out, err = smoke(capsys, "--no-history", "--text", "hi", "--out", "taken")
    assert (code, out, err) == (2, "", "voicecli: --out taken: that is a file, not a folder\n")


async def test_connection_lost_mid_turn_is_exit_2_with_the_turn_marked(tmp_path: Path) -> None:
    from voicecli.config import load_config
    from voicecli.connect import Target
    from voicecli.server import Faults
    from voicecli.session import ConnectionSettings
    from voicecli.smoke.report import TurnResult
    from voicecli.smoke.runner import run_smoke
    from voicecli.smoke.script import TurnSpec

    config = load_config({}, env={"HOME": str(tmp_path)}, dotenv_path=None)
    results = [TurnResult(1, TurnSpec("text", "hi")), TurnResult(2, TurnSpec("text", "again"))]
    # Dropped (no close frame) in the middle of the first reply.
    options = ServerOptions(pace=0, faults=Faults(close_after_events=12))
    async with LocalServer(options) as server:
        target = Target("url", server.url, ConnectionSettings(url=server.url))
        report = await run_smoke(
            config, target, results, {}, realtime=False, timeout_s=5, out_dir=None
        )
    assert report.exit_code == 2
    assert report.error == (
        "the server closed the connection (code 1006, connection dropped without a close frame)"
    )
    assert [turn.status for turn in report.turns] == ["error", "not_run"]
    assert report.turns[0].note == f"the session failed: {report.error}"
    jsonschema.Draft202012Validator(SCHEMA).validate(report.as_json())


async def test_connection_lost_while_streaming_a_wav_does_not_hang(
    tmp_path: Path, speech_wav: Path
) -> None:
    import asyncio

    from voicecli.audio.wav import read_wav
    from voicecli.config import load_config
    from voicecli.connect import Target
    from voicecli.server import Faults
    from voicecli.session import ConnectionSettings
    from voicecli.smoke.report import TurnResult
    from voicecli.smoke.runner import run_smoke
    from voicecli.smoke.script import TurnSpec

    config = load_config({}, env={"HOME": str(tmp_path)}, dotenv_path=None)
    results = [TurnResult(1, TurnSpec("wav", str(speech_wav)))]
    # session.created, session.updated, speech_started: then the TCP connection drops while
    # the WAV is still streaming at real-time pace.
    options = ServerOptions(faults=Faults(close_after_events=3))
    async with LocalServer(options) as server:
        target = Target("url", server.url, ConnectionSettings(url=server.url))
        report = await asyncio.wait_for(
            run_smoke(
                config,
                target,
                results,
                {0: read_wav(speech_wav)},
                realtime=True,
                timeout_s=5,
                out_dir=None,
            ),
            timeout=10,
        )
    assert report.exit_code == 2 and "1006" in (report.error or "")
    assert report.turns[0].status == "error"
    assert report.duration_s < 1.5  # it did not wait for the rest of the 2 s WAV


def test_smoke_audio_takes_talks_two_block_lengths() -> None:
    from voicecli.config import load_config
    from voicecli.smoke.audio import SmokeAudio

    audio = load_config({}, {}, dotenv_path=None).audio
    smoke = SmokeAudio(block_ms=audio.block_ms, output_block_ms=audio.output_block_ms)
    assert smoke.block_samples == 24 * audio.block_ms  # the mic's
    assert smoke.speaker.block_ms == audio.output_block_ms == 20  # the speaker's
