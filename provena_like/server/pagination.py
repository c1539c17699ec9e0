"""Opaque, stable cursors for list endpoints (keyset pagination, never offsets).

A cursor is the unpadded URL-safe base64 of a flat JSON array of scalars (the listing's scope
and the sort key of the last row of a page). Decoding refuses, as a 400 ``bad_cursor``, anything
this module would not have made: a cursor longer than :data:`MAX_CURSOR_LENGTH`, bytes that are
not base64 or JSON, nested arrays or objects, ``NaN``/``Infinity`` and integers that don't fit a
64-bit database column. The times in a cursor are parsed with :func:`cursor_time`, so
a time that can't be held in UTC is a 400 too, never an error of the database layer.

Every listing pages through :func:`keyset_page`: it names the columns of its order
(:class:`KeyColumn`, the last one unique so the order is total) and its *scope* (the
parameters that select and sort the rows), and gets one page plus the cursor of the next.
A cursor holds the scope and the sort key of the last row, so it only fits the listing that
made it; rows added or removed between pages neither repeat nor hide the others.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Double,
    Select,
    String,
    and_,
    literal,
    or_,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.types import TypeEngine

from provena_like.server.db.base import UTCDateTime
from provena_like.server.errors import ServiceError

__all__ = [
    "CURSOR_PATTERN",
    "MAX_CURSOR_LENGTH",
    "MAX_PAGE_SIZE",
    "KeyColumn",
    "KeyKind",
    "bad_cursor",
    "cursor_time",
    "decode_cursor",
    "encode_cursor",
    "keyset_page",
]

MAX_PAGE_SIZE = 1000

MAX_CURSOR_LENGTH = 8192
"""The longest cursor accepted, in characters (the longest one made is about 3,000)."""

CURSOR_PATTERN = r"^[A-Za-z0-9_\-]+$"
"""What every cursor looks like (unpadded URL-safe base64), for the OpenAPI document."""

_INT64 = (-(2**63), 2**63 - 1)


def bad_cursor(message: str = "The cursor does not fit this listing; start again.") -> ServiceError:
    """The 400 answered for any cursor this server did not make for this listing."""
    return ServiceError(
        400,
        "bad_cursor",
        message,
        details=[{"field": "query.cursor", "message": message, "type": "cursor"}],
    )


def encode_cursor(values: list[Any]) -> str:
    """Encode the sort key of the last row of a page."""
    raw = json.dumps(values, separators=(",", ":"), ensure_ascii=False, default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a cursor value")


def _scalar(value: Any) -> bool:
    if value is None or isinstance(value, bool | str):
        return True
    if isinstance(value, int):
        return _INT64[0] <= value <= _INT64[1]
    return isinstance(value, float)  # finite: NaN and Infinity are refused while parsing


def decode_cursor(cursor: str, *, length: int) -> list[Any]:
    """Decode a cursor made by :func:`encode_cursor`; anything else is a 400 ``bad_cursor``.

    Args:
        cursor: the ``cursor`` query parameter.
        length: how many values the listing's cursors hold.

    Returns:
        The values: strings, 64-bit integers, finite floats, booleans or None.

    Raises:
        ServiceError: 400 ``bad_cursor``.
    """
    invalid = "The cursor is not valid; start again without one."
    if not cursor or len(cursor) > MAX_CURSOR_LENGTH:
        raise bad_cursor(invalid)
    try:
        pad = "=" * (-len(cursor) % 4)
        raw = base64.b64decode(cursor + pad, altchars=b"-_", validate=True)
        values = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, TypeError, binascii.Error, RecursionError) as err:
        raise bad_cursor(invalid) from err
    if not isinstance(values, list) or len(values) != length:
        raise bad_cursor()
    if not all(_scalar(v) for v in values):
        raise bad_cursor()
    return values


def cursor_time(value: Any) -> datetime:
    """The aware UTC time in a cursor (an ISO 8601 string with an offset).

    Raises:
        ServiceError: 400 ``bad_cursor`` for anything else, including times that fall outside
            the years 1-9999 once converted to UTC.
    """
    if not isinstance(value, str):
        raise bad_cursor()
    try:
        when = datetime.fromisoformat(value)
        if when.tzinfo is None:
            raise bad_cursor()
        return when.astimezone(UTC)
    except (ValueError, OverflowError):
        raise bad_cursor() from None


KeyKind = Literal["str", "int", "time", "number"]
"""What a sort key holds: text, a 64-bit integer, an aware time, or a finite float."""


@dataclass(frozen=True)
class KeyColumn:
    """One column of a listing's order.

    Attributes:
        column: the SQL expression the rows are ordered by.
        kind: what it holds; a cursor's value of another kind is a 400 ``bad_cursor``.
        value: its value in a result row (the ORM object, or the tuple of a query of several
            columns); a ``time`` is an aware ``datetime``.
        descending: largest first.
    """

    column: ColumnElement[Any] | QueryableAttribute[Any]
    kind: KeyKind
    value: Callable[[Any], Any]
    descending: bool = False

    def from_cursor(self, value: Any) -> Any:
        """The value a cursor holds for this column, checked; 400 ``bad_cursor`` if wrong."""
        if self.kind == "time":
            return cursor_time(value)
        if isinstance(value, bool):
            raise bad_cursor()
        if self.kind == "str" and isinstance(value, str):
            return value
        if self.kind == "int" and isinstance(value, int):
            return value
        if self.kind == "number" and isinstance(value, int | float):
            return float(value)
        raise bad_cursor()

    def to_cursor(self, row: Any) -> Any:
        """This column's value in ``row``, as a cursor holds it."""
        value = self.value(row)
        if self.kind == "time":
            return value.isoformat()
        if self.kind == "number":
            return float(value)
        return value

    def bound(self, value: Any) -> ColumnElement[Any]:
        """``value`` as a typed SQL literal to compare this column with."""
        types: dict[str, TypeEngine[Any]] = {
            "str": String(),
            "time": UTCDateTime(),
            "int": BigInteger(),
            "number": Double(),
        }
        return literal(value, type_=types[self.kind])


