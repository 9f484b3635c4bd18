"""Fault injection on the scale-out deployment: `redress serve` + `redress worker` over a
private PostgreSQL and a private Redis, with uploads arriving over HTTP all along.

Faults: PostgreSQL crashed and restarted mid-load, Redis killed and restarted mid-load
(persistence off: every queued task is lost), the API process and the workers
SIGKILLed mid-load, and REDRESS_HOME's evidence disk filling up. After each, every
upload the API accepted has exactly one outcome, every matched item exactly one
evidence item and one decision in the ledger (none lost, none duplicated), and the
ledger audit (`redress evidence audit`) verifies.

The clients behave as documented in docs/api.md: they resend an upload with the same
``Idempotency-Key`` until it is answered 202 (or 200), waiting on 429/503 and on
refused connections.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from fault_support import PrivatePostgres, PrivateRedis, ServerUnavailableError, free_port
from media_support import photo
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session

from redress.config import Settings
from redress.evidence.audit import audit_ledger
from redress.evidence.interfaces import EntryKind
from redress.evidence.models import EvidenceItemRow, LedgerEntryRow
from redress.evidence.service import build_evidence_service
from redress.evidence.store import SqlEvidenceStore
from redress.pipeline.keys import ApiKeyService, Scope
from redress.pipeline.models import ScanAction, ScanItem
from redress.signals import HashOptions, hash_bytes
from redress.signals.types import SignalKind
from redress.store.db import make_engine
from redress.store.interfaces import BankPurpose, EntryIn
from redress.store.migrate import upgrade
from redress.store.service import BankService

pytestmark = [pytest.mark.slow]
REQUIRE_SERVICES = os.environ.get("REDRESS_REQUIRE_SERVICES") == "1"
ITEMS = 200
ACTING = range(0, ITEMS, 4)  # every fourth picture is in a confirmed bank: it acts


@dataclass
class Servers:
    postgres: PrivatePostgres
    redis: PrivateRedis


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """A private PostgreSQL and Redis for this module's tests, which kill them at will."""
    try:
        postgres = PrivatePostgres()
    except ServerUnavailableError as exc:
        if REQUIRE_SERVICES:
            pytest.fail(f"cannot start a private PostgreSQL: {exc}")
        pytest.skip(f"cannot start a private PostgreSQL: {exc}")
    try:
        postgres.start()
        redis = PrivateRedis(tmp_path_factory.mktemp("redis"))
        redis.start()
    except ServerUnavailableError as exc:
        postgres.close()
        if REQUIRE_SERVICES:
            pytest.fail(f"cannot start a private server: {exc}")
        pytest.skip(f"cannot start a private server: {exc}")
    try:
        yield Servers(postgres, redis)
    finally:
        redis.close()
        postgres.close()


class Uploader:
    """Clients posting pictures over HTTP, each resent until the API accepts it."""

    def __init__(self, url: str, token: str, photos: list[bytes], clients: int = 3) -> None:
        self.url = url
        self.token = token
        self.photos = photos
        self.clients = clients
        self.accepted: dict[int, str] = {}
        self.statuses: Counter[int | str] = Counter()
        self.lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for c in range(self.clients):
            indices = range(c, len(self.photos), self.clients)
            thread = threading.Thread(target=self._run, args=(indices,), daemon=True)
            thread.start()
            self.threads.append(thread)

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), f"uploads stuck: {self.statuses}"

    @property
    def done(self) -> int:
        with self.lock:
            return len(self.accepted)

    def _run(self, indices: range) -> None:
        with httpx.Client(timeout=10) as client:
            for n in indices:
                while True:
                    try:
                        response = client.post(
                            f"{self.url}/api/v1/scan",
                            files={"file": (f"{n}.jpg", self.photos[n], "image/jpeg")},
                            headers={
                                "Authorization": f"Bearer {self.token}",
                                "Idempotency-Key": f"msg-{n}",
                            },
                        )
                    except httpx.TransportError as exc:
                        with self.lock:
                            self.statuses[type(exc).__name__] += 1
                        time.sleep(0.2)
                        continue
                    with self.lock:
                        self.statuses[response.status_code] += 1
                    if response.status_code in (200, 202):
                        with self.lock:
                            self.accepted[n] = response.json()["id"]
                        break
                    assert response.status_code in (429, 503), response.text
                    time.sleep(float(response.headers.get("Retry-After", "1")) / 4)


@dataclass
class Deployment:
    """Settings, environment and processes of one test's deployment."""

    settings: Settings
    env: dict[str, str]
    logs: Path
    api_port: int = field(default_factory=free_port)
    api: subprocess.Popen[bytes] | None = None
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        with (self.logs / "processes.log").open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "redress", *args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: SIGKILL reaches the children
            )

    def start_api(self) -> None:
        self.api = self._spawn("serve", "--port", str(self.api_port), "--log-level", "warning")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert self.api.poll() is None, self.log()
            try:
                if httpx.get(f"{self.api_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the API did not start: {self.log()}")

    def kill_api(self) -> None:
        assert self.api is not None
        os.killpg(self.api.pid, signal.SIGKILL)
        self.api.wait()

    def start_worker(self) -> None:
        self.workers.append(self._spawn("worker", "--concurrency", "2", "--loglevel", "WARNING"))

    def kill_workers(self) -> None:
        for worker in self.workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        self.workers.clear()

    def stop(self) -> None:
        for process in [*self.workers, *([self.api] if self.api else [])]:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()

    def log(self) -> str:
        path = self.logs / "processes.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""


