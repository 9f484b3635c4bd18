"""The store's command line on SQLite and PostgreSQL: in process through the console
script's own boundary (tests/cli_support.py), and as a subprocess where one is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cli_support import run_redress
from redress.store.db import make_engine
from redress.store.migrate import upgrade
from redress.store.models import BankEntry, ImportCheckpoint, IndexChange

PDQ = "f" * 64
MD5 = "d41d8cd98f00b204e9800998ecf8427e"


@pytest.fixture
def cli_env(redress_home: Path, database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    if database_url.startswith("postgresql"):
        upgrade(database_url)  # PostgreSQL is never migrated behind the operator's back
        env["REDRESS_DATABASE_URL"] = database_url
    env.pop("REDRESS_DATABASE_URL", None) if database_url.startswith("sqlite") else None
    return env


def redress(
    env: dict[str, str], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return run_redress(*args, env=env, stdin=stdin)


def test_bank_lifecycle(cli_env: dict[str, str]) -> None:
    assert (
        redress(
            cli_env,
            "bank",
            "create",
            "known",
            "--purpose",
            "confirmed_violations",
            "--threshold",
            "20",
        ).returncode
        == 0
    )
    added = redress(cli_env, "bank", "add", "known", "--pdq", PDQ, "--md5", MD5)
    assert added.returncode == 0, added.stderr
    [bank] = [
        json.loads(line) for line in redress(cli_env, "bank", "list", "--json").stdout.splitlines()
    ]
    assert (bank["name"], bank["purpose"], bank["pdq_threshold"]) == (
        "known",
        "confirmed_violations",
        20,
    )
    stats = json.loads(redress(cli_env, "bank", "stats", "known", "--json").stdout)
    assert stats["active"] == {"md5": 1, "pdq": 1}
    exported = redress(cli_env, "bank", "export", "known", "--format", "hma-csv")
    assert exported.stdout.splitlines()[0].startswith(f"{PDQ},")
    removed = redress(cli_env, "bank", "remove", "known", "1")
    assert removed.returncode == 0
    assert json.loads(redress(cli_env, "bank", "stats", "known", "--json").stdout)["removed"] == 1


def test_bad_input_is_a_clear_error_not_a_traceback(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    bad_hex = redress(cli_env, "bank", "add", "nobank", "--pdq", "xyz")
    assert bad_hex.returncode == 2
    assert "[bad_hash]" in bad_hex.stderr
    missing = redress(cli_env, "bank", "stats", "nobank")
    assert "[bank_not_found]" in missing.stderr
    redress(cli_env, "bank", "create", "b")
    rows = tmp_path / "rows.csv"
    rows.write_text(f"{PDQ},1,,\nnope,2,,\n{MD5},3,,\n")
    skipped = redress(cli_env, "bank", "import", "b", str(rows), "--format", "hma-csv")
    assert skipped.returncode == 1
    assert f"{rows}:2: [bad_hash]" in skipped.stderr
    assert "2 added" in skipped.stdout
    strict = redress(
        cli_env,
        "bank",
        "import",
        "b",
        str(rows),
        "--format",
        "hma-csv",
        "--strict",
        "--create",
        "internal",
    )
    assert strict.returncode == 2
    assert "[import_rejected]" in strict.stderr
    unknown = redress(
        cli_env, "bank", "import", "b", str(rows), "--format", "hma-csv", "--signal-type", "tmk"
    )
    assert "[unknown_signal_type]" in unknown.stderr
    for result in (bad_hex, missing, skipped, strict, unknown):
        assert "Traceback" not in result.stderr


def test_case_create_shows_the_pin_once_and_withdraw_needs_it(cli_env: dict[str, str]) -> None:
    created = redress(cli_env, "case", "create", "--pdq", PDQ, "--locale", "zh-CN", "--json")
    assert created.returncode == 0, created.stderr
    case = json.loads(created.stdout)
    assert "shown only this once" in created.stderr
    status = json.loads(redress(cli_env, "case", "status", case["case_number"], "--json").stdout)
    assert status == {**status, "status": "Received", "entries": 1}
    assert "pin" not in status
    wrong = redress(cli_env, "case", "withdraw", case["case_number"], "--pin", "12345678")
    assert "[wrong_pin]" in wrong.stderr
    ok = redress(cli_env, "case", "withdraw", case["case_number"], stdin=case["pin"] + "\n")
    assert ok.returncode == 0, ok.stderr
    assert "Withdrawn" in ok.stdout
    stats = json.loads(redress(cli_env, "bank", "stats", "victim-cases", "--json").stdout)
    assert (stats["active"], stats["removed"]) == ({}, 1)


@pytest.mark.unmigrated
def test_postgres_must_be_upgraded_by_the_operator(redress_home: Path, postgres_url: str) -> None:
    env = dict(os.environ, REDRESS_DATABASE_URL=postgres_url)
    result = redress(env, "bank", "list")
    assert result.returncode == 2
    assert "[database_not_ready]" in result.stderr
    assert "redress db upgrade" in result.stderr
    assert redress(env, "db", "upgrade").returncode == 0
    assert "up to date" in redress(env, "db", "current").stdout


def test_sqlite_is_upgraded_on_first_use(redress_home: Path) -> None:
    env = dict(os.environ)
    env.pop("REDRESS_DATABASE_URL", None)
    assert redress(env, "bank", "list", "--json").returncode == 0
    assert (redress_home / "redress.db").is_file()
    assert "up to date" in redress(env, "db", "current").stdout


def test_sigkilled_import_resumes_from_its_checkpoint(
    cli_env: dict[str, str], database_url: str, tmp_path: Path
) -> None:
    import random

    rng = random.Random(0)
    path = tmp_path / "big.csv"
    values = [rng.randbytes(32).hex() for _ in range(150_000)]
    path.write_text("".join(f"{v},{i},,\n" for i, v in enumerate(values)), encoding="ascii")
    url = (
        database_url
        if database_url.startswith("postgresql")
        else f"sqlite:///{cli_env['REDRESS_HOME']}/redress.db"
    )
    assert redress(cli_env, "bank", "create", "big").returncode == 0
    engine = make_engine(url)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "redress",
            "bank",
            "import",
            "big",
            str(path),
            "--format",
            "hma-csv",
            "--chunk-size",
            "1000",
        ],
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        position = 0
        while position == 0 and proc.poll() is None:
            with Session(engine) as s:
                position = (
                    s.scalar(select(func.coalesce(func.max(ImportCheckpoint.position), 0))) or 0
                )
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the import finished before it could be killed"
    with Session(engine) as s:
        checkpoint = s.scalars(select(ImportCheckpoint)).one()
        rows = s.scalars(select(BankEntry.value)).all()
    # Consistent at the kill: exactly the rows of the committed chunks, each once.
    assert checkpoint.status == "running"
    assert sorted(r.hex() for r in rows) == sorted(values[: checkpoint.position])
    resumed = redress(cli_env, "bank", "import", "big", str(path), "--format", "hma-csv", "--json")
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["resumed_at"] == checkpoint.position
    with Session(engine) as s:
        rows = s.scalars(select(BankEntry.value)).all()
        logged = s.execute(
            select(IndexChange.entry_id, IndexChange.entry_id_end).where(IndexChange.op == "add")
        ).all()
    engine.dispose()
    assert len(rows) == len(set(rows)) == len(values)
    assert sum(b - a + 1 for a, b in logged) == len(values)


def test_scan_matches_edited_copies_and_bank_add_matches_history(
    cli_env: dict[str, str], shared_data: Path
) -> None:
    mods = shared_data / "pdq" / "bridge-mods"
    unrelated = sorted((shared_data / "pdq" / "reg-test-input" / "labelme-subset").iterdir())[0]
    # Seen before any bank holds it: recorded, not matched.
    first = redress(cli_env, "scan", "--json", str(mods / "blur-a-lot.jpg"))
    assert json.loads(first.stdout)["matches"] == []
    assert redress(cli_env, "bank", "create", "known").returncode == 0
    added = redress(cli_env, "bank", "add", "known", str(mods / "aaa-orig.jpg"))
    assert added.returncode == 0, added.stderr
    # Retroactive: the earlier scan now has a recorded match.
    assert json.loads(redress(cli_env, "bank", "stats", "known", "--json").stdout)["matches"] == 1
    scanned = redress(
        cli_env, "scan", "--json", str(mods / "sharpen-a-little.jpg"), str(unrelated), str(mods)
    )
    assert scanned.returncode == 1  # the folder is not a file: reported, the others still scanned
    records = [json.loads(line) for line in scanned.stdout.splitlines()]
    hit, miss, error = records
    assert [(m["bank"], m["signal"]) for m in hit["matches"]] == [("known", "pdq")]
    assert 0 < hit["matches"][0]["distance"] <= 31
    assert miss["matches"] == []
    assert error["path"] == str(mods)
    assert set(error["error"]) == {"code", "message"}
    assert "Traceback" not in scanned.stderr
