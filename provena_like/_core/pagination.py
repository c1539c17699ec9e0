"""``AsyncPaginator``: walk a cursor-paginated list endpoint.

List endpoints take ``page_size`` and an opaque ``cursor`` and answer
``{"items": [...], "next_cursor": ...}`` (:class:`~provena_like.models.shared.Page`). A
paginator turns one such endpoint into:

```python
first = await paginator                  # the first page
async for item in paginator: ...         # every item, page after page
async for page in paginator.pages(): ... # every page
```

It stops only when the server answers ``next_cursor = null``: a short or even empty page that
still carries a cursor is followed. It never mutates the parameters it was given.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from typing import Any, Generic, TypeVar

from provena_like._core.errors import APIError, UsageError
from provena_like.models.shared import Page

__all__ = ["AsyncPaginator", "PageFetcher"]

T = TypeVar("T")

PageFetcher = Callable[[dict[str, Any]], Awaitable[Page[T]]]
"""Fetches one page given the full query parameters (including ``page_size``/``cursor``)."""


class AsyncPaginator(Generic[T]):
    """Every item of a list endpoint, fetched one page at a time.

    Each walk (``async for``, :meth:`pages`, ``await``) starts again from the starting cursor.
    After a walk, :attr:`next_cursor` says where to resume without skipping anything, and
    :attr:`exhausted` says whether the server reported the end of the list.

    Args:
        fetch: fetches one page given the query parameters (an L2 ``list_*`` call).
        params: the other query parameters; copied, never mutated.
        page_size: items to ask for per page.
        cursor: where to start (a previous :attr:`next_cursor`); ``None`` for the beginning.
        max_items: stop after this many items (the last page asked for is shrunk to fit, so
            :attr:`next_cursor` resumes exactly after the last item).

    Raises:
        UsageError: for a ``page_size`` below 1 or a negative ``max_items``.

    Example:
        ```python
        paginator = client.registry_client.iter_items(subtype="person", max_items=500)
        async for item in paginator:
            print(item.id)
        resume_from = paginator.next_cursor
        ```
    """

    def __init__(
        self,
        fetch: Callable[[dict[str, Any]], Awaitable[Page[T]]],
        params: Mapping[str, Any] | None = None,
        *,
        page_size: int = 100,
        cursor: str | None = None,
        max_items: int | None = None,
    ) -> None:
        if page_size < 1:
            raise UsageError(f"page_size must be at least 1, got {page_size}")
        if max_items is not None and max_items < 0:
            raise UsageError(f"max_items must not be negative, got {max_items}")
        self._fetch = fetch
        self._params: dict[str, Any] = dict(params or {})
        self._page_size = page_size
        self._start_cursor = cursor
        self._max_items = max_items
        self._next_cursor = cursor
        self._exhausted = False

    @property
    def next_cursor(self) -> str | None:
        """The cursor to resume from without skipping an item not yet seen.

        After consuming a whole page it is that page's ``next_cursor``; when a walk stopped
        in the middle of a page, it is the cursor of that page (so a resume may repeat items,
        but never misses one). ``None`` with :attr:`exhausted` means there is nothing left.
        """
        return self._next_cursor

    @property
    def exhausted(self) -> bool:
        """Whether the server reported the end of the list (``next_cursor = null``)."""
        return self._exhausted

    @property
    def params(self) -> dict[str, Any]:
        """A copy of the query parameters (without ``page_size`` and ``cursor``)."""
        return dict(self._params)

    def __repr__(self) -> str:
        return (
            f"AsyncPaginator(params={self._params!r}, page_size={self._page_size}, "
            f"cursor={self._start_cursor!r}, max_items={self._max_items})"
        )

    # -- walking -------------------------------------------------------------------------

    async def _fetch_page(self, cursor: str | None, size: int) -> Page[T]:
        params = dict(self._params)
        params["page_size"] = size
        if cursor is not None:
            params["cursor"] = cursor
        page = await self._fetch(params)
        if page.next_cursor is not None and cursor is not None and page.next_cursor == cursor:
            raise APIError(
                f"pagination loop: the server answered cursor {cursor!r} with the same cursor"
            )
        return page

    def pages(self) -> AsyncIterator[Page[T]]:
        """Iterate over pages, following ``next_cursor`` until the server returns ``null``.

        Example:
            ```python
            async for page in client.registry_client.iter_items().pages():
                print(len(page.items), page.next_cursor)
            ```
        """
        return _PageWalk(self, track_pages=True)

    def __aiter__(self) -> AsyncIterator[T]:
        return _ItemWalk(self)

    def __await__(self) -> Generator[Any, None, Page[T]]:
        return self._first_page().__await__()

    async def _first_page(self) -> Page[T]:
        walk = _PageWalk(self, track_pages=True)
        try:
            return await walk.__anext__()
        except StopAsyncIteration:
            return Page[Any](items=[], next_cursor=self._start_cursor)


class _PageWalk(AsyncIterator[Page[T]]):
    """One walk over the pages of a paginator."""

    def __init__(self, paginator: AsyncPaginator[T], *, track_pages: bool) -> None:
        self._paginator = paginator
        self._cursor = paginator._start_cursor
        self._remaining = paginator._max_items
        self._finished = False
        self._track_pages = track_pages
        self.current_cursor: str | None = None
        paginator._next_cursor = paginator._start_cursor
        paginator._exhausted = False

    def __aiter__(self) -> _PageWalk[T]:
        return self

    async def __anext__(self) -> Page[T]:
        p = self._paginator
        if self._finished or (self._remaining is not None and self._remaining <= 0):
            self._finished = True
            raise StopAsyncIteration
        size = p._page_size if self._remaining is None else min(p._page_size, self._remaining)
        page = await p._fetch_page(self._cursor, size)
        if self._remaining is not None:
            if len(page.items) > self._remaining:
                page = page.model_copy(update={"items": page.items[: self._remaining]})
            self._remaining -= len(page.items)
        self.current_cursor = self._cursor
        self._cursor = page.next_cursor
        if page.next_cursor is None:
            self._finished = True
        if self._track_pages:
            p._next_cursor = page.next_cursor
            p._exhausted = page.next_cursor is None
        return page


class _ItemWalk(AsyncIterator[T]):
    """One walk over the items of a paginator, page after page."""

    def __init__(self, paginator: AsyncPaginator[T]) -> None:
        self._paginator = paginator
        self._pages = _PageWalk(paginator, track_pages=False)
        self._page: Page[T] | None = None
        self._index = 0

    def __aiter__(self) -> _ItemWalk[T]:
        return self

    async def __anext__(self) -> T:
        p = self._paginator
        while self._page is None or self._index >= len(self._page.items):
            self._page = await self._pages.__anext__()  # StopAsyncIteration ends the walk
            self._index = 0
            if not self._page.items:  # an empty page: consumed at once
                p._next_cursor = self._page.next_cursor
                p._exhausted = self._page.next_cursor is None
        item = self._page.items[self._index]
        self._index += 1
        if self._index >= len(self._page.items):
            p._next_cursor = self._page.next_cursor
            p._exhausted = self._page.next_cursor is None
        else:
            p._next_cursor = self._pages.current_cursor
            p._exhausted = False
        return item
