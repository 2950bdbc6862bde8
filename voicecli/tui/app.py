"""`TalkApp`: the Textual screen of `voicecli talk` around a `TalkEngine`.

The app is given a `TalkSetup` (settings, where to connect, how to make the audio backend) and
owns no session logic: one long-lived worker runs the engine (and, for the local demo, the
embedded server on the same event loop); user actions are plain engine method calls; the
engine's updates mark parts of the screen dirty, and ten times a second what changed is redrawn
from `engine.snapshot()` and `engine.transcript()`, right after an engine tick while the engine
has audio (no wake-up of its own), from a timer otherwise. Levels and deltas therefore cost at
most 10 redraws a second however fast they come, and nothing at all when the screen would not
change.
How the widgets keep those redraws cheap is in `voicecli.tui.widgets`.

Connection failures: the engine reconnects by itself when its settings ask for it (the status
line then says `reconnecting (attempt n of m ...)` and a notification says why). A failure the
session never got past (bad URL, refused key, an audio device that will not open) ends the
app at once; the command prints the one line with its exit code (`fatal_error`). A failure
after the session was open leaves the conversation on screen with the reason (`lost`), and
quitting then reports it the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import traceback
from pathlib import Path

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input
from textual.worker import Worker, WorkerState

from voicecli.engine import (
    ConnectionChanged,
    Ended,
    EngineSnapshot,
    LevelsChanged,
    Logged,
    NoticeAdded,
    TalkEngine,
    TranscriptChanged,
    TurnFinished,
    Update,
)
from voicecli.errors import ConnectError, UsageError, VoiceCliError
from voicecli.tui.eventlog import InspectorModel
from voicecli.tui.help import HelpScreen
from voicecli.tui.keys import KEYS
from voicecli.tui.messages import EngineNotice, SessionStatus
from voicecli.tui.render import (
    meter,
    meter_cells,
    state_text,
    status_text,
    time_left,
    turn_text,
)
from voicecli.tui.setup import TalkSetup
from voicecli.tui.widgets import (
    Column,
    Inspector,
    Live,
    MainScreen,
    Meters,
    PttButton,
    Row,
    TranscriptPane,
)
from voicecli.turns import Mode


__all__ = ["TalkApp"]

REFRESH_HZ = 10
_REFRESH_SLACK_S = 0.02
"""A tick this much early still redraws: the engine's 50 ms ticks jitter around the 100 ms
slot, and a redraw skipped by a hair would wait a whole tick more."""
_WATCHDOG_S = 0.5
"""While redraws ride on the engine's tick, a redraw older than this hands them back to the
app's timer."""
_MODES = (Mode.VAD, Mode.SEMANTIC, Mode.PTT)
_SEVERITY = {"info": "information", "warning": "warning", "error": "error"}
_NOTHING = object()


class InternalError(VoiceCliError):
    """A bug: reported as one line, the traceback goes to the crash log."""

    exit_code = 1


