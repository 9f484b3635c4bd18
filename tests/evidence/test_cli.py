"""`redress evidence ...` end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from cli_support import run_redress

REPO = Path(__file__).resolve().parents[2]


def redress(*args: str, home: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDRESS_")}
    env.update(
        REDRESS_HOME=str(home),
        REDRESS_EVIDENCE_CHECKPOINT_INTERVAL="4",
        PYTHONPATH=str(REPO / "src"),
    )
    return run_redress(*args, env=env, stdin=stdin)


def test_capture_export_verify_delete(tmp_path: Path) -> None:
    home = tmp_path / "home"
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg \xff\xd9")
    missing = tmp_path / "missing.jpg"
    created = redress(
        "case",
        "create",
        "--pdq",
        "f8f8f0cee0f4a84f06370a22028f67f0b36e2ed596621e1d33e6b39c4e9c9b22",
        "--json",
        home=home,
    )
    assert created.returncode == 0, created.stderr
    case_number = json.loads(created.stdout)["case_number"]
    captured = redress(
        "evidence",
        "capture",
        str(photo),
        str(missing),
        "--operator",
        "ngo",
        "--case",
        case_number,
        home=home,
    )
    assert captured.returncode == 1  # one file failed, the other was captured
    lines = [json.loads(line) for line in captured.stdout.splitlines()]
    assert lines[1]["error"]["code"] == "unreadable"
    item = lines[0]["item"]

    key = redress("evidence", "key", home=home)
    assert key.returncode == 0
    fingerprint = key.stdout.split("fingerprint:")[1].split()[0]

    exported = redress(
        "evidence",
        "export",
        "--case",
        case_number,
        "--to",
        str(tmp_path / "p.zip"),
        "--actor",
        "liaison:1",
        home=home,
    )
    assert exported.returncode == 0, exported.stderr
    assert fingerprint in exported.stdout  # the fingerprint is printed on every export

    ok = redress(
        "evidence", "verify", str(tmp_path / "p.zip"), "--key-fingerprint", fingerprint, home=home
    )
    assert ok.returncode == 0, ok.stdout
    assert ok.stdout.strip().endswith("VERIFIED")
    bad = redress(
        "evidence", "verify", str(tmp_path / "p.zip"), "--key-fingerprint", "ab" * 32, home=home
    )
    assert bad.returncode == 1
    assert "[key_pin_mismatch]" in bad.stdout

    opened = redress(
        "evidence",
        "open",
        item,
        "--out",
        str(tmp_path / "copy.jpg"),
        "--purpose",
        "court",
        "--actor",
        "officer:5",
        home=home,
    )
    assert opened.returncode == 0, opened.stderr
    assert (tmp_path / "copy.jpg").read_bytes() == photo.read_bytes()

    refused = redress(
        "evidence", "delete", item, "--reason", "victim request", home=home, stdin="n\n"
    )
    assert refused.returncode == 1
    assert "cannot be recalled" in refused.stderr
    deleted = redress("evidence", "delete", item, "--reason", "victim request", "--yes", home=home)
    assert deleted.returncode == 0
    again = redress(
        "evidence",
        "open",
        item,
        "--out",
        str(tmp_path / "again.jpg"),
        "--purpose",
        "court",
        home=home,
    )
    assert again.returncode == 2
    assert "[evidence_deleted]" in again.stderr
    assert "Traceback" not in again.stderr

    shown = redress("evidence", "show", item, home=home)
    assert "evidence:item:deleted" in shown.stdout
    assert "evidence:item:viewed" in shown.stdout

    bogus = redress("evidence", "show", "../../etc/passwd", home=home)
    assert bogus.returncode == 2
    assert "[evidence_not_found]" in bogus.stderr


def test_rotation_checkpoint_and_recipient_keys(tmp_path: Path) -> None:
    home = tmp_path / "home"
    photo = tmp_path / "a.png"
    photo.write_bytes(b"\x89PNG fake")
    assert (
        redress("evidence", "capture", str(photo), "--operator", "ngo", home=home).returncode == 0
    )
    rotated = redress("evidence", "rotate-master-key", "--actor", "admin", home=home)
    assert rotated.returncode == 0, rotated.stderr
    assert "re-wrapped 1 item keys" in rotated.stdout
    checkpoint = redress("evidence", "checkpoint", "--out", str(tmp_path / "cp.txt"), home=home)
    assert checkpoint.returncode == 0
    assert "\u2014 redress.evidence/" in (tmp_path / "cp.txt").read_text()
    made = redress("evidence", "recipient-key", "--out", str(tmp_path / "police.key"), home=home)
    assert made.returncode == 0
    assert (tmp_path / "police.key").stat().st_mode & 0o077 == 0
    again = redress("evidence", "recipient-key", "--out", str(tmp_path / "police.key"), home=home)
    assert again.returncode == 2
    assert "refusing to overwrite" in again.stderr
