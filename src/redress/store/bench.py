"""``redress bench store``: bulk import rate and cold start to a ready index.

Each figure is printed beside an anchor measured in the same run on the same
database, and their ratio:

- import (rows/s): ``redress`` importing an HMA CSV file through
  :class:`~redress.store.exchange.BankImporter` (parse, validate, collapse
  duplicates, change log, checkpoints) against the driver's own bulk load of
  the same rows into a bare table (``COPY`` on PostgreSQL, ``executemany``
  on SQLite): the ceiling of what the database accepts.
- cold start (s): :meth:`~redress.store.sync.IndexFollower.start` (database
  to a ready, searchable index) against the driver reading the same rows and
  doing nothing with them; measured twice, right after the import (when
  PostgreSQL also sets hint bits on every new row) and again as a restart.
- retro-match (s): importing new PDQ hashes into a bank with retroactive
  matching against a seen-media history (a fresh :class:`RetroMatcher` on
  :class:`~redress.index.MihIndex`, as ``redress bank import`` runs it:
  reading the history, indexing it, searching, recording the matches)
  against a NumPy brute-force search of the same hashes over the same
  history, timed on a sample of queries and scaled to all of them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import typer
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from redress.config import Settings
from redress.index import MihIndex
from redress.index.interfaces import PdqIndex
from redress.machine import cpu_model
from redress.signals.types import SignalKind
from redress.store.db import make_engine
from redress.store.exchange import BankImporter, ExchangeFormat
from redress.store.interfaces import BankPurpose, EntrySource
from redress.store.migrate import upgrade
from redress.store.service import BankService, RetroMatcher
from redress.store.store import bulk_upsert_hashes
from redress.store.sync import IndexFollower, SeenFollower

DEFAULT_POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True, slots=True)
class Figure:
    """One measured figure, its anchor and the ratio figure/anchor."""

    backend: str
    name: str
    unit: str
    value: float
    anchor_name: str
    anchor: float
    size: int

    @property
    def ratio(self) -> float:
        """value / anchor."""
        return self.value / self.anchor if self.anchor else 0.0


def _write_csv(path: Path, hashes: np.ndarray, start_id: int = 0) -> None:
    with path.open("w", encoding="ascii") as f:
        for i, row in enumerate(hashes):
            f.write(f"{row.tobytes().hex()},{start_id + i},2026-01-01T00:00:00+0000,bench\n")


def _anchor_import(engine: Engine, hashes: np.ndarray) -> float:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        began = time.perf_counter()
        if engine.dialect.name == "postgresql":
            cur.execute("CREATE TEMP TABLE anchor_load (id bigint, value bytea)")
            with cur.copy("COPY anchor_load (id, value) FROM STDIN") as copy:
                for i, row in enumerate(hashes):
                    copy.write_row((i, row.tobytes()))
        else:
            cur.execute("CREATE TEMP TABLE anchor_load (id INTEGER, value BLOB)")
            cur.executemany(
                "INSERT INTO anchor_load VALUES (?, ?)",
                [(i, row.tobytes()) for i, row in enumerate(hashes)],
            )
        raw.commit()
        return len(hashes) / (time.perf_counter() - began)
    finally:
        raw.close()


def _anchor_read(engine: Engine) -> float:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        began = time.perf_counter()
        sql = "SELECT id, bank_id, value FROM bank_entry WHERE removed_at IS NULL"
        if engine.dialect.name == "postgresql":
            with cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)") as copy:
                for _block in copy:
                    pass
        else:
            cur.execute(sql)
            while cur.fetchmany(100_000):
                pass
        raw.commit()
        return time.perf_counter() - began
    finally:
        raw.close()


def _fill_seen(engine: Engine, hashes: np.ndarray) -> None:
    """Record one seen image per hash, fast (the history retroactive matching searches)."""
    now = dt.datetime.now(dt.UTC)
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        if engine.dialect.name == "postgresql":
            with cur.copy(
                "COPY seen_item (id, item_key, kind, first_seen, last_seen) FROM STDIN"
            ) as copy:
                for i in range(len(hashes)):
                    copy.write_row((i + 1, f"bench:{i + 1}", "image", now, now))
            with cur.copy(
                "COPY seen_hash (id, item_id, role, position, value, quality) FROM STDIN"
            ) as copy:
                for i, row in enumerate(hashes):
                    copy.write_row((i + 1, i + 1, "pdq", 0, row.tobytes(), 100))
            cur.execute("SELECT setval('seen_item_id_seq', %s)", (len(hashes),))
            cur.execute("SELECT setval('seen_hash_id_seq', %s)", (len(hashes),))
        else:
            stamp = now.replace(tzinfo=None).isoformat(sep=" ")
            cur.executemany(
                "INSERT INTO seen_item (id, item_key, kind, first_seen, last_seen) "
                "VALUES (?, ?, 'image', ?, ?)",
                [(i + 1, f"bench:{i + 1}", stamp, stamp) for i in range(len(hashes))],
            )
            cur.executemany(
                "INSERT INTO seen_hash (id, item_id, role, position, value, quality) "
                "VALUES (?, ?, 'pdq', 0, ?, 100)",
                [(i + 1, i + 1, row.tobytes()) for i, row in enumerate(hashes)],
            )
        raw.commit()
    finally:
        raw.close()


def _near_copies(rng: np.random.Generator, hashes: np.ndarray, flips: int) -> np.ndarray:
    """Copies of ``hashes`` with ``flips`` random bits changed in each."""
    bits = np.unpackbits(hashes, axis=1)
    for row in bits:
        where = rng.choice(256, size=flips, replace=False)
        row[where] ^= 1
    return np.packbits(bits, axis=1)


def _anchor_brute_force(history: np.ndarray, queries: np.ndarray, threshold: int) -> float:
    """Seconds a NumPy brute-force search of every query over the history would take,
    timed on (at most) 64 queries and scaled."""
    sample = queries[:64]
    words = history.view(">u8").reshape(-1, 4)
    began = time.perf_counter()
    for query in sample.view(">u8").reshape(-1, 4):
        distance = np.zeros(len(words), dtype=np.int64)
        for k in range(4):
            distance += np.bitwise_count(words[:, k] ^ query[k])
        np.flatnonzero(distance <= threshold)
    return (time.perf_counter() - began) * len(queries) / len(sample)


def bench_retro(
    backend: str, engine: Engine, *, seen: int, new: int, workdir: Path, planted: int = 1000
) -> Figure:
    """Import ``new`` PDQ hashes with retroactive matching against ``seen`` seen items."""
    rng = np.random.default_rng(13)
    history = rng.integers(0, 256, size=(seen, 32), dtype=np.uint8)
    _fill_seen(engine, history)
    fresh = rng.integers(0, 256, size=(new, 32), dtype=np.uint8)
    # Some of the new hashes are edited copies of items already seen: these must match.
    planted = min(planted, new, seen)
    fresh[:planted] = _near_copies(rng, history[rng.choice(seen, planted, replace=False)], 12)
    csv_path = workdir / f"{backend}-retro.csv"
    _write_csv(csv_path, fresh, start_id=10**9)
    with Session(engine) as session:
        BankService(session).create("retro", BankPurpose.VICTIM_CASES, pdq_threshold=31)
        session.commit()
    retro = RetroMatcher(SeenFollower(engine, MihIndex))
    began = time.perf_counter()
    report = BankImporter(engine, retro=retro, chunk_size=50_000).run(
        "retro", csv_path, ExchangeFormat.HMA_CSV
    )
    seconds = time.perf_counter() - began
    assert report.retro_matches >= planted, report
    return Figure(
        backend,
        f"retro-match {new // 1000}k new",
        "s",
        seconds,
        "NumPy brute-force search alone",
        _anchor_brute_force(history, fresh, 31),
        seen,
    )


def _fill(engine: Engine, bank_id: int, count: int, seed: int) -> None:
    """Add ``count`` random PDQ entries fast (for cold-start sizes beyond the import)."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < count:
        n = min(500_000, count - done)
        block = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
        with Session(engine) as session:
            bulk_upsert_hashes(
                session,
                bank_id,
                SignalKind.PDQ,
                [r.tobytes() for r in block],
                [None] * n,
                [None] * n,
                EntrySource.IMPORT,
            )
            session.commit()
        done += n


