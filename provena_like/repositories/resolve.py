"""From the registry's repository items (handles) to :class:`Repository` objects to use here.

A registered dataset's file records name repositories by handle (``10378.1/123``); the
registry item of each says its ``kind`` and ``root``
(:class:`~provena_like.models.registration.RepositoryRecord`). :class:`RepositoryResolver`
turns a handle into a :class:`~provena_like.repositories.Repository`:

- ``s3`` — an :class:`~provena_like.repositories.S3Repository` on the repository's root,
  signed with credentials the server mints for that root
  (:meth:`~provena_like.clients.RegistryClient.get_repository_credentials`, ``read`` or
  ``write``; they refresh themselves before they expire). The server mints them only for a
  root in its own bucket, and only to a caller with ``data-read``/``data-write`` on the item.
- ``posix`` — a :class:`~provena_like.repositories.PosixRepository` on the local directory
  where this machine mounts it, given by the caller: ``local_roots={"10378.1/123":
  "/mnt/lab"}`` (the item's ``root`` is where the files are on the lab server, which need
  not be where this machine sees them).
- ``globus`` — a :class:`~provena_like.repositories.TransferRepository` on the item's root
  (``<collection uuid>:/path``) through the transfer service, given by the caller: a
  ``transfer`` client (``pv.transfer_client``) and the ``local_endpoint`` the bytes go
  through (a collection that shows a directory of this machine).

A repository that can't be opened here raises :class:`RepositoryUnavailable`, naming the
handle and saying why; nothing is half-opened. :meth:`RepositoryResolver.open` opens
several at once and closes them together (:class:`OpenRepositories`).

Example:
    ```python
    resolver = RepositoryResolver(pv.registry_client, local_roots={lab_server: "/mnt/lab"})
    async with await resolver.open([primary, lab_server], access="write") as repos:
        for handle, repo in repos.items():
            print(handle, repo.kind, [o.path async for o in repo.list("lab/")])
    ```
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from provena_like._core.errors import APIStatusError, Forbidden, NotFound, UsageError
from provena_like._core.lifecycle import AsyncCloseable
from provena_like.clients.transfer import TransferClient
from provena_like.models.datastore import AccessLevel
from provena_like.models.registration import RepositoryRecord
from provena_like.repositories.base import Repository
from provena_like.repositories.posix import PosixRepository
from provena_like.repositories.s3 import S3Repository
from provena_like.repositories.transfer import LocalEndpoint, TransferRepository
from provena_like.storage.credentials import RefreshingCredentials, S3Credentials

if TYPE_CHECKING:
    from provena_like.clients.registry import RegistryClient

__all__ = ["OpenRepositories", "RepositoryResolver", "RepositoryUnavailable"]

LocalRoots = Mapping[str, "Path | str | os.PathLike[str]"]
"""Repository handle → the local directory where this machine mounts that POSIX repository."""


class RepositoryUnavailable(UsageError):
    """A repository can't be opened here (the message names its handle and why).

    Attributes:
        repository: The repository's handle.
    """

    def __init__(self, repository: str, reason: str) -> None:
        super().__init__(f"repository {repository} can't be opened here: {reason}")
        self.repository = repository


class OpenRepositories(AsyncCloseable, Mapping[str, Repository]):
    """Open repositories by handle; closing closes each of them (idempotent).

    Example:
        ```python
        async with await resolver.open([primary]) as repos:
            assert primary in repos
        ```
    """

    def __init__(self, repositories: dict[str, Repository], stack: AsyncExitStack) -> None:
        self._repositories = repositories
        self._stack = stack

    def __getitem__(self, handle: str) -> Repository:
        return self._repositories[handle]

    def __iter__(self) -> Iterator[str]:
        return iter(self._repositories)

    def __len__(self) -> int:
        return len(self._repositories)

    async def aclose(self) -> None:
        """Close every repository (idempotent)."""
        await self._stack.aclose()


class RepositoryResolver:
    """Turns repository handles into repositories (see the module docstring).

    Args:
        registry: The registry client (reads the repository items, mints S3 credentials).
        local_roots: Handle → local directory of each POSIX repository mounted here.
        s3_options: Keyword arguments for every :class:`S3Repository` (``max_concurrency``,
            ``multipart_threshold``, ...).
        transfer: The transfer client of Globus repositories (``pv.transfer_client``), or
            a function giving it, called when the first one is opened.
        local_endpoint: The collection showing a directory of this machine that a Globus
            repository's bytes go through.
        transfer_options: Keyword arguments for every :class:`TransferRepository`
            (``timeout``, ``poll``, ...).

    Example:
        ```python
        resolver = RepositoryResolver(pv.registry_client, local_roots={"10378.1/7": "/mnt/lab"})
        record = await resolver.record("10378.1/7")
        assert record.kind == "posix"
        ```
    """

    def __init__(
        self,
        registry: RegistryClient,
        *,
        local_roots: LocalRoots | None = None,
        s3_options: Mapping[str, Any] | None = None,
        transfer: TransferClient | Callable[[], TransferClient] | None = None,
        local_endpoint: LocalEndpoint | None = None,
        transfer_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._registry = registry
        self._local_roots = {h: Path(p) for h, p in (local_roots or {}).items()}
        self._s3_options = dict(s3_options or {})
        self._transfer = transfer
        self._local_endpoint = local_endpoint
        self._transfer_options = dict(transfer_options or {})
        self._records: dict[str, RepositoryRecord] = {}

    async def record(self, handle: str) -> RepositoryRecord:
        """The repository item's record (read once per resolver).

        Raises:
            RepositoryUnavailable: If the item is unknown or unreadable, or not a repository.
        """
        found = self._records.get(handle)
        if found is not None:
            return found
        try:
            item = await self._registry.get_item(handle)
        except NotFound:
            raise RepositoryUnavailable(
                handle, "no such repository item (or you may not read it)"
            ) from None
        except Forbidden as exc:
            raise RepositoryUnavailable(
                handle, f"you may not read its registry item ({exc.message})"
            ) from exc
        if item.subtype != "repository":
            raise RepositoryUnavailable(handle, f"the item is a {item.subtype}, not a repository")
        record = RepositoryRecord.model_validate(item.record)
        self._records[handle] = record
        return record

    async def repository(self, handle: str, access: AccessLevel = "read") -> Repository:
        """A repository for ``handle``, not yet open (use it in ``async with``).

        Args:
            handle: The repository item's handle.
            access: ``"read"`` or ``"write"`` (what the S3 credentials will allow).

        Raises:
            RepositoryUnavailable: If it is a POSIX repository without a local root, a
                Globus one without a transfer client or local endpoint, or an S3 one whose
                credentials the server won't mint here.
        """
        record = await self.record(handle)
        if record.kind == "posix":
            local = self._local_roots.get(handle)
            if local is None:
                raise RepositoryUnavailable(
                    handle,
                    f"it is a POSIX repository ({record.name}, {record.root} on its server); "
                    "say where it is mounted on this machine "
                    f"(local_roots={{{handle!r}: '/mnt/...'}}, or --repository {handle}=DIR)",
                )
            if not local.is_dir():
                raise RepositoryUnavailable(
                    handle, f"its local root {local} is not a directory on this machine"
                )
            return PosixRepository(local, name=handle)
        if record.kind == "s3":

            async def provider() -> S3Credentials:
                return await self._credentials(handle, access)

            refreshing = RefreshingCredentials(provider)
            await refreshing.get()  # refused here (naming the handle), not at first use
            return S3Repository(record.root, refreshing, name=handle, **self._s3_options)
        if record.kind == "globus":
            return self._globus(handle, record)
        raise RepositoryUnavailable(
            handle, f"{record.kind} repositories ({record.name}) can't be opened by the SDK yet"
        )

    def _globus(self, handle: str, record: RepositoryRecord) -> TransferRepository:
        what = f"it is a Globus repository ({record.name}, {record.root})"
        missing = []
        if self._transfer is None:
            missing.append("a transfer client (transfer=pv.transfer_client)")
        if self._local_endpoint is None:
            missing.append(
                "the local endpoint its bytes go through (local_endpoint=LocalEndpoint("
                "collection, directory), or --local-endpoint COLLECTION=DIR)"
            )
        if missing:
            raise RepositoryUnavailable(handle, f"{what}; give {' and '.join(missing)}")
        assert self._transfer is not None and self._local_endpoint is not None
        try:
            if not isinstance(self._transfer, TransferClient):
                self._transfer = self._transfer()
            return TransferRepository(
                self._transfer,
                record.root,
                self._local_endpoint,
                name=handle,
                **self._transfer_options,
            )
        except UsageError as exc:
            raise RepositoryUnavailable(handle, f"{what}: {exc}") from exc

    async def _credentials(self, handle: str, access: AccessLevel) -> S3Credentials:
        try:
            scoped = await self._registry.get_repository_credentials(handle, access)
        except APIStatusError as exc:
            raise RepositoryUnavailable(
                handle, f"the server mints no {access} credentials for it: {exc}"
            ) from exc
        return S3Credentials.from_scoped(scoped)

    async def open(
        self, handles: Iterable[str], *, access: AccessLevel = "read"
    ) -> OpenRepositories:
        """Open a repository for each handle; all of them, or none (closed again on failure).

        Args:
            handles: Repository handles (duplicates are opened once).
            access: ``"read"`` or ``"write"``.

        Returns:
            The open repositories by handle (an async context manager closing them).

        Raises:
            RepositoryUnavailable: For the first handle that can't be opened here.
        """
        stack = AsyncExitStack()
        opened: dict[str, Repository] = {}
        try:
            for handle in dict.fromkeys(handles):
                repo = await self.repository(handle, access)
                opened[handle] = await stack.enter_async_context(repo)
        except BaseException:
            await stack.aclose()
            raise
        return OpenRepositories(opened, stack)
