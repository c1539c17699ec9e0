"""Shared worker-thread hops: calls waiting go together, each gets its own outcome."""

from __future__ import annotations

import threading
from collections.abc import Callable

import anyio
import pytest

from provena_like.storage._hops import SharedHops

pytestmark = pytest.mark.anyio

_WAIT = 10.0


class _Recorder:
    """Calls that note the hop (worker thread and its turn) they ran in."""

    def __init__(self) -> None:
        self.ran: list[tuple[str, int]] = []
        self.hop = 0
        self._idents: set[int] = set()

    def call(self, name: str, gate: threading.Event | None = None) -> Callable[[], str]:
        def run() -> str:
            assert threading.current_thread() is not threading.main_thread()
            if gate is not None:  # the hop's first call: start a new hop number
                self.hop += 1
                assert gate.wait(_WAIT)
            self.ran.append((name, self.hop))
            return name.upper()

        return run


async def _queued(hops: SharedHops, count: int) -> None:
    """Until ``count`` calls wait in the queue."""
    with anyio.fail_after(_WAIT):
        while len(hops._queue) < count:
            await anyio.sleep(0.001)


async def test_calls_arriving_during_a_hop_share_the_next_one() -> None:
    hops, limiter, rec = SharedHops(), anyio.CapacityLimiter(4), _Recorder()
    gate, second = threading.Event(), threading.Event()
    second.set()
    results: dict[str, str] = {}

    async def one(name: str, fn: Callable[[], str]) -> None:
        results[name] = await hops.run(fn, limiter)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, "first", rec.call("first", gate))
        await anyio.sleep(0.05)  # the first hop is running, blocked on the gate
        tg.start_soon(one, "b", rec.call("b", second))
        for name in "cde":
            tg.start_soon(one, name, rec.call(name))
        await _queued(hops, 4)
        gate.set()
    assert results == {name: name.upper() for name in ["first", "b", "c", "d", "e"]}
    # two hops, the second one carrying the four calls that waited, in their order
    assert rec.ran == [("first", 1), ("b", 2), ("c", 2), ("d", 2), ("e", 2)]
    assert not hops._queue and not hops._leading


async def test_each_caller_gets_its_own_exception() -> None:
    hops, limiter = SharedHops(), anyio.CapacityLimiter(4)
    gate = threading.Event()
    outcomes: dict[int, object] = {}

    def fails(n: int) -> Callable[[], int]:
        def run() -> int:
            if n == 0:
                assert gate.wait(_WAIT)
            if n % 2:
                raise ValueError(f"bad {n}")
            return n

        return run

    async def one(n: int) -> None:
        try:
            outcomes[n] = await hops.run(fails(n), limiter)
        except ValueError as exc:
            outcomes[n] = str(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, 0)
        await anyio.sleep(0.05)
        for n in range(1, 5):
            tg.start_soon(one, n)
        await _queued(hops, 4)
        gate.set()
    assert outcomes == {0: 0, 1: "bad 1", 2: 2, 3: "bad 3", 4: 4}


async def test_a_caller_cancelled_while_queued_never_runs() -> None:
    hops, limiter, rec = SharedHops(), anyio.CapacityLimiter(4), _Recorder()
    gate = threading.Event()
    results: list[str] = []

    async def one(name: str, fn: Callable[[], str]) -> None:
        results.append(await hops.run(fn, limiter))

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, "first", rec.call("first", gate))
        await anyio.sleep(0.05)
        with anyio.CancelScope() as cancelled:
            cancelled.cancel()
            with pytest.raises(anyio.get_cancelled_exc_class()):
                # queued behind the running hop, then cancelled before it ends
                await hops.run(rec.call("gone"), limiter)
        assert not hops._queue
        tg.start_soon(one, "after", rec.call("after"))
        await _queued(hops, 1)
        gate.set()
    assert [name for name, _ in rec.ran] == ["first", "after"]
    assert sorted(results) == ["AFTER", "FIRST"]