def bench_backend(
    backend: str,
    url: str,
    *,
    size: int,
    cold_size: int,
    workdir: Path,
    index_factory: Callable[[], PdqIndex] = MihIndex,
    retro_seen: int = 0,
    retro_new: int = 0,
    say: Callable[[str], None] = lambda _m: None,
) -> list[Figure]:
    """Measure one database; ``url`` must name an empty database."""
    upgrade(url)
    engine = make_engine(url)
    try:
        hashes = np.random.default_rng(7).integers(0, 256, size=(size, 32), dtype=np.uint8)
        csv_path = workdir / f"{backend}-hashes.csv"
        _write_csv(csv_path, hashes)
        with Session(engine) as session:
            BankService(session).create("bench", BankPurpose.EXTERNAL_EXCHANGE)
            session.commit()
        say(f"{backend}: importing {size:,} hashes")
        began = time.perf_counter()
        report = BankImporter(engine, chunk_size=50_000).run(
            "bench", csv_path, ExchangeFormat.HMA_CSV
        )
        import_rate = report.added / (time.perf_counter() - began)
        anchor_rate = _anchor_import(engine, hashes)
        figures = [
            Figure(
                backend,
                "import",
                "rows/s",
                import_rate,
                "driver COPY, bare table",
                anchor_rate,
                size,
            )
        ]
        if cold_size > size:
            say(f"{backend}: filling to {cold_size:,} entries")
            with Session(engine) as session:
                bank_id = BankService(session).get("bench").id
            _fill(engine, bank_id, cold_size - size, seed=11)
        say(f"{backend}: cold start at {cold_size:,}")
        # The first read after a bulk load also pays for the database's own bookkeeping
        # (PostgreSQL sets hint bits on every new row); a restart later does not.
        for label in ("first read after import", "cold start"):
            follower = IndexFollower(engine, index_factory)
            began = time.perf_counter()
            follower.start()
            seconds = time.perf_counter() - began
            assert follower.stats.hashes_loaded == cold_size, follower.stats
            del follower
            figures.append(
                Figure(
                    backend,
                    label,
                    "s",
                    seconds,
                    "driver read only",
                    _anchor_read(engine),
                    cold_size,
                )
            )
        if retro_seen and retro_new:
            say(f"{backend}: retroactive matching, {retro_new:,} new against {retro_seen:,} seen")
            figures.append(
                bench_retro(backend, engine, seen=retro_seen, new=retro_new, workdir=workdir)
            )
        return figures
    finally:
        engine.dispose()


