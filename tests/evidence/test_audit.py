"""The store audit (`redress evidence audit`): a clean ledger verifies; each kind of damage
(a rewritten entry, a lost blob, a duplicated capture, a forged checkpoint, a partial blob
left by a full disk) is found and named."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from sqlalchemy import update

from cli_support import run_redress
from redress.evidence.audit import audit_ledger
from redress.evidence.errors import EvidenceStorageError
from redress.evidence.interfaces import EntryKind
from redress.evidence.models import CheckpointRow, LedgerEntryRow
from redress.evidence.service import BlobStore

from .conftest import EvidenceEnv, capture_request


def _fill(env: EvidenceEnv, items: int = 6) -> list[str]:
    ids = []
    with env.service() as service:
        for n in range(items):
            item = service.capture(capture_request(n))
            service.record_event("review:match:confirmed", "moderator:1", {"n": n}, item.id)
            ids.append(item.id)
        service.delete(ids[-1], "helpline:1", "victim request")
    return ids


def _codes(env: EvidenceEnv) -> set[str]:
    with env.service() as service:
        report = audit_ledger(service)
    return {failure.code for failure in report.failures}


def test_a_clean_ledger_verifies(env: EvidenceEnv) -> None:
    _fill(env)
    with env.service() as service:
        report = audit_ledger(service)
    assert report.ok, report.failures
    assert report.size == 6 * 2 + 1
    assert report.checkpoints == 3  # interval 4: sizes 4, 8, 12
    assert (report.items, report.live_items, report.decrypted) == (6, 5, 5)
    assert report.kinds[EntryKind.CAPTURE] == 6
    assert report.kinds[EntryKind.DELETION] == 1


def test_an_audit_of_a_live_ledger_reads_one_moment(env: EvidenceEnv) -> None:
    # Redress keeps appending while an operator audits (a blocked copy's evidence is
    # viewed, a decision logged): an entry committed after the audit read the head
    # belongs to a later moment, not to a ledger longer than its head.
    _fill(env)
    with env.service() as auditing:
        read_head = auditing.store.head

        def head_then_another_append() -> tuple[int, bytes]:
            head = read_head()
            with env.service() as other:
                other.record_event("review:match:confirmed", "moderator:2", {"n": 99})
            return head

        auditing.store.head = head_then_another_append  # type: ignore[method-assign]
        report = audit_ledger(auditing)
    assert report.ok, report.failures
    assert report.size == 6 * 2 + 1
    with env.service() as service:
        later = audit_ledger(service)
    assert later.ok, later.failures
    assert later.size == 6 * 2 + 2


def test_a_rewritten_entry_is_found(env: EvidenceEnv) -> None:
    _fill(env)
    with env.engine.begin() as conn:
        conn.execute(
            update(LedgerEntryRow).where(LedgerEntryRow.seq == 3).values(body=b'{"forged":true}')
        )
    assert {"ledger_entry_mismatch", "ledger_leaf_hash"} <= _codes(env)


def test_a_lost_blob_and_a_forged_checkpoint_are_found(env: EvidenceEnv) -> None:
    ids = _fill(env)
    blob = env.settings.effective_evidence_dir / "blobs" / ids[0][:2] / f"{ids[0]}.bin"
    blob.unlink()
    with env.engine.begin() as conn:
        conn.execute(update(CheckpointRow).where(CheckpointRow.size == 8).values(root=b"\0" * 32))
    assert _codes(env) == {"item_unreadable", "checkpoint_root"}


def test_a_second_capture_entry_for_one_item_is_found(env: EvidenceEnv) -> None:
    ids = _fill(env)
    with env.service() as service:
        service.ledger.append(EntryKind.CAPTURE, "telegram-bot", {"again": True}, ids[1])
    assert _codes(env) == {"item_capture_entries"}


def test_cli_audit_exits_zero_only_when_every_check_holds(sqlite_env: EvidenceEnv) -> None:
    ids = _fill(sqlite_env)
    env = {
        **os.environ,
        "REDRESS_HOME": str(sqlite_env.settings.home),
        "REDRESS_DATABASE_URL": sqlite_env.settings.effective_database_url,
        "REDRESS_EVIDENCE_CHECKPOINT_INTERVAL": "4",
    }
    ok = run_redress("evidence", "audit", env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "LEDGER VERIFIED" in ok.stdout
    blob = sqlite_env.settings.effective_evidence_dir / "blobs" / ids[2][:2] / f"{ids[2]}.bin"
    blob.write_bytes(b"not the ciphertext")
    bad = run_redress("evidence", "audit", env=env)
    assert bad.returncode == 1
    assert f"FAIL  [item_unreadable] item {ids[2]}" in bad.stdout
    assert "Traceback" not in bad.stdout + bad.stderr


def test_a_blob_that_cannot_be_written_leaves_nothing_behind(tmp_path: Path) -> None:
    # A read-only folder stands in for any OSError (a full disk is tested on a real
    # tmpfs in tests/pipeline/test_faults.py).
    root = tmp_path / "blobs"
    (root / "ab").mkdir(parents=True)
    (root / "ab").chmod(0o500)
    if os.access(root / "ab", os.W_OK):
        pytest.skip("running as root: permissions do not stop writes")
    with pytest.raises(EvidenceStorageError) as caught:
        BlobStore(root).write("ab/abcd.bin", b"x" * 100)
    assert caught.value.code == "evidence_storage_full"
    assert list((root / "ab").iterdir()) == []


def test_a_full_disk_error_is_translated_and_the_partial_file_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BlobStore(tmp_path / "blobs")
    real_fsync = os.fsync

    def full(fd: int) -> None:  # the kernel reports ENOSPC at fsync on some filesystems
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(EvidenceStorageError, match="No space left on device"):
        store.write("ab/abcd.bin", b"x" * 100)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert list((tmp_path / "blobs" / "ab").iterdir()) == []


def test_a_blob_half_written_by_a_killed_process_is_removed_at_the_next_start(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    store = BlobStore(tmp_path / "blobs")
    store.write("ab/kept.bin", b"committed")
    # A process that was killed mid-write: its temporary file stays, named after it.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    abandoned = tmp_path / "blobs" / "ab" / f".gone.bin.{dead.stdout.strip()}.tmp"
    abandoned.write_bytes(b"half")
    # A live writer's file (this test's parent process stands in for another worker).
    live = tmp_path / "blobs" / "ab" / f".busy.bin.{os.getppid()}.tmp"
    live.write_bytes(b"being written")
    assert store.remove_abandoned() == 1
    assert not abandoned.exists()
    assert live.exists()
    assert store.read("ab/kept.bin") == b"committed"
