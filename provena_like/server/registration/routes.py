"""HTTP routes of sessions, mounted at ``/registry`` beside the items they create.

``POST /registry/sessions`` creates a session with a server-allocated number (honours
``Idempotency-Key``: a retry with the same key replays the same session);
``GET /registry/sessions`` lists sessions by subject, lab, date range and number. The
sessions themselves are registry items of subtype ``session``: read, change, lock and
share them through ``/registry/items/{id}``.

Registered files (ALF datasets) of a session: ``POST /registry/sessions/{id}/files``
registers them, all or nothing (honours ``Idempotency-Key``);
``POST /registry/sessions/{id}/files/check-protected`` reports protection and
``POST /registry/sessions/{id}/files/check-unchanged`` whether a registration would change
nothing, from a digest of its files (both read-only);
``/registry/registered-datasets`` lists them, and ``/registry/registered-datasets/{id}``
reads one, sets the default revision (``.../default``) and tags it (``.../tags``).
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.registration import (
    MAX_SESSION_NUMBER,
    DefaultRequest,
    IsoDate,
    ProtectedCheck,
    ProtectedCheckRequest,
    RegisteredDataset,
    RegisterFilesRequest,
    RegisterFilesResult,
    SessionCreate,
    TagRequest,
    UnchangedCheck,
    UnchangedCheckRequest,
)
from provena_like.models.registry import Item, SortOrder
from provena_like.models.shared import Page
from provena_like.server import access
from provena_like.server.errors import ServiceError
from provena_like.server.idempotency import Unchanged, run_request_once
from provena_like.server.params import Cursor, IdempotencyKey, PageSize, error_responses
from provena_like.server.registry import service as registry
from provena_like.server.registry.routes import _idempotent_item
from provena_like.server.security import Principal, db_session, require_principal

from . import files
from . import sessions as service
from .index import SESSION_NUMBER_TAKEN
from .patch_routes import router as patch_router

__all__ = ["ALLOCATION_ATTEMPTS", "WRITE_ATTEMPTS", "router"]

router = APIRouter(tags=["registry"], responses=error_responses(400, 401, 403, 409, 413, 422))

Caller = Annotated[Principal, Depends(require_principal)]
Session = Annotated[AsyncSession, Depends(db_session)]

ALLOCATION_ATTEMPTS = 5
"""How often an allocation that lost a race to an explicit number is retried."""

WRITE_ATTEMPTS = 3
"""How often a file registration that met a constraint (a concurrent writer) is retried."""


@router.post("/sessions", status_code=201, response_model=Item)
async def create_session_route(
    body: SessionCreate, request: Request, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Create a session of a subject on a date; the server allocates its number.

    The number is the next free one of the subject on that date (1-999), allocated in the
    same transaction as the session, so concurrent callers get distinct numbers; a
    ``number`` given is used as it is (409 ``session_number_taken`` if another session has
    it). ``lab`` defaults to the subject's lab. Needs membership in the session's lab and
    the subject's lab, and read access to the subject. Honours ``Idempotency-Key``.
    """
    prefix: str = request.app.state.settings.handle_prefix

    async def work(session: AsyncSession) -> tuple[int, Any]:
        row = await service.create_session(session, principal, body, prefix=prefix)
        item = registry.to_item(row, access.roles_on(principal, row))
        return 201, item.model_dump(mode="json")

    fingerprinted = body.model_dump(mode="json")
    for attempt in range(ALLOCATION_ATTEMPTS):
        try:
            return await _idempotent_item(request, principal, idempotency_key, fingerprinted, work)
        except ServiceError as err:
            allocated = body.number is None
            if (
                not allocated
                or err.code != SESSION_NUMBER_TAKEN
                or attempt == ALLOCATION_ATTEMPTS - 1
            ):
                raise
    raise AssertionError("unreachable")  # pragma: no cover


