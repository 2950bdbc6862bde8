"""The Textual user interface of `voicecli talk`: the only package that imports Textual.

- `setup.py` — `TalkSetup`, everything the app is given (settings, where to connect, how to
  make the audio backend); no Textual.
- `keys.py` — the table of keys (bindings, the help screen and the footer come from it).
- `render.py` — pure formatting of what the widgets show (status, state, meters, lines).
- `eventlog.py` — the inspector's model: the engine's event log with deltas grouped.
- `widgets.py`, `help.py`, `messages.py`, `app.py`, `voicecli.tcss` — the Textual parts.

Import `voicecli.tui.app` lazily (the talk command does it inside `run`): Textual takes a
while to import and the other commands do not need it.
"""