def _machine() -> str:
    return (
        f"{cpu_model()}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def run_store_bench(
    settings: Settings,
    *,
    size: int,
    cold_size: int,
    postgres_admin_url: str | None,
    as_json: bool,
    retro_seen: int | None = None,
    retro_new: int | None = None,
) -> list[Figure]:
    """Run the benchmark on SQLite and (when reachable) PostgreSQL and print the figures."""
    del settings  # the benchmark always uses throwaway databases, never the configured one
    seen = size if retro_seen is None else retro_seen
    new = max(1, size // 10) if retro_new is None else retro_new
    figures: list[Figure] = []
    notes: list[str] = []
    say = (lambda m: typer.echo(m, err=True)) if not as_json else (lambda _m: None)
    with tempfile.TemporaryDirectory(prefix="redress-bench-") as tmp:
        work = Path(tmp)
        figures += bench_backend(
            "sqlite",
            f"sqlite:///{work / 'bench.db'}",
            size=size,
            cold_size=cold_size,
            workdir=work,
            retro_seen=seen,
            retro_new=new,
            say=say,
        )
        admin_url = postgres_admin_url or DEFAULT_POSTGRES
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        name = f"redress_bench_{uuid.uuid4().hex[:10]}"
        try:
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        except OperationalError as exc:
            notes.append(f"PostgreSQL skipped: {exc.orig}")
        else:
            try:
                figures += bench_backend(
                    "postgresql",
                    f"{admin_url.rsplit('/', 1)[0]}/{name}",
                    size=size,
                    cold_size=cold_size,
                    workdir=work,
                    retro_seen=seen,
                    retro_new=new,
                    say=say,
                )
            finally:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "benchmark": "store",
                    "machine": _machine(),
                    "figures": [{**asdict(f), "ratio": f.ratio} for f in figures],
                    "notes": notes,
                }
            )
        )
    else:
        typer.echo(f"machine: {_machine()}")
        for f in figures:
            typer.echo(
                f"{f.backend:10} {f.name:23} n={f.size:>10,}  {f.value:>12,.2f} {f.unit:6} "
                f"anchor ({f.anchor_name}) {f.anchor:>12,.2f}  ratio {f.ratio:.2f}"
            )
        for note in notes:
            typer.echo(note)
    return figures


__all__ = ["Figure", "bench_backend", "bench_retro", "run_store_bench"]
