"""The routes of server-side crawl jobs, under ``/crawl``.

- ``POST /crawl/jobs``: start a crawl of a dataset or a transfer collection the caller may
  read data of (201, the job);
- ``GET /crawl/jobs``: the caller's jobs, newest first (``state`` filters), one page at a time;
- ``GET /crawl/jobs/{id}``: one job: state, counters, events (with an ``ETag``; a poll that
  names it and sends ``Prefer: wait=<seconds>`` is held until the job changes, see
  :mod:`provena_like.server.crawl.held`);
- ``POST /crawl/jobs/{id}/flush``: lease the next unacknowledged records (and acknowledge a
  previous page's cursor);
- ``POST /crawl/jobs/{id}/ack``: acknowledge a page's cursor;
- ``POST /crawl/jobs/{id}/cancel``: stop it (a queued job at once, a running one promptly).

Only a job's owner (and system admins) see it: anyone else gets a 404, as if it did not
exist. Errors are the server's ``{"error": {...}}`` bodies.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from provena_like.models.crawl_jobs import (
    CRAWL_JOB_STATES,
    CrawlJob,
    CrawlJobAck,
    CrawlJobAcked,
    CrawlJobFlush,
    CrawlJobPage,
    CrawlJobRequest,
    CrawlJobState,
)
from provena_like.models.shared import Page
from provena_like.server.crawl.held import moved, progress
from provena_like.server.crawl.service import ack as ack_cursor
from provena_like.server.crawl.service import (
    end_job,
    flush,
    job_document,
    load_job,
    reconcile,
    start,
)
from provena_like.server.crawl.tables import CrawlJobRow
from provena_like.server.held_polls import PollCap, not_modified, preferred_wait, weak_tag
from provena_like.server.jobs import JobRunner
from provena_like.server.pagination import KeyColumn, keyset_page
from provena_like.server.params import Cursor, PageSize, error_responses
from provena_like.server.security import Principal, db_session, require_principal

__all__ = ["router"]

router = APIRouter(
    prefix="/crawl", tags=["crawl"], responses=error_responses(400, 401, 403, 404, 422)
)

Caller = Annotated[Principal, Depends(require_principal)]
Session = Annotated[AsyncSession, Depends(db_session)]

_NEWEST_FIRST = [
    KeyColumn(CrawlJobRow.created_at, "time", lambda r: r.created_at, descending=True),
    KeyColumn(CrawlJobRow.id, "str", lambda r: r.id, descending=True),
]


def _runner(request: Request) -> JobRunner:
    runner: JobRunner = request.app.state.job_runner
    return runner


async def _current(
    request: Request, session: AsyncSession, caller: Principal, job_id: str
) -> CrawlJobRow:
    """The caller's job, reconciled with its runner job (404 for anyone else)."""
    row = await load_job(session, caller, job_id)
    if await reconcile(request.app.state.sessions, _runner(request), row):
        await session.refresh(row)
    return row


@router.post(
    "/jobs",
    status_code=201,
    summary="Start a crawl job",
    responses=error_responses(409, 502, 503),
)
async def start_job(
    request: Request, caller: Caller, session: Session, body: Annotated[CrawlJobRequest, Body()]
) -> CrawlJob:
    """Start crawling a dataset or a transfer collection on the server.

    Needs ``data-read`` on the dataset or collection (403 without, 404 when there is none).
    """
    job_id = await start(request.app, caller, body)
    row = await load_job(session, caller, job_id)
    return CrawlJob.model_validate(await job_document(session, _runner(request), row))


@router.get("/jobs", summary="List your crawl jobs")
async def list_jobs(
    request: Request,
    caller: Caller,
    session: Session,
    state: Annotated[CrawlJobState | None, Query(description="only jobs in this state")] = None,
    page_size: PageSize = 50,
    cursor: Cursor = None,
) -> Page[CrawlJob]:
    """The caller's crawl jobs, newest first (a system admin's too: only their own)."""
    query = select(CrawlJobRow).where(CrawlJobRow.owner == caller.username)
    if state is not None:
        query = query.where(CrawlJobRow.state == state)
    rows, next_cursor = await keyset_page(
        session,
        query,
        _NEWEST_FIRST,
        cursor=cursor,
        page_size=page_size,
        scope=[caller.username, state],
    )
    runner = _runner(request)
    items = [CrawlJob.model_validate(await job_document(session, runner, r)) for r in rows]
    return Page[CrawlJob](items=items, next_cursor=next_cursor)


