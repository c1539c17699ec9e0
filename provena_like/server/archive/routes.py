"""HTTP routes of archived-file records, mounted at ``/registry`` beside the storage locations.

``/registry/storage-locations/{id}/archived-files``: ``GET`` lists a location's records
(by path, filtered by session and path prefix; needs ``data-read`` on the location);
``POST`` records a batch, each path written or replaced as given (needs ``data-write`` on
the location and read access to each session; honours ``Idempotency-Key``, and sending the
same batch again changes nothing); ``POST .../archived-files/delete`` removes records by
path or by session (``data-write``). Access is decided by the one evaluator
(:mod:`provena_like.server.access`) on the location item, whose access settings a registry
admin sets (e.g. ``data-write`` for a lab's group).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.archive import (
    STORAGE_LOCATION,
    ArchivedFile,
    ArchivedFilesDelete,
    ArchivedFilesDeleted,
    ArchivedFilesRequest,
    ArchivedFilesResult,
)
from provena_like.models.registry import Role
from provena_like.models.shared import Page
from provena_like.server import access
from provena_like.server.db.base import utcnow
from provena_like.server.errors import ServiceError, validation_error
from provena_like.server.idempotency import run_request_once
from provena_like.server.pagination import KeyColumn, keyset_page
from provena_like.server.params import Cursor, IdempotencyKey, PageSize, error_responses
from provena_like.server.registry.service import load_item, load_item_of
from provena_like.server.registry.tables import ItemRow
from provena_like.server.security import Principal, db_session, require_principal

from .tables import ArchivedFileRow

__all__ = ["router"]

router = APIRouter(tags=["registry"], responses=error_responses(400, 401, 403, 404, 422))

Caller = Annotated[Principal, Depends(require_principal)]
Session = Annotated[AsyncSession, Depends(db_session)]

_BASE = "/storage-locations/{prefix}/{suffix}/archived-files"
_ORDER = [
    KeyColumn(ArchivedFileRow.relative_path, "str", lambda r: r.relative_path),
    KeyColumn(ArchivedFileRow.id, "int", lambda r: r.id),
]


def _wire(row: ArchivedFileRow) -> ArchivedFile:
    return ArchivedFile(
        location=row.location_id,
        session=row.session_id,
        path=row.relative_path,
        size=row.size,
        sha256=row.sha256,
        task_id=row.task_id,
        source=row.source,
        archived_at=row.archived_at,
        recorded_by=row.recorded_by,
    )


async def _location(
    session: AsyncSession, principal: Principal, location_id: str, role: Role
) -> ItemRow:
    return await load_item_of(session, principal, location_id, STORAGE_LOCATION, role)


@router.get(_BASE, response_model=Page[ArchivedFile])
async def list_archived_files_route(
    prefix: str,
    suffix: str,
    principal: Caller,
    session: Session,
    session_id: Annotated[
        str | None, Query(alias="session", description="only this session's files (handle)")
    ] = None,
    path_prefix: Annotated[
        str | None, Query(max_length=1024, description="only paths starting with this")
    ] = None,
    page_size: PageSize = 100,
    cursor: Cursor = None,
) -> Page[ArchivedFile]:
    """The archived files of a storage location, by path, one page at a time.

    Needs ``data-read`` on the location.
    """
    location_id = f"{prefix}/{suffix}"
    await _location(session, principal, location_id, "data-read")
    query = select(ArchivedFileRow).where(ArchivedFileRow.location_id == location_id)
    if session_id is not None:
        query = query.where(ArchivedFileRow.session_id == session_id)
    if path_prefix:
        query = query.where(ArchivedFileRow.relative_path.startswith(path_prefix, autoescape=True))
    rows, next_cursor = await keyset_page(
        session,
        query,
        _ORDER,
        cursor=cursor,
        page_size=page_size,
        scope=[location_id, session_id, path_prefix],
    )
    return Page[ArchivedFile](items=[_wire(r) for r in rows], next_cursor=next_cursor)


async def _record(
    session: AsyncSession, principal: Principal, location_id: str, body: ArchivedFilesRequest
) -> ArchivedFilesResult:
    await _location(session, principal, location_id, "data-write")
    paths = [f.path for f in body.files]
    if len(set(paths)) != len(paths):
        raise validation_error(
            [{"field": "body.files", "message": "a path is given twice", "type": "duplicate_path"}]
        )
    for session_id in {f.session for f in body.files}:
        found = await load_item(session, session_id)
        if found.subtype != "session":
            raise validation_error(
                [{"field": "body.files.session", "message": f"{session_id} is a {found.subtype}",
                  "type": "wrong_subtype"}],
                message=f"Item {session_id} is a {found.subtype}, not a session.",
            )  # fmt: skip
        access.require(principal, found, "metadata-read")
    existing = {
        row.relative_path: row
        for row in (
            await session.scalars(
                select(ArchivedFileRow).where(
                    ArchivedFileRow.location_id == location_id,
                    ArchivedFileRow.relative_path.in_(paths),
                )
            )
        )
    }
    now = utcnow()
    changed = 0
    rows = []
    for f in body.files:
        values: dict[str, Any] = {
            "session_id": f.session,
            "size": f.size,
            "sha256": f.sha256,
            "task_id": f.task_id,
            "source": f.source,
        }
        row = existing.get(f.path)
        if row is None:
            row = ArchivedFileRow(
                location_id=location_id,
                relative_path=f.path,
                archived_at=f.archived_at or now,
                recorded_by=principal.username,
                **values,
            )
            session.add(row)
            changed += 1
        elif any(getattr(row, k) != v for k, v in values.items()):
            for key, value in values.items():
                setattr(row, key, value)
            row.archived_at = f.archived_at or now
            row.recorded_by = principal.username
            changed += 1
        rows.append(row)
    await session.flush()
    return ArchivedFilesResult(files=[_wire(r) for r in rows], changed=changed)


@router.post(_BASE, response_model=ArchivedFilesResult, responses=error_responses(409))
async def record_archived_files_route(
    prefix: str,
    suffix: str,
    body: ArchivedFilesRequest,
    request: Request,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Record archived files of a storage location, each path written or replaced as given.

    Needs ``data-write`` on the location and read access to each file's session. A record
    equal to the stored one is left as it is (``changed`` counts the others), so sending a
    batch again changes nothing. Honours ``Idempotency-Key``.
    """
    location_id = f"{prefix}/{suffix}"

    async def work(session: AsyncSession) -> tuple[int, Any]:
        result = await _record(session, principal, location_id, body)
        return 200, result.model_dump(mode="json")

    try:
        return await run_request_once(
            request, principal, idempotency_key, body.model_dump(mode="json"), work
        )
    except IntegrityError:
        raise ServiceError(
            409, "archive_conflict", "A concurrent write recorded the same paths; retry."
        ) from None


@router.post(_BASE + "/delete", response_model=ArchivedFilesDeleted)
async def delete_archived_files_route(
    prefix: str, suffix: str, body: ArchivedFilesDelete, principal: Caller, session: Session
) -> ArchivedFilesDeleted:
    """Delete archived-file records of a storage location: the paths given, or a session's.

    Needs ``data-write`` on the location. Only the records go: the archive's files stay.
    """
    location_id = f"{prefix}/{suffix}"
    given = body.model_fields_set & {"paths", "session"}
    if not given:
        message = "Name the records to delete: paths, a session, or both."
        raise validation_error(
            [{"field": "body", "message": message, "type": "missing"}], message=message
        )
    statement = delete(ArchivedFileRow).where(ArchivedFileRow.location_id == location_id)
    if "paths" in given:
        statement = statement.where(ArchivedFileRow.relative_path.in_(body.paths))
    if "session" in given:
        statement = statement.where(ArchivedFileRow.session_id == body.session)
    async with session.begin():
        await _location(session, principal, location_id, "data-write")
        result = await session.execute(statement)
    return ArchivedFilesDeleted(deleted=getattr(result, "rowcount", 0) or 0)
