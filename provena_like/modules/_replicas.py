"""What deletion and checking share: a dataset's replicas, the opened repositories, progress.

A *replica* is one file record of a registered dataset (``dataset.files``): a repository
handle and, through :func:`~provena_like.repositories.path_from_dataset`, the path of the
object in that repository. The caller opens the repositories and passes them as a mapping
of repository handle → opened :class:`~provena_like.repositories.Repository`.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from provena_like._core.errors import ProvenaError
from provena_like.models.registration import FileRecordInfo, RegisteredDataset
from provena_like.repositories import Repository, path_from_dataset

if TYPE_CHECKING:
    from provena_like.client import ProvenaClient
    from provena_like.clients.registry import RegistryClient

__all__ = ["Replica", "emit", "registry_of", "replicas_of", "unique_ids"]

E = TypeVar("E")


@dataclass(frozen=True, slots=True)
class Replica:
    """One file record of a dataset, its object's path, and its repository if opened."""

    record: FileRecordInfo
    path: str | None
    """The object's repository path; ``None`` when the record's path doesn't map."""
    repository: Repository | None
    problem: str | None
    """Why the replica can't be reached: no repository opened for it, or a path that doesn't map."""


def replicas_of(
    dataset: RegisteredDataset,
    repositories: Mapping[str, Repository],
    unavailable: Mapping[str, str] | None = None,
) -> list[Replica]:
    """The dataset's replicas, in file-record order, each with its path and repository.

    ``unavailable`` (handle → why that repository couldn't be opened) gives the problem of
    a replica there.
    """
    found: list[Replica] = []
    for record in dataset.files:
        try:
            path: str | None = path_from_dataset(dataset, record.repository)
            problem = None
        except ProvenaError as exc:
            path, problem = None, str(exc)
        repository = repositories.get(record.repository)
        if repository is None and problem is None:
            problem = (unavailable or {}).get(
                record.repository, f"no repository was opened for {record.repository}"
            )
        found.append(Replica(record, path, repository, problem))
    return found


def registry_of(client: ProvenaClient | RegistryClient) -> RegistryClient:
    """The registry client: ``client`` itself, or a :class:`ProvenaClient`'s."""
    from provena_like.clients.registry import RegistryClient

    return client if isinstance(client, RegistryClient) else client.registry_client


def unique_ids(ids: Iterable[str]) -> list[str]:
    """``ids`` in order, each once (a single string is one id, not its characters)."""
    if isinstance(ids, str):
        ids = [ids]
    return list(dict.fromkeys(ids))


async def emit(callback: Callable[[E], Awaitable[None] | None] | None, event: E) -> None:
    """Give ``event`` to a sync or async callback, if there is one."""
    if callback is None:
        return
    result = callback(event)
    if inspect.isawaitable(result):
        await result
