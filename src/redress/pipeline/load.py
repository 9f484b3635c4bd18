"""``redress bench load``: a bounded, open-loop load test of `redress serve` on loopback.

It starts `redress serve` in a temporary home (SQLite, embedded queue; or the
database and broker of the settings, with ``--use-settings``), with a bank of
PDQ hashes, and for ``--duration`` seconds sends:

- hash lookups at ``--lookup-rate`` hashes/s, sent as ``POST /api/v1/scan/batch``
  requests of ``--lookup-batch`` items (default 100, as a platform scanning at
  scale sends them and as ``redress bench pipeline`` times them; ``1`` sends
  each hash alone to ``POST /api/v1/scan``),
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
import contextlib
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
    per_request: int
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
    server_cpu_s: float
    generator_cpu_s: float
    samples: tuple[MemorySample, ...] = field(default=())
    workers: int = 0
    workers_cpu_s: float = 0.0
    database: str = "sqlite"
    processes: int = 1

    def to_json(self) -> str:
        """The report as JSON (samples included)."""
        return json.dumps(asdict(self), indent=2)


class _Stream:
    def __init__(self, name: str, rate: float, max_inflight: int, per_request: int = 1) -> None:
        self.name = name
        self.rate = rate  # items per second; a request carries ``per_request`` items
        self.per_request = per_request
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
            per_request=self.per_request,
            due=self.due,
            sent=self.sent,
            ok=self.ok,
            refused=self.refused,
            errors=self.errors,
            not_sent=self.not_sent,
            achieved_per_s=round(self.ok * self.per_request / seconds, 1) if seconds else 0.0,
            p50_ms=pct(0.50),
            p95_ms=pct(0.95),
            p99_ms=pct(0.99),
            error_samples=tuple(self.error_samples[:5]),
        )


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/PID/stat`` after the name (empty if it is gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []  # the process is gone, or no /proc (not Linux)


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the processes of `redress serve --processes N`)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        fields = _stat(int(entry.name))
        if fields:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(parents.get(current, []))
    return found


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process and its descendants (all their threads)
    have used."""
    ticks = 0
    for member in _tree(pid):
        fields = _stat(member)
        if fields:
            # Fields 14 and 15 of stat(5), counted from the state field (3) after the name.
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _multipart(filename: str, data: bytes) -> tuple[str, bytes]:
    """A multipart/form-data body holding one JPEG as the ``file`` field (RFC 7578)."""
    boundary = f"redress-load-{os.urandom(8).hex()}"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", head + data + tail


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mib(pid: int) -> float:
    """Resident memory of the process and its descendants."""
    total = 0.0
    for member in _tree(pid):
        # A process gone meanwhile (or no /proc: not Linux) adds nothing.
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024.0
    return total


def memory_slope(samples: Sequence[MemorySample]) -> float:
    """Least-squares slope of RSS over time, in MiB per minute (0 with fewer than 3)."""
    if len(samples) < 3:
        return 0.0
    t = np.array([s.seconds for s in samples]) / 60.0
    rss = np.array([s.rss_mib for s in samples])
    return round(float(np.polyfit(t, rss, 1)[0]), 3)


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes


