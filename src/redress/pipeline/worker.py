"""``redress worker``: Celery worker processes over Redis, each with its own pipeline,
kept running by a small supervisor."""

from __future__ import annotations

import ctypes
import datetime as dt
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType

import redis
from celery import signals as celery_signals
from celery.worker import WorkController
from sqlalchemy.orm import sessionmaker

from redress.config import Settings
from redress.evidence.service import BlobStore
from redress.pipeline.container import build_pipeline, settle_heap
from redress.pipeline.service import ScanRunner
from redress.pipeline.tasks import (
    QUEUE_NAME,
    CeleryQueue,
    make_celery,
    publish_batch,
    requeue_stranded,
)
from redress.store.db import make_engine

log = logging.getLogger(__name__)


def run_worker(
    settings: Settings, *, concurrency: int = 2, pool: str = "prefork", loglevel: str = "INFO"
) -> int:
    """Run a Celery worker until it is stopped; return its exit status (non-zero when
    it gave up on an unrecoverable error).

    Each worker process builds its own pipeline (engine, index follower) on its first
    task, after the fork. At start, items accepted longer ago than the visibility
    timeout but still queued are published again, so none is stranded.
    """

    def runner_factory() -> ScanRunner:
        runner = build_pipeline(settings, embedded_queue=False).runner
        settle_heap()  # once per worker process, on its first task
        return runner

    celery = make_celery(settings, runner_factory)
    # A worker killed mid-capture left its half-written evidence blob behind.
    abandoned = BlobStore(settings.effective_evidence_dir / "blobs").remove_abandoned()
    if abandoned:
        log.warning("removed %d evidence blobs left half-written by killed processes", abandoned)
    engine = make_engine(settings.effective_database_url)
    client = redis.Redis.from_url(settings.broker_url or "")
    try:
        queue = CeleryQueue(celery, client, settings.queue_size, batch=publish_batch(settings))
        count = requeue_stranded(
            sessionmaker(engine),
            queue,
            dt.timedelta(seconds=settings.broker_visibility_timeout),
        )
        if count:
            log.warning("re-published %d stranded items", count)
    except Exception as exc:  # the database or broker is down: start all the same
        # The worker waits for its broker and retries its tasks; the periodic sweep
        # (REDRESS_BROKER_SWEEP_SECONDS) publishes what this one could not.
        log.warning("startup sweep skipped: %s", exc, exc_info=True)
    finally:
        client.close()
        engine.dispose()
    # Celery's worker_main drops the worker's exit status, which the supervisor needs
    # to tell a crash from a requested stop: the worker itself keeps it.
    controllers: list[WorkController] = []

    def remember(sender: WorkController, **_: object) -> None:
        controllers.append(sender)

    celery_signals.worker_init.connect(remember, weak=False)
    try:
        celery.worker_main(
            [
                "worker",
                f"--loglevel={loglevel}",
                f"--concurrency={concurrency}",
                f"--pool={pool}",
                "-Q",
                QUEUE_NAME,
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )
    finally:
        celery_signals.worker_init.disconnect(remember)
    status = controllers[-1].exitcode if controllers else 1
    return int(status or 0)


@dataclass(frozen=True)
class RestartPolicy:
    """When the supervisor starts a dead Celery worker again: after ``first_delay``
    seconds, doubling on each quick death up to ``max_delay``; a worker that ran for
    ``healthy_after`` seconds counts as healthy and resets the delay."""

    first_delay: float = 1.0
    max_delay: float = 30.0
    healthy_after: float = 60.0


def _die_with_parent() -> None:
    # Linux: the Celery worker gets SIGTERM if its supervisor is killed outright, so a
    # restarted supervisor never finds an orphaned worker beside its new one.
    if sys.platform.startswith("linux"):
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def supervise_worker(
    command: Sequence[str],
    policy: RestartPolicy = RestartPolicy(),
) -> int:
    """Run ``command`` (the Celery worker) as a child process and start it again whenever
    it dies without being asked to stop; return its exit status once it is.

    Celery's worker gives up for good on some broker failures: with kombu 5.7, Redis
    restarting while tasks are unacknowledged makes the consumer's clean-up raise
    ``AttributeError`` ("Unrecoverable error") and the worker exits, leaving the queue
    unserved. Nothing is lost when it dies (tasks are acknowledged late, items stay
    ``queued`` in the database and the startup sweep publishes them again), so starting
    it again is the whole recovery. SIGTERM or SIGINT asks the worker for a warm
    shutdown (SIGTERM); a zero exit status, or one after such a signal, ends the
    supervisor.
    """
    stopping = threading.Event()
    child: list[subprocess.Popen[bytes]] = []

    def forward(_signum: int, _frame: FrameType | None) -> None:
        stopping.set()
        # Always SIGTERM (Celery's warm shutdown): a Ctrl-C on a terminal reaches the
        # worker too (same process group), and a second SIGINT would be Celery's cold
        # shutdown; a second SIGTERM changes nothing.
        if child and child[0].poll() is None:
            child[0].send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    delay = policy.first_delay
    try:
        while True:
            started = time.monotonic()
            # The command is built by the CLI from sys.executable, never from input.
            process = subprocess.Popen(list(command), preexec_fn=_die_with_parent)  # noqa: S603
            child[:] = [process]
            log.info("started the Celery worker (pid %d)", process.pid)
            status = process.wait()
            if stopping.is_set() or status == 0:
                return status
            if time.monotonic() - started >= policy.healthy_after:
                delay = policy.first_delay
            log.error(
                "the Celery worker (pid %d) exited with status %d; starting another in %.0f s",
                process.pid,
                status,
                delay,
            )
            if stopping.wait(delay):
                return status
            delay = min(delay * 2, policy.max_delay)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
