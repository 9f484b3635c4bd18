"""``redress bench evidence``: ledger append rate, proof cost by size, package export/verify.

Each figure is printed beside an anchor measured in the same run:

* appends/s of the ledger on SQLite (each append its own transaction, a signed
  checkpoint every 1,000 entries) beside a plain ``sqlite3`` insert of the same
  rows (same bytes, same pragmas, one transaction each) with no hashing, no
  Merkle tree and no lock;
* inclusion/consistency proof size and time at growing ledger sizes, beside
  log2(size), showing O(log n);
* export and verify time of a 100-item package, beside zipping the same bytes
  (export) and the ``bagit`` library validating the same bag (verify).
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import bagit
import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from redress.evidence.checkpoint import CheckpointSigner
from redress.evidence.crypto import MasterKeys, new_key
from redress.evidence.interfaces import (
    CaptureRequest,
    EntryDraft,
    MessageFacts,
    Trigger,
    TriggerKind,
)
from redress.evidence.ledger import Ledger
from redress.evidence.merkle import leaf_hash, verify_consistency, verify_inclusion
from redress.evidence.service import BlobStore, EvidenceService, SystemClock
from redress.evidence.store import SqlEvidenceStore
from redress.evidence.verify import verify_package
from redress.machine import cpu_model
from redress.store.db import make_engine
from redress.store.migrate import upgrade

APPEND_TARGET = 2000.0


def machine() -> dict[str, Any]:
    """A short description of the machine the figures come from."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "system": f"{platform.system()} {platform.release()}",
    }


def _facts(i: int) -> dict[str, Any]:
    return {
        "sha256": f"{i:064x}",
        "platform": "telegram",
        "chat_id": "-1001234567890",
        "message_id": str(i),
    }


def _ledger(session: Session, interval: int) -> Ledger:
    signer = CheckpointSigner(Ed25519PrivateKey.generate(), "bench.redress/evidence")
    return Ledger(SqlEvidenceStore(session), SystemClock(), signer, interval)


