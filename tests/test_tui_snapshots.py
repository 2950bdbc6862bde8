"""SVG snapshots of the talk screen after one typed turn, and of the help screen.

The app runs for real (its own event loop, with the embedded local server started by the app,
as `voicecli talk` does) and what varies between runs is frozen: the engine's clock (so every
latency reads 0 ms), the wall clock of the time left (30:00), the server's ids (a seed), and
the audio (the null backend with no mic, playing instantly: both meters rest at -∞).

Update after an intended change with `pytest tests/test_tui_snapshots.py --snapshot-update`
and look at the SVGs under tests/__snapshots__/.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from voicecli.audio import NullBackend
from voicecli.commands.talk import LOCAL_DEMO_NOTICE
from voicecli.config import DEFAULT_PRICES
from voicecli.engine import TalkSettings
from voicecli.server import LocalServer, ServerOptions
from voicecli.session import ConnectionSettings
from voicecli.tui.app import TalkApp
from voicecli.tui.help import HelpScreen
from voicecli.tui.setup import TalkSetup
from voicecli.turns import State


SIZE = (100, 30)


def frozen_app() -> TalkApp:
    def time_left_clock() -> float:
        engine = app.engine
        expires = engine.snapshot().expires_at if engine is not None else None
        return (expires or 0) - 1800.0

    setup = TalkSetup(
        settings=TalkSettings(prices=DEFAULT_PRICES["gpt-realtime"]),
        server_label="local demo server",
        local_server=LocalServer(ServerOptions(responder="echo", pace=0, seed=7)),
        connection=ConnectionSettings(url="ws://127.0.0.1:9/"),
        make_audio=lambda: NullBackend(mic="none", realtime=False),
        notices=(LOCAL_DEMO_NOTICE,),
        wall_clock=time_left_clock,
        engine_clock=lambda: 1000.0,
    )
    app = TalkApp(setup)
    return app


async def wait_for(pilot: Pilot[Any], predicate: Callable[[], Any], timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"timed out waiting for {predicate}")


async def after_one_typed_turn(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, TalkApp)
    await wait_for(pilot, lambda: app.engine is not None and app.engine.policy.connected)
    await pilot.press("enter", *"What is the capital of France?", "enter")
    await wait_for(pilot, lambda: app.engine.metrics.turns)
    await wait_for(
        pilot,
        lambda: (
            app.engine.snapshot().state is State.LISTENING
            and app.engine.snapshot().out_level == 0
            and not any(line.pending or line.streaming for line in app.engine.transcript())
        ),
    )
    await pilot.press("escape")
    app.refresh_view()
    await pilot.pause(0.1)


async def help_open(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, TalkApp)
    await wait_for(pilot, lambda: app.engine is not None and app.engine.policy.connected)
    app.refresh_view()
    await pilot.press("question_mark")
    await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
    await pilot.pause(0.1)


def test_main_screen_after_a_typed_turn(snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=after_one_typed_turn)


def test_help_screen(snap_compare: Callable[..., bool]) -> None:
    assert snap_compare(frozen_app(), terminal_size=SIZE, run_before=help_open)
