"""Opaque, stable cursors for list endpoints (keyset pagination, never offsets)."""

from __future__ import annotations

import base64
import json
from typing import Any

from provena_like.server.errors import ServiceError

MAX_PAGE_SIZE = 1000


def encode_cursor(values: list[Any]) -> str:
    """Encode the sort key of the last row of a page."""
    raw = json.dumps(values, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, length: int) -> list[Any]:
    """Decode a cursor made by :func:`encode_cursor`; a tampered one is a 400."""
    try:
        pad = "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(cursor + pad))
    except (ValueError, TypeError) as err:
        message = "The cursor is not valid; start again without one."
        raise ServiceError(400, "bad_cursor", message) from err
    if not isinstance(values, list) or len(values) != length:
        raise ServiceError(400, "bad_cursor", "The cursor does not fit this listing.")
    return values
