"""HTTP routes of sessions, mounted at ``/registry`` beside the items they create.

``POST /registry/sessions`` creates a session with a server-allocated number (honours
``Idempotency-Key``: a retry with the same key replays the same session);
``GET /registry/sessions`` lists sessions by subject, lab, date range and number. The
sessions themselves are registry items of subtype ``session``: read, change, lock and
share them through ``/registry/items/{id}``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.registration import MAX_SESSION_NUMBER, IsoDate, SessionCreate
from provena_like.models.registry import Item, SortOrder
from provena_like.models.shared import Page
from provena_like.server import access
from provena_like.server.errors import ServiceError
from provena_like.server.params import Cursor, IdempotencyKey, PageSize, error_responses
from provena_like.server.registry import service as registry
from provena_like.server.registry.routes import _idempotent_item
from provena_like.server.security import Principal, db_session, require_principal

from . import sessions as service
from .index import SESSION_NUMBER_TAKEN

__all__ = ["ALLOCATION_ATTEMPTS", "router"]

router = APIRouter(tags=["registry"], responses=error_responses(400, 401, 403, 409, 413, 422))

Caller = Annotated[Principal, Depends(require_principal)]
Session = Annotated[AsyncSession, Depends(db_session)]

ALLOCATION_ATTEMPTS = 5
"""How often an allocation that lost a race to an explicit number is retried."""


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