async def test_a_cancelled_leader_finishes_its_hop_and_hands_over() -> None:
    hops, limiter, rec = SharedHops(), anyio.CapacityLimiter(4), _Recorder()
    gate = threading.Event()
    results: list[str] = []

    async def leader(scope_box: list[anyio.CancelScope]) -> None:
        with anyio.CancelScope() as scope:
            scope_box.append(scope)
            # as anyio.to_thread.run_sync: the hop's outcome, cancelled at the next checkpoint
            results.append(await hops.run(rec.call("leader", gate), limiter))
            await anyio.sleep(0)
            results.append("not cancelled")

    async def one(name: str) -> None:
        results.append(await hops.run(rec.call(name), limiter))

    box: list[anyio.CancelScope] = []
    async with anyio.create_task_group() as tg:
        tg.start_soon(leader, box)
        await anyio.sleep(0.05)
        tg.start_soon(one, "waiting")
        await _queued(hops, 1)
        box[0].cancel()  # while its hop is blocked: the hop still runs to its end
        await anyio.sleep(0.05)
        assert rec.ran == []
        gate.set()
    assert box[0].cancelled_caught
    assert [name for name, _ in rec.ran] == ["leader", "waiting"]  # the lead was handed over
    assert results == ["LEADER", "WAITING"]
    assert not hops._leading


async def test_a_leader_cancelled_while_waiting_for_a_thread_still_runs_its_hop() -> None:
    hops, rec = SharedHops(), _Recorder()
    limiter = anyio.CapacityLimiter(1)
    results: list[str] = []
    box: list[anyio.CancelScope] = []

    async def leader() -> None:
        with anyio.CancelScope() as scope:
            box.append(scope)
            await hops.run(rec.call("cancelled leader"), limiter)
            await anyio.sleep(0)
            results.append("not cancelled")

    async def one(name: str) -> None:
        results.append(await hops.run(rec.call(name), limiter))

    await limiter.acquire()  # no thread for a hop yet: the leader waits for one
    async with anyio.create_task_group() as tg:
        tg.start_soon(leader)
        await anyio.sleep(0.05)
        tg.start_soon(one, "other")
        await _queued(hops, 1)
        box[0].cancel()
        await anyio.sleep(0.05)
        assert rec.ran == []  # still waiting for the thread, cancelled or not
        limiter.release()
    assert box[0].cancelled_caught  # at its next checkpoint, after its hop
    assert [name for name, _ in rec.ran] == ["cancelled leader", "other"]
    assert results == ["OTHER"]
    assert not hops._leading


async def test_callers_cancelled_in_a_hop_waiting_for_a_thread_all_return() -> None:
    # a batch cancelled mid-way: the lead was handed to a caller whose hop carries other
    # callers' calls and waits for a thread when the cancellation comes; it used to leave
    # the calls behind it queued with nobody to lead them, their callers waiting forever
    hops, rec = SharedHops(), _Recorder()
    limiter = anyio.CapacityLimiter(1)
    gate, held, release = threading.Event(), anyio.Event(), anyio.Event()

    async def holder() -> None:
        await limiter.acquire()  # queued for the thread behind the first hop
        held.set()
        await release.wait()
        limiter.release()

    with anyio.fail_after(_WAIT):
        async with anyio.create_task_group() as outer:
            with anyio.CancelScope() as batch:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(hops.run, rec.call("first", gate), limiter)
                    await anyio.sleep(0.05)
                    for name in ("a", "b", "c"):
                        tg.start_soon(hops.run, rec.call(name), limiter)
                    await _queued(hops, 3)
                    outer.start_soon(holder)
                    await anyio.sleep(0.05)
                    gate.set()  # "a" leads the next hop of a, b and c, and waits for a thread
                    await held.wait()
                    await anyio.sleep(0.05)
                    assert not hops._queue and hops._leading
                    outer.start_soon(lambda: _later(release))
                    batch.cancel()
            release.set()
        # every call taken into a hop ran; the next call finds nobody leading
        assert [name for name, _ in rec.ran] == ["first", "a", "b", "c"]
        assert not hops._leading and not hops._queue
        assert await hops.run(rec.call("next"), limiter) == "NEXT"


async def _later(event: anyio.Event) -> None:
    await anyio.sleep(0.1)
    event.set()
