"""Opaque, stable cursors for list endpoints (keyset pagination, never offsets).

A cursor is the unpadded URL-safe base64 of a flat JSON array of scalars (the listing's scope
and the sort key of the last row of a page). Decoding refuses, as a 400 ``bad_cursor``, anything
this module would not have made: a cursor longer than :data:`MAX_CURSOR_LENGTH`, bytes that are
not base64 or JSON, nested arrays or objects, ``NaN``/``Infinity`` and integers that don't fit a
64-bit database column. Listings parse the times in their cursors with :func:`cursor_time`, so
a time that can't be held in UTC is a 400 too, never an error of the database layer.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from provena_like.server.errors import ServiceError

__all__ = [
    "CURSOR_PATTERN",
    "MAX_CURSOR_LENGTH",
    "MAX_PAGE_SIZE",
    "bad_cursor",
    "cursor_time",
    "decode_cursor",
    "encode_cursor",
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
