"""Token buckets for Telegram's documented send limits.

Telegram asks bots to stay under about 30 messages per second overall and 20
messages per minute in one group (and about one per second in a private chat).
:class:`SendLimiter` waits, before each send, until both the global bucket and
the chat's bucket have a token. The clock and the sleep are injected so tests
can observe the waiting without spending wall-clock time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``rate`` tokens per second."""

    def __init__(self, rate: float, capacity: float, clock: Clock = time.monotonic) -> None:
        if rate <= 0 or capacity < 1:
            raise ValueError("a token bucket needs rate > 0 and capacity >= 1")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def delay(self) -> float:
        """Seconds until one token is available (0 if one is available now)."""
        self._refill()
        # A tolerance: float refills can stop a hair short of 1 and never quite arrive.
        return 0.0 if self._tokens >= 1 - 1e-9 else (1 - self._tokens) / self.rate

    def take(self) -> None:
        """Spend one token (call only when :meth:`delay` is 0)."""
        self._refill()
        self._tokens -= 1


@dataclass(frozen=True, slots=True)
class SendLimits:
    """Send rates; defaults are Telegram's documented limits."""

    global_per_second: float = 30.0
    group_per_minute: float = 20.0
    private_per_second: float = 1.0


class SendLimiter:
    """Global plus per-chat token buckets; :meth:`acquire` waits for both."""

    def __init__(
        self,
        limits: SendLimits | None = None,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.limits = limits or SendLimits()
        self._clock = clock
        self._sleep = sleep
        self._global = TokenBucket(
            self.limits.global_per_second, max(1.0, self.limits.global_per_second), clock
        )
        self._chats: dict[int, TokenBucket] = {}
        self._chat_locks: dict[int, asyncio.Lock] = {}
        self._lock = asyncio.Lock()  # the global bucket's queue

    def _bucket(self, chat_id: int) -> TokenBucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            if chat_id < 0:  # groups, supergroups and channels have negative IDs
                rate = self.limits.group_per_minute / 60.0
                bucket = TokenBucket(rate, max(1.0, self.limits.group_per_minute), self._clock)
            else:
                rate = self.limits.private_per_second
                bucket = TokenBucket(rate, 1.0, self._clock)
            self._chats[chat_id] = bucket
        return bucket

    async def acquire(self, chat_id: int) -> float:
        """Wait until a message may be sent to ``chat_id``; return the seconds waited.

        A chat's senders queue for that chat's bucket on their own: a group that
        used up its 20 per minute delays only its own next message, never another
        chat's. Only the global bucket is shared.
        """
        waited = 0.0
        async with self._chat_locks.setdefault(chat_id, asyncio.Lock()):
            chat = self._bucket(chat_id)
            while (wait := chat.delay()) > 0:
                await self._sleep(wait)
                waited += wait
            async with self._lock:
                while (wait := self._global.delay()) > 0:
                    await self._sleep(wait)
                    waited += wait
                self._global.take()
            chat.take()
        return waited
