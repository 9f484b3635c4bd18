"""`redress user create|list` and `redress review import` from the command line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import redress.review
from cli_support import run_redress


def run(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "REDRESS_HOME": str(home)}
    return run_redress(*args, env=env, stdin=stdin)


def test_bootstrap_the_first_admin(redress_home: Path) -> None:
    made = run(
        redress_home,
        "user",
        "create",
        "--role",
        "admin",
        "--password-stdin",
        "boss@example.org",
        stdin="a long enough password\n",
    )
    assert made.returncode == 0, made.stderr
    assert "created admin boss@example.org" in made.stdout
    listed = run(redress_home, "user", "list", "--json")
    assert '"role": "admin"' in listed.stdout
    assert "argon2" not in listed.stdout
    again = run(
        redress_home,
        "user",
        "create",
        "--role",
        "admin",
        "--password-stdin",
        "boss@example.org",
        stdin="a long enough password\n",
    )
    assert again.returncode == 2
    assert "review_user_exists" in again.stderr
    assert "Traceback" not in again.stderr
    short = run(
        redress_home,
        "user",
        "create",
        "--role",
        "moderator",
        "--password-stdin",
        "m@e.org",
        stdin="short\n",
    )
    assert short.returncode == 2
    assert "at least 12 characters" in short.stderr
    imported = run(redress_home, "review", "import")
    assert imported.returncode == 0, imported.stderr


def test_public_names_are_pinned() -> None:
    assert set(redress.review.__all__) == {
        "CONFIRM_ACTIONS",
        "REASON_CODES",
        "ActionPerformer",
        "DecisionRequest",
        "DecisionResult",
        "ItemView",
        "Outcome",
        "QueueFilter",
        "QueueRow",
        "ReviewConfig",
        "ReviewIntake",
        "ReviewService",
        "ReviewStore",
        "Role",
        "Viewer",
    }
