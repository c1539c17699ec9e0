"""The task routes of the transfer service (Globus Transfer API v0.10).

``POST /v0.10/transfer`` and ``/v0.10/delete`` submit a task (:func:`~.tasks.submit`);
``GET /v0.10/task/{id}``, ``PUT`` (label, deadline), ``POST .../cancel``, ``GET
.../event_list``, ``.../successful_transfers`` and ``.../skipped_errors`` read and change one;
``GET /v0.10/task_list`` lists the caller's. Only a task's owner (or a system admin) sees it:
anyone else gets a 404, as if it did not exist. Errors are Type-Zero documents
(:mod:`.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Body, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from provena_like.models.transfer import DeleteDocument, TransferDocument
from provena_like.server.jobs import JobRunner
from provena_like.server.middleware import current_request_id
from provena_like.server.security import Principal, db_session, require_principal
from provena_like.server.transfer.errors import ERROR_RESPONSES, TransferAPIError, bad_request
from provena_like.server.transfer.task_tables import TaskEventRow, TaskItemRow, TaskRow
from provena_like.server.transfer.tasks import (
    ACTIVE,
    finish,
    load_task,
    reconcile,
    submit,
    task_document,
    task_time,
)
from provena_like.server.transfer.watch import (
    RECHECK,
    TaskWatch,
    changed_on_commit,
    not_modified,
    preferred_wait,
    state_tag,
)

__all__ = ["TaskUpdate", "router"]

router = APIRouter(prefix="/v0.10", tags=["transfer"], responses=ERROR_RESPONSES)

Caller = Annotated[Principal, Depends(require_principal)]
Session = Annotated[AsyncSession, Depends(db_session)]

MAX_PAGE = 1000
"""The largest page of ``task_list``, ``event_list`` and the marker-paged lists."""
MAX_OFFSET = 2**62
"""The largest ``offset`` of a listing: with ``limit`` added it still fits a 64-bit SQL integer."""


def _stamped(request: Request, body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "request_id": current_request_id(), "resource": request.url.path}


@router.post("/transfer", summary="Submit a transfer task")
async def submit_transfer(
    request: Request, caller: Caller, document: Annotated[TransferDocument, Body()]
) -> dict[str, Any]:
    """Accept a transfer (``Accepted``), or find the task of its ``submission_id``."""
    return _stamped(request, await submit(request.app, caller, document))


@router.post("/delete", summary="Submit a delete task")
async def submit_delete(
    request: Request, caller: Caller, document: Annotated[DeleteDocument, Body()]
) -> dict[str, Any]:
    """Accept a delete (``Accepted``), or find the task of its ``submission_id``."""
    return _stamped(request, await submit(request.app, caller, document))


async def _current(
    request: Request, session: AsyncSession, caller: Principal, task_id: str
) -> TaskRow:
    row = await load_task(session, caller, task_id)
    runner: JobRunner = request.app.state.job_runner
    if await reconcile(request.app.state.sessions, runner, row, reading=session):
        await session.refresh(row)
    return row


@router.get(
    "/task/{task_id}",
    summary="A task",
    response_model=dict[str, Any],
    responses={
        304: {
            "description": "``If-None-Match`` names the task's current state (after the wait "
            "of ``Prefer: wait``, if the task is active)"
        }
    },
)
async def get_task(
    request: Request, response: Response, task_id: str, caller: Caller, session: Session
) -> Any:
    """The task document: status, counters, faults, fatal error, options.

    The answer's ``ETag`` tags the task's state; ``If-None-Match: <that tag>`` makes it a
    ``304`` while the state is the same. With ``Prefer: wait=<seconds>`` as well (standard
    HTTP; Globus has no such thing), an ACTIVE task's poll is held until the task changes
    (``200``) or the seconds pass (``304``), at most 10 s
    (:mod:`provena_like.server.transfer.watch`).
    """
    row = await _current(request, session, caller, task_id)
    tag = state_tag(row)
    response.headers["ETag"] = tag
    if not not_modified(request.headers, tag):
        return task_document(row)
    wait = preferred_wait(request.headers) if row.status == ACTIVE else None
    watch: TaskWatch = request.app.state.task_watch
    with watch.holding() as held:
        if wait is None or not held:
            return Response(status_code=304, headers={"ETag": tag})
        await session.close()  # no connection kept while the poll is held
        changed = await _changed(watch, request.app.state.sessions, row.task_id, tag, wait)
    applied = {"Preference-Applied": f"wait={wait:g}"}
    if changed is None:
        return Response(status_code=304, headers={"ETag": tag, **applied})
    response.headers.update({"ETag": state_tag(changed), **applied})
    return task_document(changed)


async def _changed(
    watch: TaskWatch,
    factory: async_sessionmaker[AsyncSession],
    task_id: str,
    tag: str,
    wait: float,
) -> TaskRow | None:
    """The task once its state is no longer ``tag``, or ``None`` after ``wait`` seconds."""
    deadline = anyio.current_time() + wait
    with watch.watching(task_id) as listen:
        while True:
            woken = listen()  # before reading: a change committed after is heard
            async with factory() as session:
                row = await session.get(TaskRow, task_id)
            if row is not None and state_tag(row) != tag:
                return row
            left = deadline - anyio.current_time()
            if row is None or left <= 0:
                return None
            with anyio.move_on_after(min(left, RECHECK)):
                await woken.wait()


class TaskUpdate(BaseModel):
    """``PUT /v0.10/task/{id}``: only the label and the deadline can change."""

    model_config = ConfigDict(extra="forbid")

    DATA_TYPE: str = "task"
    label: str | None = Field(default=None, max_length=128)
    deadline: datetime | None = None


@router.put("/task/{task_id}", summary="Change a task's label or deadline")
async def update_task(
    request: Request, task_id: str, caller: Caller, session: Session, change: TaskUpdate
) -> dict[str, Any]:
    """Change the label or the deadline (of an active task) and say so."""
    row = await _current(request, session, caller, task_id)
    fields = change.model_fields_set - {"DATA_TYPE"}
    if "deadline" in fields and row.status != ACTIVE:
        raise TransferAPIError(
            409, "ClientError.Conflict", "The deadline of a finished task can't be changed."
        )
    async with session.begin_nested() if session.in_transaction() else session.begin():
        changed_on_commit(session, row.task_id)
        if "label" in fields:
            row.label = change.label
        if "deadline" in fields and change.deadline is not None:
            deadline = change.deadline
            row.deadline = deadline if deadline.tzinfo else deadline.replace(tzinfo=UTC)
    await session.commit()
    return _stamped(
        request,
        {"DATA_TYPE": "result", "code": "Updated", "message": "Updated task successfully"},
    )


@router.post("/task/{task_id}/cancel", summary="Cancel a task")
async def cancel_task(
    request: Request, task_id: str, caller: Caller, session: Session
) -> dict[str, Any]:
    """Stop an active task: it ends FAILED with the fatal error CANCELED, as Globus does."""
    row = await _current(request, session, caller, task_id)
    await session.commit()
    runner: JobRunner = request.app.state.job_runner
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessions
    async with factory() as writer, writer.begin():
        ended = await finish(
            writer,
            row.task_id,
            "FAILED",
            fatal_error={"code": "CANCELED", "description": "canceled"},
            event=("CANCELED", "canceled", f"The task was canceled by {caller.username}."),
        )
        if ended:
            await runner.request_cancel(writer, row.task_id)
    if not ended:
        body = {
            "DATA_TYPE": "result",
            "code": "TaskComplete",
            "message": "The task completed before it could be cancelled.",
        }
    else:
        body = {
            "DATA_TYPE": "result",
            "code": "Canceled",
            "message": "The task has been cancelled successfully.",
        }
    return _stamped(request, body)


_FIELDS = "(?:type|status|task_id|label)"
FILTER_PATTERN = rf"^{_FIELDS}:[^/,]+(?:,[^/,]+)*(?:/{_FIELDS}:[^/,]+(?:,[^/,]+)*)*$"
"""What ``task_list``'s ``filter`` looks like: ``type:TRANSFER,DELETE/status:ACTIVE``."""

