"""Short blocking calls that share worker-thread hops: one hop runs every call waiting.

A hop to a worker thread costs the event loop more than a small file's whole write: the
queue's lock, waking a thread (a system call made holding the GIL) and being woken back.
Measured on the 2-core loopback machine, downloading 2,000 files of 4 KiB with one hop each,
the hops took about 30 % of the event loop's time (py-spy, samples holding the GIL).
Writing on the event loop instead is no better: creating a file can take long (ext4 scans
its inode bitmap past recently deleted inodes), and the loop would stall meanwhile.

:class:`SharedHops` runs each call in a worker thread, but calls that arrive while a hop is
running wait and then go together in the next one: the first caller leads (takes every call
queued, runs them in one hop) and, when its hop ends, hands the lead to the first caller
still waiting. With 16 small files in flight, a hop carries several files.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

import anyio

__all__ = ["SharedHops"]

T = TypeVar("T")


class _Call(Generic[T]):
    """One blocking call, its outcome, and the event its caller waits on."""

    __slots__ = ("done", "error", "fn", "lead", "result", "woken")

    def __init__(self, fn: Callable[[], T]) -> None:
        self.fn = fn
        self.done = False
        self.lead = False
        self.result: T | None = None
        self.error: Exception | None = None
        self.woken = anyio.Event()

    def run(self) -> None:
        try:
            self.result = self.fn()
        except Exception as exc:
            self.error = exc
        self.done = True

    def outcome(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


def _run_all(calls: list[_Call[Any]]) -> None:
    for call in calls:
        call.run()


class SharedHops:
    """Runs short blocking calls in worker threads, the calls waiting meanwhile in one hop.

    Each call's exception is raised to its own caller. A caller cancelled while its call
    is still queued takes it out of the queue; once its call is in a hop, it waits for the
    hop to end (as :func:`anyio.to_thread.run_sync` does) and then is cancelled.

    Example:
        ```python
        hops, limiter, done = SharedHops(), anyio.CapacityLimiter(4), []
        async with anyio.create_task_group() as tg:
            for n in range(3):
                tg.start_soon(hops.run, lambda n=n: done.append(n), limiter)
        assert sorted(done) == [0, 1, 2]
        ```
    """

    def __init__(self) -> None:
        self._queue: list[_Call[Any]] = []
        self._leading = False

    async def run(self, fn: Callable[[], T], limiter: anyio.CapacityLimiter) -> T:
        """Call ``fn`` in a worker thread (bounded by ``limiter``), with the calls waiting."""
        call = _Call(fn)
        self._queue.append(call)
        if self._leading:
            await self._wait(call)
            if call.done:
                return call.outcome()
        self._leading = True
        await self._lead(limiter)
        return call.outcome()

    async def _wait(self, call: _Call[Any]) -> None:
        """Wait until ``call`` is done or leads."""
        try:
            await call.woken.wait()
        except BaseException:
            if call in self._queue:  # not in a hop: it never runs
                self._queue.remove(call)
                if call.lead:  # handed the lead: pass it on
                    self._hand_over()
            else:  # in a hop now, which runs it whatever happens: wait for it
                with anyio.CancelScope(shield=True):
                    await call.woken.wait()
            raise

    async def _lead(self, limiter: anyio.CapacityLimiter) -> None:
        """Run every queued call (the leader's among them) in one hop, then hand the lead over.

        The hop is shielded from cancellation, its wait for ``limiter`` included: the calls it
        took from the queue have callers waiting for them, and a hop that gave up before it
        ran them would leave those callers (cancelled or not) with nobody to run them.
        """
        calls, self._queue = self._queue, []
        try:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(_run_all, calls, limiter=limiter)
        except BaseException as exc:  # the hop itself failed: so did each call it had not run
            error = exc if isinstance(exc, Exception) else RuntimeError(f"hop interrupted: {exc!r}")
            for missed in calls:
                if not missed.done:
                    missed.error, missed.done = error, True
            raise
        finally:
            for done in calls:
                done.woken.set()
            self._hand_over()

    def _hand_over(self) -> None:
        """Wake the first caller waiting to lead the next hop, if any; else stop leading."""
        if not self._queue:
            self._leading = False
            return
        first = self._queue[0]
        first.lead = True
        first.woken.set()
