"""With REDRESS_BROKER_URL set the API only accepts: items go to PostgreSQL and Redis."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from web_support import serving

from redress.config import Settings
from redress.pipeline.tasks import QUEUE_NAME

pytestmark = [pytest.mark.anyio, pytest.mark.postgres, pytest.mark.redis]


def jpeg() -> bytes:
    out = io.BytesIO()
    pixels = np.random.default_rng(3).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels, "RGB").save(out, format="JPEG")
    return out.getvalue()


async def test_uploads_are_published_to_redis_with_back_pressure(
    redress_home: Path, postgres_url: str, redis_url: str
) -> None:
    import redis

    # One item per task, so that the queue's bound is reached at a known upload
    # (batched publishing: tests/pipeline/test_publish.py).
    settings = Settings(
        home=redress_home,
        database_url=postgres_url,
        broker_url=redis_url,
        queue_size=2,
        broker_batch=1,
    )
    async with serving(settings) as api:
        ready = await api.client.get("/readyz")
        assert ready.json()["checks"] == {"database": "ok", "index": "ok", "broker": "ok"}
        headers = api.auth()
        statuses = [
            (
                await api.client.post(
                    "/api/v1/scan", files={"file": (f"{n}.jpg", jpeg())}, headers=headers
                )
            ).status_code
            for n in range(3)
        ]
        assert statuses == [202, 202, 503]  # no worker runs: the third finds the queue full
        client = redis.Redis.from_url(redis_url)
        assert client.llen(QUEUE_NAME) == 2
        client.close()
        metrics = (await api.client.get("/metrics")).text
        assert "redress_queue_depth 2.0" in metrics
        assert 'redress_scan_items{status="queued"} 2.0' in metrics


async def test_tasks_lost_with_redis_are_published_again_and_redis_down_is_503(
    redress_home: Path, postgres_url: str, redis_url: str
) -> None:
    import datetime as dt

    import redis
    from sqlalchemy.orm import sessionmaker

    from redress.pipeline.tasks import CeleryQueue, requeue_lost

    settings = Settings(
        home=redress_home, database_url=postgres_url, broker_url=redis_url, broker_batch=1
    )
    async with serving(settings) as api:
        headers = api.auth()
        for n in range(2):
            answer = await api.client.post(
                "/api/v1/scan", files={"file": (f"{n}.jpg", jpeg())}, headers=headers
            )
            assert answer.status_code == 202
        client = redis.Redis.from_url(redis_url)
        queue = api.state.pipeline.queue
        assert isinstance(queue, CeleryQueue)
        sessions = sessionmaker(api.state.pipeline.engine)
        # While the tasks are still in Redis, nothing is published twice.
        assert requeue_lost(sessions, queue, dt.timedelta(0)) == 0
        client.delete(QUEUE_NAME)  # what a Redis restart without persistence does
        assert requeue_lost(sessions, queue, dt.timedelta(minutes=5)) == 0  # too recent
        assert requeue_lost(sessions, queue, dt.timedelta(0)) == 2
        assert client.llen(QUEUE_NAME) == 2
        client.close()
        # With Redis unreachable the API refuses new uploads with a clear 503.
        queue.redis = redis.Redis(host="127.0.0.1", port=1)
        refused = await api.client.post(
            "/api/v1/scan", files={"file": ("x.jpg", jpeg())}, headers=headers
        )
        assert refused.status_code == 503
        assert refused.json()["error"] == "broker_unavailable"
        assert "Retry-After" in refused.headers
