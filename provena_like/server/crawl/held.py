"""Held polls of a crawl job: ``GET /crawl/jobs/{id}`` answers when the job changes.

The route tags the job's document (``ETag``) and holds a poll that names that tag and asks
for ``Prefer: wait=<seconds>`` while the job is queued or running
(:mod:`provena_like.server.held_polls`). While it is held, no database connection is kept:
every :data:`~provena_like.server.held_polls.RECHECK` seconds it reads the job's
:func:`progress` (its row, its runner job's state and attempts, how many events it has:
three small reads), and once that moves, or the wait is over, the route builds the document
again. The document's count of unacknowledged records (a ``COUNT`` over the job's results,
which an acknowledgement changes) is not read every time: only then.
"""

from __future__ import annotations

from typing import Any

import anyio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from provena_like.server.crawl.tables import CrawlEventRow, CrawlJobRow
from provena_like.server.held_polls import RECHECK
from provena_like.server.jobs import JobRunner

__all__ = ["moved", "progress"]


async def progress(session: AsyncSession, runner: JobRunner, job_id: str) -> list[Any] | None:
    """What moves while a job runs: its row, its runner job's state, its events' count.

    ``None`` when the job is gone.
    """
    row = await session.get(CrawlJobRow, job_id, populate_existing=True)
    if row is None:
        return None
    job = await runner.get(session, job_id)
    events = await session.scalar(
        select(func.count()).select_from(CrawlEventRow).where(CrawlEventRow.job_id == job_id)
    )
    return [
        row.state,
        row.files,
        row.bytes,
        row.groups,
        row.errors,
        row.records,
        row.error,
        str(row.started_at),
        str(row.finished_at),
        None if job is None else (job.state.value, job.attempts, job.cancel_requested),
        int(events or 0),
    ]


async def moved(
    factory: async_sessionmaker[AsyncSession],
    runner: JobRunner,
    job_id: str,
    before: list[Any] | None,
    wait: float,
) -> bool:
    """Whether the job's :func:`progress` moved from ``before`` within ``wait`` seconds."""
    deadline = anyio.current_time() + wait
    while True:
        async with factory() as session:
            now = await progress(session, runner, job_id)
        if now != before:
            return True
        left = deadline - anyio.current_time()
        if left <= 0:
            return False
        await anyio.sleep(min(left, RECHECK))
