"""`redress backup create|restore`: back up a running embedded deployment (the API taking
uploads that match victims' cases, capturing evidence) and restore it into a fresh home;
the ledger audit verifies, and the cases (with their PINs) and the evidence are intact."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from redress.config import Settings
from redress.evidence.models import EvidenceItemRow, LedgerEntryRow
from redress.pipeline.keys import ApiKeyService, Scope
from redress.signals import HashOptions, hash_bytes
from redress.signals.types import SignalKind
from redress.store.backup import create_backup, read_manifest, restore_backup
from redress.store.db import make_engine
from redress.store.errors import BackupError
from redress.store.interfaces import EntryIn
from redress.store.migrate import upgrade
from redress.store.service import CaseService

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from media_support import photo  # the pipeline tests' generated pictures

from cli_support import run_redress

PHOTOS = 60
CASES = 3


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_redress(*args, env=env)


def _env(home: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("REDRESS_")}
    return {**clean, "REDRESS_HOME": str(home)}


@pytest.mark.slow
def test_backup_of_a_running_system_restores_and_verifies(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home)
    url = settings.effective_database_url
    upgrade(url)
    photos = [photo(n) for n in range(PHOTOS)]
    engine = make_engine(url)
    cases: dict[str, str] = {}
    with Session(engine) as session, session.begin():
        token = ApiKeyService(session).create("platform", frozenset({Scope.SCAN})).token
        service = CaseService(session)
        for c in range(CASES):  # each victim's case holds the hashes of her pictures
            entries = []
            for n in range(c, PHOTOS, 2 * CASES):
                pdq = hash_bytes(photos[n], HashOptions()).pdq
                assert pdq is not None
                entries.append(EntryIn(kind=SignalKind.PDQ, value=pdq.bits, quality=pdq.quality))
            created = service.create(entries)
            cases[created.case.case_number] = created.pin
    engine.dispose()

    port = _port()
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "redress", "serve", "--port", str(port), "--log-level", "info"],
            env=_env(home),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    accepted: list[str] = []

    def upload(indices: range) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            for n in indices:
                answer = client.post(
                    "/api/v1/scan",
                    files={"file": (f"{n}.jpg", photos[n], "image/jpeg")},
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": f"m{n}"},
                )
                assert answer.status_code == 202, answer.text
                accepted.append(answer.json()["id"])

    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.1)
        upload(range(PHOTOS // 2))  # a first half, then the backup while the rest arrives
        rest = threading.Thread(target=upload, args=(range(PHOTOS // 2, PHOTOS),))
        rest.start()
        made = _cli(_env(home), "backup", "create", str(tmp_path / "backup"))
        rest.join(timeout=120)
        assert made.returncode == 0, made.stdout + made.stderr
        assert "backed up" in made.stdout
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
    assert len(accepted) == PHOTOS

    # Restore into a fresh home on "another host": the command checks and audits.
    fresh = tmp_path / "fresh"
    restored = _cli(_env(fresh), "backup", "restore", str(tmp_path / "backup"))
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert "LEDGER VERIFIED" in restored.stdout
    audit = _cli(_env(fresh), "evidence", "audit")
    assert audit.returncode == 0, audit.stdout
    assert "LEDGER VERIFIED" in audit.stdout

    source, copy = make_engine(url), make_engine(Settings(home=fresh).effective_database_url)
    try:
        with Session(source) as old, Session(copy) as new:
            old_leaves = list(old.scalars(select(LedgerEntryRow.leaf_hash).order_by("seq")))
            new_leaves = list(new.scalars(select(LedgerEntryRow.leaf_hash).order_by("seq")))
            old_items = set(old.scalars(select(EvidenceItemRow.id)))
            new_items = set(new.scalars(select(EvidenceItemRow.id)))
            # Every victim's case is there, and her PIN still opens it.
            restored_cases = CaseService(new)
            for number, pin in cases.items():
                assert restored_cases.verify_pin(number, pin).case_number == number
    finally:
        source.dispose()
        copy.dispose()
    # The restored ledger is the original as it stood at the backup: a prefix, entry for
    # entry, with evidence captured before it (and none invented).
    assert new_leaves
    assert new_leaves == old_leaves[: len(new_leaves)]
    assert new_items
    assert new_items <= old_items


def test_a_damaged_backup_is_refused_and_a_used_home_kept(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home)
    upgrade(settings.effective_database_url)
    (home / "keys").mkdir(mode=0o700)
    (home / "keys" / "evidence-master.key").write_text("{}")
    manifest = create_backup(settings, tmp_path / "backup")
    assert manifest.database == "sqlite"
    assert set(manifest.files) == {"redress.db", "keys/evidence-master.key"}
    with pytest.raises(BackupError, match="not an empty folder"):
        create_backup(settings, tmp_path / "backup")
    # Restoring over a home with data needs --force.
    with pytest.raises(BackupError, match="already exists"):
        restore_backup(tmp_path / "backup", settings)
    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "backup", damaged)
    (damaged / "keys" / "evidence-master.key").write_text('{"other": 1}')
    with pytest.raises(BackupError, match="does not match its SHA-256"):
        read_manifest(damaged)
    partial = tmp_path / "partial"
    shutil.copytree(tmp_path / "backup", partial)
    (partial / "redress.db").unlink()
    with pytest.raises(BackupError, match="missing from the backup"):
        restore_backup(partial, Settings(home=tmp_path / "elsewhere"))
    assert not (tmp_path / "elsewhere" / "redress.db").exists()
