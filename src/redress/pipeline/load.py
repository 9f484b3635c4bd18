"""``redress bench load``: a bounded, open-loop load test of `redress serve` on loopback.

It starts `redress serve` in a temporary home (SQLite, embedded queue; or the
database and broker of the settings, with ``--use-settings``), with a bank of
PDQ hashes, and for ``--duration`` seconds sends:

- hash lookups (``POST /api/v1/scan`` with one PDQ hash) at ``--lookup-rate``/s,
- media uploads (``POST /api/v1/scan`` multipart, a Telegram-sized JPEG) at
  ``--media-rate``/s,

each on a fixed schedule (open loop: a slow answer does not slow the schedule, so
latency is measured from when a request was *due*, not from when it was sent), with
at most ``--max-inflight`` requests outstanding per stream (a request due while
that many wait is counted as *not sent*, never silently delayed). Every few
seconds it samples the server's resident memory and fits a least-squares slope.

It reports, per stream: requests due, sent, answered OK, refused (429/503
back-pressure), errors (anything else), p50/p95/p99 latency; the server's RSS at
start and end and its slope in MiB per minute; the load average before and after;
and the machine. The targets (docs/pipeline.md): 2,000 lookups/s with p95 <= 20 ms,
200 media/s, zero errors, memory flat. This is a procedure, not a test: run it on
a quiet machine (docs/benchmarks.md, "Load").
"""

from __future__ import annotations

import array
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np
import typer

from redress.config import Settings
from redress.machine import describe_machine

TARGETS = {"lookups_per_s": 2000.0, "lookup_p95_ms": 20.0, "media_per_s": 200.0}


@dataclass(frozen=True)
class StreamReport:
    """What one stream of requests saw."""

    name: str
    rate: float
    due: int
    sent: int
    ok: int
    refused: int
    errors: int
    not_sent: int
    achieved_per_s: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    error_samples: tuple[str, ...] = ()


@dataclass(frozen=True)
class MemorySample:
    """The server's resident memory at one moment."""

    seconds: float
    rss_mib: float


@dataclass(frozen=True)
class LoadReport:
    """The whole run."""

    machine: str
    duration_s: float
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    streams: tuple[StreamReport, ...]
    rss_start_mib: float
    rss_end_mib: float
    rss_slope_mib_per_min: float
    media_processed: int
    samples: tuple[MemorySample, ...] = field(default=())

    def to_json(self) -> str:
        """The report as JSON (samples included)."""
        return json.dumps(asdict(self), indent=2)


