"""Scale-out on the real PostgreSQL and Redis: 500 items, a worker SIGKILLed mid-stream,
a restart, its Celery process killed under its supervisor, and afterwards exactly one
outcome per item and no action run twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from media_support import photo
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from redress.actions import WebhookSignatureError, verify_signature
from redress.config import Settings
from redress.pipeline.container import build_pipeline
from redress.pipeline.keys import ApiKeyService, Scope
from redress.pipeline.models import ScanAction, ScanItem
from redress.pipeline.service import MediaSubmission, ScanContext
from redress.signals import HashOptions, hash_bytes
from redress.signals.types import SignalKind
from redress.store.interfaces import BankPurpose, EntryIn
from redress.store.migrate import upgrade
from redress.store.service import BankService

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]
ITEMS = 500
POISONED = {137, 312, 451}  # JPEGs cut short: they must be dead-lettered, not block anything


class Deliveries:
    """A platform's webhook endpoint on loopback that verifies and counts deliveries."""

    def __init__(self) -> None:
        self.secret = b""
        self.url = ""
        self.received: Counter[tuple[str, str]] = Counter()
        self.refused = 0
        self.lock = threading.Lock()

    def serve(self) -> ThreadingHTTPServer:
        deliveries = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    verify_signature(deliveries.secret, body, self.headers["Redress-Signature"])
                except WebhookSignatureError:
                    with deliveries.lock:
                        deliveries.refused += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                key = (self.headers["Redress-Event"], self.headers["Redress-Delivery"])
                with deliveries.lock:
                    deliveries.received[key] += 1
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "redress",
                "worker",
                "--concurrency",
                "2",
                "--loglevel",
                "WARNING",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so SIGKILL reaches every child
        )


