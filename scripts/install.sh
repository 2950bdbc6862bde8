#!/usr/bin/env bash
# Installs everything voicecli needs on a fresh Debian/Ubuntu machine, idempotently:
# system packages (PortAudio, PulseAudio for the virtual sound server used by tests, espeak-ng,
# sox, tmux) and a virtualenv in .venv with voicecli and its test dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(libportaudio2 pulseaudio pulseaudio-utils libasound2-plugins espeak-ng sox tmux)

missing=()
for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
    echo "installing system packages: ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
stamp=.venv/.voicecli-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
    .venv/bin/python -m pip install -q -e ".[test]" 2>&1 | grep -v -e "is ignored" -e "^ *!!" || true
    .venv/bin/python -c "import voicecli, sounddevice, textual, websockets, openai" \
        || { echo "install failed" >&2; exit 1; }
    touch "$stamp"
fi
