"""A local server that speaks the OpenAI Realtime protocol (GA and beta) for demos and tests.

    from voicecli.server import LocalServer, ServerOptions

    async with LocalServer(ServerOptions(responder="echo", pace=0)) as server:
        ...  # connect a client to server.url

Pure core (`core.py`, `vad.py`, `session_state.py`, `conversation.py`, `validation.py`) with a
thin asyncio shell (`local.py`); replies come from pluggable responders (`responders.py`).
"""

from __future__ import annotations

from voicecli.server.local import LocalServer
from voicecli.server.options import Faults, ServerOptions
from voicecli.server.responders import (
    EchoResponder,
    FunctionCall,
    FunctionOutput,
    Reply,
    Responder,
    ScriptedResponder,
    ScriptError,
    SpeechResponder,
    Turn,
    responder_named,
)


__all__ = [
    "EchoResponder",
    "Faults",
    "FunctionCall",
    "FunctionOutput",
    "LocalServer",
    "Reply",
    "Responder",
    "ScriptError",
    "ScriptedResponder",
    "ServerOptions",
    "SpeechResponder",
    "Turn",
    "responder_named",
]
