#!/usr/bin/env bash
# Install Redress into .venv and show its main job on the embedded default
# (SQLite in a throwaway REDRESS_HOME):
#   1. a victim's photo is fingerprinted "on her device" (only the PDQ hash is kept),
#   2. a case is opened from that hash alone (case number + PIN),
#   3. re-shared copies (blurred, shrunk, recoloured) are scanned and matched,
#      unrelated photos are not,
#   4. the victim withdraws her case and the same copies stop matching.
# Then `redress serve` runs the API, console and portal on the same database.
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
REDRESS_HOME=$(mktemp -d "${TMPDIR:-/tmp}/redress-demo.XXXXXX")
export REDRESS_HOME
redress() { "$VENV/bin/redress" "$@"; }
json_field() { "$VENV/bin/python" -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }

echo "== 1. Her device fingerprints the photo; the picture itself goes nowhere"
PDQ=$(redress hash --json "$DATA/pdq/bridge-mods/aaa-orig.jpg" | json_field pdq)
echo "PDQ $PDQ"

echo "== 2. A case is opened from the hash alone"
CASE_JSON=$(redress case create --pdq "$PDQ" --json)
CASE=$(echo "$CASE_JSON" | json_field case_number)
PIN=$(echo "$CASE_JSON" | json_field pin)
echo "case $CASE (PIN shown once to her; kept here only for the demo)"

COPIES=("$DATA"/pdq/bridge-mods/{blur-a-lot,shrink-a-lot,high-saturation,sharpen-a-lot}.jpg)
OTHERS=("$DATA"/pdq/reg-test-input/labelme-subset/q000{3,4}.jpg)

echo "== 3. Re-shared copies are scanned: the edited copies match, other photos do not"
redress scan "${COPIES[@]}" "${OTHERS[@]}"

echo "== 4. She withdraws the case; the same copies stop matching"
redress case withdraw "$CASE" --pin "$PIN"
redress scan "${COPIES[@]}"

echo
echo "Everything lives in $REDRESS_HOME. Serve the API on it with:"
echo "  REDRESS_HOME=$REDRESS_HOME $VENV/bin/redress serve --port 8080"