_ORDER_KEY = "(?:request_time|completion_time|label|status|type|task_id)(?: (?:ASC|DESC|asc|desc))?"
ORDERBY_PATTERN = rf"^{_ORDER_KEY}(?:,{_ORDER_KEY})*$"
"""What ``task_list``'s ``orderby`` looks like: ``request_time DESC,label``."""


def _filters(text: str | None) -> list[ColumnElement[bool]]:
    """``type:TRANSFER,DELETE/status:ACTIVE/task_id:...`` as SQL conditions."""
    conditions: list[ColumnElement[bool]] = []
    if not text:
        return conditions
    for clause in text.split("/"):
        if not clause:
            continue
        name, sep, value = clause.partition(":")
        values = [v for v in value.split(",") if v]
        if not sep or not values:
            raise bad_request(f"Invalid filter {clause!r}: expected 'field:value[,value]'.")
        if name == "type":
            conditions.append(TaskRow.type.in_([v.upper() for v in values]))
        elif name == "status":
            conditions.append(TaskRow.status.in_([v.upper() for v in values]))
        elif name == "task_id":
            conditions.append(TaskRow.task_id.in_(values))
        elif name == "label":
            conditions.append(TaskRow.label.in_(values))
        else:
            raise bad_request(
                f"Invalid filter {clause!r}: can filter on type, status, task_id, label."
            )
    return conditions


