"""A requests-per-second limit shared by concurrent tasks (crawler walks, transfer listings)."""

from __future__ import annotations

import time

import anyio

from provena_like._core.errors import UsageError

__all__ = ["RateLimiter"]


class RateLimiter:
    """At most ``rate`` starts per second, shared by every task that awaits :meth:`wait`.

    Example:
        ```python
        limiter = RateLimiter(25.0)
        await limiter.wait()
        ```
    """

    def __init__(self, rate: float | None) -> None:
        if rate is not None and rate <= 0:
            raise UsageError("rate_limit must be above 0 (or None)")
        self._interval = 0.0 if rate is None else 1.0 / rate
        self._next = 0.0

    def _take(self, now: float) -> float:
        """Book the next free slot; returns how long to wait for it."""
        slot = max(now, self._next)
        self._next = slot + self._interval
        return slot - now

    async def wait(self) -> None:
        """Wait for the next free slot."""
        if self._interval:
            delay = self._take(anyio.current_time())
            if delay > 0:
                await anyio.sleep(delay)

    def wait_blocking(self) -> None:
        """:meth:`wait` for a worker thread (sleeps the thread).

        The clock is :func:`time.monotonic`, as asyncio's loop time, so a limiter can be
        shared by tasks and one thread.

        Example:
            ```python
            RateLimiter(None).wait_blocking()  # no limit: returns at once
            ```
        """
        if self._interval:
            delay = self._take(time.monotonic())
            if delay > 0:
                time.sleep(delay)