class TalkApp(App[int]):
    CSS_PATH = "voicecli.tcss"
    TITLE = "voicecli talk"
    ENABLE_COMMAND_PALETTE = False
    BINDINGS = [
        Binding(
            key.keys,
            key.action,
            key.footer or key.description,
            show=bool(key.footer),
            priority=key.priority,
        )
        for key in KEYS
        if key.action != "send"  # Enter in the text box is the Input's own submit
    ]

    def __init__(self, setup: TalkSetup, *, crash_log: Path | None = None) -> None:
        super().__init__()
        self.setup = setup
        self.crash_log = crash_log
        """When set (the real command), a bug ends the app with one line instead of a
        traceback on the screen; the traceback is written here."""
        self.engine: TalkEngine | None = None
        self.inspector_model = InspectorModel()
        self.fatal_error: VoiceCliError | None = None
        self.lost: ConnectError | None = None
        """The connection failed after the session had been open (the app stays readable)."""
        self._was_connected = False
        self._connection_note: str | None = None
        self._connection_detail: str | None = None
        self._dirty_transcript = True
        self._quitting = False
        self._session_worker: Worker[None] | None = None
        self._ptt_hint_at = -1e9
        self._shown_looks: tuple[object, ...] = (_NOTHING,) * 4  # nothing shown yet
        self._refreshed_at = -1e9
        self._engine_paced = False
        """The engine's tick drives the redraws (the app's own timer is paused)."""
        self._refresh_due = False

    # --- layout --------------------------------------------------------------------------

    def get_default_screen(self) -> Screen[None]:
        return MainScreen(id="_default")

    def compose(self) -> ComposeResult:
        # Every widget sits in a box of its own (see widgets.Row), and the screen holds two
        # columns only: the head (status, state, meters) and the body under it. A repaint
        # of a meter then renders that meter and empty boxes, not the footer or the state.
        with Column(id="head"):
            with Row(id="status-row"):
                yield Live(id="status")
            with Row(id="indicators"):
                with Row(id="state-box"):
                    yield Live(id="state")
                yield Meters(id="meters")
        with Column(id="body"):
            with Row(id="main"):
                with Row(id="conversation-box"):
                    yield TranscriptPane(id="conversation")
                yield Inspector(id="inspector")
            with Row(id="turn-row"):
                yield Live(id="turn")
            with Row(id="compose"):
                yield Input(
                    placeholder="Type a message and press Enter  (Enter or Tab: here · Esc: back)",
                    id="message",
                )
                yield PttButton("Hold to talk", id="ptt")
            yield Footer()

    def on_mount(self) -> None:
        self._status = self.query_one("#status", Live)
        self._state = self.query_one("#state", Live)
        self._meters = self.query_one(Meters)
        self._turn = self.query_one("#turn", Live)
        self._ptt = self.query_one("#ptt", PttButton)
        self._conversation = self.query_one(TranscriptPane)
        self._inspector = self.query_one(Inspector)
        self._inspector.display = False
        self._ptt.display = False
        self._status.show(Text(f"● connecting │ {self.setup.server_label}", "yellow"))
        self._state.show(Text("◌ connecting…", "yellow"))
        if self.setup.settings.text_only:
            self.query_one("#message", Input).focus()  # typing is all there is to do
        else:
            self._conversation.focus()  # space and the letter keys work from the start
        # Redraws follow the engine's tick while it has audio (it wakes 10-20 times a second
        # anyway: see `_on_engine_tick`); this timer covers the rest (connecting, text only,
        # after the session ended). A Textual timer is a wake-up of its own and a task step.
        self._refresh_timer = self.set_interval(1 / REFRESH_HZ, self.refresh_view)
        # Should the engine stop ticking without ending (a bug, a stall), the timer takes
        # over again: a screen that stops updating would look like a hang.
        self.set_interval(_WATCHDOG_S, self._check_engine_pace)
        self._session_worker = self.run_worker(
            self._run_session(), name="session", group="session", exit_on_error=False
        )

    # --- the session ---------------------------------------------------------------------

    async def _run_session(self) -> None:
        server = self.setup.local_server
        if server is not None:
            try:
                await server.start()
            except OSError as exc:
                raise UsageError(
                    f"cannot start the local demo server: {exc.strerror or exc}"
                ) from None
        try:
            await self._run_engine(server.url if server is not None else None)
        finally:
            if server is not None:
                await server.stop()

    async def _run_engine(self, local_url: str | None) -> None:
        engine = self.setup.new_engine(local_url)
        for notice in self.setup.notices:
            engine.notice(notice)
        engine.subscribe(self._on_update)
        if self.setup.on_engine is not None:
            self.setup.on_engine(engine)
        self.engine = engine
        try:
            await engine.run()
        except ConnectError as exc:
            if self._quitting:
                return
            if not self._was_connected:
                raise  # nothing to look at: the app ends with the error's one line
            # The conversation stays readable; quitting then reports the error and its code.
            self.lost = exc
            engine.notice(f"Connection lost: {exc}. Press q to quit.", "error")
            return
        if not self._quitting:
            self._connection_note = "closed by the server"
            engine.notice("The server closed the session. Press q to quit.", "warning")

    def _on_update(self, update: Update) -> None:
        """Engine subscriber: runs inside the engine's work, so it only takes notes."""
        if isinstance(update, LevelsChanged):
            self._on_engine_tick()
        elif isinstance(update, Logged):
            self.inspector_model.add(update.entry)
        elif isinstance(update, (TranscriptChanged, TurnFinished)):
            self._dirty_transcript = True
        elif isinstance(update, NoticeAdded):
            self._dirty_transcript = True
            self.post_message(EngineNotice(update.text, update.level, update.code))
        elif isinstance(update, ConnectionChanged):
            if update.status == "connected":
                self._was_connected = True
            self._connection_detail = update.detail
            if update.status in ("reconnecting", "renewing") and update.detail:
                # A notification stays up for seconds; the status line may show a quick
                # reconnect for a single frame only.
                text = f"{update.status.capitalize()}: {update.detail}"
                self.post_message(EngineNotice(text, "warning"))
            self.post_message(SessionStatus(update.status, update.detail))
        elif isinstance(update, Ended) and self._engine_paced:
            self._engine_paced = False
            self._refresh_timer.resume()

    def _on_engine_tick(self) -> None:
        """The engine ticked (levels are published on every tick while there is audio): the
        redraw rides on that wake-up instead of a timer of its own, at most REFRESH_HZ times a
        second. It runs right after the tick (`call_soon`: the same wake-up), so it shows the
        state the tick left."""
        if not self._engine_paced:
            self._engine_paced = True
            self._refresh_timer.pause()
        if self._refresh_due:
            return
        if time.monotonic() - self._refreshed_at >= 1 / REFRESH_HZ - _REFRESH_SLACK_S:
            self._refresh_due = True
            asyncio.get_running_loop().call_soon(self._paced_refresh)

    def _check_engine_pace(self) -> None:
        if self._engine_paced and time.monotonic() - self._refreshed_at > _WATCHDOG_S:
            self._engine_paced = False
            self._refresh_timer.resume()

    def _paced_refresh(self) -> None:
        self._refresh_due = False
        try:
            self.refresh_view()
        except Exception as error:  # as from a timer: Textual's handling (crash log, exit)
            self._handle_exception(error)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker is not self._session_worker or event.state is not WorkerState.ERROR:
            return
        error = event.worker.error
        if isinstance(error, VoiceCliError):
            self.fatal_error = error
        else:
            self.fatal_error = self._internal_error(error)
        self.exit(return_code=self.fatal_error.exit_code)

    def _internal_error(self, error: BaseException | None) -> InternalError:
        where = ""
        if self.crash_log is not None and error is not None:
            with contextlib.suppress(OSError):
                self.crash_log.parent.mkdir(parents=True, exist_ok=True)
                self.crash_log.write_text("".join(traceback.format_exception(error)))
                where = f" (details in {self.crash_log})"
        return InternalError(f"internal error: {error!r}{where}")

    def _handle_exception(self, error: Exception) -> None:
        # Textual's default prints a full traceback over the terminal. For the real command a
        # bug ends with one line on stderr instead (tests keep the default, which re-raises).
        if self.crash_log is None:
            super()._handle_exception(error)
            return
        if self.fatal_error is None:
            self.fatal_error = self._internal_error(error)
        self.exit(return_code=self.fatal_error.exit_code)

    # --- messages from the engine ----------------------------------------------------------

    def on_engine_notice(self, message: EngineNotice) -> None:
        title = f"Server error {message.code}" if message.code else None
        timeout = 8 if message.level == "error" else 4
        self.notify(
            message.text,
            title=title or "",
            severity=_SEVERITY.get(message.level, "information"),  # type: ignore[arg-type]
            timeout=timeout,
            markup=False,  # server text is not Rich markup ("[2.4 s of audio]")
        )

    def on_session_status(self, message: SessionStatus) -> None:
        self.refresh_view()

    def _connection_text(self, status: str) -> str | None:
        """The status word with what the engine said about it (attempt n of m, in 2 s)."""
        if self._connection_note:
            return self._connection_note
        if status in ("reconnecting", "renewing") and self._connection_detail:
            return f"{status} ({self._connection_detail.split(':')[0]})"
        return None

    # --- drawing -------------------------------------------------------------------------

    def refresh_view(self) -> None:
        """Redraw whatever changed (ten times a second: see `_on_engine_tick`)."""
        engine = self.engine
        if engine is None:
            return
        self._refreshed_at = time.monotonic()
        snap = engine.snapshot()
        now = self.setup.wall_clock()
        # Each indicator is rebuilt only when something it shows changed: while audio flows
        # that is the meters (when a level crosses a cell), while idle the clock once a minute.
        status, state, meters, turn = self._looks(snap, now)
        shown = self._shown_looks
        if status != shown[0]:
            self._status.show(
                status_text(
                    snap,
                    server=self.setup.server_label,
                    now=now,
                    connection=self._connection_text(snap.connection),
                )
            )
        if state != shown[1]:
            self._state.show(state_text(snap, ptt_style=self.setup.ptt_style))
            wanted = snap.mode is Mode.PTT and not snap.text_only
            if self._ptt.display != wanted:
                self._ptt.display = wanted
        if meters != shown[2]:
            self._meters.show(*self._meter_texts(snap))
        if turn != shown[3]:
            self._turn.show(turn_text(snap.last_turn))
        self._shown_looks = (status, state, meters, turn)
        if self._dirty_transcript:
            self._dirty_transcript = False
            self._conversation.sync(engine.transcript())
        if self._inspector.display:
            self._inspector.show(self.inspector_model)

    def _looks(self, snap: EngineSnapshot, now: float) -> tuple[tuple[object, ...], ...]:
        """What each indicator (status, state, meters, turn line) shows, cheap to compare
        (levels as meter cells, the time left as shown)."""
        last = snap.last_turn
        return (
            (
                snap.connection,
                self._connection_note,
                self._connection_detail,
                snap.dialect,
                snap.model,
                snap.voice,
                time_left(snap.expires_at, now),
                snap.mode,
                snap.eagerness,
                snap.text_only,
                snap.echo_mode,
            ),
            (
                snap.connection,
                snap.state,
                snap.recording,
                snap.hold_source,
                snap.mode,
                snap.text_only,
                snap.audio_lost,
                snap.echo_closed,
            ),
            (
                snap.text_only,
                snap.audio_lost,
                snap.muted,
                snap.echo_closed,
                meter_cells(snap.mic_level),
                meter_cells(snap.out_level),
            ),
            (
                None
                if last is None
                else (last.index, last.status, last.ttfa_ms, last.interrupted, last.cost_usd)
            ),
        )

    @staticmethod
    def _meter_texts(snap: EngineSnapshot) -> tuple[Text, Text]:
        """The mic meter's line and the output meter's."""
        if snap.text_only:
            return Text("no audio (text only)", "dim"), Text()
        if snap.audio_lost:
            return Text("audio device lost", "bold red"), Text()
        mic_note = "muted" if snap.muted else ("gated" if snap.echo_closed else "")
        return (
            meter("mic", 0.0 if snap.muted else snap.mic_level, note=mic_note),
            meter("out", snap.out_level),
        )

    # --- user actions --------------------------------------------------------------------

    def _audio_engine(self, what: str) -> TalkEngine | None:
        """The engine, if it has audio; else tells the user why `what` does nothing."""
        engine = self.engine
        if engine is None:
            return None
        if engine.audio is None:
            self.notify(f"Text only: no {what} without audio.", timeout=3)
            return None
        return engine

    def action_ptt(self) -> None:
        engine = self._audio_engine("push-to-talk")
        if engine is None:
            return
        if engine.policy.mode is not Mode.PTT:
            now = time.monotonic()
            if now - self._ptt_hint_at > 3:  # key repeat must not stack up notifications
                self._ptt_hint_at = now
                self.notify(
                    f"Space is push-to-talk, for ptt mode (now {engine.policy.mode.value}): "
                    "press v to switch modes.",
                    timeout=3,
                )
            return
        if self.setup.ptt_style == "hold":
            engine.ptt_key()
        else:
            engine.ptt_toggle()
        self.refresh_view()

    def on_ptt_button_pressed(self, message: PttButton.Pressed) -> None:
        if self.engine is not None:
            self.engine.ptt_press()
            self.refresh_view()

    def on_ptt_button_released(self, message: PttButton.Released) -> None:
        if self.engine is not None:
            self.engine.ptt_release()
            self.refresh_view()

    def action_mute(self) -> None:
        engine = self._audio_engine("microphone to mute")
        if engine is not None:
            engine.toggle_mute()
            self.refresh_view()

    def action_cycle_mode(self) -> None:
        engine = self._audio_engine("turn-taking modes")
        if engine is None:
            return
        current = engine.policy.mode
        following = _MODES[(_MODES.index(current) + 1) % len(_MODES)]
        engine.set_mode(following)
        self.notify(f"Turn-taking: {following.value}", timeout=2)
        self.refresh_view()

    def action_toggle_inspector(self) -> None:
        inspector = self.query_one(Inspector)
        inspector.display = not inspector.display
        self.refresh_view()

    def action_focus_input(self) -> None:
        self.query_one("#message", Input).focus()

    def action_leave_input(self) -> None:
        self.query_one(TranscriptPane).focus()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.setup.ptt_style))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        engine = self.engine
        if engine is None or engine.session is None or not engine.policy.connected:
            self.notify("Not connected: the message was not sent.", severity="warning")
            return
        event.input.value = ""
        engine.send_text(text)
        self._dirty_transcript = True
        self.refresh_view()

    async def action_quit(self) -> None:
        self._quitting = True
        engine, worker = self.engine, self._session_worker
        if engine is not None:
            engine.stop()
        if worker is not None and worker.is_running:
            try:
                await asyncio.wait_for(asyncio.shield(worker.wait()), 5)
            except Exception:  # a session that will not close (or failed) does not block quit
                worker.cancel()
        if self.fatal_error is None and self.lost is not None:
            self.fatal_error = self.lost  # reported on the way out: one line, its exit code
        self.exit(return_code=self.fatal_error.exit_code if self.fatal_error else 0)
