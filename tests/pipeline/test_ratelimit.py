"""Per-key token buckets, in process and in Redis (shared by every API process)."""

from __future__ import annotations

import pytest
import redis

from redress.pipeline.errors import BrokerUnavailableError, RateLimitedError
from redress.pipeline.ratelimit import LocalTokenBuckets, RateLimiter, RedisTokenBuckets


def drain(limiter: RateLimiter, key: str, burst: int) -> int:
    """Take tokens until refused; how many were granted. The refusal says when to retry."""
    taken = 0
    while taken <= burst:
        try:
            limiter.take(key, 0.001, burst)
        except RateLimitedError:
            break
        taken += 1
    with pytest.raises(RateLimitedError) as refused:
        limiter.take(key, 0.001, burst)
    assert refused.value.retry_after > 0
    assert refused.value.status_code == 429
    return taken


def test_local_buckets_allow_the_burst_then_refuse() -> None:
    limiter = LocalTokenBuckets()
    assert drain(limiter, "a", 5) == 5
    assert drain(limiter, "b", 3) == 3  # each key has its own bucket


@pytest.mark.redis
def test_redis_buckets_are_shared_between_limiters(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    one, two = RedisTokenBuckets(client), RedisTokenBuckets(client)
    for _ in range(3):
        one.take("k", 0.001, 5)
    # A second API process sees the same bucket: only two tokens are left.
    assert drain(two, "k", 5) == 2
    client.close()


@pytest.mark.redis
def test_redis_buckets_refill(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    limiter = RedisTokenBuckets(client)
    # A slow bucket of one token refuses the second take...
    limiter.take("slow", 0.001, 1)
    with pytest.raises(RateLimitedError):
        limiter.take("slow", 0.001, 1)
    # ...a fast one has refilled by then, every time.
    granted = 0
    for _ in range(5):
        limiter.take("fast", 1_000_000.0, 1)
        granted += 1
    assert granted == 5
    client.close()


def test_redis_down_refuses_with_broker_unavailable_not_a_crash() -> None:
    # Nothing listens on port 9: the shared buckets cannot be read, so requests are
    # refused with a 503 the client may retry, never let through unlimited or a 500.
    client = redis.Redis.from_url("redis://127.0.0.1:9/0", socket_connect_timeout=0.5)
    buckets = RedisTokenBuckets(client)
    with pytest.raises(BrokerUnavailableError) as refused:
        buckets.take("key", rate=10.0, burst=5)
    assert refused.value.status_code == 503
    assert refused.value.code == "broker_unavailable"
