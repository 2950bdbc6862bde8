"""The architecture's import rules, checked: only voicecli/tui/ imports Textual, the protocol core
imports only the standard library, and the jitter buffer never imports sounddevice.

Two checks each: a static scan of every import statement (catches lazy imports inside functions
too), and a fresh interpreter that imports each headless module and looks at sys.modules.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest


PACKAGE = Path(__file__).resolve().parent.parent / "voicecli"
STDLIB = sys.stdlib_module_names


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _modules(under: Path) -> list[Path]:
    return sorted(p for p in under.rglob("*.py"))


def _dotted(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_only_the_tui_package_imports_textual() -> None:
    offenders = [
        str(p.relative_to(PACKAGE.parent))
        for p in _modules(PACKAGE)
        if "tui" not in p.relative_to(PACKAGE).parts and {"textual", "rich"} & _imports(p)
    ]
    assert offenders == []


def test_protocol_core_imports_only_the_standard_library() -> None:
    for path in _modules(PACKAGE / "protocol"):
        foreign = {n for n in _imports(path) if n not in STDLIB and n != "voicecli"}
        assert not foreign, f"{path.name} imports {sorted(foreign)}"


def test_jitter_buffer_does_not_import_sounddevice() -> None:
    jitter = PACKAGE / "audio" / "jitter.py"
    if not jitter.exists():
        pytest.skip("audio/jitter.py not built yet")
    assert _imports(jitter) <= STDLIB | {"numpy", "voicecli"}


def test_headless_modules_load_without_textual() -> None:
    headless = [
        _dotted(p)
        for p in _modules(PACKAGE)
        if "tui" not in p.relative_to(PACKAGE).parts and p.name != "__main__.py"
    ]
    probe = (
        "import importlib, sys\n"
        f"for name in {headless!r}:\n"
        "    importlib.import_module(name)\n"
        "loaded = sorted(m for m in ('textual', 'rich') if m in sys.modules)\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
