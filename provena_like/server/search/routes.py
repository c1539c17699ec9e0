"""HTTP routes of the search service, mounted at ``/search``.

``GET /items`` searches the registry items the caller may read; ``POST /reindex`` (system
admins) rebuilds the index from the registry. Both need a Bearer token.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AfterValidator, BeforeValidator, WithJsonSchema
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.search import ReindexResult, SearchHit
from provena_like.models.shared import ErrorBody, Page
from provena_like.server import access
from provena_like.server.errors import validation_error
from provena_like.server.params import Cursor, Subtype
from provena_like.server.search import index, service
from provena_like.server.search.query import MAX_QUERY_LENGTH
from provena_like.server.search.service import FIELD_PATTERN
from provena_like.server.security import Principal, db_session, require_principal, sessions

__all__ = ["MAX_SEARCH_PAGE_SIZE", "router"]

MAX_SEARCH_PAGE_SIZE = 100
"""The largest ``page_size`` of a search (each hit carries highlights)."""

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 413, 422)
}

router = APIRouter(tags=["search"], responses=_ERRORS)


def _to_utc(when: datetime | None) -> datetime | None:
    """A filter time as aware UTC (naive = UTC); a time UTC can't hold is a 422."""
    if when is None:
        return None
    if when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    try:
        return when.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is outside the years 1-9999 in UTC") from None


def _iso_only(value: object) -> object:
    """Refuse a bare number (pydantic reads it as a Unix timestamp); the schema says ISO 8601."""
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
        raise ValueError("give the time in ISO 8601 (e.g. 2026-01-31T12:00:00Z), not a number")
    return value


IsoTime = Annotated[datetime, BeforeValidator(_iso_only)]
"""A filter time as the schema says it: an ISO 8601 string (a number is a 422)."""


Caller = Annotated[Principal, Depends(require_principal)]
Session = Annotated[AsyncSession, Depends(db_session)]


@router.get("/items", response_model=Page[SearchHit])
async def search_items_route(
    principal: Caller,
    session: Session,
    q: Annotated[
        str,
        Query(
            max_length=MAX_QUERY_LENGTH,
            description='words (AND), "a phrase", a OR b, -excluded, prefix*; '
            'extracted:word (also extracted:"a phrase", extracted:prefix*, '
            "-extracted:word) looks in the extracted metadata of datasets' files only; "
            "column:word, attribute:word, dataset:word, variable:word in that kind of "
            "extracted name only",
        ),
    ],
    subtype: Annotated[list[Subtype] | None, Query(description="any of these subtypes")] = None,
    owner: Annotated[str | None, Query(description="only items owned by this user")] = None,
    created_after: Annotated[
        IsoTime | None,
        Query(description="created at or after (ISO 8601; naive = UTC)"),
        AfterValidator(_to_utc),
    ] = None,
    created_before: Annotated[
        IsoTime | None,
        Query(description="created before (ISO 8601; naive = UTC)"),
        AfterValidator(_to_utc),
    ] = None,
    field: Annotated[
        list[Annotated[str, WithJsonSchema({"type": "string", "pattern": FIELD_PATTERN})]] | None,
        Query(
            max_length=service.MAX_FIELD_FILTERS,
            description="record.<path>:<value>, exact match on a record value or one element "
            "of an array, e.g. record.dataset_info.keywords:coral (repeatable, all must hold)",
        ),
    ] = None,
    page_size: Annotated[int, Query(ge=1, le=MAX_SEARCH_PAGE_SIZE)] = 20,
    cursor: Cursor = None,
) -> Page[SearchHit]:
    """Full-text search over the registry items the caller may read, best match first.

    Matches the display name, the record's text (names, titles and keywords rank higher),
    the subtype, the owner and the extracted metadata of a dataset's files (column names,
    attributes...; ``extracted:temperature`` looks there only, ``column:temperature`` in
    table columns only); accents and case are ignored. Each hit has the item (with the
    caller's ``roles``), a ``score`` and ``highlights`` (field → HTML-escaped text with
    ``<mark>`` around each match). Pass ``next_cursor`` back as ``cursor`` for the next
    page; a cursor only fits the query and filters that made it.
    """
    fields = field or []
    if len(fields) > service.MAX_FIELD_FILTERS:
        message = f"at most {service.MAX_FIELD_FILTERS} field filters"
        raise validation_error(
            [{"field": "query.field", "message": message, "type": "too_many"}],
            message=f"Invalid request: check field ({message}).",
        )
    filters = service.SearchFilters(
        subtypes=tuple(subtype or ()),
        owner=owner,
        created_after=created_after,
        created_before=created_before,
        fields=tuple(service.parse_field_filter(f) for f in fields),
    )
    hits, next_cursor = await service.search(
        session, principal, q, filters, page_size=page_size, cursor=cursor
    )
    return Page[SearchHit](items=hits, next_cursor=next_cursor)


@router.post("/reindex", response_model=ReindexResult)
async def reindex_route(request: Request, principal: Caller) -> ReindexResult:
    """Rebuild the whole index from the registry, in one transaction; system admins only.

    Not needed in normal operation (every write indexes its item); for recovery after
    restoring a database or changing how documents are built.
    """
    access.require_system_role(principal, "admin", "Rebuilding the search index")
    started = time.perf_counter()
    async with sessions(request)() as session, session.begin():
        count = await index.rebuild(session)
    return ReindexResult(indexed=count, seconds=round(time.perf_counter() - started, 3))
