"""``ServiceClient``: what every L2 client shares (its HTTP core, its service, its repr)."""

from __future__ import annotations

from typing import ClassVar, TypeVar

from provena_like._core.config import ServiceName
from provena_like._core.http import HTTPCore
from provena_like.clients._list_route import ListRoute
from provena_like.models.shared import Page

__all__ = ["ServiceClient"]

T = TypeVar("T")


class ServiceClient:
    """Base of the L2 clients: one service's routes over a shared :class:`HTTPCore`.

    Args:
        core: the shared HTTP core (its pool, auth and retries).
    """

    _service: ClassVar[ServiceName]
    """The service whose routes the client calls."""

    def __init__(self, core: HTTPCore) -> None:
        self._core = core

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self._core.config.service_url(self._service)!r})"

    def _list_route(self, path: str, page_type: type[Page[T]]) -> ListRoute[T]:
        """The paginated ``GET`` route ``path`` of this client's service."""
        return ListRoute(self._core, self._service, path, page_type)
