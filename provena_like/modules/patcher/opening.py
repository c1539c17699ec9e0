"""How the Patcher opens the repositories it works on.

A patch needs every repository holding its files (:func:`given_repositories` and the
resolver's ``open``: all of them or none); deleting and checking datasets work on the
repositories that can be opened and report the others (:func:`open_some`), among those
holding a replica of the datasets (:func:`holding`). The Patcher's methods
(:class:`~provena_like.modules.patcher.Patcher`) call these.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

from provena_like._core.errors import APIStatusError
from provena_like.repositories import Repository, RepositoryResolver, RepositoryUnavailable

if TYPE_CHECKING:
    from provena_like.clients.registry import RegistryClient
    from provena_like.models.datastore import AccessLevel
    from provena_like.modules.patcher.patch import RepositoriesArg

__all__ = ["given_repositories", "holding", "open_some"]


def given_repositories(repositories: RepositoriesArg) -> dict[str, Repository]:
    """The open repositories a mapping gives (used as they are: the caller's to close)."""
    if not isinstance(repositories, Mapping):
        return {}
    return {h: r for h, r in repositories.items() if isinstance(r, Repository)}


async def holding(client: RegistryClient, ids: Iterable[str]) -> dict[str, None]:
    """The repositories holding a replica of these datasets (those the caller may read)."""
    handles: dict[str, None] = {}
    for dataset_id in ids:
        try:
            dataset = await client.get_registered_dataset(dataset_id)
        except APIStatusError:
            continue  # the workflow reports it for that dataset
        handles.update(dict.fromkeys(f.repository for f in dataset.files))
    return handles


async def open_some(
    stack: AsyncExitStack,
    resolver: RepositoryResolver,
    handles: Iterable[str],
    repositories: RepositoriesArg,
    access: AccessLevel,
) -> tuple[dict[str, Repository], dict[str, str]]:
    """Open each repository it can; why each of the others can't be opened.

    A mapping's open repositories are used as they are (the caller's to close); a list of
    handles opens only those (the others are unavailable: not chosen).
    """
    given = given_repositories(repositories)
    chosen: set[str] | None = None
    if repositories is not None and not isinstance(repositories, Mapping):
        chosen = {repositories} if isinstance(repositories, str) else set(repositories)
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
