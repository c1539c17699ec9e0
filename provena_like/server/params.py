"""Request parameters shared by the routes of every service, with their documented constraints.

The constraints are the ones the server enforces, so that the OpenAPI document tells the
truth: a value outside them is a 422, a value inside them is never refused for its form.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Query
from pydantic import WithJsonSchema

from provena_like.models.registry import RECORD_MODELS
from provena_like.models.shared import ErrorBody
from provena_like.server.pagination import CURSOR_PATTERN, MAX_CURSOR_LENGTH, MAX_PAGE_SIZE

__all__ = [
    "ETAG_PATTERN",
    "Cursor",
    "IdempotencyKey",
    "IfMatch",
    "PageSize",
    "Subtype",
    "error_responses",
    "subtype_schema",
]

ETAG_PATTERN = r'^(?:\*|(?:W/)?(?:"[0-9]{1,18}"|[0-9]{1,18}))$'
"""An ``If-Match`` the server understands: ``*``, or one revision, quoted or not, weak or not."""

# Cursor and If-Match are checked by the server itself (400 bad_cursor / bad_request, the
# answers clients already know); the document states the same constraints.
Cursor = Annotated[
    str | None,
    Query(
        description="the next_cursor of the previous page (opaque; only cursors this server "
        "made for the same listing are accepted, others are a 400 bad_cursor)",
    ),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_CURSOR_LENGTH,
            "pattern": CURSOR_PATTERN,
        }
    ),
]
# Optional headers are documented as plain strings: a header is absent or a string, never
# JSON null (which a client would send as the text "null").
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='the revision the change is based on: "<revision>" (or * for any)',
    ),
    WithJsonSchema({"type": "string", "pattern": ETAG_PATTERN}),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="replays the first result for the same key (1-255 characters)",
    ),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 255}),
]
PageSize = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="items per page")]


def subtype_schema(*, creatable: bool = False) -> WithJsonSchema:
    """The documented values of a ``subtype`` (datasets are minted by the datastore only).

    The parameter stays a ``str`` so that an unknown subtype gets the server's own 422, which
    names the valid ones; the document lists exactly those.
    """
    names = sorted(RECORD_MODELS)
    if creatable:
        names = [n for n in names if n != "dataset"]
    return WithJsonSchema({"type": "string", "enum": names})


Subtype = Annotated[str, subtype_schema()]
"""A registry subtype (``organisation``, ``person``, ``dataset``)."""


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting the error envelope for each of ``statuses``."""
    return {status: {"model": ErrorBody} for status in statuses}
