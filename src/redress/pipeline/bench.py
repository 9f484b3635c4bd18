"""``redress bench pipeline``: end-to-end items/s and p50/p95 latency of the pipeline.

(a) hash lookups over the REST API (in-process ASGI, single and batched);
(b) media scans with the embedded queue on SQLite (Telegram-like JPEG photos);
(c) media scans with PostgreSQL + Redis + 2 Celery workers (when both answer).

Anchor: Hasher-Matcher-Actioner's lookup endpoint is not installable from the
package registry, so the anchor is the index issue's reference: FAISS
``IndexBinaryMultiHash(256, 16, 16)`` range lookups at radius 31 over the same
bank, measured in the same run.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import numpy as np
import numpy.typing as npt
import typer
from sqlalchemy import Engine, create_engine, func, select
from sqlalchemy.orm import Session

from redress.config import Settings
from redress.pipeline.keys import ApiKeyService, Scope
from redress.pipeline.models import ScanItem
from redress.signals.types import SignalKind
from redress.store.db import make_engine
from redress.store.interfaces import BankPurpose, EntrySource
from redress.store.migrate import upgrade
from redress.store.service import BankService
from redress.store.store import bulk_upsert_hashes

BATCH = 100
WARMUP = 10
TARGETS = {"lookups_per_s": 2000.0, "media_per_s": 200.0, "lookup_p95_ms": 20.0}


@dataclass(frozen=True)
class Figure:
    """One measured figure."""

    name: str
    items: int
    seconds: float
    per_second: float
    p50_ms: float | None
    p95_ms: float | None
    # CPU time (user + system, every thread of the processes doing the work: the
    # benchmark process, and the Celery workers for (c)) per item, over the timed part.
    # On a shared machine this says what an item costs better than items/s does.
    cpu_ms_per_item: float | None = None


def _figure(
    name: str,
    items: int,
    seconds: float,
    latencies: Sequence[float],
    cpu_seconds: float | None = None,
) -> Figure:
    ms = sorted(x * 1000 for x in latencies)
    p50 = statistics.median(ms) if ms else None
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))] if ms else None
    cpu = cpu_seconds * 1000 / items if cpu_seconds is not None and items else None
    return Figure(name, items, seconds, items / seconds if seconds else 0.0, p50, p95, cpu)


def _cpu_seconds(pids: Sequence[int] = ()) -> float:
    """CPU seconds used so far by this process (all threads) and by ``pids``."""
    total = time.process_time()
    ticks = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone, or no /proc: counted as nothing
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def _bank_hashes(size: int) -> npt.NDArray[np.uint8]:
    return np.random.default_rng(5).integers(0, 256, (size, 32), dtype=np.uint8)


def _queries(bank: npt.NDArray[np.uint8], count: int) -> list[bytes]:
    """Half near copies of bank hashes (a few bits flipped), half random hashes."""
    rng = np.random.default_rng(6)
    out = []
    for n in range(count):
        if n % 2 == 0:
            row = bank[rng.integers(0, len(bank))].copy()
            for bit in rng.choice(256, size=8, replace=False):
                row[bit // 8] ^= 1 << (bit % 8)
            out.append(row.tobytes())
        else:
            out.append(rng.integers(0, 256, 32, dtype=np.uint8).tobytes())
    return out


def _seed(url: str, bank: npt.NDArray[np.uint8]) -> None:
    upgrade(url)
    engine = make_engine(url)
    try:
        with Session(engine) as session, session.begin():
            created = BankService(session).create("bench-confirmed", BankPurpose.VICTIM_CASES)
            values = [row.tobytes() for row in bank]
            bulk_upsert_hashes(
                session,
                created.id,
                SignalKind.PDQ,
                values,
                [100] * len(values),
                [None] * len(values),
                EntrySource.IMPORT,
            )
    finally:
        engine.dispose()


def _key(settings: Settings) -> str:
    engine = make_engine(settings.effective_database_url)
    try:
        with Session(engine) as session, session.begin():
            created = ApiKeyService(session).create(
                "bench", frozenset({Scope.SCAN}), rate_per_second=1e9, rate_burst=10**9
            )
        return created.token
    finally:
        engine.dispose()


def telegram_like_photos(count: int, size: tuple[int, int] = (1280, 960)) -> list[bytes]:
    """Distinct JPEG photos shaped like Telegram's (1280 px long side, quality 87)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(7)
    w, h = size
    gradient = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, axis=0)
    photos = []
    for _ in range(count):
        tint = rng.integers(0, 256, 3)
        base = np.stack([(gradient * (c / 255.0)) for c in tint], axis=-1).astype(np.uint8)
        image = Image.fromarray(base, "RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(12):
            x0, y0 = int(rng.integers(0, w - 50)), int(rng.integers(0, h - 50))
            x1, y1 = x0 + int(rng.integers(40, 400)), y0 + int(rng.integers(40, 300))
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            draw.ellipse((x0, y0, x1, y1), fill=colour)
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=87)
        photos.append(out.getvalue())
    return photos


