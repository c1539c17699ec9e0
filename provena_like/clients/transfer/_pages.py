"""Globus paging (limit/offset/total and marker/next_marker) as the SDK's cursor pages.

The transfer client's ``list_*`` methods answer a :class:`~provena_like.models.shared.Page`
whose ``next_cursor`` is the next offset or marker (``None`` at the end), so their ``iter_*``
twins are the :class:`~provena_like._core.pagination.AsyncPaginator` every L2 client uses.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from provena_like._core.errors import UsageError
from provena_like._core.pagination import AsyncPaginator
from provena_like.models.shared import Page

__all__ = ["MAX_OFFSET_PAGE", "next_marker", "next_offset", "offset_of", "paginator"]

M = TypeVar("M")

MAX_OFFSET_PAGE = 1000
"""The largest ``limit`` of ``task_list`` and ``event_list``."""


def offset_of(cursor: str | None) -> int:
    """The offset a limit/offset cursor stands for (``None``: the start).

    Raises:
        UsageError: not a cursor of such a list.
    """
    if cursor is None:
        return 0
    try:
        offset = int(cursor)
    except ValueError:
        raise UsageError(f"not a cursor of this list: {cursor!r}") from None
    if offset < 0:
        raise UsageError(f"not a cursor of this list: {cursor!r}")
    return offset


def next_offset(doc: Mapping[str, Any], offset: int, count: int) -> str | None:
    """The cursor after a limit/offset page (``None`` at the end).

    The end is where ``total`` says, or where ``has_next_page`` is false
    (``endpoint_search`` answers no total), or an empty page.
    """
    total = doc.get("total")
    nxt = offset + count
    if count == 0 or (isinstance(total, int) and nxt >= total):
        return None
    if doc.get("has_next_page") is False:
        return None
    return str(nxt)


def next_marker(doc: Mapping[str, Any]) -> str | None:
    """The cursor after a marker page: its ``next_marker`` (``None`` at the end)."""
    marker = doc.get("next_marker")
    return None if marker is None else str(marker)


def paginator(
    list_page: Callable[[int, str | None], Awaitable[Page[M]]],
    *,
    page_size: int = 100,
    cursor: str | None = None,
    max_items: int | None = None,
) -> AsyncPaginator[M]:
    """An :class:`AsyncPaginator` over a ``list_*`` method (``list_page(size, cursor)``)."""

    async def fetch(params: dict[str, Any]) -> Page[M]:
        return await list_page(params["page_size"], params.get("cursor"))

    return AsyncPaginator(fetch, page_size=page_size, cursor=cursor, max_items=max_items)