_ORDER = {
    "request_time": TaskRow.request_time,
    "completion_time": TaskRow.completion_time,
    "label": TaskRow.label,
    "status": TaskRow.status,
    "type": TaskRow.type,
    "task_id": TaskRow.task_id,
}


def _ordering(text: str | None) -> list[Any]:
    if not text:
        return [TaskRow.request_time.desc(), TaskRow.task_id]
    order = []
    for part in text.split(","):
        words = part.split()
        if not words or words[0] not in _ORDER or len(words) > 2:
            raise bad_request(f"Invalid orderby {part!r}: use one of {sorted(_ORDER)} [ASC|DESC].")
        column = _ORDER[words[0]]
        desc = len(words) == 2 and words[1].upper() == "DESC"
        order.append(column.desc() if desc else column.asc())
    return [*order, TaskRow.task_id]


_TASK_LIST_PARAMS = frozenset({"limit", "offset", "filter", "orderby", "fields"})


def _known_params(request: Request) -> None:
    """400 for a query parameter ``task_list`` doesn't know (``fields`` is accepted, unused)."""
    unknown = sorted(set(request.query_params) - _TASK_LIST_PARAMS)
    if unknown:
        raise bad_request(f"Unknown query parameter(s) {', '.join(map(repr, unknown))}.")


