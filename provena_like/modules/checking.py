"""Check that every replica of registered datasets is what its record says, and repair (L3).

:func:`check_datasets` is a "fsck" of registered datasets: for each file record (one per
repository holding the dataset) it looks at the object in the repository and says

- ``ok``: there, with the recorded size and sha256 (with ``verify=True`` the sha256 is
  computed from the bytes read back from the repository, never taken from metadata);
- ``missing``: the record says it exists, there is no object;
- ``wrong_size`` / ``wrong_hash``: there, with other bytes;
- ``absent``: the record says the file is not in that repository (nothing is read);
- ``unchecked``: the repository was not given (or couldn't be read): see ``error``.

With ``repair=True`` a replica found ``missing``, ``wrong_size`` or ``wrong_hash`` is copied
again **from a good replica only**: the bytes are read from a repository whose copy checked
``ok`` (and are checked against the recorded sha256 on the way), put into the bad
repository (atomically), read back and verified there, and only then is the file record
marked present (``update_file_record(exists=True)`` with the size and sha256 read back).
With no good replica nothing is changed and the problem is reported. A dataset being
deleted is checked but not repaired.

Example:
    ```python
    from provena_like.modules.checking import check_datasets

    report = await check_datasets(pv, [dataset_id], repositories={handle: repo}, repair=True)
    for d in report.datasets:
        for r in d.replicas:
            print(d.dataset_id, r.repository, r.status, r.repaired_from)
    assert report.ok
    ```
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio

from provena_like._core.errors import NotFound, ProvenaError, UsageError
from provena_like.modules._replicas import Replica, emit, registry_of, replicas_of, unique_ids
from provena_like.repositories import ObjectInfo, Repository

if TYPE_CHECKING:
    from provena_like.client import ProvenaClient
    from provena_like.clients.registry import RegistryClient
    from provena_like.models.registration import RegisteredDataset

__all__ = [
    "CheckEvent",
    "CheckReport",
    "DatasetCheck",
    "ReplicaCheck",
    "ReplicaStatus",
    "check_datasets",
]

ReplicaStatus = Literal["ok", "missing", "wrong_size", "wrong_hash", "absent", "unchecked"]
"""What was found for one replica (see the module docstring)."""

_REPAIRABLE: frozenset[ReplicaStatus] = frozenset({"missing", "wrong_size", "wrong_hash"})


@dataclass(frozen=True, slots=True)
class CheckEvent:
    """One replica checked (``step`` ``checked``) or repaired (``repaired``).

    Example:
        ```python
        event = CheckEvent("ds-1", "10378.1/7", "m1/2026-12-06/001/a.b.npy", "checked", "ok")
        assert event.status == "ok"
        ```
    """

    dataset_id: str
    repository: str
    path: str
    step: Literal["checked", "repaired"]
    status: ReplicaStatus


CheckProgress = Callable[[CheckEvent], Awaitable[None] | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaCheck:
    """What was found for one replica of a dataset, and what repairing it did.

    Attributes:
        repository: The repository handle (the file record's).
        path: The object's path in the repository (the record's path if it doesn't map).
        status: What was found (:data:`ReplicaStatus`), before any repair.
        recorded_exists: Whether the file record says the file exists (before any repair).
        size: The size found, when there was an object.
        sha256: The sha256 found: computed from the bytes with ``verify``, else the store's
            record of it (``None`` when it has none).
        hash_checked: Whether the sha256 was compared (always with ``verify``).
        repaired_from: The good replica's repository the bytes were copied from.
        repair_error: Why a repair wasn't done or failed.
        error: Why the replica couldn't be checked.
    """

    repository: str
    path: str
    status: ReplicaStatus
    recorded_exists: bool
    size: int | None = None
    sha256: str | None = None
    hash_checked: bool = False
    repaired_from: str | None = None
    repair_error: str | None = None
    error: str | None = None

    @property
    def problem(self) -> bool:
        """Whether this replica is (still) not as recorded, or couldn't be checked."""
        if self.repaired_from is not None:
            return False
        return self.status in _REPAIRABLE or self.status == "unchecked"


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetCheck:
    """The replicas of one dataset.

    Attributes:
        dataset_id: The dataset's id.
        replicas: One result per file record.
        rel_path: ``[collection/][#revision#/]name``, when the dataset was read.
        error: Why the dataset couldn't be checked (``not_found``: no such dataset, or you
            may not see it).
        not_found: Whether the dataset was not found.
    """

    dataset_id: str
    replicas: tuple[ReplicaCheck, ...] = ()
    rel_path: str | None = None
    error: str | None = None
    not_found: bool = False

    @property
    def ok(self) -> bool:
        """Whether it was checked and no replica has a problem (after repairs)."""
        return self.error is None and not any(r.problem for r in self.replicas)


@dataclass(frozen=True, slots=True)
class CheckReport:
    """Per-dataset results of :func:`check_datasets`.

    Example:
        ```python
        report = await check_datasets(pv, {"session": session}, repositories=repos)
        print(len(report.datasets), [d.dataset_id for d in report.problems])
        ```
    """

    datasets: tuple[DatasetCheck, ...]
    repair: bool = False
    unavailable: dict[str, str] = field(default_factory=dict)
    """Repository handle → why it couldn't be opened (its replicas say so too)."""

    @property
    def ok(self) -> bool:
        """Whether every dataset was checked and is as recorded (after repairs)."""
        return all(d.ok for d in self.datasets)

    @property
    def problems(self) -> list[DatasetCheck]:
        """The datasets not found, not checked or with a replica that is not as recorded."""
        return [d for d in self.datasets if not d.ok]


async def check_datasets(
    client: ProvenaClient | RegistryClient,
    datasets: Iterable[str] | Mapping[str, Any],
    *,
    repositories: Mapping[str, Repository],
    verify: bool = True,
    repair: bool = False,
    on_progress: CheckProgress | None = None,
    concurrency: int = 4,
    unavailable: Mapping[str, str] | None = None,
) -> CheckReport:
    """Check each replica of registered datasets against its record; optionally repair.

    Args:
        client: An open client (its ``registry_client`` is used), or the registry client.
        datasets: Dataset ids, or the filters of
            :meth:`~provena_like.clients.registry.RegistryClient.iter_registered_datasets`
            as a mapping (``{"session": handle}``, ``{"lab": handle, "date_from": ...}``).
        repositories: Repository handle → opened repository; a replica in a repository not
            given is ``unchecked``.
        verify: Read every object back and hash its bytes; without it the size is compared,
            and the sha256 only where the store keeps one.
        repair: Copy missing or wrong replicas again from a good one (module docstring).
        on_progress: Receives a :class:`CheckEvent` per replica checked and repaired.
        concurrency: Datasets worked on at once.
        unavailable: Repository handle → why it couldn't be opened: the error of an
            ``unchecked`` replica there, and the report's :attr:`~CheckReport.unavailable`.

    Returns:
        One :class:`DatasetCheck` per dataset, in the order given (listed).

    Raises:
        UsageError: ``concurrency`` below 1.

    Example:
        ```python
        report = await check_datasets(pv, [dataset_id], repositories=repos)
        assert report.ok, [(d.dataset_id, d.error) for d in report.problems]
        ```
    """
    if concurrency < 1:
        raise UsageError(f"concurrency must be at least 1, got {concurrency}")
    registry = registry_of(client)
    work: list[tuple[str, RegisteredDataset | None]]
    if isinstance(datasets, Mapping):
        listed = registry.iter_registered_datasets(**datasets)
        work = [(d.id, d) async for d in listed if d.id is not None]
    else:
        work = [(i, None) for i in unique_ids(datasets)]
    results: dict[int, DatasetCheck] = {}
    limiter = anyio.CapacityLimiter(concurrency)
    reasons = dict(unavailable or {})
    job = _Job(registry, repositories, reasons, verify, repair, on_progress)

    async def one(index: int, dataset_id: str, dataset: RegisteredDataset | None) -> None:
        async with limiter:
            results[index] = await job.dataset(dataset_id, dataset)

    async with anyio.create_task_group() as tg:
        for index, (dataset_id, dataset) in enumerate(work):
            tg.start_soon(one, index, dataset_id, dataset)
    return CheckReport(tuple(results[i] for i in range(len(work))), repair, reasons)


def _message(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ProvenaError) else f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True, slots=True)
class _Job:
    registry: RegistryClient
    repositories: Mapping[str, Repository]
    unavailable: Mapping[str, str]
    verify: bool
    repair: bool
    on_progress: CheckProgress | None

    async def dataset(self, dataset_id: str, dataset: RegisteredDataset | None) -> DatasetCheck:
        try:
            if dataset is None:
                dataset = await self.registry.get_registered_dataset(dataset_id)
        except NotFound as exc:
            return DatasetCheck(dataset_id=dataset_id, error=_message(exc), not_found=True)
        except Exception as exc:  # one dataset's failure doesn't stop the others
            return DatasetCheck(dataset_id=dataset_id, error=_message(exc))
        replicas = replicas_of(dataset, self.repositories, self.unavailable)
        checks = [await self.replica(dataset, r) for r in replicas]
        if self.repair and any(c.status in _REPAIRABLE for c in checks):
            checks = await self.repair_all(dataset, replicas, checks)
        return DatasetCheck(
            dataset_id=dataset_id, replicas=tuple(checks), rel_path=dataset.rel_path
        )

    async def replica(self, dataset: RegisteredDataset, replica: Replica) -> ReplicaCheck:
        record = replica.record
        check = ReplicaCheck(
            repository=record.repository,
            path=replica.path or record.relative_path,
            status="unchecked",
            recorded_exists=record.exists,
        )
        if not record.exists:
            check = replace(check, status="absent")
        elif replica.problem is not None:
            check = replace(check, error=replica.problem)
        else:
            assert replica.repository is not None and replica.path is not None
            try:
                info = await replica.repository.stat(replica.path, verify=self.verify)
            except Exception as exc:
                check = replace(check, error=_message(exc))
            else:
                check = _compare(check, dataset, info)
        assert dataset.id is not None
        event = CheckEvent(dataset.id, check.repository, check.path, "checked", check.status)
        await emit(self.on_progress, event)
        return check

    async def repair_all(
        self, dataset: RegisteredDataset, replicas: list[Replica], checks: list[ReplicaCheck]
    ) -> list[ReplicaCheck]:
        if dataset.state == "deleting":
            why = "the dataset is being deleted: it is not repaired"
            return [replace(c, repair_error=why) if c.status in _REPAIRABLE else c for c in checks]
        good = [r for r, c in zip(replicas, checks, strict=True) if c.status == "ok"]
        if not good:
            why = "no good replica to copy from: nothing was changed"
            return [replace(c, repair_error=why) if c.status in _REPAIRABLE else c for c in checks]
        folder = Path(await anyio.to_thread.run_sync(tempfile.mkdtemp))
        try:
            done = list(checks)
            for i, (replica, check) in enumerate(zip(replicas, checks, strict=True)):
                if check.status in _REPAIRABLE:
                    done[i] = await self.repair_one(dataset, replica, check, good, folder)
            return done
        finally:
            await anyio.to_thread.run_sync(shutil.rmtree, folder, True)

    async def repair_one(
        self,
        dataset: RegisteredDataset,
        target: Replica,
        check: ReplicaCheck,
        good: list[Replica],
        folder: Path,
    ) -> ReplicaCheck:
        """Get from the first good replica that reads back right; put, verify, record."""
        assert dataset.id is not None and target.repository is not None
        assert target.path is not None
        local = folder / "object"
        errors: list[str] = []
        for source in good:
            assert source.repository is not None and source.path is not None
            try:
                await source.repository.get(source.path, local, sha256=dataset.sha256)
            except Exception as exc:  # that copy didn't read back right: try another
                errors.append(f"{source.record.repository}: {_message(exc)}")
                continue
            try:
                await target.repository.put(local, target.path)
                info = await target.repository.stat(target.path, verify=True)
                if info is None or (info.size, info.sha256) != (dataset.size, dataset.sha256):
                    raise ProvenaError(f"{target.path} doesn't read back right after the copy")
                await self.registry.update_file_record(
                    dataset.id,
                    target.record.repository,
                    exists=True,
                    size=info.size,
                    sha256=info.sha256,
                )
            except Exception as exc:
                return replace(check, repair_error=_message(exc))
            event = CheckEvent(dataset.id, check.repository, check.path, "repaired", check.status)
            await emit(self.on_progress, event)
            return replace(check, repaired_from=source.record.repository)
        return replace(check, repair_error="no good replica read back right: " + "; ".join(errors))


def _compare(
    check: ReplicaCheck, dataset: RegisteredDataset, info: ObjectInfo | None
) -> ReplicaCheck:
    """The status of a replica from its ``stat`` (``None``: no object)."""
    if info is None:
        return replace(check, status="missing")
    found = replace(check, size=info.size, sha256=info.sha256, hash_checked=info.sha256 is not None)
    if info.size != dataset.size:
        return replace(found, status="wrong_size")
    if info.sha256 is not None and info.sha256 != dataset.sha256:
        return replace(found, status="wrong_hash")
    return replace(found, status="ok")
