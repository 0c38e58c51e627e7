#!/usr/bin/env bash
# Fetches (once per machine) and converts the real trained weights of tests/real_weights.rs:
# a venv with the pinned light dependencies (requirements-real-weights.txt: gguf, numpy,
# safetensors; no torch) under the cache dir, then tests/reference/real_weights.py.
# Cache dir: $OMNI_REAL_WEIGHTS, else ~/.cache/omni-real-weights. Exits non-zero (and the
# tests then fail, naming this script) when the packages cannot be downloaded.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir="${OMNI_REAL_WEIGHTS:-$HOME/.cache/omni-real-weights}"
mkdir -p "$dir"
py="${PYTHON:-python3}"
venv="$dir/venv"
req="$here/requirements-real-weights.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  rm -rf "$venv"
  if "$py" -m venv "$venv" 2>/dev/null; then
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  else
    # No venv module (Debian without python3-venv): the same pinned packages into a folder
    # on PYTHONPATH, run by the system interpreter.
    rm -rf "$venv"
    mkdir -p "$venv/bin"
    "$py" -m pip install -q --disable-pip-version-check --target "$venv/site" -r "$req"
    printf '#!/bin/sh\nPYTHONPATH="%s${PYTHONPATH:+:$PYTHONPATH}" exec "%s" "$@"\n' "$venv/site" "$(command -v "$py")" > "$venv/bin/python"
    chmod +x "$venv/bin/python"
  fi
  echo "$want" > "$stamp"
fi
exec "$venv/bin/python" "$here/real_weights.py" --dir "$dir" "$@"
