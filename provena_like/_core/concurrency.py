"""Running async work on many things at once, the first failure raised as itself.

Example:
    ```python
    seen: list[int] = []

    async def work(n: int) -> None:
        seen.append(n)

    await each(range(3), work, limiter=anyio.CapacityLimiter(2))
    assert sorted(seen) == [0, 1, 2]
    ```
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import anyio

__all__ = ["each"]

T = TypeVar("T")


async def each(
    things: Iterable[T],
    work: Callable[[T], Awaitable[None]],
    *,
    limiter: anyio.CapacityLimiter,
) -> None:
    """``work`` on each thing, at most the limiter's tokens at once.

    The first failure cancels the work in flight and the rest, and is raised as itself (not
    in an ``ExceptionGroup``); cancellation from outside goes through as it came.

    Args:
        things: What to work on.
        work: The work on one thing.
        limiter: How many at once (shared with whoever else holds it).

    Raises:
        Exception: The first failure of ``work``.
    """
    errors: list[Exception] = []

    async def run(thing: T, scope: anyio.CancelScope) -> None:
        try:
            async with limiter:
                await work(thing)
        except Exception as exc:
            errors.append(exc)
            scope.cancel()

    async with anyio.create_task_group() as tg:
        for thing in things:
            tg.start_soon(run, thing, tg.cancel_scope)
    if errors:
        raise errors[0]
