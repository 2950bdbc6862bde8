"""Where a command connects: the embedded local server, a URL, or OpenAI, from the config.

    target = plan_target(config)                     # raises the typed error for bad input
    async with target.running() as connection:       # starts the local server if it is one
        session = await RealtimeSession.open(connection)

The choice follows `Config.server_kind()`: `local` runs an in-process `LocalServer` on
127.0.0.1 (any free port) with the `[local_server]` settings and never sends the API key to it;
`url` and `openai` connect with the key, if any. `voicecli smoke` and `voicecli doctor` use
this; `voicecli talk` makes the same choice (its app starts the server on its own loop).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    from voicecli.config import Config
    from voicecli.server import LocalServer
    from voicecli.session import ConnectionSettings


__all__ = ["LOCAL_SERVER_NOTICE", "Target", "local_server_for", "plan_target"]

LOCAL_SERVER_NOTICE = "no OPENAI_API_KEY and no --url: using the embedded local server"

_PLACEHOLDER_URL = "ws://127.0.0.1:9/v1/realtime"
"""Validates the connection settings of a local target before its real port is known."""


@dataclass(slots=True)
class Target:
    kind: str
    """`local`, `url` or `openai` (see `Config.server_kind()`)."""
    label: str
    """How messages name it: `the embedded local server`, the URL, or `OpenAI`."""
    connection: ConnectionSettings
    """Model, dialect, key and timeouts; for a local target the url is a placeholder."""
    local_server: LocalServer | None = None
    """Not started yet; `running()` starts and stops it."""

    @asynccontextmanager
    async def running(self) -> AsyncIterator[ConnectionSettings]:
        """The settings to connect with, the local server listening for as long as needed.

        Raises ConnectError when the local server cannot listen (no free port on 127.0.0.1)."""
        from voicecli.errors import ConnectError

        server = self.local_server
        if server is None:
            yield self.connection
            return
        try:
            await server.start()
        except OSError as exc:
            raise ConnectError(
                f"the embedded local server cannot listen on 127.0.0.1: {exc.strerror or exc}"
            ) from None
        try:
            yield dataclasses.replace(self.connection, url=server.url, api_key=None)
        finally:
            await server.stop()


def local_server_for(
    config: Config, *, pace: float | None = None, responder: str | None = None
) -> LocalServer:
    """A (not started) local server with the config's `[local_server]` settings; `pace` and
    `responder` override them. Raises UsageError for a bad script or responder."""
    from voicecli.errors import UsageError
    from voicecli.server import LocalServer, ScriptError, ServerOptions

    local = config.local_server
    try:
        return LocalServer(
            ServerOptions(
                responder=responder or local.responder,
                script=local.script or None,
                pace=local.pace if pace is None else pace,
                model=config.connection.model,
                voice=config.session.voice,
            )
        )
    except (ScriptError, ValueError) as exc:
        raise UsageError(f"local server: {exc}") from None


def plan_target(
    config: Config, *, local_pace: float | None = None, local_responder: str | None = None
) -> Target:
    """Where `config` says to connect. Raises UsageError (e.g. `--server openai` without a
    key, a bad url) before anything is opened."""
    from voicecli.session import ConnectionSettings

    kind = config.server_kind()
    if kind == "local":
        return Target(
            kind=kind,
            label="the embedded local server",
            connection=ConnectionSettings.from_config(config, url=_PLACEHOLDER_URL),
            local_server=local_server_for(config, pace=local_pace, responder=local_responder),
        )
    connection = ConnectionSettings.from_config(config)
    label = "OpenAI" if kind == "openai" else connection.display_url
    return Target(kind=kind, label=label, connection=connection)