def bench_appends(work: Path, count: int, rounds: int = 3) -> dict[str, Any]:
    """Ledger appends/s (one transaction each) vs plain sqlite3 inserts of the same rows.

    The two are interleaved in ``rounds`` rounds and the medians reported, so a
    burst of load from elsewhere on the machine hits both sides alike.
    """
    url = f"sqlite:///{work / 'appends.db'}"
    upgrade(url)
    engine = make_engine(url)
    plain = sqlite3.connect(work / "plain.db", isolation_level=None)
    plain.execute("PRAGMA journal_mode=WAL")
    plain.execute("PRAGMA synchronous=NORMAL")
    plain.execute(
        "CREATE TABLE entries (seq INTEGER PRIMARY KEY, kind TEXT, item_id TEXT, actor TEXT, "
        "recorded_at TEXT, body BLOB)"
    )
    per_round = max(1, count // rounds)
    ledger_rates: list[float] = []
    plain_rates: list[float] = []
    done = 0
    with Session(engine) as session:
        ledger = _ledger(session, 1000)
        for _ in range(rounds):
            bodies: list[bytes] = []
            start = time.perf_counter()
            for i in range(done, done + per_round):
                with session.begin():
                    bodies.append(ledger.append("bench:item:seen", "bench", _facts(i)).body)
            ledger_rates.append(per_round / (time.perf_counter() - start))
            start = time.perf_counter()
            for i, body in enumerate(bodies, done):
                plain.execute("BEGIN")
                plain.execute(
                    "INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?)",
                    (i, "bench:item:seen", None, "bench", "2026-01-01T00:00:00Z", body),
                )
                plain.execute("COMMIT")
            plain_rates.append(per_round / (time.perf_counter() - start))
            done += per_round
        checkpoints = len(SqlEvidenceStore(session).checkpoint_sizes())
    engine.dispose()
    plain.close()
    rate = statistics.median(ledger_rates)
    anchor = statistics.median(plain_rates)
    return {
        "entries": done,
        "rounds": rounds,
        "checkpoints_signed": checkpoints,
        "appends_per_s": round(rate, 1),
        "appends_per_s_rounds": [round(r, 1) for r in ledger_rates],
        "target_per_s": APPEND_TARGET,
        "meets_target": rate >= APPEND_TARGET,
        "anchor_plain_sqlite_inserts_per_s": round(anchor, 1),
        "ratio_to_anchor": round(rate / anchor, 3),
    }


def bench_proofs(work: Path, max_size: int, samples: int = 200) -> list[dict[str, Any]]:
    """Proof size and time at 10**k entries up to ``max_size`` (built with batch appends)."""
    url = f"sqlite:///{work / 'proofs.db'}"
    upgrade(url)
    engine = make_engine(url)
    sizes = [s for s in (1_000, 10_000, 100_000, 1_000_000, 10_000_000) if s <= max_size]
    if not sizes or sizes[-1] != max_size:
        sizes.append(max_size)
    rows = []
    rng = random.Random(6)
    with Session(engine) as session:
        ledger = _ledger(session, 1_000_000_000)
        built = 0
        for size in sizes:
            while built < size:
                batch = min(10_000, size - built)
                with session.begin():
                    ledger.append_many(
                        [
                            EntryDraft("bench:item:seen", "bench", _facts(built + j))
                            for j in range(batch)
                        ]
                    )
                built += batch
            with session.begin():
                root = ledger.root(size)
                picks = [rng.randrange(size) for _ in range(samples)]
                bodies = {e.seq: e.body for e in ledger.entries(picks)}
                start = time.perf_counter()
                proofs = [ledger.inclusion_proof(seq, size) for seq in picks]
                prove_s = (time.perf_counter() - start) / samples
                start = time.perf_counter()
                ok = all(
                    verify_inclusion(leaf_hash(bodies[p.index]), p.index, size, p.hashes, root)
                    for p in proofs
                )
                check_s = (time.perf_counter() - start) / samples
                old = max(1, size // 3)
                start = time.perf_counter()
                consistency = ledger.consistency_proof(old, size)
                cons_s = time.perf_counter() - start
                ok = ok and verify_consistency(
                    old, size, ledger.root(old), root, consistency.hashes
                )
            hashes = statistics.mean(len(p.hashes) for p in proofs)
            rows.append(
                {
                    "entries": size,
                    "log2_entries": round(math.log2(size), 1),
                    "inclusion_hashes_mean": round(hashes, 1),
                    "inclusion_bytes_mean": round(hashes * 32),
                    "inclusion_prove_ms": round(prove_s * 1000, 3),
                    "inclusion_verify_ms": round(check_s * 1000, 4),
                    "consistency_hashes": len(consistency.hashes),
                    "consistency_prove_ms": round(cons_s * 1000, 3),
                    "all_verified": ok,
                }
            )
    engine.dispose()
    return rows


def bench_package(work: Path, items: int, item_bytes: int) -> dict[str, Any]:
    """Export and verify a package of ``items`` random items, against zip and bagit anchors."""
    url = f"sqlite:///{work / 'package.db'}"
    upgrade(url)
    engine = make_engine(url)
    rng = random.Random(7)
    contents = [rng.randbytes(item_bytes) for _ in range(items)]
    package = work / "package.zip"
    with Session(engine) as session, session.begin():
        store = SqlEvidenceStore(session)
        clock = SystemClock()
        signer = CheckpointSigner(Ed25519PrivateKey.generate(), "bench.redress/evidence")
        service = EvidenceService(
            store,
            Ledger(store, clock, signer, 1000),
            MasterKeys.of(new_key()),
            BlobStore(work / "blobs"),
            clock,
        )
        ids = [
            service.capture(
                CaptureRequest(
                    content=data,
                    media_type="image/jpeg",
                    message=MessageFacts(platform="telegram", chat_id="-100", message_id=str(i)),
                    trigger=Trigger(TriggerKind.MATCH, reference=f"m{i}"),
                    connector="bench",
                    operator="bench",
                )
            ).id
            for i, data in enumerate(contents)
        ]
        start = time.perf_counter()
        result = service.export(ids, package, "bench")
        export_s = time.perf_counter() - start
    engine.dispose()
    start = time.perf_counter()
    report = verify_package(package, result.key_fingerprint)
    verify_s = time.perf_counter() - start

    start = time.perf_counter()
    with zipfile.ZipFile(work / "anchor.zip", "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for i, data in enumerate(contents):
            archive.writestr(f"items/{i}.jpg", data)
    zip_s = time.perf_counter() - start
    unpacked = work / "unpacked"
    with zipfile.ZipFile(package) as archive:
        archive.extractall(unpacked)  # our own package, just written
    bag_dir = next(unpacked.iterdir())
    start = time.perf_counter()
    bagit.Bag(str(bag_dir)).validate()
    bagit_s = time.perf_counter() - start
    return {
        "items": items,
        "item_bytes": item_bytes,
        "package_bytes": package.stat().st_size,
        "export_s": round(export_s, 3),
        "anchor_plain_zip_s": round(zip_s, 3),
        "export_ratio": round(export_s / zip_s, 2),
        "verify_s": round(verify_s, 3),
        "verified": report.ok,
        "anchor_bagit_validate_s": round(bagit_s, 3),
        "verify_ratio": round(verify_s / bagit_s, 2),
    }


def run(appends: int, proof_size: int, items: int, item_bytes: int) -> dict[str, Any]:
    """Run every evidence benchmark in a scratch folder; return the figures."""
    work = Path(tempfile.mkdtemp(prefix="redress-bench-evidence-"))
    try:
        return {
            "machine": machine(),
            "appends": bench_appends(work, appends),
            "proofs": bench_proofs(work, proof_size),
            "package": bench_package(work, items, item_bytes),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _print(result: dict[str, Any]) -> None:
    m = result["machine"]
    typer.echo(
        f"machine: {m['cpu']}, {m['cores']} cores, Python {m['python']}, SQLite {m['sqlite']}"
    )
    a = result["appends"]
    typer.echo(
        f"ledger appends (SQLite, 1 transaction each, checkpoint every 1,000; median of "
        f"{a['rounds']} rounds): "
        f"{a['appends_per_s']:,.0f}/s  target >= {a['target_per_s']:,.0f}/s "
        f"({'met' if a['meets_target'] else 'NOT met'}); "
        f"anchor plain sqlite3 insert {a['anchor_plain_sqlite_inserts_per_s']:,.0f}/s; "
        f"ratio {a['ratio_to_anchor']:.2f}; {a['checkpoints_signed']} checkpoints signed"
    )
    typer.echo("proofs (mean of 200 random leaves; anchor: log2 n):")
    typer.echo(
        "  entries     log2  incl.hashes  incl.bytes  prove ms  verify ms  cons.hashes  cons ms"
    )
    for p in result["proofs"]:
        typer.echo(
            f"  {p['entries']:>9,}  {p['log2_entries']:>5}  {p['inclusion_hashes_mean']:>11}  "
            f"{p['inclusion_bytes_mean']:>10}  {p['inclusion_prove_ms']:>8}  "
            f"{p['inclusion_verify_ms']:>9}  {p['consistency_hashes']:>11}  "
            f"{p['consistency_prove_ms']:>7}"
        )
    k = result["package"]
    typer.echo(
        f"package of {k['items']} items x {k['item_bytes']:,} bytes "
        f"({k['package_bytes']:,} bytes): export {k['export_s']}s vs plain zip "
        f"{k['anchor_plain_zip_s']}s (ratio {k['export_ratio']}); "
        f"verify {k['verify_s']}s vs bagit validate {k['anchor_bagit_validate_s']}s "
        f"(ratio {k['verify_ratio']}); verified: {k['verified']}"
    )


def report(json_output: bool, appends: int, proof_size: int, items: int, item_bytes: int) -> None:
    """Run the benchmarks and print them (JSON or text)."""
    result = run(appends, proof_size, items, item_bytes)
    if json_output:
        typer.echo(json.dumps(result, indent=2))
    else:
        _print(result)


__all__ = ["machine", "report", "run"]
