#!/usr/bin/env bash
# Install everything Redress needs on a fresh machine, then lint, type-check
# and run the whole test suite. This is the README's test command; .ci/run
# calls it with REDRESS_REQUIRE_SERVICES=1 so that PostgreSQL/Redis tests
# fail instead of skipping when those servers are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${REDRESS_VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -U pip
"$VENV/bin/python" -m pip install -q --disable-pip-version-check \
  -c requirements/constraints.txt -e '.[dev]'

echo "== ruff"
"$VENV/bin/ruff" check src tests
"$VENV/bin/ruff" format --check src tests
echo "== mypy"
"$VENV/bin/mypy"
echo "== pytest"
"$VENV/bin/pytest" "$@"
