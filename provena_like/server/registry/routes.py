"""HTTP routes of the registry service, mounted at ``/registry``.

Item ids are handles with exactly one ``/`` (``10378.1/42``), so item routes are
``/items/{prefix}/{suffix}``. Every route needs a Bearer token. Each write runs in one
transaction; reads report the caller's effective ``roles`` and an ``ETag: "<revision>"``.

Optimistic concurrency: writes to an item accept ``If-Match: "<revision>"`` (or
``expected_revision`` in the body); a stale revision is answered 412 ``stale_revision`` with
the current revision in ``details``. A write without a precondition is accepted against the
latest revision (last writer wins) - send one whenever the change is based on what you read.
"""

from __future__ import annotations

import re
from contextlib import AbstractAsyncContextManager, nullcontext
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.registry import (
    AccessSettings,
    AccessUpdate,
    HistoryEntry,
    Item,
    ItemCreate,
    ItemUpdate,
    LockEvent,
    LockRequest,
    MyAccess,
    RevertRequest,
    SortKey,
    SortOrder,
    SubtypeInfo,
)
from provena_like.models.shared import ErrorBody, Page
from provena_like.server import access
from provena_like.server.errors import ServiceError, validation_error
from provena_like.server.idempotency import Work, run_request_once
from provena_like.server.params import Cursor, IdempotencyKey, IfMatch, PageSize, Subtype
from provena_like.server.registry import service, subtypes
from provena_like.server.registry.tables import ItemRow
from provena_like.server.security import Principal, db_session, require_principal, sessions

__all__ = ["expected_revision", "parse_if_match", "revision_etag", "router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 412, 413, 422)
}

router = APIRouter(tags=["registry"], responses=_ERRORS)

Caller = Annotated[Principal, Depends(require_principal)]
Session = Annotated[AsyncSession, Depends(db_session)]

_ETAG = re.compile(r'^(?:W/)?(?:"(\d{1,18})"|(\d{1,18}))$')


def parse_if_match(value: str | None) -> int | None:
    """The revision in an ``If-Match`` header (``"3"``, ``W/"3"``); ``*`` or none → None."""
    if value is None or value.strip() == "*":
        return None
    match = _ETAG.match(value.strip())
    if match is None:
        raise ServiceError(
            400,
            "bad_request",
            'If-Match must be one revision in quotes, e.g. If-Match: "3".',
            details=[{"field": "header.If-Match", "message": "not a revision"}],
        )
    return int(match.group(1) or match.group(2))


def expected_revision(if_match: str | None, in_body: int | None) -> int | None:
    """The revision a write is conditional on: ``If-Match`` or ``expected_revision``.

    Both given and different is a 400 (``conflicting_preconditions``).
    """
    header = parse_if_match(if_match)
    if header is not None and in_body is not None and header != in_body:
        raise ServiceError(
            400,
            "bad_request",
            f"If-Match ({header}) and expected_revision ({in_body}) disagree; send one.",
            details=[
                {
                    "field": "expected_revision",
                    "message": "disagrees with If-Match",
                    "type": "conflicting_preconditions",
                }
            ],
        )
    return header if header is not None else in_body


def revision_etag(revision: int) -> str:
    """The ``ETag`` of an item at ``revision``."""
    return f'"{revision}"'


def _item_id(prefix: str, suffix: str) -> str:
    return f"{prefix}/{suffix}"


def _wire(principal: Principal, row: ItemRow, response: Response) -> Item:
    response.headers["ETag"] = revision_etag(row.revision)
    return service.to_item(row, access.roles_on(principal, row))


def _path(item_id: str) -> dict[str, str]:
    prefix, _, suffix = item_id.partition("/")
    return {"prefix": prefix, "suffix": suffix}


async def _idempotent_item(
    request: Request,
    principal: Principal,
    key: str | None,
    body: Any,
    work: Work,
) -> JSONResponse:
    """Run ``work`` once per Idempotency-Key; stamp ETag and Location of the item it returns."""
    response = await run_request_once(request, principal, key, body, work)
    item = Item.model_validate_json(bytes(response.body))
    response.headers["ETag"] = revision_etag(item.revision)
    response.headers["Location"] = str(request.url_for("get_item_route", **_path(item.id)))
    return response


# -- subtypes and listing ------------------------------------------------------------------


@router.get("/subtypes", response_model=list[SubtypeInfo])
async def list_subtypes(_principal: Caller) -> list[SubtypeInfo]:
    """Every subtype and the JSON Schema of its record (for forms and docs)."""
    return [
        SubtypeInfo(name=name, record_schema=schema)
        for name, schema in subtypes.record_schemas().items()
    ]


