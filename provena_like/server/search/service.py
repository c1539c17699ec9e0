"""Searching registry items: match, filter by access and fields, rank, paginate, highlight.

One query does the work: the backend's matches (``seq``, ``score``) joined to
``registry_items``, filtered by :func:`provena_like.server.access.readable_filter` and the
caller's filters *in SQL*, ordered by ``score`` (best first) then handle number, and cut by a
keyset cursor ``(score, seq)``. So a page is short only at the end, never holds an item the
caller may not read, and - while the index doesn't change - a walk over every page yields
each hit exactly once. A second, small query highlights the matches of that page only.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.search import SearchHit
from provena_like.server import access
from provena_like.server.errors import validation_error
from provena_like.server.pagination import KeyColumn, keyset_page
from provena_like.server.registry import service as registry
from provena_like.server.registry import subtypes
from provena_like.server.registry.tables import ItemRow
from provena_like.server.search.documents import FIELDS, render_highlight
from provena_like.server.search.index import backend_of
from provena_like.server.search.query import parse_query
from provena_like.server.security import Principal

__all__ = [
    "FIELD_PATTERN",
    "MAX_FIELD_FILTERS",
    "FieldFilter",
    "SearchFilters",
    "parse_field_filter",
    "search",
]

MAX_FIELD_FILTERS = 8
"""The most ``field`` filters one search may have."""

FIELD_PATTERN = r"^record(?:\.[A-Za-z0-9_\-]{1,100}){1,10}:[^\x00]{1,500}$"
"""What a ``field`` filter looks like (for the OpenAPI document)."""

_FIELD = re.compile(r"^record((?:\.[A-Za-z0-9_\-]{1,100}){1,10}):(.{1,500})$", re.DOTALL)


@dataclass(frozen=True)
class FieldFilter:
    """Items whose record holds ``value`` at ``path`` (exactly; or as one array element)."""

    path: tuple[str, ...]
    value: str


@dataclass(frozen=True)
class SearchFilters:
    """Filters besides the text query; all of them must hold.

    Attributes:
        subtypes: any of these subtypes (empty: every subtype).
        owner: only items owned by this user.
        created_after: created at or after this time.
        created_before: created before this time.
        fields: record values to match exactly.
    """

    subtypes: tuple[str, ...] = ()
    owner: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    fields: tuple[FieldFilter, ...] = field(default_factory=tuple)


def parse_field_filter(raw: str) -> FieldFilter:
    """Parse ``record.<key>[.<key>...]:<value>``; keys are letters, digits, ``_`` and ``-``.

    The value is 1-500 characters, without NUL.

    Raises:
        ServiceError: 422 naming ``field`` for anything else.

    Example:
        ```python
        parse_field_filter("record.dataset_info.keywords:coral")
        # FieldFilter(path=("dataset_info", "keywords"), value="coral")
        ```
    """
    match = _FIELD.match(raw)
    if match is None or "\x00" in raw:
        message = (
            "a field filter is record.<key>[.<key>...]:<value>, e.g. "
            f"record.dataset_info.keywords:coral; got {raw[:100]!r}"
        )
        raise validation_error(
            [{"field": "query.field", "message": message, "type": "field_filter"}],
            message="Invalid request: check field.",
        )
    return FieldFilter(tuple(match.group(1).split(".")[1:]), match.group(2))


def _utc(when: datetime) -> datetime:
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _scope(q: str, filters: SearchFilters) -> str:
    """A digest of what was searched for: a cursor only fits the search that made it."""
    parts = [
        q,
        sorted(filters.subtypes),
        filters.owner,
        filters.created_after and _utc(filters.created_after).isoformat(),
        filters.created_before and _utc(filters.created_before).isoformat(),
        [[list(f.path), f.value] for f in filters.fields],
    ]
    raw = json.dumps(parts, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


async def search(
    session: AsyncSession,
    principal: Principal,
    q: str,
    filters: SearchFilters,
    *,
    page_size: int = 20,
    cursor: str | None = None,
) -> tuple[list[SearchHit], str | None]:
    """One page of the items matching ``q`` that ``principal`` may read, best first.

    Args:
        session: a database session.
        principal: the caller; only items they hold ``metadata-read`` on are considered.
        q: the query text (see :mod:`provena_like.server.search.query`).
        filters: subtype, owner, creation time and record field filters.
        page_size: hits per page.
        cursor: the ``next_cursor`` of the previous page.

    Returns:
        The hits and the cursor of the next page (None on the last page).

    Raises:
        ServiceError: 422 for a bad query or an unknown subtype, 400 for a bad cursor.
    """
    parsed = parse_query(q)
    for subtype in filters.subtypes:
        subtypes.require_subtype(subtype, field="query.subtype")
    backend = backend_of(session)
    matches = backend.ranked(parsed)
    score = matches.c.score
    stmt = (
        select(ItemRow, score)
        .join(matches, matches.c.seq == ItemRow.seq)
        .where(access.readable_filter(principal))
    )
    if filters.subtypes:
        stmt = stmt.where(ItemRow.subtype.in_(sorted(set(filters.subtypes))))
    if filters.owner is not None:
        stmt = stmt.where(ItemRow.owner == filters.owner)
    if filters.created_after is not None:
        stmt = stmt.where(ItemRow.created_at >= _utc(filters.created_after))
    if filters.created_before is not None:
        stmt = stmt.where(ItemRow.created_at < _utc(filters.created_before))
    for f in filters.fields:
        stmt = stmt.where(backend.field_filter(ItemRow.record, f.path, f.value))
    order = [
        KeyColumn(score, "number", lambda r: r[1], descending=True),
        KeyColumn(ItemRow.seq, "int", lambda r: r[0].seq),
    ]
    rows, next_cursor = await keyset_page(
        session, stmt, order, cursor=cursor, page_size=page_size, scope=[_scope(q, filters)]
    )
    marked: dict[int, Any] = {}
    if rows:
        found = await session.execute(backend.highlights(parsed, [row.seq for row, _ in rows]))
        marked = {r.seq: r for r in found}
    hits = []
    for row, row_score in rows:
        highlights: dict[str, str] = {}
        if (hl := marked.get(row.seq)) is not None:
            for name in FIELDS:
                html = render_highlight(backend.finish_highlight(parsed, name, getattr(hl, name)))
                if html is not None:
                    highlights[name] = html
        item = registry.to_item(row, access.roles_on(principal, row))
        hits.append(SearchHit(item=item, score=float(row_score), highlights=highlights))
    return hits, next_cursor