@router.get("/task_list", summary="The caller's tasks", dependencies=[Depends(_known_params)])
async def task_list(
    caller: Caller,
    session: Session,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    filter: Annotated[  # noqa: A002 - Globus's name
        str | None, Query(max_length=2048, pattern=FILTER_PATTERN)
    ] = None,
    orderby: Annotated[str | None, Query(max_length=256, pattern=ORDERBY_PATTERN)] = None,
) -> dict[str, Any]:
    """The caller's tasks, newest first by default; ``total`` counts them all."""
    conditions = [TaskRow.owner == caller.username, *_filters(filter)]
    total = await session.scalar(select(func.count()).select_from(TaskRow).where(*conditions))
    rows = (
        await session.scalars(
            select(TaskRow)
            .where(*conditions)
            .order_by(*_ordering(orderby))
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return {
        "DATA_TYPE": "task_list",
        "DATA": [task_document(row) for row in rows],
        "length": len(rows),
        "limit": limit,
        "offset": offset,
        "total": int(total or 0),
    }


@router.get("/task/{task_id}/event_list", summary="A task's events")
async def event_list(
    task_id: str,
    caller: Caller,
    session: Session,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 10,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict[str, Any]:
    """The task's events, newest first."""
    row = await load_task(session, caller, task_id)
    where = TaskEventRow.task_id == row.task_id
    total = await session.scalar(select(func.count()).select_from(TaskEventRow).where(where))
    events = (
        await session.scalars(
            select(TaskEventRow)
            .where(where)
            .order_by(TaskEventRow.id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return {
        "DATA_TYPE": "event_list",
        "DATA": [
            {
                "DATA_TYPE": "event",
                "code": e.code,
                "description": e.description,
                "details": e.details,
                "is_error": e.is_error,
                "time": task_time(e.time),
            }
            for e in events
        ],
        "length": len(events),
        "limit": limit,
        "offset": offset,
        "total": int(total or 0),
    }


def _marker(value: str | None) -> int:
    if value is None or value == "":
        return -1
    try:
        return int(value)
    except ValueError:
        raise bad_request(f"Invalid marker {value!r}.") from None


@dataclass(frozen=True)
class _Page:
    marker: str | None
    limit: int


def _page(
    marker: Annotated[str | None, Query(pattern=r"^[0-9]{0,18}$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
) -> _Page:
    return _Page(marker, limit)


MarkerPage = Annotated[_Page, Depends(_page)]


async def _marked(
    session: AsyncSession, query: Select[Any], page: _Page
) -> tuple[list[TaskItemRow], int | None]:
    after, limit = _marker(page.marker), page.limit
    rows: list[TaskItemRow] = list(
        (
            await session.scalars(
                query.where(TaskItemRow.seq > after).order_by(TaskItemRow.seq).limit(limit + 1)
            )
        ).all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1].seq if more and rows else None)


@router.get("/task/{task_id}/successful_transfers", summary="The files a task moved")
async def successful_transfers(
    task_id: str, caller: Caller, session: Session, page: MarkerPage
) -> dict[str, Any]:
    """The files actually copied (not those a sync level skipped), in order; marker paging."""
    row = await load_task(session, caller, task_id)
    if row.type != "TRANSFER":
        raise bad_request("Only transfer tasks have successful transfers.")
    query = select(TaskItemRow).where(
        TaskItemRow.task_id == row.task_id,
        TaskItemRow.state == "done",
        TaskItemRow.is_directory.is_(False),
    )
    items, next_marker = await _marked(session, query, page)
    return {
        "DATA_TYPE": "successful_transfers",
        "marker": page.marker,
        "next_marker": None if next_marker is None else str(next_marker),
        "DATA": [
            {
                "DATA_TYPE": "successful_transfer",
                "source_path": item.source_path,
                "destination_path": item.destination_path,
            }
            for item in items
        ],
    }


@router.get("/task/{task_id}/skipped_errors", summary="The files a task skipped on errors")
async def skipped_errors(
    task_id: str, caller: Caller, session: Session, page: MarkerPage
) -> dict[str, Any]:
    """The source errors skipped by ``skip_source_errors``; marker paging."""
    row = await load_task(session, caller, task_id)
    query = select(TaskItemRow).where(
        TaskItemRow.task_id == row.task_id, TaskItemRow.state == "error"
    )
    items, next_marker = await _marked(session, query, page)
    data = []
    for item in items:
        error = item.error or {}
        data.append(
            {
                "DATA_TYPE": "skipped_error",
                "checksum_algorithm": None,
                "destination_path": item.destination_path,
                "error_code": error.get("code", "ENDPOINT_ERROR"),
                "error_details": error.get("details", ""),
                "error_time": error.get("time") or task_time(item.updated_at),
                "external_checksum": None,
                "is_delete_destination_extra": False,
                "is_directory": item.is_directory,
                "is_symlink": False,
                "source_path": item.source_path,
            }
        )
    return {
        "DATA_TYPE": "skipped_errors",
        "marker": page.marker,
        "next_marker": None if next_marker is None else str(next_marker),
        "DATA": data,
    }
