"""A byte budget: bounds the memory a batch holds in buffers, first come first served."""

from __future__ import annotations

from collections import deque

import anyio

__all__ = ["ByteBudget"]


class ByteBudget:
    """At most ``limit`` bytes reserved at once; waiters are served in arrival order.

    A reservation larger than the limit is clamped to the limit (it then waits until it
    holds the whole budget), so one huge buffer can't deadlock a batch.

    Always reserve budget *before* a request slot: the engine never waits for memory while
    holding a connection, so the two limits can't deadlock each other.

    Example:
        ```python
        budget = ByteBudget(64 * 1024 * 1024)
        held = await budget.acquire(8 * 1024 * 1024)
        budget.release(held)
        ```
    """

    def __init__(self, limit: int) -> None:
        if limit <= 0:
            raise ValueError("the byte budget must be positive")
        self._limit = limit
        self._used = 0
        self._waiters: deque[tuple[int, anyio.Event]] = deque()

    @property
    def limit(self) -> int:
        """The most bytes reserved at once."""
        return self._limit

    @property
    def used(self) -> int:
        """Bytes reserved now."""
        return self._used

    async def acquire(self, n: int) -> int:
        """Reserve ``n`` bytes (clamped to the limit), waiting for room.

        Returns:
            The bytes actually reserved: pass them to :meth:`release`.
        """
        n = max(0, min(n, self._limit))
        if not self._waiters and self._used + n <= self._limit:
            self._used += n
            return n
        event = anyio.Event()
        entry = (n, event)
        self._waiters.append(entry)
        try:
            await event.wait()
        except BaseException:
            if entry in self._waiters:
                self._waiters.remove(entry)
            else:  # granted just as we were cancelled: give it back
                self.release(n)
            raise
        return n

    def release(self, n: int) -> None:
        """Give back bytes reserved by :meth:`acquire`."""
        self._used -= n
        while self._waiters and self._used + self._waiters[0][0] <= self._limit:
            size, event = self._waiters.popleft()
            self._used += size
            event.set()
