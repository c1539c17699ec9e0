"""``SearchClient``: the L2 client of the search service.

One method per route, one HTTP call per method: :meth:`SearchClient.search_items` fetches one
:class:`~provena_like.models.shared.Page` of hits, :meth:`SearchClient.iter_search_items`
returns an :class:`~provena_like.AsyncPaginator` that follows the cursors.

Query text: words are ANDed, ``"a phrase"`` matches a phrase, ``a OR b`` either, ``-word``
excludes, ``temp*`` matches a prefix; case and accents are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from provena_like._core.http import HTTPCore
from provena_like._core.pagination import AsyncPaginator
from provena_like.clients._base import ServiceClient
from provena_like.models.search import ReindexResult, SearchHit
from provena_like.models.shared import Page

__all__ = ["SearchClient"]


class SearchClient(ServiceClient):
    """Typed calls to the search service.

    Args:
        core: the shared HTTP core (normally ``ProvenaClient.search`` builds this).

    Example:
        ```python
        async with ProvenaClient.from_env() as pv:
            page = await pv.search_client.search_items("coral reef", subtype="dataset")
            for hit in page.items:
                print(hit.score, hit.item.display_name, hit.highlights)
        ```
    """

    _service = "search"

    def __init__(self, core: HTTPCore) -> None:
        super().__init__(core)
        self._hits = self._list_route("/items", Page[SearchHit])

    async def search_items(
        self,
        q: str,
        *,
        subtype: str | Sequence[str] | None = None,
        owner: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        fields: Mapping[str, str] | None = None,
        page_size: int = 20,
        cursor: str | None = None,
    ) -> Page[SearchHit]:
        """Fetch one page of hits, best match first (``GET /search/items``).

        Only items the caller may read are searched, so pages are full until the last one.

        Args:
            q: the query text: words (AND), ``"a phrase"``, ``a OR b``, ``-excluded``,
                ``prefix*``; ``extracted:word`` (or ``extracted:"a phrase"``,
                ``extracted:prefix*``, ``-extracted:word``) looks in the extracted metadata
                of a dataset's files only (column names, attributes...), not in its title;
                ``column:word``, ``attribute:word``, ``dataset:word`` (HDF5) and
                ``variable:word`` (netCDF) in that kind of extracted name only.
            subtype: only items of this subtype (or of any of these subtypes).
            owner: only items owned by this user.
            created_after: only items created at or after this time.
            created_before: only items created before this time.
            fields: record path → value that must match exactly (a scalar, or one element
                of an array), e.g. ``{"dataset_info.keywords": "coral"}``.
            page_size: hits per page (at most 100).
            cursor: the ``next_cursor`` of the previous page (of the same search).

        Returns:
            The page: ``items`` are :class:`~provena_like.models.search.SearchHit`.

        Raises:
            Unprocessable: a blank or unusable query (also ``extracted:`` or ``column:``...
                with no word after it), an unknown subtype, a bad field path.
            BadRequest: a cursor made by another search.

        Example:
            ```python
            page = await pv.search_client.search_items("sea ice", owner="alice", page_size=10)
            [(h.item.id, h.highlights.get("display_name")) for h in page.items]
            ```
        """
        params = _search_params(
            q,
            subtype=subtype,
            owner=owner,
            created_after=created_after,
            created_before=created_before,
            fields=fields,
        )
        return await self._hits.page(params, page_size=page_size, cursor=cursor)

    def iter_search_items(
        self,
        q: str,
        *,
        subtype: str | Sequence[str] | None = None,
        owner: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        fields: Mapping[str, str] | None = None,
        page_size: int = 20,
        cursor: str | None = None,
        max_items: int | None = None,
    ) -> AsyncPaginator[SearchHit]:
        """Every hit of a search, best first, fetched page by page.

        Args:
            q: the query text.
            subtype: only items of this subtype (or of any of these subtypes).
            owner: only items owned by this user.
            created_after: only items created at or after this time.
            created_before: only items created before this time.
            fields: record path → value that must match exactly.
            page_size: hits per page (at most 100).
            cursor: resume from a previous paginator's ``next_cursor``.
            max_items: stop after this many hits.

        Example:
            ```python
            async for hit in pv.search_client.iter_search_items("coral", max_items=50):
                print(hit.item.id, hit.score)
            ```
        """
        params = _search_params(
            q,
            subtype=subtype,
            owner=owner,
            created_after=created_after,
            created_before=created_before,
            fields=fields,
        )
        return self._hits.iterate(params, page_size=page_size, cursor=cursor, max_items=max_items)

    async def reindex(self) -> ReindexResult:
        """Rebuild the search index from the registry (``POST /search/reindex``).

        Needs the system role ``admin``; normal operation never needs it.

        Raises:
            Forbidden: the caller is not a system admin.

        Example:
            ```python
            result = await pv.search_client.reindex()
            result.indexed, result.seconds
            ```
        """
        return await self._core.request(
            "POST", "search", "/reindex", idempotency_key=None, cast_to=ReindexResult
        )


def _search_params(
    q: str,
    *,
    subtype: str | Sequence[str] | None,
    owner: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    fields: Mapping[str, str] | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {"q": q}
    if subtype is not None:
        params["subtype"] = [subtype] if isinstance(subtype, str) else list(subtype)
    if owner is not None:
        params["owner"] = owner
    if created_after is not None:
        params["created_after"] = created_after.isoformat()
    if created_before is not None:
        params["created_before"] = created_before.isoformat()
    if fields:
        params["field"] = [
            f"{path if path.startswith('record.') else 'record.' + path}:{value}"
            for path, value in fields.items()
        ]
    return params