@router.get("/items", response_model=Page[Item])
async def list_items_route(
    principal: Caller,
    session: Session,
    subtype: Annotated[Subtype | None, Query(description="only items of this subtype")] = None,
    owner: Annotated[str | None, Query(description="only items owned by this user")] = None,
    sort: SortKey = "created",
    order: SortOrder = "asc",
    page_size: PageSize = 100,
    cursor: Cursor = None,
) -> Page[Item]:
    """The items the caller may read, one page at a time.

    Sorted by ``sort`` (``created``, ``updated`` or ``name``, case-insensitive) then by handle
    number, in ``order``; pass ``next_cursor`` back as ``cursor`` for the next page (a cursor
    only fits the listing - sort, order and filters - that made it). The last page has no
    ``next_cursor``.
    """
    rows, next_cursor = await service.list_items(
        session,
        principal,
        subtype=subtype,
        owner=owner,
        sort=sort,
        order=order,
        page_size=page_size,
        cursor=cursor,
    )
    items = [service.to_item(row, access.roles_on(principal, row)) for row in rows]
    return Page[Item](items=items, next_cursor=next_cursor)


# -- items ---------------------------------------------------------------------------------


@router.post("/items", status_code=201, response_model=Item)
async def create_item_route(
    body: ItemCreate, request: Request, principal: Caller, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    """Register an item; the caller becomes its owner. Honours ``Idempotency-Key``.

    Datasets are refused here (422): mint them with ``POST /datastore/datasets``, which also
    allocates their storage.
    """
    if body.subtype == "dataset":
        message = (
            "Datasets can't be created through the registry: mint them with "
            "POST /datastore/datasets, which also allocates their storage."
        )
        raise validation_error(
            [{"field": "subtype", "message": message, "type": "use_datastore_mint"}],
            message=message,
        )
    prefix: str = request.app.state.settings.handle_prefix

    async def work(session: AsyncSession) -> tuple[int, Any]:
        row = await service.create_item(session, principal, body, prefix=prefix)
        item = service.to_item(row, access.roles_on(principal, row))
        return 201, item.model_dump(mode="json")

    return await _idempotent_item(
        request, principal, idempotency_key, body.model_dump(mode="json"), work
    )


@router.get("/items/{prefix}/{suffix}", response_model=Item, name="get_item_route")
async def get_item_route(
    prefix: str,
    suffix: str,
    principal: Caller,
    session: Session,
    response: Response,
    include_history: bool = False,
) -> Item:
    """One item, with the caller's effective ``roles``; needs ``metadata-read``."""
    row = await service.load_item(session, _item_id(prefix, suffix))
    roles = access.require(principal, row, "metadata-read")
    history = await service.list_history(session, row.id) if include_history else None
    response.headers["ETag"] = revision_etag(row.revision)
    return service.to_item(row, roles, history)


async def _refuse_dataset(
    session: AsyncSession, principal: Principal, item_id: str, verb: str
) -> None:
    """Dataset metadata changes go through the datastore (it rewrites ``metadata.json``).

    Only a caller who may change the record is told so (409); anyone else gets the 403 of
    any other refused write.
    """
    row = await service.load_item(session, item_id)
    if row.subtype == "dataset":
        access.require(principal, row, "metadata-write")
        message = (
            f"A dataset's metadata can't be {verb} through the registry: use "
            f"/datastore/datasets/{item_id}, which keeps its metadata.json in step."
        )
        raise ServiceError(409, "use_datastore", message)


@router.put("/items/{prefix}/{suffix}", response_model=Item)
async def update_item_route(
    prefix: str,
    suffix: str,
    body: ItemUpdate,
    request: Request,
    response: Response,
    principal: Caller,
    if_match: IfMatch = None,
) -> Item:
    """Replace the record; needs ``metadata-write``. 409 when locked, 412 when stale."""
    expected = expected_revision(if_match, body.expected_revision)
    async with sessions(request)() as session, session.begin():
        await _refuse_dataset(session, principal, _item_id(prefix, suffix), "updated")
        row = await service.update_item(
            session, principal, _item_id(prefix, suffix), body, expected=expected
        )
        return _wire(principal, row, response)


@router.get("/items/{prefix}/{suffix}/history", response_model=Page[HistoryEntry])
async def history_route(
    prefix: str,
    suffix: str,
    principal: Caller,
    session: Session,
    page_size: PageSize = 100,
    cursor: Cursor = None,
) -> Page[HistoryEntry]:
    """The item's history, newest first; needs ``metadata-read``."""
    row = await service.load_item(session, _item_id(prefix, suffix))
    access.require(principal, row, "metadata-read")
    entries, next_cursor = await service.history_page(
        session, row.id, page_size=page_size, cursor=cursor
    )
    return Page[HistoryEntry](items=entries, next_cursor=next_cursor)


@router.post("/items/{prefix}/{suffix}/revert", response_model=Item)
async def revert_route(
    prefix: str,
    suffix: str,
    body: RevertRequest,
    request: Request,
    principal: Caller,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Restore a history entry's record as a new entry; needs ``metadata-write``."""
    expected = expected_revision(if_match, body.expected_revision)
    item_id = _item_id(prefix, suffix)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        await _refuse_dataset(session, principal, item_id, "reverted")
        row = await service.revert_item(
            session, principal, item_id, body.history_id, body.reason, expected=expected
        )
        item = service.to_item(row, access.roles_on(principal, row))
        return 200, item.model_dump(mode="json")

    return await _idempotent_item(
        request, principal, idempotency_key, [body.model_dump(mode="json"), expected], work
    )


# -- locks ---------------------------------------------------------------------------------


def _lock_guard(
    request: Request, principal: Principal, item_id: str, *, lock: bool
) -> AbstractAsyncContextManager[Any]:
    """Freeze a dataset's data in the object store around its lock, thaw it after an unlock.

    See :mod:`provena_like.server.datastore.freeze`.
    """
    freeze = getattr(request.app.state, "data_freeze", None)
    if freeze is None:
        return nullcontext()
    guard: AbstractAsyncContextManager[Any] = freeze.for_lock(principal, item_id, lock=lock)
    return guard


async def _set_lock(
    request: Request,
    response: Response,
    principal: Principal,
    prefix: str,
    suffix: str,
    body: LockRequest,
    if_match: str | None,
    *,
    lock: bool,
) -> Item:
    """Lock or unlock the item in one transaction, inside the dataset's freeze guard."""
    item_id = _item_id(prefix, suffix)
    async with (
        _lock_guard(request, principal, item_id, lock=lock),
        sessions(request)() as session,
        session.begin(),
    ):
        row = await service.set_lock(
            session, principal, item_id, body.reason, lock=lock, expected=parse_if_match(if_match)
        )
        return _wire(principal, row, response)


@router.post(
    "/items/{prefix}/{suffix}/lock",
    response_model=Item,
    responses={s: {"model": ErrorBody} for s in (502, 503)},  # a dataset's bucket policy
)
async def lock_route(
    prefix: str,
    suffix: str,
    body: LockRequest,
    request: Request,
    response: Response,
    principal: Caller,
    if_match: IfMatch = None,
) -> Item:
    """Lock the item against record changes; needs ``admin``. 409 when already locked.

    A dataset's data is frozen too: from the lock on, the object store refuses writes with
    any write credentials, including those issued before.
    """
    return await _set_lock(request, response, principal, prefix, suffix, body, if_match, lock=True)


@router.post(
    "/items/{prefix}/{suffix}/unlock",
    response_model=Item,
    responses={s: {"model": ErrorBody} for s in (502, 503)},  # a dataset's bucket policy
)
async def unlock_route(
    prefix: str,
    suffix: str,
    body: LockRequest,
    request: Request,
    response: Response,
    principal: Caller,
    if_match: IfMatch = None,
) -> Item:
    """Unlock the item; needs ``admin``. 409 when it is not locked."""
    return await _set_lock(request, response, principal, prefix, suffix, body, if_match, lock=False)


@router.get("/items/{prefix}/{suffix}/lock-history", response_model=list[LockEvent])
async def lock_history_route(
    prefix: str, suffix: str, principal: Caller, session: Session
) -> list[LockEvent]:
    """Every lock and unlock of the item, oldest first; needs ``metadata-read``."""
    row = await service.load_item(session, _item_id(prefix, suffix))
    access.require(principal, row, "metadata-read")
    return await service.lock_events(session, row.id)


# -- access --------------------------------------------------------------------------------


@router.get("/items/{prefix}/{suffix}/access", response_model=AccessSettings)
async def get_access_route(
    prefix: str, suffix: str, principal: Caller, session: Session, response: Response
) -> AccessSettings:
    """The item's access settings; needs ``metadata-read``."""
    row = await service.load_item(session, _item_id(prefix, suffix))
    access.require(principal, row, "metadata-read")
    response.headers["ETag"] = revision_etag(row.revision)
    return service.get_access(row)


@router.get("/items/{prefix}/{suffix}/my-access", response_model=MyAccess)
async def my_access_route(
    prefix: str, suffix: str, principal: Caller, session: Session
) -> MyAccess:
    """What the caller may do with the item, and why; any signed-in caller, no role needed.

    ``roles`` are the caller's effective roles (empty: no access); ``sources`` name where
    they come from (``owner``, ``general``, ``group:<name>``, ``reviewer``,
    ``system-admin``), so "why can't I?" has an answer without asking the owner.
    """
    row = await service.load_item(session, _item_id(prefix, suffix))
    return MyAccess(
        item_id=row.id,
        username=principal.username,
        roles=access.roles_on(principal, row),
        sources=access.role_sources(principal, row),
        system_roles=sorted(principal.system_roles),
        groups=sorted(principal.groups),
        owner=principal.username == row.owner,
        locked=row.locked,
    )


@router.put("/items/{prefix}/{suffix}/access", response_model=AccessSettings)
async def set_access_route(
    prefix: str,
    suffix: str,
    body: AccessUpdate,
    request: Request,
    response: Response,
    principal: Caller,
    if_match: IfMatch = None,
) -> AccessSettings:
    """Replace the access settings; needs ``admin`` (changing the owner: owner or sysadmin)."""
    expected = expected_revision(if_match, body.expected_revision)
    async with sessions(request)() as session, session.begin():
        row = await service.set_access(
            session, principal, _item_id(prefix, suffix), body, expected=expected
        )
        response.headers["ETag"] = revision_etag(row.revision)
        return service.get_access(row)