def _after(order: Sequence[KeyColumn], values: Sequence[Any]) -> ColumnElement[bool]:
    """The rows that come after the key ``values`` in ``order``."""
    bounds = [key.bound(v) for key, v in zip(order, values, strict=True)]
    if all(key.descending == order[0].descending for key in order):
        columns = [key.column for key in order]
        if len(order) == 1:
            return columns[0] < bounds[0] if order[0].descending else columns[0] > bounds[0]
        position, bound = tuple_(*columns), tuple_(*bounds)
        return position < bound if order[0].descending else position > bound
    # Mixed directions (search: score down, then seq up): (a after x) or (a = x and b after y)...
    alternatives = []
    for i, key in enumerate(order):
        equal = [order[j].column == bounds[j] for j in range(i)]
        beyond = key.column < bounds[i] if key.descending else key.column > bounds[i]
        alternatives.append(and_(*equal, beyond))
    return or_(*alternatives)


async def keyset_page(
    session: AsyncSession,
    query: Select[*tuple[Any, ...]],
    order: Sequence[KeyColumn],
    *,
    cursor: str | None,
    page_size: int,
    scope: Sequence[Any] = (),
) -> tuple[list[Any], str | None]:
    """One page of ``query`` in ``order``, and the cursor of the next page (None at the end).

    Args:
        session: a database session.
        query: the listing's rows, filtered but not ordered or limited.
        order: the columns of the order, the last one unique among the rows (a handle's
            number, an id), so the order is total and stable.
        cursor: the ``next_cursor`` of the previous page, or None for the first page.
        page_size: rows per page, 1 to :data:`MAX_PAGE_SIZE` (routes check it first).
        scope: JSON scalars naming what was listed (filters, sort, the parent's id); a cursor
            made for another scope is refused.

    Returns:
        The rows (ORM objects for a query of one entity, tuples otherwise) and the cursor.

    Raises:
        ServiceError: 400 ``bad_cursor`` for a cursor this listing did not make.
        ValueError: a ``page_size`` out of bounds, or no ``order``.

    Example:
        ```python
        newest_first = [KeyColumn(HistoryRow.id, "int", lambda r: r.id, descending=True)]
        query = select(HistoryRow).where(HistoryRow.item_id == item_id)
        rows, next_cursor = await keyset_page(
            session, query, newest_first, cursor=cursor, page_size=50, scope=[item_id]
        )
        ```
    """
    if not order:
        raise ValueError("a listing needs at least one column to order by")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1-{MAX_PAGE_SIZE}, not {page_size}")
    scope = list(scope)
    if cursor is not None:
        values = decode_cursor(cursor, length=len(scope) + len(order))
        if values[: len(scope)] != scope:
            raise bad_cursor()
        keys = [key.from_cursor(v) for key, v in zip(order, values[len(scope) :], strict=True)]
        query = query.where(_after(order, keys))
    query = query.order_by(
        *(key.column.desc() if key.descending else key.column.asc() for key in order)
    ).limit(page_size + 1)
    result = await session.execute(query)
    rows: list[Any] = [r[0] if len(r) == 1 else tuple(r) for r in result.all()]
    more = len(rows) > page_size
    rows = rows[:page_size]
    next_cursor = None
    if more:
        next_cursor = encode_cursor([*scope, *(key.to_cursor(rows[-1]) for key in order)])
    return rows, next_cursor