def children(pid: int) -> list[int]:
    """Process IDs whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(ScanItem.status, func.count()).group_by(ScanItem.status))
    return {str(status): int(n) for status, n in rows}


@pytest.fixture
def deliveries() -> Iterator[Deliveries]:
    receiver = Deliveries()
    server = receiver.serve()
    receiver.url = f"http://127.0.0.1:{server.server_port}/hook"
    yield receiver
    server.shutdown()
    server.server_close()


def test_sigkilled_worker_loses_nothing_and_repeats_nothing(
    postgres_url: str, redis_url: str, tmp_path: Path, deliveries: Deliveries
) -> None:
    settings = Settings(
        home=tmp_path / "home",
        database_url=postgres_url,
        broker_url=redis_url,
        broker_visibility_timeout=5,
        scan_lease_seconds=5,
        queue_size=10_000,
    )
    upgrade(postgres_url)
    photos = [photo(n) for n in range(ITEMS)]
    for n in POISONED:
        photos[n] = photos[n][:200]
    container = build_pipeline(settings, embedded_queue=False)
    env = {
        **os.environ,
        "REDRESS_HOME": str(settings.home),
        "REDRESS_DATABASE_URL": postgres_url,
        "REDRESS_BROKER_URL": redis_url,
        "REDRESS_BROKER_VISIBILITY_TIMEOUT": "5",
        "REDRESS_SCAN_LEASE_SECONDS": "5",
    }
    log = tmp_path / "workers.log"
    workers: list[subprocess.Popen[bytes]] = []
    try:
        with container.sessions.begin() as session:
            key = ApiKeyService(session).create("platform", frozenset({Scope.SCAN}))
            banks = BankService(session)
            banks.create("confirmed", BankPurpose.CONFIRMED_VIOLATIONS)
            # Every tenth picture is known: those items act (and send a webhook).
            entries = []
            for n in range(0, ITEMS, 10):
                if n in POISONED:
                    continue
                pdq = hash_bytes(photos[n], HashOptions()).pdq
                assert pdq is not None
                entries.append(EntryIn(kind=SignalKind.PDQ, value=pdq.bits, quality=pdq.quality))
            banks.add("confirmed", entries)
        deliveries.secret = key.info.webhook_secret
        context = ScanContext(source="platform", callback_url=deliveries.url)
        ids = []
        for n, data in enumerate(photos):
            with container.sessions.begin() as session:
                item, created = container.service.accept(
                    session,
                    MediaSubmission(data=data, filename=f"{n}.jpg", context=context),
                    key=key.info,
                    idempotency_key=f"msg-{n}",
                )
            assert created
            ids.append(item.id)
            container.queue.submit(item.id)
        # A platform that resubmits (same idempotency keys) gets the same items back.
        for n in range(0, ITEMS, 97):
            with container.sessions.begin() as session:
                again, created = container.service.accept(
                    session,
                    MediaSubmission(data=photos[n], filename=f"{n}.jpg", context=context),
                    key=key.info,
                    idempotency_key=f"msg-{n}",
                )
            assert (again.id, created) == (ids[n], False)

        first = start_worker(env, log)
        workers.append(first)
        with container.sessions() as session:
            while counts(session).get("done", 0) < 150:
                assert first.poll() is None, log.read_text()
                time.sleep(0.05)
                session.expire_all()
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        with container.sessions() as session:
            at_kill = counts(session)
        assert at_kill.get("queued", 0) > 0, "the kill must come mid-stream"

        second = start_worker(env, log)
        workers.append(second)
        with container.sessions() as session:
            while counts(session).get("done", 0) < at_kill.get("done", 0) + 100:
                assert second.poll() is None, log.read_text()
                time.sleep(0.05)
                session.expire_all()
        # Celery's own worker dies (as it does on some broker failures): the supervisor
        # that `redress worker` is starts another, and nothing is lost or repeated.
        (celery,) = children(second.pid)
        os.kill(celery, signal.SIGKILL)
        give_up = time.monotonic() + 300  # a guard against hanging, not a speed target
        with container.sessions() as session:
            while counts(session).get("queued", 0):
                assert second.poll() is None, log.read_text()
                assert time.monotonic() < give_up, log.read_text()[-6000:]
                time.sleep(0.2)
                session.expire_all()
            final = counts(session)
            outcomes = dict(
                session.execute(
                    select(ScanItem.id, ScanItem.outcome).where(ScanItem.status == "done")
                ).all()
            )
            dead = dict(
                session.execute(
                    select(ScanItem.id, ScanItem.error_code).where(ScanItem.status == "dead")
                ).all()
            )
            actions = session.execute(
                select(ScanAction.id, ScanAction.kind, ScanAction.status, ScanAction.attempts)
            ).all()
    finally:
        for process in workers:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=60)
        container.close()

    assert "exited with status" in log.read_text(), "the supervisor saw its worker die"
    # Every accepted item exactly once: 500 items, each done with one outcome or dead-lettered.
    assert final == {"done": ITEMS - len(POISONED), "dead": len(POISONED)}
    assert set(outcomes) | set(dead) == set(ids)
    assert set(dead) == {ids[n] for n in POISONED}
    assert set(dead.values()) <= {"truncated", "corrupt"}
    acting = {ids[n] for n in range(0, ITEMS, 10) if n not in POISONED}
    assert {i for i, o in outcomes.items() if o == "act"} == acting
    assert set(outcomes.values()) == {"act", "ignore"}
    # The outbox has one row per item and kind, and no action was claimed twice.
    per_item = Counter((row.id.split(":")[0], row.kind) for row in actions)
    assert set(per_item.values()) == {1}
    assert len(actions) == 3 * len(acting)
    assert max(row.attempts for row in actions) <= 1
    # No webhook was delivered twice; every webhook recorded as done was delivered.
    assert deliveries.refused == 0
    assert max(deliveries.received.values()) == 1
    done_hooks = {row.id for row in actions if row.kind == "webhook" and row.status == "done"}
    delivered = {
        d for (event, d), n in deliveries.received.items() if event == "scan.action_required"
    }
    assert done_hooks <= delivered
    assert delivered <= {f"{i}:webhook" for i in acting}
