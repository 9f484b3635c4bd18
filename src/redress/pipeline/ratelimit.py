"""Per-API-key token buckets: in Redis when a broker is configured (shared by every API
process), in process otherwise."""

from __future__ import annotations

import threading
import time
from typing import Any, Protocol

import redis

from redress.pipeline.errors import BrokerUnavailableError, RateLimitedError


class RateLimiter(Protocol):
    """Takes one token from a key's bucket or says how long to wait."""

    def take(self, key: str, rate: float, burst: int) -> None:
        """Take a token; raise :class:`RateLimitedError` (with ``retry_after``) if empty."""
        ...


class LocalTokenBuckets:
    """Token buckets in this process's memory."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, rate: float, burst: int) -> None:
        """Refill by elapsed time, then take one token."""
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + (now - stamp) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                raise RateLimitedError(
                    f"rate limit of {rate:g}/s exceeded", retry_after=(1.0 - tokens) / rate
                )
            self._buckets[key] = (tokens - 1.0, now)


# KEYS[1] bucket; ARGV: rate, burst, now (seconds). Returns {allowed, tokens*1000}.
_TAKE = """
local state = redis.call('HMGET', KEYS[1], 't', 's')
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - stamp) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 's', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return {allowed, math.floor(tokens * 1000)}
"""


class RedisTokenBuckets:
    """Token buckets in Redis, updated atomically by a Lua script."""

    def __init__(self, client: Any, prefix: str = "redress:ratelimit:") -> None:
        self._client = client
        self._script = client.register_script(_TAKE)
        self._prefix = prefix

    def take(self, key: str, rate: float, burst: int) -> None:
        """Take a token from the shared bucket; while Redis does not answer, refuse with
        :class:`BrokerUnavailableError` (503) rather than let requests through unlimited."""
        try:
            allowed, milli = self._script(
                keys=[self._prefix + key], args=[rate, burst, time.time()]
            )
        except redis.RedisError as exc:
            raise BrokerUnavailableError(
                f"the rate limiter's Redis does not answer ({exc}); retry later", retry_after=2.0
            ) from exc
        if not int(allowed):
            tokens = int(milli) / 1000.0
            raise RateLimitedError(
                f"rate limit of {rate:g}/s exceeded", retry_after=(1.0 - tokens) / rate
            )
