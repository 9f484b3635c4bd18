"""The root command line: version, help, and the error boundary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from redress import __version__


def run_redress(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "redress", *args], capture_output=True, text=True, env=env
    )


def test_version_is_printed() -> None:
    result = run_redress("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"redress {__version__}"


def test_bad_setting_is_a_clear_error_not_a_traceback(redress_home: Path) -> None:
    env = dict(os.environ, REDRESS_PDQ_THRESHOLD="lots")
    result = run_redress("bench", "--help", env=env)
    assert result.returncode == 2
    assert "configuration_error" in result.stderr
    assert "REDRESS_" in result.stderr or "pdq_threshold" in result.stderr
    assert "Traceback" not in result.stderr
