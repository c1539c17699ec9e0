"""Delete registered datasets from every repository holding them, records last (L3).

:func:`delete_datasets` deletes each dataset in this order, each step on the server its own
transaction, so that nothing is ever claimed that isn't so:

1. **mark**: :meth:`~provena_like.clients.registry.RegistryClient.mark_deleting` sets the
   revision's state to ``deleting``. Its content is final from then on and reads keep
   working (they show the state). A protected revision is refused here (412), before
   anything moves.
2. **delete** the object in every repository holding a replica (every file record's
   repository),
3. **verify** that each is gone (``stat`` answers ``None``),
4. **record** each replica absent
   (:meth:`~provena_like.clients.registry.RegistryClient.update_file_record` with
   ``exists=False``; for its own bucket the server checks that the object is gone),
5. **remove** the records
   (:meth:`~provena_like.clients.registry.RegistryClient.delete_registered_dataset`), only
   now that no file record says the file exists.

There is **no local journal**: the server's ``deleting`` state and the per-repository
``exists`` flags are the journal. A run that stopped anywhere (an error, a crash, a killed
process) leaves a dataset that is ``deleting`` with some replicas deleted and recorded
absent; running the same deletion again continues from there (deleting a missing object is
fine, a replica already recorded absent is not recorded again) and ends with no object and
no record.

A dry run reads the datasets, looks at their objects (``stat``) and changes nothing: it lists,
per repository, every file that would be removed. A failure stops its dataset where it
happened (a re-run continues from there); it is reported in that dataset's result and does
not stop the others.

Example:
    ```python
    from provena_like.modules.deletion import delete_datasets

    async with S3Repository(root, credentials, name="primary") as s3, PosixRepository(
        "/mnt/lab", name="lab"
    ) as lab:
        repositories = {s3_handle: s3, lab_handle: lab}
        plan = await delete_datasets(pv, [dataset_id], repositories=repositories, dry_run=True)
        print(plan.by_repository())   # {s3_handle: ['lab/Subjects/...'], lab_handle: [...]}
        report = await delete_datasets(pv, [dataset_id], repositories=repositories)
        assert report.ok
    ```
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import anyio

from provena_like._core.errors import (
    Forbidden,
    NotFound,
    PreconditionFailed,
    ProvenaError,
    UsageError,
)
from provena_like.modules._replicas import Replica, emit, registry_of, replicas_of, unique_ids
from provena_like.repositories import Repository

if TYPE_CHECKING:
    from provena_like.client import ProvenaClient
    from provena_like.clients.registry import RegistryClient
    from provena_like.models.registration import RegisteredDataset

__all__ = [
    "DatasetDeletion",
    "DeletionEvent",
    "DeletionReport",
    "DeletionStatus",
    "DeletionStep",
    "ReplicaDeletion",
    "delete_datasets",
]

DeletionStatus = Literal["deleted", "would_delete", "refused", "not_found", "failed"]
"""A dataset's outcome: ``would_delete`` is a dry run's; ``refused``: protected or not yours;
``not_found``: no such dataset, or you may not see it (a deletion that completed earlier
looks like this too); ``failed``: an error part-way (re-run to continue)."""

DeletionStep = Literal["planned", "marked", "deleted", "verified", "recorded", "removed"]
"""The steps reported to ``on_progress``, in order (``planned``: a dry run's replica)."""


@dataclass(frozen=True, slots=True)
class DeletionEvent:
    """One step done for one dataset (and, for per-replica steps, one repository).

    Attributes:
        dataset_id: The dataset.
        step: What was just done.
        repository: The repository handle (``deleted``, ``verified``, ``recorded``,
            ``planned``), else ``None``.
        path: The object's path in that repository.

    Example:
        ```python
        event = DeletionEvent("ds-1", "deleted", "10378.1/7", "m1/2026-12-06/001/a.b.npy")
        assert event.step == "deleted"
        ```
    """

    dataset_id: str
    step: DeletionStep
    repository: str | None = None
    path: str | None = None


DeletionProgress = Callable[[DeletionEvent], Awaitable[None] | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaDeletion:
    """What happened (or, in a dry run, would happen) to one replica of a dataset.

    Attributes:
        repository: The repository handle (the file record's).
        path: The object's path in the repository (the record's path if it doesn't map).
        recorded_exists: Whether the file record said the file exists, before this run.
        present: Whether the object was there (a dry run's ``stat``; ``None`` if not looked).
        removed: The delete was sent now (a dry run: the object is there and would be).
        verified_gone: ``stat`` answered ``None`` after the delete.
        recorded_absent: The file record says absent now (set by this run or before).
        error: What went wrong with this replica, if anything.
    """

    repository: str
    path: str
    recorded_exists: bool
    present: bool | None = None
    removed: bool = False
    verified_gone: bool = False
    recorded_absent: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetDeletion:
    """The outcome for one dataset.

    Attributes:
        dataset_id: The dataset's id.
        status: See :data:`DeletionStatus`.
        replicas: One result per file record (empty if the dataset couldn't be read).
        error: Why it was refused or failed.
        rel_path: ``[collection/][#revision#/]name``, when the dataset was read.
    """

    dataset_id: str
    status: DeletionStatus
    replicas: tuple[ReplicaDeletion, ...] = ()
    error: str | None = None
    rel_path: str | None = None


@dataclass(frozen=True, slots=True)
class DeletionReport:
    """Per-dataset results of :func:`delete_datasets`, in the order of the ids given.

    Example:
        ```python
        report = await delete_datasets(pv, ids, repositories=repos, dry_run=True)
        for handle, paths in report.by_repository().items():
            print(handle, len(paths))
        ```
    """

    dry_run: bool
    datasets: tuple[DatasetDeletion, ...] = field(default=())
    unavailable: dict[str, str] = field(default_factory=dict)
    """Repository handle → why it couldn't be opened (its replicas say so too)."""

    @property
    def ok(self) -> bool:
        """Whether every dataset was deleted (a dry run: would be)."""
        return all(d.status in ("deleted", "would_delete") for d in self.datasets)

    @property
    def deleted(self) -> list[DatasetDeletion]:
        """The datasets deleted (a dry run: that would be)."""
        return [d for d in self.datasets if d.status in ("deleted", "would_delete")]

    @property
    def failed(self) -> list[DatasetDeletion]:
        """The datasets refused, not found or failed."""
        return [d for d in self.datasets if d.status not in ("deleted", "would_delete")]

    def by_repository(self) -> dict[str, list[str]]:
        """Per repository handle, the paths removed (a dry run: that would be), sorted."""
        paths: dict[str, list[str]] = {}
        for d in self.datasets:
            for r in d.replicas:
                if r.removed:
                    paths.setdefault(r.repository, []).append(r.path)
        return {handle: sorted(found) for handle, found in paths.items()}


async def delete_datasets(
    client: ProvenaClient | RegistryClient,
    ids: Iterable[str],
    *,
    repositories: Mapping[str, Repository],
    dry_run: bool = False,
    on_progress: DeletionProgress | None = None,
    concurrency: int = 4,
    unavailable: Mapping[str, str] | None = None,
) -> DeletionReport:
    """Delete registered datasets from every repository holding them, then their records.

    The order and what a crash at each step leaves are in the module docstring; re-running
    the same call after any failure continues where it stopped.

    Args:
        client: An open client (its ``registry_client`` is used), or the registry client.
        ids: The registered datasets' ids (repeats are done once).
        repositories: Repository handle → opened repository, for every repository that
            holds a replica of these datasets. A dataset with a replica recorded present in a
            repository not given here fails before anything is changed; a replica already
            recorded absent in one not given is left alone.
        dry_run: Change nothing: read the datasets, ``stat`` their objects and report
            per repository every file that would be removed.
        on_progress: Receives a :class:`DeletionEvent` after each step (sync or async). An
            exception it raises fails that dataset at that point (as a crash would).
        concurrency: Datasets worked on at once.
        unavailable: Repository handle → why it couldn't be opened: the error of a replica
            there, and the report's :attr:`~DeletionReport.unavailable`.

    Returns:
        One :class:`DatasetDeletion` per dataset, in the order given.

    Raises:
        UsageError: ``concurrency`` below 1.

    Example:
        ```python
        report = await delete_datasets(pv, [dataset_id], repositories={handle: repo})
        assert report.ok, [d.error for d in report.failed]
        ```
    """
    if concurrency < 1:
        raise UsageError(f"concurrency must be at least 1, got {concurrency}")
    wanted = unique_ids(ids)
    results: dict[str, DatasetDeletion] = {}
    limiter = anyio.CapacityLimiter(concurrency)
    registry = registry_of(client)
    reasons = dict(unavailable or {})

    async def one(dataset_id: str) -> None:
        async with limiter:
            results[dataset_id] = await _delete_one(
                registry, dataset_id, repositories, reasons, dry_run, on_progress
            )

    async with anyio.create_task_group() as tg:
        for dataset_id in wanted:
            tg.start_soon(one, dataset_id)
    return DeletionReport(dry_run, tuple(results[i] for i in wanted), reasons)


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ProvenaError) else f"{type(exc).__name__}: {exc}"


def _blocking(replica: Replica) -> bool:
    """A replica this run can't delete although it may be there."""
    return replica.problem is not None and replica.record.exists


async def _delete_one(
    registry: RegistryClient,
    dataset_id: str,
    repositories: Mapping[str, Repository],
    unavailable: Mapping[str, str],
    dry_run: bool,
    on_progress: DeletionProgress | None,
) -> DatasetDeletion:
    try:
        dataset = await registry.get_registered_dataset(dataset_id)
    except NotFound as exc:
        return DatasetDeletion(dataset_id=dataset_id, status="not_found", error=_message(exc))
    except Exception as exc:  # one dataset's failure doesn't stop the others
        return DatasetDeletion(dataset_id=dataset_id, status="failed", error=_message(exc))
    replicas = replicas_of(dataset, repositories, unavailable)
    if dry_run:
        return await _plan(dataset_id, dataset, replicas, on_progress)
    done = [_initial(r) for r in replicas]
    result = DatasetDeletion(
        dataset_id=dataset_id, status="failed", replicas=tuple(done), rel_path=dataset.rel_path
    )
    blocked = [r for r in replicas if _blocking(r)]
    if blocked:
        why = "; ".join(f"{r.record.repository}: {r.problem}" for r in blocked)
        return replace(result, error=f"nothing was changed: can't delete every replica ({why})")
    try:
        if dataset.state != "deleting":
            await registry.mark_deleting(dataset_id)
            await emit(on_progress, DeletionEvent(dataset_id, "marked"))
    except (PreconditionFailed, Forbidden) as exc:
        return replace(result, status="refused", error=_message(exc))
    except Exception as exc:
        return replace(result, error=_message(exc))
    for i, replica in enumerate(replicas):
        if replica.problem is not None:  # recorded absent, in a repository not given
            continue
        try:
            done[i] = await _delete_replica(registry, dataset_id, replica, done[i], on_progress)
        except Exception as exc:  # the dataset stops here; a re-run continues from here
            done[i] = replace(done[i], error=_message(exc))
            error = f"{replica.record.repository}: {_message(exc)}"
            return replace(result, replicas=tuple(done), error=error)
    result = replace(result, replicas=tuple(done))
    try:
        await registry.delete_registered_dataset(dataset_id)
        await emit(on_progress, DeletionEvent(dataset_id, "removed"))
    except Exception as exc:
        return replace(result, error=_message(exc))
    return replace(result, status="deleted")


def _initial(replica: Replica) -> ReplicaDeletion:
    return ReplicaDeletion(
        repository=replica.record.repository,
        path=replica.path or replica.record.relative_path,
        recorded_exists=replica.record.exists,
        recorded_absent=not replica.record.exists,
        error=replica.problem if _blocking(replica) else None,
    )


async def _delete_replica(
    registry: RegistryClient,
    dataset_id: str,
    replica: Replica,
    state: ReplicaDeletion,
    on_progress: DeletionProgress | None,
) -> ReplicaDeletion:
    """Delete, verify gone, record absent: one replica (safe to repeat)."""
    repository, path, handle = replica.repository, replica.path, replica.record.repository
    assert repository is not None and path is not None
    await repository.delete(path)
    state = replace(state, removed=True)
    await emit(on_progress, DeletionEvent(dataset_id, "deleted", handle, path))
    if await repository.stat(path) is not None:
        raise ProvenaError(f"{repository.name}: {path} is still there after it was deleted")
    state = replace(state, verified_gone=True)
    await emit(on_progress, DeletionEvent(dataset_id, "verified", handle, path))
    if replica.record.exists:
        await registry.update_file_record(dataset_id, handle, exists=False)
        state = replace(state, recorded_absent=True)
        await emit(on_progress, DeletionEvent(dataset_id, "recorded", handle, path))
    return state


async def _plan(
    dataset_id: str,
    dataset: RegisteredDataset,
    replicas: list[Replica],
    on_progress: DeletionProgress | None,
) -> DatasetDeletion:
    """A dry run: ``stat`` each object; change nothing."""
    planned: list[ReplicaDeletion] = []
    errors: list[str] = []
    try:
        for replica in replicas:
            state = _initial(replica)
            if replica.repository is not None and replica.path is not None:
                present = await replica.repository.stat(replica.path) is not None
                state = replace(state, present=present, removed=present)
                await emit(
                    on_progress,
                    DeletionEvent(dataset_id, "planned", replica.record.repository, replica.path),
                )
            if state.error is not None:
                errors.append(f"{state.repository}: {state.error}")
            planned.append(state)
    except Exception as exc:
        return DatasetDeletion(
            dataset_id=dataset_id,
            status="failed",
            replicas=tuple(planned),
            error=_message(exc),
            rel_path=dataset.rel_path,
        )
    status: DeletionStatus = "would_delete"
    error = None
    if dataset.protected and dataset.state != "deleting":
        status, error = "refused", f"registered dataset {dataset_id} is protected"
    elif errors:
        status, error = "failed", f"can't delete every replica ({'; '.join(errors)})"
    return DatasetDeletion(
        dataset_id=dataset_id,
        status=status,
        replicas=tuple(planned),
        error=error,
        rel_path=dataset.rel_path,
    )
