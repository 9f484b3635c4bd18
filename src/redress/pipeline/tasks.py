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
from collections.abc import Callable
from typing import Any

from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from redress.config import Settings
from redress.pipeline.errors import QueueFullError
from redress.pipeline.service import ScanRunner
from redress.pipeline.store import ScanStore

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
    )
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
        if report.status == "busy":
            # Another worker holds the lease; if it died, this retry finds the lease over.
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
        """Back-pressure: the Redis queue holds fewer than ``size`` tasks."""
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
        return int(self.redis.llen(QUEUE_NAME))

    def check(self) -> None:
        """Ready while Redis answers."""
        self.redis.ping()

    def start(self) -> None:
        """Nothing to start in the API process: workers are separate processes."""

    def stop(self) -> None:
        """Close the broker connections."""
        self.redis.close()


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
