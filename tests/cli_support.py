"""Run ``redress`` command lines inside the test process.

Each subprocess spent about 1.5 s importing SQLAlchemy, Alembic, NumPy and the
domain before it did anything, which made the command-line tests a quarter of
the suite's time. :func:`run_redress` calls the same boundary the console
script calls (:func:`redress.cli.run`: exit statuses, error lines, crash
reports) with the environment, stdin, stdout and stderr of its own, so a test
still sees exactly what a user sees. The console script itself (``python -m
redress``: per-domain loading, no traceback from an import) keeps its own
subprocess tests in tests/test_cli.py, and so do the tests that signal or kill
a running command.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Mapping

from typer.testing import CliRunner

from redress import cli


@functools.cache
def _commands() -> None:
    # Every domain's commands, once: the console script registers only the
    # domain a command line names, which changes what is imported, not what runs.
    cli._register_domains()


def run_redress(
    *args: str, env: Mapping[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``redress ARGS`` with ``env`` (the whole environment; this process's by
    default) and ``stdin``; return its exit status and output as a subprocess would."""
    _commands()
    wanted = dict(os.environ if env is None else env)
    # The command sees exactly ``wanted``: variables it does not name are removed.
    overrides: dict[str, str | None] = {name: None for name in os.environ if name not in wanted}
    overrides.update(wanted)
    with CliRunner().isolation(input=stdin, env=overrides) as (out, err, _mixed):
        try:
            code = cli.run(list(args))
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
        stdout = out.getvalue().decode("utf-8", "replace")
        stderr = err.getvalue().decode("utf-8", "replace")
    return subprocess.CompletedProcess(["redress", *args], code, stdout, stderr)
