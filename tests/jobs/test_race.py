"""Two runners (two engines: two server processes) on one SQLite file run each job exactly once."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Awaitable, Callable

import anyio
import pytest

from provena_like.server.jobs import JobContext, JobHandler, JobRunner, JobState
from tests.support.job_helpers import (
    Sessions,
    enqueue,
    leave_as_crashed,
    open_sessions,
    wait_for_job,
)

pytestmark = pytest.mark.anyio

JOBS = 40


class Ledger:
    """Which runner ran which job, and whether one job ever ran twice at the same time."""

    def __init__(self) -> None:
        self.runs: Counter[str] = Counter()
        self.by_runner: Counter[str] = Counter()
        self.running: set[str] = set()
        self.overlaps: list[str] = []

    def handler(self, name: str) -> JobHandler:
        async def work(ctx: JobContext) -> dict[str, str]:
            if ctx.job_id in self.running:
                self.overlaps.append(ctx.job_id)
            self.running.add(ctx.job_id)
            self.runs[ctx.job_id] += 1
            self.by_runner[name] += 1
            try:
                await anyio.sleep(random.uniform(0.0, 0.03))
                await ctx.checkpoint({"by": name})
                await anyio.sleep(random.uniform(0.0, 0.03))
            finally:
                self.running.discard(ctx.job_id)
            return {"by": name}

        return work


async def race(
    url: str,
    ledger: Ledger,
    prepare: Callable[[Sessions, list[str]], Awaitable[None]] | None = None,
) -> list[str]:
    runners = [JobRunner(workers=3, lease_seconds=5.0, poll_seconds=0.05) for _ in range(2)]
    for n, runner in enumerate(runners):
        runner.register("test.race", ledger.handler(f"runner-{n}"), max_attempts=3)
    async with open_sessions(url) as one, open_sessions(url) as two:
        job_ids = [await enqueue(runners[0], one, "test.race", {"n": n}) for n in range(JOBS)]
        if prepare is not None:
            await prepare(one, job_ids)
        async with runners[0].running(one), runners[1].running(two):
            records = [await wait_for_job(one, job_id, lambda r: r.finished) for job_id in job_ids]
    assert [r.state for r in records] == [JobState.SUCCEEDED] * JOBS
    return job_ids


async def test_two_runners_run_each_queued_job_exactly_once(job_db: str) -> None:
    ledger = Ledger()
    job_ids = await race(job_db, ledger)
    assert ledger.runs == Counter(dict.fromkeys(job_ids, 1))
    assert ledger.overlaps == []
    assert sum(ledger.by_runner.values()) == JOBS


async def test_two_runners_take_over_each_lapsed_job_exactly_once(job_db: str) -> None:
    """Every job left running by a dead worker is reclaimed by exactly one of the runners."""

    async def lapse(sessions: Sessions, job_ids: list[str]) -> None:
        for job_id in job_ids:
            await leave_as_crashed(sessions, job_id, attempts=1, lapses_in=-1.0)

    ledger = Ledger()
    job_ids = await race(job_db, ledger, lapse)
    assert ledger.runs == Counter(dict.fromkeys(job_ids, 1))
    assert ledger.overlaps == []
