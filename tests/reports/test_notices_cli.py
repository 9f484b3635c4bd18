"""``redress notices ...`` from the command line: submit, tick with a given time, export."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from reports_support import IMAGE, World

from cli_support import run_redress


def run(w: World, home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, REDRESS_HOME=str(home))
    env["REDRESS_DATABASE_URL"] = w.settings.effective_database_url
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2] / "src")
    return run_redress(*args, env=env)


def test_submit_tick_and_breach_from_the_command_line(w: World, redress_home: Path) -> None:
    w.scan(IMAGE, "-1001001001", "1")
    missing = run(
        w,
        redress_home,
        "notices",
        "submit",
        "--regime",
        "take_it_down",
        "--location",
        "https://t.me/c/1001001/1",
        "--email",
        "a@example.org",
    )
    assert missing.returncode == 2
    assert "notice_incomplete" in missing.stderr
    assert "signature" in missing.stderr
    assert "non_consent" in missing.stderr
    made = run(
        w,
        redress_home,
        "notices",
        "submit",
        "--regime",
        "take_it_down",
        "--location",
        "https://t.me/c/1001001/1",
        "--email",
        "a@example.org",
        "--signature",
        "A. Person",
        "--non-consent",
    )
    assert made.returncode == 0, made.stderr
    notice = json.loads(made.stdout)
    assert [i["relation"] for i in notice["items"]] == ["located"]
    due = notice["due_at"]
    before = run(w, redress_home, "notices", "tick", "--at", notice["received_at"])
    assert json.loads(before.stdout)["breached"] == []
    after = run(w, redress_home, "notices", "tick", "--at", due.replace("+00:00", "Z"))
    assert json.loads(after.stdout)["breached"] == [notice["reference"]]
    listed = run(w, redress_home, "notices", "list", "--status", "open")
    assert json.loads(listed.stdout.splitlines()[0])["reference"] == notice["reference"]
    bad = run(w, redress_home, "notices", "tick", "--at", "yesterday")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr


def test_outbound_and_statements_from_the_command_line(
    w: World, redress_home: Path, tmp_path: Path
) -> None:
    item = w.scan(IMAGE, "-1001001001", "1")
    made = run(w, redress_home, "notices", "outbound", "create", item, "--platform", "Host")
    assert made.returncode == 0, made.stderr
    reference = json.loads(made.stdout)["reference"]
    exported = run(
        w, redress_home, "notices", "outbound", "export", reference, "--dir", str(tmp_path)
    )
    assert "https://t.me/c/1001001/1" in Path(exported.stdout.strip()).read_text()
    gone = run(w, redress_home, "notices", "outbound", "gone", reference)
    assert json.loads(gone.stdout)["status"] == "gone"
    statements = run(w, redress_home, "notices", "statements", "--format", "csv")
    assert statements.returncode == 0, statements.stderr
    assert statements.stdout.startswith("decision_visibility,")
    missing = run(w, redress_home, "notices", "outbound", "gone", "T-NOPE")
    assert missing.returncode == 2
    assert "notice_not_found" in missing.stderr
