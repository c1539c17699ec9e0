"""Transfer and delete tasks: submitting them, and the documents that describe them.

:func:`submit` checks a :class:`~provena_like.models.transfer.TransferDocument` or
:class:`~provena_like.models.transfer.DeleteDocument` (items, collections and access, every
path), then writes the task and the job that runs it (:mod:`.executor`) in one transaction:

- the same ``submission_id`` again (a retried POST) answers ``Duplicate`` with the task made
  the first time; concurrent re-submissions race on the unique ``submission_id``, and the
  losers read the winner's task;
- an *active* task of the same owner with the same type, collections and items is a 409
  ``Conflict`` ("identical paths"), as Globus refuses;
- the answer is the ``transfer_result``/``delete_result`` document, with status 200 (what
  globus-sdk's registered ``submit_transfer`` response has).

:func:`task_document` renders a :class:`~provena_like.server.transfer.task_tables.TaskRow`
with every key of a Globus task document; :func:`load_task` finds a task the caller may see
(its owner, or a system admin; others get a 404).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from provena_like.models.transfer import DeleteDocument, TransferDocument
from provena_like.server.db.base import utcnow
from provena_like.server.jobs import JobRecord, JobRunner, JobState
from provena_like.server.security import Principal
from provena_like.server.transfer.collections import open_collection
from provena_like.server.transfer.errors import TransferAPIError, not_found
from provena_like.server.transfer.task_tables import TaskEventRow, TaskRow
from provena_like.server.transfer.watch import changed_on_commit

__all__ = [
    "ACTIVE",
    "DEFAULT_DEADLINE",
    "add_event",
    "load_task",
    "finish",
    "reconcile",
    "submit",
    "task_document",
    "task_time",
]

DEFAULT_DEADLINE = timedelta(days=1)
"""A task's deadline when the document sets none (what Globus's fixtures show)."""

ACTIVE = "ACTIVE"


def task_time(when: datetime | None) -> str | None:
    """A task time as Globus writes it: ``2021-09-02T18:04:47+00:00``."""
    if when is None:
        return None
    return when.astimezone(UTC).replace(microsecond=0).isoformat()


def _no_items(kind: str) -> TransferAPIError:
    return TransferAPIError(
        400, "ClientError.BadRequest.NoTransferItems", f"A {kind} requires at least one item"
    )


def _deadline(value: datetime | None) -> datetime:
    if value is None:
        return utcnow() + DEFAULT_DEADLINE
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _submission_id(value: uuid.UUID | None) -> str:
    return str(value if value is not None else uuid.uuid4())


def _digest(parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


async def _checked_transfer(
    app: Starlette, principal: Principal, doc: TransferDocument
) -> dict[str, Any]:
    source = await open_collection(app, principal, doc.source_endpoint, write=False)
    dest = await open_collection(app, principal, doc.destination_endpoint, write=True)
    items = []
    for item in doc.DATA:
        src = source.resolve(item.source_path)
        dst = dest.resolve(item.destination_path)
        if dst.is_root and item.recursive is False:
            raise TransferAPIError(
                400,
                "ClientError.BadRequest",
                f"The destination of file {src.display} can't be the collection's root.",
            )
        items.append(
            {
                "source_path": src.display,
                "destination_path": dst.display,
                "recursive": item.recursive,
                "external_checksum": item.external_checksum,
                "checksum_algorithm": item.checksum_algorithm,
            }
        )
    options = doc.model_dump(mode="json", exclude={"DATA", "submission_id", "label", "deadline"})
    options.update(
        DATA=items,
        source_endpoint=source.id,
        destination_endpoint=dest.id,
        source_display_name=source.display_name,
        destination_display_name=dest.display_name,
    )
    return options


async def _checked_delete(
    app: Starlette, principal: Principal, doc: DeleteDocument
) -> dict[str, Any]:
    collection = await open_collection(app, principal, doc.endpoint, write=True)
    items = []
    for item in doc.DATA:
        path = collection.resolve(item.path)
        if path.is_root and not doc.interpret_globs:
            raise TransferAPIError(
                409, "ExternalError.DeleteFailed.IsRoot", "A collection's root can't be deleted."
            )
        items.append({"path": path.display})
    options = doc.model_dump(mode="json", exclude={"DATA", "submission_id", "label", "deadline"})
    options.update(DATA=items, endpoint=collection.id, display_name=collection.display_name)
    return options


def _result(row: TaskRow, code: str) -> dict[str, Any]:
    kind = row.type.lower()
    message = (
        f"The {kind} has been accepted and a task has been created and queued for execution"
        if code == "Accepted"
        else f"A {kind} with id '{row.submission_id}' was already submitted"
    )
    return {
        "DATA_TYPE": f"{kind}_result",
        "code": code,
        "message": message,
        "submission_id": row.submission_id,
        "task_id": row.task_id,
        "task_link": {
            "DATA_TYPE": "link",
            "href": f"/v0.10/task/{row.task_id}?format=json",
            "rel": "related",
            "resource": "task",
            "title": "related task",
        },
    }


async def _by_submission(session: AsyncSession, submission_id: str) -> TaskRow | None:
    found: TaskRow | None = await session.scalar(
        select(TaskRow).where(TaskRow.submission_id == submission_id)
    )
    return found


def _duplicate(row: TaskRow, principal: Principal) -> dict[str, Any]:
    if row.owner != principal.username:
        raise TransferAPIError(
            409,
            "ClientError.Conflict",
            f"The submission id {row.submission_id} was used by another user's task.",
        )
    return _result(row, "Duplicate")


async def submit(
    app: Starlette, principal: Principal, doc: TransferDocument | DeleteDocument
) -> dict[str, Any]:
    """Check ``doc`` and create its task and job; the ``*_result`` document (no request id).

    Raises:
        TransferAPIError: 400 ``ClientError.BadRequest.NoTransferItems`` (no items), a bad
            path or submission id; 403/404 for the collections; 409 ``Conflict`` (identical
            paths of an active task, or another user's submission id).
    """
    is_transfer = isinstance(doc, TransferDocument)
    kind = "transfer" if is_transfer else "delete"
    if not doc.DATA:
        raise _no_items(kind)
    submission_id = _submission_id(doc.submission_id)
    sessions: async_sessionmaker[AsyncSession] = app.state.sessions
    async with sessions() as session:
        existing = await _by_submission(session, submission_id)
    if existing is not None:
        return _duplicate(existing, principal)
    if isinstance(doc, TransferDocument):
        options = await _checked_transfer(app, principal, doc)
        source, dest = options["source_endpoint"], options["destination_endpoint"]
        key = _digest(["TRANSFER", source, dest, options["DATA"]])
    else:
        options = await _checked_delete(app, principal, doc)
        source, dest = options["endpoint"], None
        key = _digest(["DELETE", source, options["DATA"]])
    runner: JobRunner = app.state.job_runner
    task_id = str(uuid.uuid4())
    row = TaskRow(
        task_id=task_id,
        type=kind.upper(),
        owner=principal.username,
        label=doc.label,
        submission_id=submission_id,
        source_collection=source,
        destination_collection=dest,
        options=options,
        paths_key=key,
        status=ACTIVE,
        nice_status="Queued",
        request_time=utcnow(),
        deadline=_deadline(doc.deadline),
    )
    try:
        async with sessions() as session, session.begin():
            existing = await _by_submission(session, submission_id)
            if existing is not None:  # committed while the paths were checked
                return _duplicate(existing, principal)
            busy = await session.scalar(
                select(TaskRow)
                .where(
                    TaskRow.paths_key == key,
                    TaskRow.status == ACTIVE,
                    TaskRow.owner == principal.username,
                )
                .limit(1)
            )
            if busy is not None and busy.submission_id == submission_id:
                return _duplicate(busy, principal)
            if busy is not None:
                raise TransferAPIError(
                    409,
                    "Conflict",
                    f"A {kind} with identical paths has not yet completed (task {busy.task_id}).",
                )
            session.add(row)
            await session.flush()
            await runner.enqueue(
                session, kind, {"task_id": task_id}, job_id=task_id, owner=principal.username
            )
    except IntegrityError:  # a concurrent submission of the same id won
        async with sessions() as session:
            existing = await _by_submission(session, submission_id)
        if existing is None:
            raise
        return _duplicate(existing, principal)
    return _result(row, "Accepted")


async def load_task(session: AsyncSession, principal: Principal, task_id: str) -> TaskRow:
    """The task ``task_id`` if the caller owns it (or is a system admin); else 404."""
    try:
        key = str(uuid.UUID(task_id))
    except ValueError:
        raise not_found(f"Task {task_id!r}") from None
    row = await session.get(TaskRow, key)
    if row is None or (row.owner != principal.username and not principal.is_admin):
        raise not_found(f"Task {task_id}")
    return row


async def add_event(
    session: AsyncSession,
    task_id: str,
    code: str,
    description: str,
    details: str = "",
    *,
    is_error: bool = False,
) -> None:
    """Add an event to the task's ``event_list`` (in the caller's transaction)."""
    session.add(
        TaskEventRow(
            task_id=task_id,
            code=code,
            description=description[:255],
            details=details,
            is_error=is_error,
            time=utcnow(),
        )
    )


async def finish(
    session: AsyncSession,
    task_id: str,
    status: str,
    *,
    fatal_error: dict[str, str] | None = None,
    event: tuple[str, str, str] | None = None,
) -> bool:
    """End an active task (``SUCCEEDED``/``FAILED``), with its last event; whether it was."""
    result = await session.execute(
        update(TaskRow)
        .where(TaskRow.task_id == task_id, TaskRow.status == ACTIVE)
        .values(status=status, nice_status=None, fatal_error=fatal_error, completion_time=utcnow())
    )
    ended = bool(result.rowcount)  # type: ignore[attr-defined]
    if ended:
        changed_on_commit(session, task_id)
    if ended and event is not None:
        code, description, details = event
        await add_event(session, task_id, code, description, details, is_error=status == "FAILED")
    return ended


def _gave_up(job: JobRecord | None) -> bool:
    """Whether ``job`` ended without succeeding (its task is then failed)."""
    return job is not None and job.finished and job.state != JobState.SUCCEEDED


async def reconcile(
    sessions: async_sessionmaker[AsyncSession],
    runner: JobRunner,
    row: TaskRow,
    *,
    reading: AsyncSession | None = None,
) -> bool:
    """Fail an active task whose job ended without ending it; whether it did.

    Never leaves a task ACTIVE forever: a job that failed (interrupted too many times by
    restarts, or a bug of the executor) fails its task with the job's error. ``reading``:
    the caller's session, to look at the job in first; a transaction of its own is opened
    only for a job that ended (a status poll of a running task then costs one query, not a
    session and a transaction more).
    """
    if row.status != ACTIVE:
        return False
    if reading is not None:
        if not _gave_up(await runner.get(reading, row.task_id)):
            return False
    async with sessions() as session, session.begin():
        job = await runner.get(session, row.task_id)
        if job is None or not _gave_up(job):  # looked at again in the transaction
            return False
        error = dict(job.error or {})
        message = str(error.get("message") or f"the task's job ended {job.state.value}")
        return await finish(
            session,
            row.task_id,
            "FAILED",
            fatal_error={"code": "SERVER_ERROR", "description": message},
            event=("SERVER_ERROR", "the task could not be completed", message),
        )


def task_document(row: TaskRow) -> dict[str, Any]:
    """The Globus task document of ``row`` (every key of globus-sdk's task fixtures)."""
    options = row.options
    transfer = row.type == "TRANSFER"
    source = row.source_collection
    dest = row.destination_collection if transfer else None
    source_name = options.get("source_display_name" if transfer else "display_name")
    dest_name = options.get("destination_display_name") if transfer else None
    active = row.status == ACTIVE
    seconds = ((row.completion_time or utcnow()) - row.request_time).total_seconds()
    pending = max(0, row.files + row.directories - _settled(row)) if active else 0
    return {
        "DATA_TYPE": "task",
        "bytes_checksummed": row.bytes_checksummed,
        "bytes_transferred": row.bytes_transferred,
        "canceled_by_admin": None,
        "canceled_by_admin_message": None,
        "command": "API 0.10",
        "completion_time": task_time(row.completion_time),
        "deadline": task_time(row.deadline),
        "delete_destination_extra": bool(options.get("delete_destination_extra", False)),
        "destination_endpoint": dest_name,
        "destination_endpoint_display_name": dest_name,
        "destination_endpoint_id": dest,
        "directories": row.directories,
        "effective_bytes_per_second": int(row.bytes_transferred / max(seconds, 1.0)),
        "encrypt_data": bool(options.get("encrypt_data", False)),
        "fail_on_quota_errors": bool(options.get("fail_on_quota_errors", False)),
        "fatal_error": row.fatal_error,
        "faults": row.faults,
        "files": row.files,
        "files_skipped": row.files_skipped,
        "files_transferred": row.files_transferred,
        "filter_rules": options.get("filter_rules"),
        "history_deleted": False,
        "is_ok": (row.faults == 0) if active else None,
        "is_paused": False,
        "label": row.label,
        "nice_status": row.nice_status if active else None,
        "nice_status_details": None,
        "nice_status_expires_in": None,
        "nice_status_short_description": row.nice_status if active else None,
        "owner_id": row.owner,
        "preserve_timestamp": bool(options.get("preserve_timestamp", False)),
        "recursive_symlinks": "ignore",
        "request_time": task_time(row.request_time),
        "skip_source_errors": bool(options.get("skip_source_errors", False)),
        "source_endpoint": source_name,
        "source_endpoint_display_name": source_name,
        "source_endpoint_id": source,
        "status": row.status,
        "subtasks_canceled": pending if _canceled(row) else 0,
        "subtasks_expired": 0,
        "subtasks_failed": row.subtasks_failed,
        "subtasks_pending": pending,
        "subtasks_retrying": 0,
        "subtasks_skipped_errors": row.subtasks_skipped_errors,
        "subtasks_succeeded": row.files_transferred + row.files_skipped + row.directories,
        "subtasks_total": row.files + row.directories,
        "symlinks": 0,
        "sync_level": options.get("sync_level"),
        "task_id": row.task_id,
        "type": row.type,
        "username": row.owner,
        "verify_checksum": bool(options.get("verify_checksum", False)),
    }


def _settled(row: TaskRow) -> int:
    return (
        row.files_transferred
        + row.files_skipped
        + row.directories
        + row.subtasks_failed
        + row.subtasks_skipped_errors
    )


def _canceled(row: TaskRow) -> bool:
    return bool(row.fatal_error and row.fatal_error.get("code") == "CANCELED")