class LoopbackPool:
    """Keep-alive HTTP/1.1 connections to one server, sending requests encoded in advance.

    The generator shares the machine with the server, so its own CPU per request must
    be a small fraction of the server's: httpx spent about 7 ms of CPU per upload, as
    much as the server spent hashing and deciding it. Idle connections older than
    ``idle_seconds`` are closed rather than reused, before the server's keep-alive
    timeout (uvicorn: 5 s) can close one under a request.
    """

    def __init__(self, host: str, port: int, *, idle_seconds: float = 2.0) -> None:
        self.host, self.port, self.idle_seconds = host, port, idle_seconds
        self._idle: list[tuple[float, asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._closing: list[asyncio.StreamWriter] = []

    async def send(self, request: bytes, timeout: float = 30.0) -> _Answer:
        """Send one whole request; the answer's status and body."""
        now = time.monotonic()
        while self._idle:
            since, reader, writer = self._idle.pop()
            if now - since < self.idle_seconds:
                break
            self._close(writer)
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(request)
            answer, keep = await asyncio.wait_for(_read_answer(reader), timeout)
        except BaseException:
            self._close(writer)
            raise
        if keep:
            self._idle.append((time.monotonic(), reader, writer))
        else:
            self._close(writer)
        return answer

    def _close(self, writer: asyncio.StreamWriter) -> None:
        writer.close()
        self._closing.append(writer)

    async def aclose(self) -> None:
        """Close every connection and wait until each is closed."""
        for _, _, writer in self._idle:
            self._close(writer)
        self._idle.clear()
        for writer in self._closing:
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        self._closing.clear()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[_Answer, bool]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(head[0].split(" ", 2)[1])
    fields = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        fields[name.strip().lower()] = value.strip().lower()
    if "content-length" not in fields:  # uvicorn sends it on every answer Redress makes
        raise ValueError(f"answer {status} without Content-Length")
    body = await reader.readexactly(int(fields["content-length"]))
    return _Answer(status, body), fields.get("connection") != "close"


def _request(path: str, token: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _fire(stream: _Stream, pool: LoopbackPool, due_at: float, request: bytes) -> None:
    try:
        stream.sent += 1
        answer = await pool.send(request)
        elapsed = time.perf_counter() - due_at
        if answer.status in (200, 202):
            stream.ok += 1
            stream.latencies.append(elapsed)
        elif answer.status in (429, 503):
            stream.refused += 1
        else:
            stream.errors += 1
            stream.error_samples.append(f"{answer.status} {answer.body[:200]!r}")
    except (OSError, EOFError, ValueError, TimeoutError, asyncio.IncompleteReadError) as exc:
        stream.errors += 1
        stream.error_samples.append(f"{type(exc).__name__}: {exc}")
    finally:
        stream.slots.release()


async def _drive(
    stream: _Stream,
    pool: LoopbackPool,
    requests: Sequence[bytes],
    duration: float,
    started: float,
    tasks: set[asyncio.Task[None]],
) -> None:
    if stream.rate <= 0:
        return
    interval = stream.per_request / stream.rate
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
            request = requests[n % len(requests)]
            task = asyncio.create_task(_fire(stream, pool, due_at, request))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        n += 1


def lookup_requests(token: str, queries: Sequence[bytes], per_request: int) -> list[bytes]:
    """Every distinct lookup request for ``queries``, ``per_request`` hashes each."""
    if per_request == 1:
        return [
            _request(
                "/api/v1/scan", token, "application/json", json.dumps({"pdq": [q.hex()]}).encode()
            )
            for q in queries
        ]
    out = []
    for first in range(0, len(queries) - per_request + 1, per_request):
        items = [{"pdq": [q.hex()]} for q in queries[first : first + per_request]]
        body = json.dumps({"items": items}).encode()
        out.append(_request("/api/v1/scan/batch", token, "application/json", body))
    return out


async def _run(
    port: int,
    token: str,
    pid: int,
    queries: list[bytes],
    photos: list[bytes],
    *,
    duration: float,
    lookup_rate: float,
    lookup_batch: int,
    media_rate: float,
    max_inflight: int,
    sample_seconds: float,
) -> tuple[list[_Stream], list[MemorySample], float]:
    lookups = _Stream("hash lookups", lookup_rate, max_inflight, lookup_batch)
    media = _Stream("media uploads", media_rate, max_inflight)
    samples: list[MemorySample] = []
    pool = LoopbackPool("127.0.0.1", port)
    try:
        # Every request is encoded once, before the clock starts.
        lookup_bodies = lookup_requests(token, queries, lookup_batch)
        uploads = [
            _request("/api/v1/scan", token, *_multipart(f"{i}.jpg", data))
            for i, data in enumerate(photos)
        ]
        for n in range(50):  # warm the connections and the server's code paths
            await pool.send(lookup_bodies[n % len(lookup_bodies)])
        tasks: set[asyncio.Task[None]] = set()
        started = time.perf_counter()

        async def sample() -> None:
            while time.perf_counter() - started < duration:
                samples.append(MemorySample(round(time.perf_counter() - started, 2), _rss_mib(pid)))
                await asyncio.sleep(sample_seconds)

        await asyncio.gather(
            _drive(lookups, pool, lookup_bodies, duration, started, tasks),
            _drive(media, pool, uploads, duration, started, tasks),
            sample(),
        )
        if tasks:
            await asyncio.wait(set(tasks), timeout=60)
        seconds = time.perf_counter() - started
    finally:
        await pool.aclose()
    samples.append(MemorySample(round(seconds, 2), _rss_mib(pid)))
    return [lookups, media], samples, seconds


def run_load(
    settings: Settings,
    *,
    duration: float = 600.0,
    lookup_rate: float = 2000.0,
    lookup_batch: int = 100,
    media_rate: float = 200.0,
    bank_size: int = 10_000,
    max_inflight: int = 256,
    sample_seconds: float = 5.0,
    use_settings: bool = False,
    workers: int = 0,
    processes: int = 1,
) -> LoadReport:
    """Start a server (and ``workers`` `redress worker` processes, when a broker is
    configured), drive it for ``duration`` seconds, stop them, and report."""
    if workers and not (use_settings and settings.broker_url):
        raise ValueError("workers need --use-settings and REDRESS_BROKER_URL (Redis)")
    from sqlalchemy import func, make_url, select
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
        started_workers = _start_workers(workers, env, Path(scratch))
        with log.open("wb") as out:
            command = [sys.executable, "-m", "redress", "serve", "--port", str(port)]
            command += ["--processes", str(processes)]
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
                with contextlib.suppress(httpx.TransportError):  # not listening yet: poll again
                    if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("redress serve did not become ready in 120 s")
                time.sleep(0.2)
            load_before = os.getloadavg()
            cpu_before = _cpu_seconds(server.pid)
            workers_before = sum(_cpu_seconds(w.pid) for w in started_workers)
            generator_before = time.process_time()
            streams, samples, seconds = asyncio.run(
                _run(
                    port,
                    token,
                    server.pid,
                    queries,
                    photos,
                    duration=duration,
                    lookup_rate=lookup_rate,
                    lookup_batch=lookup_batch,
                    media_rate=media_rate,
                    max_inflight=max_inflight,
                    sample_seconds=sample_seconds,
                )
            )
            load_after = os.getloadavg()
            server_cpu = _cpu_seconds(server.pid) - cpu_before
            workers_cpu = sum(_cpu_seconds(w.pid) for w in started_workers) - workers_before
            generator_cpu = time.process_time() - generator_before
        finally:
            for process in [server, *started_workers]:
                _stop(process)
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
        server_cpu_s=round(server_cpu, 1),
        generator_cpu_s=round(generator_cpu, 1),
        samples=tuple(samples),
        workers=workers,
        workers_cpu_s=round(workers_cpu, 1),
        database=make_url(settings.effective_database_url).get_backend_name(),
        processes=processes,
    )


def _start_workers(count: int, env: dict[str, str], scratch: Path) -> list[subprocess.Popen[bytes]]:
    """``count`` one-process workers (``--pool solo``, not supervised, so that the CPU
    read off each PID is all of its work); their output goes to ``worker-N.log``."""
    started = []
    for n in range(count):
        with (scratch / f"worker-{n}.log").open("wb") as out:
            started.append(
                subprocess.Popen(  # noqa: S603 - our own interpreter and command
                    [
                        *(sys.executable, "-m", "redress", "worker", "--no-supervise"),
                        *("--pool", "solo", "--concurrency", "1", "--loglevel", "WARNING"),
                    ],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    return started


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a warm shutdown), then SIGKILL after a minute."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def print_report(report: LoadReport) -> None:
    """The report as lines of text, each figure beside its target."""
    typer.echo(f"machine: {report.machine}")
    typer.echo(f"load average before {report.load_before}, after {report.load_after}")
    typer.echo(
        f"database: {report.database}; {report.processes} server process(es); "
        + (f"{report.workers} redress workers" if report.workers else "embedded queue")
    )
    typer.echo(f"duration: {report.duration_s} s")
    for s in report.streams:
        target = TARGETS["lookups_per_s"] if s.name == "hash lookups" else TARGETS["media_per_s"]
        unit = f" in requests of {s.per_request}" if s.per_request > 1 else ""
        typer.echo(
            f"{s.name}: asked {s.rate:g}/s{unit} (target {target:g}/s), "
            f"answered {s.achieved_per_s}/s ({s.achieved_per_s / target:.2f}x target); "
            f"due {s.due}, sent {s.sent}, ok {s.ok}, refused {s.refused}, errors {s.errors}, "
            f"not sent {s.not_sent}; p50 {s.p50_ms} ms, p95 {s.p95_ms} ms, p99 {s.p99_ms} ms"
        )
        for sample in s.error_samples:
            typer.echo(f"  error: {sample}")
    typer.echo(
        f"lookup p95 target {TARGETS['lookup_p95_ms']:g} ms (per request); "
        f"media items processed during the run: {report.media_processed}"
    )
    # CPU time, unlike the rates, does not depend on what else the machine runs: it
    # says what the rates would be with the server's cores to itself.
    typer.echo(
        f"server CPU {report.server_cpu_s} s over {report.duration_s} s "
        f"({report.server_cpu_s / report.duration_s:.2f} cores); "
        + (
            f"{report.workers} workers CPU {report.workers_cpu_s} s "
            f"({report.workers_cpu_s / report.duration_s:.2f} cores); "
            if report.workers
            else ""
        )
        + "generator CPU "
        f"{report.generator_cpu_s} s ({report.generator_cpu_s / report.duration_s:.2f} cores)"
        if report.duration_s
        else f"server CPU {report.server_cpu_s} s, generator CPU {report.generator_cpu_s} s"
    )
    typer.echo(
        f"server RSS {report.rss_start_mib} MiB after warm-up -> {report.rss_end_mib} MiB; "
        f"slope {report.rss_slope_mib_per_min} MiB/min over {len(report.samples)} samples"
    )