class _Stream:
    def __init__(self, name: str, rate: float, max_inflight: int) -> None:
        self.name = name
        self.rate = rate
        self.slots = asyncio.Semaphore(max_inflight)
        self.latencies = array.array("d")
        self.due = self.sent = self.ok = self.refused = self.errors = self.not_sent = 0
        self.error_samples: list[str] = []

    def report(self, seconds: float) -> StreamReport:
        ms = np.sort(np.frombuffer(self.latencies, dtype=np.float64) * 1000.0)

        def pct(q: float) -> float | None:
            return round(float(ms[min(len(ms) - 1, int(q * len(ms)))]), 2) if len(ms) else None

        return StreamReport(
            name=self.name,
            rate=self.rate,
            due=self.due,
            sent=self.sent,
            ok=self.ok,
            refused=self.refused,
            errors=self.errors,
            not_sent=self.not_sent,
            achieved_per_s=round(self.ok / seconds, 1) if seconds else 0.0,
            p50_ms=pct(0.50),
            p95_ms=pct(0.95),
            p99_ms=pct(0.99),
            error_samples=tuple(self.error_samples[:5]),
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass  # the process is gone, or no /proc (not Linux)
    return 0.0


def memory_slope(samples: Sequence[MemorySample]) -> float:
    """Least-squares slope of RSS over time, in MiB per minute (0 with fewer than 3)."""
    if len(samples) < 3:
        return 0.0
    t = np.array([s.seconds for s in samples]) / 60.0
    rss = np.array([s.rss_mib for s in samples])
    return round(float(np.polyfit(t, rss, 1)[0]), 3)


async def _fire(
    stream: _Stream, client: httpx.AsyncClient, due_at: float, request: httpx.Request
) -> None:
    try:
        stream.sent += 1
        response = await client.send(request)
        elapsed = time.perf_counter() - due_at
        if response.status_code in (200, 202):
            stream.ok += 1
            stream.latencies.append(elapsed)
        elif response.status_code in (429, 503):
            stream.refused += 1
        else:
            stream.errors += 1
            stream.error_samples.append(f"{response.status_code} {response.text[:200]}")
    except httpx.HTTPError as exc:
        stream.errors += 1
        stream.error_samples.append(f"{type(exc).__name__}: {exc}")
    finally:
        stream.slots.release()


async def _drive(
    stream: _Stream,
    client: httpx.AsyncClient,
    build: object,
    duration: float,
    started: float,
    tasks: set[asyncio.Task[None]],
) -> None:
    assert callable(build)
    if stream.rate <= 0:
        return
    interval = 1.0 / stream.rate
    n = 0
    while True:
        due_at = started + n * interval
        if due_at - started >= duration:
            return
        delay = due_at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        stream.due += 1
        if stream.slots.locked():
            stream.not_sent += 1  # the server (or this generator) cannot keep up
        else:
            await stream.slots.acquire()
            task = asyncio.create_task(_fire(stream, client, due_at, build(n)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        n += 1


async def _run(
    url: str,
    token: str,
    pid: int,
    queries: list[bytes],
    photos: list[bytes],
    *,
    duration: float,
    lookup_rate: float,
    media_rate: float,
    max_inflight: int,
    sample_seconds: float,
) -> tuple[list[_Stream], list[MemorySample], float]:
    headers = {"Authorization": f"Bearer {token}"}
    # Idle connections are dropped after 2 s, before the server's 5 s keep-alive timeout
    # closes them: a request sent on a connection the server is closing fails with a
    # ReadError (the first runs counted 5 in 4,300 so; see docs/benchmarks.md).
    limits = httpx.Limits(
        max_connections=2 * max_inflight,
        max_keepalive_connections=max_inflight,
        keepalive_expiry=2.0,
    )
    lookups = _Stream("hash lookups", lookup_rate, max_inflight)
    media = _Stream("media uploads", media_rate, max_inflight)
    samples: list[MemorySample] = []
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:

        def lookup(n: int) -> httpx.Request:
            body = {"pdq": [queries[n % len(queries)].hex()]}
            return client.build_request("POST", "/api/v1/scan", json=body, headers=headers)

        def upload(n: int) -> httpx.Request:
            data = photos[n % len(photos)]
            files = {"file": (f"{n}.jpg", data, "image/jpeg")}
            return client.build_request("POST", "/api/v1/scan", files=files, headers=headers)

        for n in range(50):  # warm the connections and the server's code paths
            await client.send(lookup(n))
        tasks: set[asyncio.Task[None]] = set()
        started = time.perf_counter()

        async def sample() -> None:
            while time.perf_counter() - started < duration:
                samples.append(MemorySample(round(time.perf_counter() - started, 2), _rss_mib(pid)))
                await asyncio.sleep(sample_seconds)

        await asyncio.gather(
            _drive(lookups, client, lookup, duration, started, tasks),
            _drive(media, client, upload, duration, started, tasks),
            sample(),
        )
        if tasks:
            await asyncio.wait(set(tasks), timeout=60)
        seconds = time.perf_counter() - started
    samples.append(MemorySample(round(seconds, 2), _rss_mib(pid)))
    return [lookups, media], samples, seconds


def run_load(
    settings: Settings,
    *,
    duration: float = 600.0,
    lookup_rate: float = 2000.0,
    media_rate: float = 200.0,
    bank_size: int = 10_000,
    max_inflight: int = 256,
    sample_seconds: float = 5.0,
    use_settings: bool = False,
) -> LoadReport:
    """Start a server, drive it for ``duration`` seconds, stop it, and report."""
    from sqlalchemy import func, select
    from sqlalchemy.orm import Session

    from redress.pipeline.bench import _bank_hashes, _key, _queries, _seed, telegram_like_photos
    from redress.pipeline.models import ScanItem
    from redress.store.db import make_engine

    with tempfile.TemporaryDirectory(prefix="redress-load-") as scratch:
        if not use_settings:
            settings = Settings(home=Path(scratch) / "home")
        bank = _bank_hashes(bank_size)
        _seed(settings.effective_database_url, bank)
        token = _key(settings)
        queries = _queries(bank, 5000)
        photos = telegram_like_photos(20)
        port = _free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("REDRESS_")},
            "REDRESS_HOME": str(settings.home),
            "REDRESS_DATABASE_URL": settings.effective_database_url,
        }
        if settings.broker_url:
            env["REDRESS_BROKER_URL"] = settings.broker_url
        log = Path(scratch) / "serve.log"
        with log.open("wb") as out:
            command = [sys.executable, "-m", "redress", "serve", "--port", str(port)]
            server = subprocess.Popen(  # noqa: S603 - our own interpreter and command
                [*command, "--log-level", "warning"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if server.poll() is not None:
                    raise RuntimeError(f"redress serve exited: {log.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass  # not listening yet: poll again
                if time.monotonic() > deadline:
                    raise RuntimeError("redress serve did not become ready in 120 s")
                time.sleep(0.2)
            load_before = os.getloadavg()
            streams, samples, seconds = asyncio.run(
                _run(
                    url,
                    token,
                    server.pid,
                    queries,
                    photos,
                    duration=duration,
                    lookup_rate=lookup_rate,
                    media_rate=media_rate,
                    max_inflight=max_inflight,
                    sample_seconds=sample_seconds,
                )
            )
            load_after = os.getloadavg()
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        engine = make_engine(settings.effective_database_url)
        try:
            with Session(engine) as session:
                processed = int(
                    session.scalar(
                        select(func.count())
                        .select_from(ScanItem)
                        .where(ScanItem.mode == "media", ScanItem.status != "queued")
                    )
                    or 0
                )
        finally:
            engine.dispose()
    # The first fifth (at most 60 s) is warm-up: caches fill, the allocator settles.
    warm = min(60.0, duration / 5)
    steady = [s for s in samples if s.seconds >= warm] or samples
    return LoadReport(
        machine=describe_machine(),
        duration_s=round(seconds, 1),
        load_before=(round(load_before[0], 2), round(load_before[1], 2), round(load_before[2], 2)),
        load_after=(round(load_after[0], 2), round(load_after[1], 2), round(load_after[2], 2)),
        streams=tuple(s.report(seconds) for s in streams),
        rss_start_mib=round(steady[0].rss_mib, 1) if steady else 0.0,
        rss_end_mib=round(samples[-1].rss_mib, 1) if samples else 0.0,
        rss_slope_mib_per_min=memory_slope(steady),
        media_processed=processed,
        samples=tuple(samples),
    )


def print_report(report: LoadReport) -> None:
    """The report as lines of text, each figure beside its target."""
    typer.echo(f"machine: {report.machine}")
    typer.echo(f"load average before {report.load_before}, after {report.load_after}")
    typer.echo(f"duration: {report.duration_s} s")
    for s in report.streams:
        target = TARGETS["lookups_per_s"] if s.name == "hash lookups" else TARGETS["media_per_s"]
        typer.echo(
            f"{s.name}: asked {s.rate:g}/s (target {target:g}/s), answered {s.achieved_per_s}/s; "
            f"due {s.due}, sent {s.sent}, ok {s.ok}, refused {s.refused}, errors {s.errors}, "
            f"not sent {s.not_sent}; p50 {s.p50_ms} ms, p95 {s.p95_ms} ms, p99 {s.p99_ms} ms"
        )
        for sample in s.error_samples:
            typer.echo(f"  error: {sample}")
    typer.echo(
        f"lookup p95 target {TARGETS['lookup_p95_ms']:g} ms; "
        f"media items processed during the run: {report.media_processed}"
    )
    typer.echo(
        f"server RSS {report.rss_start_mib} MiB after warm-up -> {report.rss_end_mib} MiB; "
        f"slope {report.rss_slope_mib_per_min} MiB/min over {len(report.samples)} samples"
    )
