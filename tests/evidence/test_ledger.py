"""The ledger on SQLite and PostgreSQL: appends, checkpoints, proofs and concurrent writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from redress.evidence.checkpoint import open_note
from redress.evidence.errors import (
    BadCaptureError,
    CanonicalJsonError,
    EvidenceNotFoundError,
    LedgerConflictError,
)
from redress.evidence.merkle import Frontier, leaf_hash, verify_consistency, verify_inclusion

from .conftest import EvidenceEnv

REPO = Path(__file__).resolve().parents[2]


def _all_bodies(env: EvidenceEnv) -> list[bytes]:
    with env.service() as service:
        size = service.ledger.size()
        return [e.body for e in service.ledger.entries(range(size))]


def test_entries_are_canonical_salted_and_numbered(env: EvidenceEnv) -> None:
    with env.service() as service:
        first = service.record_event("review:match:confirmed", "moderator:7", {"match": "m1"})
        second = service.record_event("review:match:confirmed", "moderator:7", {"match": "m1"})
    doc = json.loads(first.body)
    assert doc["seq"] == 0
    assert second.seq == 1
    assert doc["kind"] == "review:match:confirmed"
    assert doc["actor"] == "moderator:7"
    assert doc["facts"] == {"match": "m1"}
    assert doc["time"].endswith("Z")
    # Same facts, different salt: the leaves do not reveal that two entries say the same thing.
    assert json.loads(second.body)["salt"] != doc["salt"]
    assert first.body == json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def test_bad_kinds_and_facts_are_refused_without_writing(env: EvidenceEnv) -> None:
    with env.service() as service:
        with pytest.raises(BadCaptureError, match="colon-separated"):
            service.record_event("no kind", "a", {})
        with pytest.raises(BadCaptureError, match=r"evidence domain"):
            service.record_event("evidence:item:captured", "a", {})
        with pytest.raises(CanonicalJsonError):
            service.record_event("review:x:y", "a", {"n": float("inf")})
        assert service.ledger.size() == 0


def test_checkpoints_signed_at_the_interval_and_root_matches(env: EvidenceEnv) -> None:
    with env.service() as service:
        for i in range(9):
            service.record_event("pipeline:scan:matched", "pipeline", {"i": i})
        ledger = service.ledger
        assert ledger.checkpoint_sizes() == [4, 8]
        signed = ledger.signed_checkpoint(8)
        checkpoint = open_note(signed.note, ledger.signer.origin, ledger.signer.public_key)
        assert checkpoint.size == 8
        assert checkpoint.root == ledger.root(8)
    bodies = _all_bodies(env)
    frontier = Frontier.empty()
    for body in bodies[:8]:
        frontier, _ = frontier.append(leaf_hash(body))
    assert frontier.root() == checkpoint.root


def test_proofs_from_the_store_verify(env: EvidenceEnv) -> None:
    with env.service() as service:
        for i in range(13):
            service.record_event("pipeline:scan:matched", "pipeline", {"i": i})
        ledger = service.ledger
        bodies = [e.body for e in ledger.entries(range(13))]
        for size in (1, 5, 8, 13):
            root = ledger.root(size)
            for seq in range(size):
                proof = ledger.inclusion_proof(seq, size)
                assert verify_inclusion(leaf_hash(bodies[seq]), seq, size, proof.hashes, root)
            for old in range(1, size + 1):
                cons = ledger.consistency_proof(old, size)
                assert verify_consistency(old, size, ledger.root(old), root, cons.hashes)
        with pytest.raises(EvidenceNotFoundError):
            ledger.inclusion_proof(13, 13)
        with pytest.raises(EvidenceNotFoundError):
            ledger.consistency_proof(3, 14)


def test_rolled_back_append_leaves_no_trace(env: EvidenceEnv) -> None:
    def append_then_fail() -> None:
        with env.service() as service:
            service.record_event("review:match:confirmed", "m", {})
            raise RuntimeError("the edge rolls back")

    with pytest.raises(RuntimeError):
        append_then_fail()
    with env.service() as service:
        assert service.ledger.size() == 0
        entry = service.record_event("review:match:confirmed", "m", {})
        assert entry.seq == 0


_WORKER = """
import sys
from sqlalchemy.orm import Session
from redress.config import Settings
from redress.evidence.service import build_evidence_service
from redress.evidence.store import SqlEvidenceStore
from redress.store.db import make_engine

url, home, worker, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
settings = Settings(home=home, database_url=url, evidence_checkpoint_interval=4)
engine = make_engine(url)
for i in range(count):
    with Session(engine) as session, session.begin():
        service = build_evidence_service(SqlEvidenceStore(session), settings)
        service.record_event("test:writer:appended", f"worker-{worker}", {"i": i})
engine.dispose()
"""


def test_concurrent_writers_in_separate_processes_never_fork_the_log(env: EvidenceEnv) -> None:
    with env.service() as service:  # create the keys once, before the race
        service.ledger.size()
    workers, count = 4, 15
    child_env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _WORKER,
                env.settings.effective_database_url,
                str(env.settings.home),
                str(w),
                str(count),
            ],
            env=child_env,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    for proc in procs:
        _, err = proc.communicate()
        assert proc.returncode == 0, err
    bodies = _all_bodies(env)
    assert len(bodies) == workers * count
    docs = [json.loads(b) for b in bodies]
    assert [d["seq"] for d in docs] == list(range(workers * count))
    for w in range(workers):  # each writer's entries kept their order
        mine = [d["facts"]["i"] for d in docs if d["actor"] == f"worker-{w}"]
        assert mine == list(range(count))
    frontier = Frontier.empty()
    for body in bodies:
        frontier, _ = frontier.append(leaf_hash(body))
    with env.service() as service:
        assert service.ledger.root() == frontier.root()
        sizes = service.ledger.checkpoint_sizes()
        assert sizes == list(range(4, workers * count + 1, 4))
        for size in sizes:
            assert service.ledger.signed_checkpoint(size).checkpoint.root == service.ledger.root(
                size
            )


def test_a_taken_sequence_number_is_a_conflict_not_a_fork(env: EvidenceEnv) -> None:
    with env.service() as service:
        first = service.record_event("review:match:confirmed", "m", {})
    # A writer that skipped the head lock and reused seq 0 is refused by the key.
    with (
        pytest.raises(LedgerConflictError, match="taken by another writer"),
        env.service() as service,
    ):
        service.store.append_entries([first], [], 1, leaf_hash(first.body))
    with env.service() as service:
        assert service.ledger.size() == 1