async def _serve_lookups(
    settings: Settings, token: str, queries: list[bytes]
) -> tuple[Figure, Figure]:
    from redress.web.app import create_app

    app = create_app(settings)
    headers = {"Authorization": f"Bearer {token}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for q in queries[:20]:  # warm up
                await client.post("/api/v1/scan", json={"pdq": [q.hex()]}, headers=headers)
            latencies = []
            began, cpu = time.perf_counter(), _cpu_seconds()
            for q in queries:
                t0 = time.perf_counter()
                r = await client.post("/api/v1/scan", json={"pdq": [q.hex()]}, headers=headers)
                latencies.append(time.perf_counter() - t0)
                r.raise_for_status()
            single = _figure(
                "api lookups, one per request",
                len(queries),
                time.perf_counter() - began,
                latencies,
                _cpu_seconds() - cpu,
            )
            latencies = []
            began, cpu = time.perf_counter(), _cpu_seconds()
            for start in range(0, len(queries), BATCH):
                chunk = queries[start : start + BATCH]
                t0 = time.perf_counter()
                r = await client.post(
                    "/api/v1/scan/batch",
                    json={"items": [{"pdq": [q.hex()]} for q in chunk]},
                    headers=headers,
                )
                elapsed = time.perf_counter() - t0
                r.raise_for_status()
                latencies.extend([elapsed] * len(chunk))
            batched = _figure(
                f"api lookups, batches of {BATCH}",
                len(queries),
                time.perf_counter() - began,
                latencies,
                _cpu_seconds() - cpu,
            )
    return single, batched


def _media_latencies(url: str, since: dt.datetime) -> tuple[int, float, list[float]]:
    engine = create_engine(url) if url.startswith("postgresql") else make_engine(url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(ScanItem.created_at, ScanItem.finished_at).where(
                    ScanItem.mode == "media", ScanItem.created_at >= since
                )
            ).all()
    finally:
        engine.dispose()
    done = [(_utc(a), _utc(b)) for a, b in rows if b is not None]
    if not done:
        return 0, 0.0, []
    first = min(a for a, _ in done)
    last = max(b for _, b in done)
    return len(done), (last - first).total_seconds(), [(b - a).total_seconds() for a, b in done]


def _utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _count_pending(engine: Engine) -> int:
    with Session(engine) as session:
        return int(
            session.scalar(
                select(func.count()).select_from(ScanItem).where(ScanItem.status == "queued")
            )
            or 0
        )


async def _submit_media(
    settings: Settings,
    token: str,
    photos: list[bytes],
    name: str,
    workers: Sequence[int] = (),
) -> Figure:
    from redress.web.app import create_app

    app = create_app(settings)
    headers = {"Authorization": f"Bearer {token}"}
    url = settings.effective_database_url
    # One engine for the polling below (its cost counts in the CPU figure).
    engine = create_engine(url) if url.startswith("postgresql") else make_engine(url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            sem = anyio.Semaphore(8)

            async def one(data: bytes, n: int) -> None:
                async with sem:
                    while True:
                        r = await client.post(
                            "/api/v1/scan",
                            files={"file": (f"p{n}.jpg", data, "image/jpeg")},
                            headers=headers,
                        )
                        if r.status_code != 503:
                            r.raise_for_status()
                            return
                        await anyio.sleep(0.05)

            # Warm up (workers started, index loaded, code paths hot), then time the rest.
            warmup, timed = photos[:WARMUP], photos[WARMUP:]
            async with anyio.create_task_group() as tg:
                for n, data in enumerate(warmup):
                    tg.start_soon(one, data, n)
            while _count_pending(engine):
                await anyio.sleep(0.05)
            since = dt.datetime.now(dt.UTC)
            cpu = _cpu_seconds(workers)
            async with anyio.create_task_group() as tg:
                for n, data in enumerate(timed):
                    tg.start_soon(one, data, WARMUP + n)
            # Wait for the queue to finish (the embedded threads or the Celery workers).
            while _count_pending(engine):
                await anyio.sleep(0.05)
            cpu = _cpu_seconds(workers) - cpu
    engine.dispose()
    items, seconds, latencies = _media_latencies(settings.effective_database_url, since)
    return _figure(name, items, seconds, latencies, cpu)


def _faiss_anchor(
    bank: npt.NDArray[np.uint8], queries: list[bytes]
) -> tuple[Figure, Figure] | None:
    try:
        import faiss
    except ImportError:
        return None
    index = faiss.IndexBinaryMultiHash(256, 16, 16)
    index.add(bank)
    arr = np.frombuffer(b"".join(queries), dtype=np.uint8).reshape(-1, 32)
    latencies = []
    began = time.perf_counter()
    for row in arr:
        t0 = time.perf_counter()
        index.range_search(row[None, :], 32)  # radius is exclusive: distance <= 31
        latencies.append(time.perf_counter() - t0)
    single = _figure(
        "faiss MultiHash(256,16,16), one lookup", len(arr), time.perf_counter() - began, latencies
    )
    began = time.perf_counter()
    index.range_search(arr, 32)
    seconds = time.perf_counter() - began
    batched = _figure("faiss MultiHash(256,16,16), one batch", len(arr), seconds, [])
    return single, batched


def _services_up(settings: Settings) -> tuple[str, str] | None:
    admin = os.environ.get(
        "REDRESS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    broker = os.environ.get("REDRESS_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    try:
        import redis

        redis.Redis.from_url(broker).ping()
        engine = create_engine(admin)
        with engine.connect():
            pass
        engine.dispose()
    except Exception:  # noqa: BLE001 - a missing service skips the figure, with the reason
        return None
    return admin, broker


def _celery_figure(
    base: Settings, bank: npt.NDArray[np.uint8], photos: list[bytes], admin: str, broker: str
) -> Figure:
    import redis

    name = f"redress_bench_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = admin.rsplit("/", 1)[0] + "/" + name
    workers: list[subprocess.Popen[bytes]] = []
    try:
        redis.Redis.from_url(broker).flushdb()
        settings = base.model_copy(update={"database_url": url, "broker_url": broker})
        _seed(url, bank)
        token = _key(settings)
        env = {
            **os.environ,
            "REDRESS_HOME": str(settings.home),
            "REDRESS_DATABASE_URL": url,
            "REDRESS_BROKER_URL": broker,
        }
        for _ in range(2):
            workers.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "redress",
                        "worker",
                        "--pool",
                        "solo",
                        "--concurrency",
                        "1",
                        "--loglevel",
                        "WARNING",
                    ],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )
        return anyio.run(
            _submit_media,
            settings,
            token,
            photos,
            "media, PostgreSQL + Redis + 2 Celery workers",
            [p.pid for p in workers],
        )
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        engine.dispose()


def run_bench(
    settings: Settings,
    *,
    as_json: bool,
    lookups: int,
    media: int,
    bank_size: int,
    celery: bool,
) -> dict[str, Any]:
    """Run the benchmark and print it (a table, or JSON with ``as_json``)."""
    load_before = [round(x, 2) for x in os.getloadavg()]
    bank = _bank_hashes(bank_size)
    queries = _queries(bank, lookups)
    figures: dict[str, Figure] = {}
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="redress-bench-") as tmp:
        home = Path(tmp)
        local = Settings(
            home=home,
            database_url=f"sqlite:///{home / 'bench.db'}",
            queue_size=max(1000, media * 2),
            pipeline_threads=settings.pipeline_threads,
            api_rate_per_second=1e9,
            api_rate_burst=10**9,
        )
        _seed(local.effective_database_url, bank)
        token = _key(local)
        single, batched = anyio.run(_serve_lookups, local, token, queries)
        figures["lookup_single"] = single
        figures["lookup_batch"] = batched
        anchor = _faiss_anchor(bank, queries)
        if anchor is not None:
            figures["anchor_single"], figures["anchor_batch"] = anchor
        else:
            notes.append("faiss-cpu not installed: no anchor")
        photos = telegram_like_photos(media + WARMUP)
        figures["media_embedded"] = anyio.run(
            _submit_media, local, token, photos, "media, embedded queue, SQLite"
        )
        if celery:
            services = _services_up(settings)
            if services is None:
                notes.append("PostgreSQL or Redis not reachable: no Celery figure")
            else:
                celery_home = home / "celery"
                celery_home.mkdir()
                figures["media_celery"] = _celery_figure(
                    local.model_copy(update={"home": celery_home}), bank, photos, *services
                )
    report = {
        "bank_size": bank_size,
        # 1, 5 and 15 minute load averages when the run began and ended.
        "load_average": {"start": load_before, "end": [round(x, 2) for x in os.getloadavg()]},
        "figures": {k: asdict(v) for k, v in figures.items()},
        "targets": TARGETS,
        "ratios": _ratios(figures),
        "notes": notes,
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        _print(report, figures)
    return report


def _ratios(figures: dict[str, Figure]) -> dict[str, float]:
    ratios = {}
    if "anchor_single" in figures:
        anchor = figures["anchor_single"].per_second
        for key in ("lookup_single", "lookup_batch"):
            ratios[f"{key}_vs_faiss_single"] = figures[key].per_second / anchor if anchor else 0.0
    ratios["lookup_batch_vs_target"] = figures["lookup_batch"].per_second / TARGETS["lookups_per_s"]
    ratios["lookup_single_vs_target"] = (
        figures["lookup_single"].per_second / TARGETS["lookups_per_s"]
    )
    if "media_embedded" in figures:
        ratios["media_embedded_vs_target"] = (
            figures["media_embedded"].per_second / TARGETS["media_per_s"]
        )
    if "media_celery" in figures:
        ratios["media_celery_vs_embedded"] = (
            figures["media_celery"].per_second / figures["media_embedded"].per_second
            if figures["media_embedded"].per_second
            else 0.0
        )
    return ratios


def _print(report: dict[str, Any], figures: dict[str, Figure]) -> None:
    typer.echo(f"redress bench pipeline  (bank of {report['bank_size']} PDQ hashes)")
    typer.echo(
        f"{'figure':48} {'items':>6} {'items/s':>10} {'p50 ms':>8} {'p95 ms':>8} {'cpu ms':>7}"
    )
    for figure in figures.values():
        p50 = f"{figure.p50_ms:.2f}" if figure.p50_ms is not None else "-"
        p95 = f"{figure.p95_ms:.2f}" if figure.p95_ms is not None else "-"
        cpu = f"{figure.cpu_ms_per_item:.2f}" if figure.cpu_ms_per_item is not None else "-"
        typer.echo(
            f"{figure.name:48} {figure.items:6d} {figure.per_second:10.1f} {p50:>8} {p95:>8}"
            f" {cpu:>7}"
        )
    for key, value in report["ratios"].items():
        typer.echo(f"ratio {key}: {value:.3f}")
    load = report["load_average"]
    typer.echo(
        f"load average (1, 5, 15 min): {load['start']} at the start, {load['end']} at the end"
    )
    typer.echo(
        "cpu ms: CPU time per item (all threads; with Celery, the workers' too) over the timed part"
    )
    typer.echo(
        f"targets: >= {TARGETS['lookups_per_s']:.0f} lookups/s, >= {TARGETS['media_per_s']:.0f} "
        f"media/s embedded, p95 lookup <= {TARGETS['lookup_p95_ms']:.0f} ms"
    )
    for note in report["notes"]:
        typer.echo(f"note: {note}")
