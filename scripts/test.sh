#!/usr/bin/env bash
# Install everything Redress needs on a fresh machine, then lint, type-check
# and run the whole test suite. This is the README's test command; .ci/run
# calls it with REDRESS_REQUIRE_SERVICES=1 so that PostgreSQL/Redis tests
# fail instead of skipping when those servers are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# The web tests drive the system Chromium (Debian package `chromium`) through
# Playwright, which never downloads a browser of its own (plus a CJK font so
# the Chinese pages render in screenshots).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing chromium (apt)"
  (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-wqy-microhei) \
    >/tmp/redress-chromium-install.log 2>&1 || echo "chromium install failed; see /tmp/redress-chromium-install.log"
fi

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