@router.get("/sessions", response_model=Page[Item])
async def list_sessions_route(
    principal: Caller,
    session: Session,
    subject: Annotated[
        str | None, Query(description="only sessions of this subject (handle)")
    ] = None,
    lab: Annotated[str | None, Query(description="only sessions of this lab (handle)")] = None,
    date_from: Annotated[IsoDate | None, Query(description="only sessions on or after")] = None,
    date_to: Annotated[IsoDate | None, Query(description="only sessions on or before")] = None,
    number: Annotated[
        int | None, Query(ge=1, le=MAX_SESSION_NUMBER, description="only sessions with this number")
    ] = None,
    order: SortOrder = "asc",
    page_size: PageSize = 100,
    cursor: Cursor = None,
) -> Page[Item]:
    """The sessions the caller may read, by date, then number, then handle, one page at a time.

    Pass ``next_cursor`` back as ``cursor`` for the next page (a cursor fits only the
    listing - filters and order - that made it).
    """
    rows, next_cursor = await service.list_sessions(
        session,
        principal,
        subject=subject,
        lab=lab,
        date_from=date_from,
        date_to=date_to,
        number=number,
        order=order,
        page_size=page_size,
        cursor=cursor,
    )
    items = [registry.to_item(row, access.roles_on(principal, row)) for row in rows]
    return Page[Item](items=items, next_cursor=next_cursor)


# -- registered files ------------------------------------------------------------------------


