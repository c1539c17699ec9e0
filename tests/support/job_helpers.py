"""Helpers for tests of the server's job runner: a migrated database, waiting for a job."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from provena_like.server.db.base import create_engine, create_sessionmaker, utcnow
from provena_like.server.db.schema import upgrade_schema
from provena_like.server.jobs import JobRecord, JobRunner
from provena_like.server.jobs.tables import JobRow

Sessions = async_sessionmaker[AsyncSession]


async def migrate(url: str) -> str:
    """Bring the database at ``url`` to the newest schema; ``url``."""
    engine = create_engine(url)
    try:
        await upgrade_schema(engine)
    finally:
        await engine.dispose()
    return url


async def migrated_sqlite(path: Path) -> str:
    """Create a SQLite database file at ``path`` with every migration applied; its URL."""
    return await migrate(f"sqlite+aiosqlite:///{path.as_posix()}")


@asynccontextmanager
async def open_sessions(url: str) -> AsyncIterator[Sessions]:
    """A session factory on an engine of its own (one per simulated server process)."""
    engine = create_engine(url)
    try:
        yield create_sessionmaker(engine)
    finally:
        await engine.dispose()


async def enqueue(
    runner: JobRunner, sessions: Sessions, kind: str, payload: dict[str, Any], **kwargs: Any
) -> str:
    """Enqueue one job in a transaction of its own and commit it; its id."""
    async with sessions() as session, session.begin():
        return await runner.enqueue(session, kind, payload, **kwargs)


async def read_job(sessions: Sessions, job_id: str) -> JobRecord:
    """The job's current snapshot (it must exist)."""
    async with sessions() as session:
        record = await JobRunner().get(session, job_id)
    assert record is not None, f"no job {job_id}"
    return record


async def wait_for_job(
    sessions: Sessions,
    job_id: str,
    until: Callable[[JobRecord], bool],
    *,
    timeout: float = 20.0,
) -> JobRecord:
    """Poll the job until ``until(record)`` holds; fail after ``timeout`` seconds."""
    record = await read_job(sessions, job_id)
    with anyio.move_on_after(timeout):
        while not until(record):
            await anyio.sleep(0.05)
            record = await read_job(sessions, job_id)
        return record
    raise AssertionError(f"job {job_id} did not get there in {timeout} s: {record}")


async def set_job(sessions: Sessions, job_id: str, **values: Any) -> None:
    """Overwrite columns of a job row (to simulate what another process or a crash left)."""
    async with sessions() as session, session.begin():
        await session.execute(
            update(JobRow)
            .where(JobRow.id == job_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


async def leave_as_crashed(
    sessions: Sessions, job_id: str, *, attempts: int, lapses_in: float, **values: Any
) -> None:
    """Make a job look like a worker died running attempt ``attempts`` of it.

    Its lease, held by a dead process, lapses ``lapses_in`` seconds from now (negative: it
    already has); ``values`` sets other columns (``progress``...).
    """
    await set_job(
        sessions,
        job_id,
        state="running",
        attempts=attempts,
        lease_owner="dead-host:1:dead",
        lease_expires_at=utcnow() + timedelta(seconds=lapses_in),
        **values,
    )
