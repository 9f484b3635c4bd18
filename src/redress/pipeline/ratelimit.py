"""Per-API-key token buckets: in Redis when a broker is configured (shared by every API
process), in a memory-mapped file when several `redress serve` processes share one host
and no broker, in process otherwise."""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import struct
import threading
import time
from pathlib import Path
from typing import Any, Protocol

import redis

from redress.config import Settings
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


class HostTokenBuckets:
    """Token buckets in a file every process of one host maps, so that N `redress serve`
    processes enforce a limit once, not N times.

    The file is a fixed table of slots (a 16-byte digest of the key, tokens, a
    ``CLOCK_MONOTONIC`` stamp, which all processes of a host share), read and written
    under an exclusive ``flock``. A key lives in the first of a few slots after its
    digest's place; when all of those hold other keys, the one idle longest is
    reused (it then starts again from a full bucket, as a new key does). Keys are
    stored only as digests.
    """

    SLOTS = 1 << 14
    PROBE = 16
    _SLOT = struct.Struct("<16sdd")
    _EMPTY = bytes(16)

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        size = self.SLOTS * self._SLOT.size
        if os.fstat(self._fd).st_size < size:
            os.ftruncate(self._fd, size)
        self._map = mmap.mmap(self._fd, size)

    def take(self, key: str, rate: float, burst: int) -> None:
        """Refill by elapsed time, then take one token (as :class:`LocalTokenBuckets`)."""
        digest = hashlib.blake2b(key.encode(), digest_size=16).digest()
        home = int.from_bytes(digest[:8], "little") % self.SLOTS
        slot_size = self._SLOT.size
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                now = time.monotonic()
                chosen, tokens = -1, float(burst)
                oldest, oldest_stamp = home, float("inf")
                for step in range(self.PROBE):
                    slot = (home + step) % self.SLOTS
                    held, held_tokens, stamp = self._SLOT.unpack_from(self._map, slot * slot_size)
                    if held == digest:
                        chosen = slot
                        if stamp <= now:  # a stamp from before a reboot is no stamp
                            tokens = min(float(burst), held_tokens + (now - stamp) * rate)
                        break
                    if held == self._EMPTY:
                        chosen = slot
                        break
                    if stamp < oldest_stamp:
                        oldest, oldest_stamp = slot, stamp
                if chosen < 0:
                    chosen = oldest
                allowed = tokens >= 1.0
                left = tokens - 1.0 if allowed else tokens
                self._SLOT.pack_into(self._map, chosen * slot_size, digest, left, now)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        if not allowed:
            raise RateLimitedError(
                f"rate limit of {rate:g}/s exceeded", retry_after=(1.0 - tokens) / rate
            )

    def close(self) -> None:
        """Unmap the table and close the file."""
        self._map.close()
        os.close(self._fd)


def host_buckets(settings: Settings) -> LocalTokenBuckets | HostTokenBuckets:
    """Buckets this host's `redress serve` processes share: in a file in the home when
    there are several of them, in this process when it is the only one."""
    if settings.serve_processes > 1:
        settings.home.mkdir(parents=True, exist_ok=True)
        return HostTokenBuckets(settings.home / "ratelimit.buckets")
    return LocalTokenBuckets()


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
