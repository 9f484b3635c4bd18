"""Celery over Redis: ``redress worker`` processes queued items when
``REDRESS_BROKER_URL`` is set.

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
from collections.abc import Callable
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
TASK_NAME = "redress.pipeline.process_item"


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

    @app.task(  # type: ignore[untyped-decorator]
        name=TASK_NAME,
        bind=True,
        acks_late=True,
        reject_on_worker_lost=True,
        # Bounded by the attempt count in the database, not by Celery's retry counter.
        max_retries=None,
    )
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

    return app


class CeleryQueue:
    """The :class:`~redress.pipeline.queue.JobQueue` that publishes to Celery over Redis."""

    def __init__(self, celery: Celery, redis: Any, size: int) -> None:
        self.celery = celery
        self.redis = redis
        self.size = size

    def has_room(self) -> bool:
        """Back-pressure: the Redis queue holds fewer than ``size`` tasks (raises
        :class:`BrokerUnavailableError` while Redis does not answer)."""
        return self.depth() < self.size

    def submit(self, item_id: str) -> None:
        """Publish a task for an item already committed to the database."""
        try:
            self.celery.send_task(TASK_NAME, args=[item_id], queue=QUEUE_NAME)
        except Exception as exc:
            # The item is durable and stays queued; a worker's startup sweep publishes it.
            raise QueueFullError(f"the broker did not take the item: {exc}") from exc

    def depth(self) -> int:
        """Tasks waiting in Redis."""
        try:
            return int(self.redis.llen(QUEUE_NAME))
        except redis.RedisError as exc:
            raise BrokerUnavailableError(
                f"the broker does not answer ({exc}); retry later", retry_after=2.0
            ) from exc

    def check(self) -> None:
        """Ready while Redis answers."""
        self.redis.ping()

    def start(self) -> None:
        """Nothing to start in the API process: workers are separate processes."""

    def stop(self) -> None:
        """Close the broker connections."""
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
    for item_id in lost:
        queue.submit(item_id)
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
        queue = CeleryQueue(consumer.app, client, settings.queue_size)
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
    for item_id in stranded:
        queue.submit(item_id)
    return len(stranded)
