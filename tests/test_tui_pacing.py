"""How often the talk app redraws: the CPU goal of `voicecli talk` (bench/tui_cpu.py).

- while the engine has audio, redraws ride on its tick (no timer of the app's own), still ten
  a second; when the engine ends, the app's timer takes over again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

from tests.test_tui import running, setup_for
from voicecli.audio import NullBackend
from voicecli.server import LocalServer, ServerOptions
from voicecli.tui.app import TalkApp


async def redraws_during(app: TalkApp, seconds: float) -> int:
    """Redraws in `seconds` (each stamps `_refreshed_at`; sampled every 5 ms)."""
    stamps = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        stamps.add(app._refreshed_at)
        await asyncio.sleep(0.005)
    return len(stamps) - 1  # the one shown at the start was earlier


@contextlib.asynccontextmanager
async def engine_paced_app() -> AsyncIterator[tuple[Any, TalkApp]]:
    """The talk app connected with audio, once its redraws ride on the engine's tick."""
    audio = NullBackend(mic="silence", realtime=True)
    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        async with running(setup_for(server, lambda: audio)) as screen:
            app = screen.app
            await screen.connected()
            await screen.until(lambda: app._engine_paced)
            yield screen, app


async def test_redraws_ride_on_the_engine_tick_while_it_has_audio() -> None:
    async with engine_paced_app() as (screen, app):
        timer = app._refresh_timer
        assert not timer._active.is_set()  # the app's own timer is paused
        assert 6 <= await redraws_during(app, 1.0) <= 11

        app.engine.stop()  # the engine ends: the timer redraws again
        await screen.until(lambda: timer._active.is_set())
        assert not app._engine_paced
        assert 6 <= await redraws_during(app, 1.0) <= 11


async def test_the_timer_takes_over_when_the_engine_stops_ticking_without_ending() -> None:
    async with engine_paced_app() as (screen, app):
        # The engine's updates stop reaching the app (as if its tick had hung).
        app.engine._subscribers.remove(app._on_update)
        await screen.until(lambda: not app._engine_paced, timeout=2)
        assert app._refresh_timer._active.is_set()
        assert 6 <= await redraws_during(app, 1.0) <= 11
