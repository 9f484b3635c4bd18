"""Celery over Redis: ``redress worker`` processes queued items when
``REDRESS_BROKER_URL`` is set.

The API process publishes accepted items in batches: up to ``REDRESS_BROKER_BATCH``
item IDs per task, gathered for at most ``LINGER_SECONDS`` (one item per task
cost a worker about 8 ms of CPU in separate lease and decide transactions;
sixteen decided together cost about 2 ms each, on PostgreSQL).

Delivery is at least once: tasks are acknowledged late (after they finish)
and rejected back to the queue if their worker process dies; a worker that
is SIGKILLed leaves its unacknowledged tasks in Redis, which re-delivers them
after ``REDRESS_BROKER_VISIBILITY_TIMEOUT`` seconds. :meth:`ScanRunner.process`
is idempotent (a row lock and the item's status decide), so every accepted
item gets exactly one outcome in effect. An item that keeps failing is
retried until its attempt count passes ``REDRESS_SCAN_MAX_ATTEMPTS`` and is
then dead-lettered with the reason; it never blocks the queue.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import redis
from celery import Celery, bootsteps
from sqlalchemy.orm import Session, sessionmaker

from redress.config import Settings
from redress.pipeline.errors import BrokerUnavailableError, QueueFullError
from redress.pipeline.service import DEFERRED, ScanRunner
from redress.pipeline.store import ScanStore

log = logging.getLogger(__name__)

QUEUE_NAME = "redress.scan"
# One item per task: what releases before batching published (still consumed).
TASK_NAME = "redress.pipeline.process_item"
BATCH_TASK_NAME = "redress.pipeline.process_items"
# How long the API process holds a first item for others to share its task: far
# below the time an item takes, so batching adds nothing a user could notice.
LINGER_SECONDS = 0.02
# Statuses whose items a task hands back to the broker, to try again later.
_AGAIN = ("busy", DEFERRED, "failed")


def publish_batch(settings: Settings) -> int:
    """Items per task: ``REDRESS_BROKER_BATCH``, or one when an item gets a single
    attempt (a task that crashes its worker costs each of its items an attempt)."""
    return settings.broker_batch if settings.scan_max_attempts > 1 else 1


def make_celery(settings: Settings, runner_factory: Callable[[], ScanRunner]) -> Celery:
    """A Celery app whose one task processes a queued item with a runner built lazily in
    each worker process (after the fork, so no engine is shared across processes)."""
    app = Celery("redress", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_default_queue=QUEUE_NAME,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        worker_hijack_root_logger=False,
        redress_settings=settings,
    )
    app.steps["consumer"].add(LostTaskSweep)
    runners: list[ScanRunner] = []

    def runner() -> ScanRunner:
        if not runners:
            runners.append(runner_factory())
        return runners[0]

    # Acknowledged after the work; retries bounded by the attempt count in the
    # database, not by Celery's retry counter.
    delivery: dict[str, Any] = {
        "bind": True,
        "acks_late": True,
        "reject_on_worker_lost": True,
        "max_retries": None,
    }

    @app.task(name=TASK_NAME, **delivery)  # type: ignore[untyped-decorator]
    def process_item(task: Any, item_id: str) -> str:
        try:
            report = runner().process(item_id)
        except Exception as exc:
            # The attempt is counted in the database; the last retry dead-letters the item.
            raise task.retry(exc=exc, countdown=1) from exc
        if report.status in ("busy", DEFERRED):
            # Another worker holds the lease (if it died, this retry finds the lease over),
            # or the evidence disk is full (the item waits for space, its attempt uncounted).
            raise task.retry(countdown=max(1.0, report.retry_after))
        return report.status

    @app.task(name=BATCH_TASK_NAME, **delivery)  # type: ignore[untyped-decorator]
    def process_items(task: Any, item_ids: list[str]) -> dict[str, int]:
        try:
            reports = runner().process_many(item_ids)
        except Exception as exc:
            # Nothing was decided (the leases' transaction failed): the whole task again.
            raise task.retry(exc=exc, countdown=1) from exc
        again = [r for r in reports if r.status in _AGAIN]
        if again:
            # Only the items not finished go back: leased elsewhere, waiting for evidence
            # disk space, or failed on their own (their attempts are counted).
            raise task.retry(
                args=[[r.item_id for r in again]],
                countdown=max(1.0, *(r.retry_after for r in again)),
            )
        statuses: dict[str, int] = {}
        for report in reports:
            statuses[report.status] = statuses.get(report.status, 0) + 1
        return statuses

    return app


class CeleryQueue:
    """The :class:`~redress.pipeline.queue.JobQueue` that publishes to Celery over Redis.

    Once started (in the API process), :meth:`submit` gathers item IDs and a
    publisher thread sends them as one task per ``batch`` IDs, at the latest
    ``LINGER_SECONDS`` after the first; not started (sweeps, tests), each
    submit publishes at once. The items are committed before they are
    submitted, so a publish that fails, or IDs still gathered when the process
    dies, lose nothing: the workers' sweep publishes queued items again.
    """

    def __init__(self, celery: Celery, redis: Any, size: int, *, batch: int = 1) -> None:
        self.celery = celery
        self.redis = redis
        self.size = size
        self.batch = max(1, batch)
        self._gathered: list[str] = []
        self._lock = threading.Lock()
        self._full = threading.Event()
        self._stopping = threading.Event()
        self._publisher: threading.Thread | None = None

    def has_room(self) -> bool:
        """Back-pressure: at most ``size`` items wait (each task counted as a full
        batch, an upper bound), or raises :class:`BrokerUnavailableError` while Redis
        does not answer."""
        return self.depth() < self.size

    def submit(self, item_id: str) -> None:
        """Publish a task for an item already committed to the database (gathered
        with others for a moment when the queue has been started)."""
        if self._publisher is None:
            self._publish([item_id])
            return
        with self._lock:
            self._gathered.append(item_id)
            if len(self._gathered) >= self.batch:
                self._full.set()

    def submit_many(self, item_ids: Sequence[str]) -> None:
        """Publish items already committed, ``batch`` to a task, at once."""
        for start in range(0, len(item_ids), self.batch):
            self._publish(list(item_ids[start : start + self.batch]))

    def _publish(self, item_ids: list[str]) -> None:
        try:
            self.celery.send_task(BATCH_TASK_NAME, args=[item_ids], queue=QUEUE_NAME)
        except Exception as exc:
            # The items are durable and stay queued; a worker's sweep publishes them.
            raise QueueFullError(f"the broker did not take the item: {exc}") from exc

    def _publish_gathered(self) -> None:
        while True:
            with self._lock:
                taken, self._gathered = self._gathered[: self.batch], self._gathered[self.batch :]
                if not self._gathered:
                    self._full.clear()
            if not taken:
                return
            try:
                self._publish(taken)
            except QueueFullError as exc:
                log.warning(
                    "%d accepted items wait for the workers' sweep: %s", len(taken), exc.message
                )

    def _run_publisher(self) -> None:
        while not self._stopping.is_set():
            # Wake when a batch is full; otherwise the first item waits at most the linger.
            self._full.wait(LINGER_SECONDS)
            self._publish_gathered()
        self._publish_gathered()

    def depth(self) -> int:
        """Items waiting: tasks in Redis times the batch (an upper bound), plus those
        still gathered."""
        try:
            tasks = int(self.redis.llen(QUEUE_NAME))
        except redis.RedisError as exc:
            raise BrokerUnavailableError(
                f"the broker does not answer ({exc}); retry later", retry_after=2.0
            ) from exc
        with self._lock:
            return tasks * self.batch + len(self._gathered)

    def check(self) -> None:
        """Ready while Redis answers."""
        self.redis.ping()

    def start(self) -> None:
        """Start the publisher thread (the API process; workers never start it)."""
        if self.batch == 1 or self._publisher is not None:
            return
        self._stopping.clear()
        self._publisher = threading.Thread(
            target=self._run_publisher, name="redress-publisher", daemon=True
        )
        self._publisher.start()

    def stop(self) -> None:
        """Publish what is gathered, then close the broker connections."""
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            self._stopping.set()
            self._full.set()
            publisher.join(timeout=10)
        self.redis.close()


def requeue_lost(sessions: sessionmaker[Session], queue: CeleryQueue, min_age: dt.timedelta) -> int:
    """Publish again queued items whose task the broker lost (Redis restarted without
    persistence, or a publish failed after the commit).

    Runs only while the broker's queue is empty, so a backlog is never doubled, and
    takes only items accepted at least ``min_age`` ago that no worker's lease holds
    (a task being processed, retried or deferred has a lease). A duplicate of a task
    still held somewhere is harmless: the item's row lock and status decide. Returns
    how many were published.
    """
    if queue.depth() > 0:
        return 0
    now = dt.datetime.now(dt.UTC)
    with sessions() as session:
        lost = ScanStore(session).queued_ids(before=now - min_age, unleased_at=now)
    queue.submit_many(lost)
    return len(lost)


class LostTaskSweep(bootsteps.StartStopStep):  # type: ignore[misc]
    """A consumer bootstep: every ``REDRESS_BROKER_SWEEP_SECONDS``, :func:`requeue_lost` on
    the worker's timer, in the main process (after the pool has forked).

    A consumer step, not a worker step: Celery restarts the consumer after it loses the
    broker, and this schedules the sweep again each time it starts, so the sweep
    survives exactly the Redis restart it exists for.
    """

    def __init__(self, consumer: Any, **kwargs: Any) -> None:
        super().__init__(consumer, **kwargs)
        self.tref: Any = None
        self.engine: Any = None
        self.sweep: Callable[[], None] | None = None

    def _build(self, consumer: Any) -> Callable[[], None]:
        settings: Settings = consumer.app.conf.redress_settings
        from redress.store.db import make_engine

        self.engine = make_engine(settings.effective_database_url)
        sessions = sessionmaker(self.engine)
        client = redis.Redis.from_url(settings.broker_url or "")
        queue = CeleryQueue(
            consumer.app, client, settings.queue_size, batch=publish_batch(settings)
        )
        min_age = dt.timedelta(seconds=settings.broker_sweep_seconds)

        def sweep() -> None:
            try:
                count = requeue_lost(sessions, queue, min_age)
            except Exception as exc:  # the database or broker is down: try next time
                log.warning("lost-task sweep failed: %s", exc, exc_info=True)
                return
            if count:
                log.warning("re-published %d queued items whose tasks were lost", count)

        return sweep

    def start(self, consumer: Any) -> None:
        """Schedule the sweep (again, after a reconnection)."""
        if self.sweep is None:
            self.sweep = self._build(consumer)
        if self.tref is not None:
            self.tref.cancel()
        interval = consumer.app.conf.redress_settings.broker_sweep_seconds
        self.tref = consumer.timer.call_repeatedly(interval, self.sweep)

    def stop(self, consumer: Any) -> None:
        """Cancel the sweep (the consumer is restarting or stopping)."""
        if self.tref is not None:
            self.tref.cancel()
            self.tref = None

    def shutdown(self, consumer: Any) -> None:
        """Cancel the sweep and close its connections."""
        self.stop(consumer)
        if self.engine is not None:
            self.engine.dispose()


def requeue_stranded(
    sessions: sessionmaker[Session], queue: CeleryQueue, older_than: dt.timedelta
) -> int:
    """Publish again items still queued after ``older_than`` (lost between commit and
    publish, or whose message was dropped); duplicates are harmless. Returns how many."""
    cutoff = dt.datetime.now(dt.UTC) - older_than
    with sessions() as session:
        stranded = ScanStore(session).queued_ids(before=cutoff)
    queue.submit_many(stranded)
    return len(stranded)
