"""``ArchiveClient``: the archived-file records of storage locations (registry service).

One HTTP call per method over ``/registry/storage-locations/{id}/archived-files``. The
storage locations themselves are registry items of subtype ``storage_location``
(:class:`~provena_like.models.archive.StorageLocationRecord`): read them with
:meth:`~provena_like.clients.RegistryClient.get_item`. The workflow that moves the files
and writes these records is the L3 module ``pv.archive``.

Example:
    ```python
    archive = ArchiveClient(pv.http_core)
    async for record in archive.iter_archived_files(location, session=session):
        print(record.path, record.size, record.sha256)
    ```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from provena_like._core.pagination import AsyncPaginator
from provena_like._core.sentinels import NOT_GIVEN, NotGiven
from provena_like.clients._base import ServiceClient
from provena_like.clients._encoding import encode_body, item_path
from provena_like.clients._list_route import ListRoute
from provena_like.models.archive import (
    ArchivedFile,
    ArchivedFilesDelete,
    ArchivedFilesDeleted,
    ArchivedFilesRequest,
    ArchivedFilesResult,
    ArchivedFileWrite,
)
from provena_like.models.shared import Page

__all__ = ["ArchiveClient"]


def _files_path(location: str) -> str:
    return "/storage-locations" + item_path(location).removeprefix("/items") + "/archived-files"


class ArchiveClient(ServiceClient):
    """The archived-file records of storage locations (see the module docstring).

    Example:
        ```python
        page = await ArchiveClient(pv.http_core).list_archived_files(location, page_size=10)
        ```
    """

    _service = "registry"

    def _route(self, location: str) -> ListRoute[ArchivedFile]:
        return self._list_route(_files_path(location), Page[ArchivedFile])

    async def list_archived_files(
        self,
        location: str,
        *,
        session: str | None = None,
        path_prefix: str | None = None,
        page_size: int = 100,
        cursor: str | None = None,
    ) -> Page[ArchivedFile]:
        """One page of a location's archived files, by path (needs ``data-read`` on it).

        Args:
            location: The storage location's handle.
            session: Only this session's files (handle).
            path_prefix: Only paths starting with this.
            page_size: Records per page.
            cursor: The ``next_cursor`` of the previous page.

        Example:
            ```python
            page = await archive.list_archived_files(location, session=session)
            ```
        """
        params = {"session": session, "path_prefix": path_prefix}
        return await self._route(location).page(params, page_size=page_size, cursor=cursor)

    def iter_archived_files(
        self,
        location: str,
        *,
        session: str | None = None,
        path_prefix: str | None = None,
        page_size: int = 500,
        max_items: int | None = None,
    ) -> AsyncPaginator[ArchivedFile]:
        """Every archived file of a location (filters: see :meth:`list_archived_files`).

        Example:
            ```python
            paths = [r.path async for r in archive.iter_archived_files(location)]
            ```
        """
        params = {"session": session, "path_prefix": path_prefix}
        return self._route(location).iterate(
            params, page_size=page_size, cursor=None, max_items=max_items
        )

    async def record_archived_files(
        self,
        location: str,
        files: Sequence[ArchivedFileWrite | Mapping[str, Any]],
        *,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> ArchivedFilesResult:
        """Record archived files of a location, each path written or replaced as given.

        Needs ``data-write`` on the location and read access to each session; at most
        1,000 files a call. Sending the same records again changes nothing.

        Example:
            ```python
            result = await archive.record_archived_files(location, [
                {"session": session, "path": "KS023/2026-12-06/001/a.bin", "size": 3,
                 "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}])
            ```
        """
        body = encode_body(ArchivedFilesRequest, {"files": list(files)}, "archived files")
        return await self._core.request(
            "POST",
            "registry",
            _files_path(location),
            json=body,
            idempotency_key=idempotency_key,
            cast_to=ArchivedFilesResult,
        )

    async def delete_archived_files(
        self,
        location: str,
        *,
        paths: Sequence[str] | None = None,
        session: str | None = None,
    ) -> int:
        """Delete records of a location (not the files): these paths, or a session's.

        Returns:
            How many records were deleted.

        Example:
            ```python
            deleted = await archive.delete_archived_files(location, session=session)
            ```
        """
        given: dict[str, Any] = {} if paths is None else {"paths": list(paths)}
        if session is not None:
            given["session"] = session
        body = encode_body(ArchivedFilesDelete, given, "delete")
        answer = await self._core.request(
            "POST",
            "registry",
            _files_path(location) + "/delete",
            json=body,
            cast_to=ArchivedFilesDeleted,
        )
        return answer.deleted
