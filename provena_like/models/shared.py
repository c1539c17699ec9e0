"""Wire models shared by every service (the contract of DESIGN.md §3)."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, WithJsonSchema

from provena_like._core.model_builds import model_builds_deferred
from provena_like._display import MAX_HTML_ROWS, clip, html_table

T = TypeVar("T")

__all__ = [
    "MAX_WIRE_INT",
    "ErrorBody",
    "ErrorDetail",
    "Page",
    "Revision",
    "SecretOut",
    "WireModel",
]

MAX_WIRE_INT = 2**53 - 1
"""The largest integer a request may hold (ids, revisions, sizes): exact as a JSON number in
every client (I-JSON, RFC 7493) and well within a 64-bit database column."""


Revision = Annotated[
    int,
    Field(ge=0, le=MAX_WIRE_INT, description="an item revision (see Item.revision)"),
]
"""An ``expected_revision``: what the caller last saw, guarding against lost updates."""

SecretOut = Annotated[
    SecretStr,
    WithJsonSchema({"type": "string", "description": "a secret the server hands out once"}),
]
"""A secret in a *response* (a token, a key): kept out of ``repr`` like any ``SecretStr``, but
documented as a plain string (pydantic marks ``SecretStr`` ``writeOnly``, which is for requests)."""


class WireModel(BaseModel):
    """Base of every wire model: unknown fields are kept so newer servers don't break us.

    In the ``provena-like`` console script its schema is built on first use (see
    :mod:`provena_like._core.model_builds`).
    """

    model_config = ConfigDict(
        extra="allow", populate_by_name=True, defer_build=model_builds_deferred()
    )


class ErrorDetail(WireModel):
    """The body of an error: a stable ``code``, a human ``message`` and optional ``details``."""

    code: str
    message: str
    details: Any = None
    request_id: str | None = None


class ErrorBody(WireModel):
    """Every non-OAuth error response: ``{"error": {...}}``."""

    error: ErrorDetail


class Page(WireModel, Generic[T]):
    """One page of a list endpoint; ``next_cursor`` is ``None`` on the last page.

    Its ``repr`` is one line (``Page[Item]: 20 items, more after this page``) and in a
    notebook it shows as a table of the first few items' ids and names.

    Example:
        ```python
        assert repr(Page[int](items=[1, 2])) == "Page[int]: 2 items, the last page"
        ```
    """

    items: list[T] = Field(default_factory=list)
    next_cursor: str | None = None

    def __repr__(self) -> str:
        more = "more after this page" if self.next_cursor is not None else "the last page"
        return f"{type(self).__name__}: {len(self.items)} items, {more}"

    def _repr_html_(self) -> str:
        rows = [_item_row(item) for item in self.items[:MAX_HTML_ROWS]]
        return html_table(repr(self), ["id", "name"], rows, total=len(self.items))


def _item_row(entry: Any) -> list[str]:
    """The id and name of a page entry (a search hit shows its item's)."""
    item = getattr(entry, "item", entry)
    ident = getattr(item, "id", None) or getattr(item, "path", None)
    if ident is None:
        return [clip(repr(item), 80), ""]
    return [str(ident), clip(str(getattr(item, "display_name", "") or ""), 80)]
