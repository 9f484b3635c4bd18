"""Per-key token buckets: in process, in a file shared by a host's serve processes, and in
Redis (shared by every API process)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from redress.pipeline.errors import BrokerUnavailableError, RateLimitedError
from redress.pipeline.ratelimit import (
    HostTokenBuckets,
    LocalTokenBuckets,
    RateLimiter,
    RedisTokenBuckets,
)


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


def test_host_buckets_are_one_limit_for_every_process_of_the_host(tmp_path: Path) -> None:
    # Two mappings of one file, each with its own descriptor, as two serve processes.
    one, two = HostTokenBuckets(tmp_path / "b"), HostTokenBuckets(tmp_path / "b")
    for _ in range(3):
        one.take("k", 0.001, 5)
    assert drain(two, "k", 5) == 2
    assert drain(one, "other", 4) == 4  # each key has its own bucket
    one.close()
    two.close()


def test_host_buckets_are_shared_with_another_process(tmp_path: Path) -> None:
    path = tmp_path / "b"
    code = (
        "import sys; from pathlib import Path;"
        "from redress.pipeline.ratelimit import HostTokenBuckets;"
        "b = HostTokenBuckets(Path(sys.argv[1]));"
        "[b.take('k', 0.001, 10) for _ in range(7)]"
    )
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    limiter = HostTokenBuckets(path)
    assert drain(limiter, "k", 10) == 3
    limiter.close()


def test_host_buckets_refill_and_keep_no_key_in_clear(tmp_path: Path) -> None:
    limiter = HostTokenBuckets(tmp_path / "b")
    limiter.take("client:203.0.113.7", 0.001, 1)
    with pytest.raises(RateLimitedError):
        limiter.take("client:203.0.113.7", 0.001, 1)
    for _ in range(5):  # a fast bucket has refilled by the next take, every time
        limiter.take("fast", 1_000_000.0, 1)
    limiter.close()
    assert b"203.0.113.7" not in (tmp_path / "b").read_bytes()


def test_host_buckets_reuse_the_longest_idle_slot_when_a_neighbourhood_is_full(
    tmp_path: Path,
) -> None:
    limiter = HostTokenBuckets(tmp_path / "b")
    slots = HostTokenBuckets.SLOTS

    def home(key: str) -> int:
        digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
        return int.from_bytes(digest[:8], "little") % slots

    # Keys whose slots all fall in one probe window: more of them than the window holds.
    target = home("k0")
    crowd = [k for k in (f"k{n}" for n in range(400_000)) if home(k) == target]
    crowd = crowd[: HostTokenBuckets.PROBE + 1]
    assert len(crowd) == HostTokenBuckets.PROBE + 1
    for key in crowd:
        limiter.take(key, 0.001, 1)
    # The newest key took the slot of the one idle longest, which so starts afresh
    # (taking, in turn, the slot of the next idlest); every other key is still limited.
    limiter.take(crowd[0], 0.001, 1)
    for key in crowd[2:]:
        with pytest.raises(RateLimitedError):
            limiter.take(key, 0.001, 1)
    limiter.close()
