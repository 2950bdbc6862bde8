"""`voicecli smoke`: drive a realtime model with known input and report what came back.

- `script` — turns (WAV or text) and expectations, from flags or a JSON Lines script (pure);
- `report` — per-turn results, the exit code, the table and the JSON report (pure);
- `audio` — `SmokeAudio`: WAV turns as the microphone, the file backend as the speaker;
- `runner` — `SmokeRun` / `run_smoke()`: one `TalkEngine` session through all turns.

`voicecli.commands.smoke` is the command line; the JSON report's schema is
`docs/smoke-report.schema.json`.
"""

from __future__ import annotations