@dataclass
class Fixture:
    deployment: Deployment
    uploader: Uploader
    servers: Servers


def _statuses(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            rows = session.execute(select(ScanItem.status, func.count()).group_by(ScanItem.status))
            return {str(s): int(n) for s, n in rows}
    finally:
        engine.dispose()


@pytest.fixture
def deployment(servers: Servers, tmp_path: Path) -> Iterator[Fixture]:
    """A fresh database on the private server, a key, a bank, the API and one worker."""
    import redis as redis_lib

    name = f"faults_{uuid.uuid4().hex[:10]}"
    admin = create_engine(servers.postgres.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    client = redis_lib.Redis.from_url(servers.redis.url)
    client.flushall()
    client.close()
    url = servers.postgres.url(name)
    upgrade(url)
    home = tmp_path / "home"
    settings = Settings(
        home=home,
        database_url=url,
        broker_url=servers.redis.url,
        broker_visibility_timeout=30,
        broker_sweep_seconds=2,
        scan_lease_seconds=5,
        queue_size=10_000,
        api_rate_per_second=10_000,
        api_rate_burst=10_000,
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REDRESS_")},
        "REDRESS_HOME": str(home),
        "REDRESS_DATABASE_URL": url,
        "REDRESS_BROKER_URL": servers.redis.url,
        "REDRESS_BROKER_VISIBILITY_TIMEOUT": "30",
        "REDRESS_BROKER_SWEEP_SECONDS": "2",
        "REDRESS_SCAN_LEASE_SECONDS": "5",
        "REDRESS_QUEUE_SIZE": "10000",
        "REDRESS_API_RATE_PER_SECOND": "10000",
        "REDRESS_API_RATE_BURST": "10000",
    }
    photos = [photo(n) for n in range(ITEMS)]
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        key = ApiKeyService(session).create("platform", frozenset({Scope.SCAN}))
        banks = BankService(session)
        banks.create("confirmed", BankPurpose.CONFIRMED_VIOLATIONS)
        entries = []
        for n in ACTING:
            pdq = hash_bytes(photos[n], HashOptions()).pdq
            assert pdq is not None
            entries.append(EntryIn(kind=SignalKind.PDQ, value=pdq.bits, quality=pdq.quality))
        banks.add("confirmed", entries)
        # The evidence keys exist before any process starts, so none races to make them.
        build_evidence_service(SqlEvidenceStore(session), settings)
    engine.dispose()
    logs = tmp_path / "logs"
    logs.mkdir()
    system = Deployment(settings, env, logs)
    uploader = Uploader("", key.token, photos)
    try:
        system.start_api()
        uploader.url = system.api_url
        system.start_worker()
        yield Fixture(system, uploader, servers)
    finally:
        system.stop()


def wait_until(condition: object, what: str, deployment: Deployment, timeout: float) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}\n{deployment.log()}")


def wait_processed(fixture: Fixture) -> None:
    url = fixture.deployment.settings.effective_database_url

    def settled() -> bool:
        return _statuses(url).get("queued", 0) == 0

    fixture.uploader.join(timeout=300)
    wait_until(settled, "every item to be processed", fixture.deployment, 150)


def assert_exactly_once(fixture: Fixture) -> None:
    """Every accepted upload: one item, one outcome; every acting item: one evidence item
    and one decision in the ledger; the outbox ran nothing twice; the ledger verifies."""
    settings = fixture.deployment.settings
    accepted = fixture.uploader.accepted
    assert sorted(accepted) == list(range(ITEMS)), "every upload was eventually accepted"
    engine = make_engine(settings.effective_database_url)
    try:
        with Session(engine) as session:
            items = session.execute(select(ScanItem.id, ScanItem.status, ScanItem.outcome)).all()
            captures = Counter(
                json.loads(body)["facts"]["trigger"]["reference"]
                for body in session.scalars(
                    select(LedgerEntryRow.body).where(LedgerEntryRow.kind == EntryKind.CAPTURE)
                )
            )
            decided = Counter(
                json.loads(body)["facts"]["scan_item"]
                for body in session.scalars(
                    select(LedgerEntryRow.body).where(
                        LedgerEntryRow.kind == "pipeline:scan:decided"
                    )
                )
            )
            evidence_items = session.scalar(select(func.count()).select_from(EvidenceItemRow))
            actions = session.execute(
                select(ScanAction.item_id, ScanAction.kind, ScanAction.attempts)
            ).all()
        with Session(engine) as session:
            report = audit_ledger(build_evidence_service(SqlEvidenceStore(session), settings))
    finally:
        engine.dispose()
    # One item per accepted upload (resends with the same Idempotency-Key made none).
    assert len(items) == ITEMS
    assert {row.id for row in items} == set(accepted.values())
    outcomes = {row.id: (row.status, row.outcome) for row in items}
    acting = {accepted[n] for n in ACTING}
    assert {i for i, o in outcomes.items() if o == ("done", "act")} == acting
    assert {i for i, o in outcomes.items() if o == ("done", "ignore")} == set(
        accepted.values()
    ) - acting
    # Exactly one evidence item and one logged decision per acting item: none lost,
    # none duplicated by a retried or re-delivered task.
    assert captures == dict.fromkeys(acting, 1)
    assert decided == dict.fromkeys(acting, 1)
    assert evidence_items == len(acting)
    # One outbox row per item and kind, none claimed twice.
    assert Counter((a.item_id, a.kind) for a in actions).most_common(1)[0][1] == 1
    assert {a.item_id for a in actions} == acting
    assert max(a.attempts for a in actions) <= 1
    # What happened, for someone reading the output of `pytest -s`.
    log = fixture.deployment.log()
    print(
        f"\nclient saw {dict(fixture.uploader.statuses)}; "
        f"lost tasks re-published {log.count('whose tasks were lost')} times; "
        f"items deferred for a full disk {log.count('deferred: cannot write')} times"
    )
    # The ledger verifies from the ground up, and every live item decrypts.
    assert report.ok, report.failures
    assert report.decrypted == len(acting)
    blobs = settings.effective_evidence_dir / "blobs"
    assert not list(blobs.rglob("*.tmp")), "no partial blob is left behind"


def test_postgres_and_redis_restarts_mid_load_lose_nothing(deployment: Fixture) -> None:
    uploader, system, servers = deployment.uploader, deployment.deployment, deployment.servers
    url = system.settings.effective_database_url
    uploader.start()
    wait_until(lambda: uploader.done >= ITEMS // 4, "a quarter accepted", system, 120)
    servers.postgres.crash()  # mid-load: uploads and workers lose the database
    time.sleep(2)
    servers.postgres.start()
    wait_until(lambda: _statuses(url).get("done", 0) >= ITEMS // 4, "work resumes", system, 120)
    servers.redis.crash()  # mid-load: every queued and unacknowledged task is gone
    time.sleep(2)
    servers.redis.start()
    wait_processed(deployment)
    assert all(w.poll() is None for w in system.workers), system.log()
    assert system.api is not None
    assert system.api.poll() is None, system.log()
    assert_exactly_once(deployment)
    # While a server was down the API answered 503 with Retry-After, never a bare 500.
    assert 500 not in uploader.statuses
    # The API's bank index still follows the database: a hash added after the restart
    # matches (a follower thread that died with the connection would never see it).
    pdq = hash_bytes(photo(ITEMS + 1), HashOptions()).pdq
    assert pdq is not None
    engine = make_engine(url)
    with Session(engine) as session, session.begin():
        BankService(session).add(
            "confirmed", [EntryIn(kind=SignalKind.PDQ, value=pdq.bits, quality=pdq.quality)]
        )
    engine.dispose()

    def matched() -> bool:
        answer = httpx.post(
            f"{system.api_url}/api/v1/scan",
            json={"pdq": [pdq.hex]},
            headers={"Authorization": f"Bearer {uploader.token}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return [m["bank"] for m in answer.json()["matches"]] == ["confirmed"]

    wait_until(matched, "the new hash to match through the API", system, 60)


def test_sigkilled_api_and_workers_mid_load_lose_nothing(deployment: Fixture) -> None:
    uploader, system = deployment.uploader, deployment.deployment
    url = system.settings.effective_database_url
    uploader.start()
    wait_until(lambda: uploader.done >= ITEMS // 4, "a quarter accepted", system, 120)
    system.kill_api()  # mid-load: requests in flight are cut off
    wait_until(lambda: _statuses(url).get("done", 0) >= 20, "the worker at work", system, 120)
    system.kill_workers()  # mid-load: tasks in flight are never acknowledged
    system.start_api()
    system.start_worker()
    system.start_worker()
    wait_processed(deployment)
    assert_exactly_once(deployment)
    assert 500 not in uploader.statuses


def test_full_evidence_disk_defers_items_and_loses_nothing(
    deployment: Fixture, tmp_path: Path
) -> None:
    uploader, system = deployment.uploader, deployment.deployment
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs for the evidence folder needs root")
    # A 1 MiB tmpfs over the evidence folder; a filler leaves room for a few captures.
    blobs = system.settings.effective_evidence_dir
    blobs.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(blobs)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        filler = blobs / "filler"
        filler.write_bytes(b"\0" * (1024 * 1024 - 96 * 1024))
        uploader.start()
        log = system.logs / "processes.log"
        wait_until(
            lambda: log.read_text(errors="replace").count("deferred: cannot write") >= 3,
            "items to be deferred for the full disk",
            system,
            180,
        )
        statuses = _statuses(system.settings.effective_database_url)
        assert statuses.get("dead", 0) == 0, "a full disk never dead-letters an item"
        filler.unlink()  # the operator makes room
        wait_processed(deployment)
        assert_exactly_once(deployment)
    finally:
        system.stop()
        subprocess.run(["umount", "-l", str(blobs)], check=False)
