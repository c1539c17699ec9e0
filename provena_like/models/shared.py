"""Wire models shared by every service (the contract of DESIGN.md §3)."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

__all__ = ["MAX_DB_INT", "ErrorBody", "ErrorDetail", "Page", "Revision", "WireModel"]

MAX_DB_INT = 2**63 - 1
"""The largest integer a database column holds (64-bit signed): ids and sizes are at most this."""


Revision = Annotated[
    int,
    Field(ge=0, le=MAX_DB_INT, description="an item revision (see Item.revision)"),
]
"""An ``expected_revision``: what the caller last saw, guarding against lost updates."""


class WireModel(BaseModel):
    """Base of every wire model: unknown fields are kept so newer servers don't break us."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


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
    """One page of a list endpoint; ``next_cursor`` is ``None`` on the last page."""

    items: list[T] = Field(default_factory=list)
    next_cursor: str | None = None
