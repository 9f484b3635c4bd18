"""The API process publishes accepted items to Redis in batches (real Redis)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from redress.config import Settings
from redress.pipeline.tasks import (
    BATCH_TASK_NAME,
    QUEUE_NAME,
    CeleryQueue,
    make_celery,
    publish_batch,
)

pytestmark = pytest.mark.redis


def published(client: object) -> list[list[str]]:
    """The item IDs of every task waiting in Redis, oldest first."""
    tasks = []
    for raw in reversed(client.lrange(QUEUE_NAME, 0, -1)):  # type: ignore[attr-defined]
        message = json.loads(raw)
        assert message["headers"]["task"] == BATCH_TASK_NAME
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        tasks.append(args[0])
    return tasks


def queue_for(redis_url: str, tmp_path: Path, batch: int, size: int = 1000) -> CeleryQueue:
    import redis

    settings = Settings(home=tmp_path / "home", broker_url=redis_url, broker_batch=batch)
    celery = make_celery(settings, lambda: pytest.fail("publishing never builds a runner"))
    return CeleryQueue(celery, redis.Redis.from_url(redis_url), size, batch=batch)


def test_a_started_queue_publishes_each_item_once_in_tasks_of_at_most_a_batch(
    redis_url: str, tmp_path: Path
) -> None:
    import redis

    queue = queue_for(redis_url, tmp_path, batch=4)
    queue.start()
    ids = [f"item-{n}" for n in range(10)]
    for item_id in ids:
        queue.submit(item_id)
    queue.stop()  # publishes what is still gathered
    tasks = published(redis.Redis.from_url(redis_url))
    assert [i for task in tasks for i in task] == ids
    assert all(1 <= len(task) <= 4 for task in tasks)
    assert len(tasks) < len(ids)


def test_back_pressure_counts_every_task_as_a_full_batch(redis_url: str, tmp_path: Path) -> None:
    import redis

    queue = queue_for(redis_url, tmp_path, batch=4, size=8)
    queue.submit_many(["a", "b", "c", "d", "e"])  # not started: published at once
    assert published(redis.Redis.from_url(redis_url)) == [["a", "b", "c", "d"], ["e"]]
    assert queue.depth() == 8
    assert not queue.has_room()
    queue.stop()


def test_an_item_with_a_single_attempt_travels_alone(tmp_path: Path) -> None:
    base = {"home": tmp_path, "broker_batch": 16}
    assert publish_batch(Settings(**base, scan_max_attempts=3)) == 16
    assert publish_batch(Settings(**base, scan_max_attempts=1)) == 1
