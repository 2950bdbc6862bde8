"""`TalkSetup`: everything the talk app is given instead of building it itself.

The command line builds it from the configuration; tests build it around an in-process local
server and the file or null audio backends. No Textual here.

Where the session goes is either `open_session` (a ready opener, e.g. for a server the caller
runs) or `local_server` (a `LocalServer` not yet started: the app starts it on its own event
loop and connects with `connection`, its url replaced by the server's).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from voicecli.engine import SessionOpener, TalkEngine, TalkSettings, opener_for


if TYPE_CHECKING:
    from voicecli.audio.backend import AudioBackend
    from voicecli.server import LocalServer
    from voicecli.session import ConnectionSettings


__all__ = ["TalkSetup"]


@dataclass(slots=True)
class TalkSetup:
    settings: TalkSettings
    server_label: str
    """How the status line names the server: `OpenAI`, a URL, or the local demo server."""
    open_session: SessionOpener | None = None
    local_server: LocalServer | None = None
    connection: ConnectionSettings | None = None
    """Model, dialect and timeouts for `local_server` (its url is replaced)."""
    make_audio: Callable[[], AudioBackend | None] = lambda: None
    """Makes the audio backend when the session starts; None runs without audio."""
    ptt_style: str = "toggle"
    """`toggle` (space starts and sends) or `hold` (key-repeat hold-to-talk)."""
    notices: tuple[str, ...] = ()
    """Lines shown at the top of the transcript (local demo server, laptop speakers hint)."""
    on_engine: Callable[[TalkEngine], None] | None = None
    """Called with each new engine before it runs (history recording subscribes here)."""
    wall_clock: Callable[[], float] = time.time
    """For the time left in the session (tests freeze it)."""
    engine_clock: Callable[[], float] | None = None
    """The engine's monotonic clock (tests freeze it for deterministic latency figures)."""

    def opener(self, local_url: str | None) -> SessionOpener:
        if self.open_session is not None:
            return self.open_session
        if self.connection is None:
            raise ValueError("TalkSetup needs open_session or connection")
        settings = self.connection
        if local_url is not None:
            settings = dataclasses.replace(settings, url=local_url, api_key=None)
        return opener_for(settings)

    def new_engine(self, local_url: str | None) -> TalkEngine:
        audio = None if self.settings.text_only else self.make_audio()
        kwargs = {"clock": self.engine_clock} if self.engine_clock is not None else {}
        return TalkEngine(self.settings, self.opener(local_url), audio, **kwargs)
