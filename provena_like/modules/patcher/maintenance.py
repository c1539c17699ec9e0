"""The Patcher's deletion and check of registered datasets (``pv.patcher``).

:class:`Patcher` adds :meth:`~Patcher.delete_datasets` and :meth:`~Patcher.check_datasets`
to the patch workflow (:mod:`.patch`): they run
:func:`~provena_like.modules.deletion.delete_datasets` and
:func:`~provena_like.modules.checking.check_datasets` on the repositories the datasets'
file records name, opened by the rules of :meth:`~Patcher.patch_files`
(:data:`~.patch.RepositoriesArg`: S3 ones with the credentials the server mints, POSIX ones
at their local roots, Globus ones through the Patcher's ``transfer`` client and
``local_endpoint``; patches open Globus repositories the same way). A repository that can't
be opened here doesn't stop the others: its replicas report why (a deletion then refuses
that dataset before changing anything; a check reports them ``unchecked``), and so does the
report's ``unavailable``.

Example:
    ```python
    report = await pv.patcher.check_datasets([dataset_id], repositories={lab: "/mnt/lab"})
    assert report.ok, [(d.dataset_id, d.error) for d in report.problems]
    ```
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from provena_like._core.errors import APIStatusError
from provena_like.modules._replicas import unique_ids
from provena_like.modules.patcher.patch import Patcher as _FilePatcher
from provena_like.modules.patcher.patch import RepositoriesArg
from provena_like.repositories import (
    LocalEndpoint,
    Repository,
    RepositoryResolver,
    RepositoryUnavailable,
)

if TYPE_CHECKING:
    from provena_like.clients.transfer import TransferClient
    from provena_like.models.datastore import AccessLevel
    from provena_like.modules.checking import CheckProgress, CheckReport
    from provena_like.modules.deletion import DeletionProgress, DeletionReport

__all__ = ["Patcher"]

T = TypeVar("T")


class Patcher(_FilePatcher):
    """Replaces, deletes and checks registered files in every repository holding them.

    Patching is :mod:`.patch`'s (:meth:`patch_files`, :meth:`resume`); this class adds
    :meth:`delete_datasets` and :meth:`check_datasets` (see the module docstring), and
    Globus repositories to all of them.

    The constructor's arguments are :class:`.patch.Patcher`'s; set :attr:`transfer` and
    :attr:`local_endpoint` to open Globus repositories.

    Example:
        ```python
        patcher = pv.patcher
        plan = await patcher.delete_datasets([dataset_id], dry_run=True)
        print(plan.by_repository())
        ```
    """

    transfer: TransferClient | Callable[[], TransferClient] | None = None
    """The transfer client of Globus repositories, or a function giving it (called when the
    first one is opened; ``pv.patcher``'s gives ``pv.transfer_client``)."""

    local_endpoint: LocalEndpoint | None = None
    """The collection showing a directory of this machine that a Globus repository's bytes
    go through (``pv.patcher.local_endpoint = LocalEndpoint(collection, directory)``)."""

    def resolver(self, repositories: RepositoriesArg = None) -> RepositoryResolver:
        """A resolver with the Patcher's local roots and those ``repositories`` maps to a directory.

        It opens Globus repositories with the Patcher's ``transfer`` and ``local_endpoint``.

        Example:
            ```python
            resolver = pv.patcher.resolver({lab: "/mnt/lab"})
            assert (await resolver.record(lab)).kind == "posix"
            ```
        """
        roots = dict(self.local_roots)
        if isinstance(repositories, Mapping):
            for handle, value in repositories.items():
                if value is not None and not isinstance(value, Repository):
                    roots[handle] = Path(value)
        return RepositoryResolver(
            self.client,
            local_roots=roots,
            transfer=self.transfer,
            local_endpoint=self.local_endpoint,
        )

    async def _open(
        self, stack: AsyncExitStack, handles: list[str], repositories: RepositoriesArg
    ) -> dict[str, Repository]:
        """The patch's repositories, all of them or none, opened by :meth:`resolver`."""
        given = _given(repositories)
        missing = [h for h in handles if h not in given]
        resolver = self.resolver(repositories)
        opened = await stack.enter_async_context(await resolver.open(missing, access="write"))
        return {**given, **opened}

    async def delete_datasets(
        self,
        ids: Iterable[str],
        *,
        repositories: RepositoriesArg = None,
        dry_run: bool = False,
        on_progress: DeletionProgress | None = None,
        concurrency: int = 4,
    ) -> DeletionReport:
        """Delete registered datasets from every repository holding them, then their records.

        The steps, and what a crash at each leaves, are
        :func:`~provena_like.modules.deletion.delete_datasets`'; re-running the same call
        continues where it stopped. Protected datasets are refused before anything changes.

        Args:
            ids: The registered datasets' ids.
            repositories: Which repositories, and how to reach them, as for
                :meth:`patch_files` (:data:`~.patch.RepositoriesArg`). A dataset with a
                replica in a repository not opened fails before anything is changed.
            dry_run: Change nothing: list, per repository, every file that would be removed.
            on_progress: Receives a :class:`~provena_like.modules.deletion.DeletionEvent`
                after each step.
            concurrency: Datasets worked on at once.

        Returns:
            One result per dataset, in the order given; ``unavailable`` names the
            repositories that couldn't be opened, and why.

        Example:
            ```python
            report = await pv.patcher.delete_datasets([dataset_id], repositories={lab: "/mnt/lab"})
            assert report.ok, [d.error for d in report.failed]
            ```
        """
        from provena_like.modules.deletion import delete_datasets

        wanted = unique_ids(ids)
        work = functools.partial(
            delete_datasets,
            self.client,
            wanted,
            dry_run=dry_run,
            on_progress=on_progress,
            concurrency=concurrency,
        )
        access: AccessLevel = "read" if dry_run else "write"
        return await self._on(await self._holding(wanted), repositories, access, work)

    async def check_datasets(
        self,
        datasets: Iterable[str] | Mapping[str, Any],
        *,
        repositories: RepositoriesArg = None,
        verify: bool = True,
        repair: bool = False,
        on_progress: CheckProgress | None = None,
        concurrency: int = 4,
    ) -> CheckReport:
        """Check each replica of registered datasets against its record; optionally repair.

        See :func:`~provena_like.modules.checking.check_datasets` for what is checked and
        how a repair copies from a good replica only.

        Args:
            datasets: Dataset ids, or the filters of
                :meth:`~provena_like.clients.registry.RegistryClient.iter_registered_datasets`
                as a mapping (``{"session": handle}``).
            repositories: Which repositories, and how to reach them, as for
                :meth:`patch_files`; a replica in one not opened is ``unchecked``.
            verify: Read every object back and hash its bytes (default).
            repair: Copy missing or wrong replicas again from a good one (opens the
                repositories for writing).
            on_progress: Receives a :class:`~provena_like.modules.checking.CheckEvent` per
                replica checked and repaired.
            concurrency: Datasets worked on at once.

        Returns:
            One result per dataset; ``unavailable`` names the repositories that couldn't be
            opened, and why.

        Example:
            ```python
            report = await pv.patcher.check_datasets({"session": session}, repair=True)
            print([(d.dataset_id, d.error) for d in report.problems])
            ```
        """
        from provena_like.modules.checking import check_datasets

        if isinstance(datasets, Mapping):
            listed = self.client.iter_registered_datasets(**datasets)
            handles = dict.fromkeys([f.repository async for d in listed for f in d.files])
            chosen: Iterable[str] | Mapping[str, Any] = datasets
        else:
            chosen = unique_ids(datasets)
            handles = await self._holding(chosen)
        work = functools.partial(
            check_datasets,
            self.client,
            chosen,
            verify=verify,
            repair=repair,
            on_progress=on_progress,
            concurrency=concurrency,
        )
        return await self._on(handles, repositories, "write" if repair else "read", work)

    async def _on(
        self,
        handles: Iterable[str],
        repositories: RepositoriesArg,
        access: AccessLevel,
        work: Callable[..., Awaitable[T]],
    ) -> T:
        """``work(repositories=..., unavailable=...)`` with the repositories it can open."""
        async with AsyncExitStack() as stack:
            opened, unavailable = await self._open_some(stack, handles, repositories, access)
            return await work(repositories=opened, unavailable=unavailable)

    async def _holding(self, ids: Iterable[str]) -> dict[str, None]:
        """The repositories holding a replica of these datasets (those it may read)."""
        handles: dict[str, None] = {}
        for dataset_id in ids:
            try:
                dataset = await self.client.get_registered_dataset(dataset_id)
            except APIStatusError:
                continue  # the workflow reports it for that dataset
            handles.update(dict.fromkeys(f.repository for f in dataset.files))
        return handles

    async def _open_some(
        self,
        stack: AsyncExitStack,
        handles: Iterable[str],
        repositories: RepositoriesArg,
        access: AccessLevel,
    ) -> tuple[dict[str, Repository], dict[str, str]]:
        """Open each repository it can; why each of the others can't be opened.

        A mapping's open repositories are used as they are (the caller's to close); a list of
        handles opens only those (the others are unavailable: not chosen).
        """
        given = _given(repositories)
        chosen: set[str] | None = None
        if repositories is not None and not isinstance(repositories, Mapping):
            chosen = {repositories} if isinstance(repositories, str) else set(repositories)
        resolver = self.resolver(repositories)
        opened: dict[str, Repository] = {}
        unavailable: dict[str, str] = {}
        for handle in dict.fromkeys([*handles, *(chosen or ()), *given]):
            if handle in given:
                opened[handle] = given[handle]
            elif chosen is not None and handle not in chosen:
                unavailable[handle] = f"repository {handle} is not among the repositories chosen"
            else:
                try:
                    repository = await resolver.repository(handle, access)
                    opened[handle] = await stack.enter_async_context(repository)
                except RepositoryUnavailable as exc:
                    unavailable[handle] = str(exc)
        return opened, unavailable


def _given(repositories: RepositoriesArg) -> dict[str, Repository]:
    """The open repositories a mapping gives (used as they are: the caller's to close)."""
    if not isinstance(repositories, Mapping):
        return {}
    return {h: r for h, r in repositories.items() if isinstance(r, Repository)}
