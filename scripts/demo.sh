#!/usr/bin/env bash
# Install Redress into .venv and run its main job on the embedded default:
# `redress demo` builds a bank from Meta's reference images in a throwaway
# REDRESS_HOME and scans edited copies against it.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${REDRESS_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
  -c requirements/constraints.txt -e .

DATA=${REDRESS_SHARED_DATA:-../shared/data}
"$VENV/bin/redress" hash --json "$DATA/pdq/bridge-mods" "$DATA/vpdq/videos/chair-19-sd-bar.mp4"