@router.get(
    "/jobs/{job_id}",
    summary="Read a crawl job",
    response_model=CrawlJob,
    responses={
        304: {
            "description": "``If-None-Match`` names the job's current state (after the wait "
            "of ``Prefer: wait``, if the job is queued or running)"
        }
    },
)
async def get_job(
    request: Request, response: Response, caller: Caller, session: Session, job_id: str
) -> Any:
    """A crawl job's state, counters (files, bytes, groups, errors) and events.

    The answer's ``ETag`` tags the document; ``If-None-Match: <that tag>`` makes it a ``304``
    while the document is the same. With ``Prefer: wait=<seconds>`` as well (RFC 7240), the
    poll of a queued or running job is held until the job changes (``200``) or the seconds
    pass (``304``), at most 10 s.
    """
    runner = _runner(request)
    row = await _current(request, session, caller, job_id)
    conditional = "if-none-match" in request.headers and row.state not in CRAWL_JOB_STATES
    wait = preferred_wait(request.headers) if conditional else None
    # read before the document: a change made after this reading is seen by the wait
    before = await progress(session, runner, row.id) if wait else None
    document = await job_document(session, runner, row)
    tag = weak_tag(document)
    response.headers["ETag"] = tag
    if not not_modified(request.headers, tag):
        return CrawlJob.model_validate(document)
    if document["state"] in CRAWL_JOB_STATES:
        wait = None  # ended: never held
    cap: PollCap = request.app.state.crawl_polls
    with cap.holding() as held:
        if not wait or not held:  # none asked for (or 0 s), or too many held
            return Response(status_code=304, headers={"ETag": tag})
        await session.close()  # no connection kept while the poll is held
        await moved(request.app.state.sessions, runner, row.id, before, wait)
    # the document again: moved, or acknowledged meanwhile (only the document says)
    row = await _current(request, session, caller, job_id)
    document = await job_document(session, runner, row)
    applied = {"Preference-Applied": f"wait={wait:g}"}
    now = weak_tag(document)
    if now == tag:
        return Response(status_code=304, headers={"ETag": tag, **applied})
    response.headers.update({"ETag": now, **applied})
    return CrawlJob.model_validate(document)


@router.post("/jobs/{job_id}/flush", summary="Lease the next records of a crawl job")
async def flush_job(
    request: Request,
    caller: Caller,
    session: Session,
    job_id: str,
    body: Annotated[CrawlJobFlush, Body()],
) -> CrawlJobPage:
    """Up to ``limit`` records not acknowledged yet, leased to a new ``cursor``.

    Acknowledge the cursor (here as ``ack`` of the next flush, or with ``/ack``) once the
    records are safe; records not acknowledged within ``lease_seconds`` are delivered again.
    """
    row = await _current(request, session, caller, job_id)
    page: dict[str, Any] = await flush(request.app.state.sessions, _runner(request), row, body)
    return CrawlJobPage.model_validate(page)


@router.post("/jobs/{job_id}/ack", summary="Acknowledge a page of a crawl job's records")
async def ack_job(
    request: Request,
    caller: Caller,
    session: Session,
    job_id: str,
    body: Annotated[CrawlJobAck, Body()],
) -> CrawlJobAcked:
    """Mark the records leased to ``cursor`` delivered.

    ``acked`` is 0 when the cursor's lease lapsed and its records were leased again, or when
    it was acknowledged before.
    """
    await load_job(session, caller, job_id)
    await session.commit()
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with factory() as writer, writer.begin():
        acked = await ack_cursor(writer, job_id, body.cursor)
    return CrawlJobAcked(acked=acked)


@router.post("/jobs/{job_id}/cancel", summary="Cancel a crawl job")
async def cancel_job(request: Request, caller: Caller, session: Session, job_id: str) -> CrawlJob:
    """Stop a crawl job: it ends ``canceled`` now, and its run stops at its next step.

    The records stored so far stay readable. Cancelling a finished job changes nothing.
    """
    row = await _current(request, session, caller, job_id)
    await session.commit()
    runner = _runner(request)
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with factory() as writer, writer.begin():
        message = f"canceled by {caller.username}"
        if await end_job(writer, row.id, "canceled", None, ("CANCELED", message)):
            await runner.request_cancel(writer, row.id)
    await session.refresh(row)
    return CrawlJob.model_validate(await job_document(session, runner, row))
