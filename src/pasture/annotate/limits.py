"""Request/token rate limits and retry delays for the annotation engine.

Why token buckets: hosted APIs enforce requests-per-minute and tokens-per-minute quotas over a sliding
window. A bucket that refills continuously at ``limit / 60`` per second and holds at most one minute of
quota keeps a run under both limits without idling after short bursts, so 429s become the exception.
"""

from __future__ import annotations

import asyncio
import random
import time


class TokenBucket:
    """A bucket of ``capacity`` units refilled at ``capacity / 60`` units per second (a per-minute quota).

    ``take(n)`` waits until ``n`` units are available and removes them. A request larger than the whole
    capacity is let through once the bucket is full (otherwise it could never run) and leaves the bucket in
    debt, which delays the next requests: the long-run rate still stays under the quota.
    """

    def __init__(self, per_minute: float) -> None:
        if per_minute <= 0:
            raise ValueError(f"a per-minute limit must be positive, got {per_minute}")
        self.capacity = float(per_minute)
        self.rate = self.capacity / 60.0
        self._level = self.capacity
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = time.monotonic()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self.rate)
        self._stamp = now

    async def take(self, n: float) -> None:
        async with self._lock:  # first come, first served: a large request is not starved by small ones
            need = min(n, self.capacity)
            while True:
                self._refill()
                if self._level >= need:
                    self._level -= n
                    return
                await asyncio.sleep((need - self._level) / self.rate)

    def adjust(self, n: float) -> None:
        """Charge (n > 0) or refund (n < 0) units after the fact, e.g. actual minus estimated tokens."""
        self._refill()
        self._level = min(self.capacity, self._level - n)


class RateLimiter:
    """Requests-per-minute and tokens-per-minute limits; either may be None (unlimited)."""

    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None) -> None:
        self.requests = TokenBucket(requests_per_minute) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute) if tokens_per_minute else None

    async def acquire(self, estimated_tokens: int) -> None:
        """Wait for one request slot and ``estimated_tokens`` tokens."""
        if self.requests is not None:
            await self.requests.take(1)
        if self.tokens is not None:
            await self.tokens.take(max(estimated_tokens, 0))

    def settle(self, estimated_tokens: int, actual_tokens: int | None) -> None:
        """Correct the token bucket once the provider said how many tokens a call really used."""
        if self.tokens is not None and actual_tokens is not None:
            self.tokens.adjust(actual_tokens - estimated_tokens)


def backoff_delay(
    attempt: int,
    *,
    base_s: float,
    max_s: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempt`` (1 = first retry).

    Exponential backoff with "equal jitter": half of ``min(max_s, base_s * 2**(attempt-1))`` fixed plus a
    uniformly random other half, so processes that failed together do not retry together. A server's
    ``Retry-After`` is a floor: the engine never retries sooner than the server asked (it may retry later).
    """
    uniform = rng.uniform if rng is not None else random.uniform
    ceiling = min(max_s, base_s * 2 ** max(attempt - 1, 0))
    delay = ceiling / 2 + uniform(0, ceiling / 2)
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return delay
