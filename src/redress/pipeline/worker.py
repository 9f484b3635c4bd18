"""``redress worker``: Celery worker processes over Redis, each with its own pipeline."""

from __future__ import annotations

import datetime as dt
import logging

import redis
from sqlalchemy.orm import sessionmaker

from redress.config import Settings
from redress.pipeline.container import build_pipeline
from redress.pipeline.service import ScanRunner
from redress.pipeline.tasks import QUEUE_NAME, CeleryQueue, make_celery, requeue_stranded
from redress.store.db import make_engine

log = logging.getLogger(__name__)


def run_worker(
    settings: Settings, *, concurrency: int = 2, pool: str = "prefork", loglevel: str = "INFO"
) -> None:
    """Run a Celery worker until it is stopped.

    Each worker process builds its own pipeline (engine, index follower) on its first
    task, after the fork. At start, items accepted longer ago than the visibility
    timeout but still queued are published again, so none is stranded.
    """

    def runner_factory() -> ScanRunner:
        return build_pipeline(settings, embedded_queue=False).runner

    celery = make_celery(settings, runner_factory)
    engine = make_engine(settings.effective_database_url)
    client = redis.Redis.from_url(settings.broker_url or "")
    try:
        queue = CeleryQueue(celery, client, settings.queue_size)
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
