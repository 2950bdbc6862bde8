"""Reconnect and renewal in the talk engine, against the local server on loopback: renewing
at a turn boundary before the time limit, a renewal that cannot open, fatal failures that stop
at once, giving up after the attempts, and stopping while reconnecting."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

import pytest

from tests.test_faults import LONG_REQUEST, SHORT_REQUEST, Talk
from voicecli.audio import NullBackend
from voicecli.engine import (
    ConnectionChanged,
    Ended,
    NoticeAdded,
    TalkEngine,
    TalkSettings,
    opener_for,
)
from voicecli.errors import AuthError, ConnectError
from voicecli.reconnect import ReconnectSettings
from voicecli.server import Faults, LocalServer, ServerOptions
from voicecli.session import ConnectionSettings
from voicecli.transcript import LineKind
from voicecli.turns import Mode


QUICK = ReconnectSettings(attempts=3, initial_delay_s=0.02, min_delay_s=0.02, max_delay_s=0.05)


def engine_notes(talk: Talk, tag: str) -> list[str]:
    return [e.note for e in talk.engine.log if e.direction == "engine" and e.type == tag]


@pytest.mark.slow
async def test_renews_before_the_time_limit_at_a_turn_boundary(tmp_path: Path) -> None:
    # 6 s sessions, renewal due 3 s in; a reply from 1.5 s to ~4.5 s straddles that moment.
    options = ServerOptions(responder="echo", pace=1, expire_after_s=6.0)
    reconnect = dataclasses.replace(QUICK, renew_margin_s=3.5)
    async with LocalServer(options) as server:
        talk = Talk(server, tmp_path, NullBackend(mic="silence"), reconnect=reconnect)
        await talk.ready()
        await asyncio.sleep(1.5)
        talk.engine.send_text(SHORT_REQUEST)
        await talk.until(lambda: talk.engine.reconnects == 1, timeout=6)
        await talk.turn("still there?")
        view = talk.server_view()
        shown = talk.shown()
        history = await talk.finish()

    log = list(talk.engine.log)
    order = [(e.direction, e.type) for e in log]
    # Not mid-reply: the renewal came after the reply was done (and heard out).
    assert order.index(("received", "response.done")) < order.index(("engine", "replay"))
    assert shown[1] == ("assistant", talk.reply_to(SHORT_REQUEST), False)
    # Before the limit: the server never had to expire the session.
    assert not [e for e in log if e.type == "error"]
    assert talk.statuses() == ["connecting", "connected", "renewing", "connected", "closed"]
    [notice] = talk.of(NoticeAdded)
    assert notice.level == "info" and notice.text.startswith("Renewed the session")
    assert not [line for line in talk.engine.transcript() if line.kind is LineKind.ERROR]
    assert view == [
        ("user", SHORT_REQUEST),
        ("assistant", talk.reply_to(SHORT_REQUEST)),
        ("user", "still there?"),
        ("assistant", "You said: still there?"),
    ]
    assert history == shown
    assert server.connections_served == 2


@pytest.mark.slow
async def test_a_renewal_that_cannot_open_keeps_the_session_and_a_refused_key_is_fatal(
    tmp_path: Path,
) -> None:
    key = "sk-test-renewal-0123456789"
    options = ServerOptions(responder="echo", pace=0, expire_after_s=4.0, auth="key", api_key=key)
    async with LocalServer(options) as server:
        talk = Talk(server, tmp_path, NullBackend(mic="silence"), reconnect=QUICK, api_key=key)
        await talk.ready()
        # The key stops working (revoked): renewal (due 2 s in) cannot open a new session.
        server.options = dataclasses.replace(server.options, api_key="sk-test-another-key")
        await talk.until(lambda: engine_notes(talk, "renew"), timeout=5)
        assert talk.statuses()[-2:] == ["renewing", "connected"]
        await talk.turn("are we still talking?")  # on the same session
        assert server.connections_served == 1
        # At the limit the session must be replaced; the refused key ends the run at once.
        with pytest.raises(AuthError) as caught:
            await asyncio.wait_for(talk.task, 5)
        talk.store.close()

    message = str(caught.value)
    assert "HTTP 401" in message and "OPENAI_API_KEY" in message and "\n" not in message
    assert talk.of(Ended) == [Ended(message)]
    assert talk.statuses()[-2:] == ["renewing", "failed"]  # no retry loop
    assert len([n for n in engine_notes(talk, "connection") if n.startswith("fatal")]) == 1


async def test_gives_up_when_every_new_session_drops_at_once(tmp_path: Path) -> None:
    options = ServerOptions(responder="echo", pace=0, faults=Faults(close_after_events=2))
    async with LocalServer(options) as server:
        talk = Talk(server, tmp_path, reconnect=QUICK)
        with pytest.raises(ConnectError) as caught:
            await asyncio.wait_for(talk.task, 10)
        talk.store.close()

    message = str(caught.value)
    assert message.endswith("(gave up after 3 reconnect attempts)") and "1006" in message
    assert not caught.value.recoverable
    assert server.connections_served == 4  # the first session and three attempts
    assert talk.statuses() == ["connecting", "connected"] + ["reconnecting", "connected"] * 3 + [
        "failed"
    ]
    assert talk.of(Ended) == [Ended(message)]


async def test_gives_up_when_the_server_is_gone(tmp_path: Path) -> None:
    options = ServerOptions(responder="echo", pace=0, faults=Faults(close_after_events=2))
    server = LocalServer(options)
    await server.start()
    talk = Talk(server, tmp_path, reconnect=QUICK)
    await talk.until(lambda: talk.statuses()[-1:] == ["reconnecting"])
    await server.stop()
    with pytest.raises(ConnectError, match=r"connection refused \(gave up after 3 reconnect"):
        await asyncio.wait_for(talk.task, 10)
    talk.store.close()
    details = [u.detail for u in talk.of(ConnectionChanged) if u.status == "reconnecting"]
    assert [d.split(":")[0] for d in details if d][-3:] == [
        "attempt 1 of 3",
        "attempt 2 of 3",
        "attempt 3 of 3",
    ]


async def test_stop_while_waiting_to_reconnect(tmp_path: Path) -> None:
    slow = dataclasses.replace(QUICK, initial_delay_s=30.0, min_delay_s=30.0, max_delay_s=30.0)
    options = ServerOptions(responder="echo", pace=0, faults=Faults(close_after_events=2))
    async with LocalServer(options) as server:
        engine = TalkEngine(
            TalkSettings(reconnect=slow, text_only=True),
            opener_for(ConnectionSettings(url=server.url)),
        )
        updates: list[object] = []
        engine.subscribe(updates.append)
        task = asyncio.create_task(engine.run())
        while not any(
            isinstance(u, ConnectionChanged) and u.status == "reconnecting" for u in updates
        ):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        started = time.monotonic()
        engine.stop()
        await asyncio.wait_for(task, 5)  # returns, no error
    assert time.monotonic() - started < 1.0
    assert updates[-1] == Ended(None)
    assert engine.snapshot().connection == "closed"


async def test_fatal_at_the_first_handshake_is_not_retried(tmp_path: Path) -> None:
    options = ServerOptions(auth="key", api_key="sk-test-right-0123456789")
    async with LocalServer(options) as server:
        talk = Talk(server, tmp_path, reconnect=QUICK, api_key="sk-test-wrong-0123456789")
        with pytest.raises(AuthError, match="HTTP 401"):
            await asyncio.wait_for(talk.task, 5)
        talk.store.close()
    assert talk.statuses() == ["connecting", "failed"]
    assert server.connections_served == 0


async def test_mode_and_mute_survive_a_reconnect(tmp_path: Path) -> None:
    options = ServerOptions(
        responder="echo", pace=0, faults=Faults(close_after_events=8, connections=1)
    )
    async with LocalServer(options) as server:
        talk = Talk(server, tmp_path, NullBackend(mic="silence"), reconnect=QUICK)
        await talk.ready()
        talk.engine.set_mode(Mode.PTT)
        talk.engine.set_muted(True)
        talk.engine.send_text("hello")  # its reply is cut by the drop
        await talk.until(lambda: talk.engine.reconnects == 1)
        await talk.turn("hello again")
        await talk.finish()

    updates = [
        e.data for e in talk.engine.log if e.type == "session.update" and e.direction == "sent"
    ]
    last = updates[-1]["session"]["audio"]["input"]
    assert last["turn_detection"] is None  # push-to-talk, as chosen before the drop
    assert talk.engine.policy.mode is Mode.PTT and talk.engine.policy.muted


@pytest.mark.slow
async def test_two_drops_in_a_row_keep_one_conversation(tmp_path: Path) -> None:
    # Both the first and the second connection drop mid-reply; the third is healthy.
    faults = Faults(close_after_events=20, connections=2)
    options = ServerOptions(responder="echo", pace=1, faults=faults)
    first, second = LONG_REQUEST, "and now tell me about the mountains and the rivers"
    async with LocalServer(options) as server:
        talk = Talk(server, tmp_path, NullBackend(mic="silence"), reconnect=QUICK)
        await talk.ready()
        talk.engine.send_text(first)
        await talk.until(lambda: talk.engine.reconnects == 1)
        await talk.until(talk.idle)
        talk.engine.send_text(second)
        await talk.until(lambda: talk.engine.reconnects == 2)
        await talk.turn("third")
        view = talk.server_view()
        shown = talk.shown()
        history = await talk.finish()

    assert server.connections_served == 3
    assert [role for role, _, _ in shown] == ["user", "assistant"] * 3
    assert [interrupted for _, _, interrupted in shown] == [False, True, False, True, False, False]
    heard = [text for role, text, _ in shown if role == "assistant"]
    assert talk.reply_to(first).startswith(heard[0]) and talk.reply_to(second).startswith(heard[1])
    # The third session has the whole conversation as context, each line once.
    assert view == [
        ("user", first),
        ("assistant", heard[0]),
        ("user", second),
        ("assistant", heard[1]),
        ("user", "third"),
        ("assistant", "You said: third"),
    ]
    assert history == shown