@router.post(
    "/sessions/{prefix}/{suffix}/files",
    status_code=201,
    response_model=RegisterFilesResult,
    responses=error_responses(404, 412),
)
async def register_files_route(
    prefix: str,
    suffix: str,
    body: RegisterFilesRequest,
    request: Request,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Register files (ALF datasets) of a session, all or nothing.

    Every file is checked first: its path (relative to the session) parses under ALF,
    exactly one dataset type matches its name, its extension is a known data format; the
    repository exists; the caller is a member of the session's lab; no target revision is
    protected (412 ``protected``, each file's revisions newest first in the details). Then
    everything is written in one transaction. A ``dry_run`` answers the plan (200) and
    writes nothing. Honours ``Idempotency-Key``: a retry with the same key registers once
    (a request that changed nothing, a dry run included, keeps no record: a retry runs the
    checks again).
    """
    session_id = f"{prefix}/{suffix}"

    async def work(session: AsyncSession) -> tuple[int, Any]:
        result, wrote = await files.register_files(session, principal, session_id, body)
        answer = (200 if body.dry_run else 201), result.model_dump(mode="json")
        # a registration that changed nothing keeps no idempotency record (see the guide)
        return answer if wrote else Unchanged(*answer)

    # the request as JSON text (pydantic's serializer, in field order): the same request
    # gives the same text, at a fraction of the cost of sorting thousands of files' keys
    fingerprinted = body.model_dump_json()
    for attempt in range(WRITE_ATTEMPTS):
        try:
            return await run_request_once(request, principal, idempotency_key, fingerprinted, work)
        except IntegrityError:
            if attempt == WRITE_ATTEMPTS - 1:
                raise ServiceError(
                    409,
                    "registration_conflict",
                    "The registration met a concurrent change it could not get past; retry.",
                ) from None
    raise AssertionError("unreachable")  # pragma: no cover


@router.post(
    "/sessions/{prefix}/{suffix}/files/check-protected",
    response_model=ProtectedCheck,
    responses=error_responses(404),
)
async def check_protected_route(
    prefix: str, suffix: str, body: ProtectedCheckRequest, principal: Caller, session: Session
) -> ProtectedCheck:
    """Whether each path (relative to the session) names a protected revision (read-only).

    Per path, the dataset's revisions newest first (server order) with their ``protected``
    and ``default`` flags: what ``provena_like.alf.resolve_revision`` takes.
    """
    return await files.check_protected(session, principal, f"{prefix}/{suffix}", body.paths)


@router.post(
    "/sessions/{prefix}/{suffix}/files/check-unchanged",
    response_model=UnchangedCheck,
    responses=error_responses(404),
)
async def check_unchanged_route(
    prefix: str, suffix: str, body: UnchangedCheckRequest, principal: Caller, session: Session
) -> UnchangedCheck:
    """Whether registering files would change nothing, from a digest of them (read-only).

    ``digest`` is ``files_digest`` of the files' (path, sha256). ``unchanged`` is true when
    they are exactly the session's registered revisions and registering them with these
    options (``repository``, ``exists``, ``default``, ``session_path``) would pass every
    check of ``POST .../files`` and write nothing; then ``ids`` are the revisions' ids by
    sorted path. Otherwise register the files (``reason`` says why not). Refuses like a
    registration for the session, the caller's membership of its lab, the repository and
    the session path.
    """
    return await files.check_unchanged(session, principal, f"{prefix}/{suffix}", body)


@router.get("/registered-datasets", response_model=Page[RegisteredDataset])
async def list_registered_datasets_route(
    principal: Caller,
    session: Session,
    session_id: Annotated[
        str | None, Query(alias="session", description="only datasets of this session (handle)")
    ] = None,
    subject: Annotated[str | None, Query(description="only sessions of this subject")] = None,
    lab: Annotated[str | None, Query(description="only sessions of this lab")] = None,
    date_from: Annotated[IsoDate | None, Query(description="sessions on or after")] = None,
    date_to: Annotated[IsoDate | None, Query(description="sessions on or before")] = None,
    dataset_type: Annotated[str | None, Query(description="dataset type (handle)")] = None,
    collection: Annotated[
        str | None, Query(max_length=512, description="exact collection ('' for none)")
    ] = None,
    name: Annotated[str | None, Query(max_length=255, description="exact dataset name")] = None,
    revision: Annotated[
        str | None, Query(max_length=255, description="exact revision ('' for none)")
    ] = None,
    last_before: Annotated[
        str | None,
        Query(
            max_length=255,
            description="per dataset, the newest revision (server order) named at or before",
        ),
    ] = None,
    default_only: Annotated[bool, Query(description="only default revisions")] = False,
    page_size: PageSize = 100,
    cursor: Cursor = None,
) -> Page[RegisteredDataset]:
    """Registered datasets of the sessions the caller may read, one page at a time.

    Sorted by session date, session, collection, name and revision sequence.
    """
    items, next_cursor = await files.list_datasets(
        session,
        principal,
        session_id=session_id,
        subject=subject,
        lab=lab,
        date_from=date_from,
        date_to=date_to,
        dataset_type=dataset_type,
        collection=collection,
        name=name,
        revision=revision,
        last_before=last_before,
        default_only=default_only,
        page_size=page_size,
        cursor=cursor,
    )
    return Page[RegisteredDataset](items=items, next_cursor=next_cursor)


@router.get(
    "/registered-datasets/{dataset_id}",
    response_model=RegisteredDataset,
    responses=error_responses(404),
)
async def get_registered_dataset_route(
    dataset_id: UUID, principal: Caller, session: Session
) -> RegisteredDataset:
    """One registered dataset revision (needs read access to its session)."""
    return await files.get_dataset(session, principal, str(dataset_id))


@router.post(
    "/registered-datasets/{dataset_id}/default",
    response_model=RegisteredDataset,
    responses=error_responses(404),
)
async def set_default_route(
    dataset_id: UUID, body: DefaultRequest, principal: Caller, session: Session
) -> RegisteredDataset:
    """Make a revision of the dataset its default; the others lose the flag (lab members).

    ``revision`` left out is this row; otherwise the same dataset's revision of that name.
    """
    async with session.begin():
        return await files.set_default(session, principal, str(dataset_id), body.revision)


@router.post(
    "/registered-datasets/{dataset_id}/tags",
    response_model=RegisteredDataset,
    responses=error_responses(404),
)
async def tag_dataset_route(
    dataset_id: UUID, body: TagRequest, principal: Caller, session: Session
) -> RegisteredDataset:
    """Put a tag on a registered dataset (lab members); a protected tag freezes it."""
    async with session.begin():
        return await files.tag_dataset(session, principal, str(dataset_id), body.tag)


@router.delete(
    "/registered-datasets/{dataset_id}/tags/{prefix}/{suffix}",
    response_model=RegisteredDataset,
    responses=error_responses(404),
)
async def untag_dataset_route(
    dataset_id: UUID, prefix: str, suffix: str, principal: Caller, session: Session
) -> RegisteredDataset:
    """Take a tag off a registered dataset (lab members; a protected tag: registry admins)."""
    async with session.begin():
        return await files.untag_dataset(session, principal, str(dataset_id), f"{prefix}/{suffix}")


# patches, deletion and replicas of registered datasets (their own module)
router.include_router(patch_router)
