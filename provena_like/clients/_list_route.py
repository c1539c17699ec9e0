"""``ListRoute``: one cursor-paginated ``GET`` route, for the L2 ``list_*`` / ``iter_*`` pairs.

Every list route of the services answers a :class:`~provena_like.models.shared.Page` and takes
``page_size`` and ``cursor``. Its ``list_*`` method returns one page and its ``iter_*`` twin an
:class:`~provena_like._core.pagination.AsyncPaginator` over all of them; both go through the
same :meth:`ListRoute.fetch`, so the route, the service and the page model are written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from provena_like._core.config import ServiceName
from provena_like._core.http import HTTPCore
from provena_like._core.pagination import AsyncPaginator
from provena_like.models.shared import Page

__all__ = ["ListRoute"]

T = TypeVar("T")


class ListRoute(Generic[T]):
    """One paginated ``GET`` route of a service.

    Args:
        core: the HTTP core the requests go through.
        service: the service the route belongs to.
        path: the route, relative to the service's URL.
        page_type: the page model the route answers (``Page[Item]``).
    """

    def __init__(
        self, core: HTTPCore, service: ServiceName, path: str, page_type: type[Page[T]]
    ) -> None:
        self._core = core
        self._service: ServiceName = service
        self._path = path
        self._page_type = page_type

    def __repr__(self) -> str:
        return f"ListRoute({self._service!r}, {self._path!r})"

    async def fetch(self, params: dict[str, Any]) -> Page[T]:
        """One page, given all the query parameters (``None`` values are left out)."""
        return await self._core.request(
            "GET", self._service, self._path, params=params, cast_to=self._page_type
        )

    async def page(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        page_size: int,
        cursor: str | None,
    ) -> Page[T]:
        """The page of ``page_size`` items from ``cursor`` (the start for ``None``)."""
        return await self.fetch({**(params or {}), "page_size": page_size, "cursor": cursor})

    def iterate(
        self,
        params: Mapping[str, Any] | None = None,
        *,
        page_size: int,
        cursor: str | None,
        max_items: int | None,
    ) -> AsyncPaginator[T]:
        """Every item from ``cursor`` on, ``page_size`` a page, at most ``max_items``."""
        return AsyncPaginator(
            self.fetch, params, page_size=page_size, cursor=cursor, max_items=max_items
        )
