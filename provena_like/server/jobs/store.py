"""The SQL of the job runner: every change of a job row is one compare-and-set ``UPDATE``.

Why no queue library: procrastinate and pgqueuer run on PostgreSQL only (LISTEN/NOTIFY,
``SKIP LOCKED``, their own drivers), huey is synchronous with its own storage, and taskiq
needs a broker; none runs on both SQLite and PostgreSQL through the server's async SQLAlchemy
engine. So the state lives in the ``jobs`` table and each transition is an ``UPDATE`` whose
``WHERE`` states what must still hold (a job is still queued; a lease is still ours or has
expired), checked with the row count. On SQLite the writer lock serialises the updates; on
PostgreSQL a concurrent ``UPDATE`` of the same row re-checks its ``WHERE`` against the
committed row and matches nothing. Either way one claim wins and the others see 0 rows.

Each write runs in a transaction of its own that starts with the ``UPDATE`` (reads come
after), so a SQLite connection never has to upgrade a read snapshot to a write lock, and is
shielded from cancellation: a shutdown or a cancelled handler waits for the short
transaction to end rather than cutting it in half (which leaves SQLAlchemy to terminate the
connection, and the job's row in doubt).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

import anyio
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from provena_like.server.db.base import utcnow
from provena_like.server.jobs.model import JobRecord, JobState
from provena_like.server.jobs.tables import JobRow

Sessions = async_sessionmaker[AsyncSession]
P = ParamSpec("P")
T = TypeVar("T")

CLAIM_BATCH = 8
"""Candidates read per claim: the next ones are tried when another worker won the first."""


def new_row(
    kind: str,
    payload: Mapping[str, Any],
    *,
    job_id: str,
    owner: str | None,
    max_attempts: int,
) -> JobRow:
    """A queued job, not yet added to any session."""
    now = utcnow()
    return JobRow(
        id=job_id,
        kind=kind,
        payload=dict(payload),
        state=JobState.QUEUED.value,
        attempts=0,
        max_attempts=max_attempts,
        cancel_requested=False,
        progress={},
        owner=owner,
        created_at=now,
        updated_at=now,
    )


def to_record(row: JobRow) -> JobRecord:
    """The typed snapshot of a row."""
    return JobRecord(
        id=row.id,
        kind=row.kind,
        payload=row.payload,
        state=JobState(row.state),
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        cancel_requested=row.cancel_requested,
        progress=row.progress or {},
        result=row.result,
        error=row.error,
        owner=row.owner,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        updated_at=row.updated_at,
    )


def error_of(kind: str, message: str, attempt: int) -> dict[str, Any]:
    """The ``error`` document of a job: what went wrong, on which attempt."""
    return {"type": kind, "message": message, "attempt": attempt}


def _ready(now: datetime) -> ColumnElement[bool]:
    return and_(
        JobRow.state == JobState.QUEUED.value,
        or_(JobRow.run_after.is_(None), JobRow.run_after <= now),
    )


def _lapsed(now: datetime) -> ColumnElement[bool]:
    return and_(JobRow.state == JobState.RUNNING.value, JobRow.lease_expires_at < now)


def _held(job_id: str, lease: str) -> ColumnElement[bool]:
    return and_(
        JobRow.id == job_id,
        JobRow.lease_owner == lease,
        JobRow.state == JobState.RUNNING.value,
    )


async def _set(session: AsyncSession, where: ColumnElement[bool], **values: Any) -> int:
    """``UPDATE jobs SET values WHERE where``; the number of rows it changed."""
    statement = (
        update(JobRow).where(where).values(**values).execution_options(synchronize_session=False)
    )
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


def _shielded(fn: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """Run ``fn`` to the end even when the caller is cancelled meanwhile."""

    @functools.wraps(fn)
    async def run(*args: P.args, **kwargs: P.kwargs) -> T:
        with anyio.CancelScope(shield=True):
            result = await fn(*args, **kwargs)
        return result

    return run


@dataclass(frozen=True)
class Claim:
    """A job a worker now holds: its snapshot and the lease token that proves it."""

    record: JobRecord
    lease: str


@_shielded
async def claim(
    sessions: Sessions, kinds: frozenset[str], lease: str, lease_seconds: float
) -> Claim | None:
    """Take the oldest runnable job of one of ``kinds``, or ``None`` when there is none.

    A job whose lease lapsed (its worker died) is taken over with one more attempt; when it
    has none left it is failed instead, with an ``interrupted`` error.

    Args:
        sessions: The session factory of the runner.
        kinds: The kinds this runner has handlers for.
        lease: The token of this claim (unique per claim).
        lease_seconds: How long the claim holds without renewal.
    """
    if not kinds:
        return None
    now = utcnow()
    async with sessions() as session:
        candidates = (
            await session.execute(
                select(JobRow.id, JobRow.state, JobRow.attempts, JobRow.max_attempts)
                .where(JobRow.kind.in_(sorted(kinds)), or_(_ready(now), _lapsed(now)))
                .order_by(JobRow.created_at, JobRow.id)
                .limit(CLAIM_BATCH)
            )
        ).all()
    for job_id, state, attempts, max_attempts in candidates:
        async with sessions() as session, session.begin():
            if state == JobState.RUNNING.value and attempts >= max_attempts:
                message = (
                    f"interrupted {attempts} times: the worker running attempt {attempts} "
                    f"of {max_attempts} stopped without finishing (its lease lapsed)"
                )
                await _set(
                    session,
                    and_(JobRow.id == job_id, _lapsed(now), JobRow.attempts >= max_attempts),
                    state=JobState.FAILED.value,
                    error=error_of("interrupted", message, attempts),
                    lease_owner=None,
                    lease_expires_at=None,
                    finished_at=now,
                    updated_at=now,
                )
                continue
            taken = await _set(
                session,
                and_(
                    JobRow.id == job_id,
                    or_(_ready(now), and_(_lapsed(now), JobRow.attempts < JobRow.max_attempts)),
                ),
                state=JobState.RUNNING.value,
                attempts=JobRow.attempts + 1,
                lease_owner=lease,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                run_after=None,
                started_at=func.coalesce(JobRow.started_at, now),
                updated_at=now,
            )
            if taken != 1:
                continue
            row = await session.get(JobRow, job_id, populate_existing=True)
            assert row is not None  # we hold it
            return Claim(to_record(row), lease)
    return None


@_shielded
async def renew(
    sessions: Sessions,
    job_id: str,
    lease: str,
    lease_seconds: float,
    progress: Mapping[str, Any] | None = None,
) -> bool | None:
    """Extend a held lease (and save ``progress``); whether a cancel was requested.

    Returns:
        ``None`` when the lease is no longer ours (the job was taken over or finished),
        else whether someone asked to cancel the job.
    """
    now = utcnow()
    values: dict[str, Any] = {
        "lease_expires_at": now + timedelta(seconds=lease_seconds),
        "updated_at": now,
    }
    if progress is not None:
        values["progress"] = dict(progress)
    async with sessions() as session, session.begin():
        if await _set(session, _held(job_id, lease), **values) != 1:
            return None
        flag = await session.scalar(select(JobRow.cancel_requested).where(JobRow.id == job_id))
        return bool(flag)


@_shielded
async def finish(
    sessions: Sessions,
    job_id: str,
    lease: str,
    state: JobState,
    *,
    result: Mapping[str, Any] | None = None,
    error: Mapping[str, Any] | None = None,
) -> bool:
    """Put a held job in a final state; ``False`` when the lease was no longer ours."""
    now = utcnow()
    async with sessions() as session, session.begin():
        changed = await _set(
            session,
            _held(job_id, lease),
            state=state.value,
            result=None if result is None else dict(result),
            error=None if error is None else dict(error),
            lease_owner=None,
            lease_expires_at=None,
            finished_at=now,
            updated_at=now,
        )
    return changed == 1


@_shielded
async def requeue(
    sessions: Sessions,
    job_id: str,
    lease: str,
    *,
    give_back: bool,
    delay: float = 0.0,
    error: Mapping[str, Any] | None = None,
) -> bool:
    """Put a held job back in the queue; ``False`` when the lease was no longer ours.

    Args:
        sessions: The session factory of the runner.
        job_id: The job.
        lease: The token of the claim.
        give_back: Whether the attempt does not count (a clean shutdown interrupted it).
        delay: Seconds before it may run again.
        error: Why the attempt failed (kept as the job's last error).
    """
    now = utcnow()
    values: dict[str, Any] = {
        "state": JobState.QUEUED.value,
        "lease_owner": None,
        "lease_expires_at": None,
        "run_after": now + timedelta(seconds=delay) if delay > 0 else None,
        "updated_at": now,
    }
    if give_back:
        values["attempts"] = JobRow.attempts - 1
    if error is not None:
        values["error"] = dict(error)
    async with sessions() as session, session.begin():
        changed = await _set(session, _held(job_id, lease), **values)
    return changed == 1


async def request_cancel(session: AsyncSession, job_id: str) -> bool:
    """Cancel a queued job now, or flag a running one; ``False`` when there is nothing to do.

    Runs in the caller's transaction.
    """
    now = utcnow()
    queued = and_(JobRow.id == job_id, JobRow.state == JobState.QUEUED.value)
    if await _set(
        session,
        queued,
        state=JobState.CANCELED.value,
        cancel_requested=True,
        finished_at=now,
        updated_at=now,
    ):
        return True
    running = and_(JobRow.id == job_id, JobRow.state == JobState.RUNNING.value)
    return await _set(session, running, cancel_requested=True, updated_at=now) == 1


async def get(session: AsyncSession, job_id: str) -> JobRecord | None:
    """The snapshot of a job, read in the caller's session; ``None`` when there is none."""
    row = await session.get(JobRow, job_id, populate_existing=True)
    return None if row is None else to_record(row)
