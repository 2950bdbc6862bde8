"""Drives a `TalkEngine` through the turns of a smoke run and collects what came back.

One session for all turns (later turns see the earlier ones as context). For each turn:

1. start collecting the assistant audio the engine plays;
2. send the input: a WAV through the mic (`SmokeAudio.feed`), pressing and releasing
   push-to-talk around it in ptt mode, with extra trailing silence at fast pace in VAD modes
   (at real-time pace the mic streams silence between turns anyway); or a text message;
3. wait, up to the timeout, until a reply has finished and nothing else is under way (no
   response active or awaited, the user not speaking). Replies cut off by the turn's own
   speech (VAD heard a pause inside the WAV and answered early) count as interrupted
   responses; the turn's reply is its last one that was not cancelled;
4. let playback drain (so the next turn does not barge in on it, and the time the first sample
   was played is known), wait briefly for the user's transcript, then record transcripts,
   metrics and the turn's WAV, and check the expectations.

A turn that times out ends the run: the turns after it are `not_run` (the session's state is
unknown by then). A connection failure ends the run with the engine's `ConnectError`, kept in
`SmokeRun.error` with the turns done so far.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from voicecli.audio.wav import WavWriter
from voicecli.engine import NoticeAdded, TalkEngine, Update
from voicecli.errors import ConnectError, VoiceCliError
from voicecli.metrics import TurnMetrics
from voicecli.smoke.audio import SmokeAudio
from voicecli.smoke.report import COMPLETED, ERROR, TIMEOUT, Report, TurnResult
from voicecli.smoke.report import Target as ReportTarget
from voicecli.smoke.script import TurnSpec
from voicecli.turns import Mode


if TYPE_CHECKING:
    from voicecli.config import Config
    from voicecli.connect import Target
    from voicecli.history.store import HistoryStore


__all__ = ["SEMANTIC_TAIL_MS", "SmokeRun", "reply_metrics", "run_smoke"]

SEMANTIC_TAIL_MS = 5000
"""Trailing silence at fast pace with semantic VAD, which may wait up to 4 s (eagerness auto)."""

_POLL_S = 0.01
_FIRST_PLAY_WAIT_S = 1.0
_TRANSCRIPT_WAIT_S = 3.0
_SESSION_UPDATE_WAIT_S = 2.0


class _TimedOut(Exception):
    pass


class SmokeRun:
    """Runs `turns` on `engine` (not yet running) with `audio` as its backend.

    Args:
        inputs: the WAV samples (24 kHz int16) per turn index (0-based) of the WAV turns.
        timeout_s: how long each turn may wait for its reply after its input was sent.
        out_dir: where `turn-NN.wav` files go (None: not written).
        trailing_silence_ms: silence fed after a WAV at fast pace in VAD modes.
        connect_timeout_s: how long to wait for the session (the opener has its own timeout).
    """

    def __init__(
        self,
        engine: TalkEngine,
        audio: SmokeAudio,
        results: list[TurnResult],
        inputs: dict[int, np.ndarray],
        *,
        timeout_s: float,
        out_dir: Path | None = None,
        trailing_silence_ms: int = 1500,
        connect_timeout_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.audio = audio
        self.results = results
        self.inputs = inputs
        self.timeout_s = timeout_s
        self.out_dir = out_dir
        self.trailing_silence_ms = trailing_silence_ms
        self.connect_timeout_s = connect_timeout_s
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self.error: VoiceCliError | None = None
        self.server_errors: list[str] = []
        """Error notices the engine published (server errors, failed responses), in order."""
        engine.subscribe(self._on_update)

    def _on_update(self, update: Update) -> None:
        if isinstance(update, NoticeAdded) and update.level == "error":
            self.server_errors.append(update.text)

    async def run(self) -> list[TurnResult]:
        """Every turn in order; a connection failure is kept in `self.error`."""
        engine = self.engine
        self._task = asyncio.create_task(engine.run(), name="smoke-engine")
        try:
            await self._until(lambda: engine.policy.connected, self.connect_timeout_s)
            await self._session_configured()
            for result in self.results:
                try:
                    await self._turn(result)
                except _TimedOut:
                    break
                except VoiceCliError as exc:
                    result.status, result.note = ERROR, f"the session failed: {exc}"
                    raise
        except VoiceCliError as exc:
            self.error = exc
        finally:
            engine.stop()
            try:
                await self._task
            except VoiceCliError as exc:
                self.error = self.error or exc
        return self.results

    # --- one turn ----------------------------------------------------------------------------

    async def _turn(self, result: TurnResult) -> None:
        engine, audio, spec = self.engine, self.audio, result.spec
        finished_before = len(engine.metrics.turns)
        errors_before = len(self.server_errors)
        items_before = set(engine.conversation.ids)
        started_wall = time.time()
        audio.begin_turn()
        try:
            if spec.kind == "wav":
                await self._speak(self.inputs[result.index - 1])
            else:
                engine.send_text(spec.value)
            try:
                await self._until(lambda: self._reply_done(finished_before), self.timeout_s)
            except _TimedOut:
                result.status = TIMEOUT
                result.note = self._why_no_reply(spec, started_wall)
                errors = self.server_errors[errors_before:]
                if errors:
                    result.note += f"; last error: {errors[-1]}"
                raise
            replies = engine.metrics.turns[finished_before:]
            result.metrics = reply_metrics(replies)
            result.responses = len(replies)
            result.status = (result.metrics.status if result.metrics else None) or COMPLETED
            if result.status != COMPLETED:
                result.note = f"the reply ended with status {result.status}"
            await self._settle(result, items_before)
        finally:
            self._save_audio(result, audio.end_turn())
        self._collect(result, items_before)
        result.check_expectations()

    async def _speak(self, samples: np.ndarray) -> None:
        engine = self.engine
        mode = engine.policy.mode
        if mode is Mode.PTT:
            engine.ptt_press()
            await self.audio.feed(samples)
            engine.ptt_release()
            return
        if not self.audio.realtime:
            tail = np.zeros(24 * self.trailing_silence_ms, np.int16)
            samples = np.concatenate([samples, tail])
        await self.audio.feed(samples)

    def _reply_done(self, finished_before: int) -> bool:
        policy = self.engine.policy
        return (
            len(self.engine.metrics.turns) > finished_before
            and not policy.response_active
            and not policy.awaiting_response
            and not policy.user_speaking
        )

    async def _settle(self, result: TurnResult, items_before: set[str]) -> None:
        """Playback drained, first-played time known, user transcript arrived (each bounded)."""
        metrics = result.metrics
        await self.audio.drain(timeout=self.timeout_s)
        if metrics is not None and metrics.audio_ms:
            await self._maybe(lambda: metrics.first_played_at is not None, _FIRST_PLAY_WAIT_S)
        if result.spec.kind == "wav" and self.engine.settings.transcription_model:
            wants_user = any(e.on == "user" for e in result.spec.expectations)
            wait = self.timeout_s if wants_user else _TRANSCRIPT_WAIT_S
            await self._maybe(lambda: self._user_transcribed(items_before), wait)

    def _user_transcribed(self, items_before: set[str]) -> bool:
        users = self._new_items(items_before, "user")
        return bool(users) and all(
            part.done for item in users for part in item.parts if part.type == "input_audio"
        )

    def _collect(self, result: TurnResult, items_before: set[str]) -> None:
        users = self._new_items(items_before, "user")
        if users:
            texts = [item.text for item in users]
            if any(texts) or self.engine.settings.transcription_model:
                result.user_transcript = " ".join(text for text in texts if text)
        metrics = result.metrics
        if metrics is not None:
            replies = [
                item
                for item in self.engine.conversation.items
                if item.response_id == metrics.response_id and item.role == "assistant"
            ]
            result.assistant_transcript = " ".join(item.text for item in replies if item.text)

    def _new_items(self, items_before: set[str], role: str) -> list[Any]:
        return [
            item
            for item in self.engine.conversation.items
            if item.id not in items_before and item.role == role
        ]

    def _save_audio(self, result: TurnResult, pcm: bytes) -> None:
        if self.out_dir is None or not pcm:
            return
        path = self.out_dir / f"turn-{result.index:02d}.wav"
        writer = WavWriter(path)
        writer.write(np.frombuffer(pcm, "<i2"))
        writer.close()
        result.audio_file = str(path)

    def _why_no_reply(self, spec: TurnSpec, since_wall: float) -> str:
        """One line on where the turn got stuck, from the events received since it began."""
        seen = {
            entry.type
            for entry in self.engine.log
            if entry.direction == "received" and entry.at >= since_wall
        }
        wait = f"{self.timeout_s:g} s"
        if spec.kind == "wav" and self.engine.policy.mode is not Mode.PTT:
            if "input_audio_buffer.speech_started" not in seen:
                return f"no reply within {wait}: the server's VAD detected no speech in the WAV"
            if "input_audio_buffer.speech_stopped" not in seen:
                return f"no reply within {wait}: the server's VAD never heard the speech end"
        if "response.created" not in seen:
            return f"no reply within {wait}: the server did not start a response"
        return f"the reply did not finish within {wait}"

    # --- waiting -----------------------------------------------------------------------------

    async def _session_configured(self) -> None:
        """Give the server a moment to apply our session.update before the first turn."""

        def updated() -> bool:
            return any(
                e.direction == "received" and e.type == "session.updated" for e in self.engine.log
            )

        await self._maybe(updated, _SESSION_UPDATE_WAIT_S)

    async def _until(self, condition: Callable[[], object], timeout_s: float) -> None:
        """Poll `condition`; raises _TimedOut, or what ended the engine."""
        deadline = self._clock() + timeout_s
        while not condition():
            task = self._task
            if task is not None and task.done():
                task.result()  # raises the ConnectError that ended it
                raise ConnectError("the server ended the session before the run was over")
            if self._clock() >= deadline:
                raise _TimedOut
            await asyncio.sleep(_POLL_S)

    async def _maybe(self, condition: Callable[[], object], timeout_s: float) -> None:
        try:
            await self._until(condition, timeout_s)
        except _TimedOut:
            pass


def reply_metrics(turns: list[TurnMetrics]) -> TurnMetrics | None:
    """The reply of a turn: its last response that was not cancelled (else the last one)."""
    kept = [turn for turn in turns if turn.status != "cancelled"] or turns
    return kept[-1] if kept else None


async def run_smoke(
    config: Config,
    target: Target,
    results: list[TurnResult],
    inputs: dict[int, np.ndarray],
    *,
    realtime: bool,
    timeout_s: float,
    out_dir: Path | None,
    history: HistoryStore | None = None,
) -> Report:
    """Connect to `target`, run every turn, and build the report (the error, if any, kept)."""
    from voicecli.echo import EchoMode, EchoSettings
    from voicecli.engine import TalkSettings, opener_for

    # No acoustic path from the file speaker to the WAV mic: nothing for an echo guard to do.
    # No reconnects either: a dropped session is a failure the run must report, not hide.
    settings = dataclasses.replace(
        TalkSettings.from_config(config), echo=EchoSettings(mode=EchoMode.OFF), reconnect=None
    )
    session = config.session
    trailing_ms = (
        SEMANTIC_TAIL_MS if session.mode == "semantic" else session.silence_duration_ms + 1000
    )
    report = Report(
        target=ReportTarget(
            server=target.kind,
            url=target.connection.display_url if target.kind != "local" else "",
            model=config.connection.model,
            dialect=config.connection.dialect,
            voice=session.voice,
            mode=session.mode,
            pace="realtime" if realtime else "fast",
        ),
        turns=results,
        started_at=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        out_dir=str(out_dir) if out_dir is not None else None,
    )
    started = time.monotonic()
    session_wav = out_dir / "session.wav" if out_dir is not None else None
    try:
        async with target.running() as connection:
            if target.kind == "local":
                report.target = dataclasses.replace(report.target, url=connection.display_url)
            audio = SmokeAudio(
                realtime=realtime,
                session_wav=session_wav,
                block_ms=config.audio.block_ms,
                output_block_ms=config.audio.output_block_ms,
                prebuffer_ms=config.audio.prebuffer_ms,
                max_stretch_ms=config.audio.max_stretch_ms,
            )
            engine = TalkEngine(settings, opener_for(connection), audio)
            recorder = None
            if history is not None:
                from voicecli.history.recorder import attach

                recorder = attach(
                    engine,
                    history,
                    model=config.connection.model,
                    dialect=config.connection.dialect,
                    server_url="local demo server"
                    if target.kind == "local"
                    else connection.display_url,
                )
                recorder.end_reason = "smoke run finished"
            run = SmokeRun(
                engine,
                audio,
                results,
                inputs,
                timeout_s=timeout_s,
                out_dir=out_dir,
                trailing_silence_ms=trailing_ms,
                connect_timeout_s=connection.open_timeout * 2 + 5,
            )
            await run.run()
            snapshot = engine.snapshot()
            report.session_id, report.server_model = snapshot.session_id, snapshot.model
            if run.error is not None:
                report.error = str(run.error)
                report.exception = run.error
    except ConnectError as exc:  # the local server could not listen
        report.error = str(exc)
    report.duration_s = time.monotonic() - started
    return report
