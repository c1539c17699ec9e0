"""A requests-per-second limit shared by concurrent tasks (crawler walks, transfer listings)."""

from __future__ import annotations

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

    async def wait(self) -> None:
        """Wait for the next free slot."""
        if not self._interval:
            return
        now = anyio.current_time()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await anyio.sleep(slot - now)
