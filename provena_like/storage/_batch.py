"""Running a batch: one task group, bounded files in flight, per-file results, fail-fast."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ParamSpec, Protocol, TypeVar

import anyio

from provena_like.storage._budget import ByteBudget
from provena_like.storage._hops import SharedHops
from provena_like.storage._requests import S3Requests, describe, to_transfer_error
from provena_like.storage.cache import HashCache
from provena_like.storage.events import ProgressReporter
from provena_like.storage.hashing import Digests
from provena_like.storage.results import FileResult, TransferResult

__all__ = [
    "BatchContext",
    "TransferSettings",
    "failed_result",
    "ok_result",
    "run_batch",
    "strip_etag",
]

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

_CANCELLED = "not transferred: the batch stopped after an earlier failure (fail_fast)"


@dataclass(frozen=True, slots=True)
class TransferSettings:
    """How files are cut and checked (see :class:`~provena_like.storage.TransferEngine`)."""

    multipart_threshold: int
    part_size: int | None
    checksum: bool
    md5: bool
    ranged_get_threshold: int | None = 16 * 1024 * 1024
    resume: bool = False
    cache_dir: Path | None = None


@dataclass(slots=True)
class BatchContext:
    """What a file's transfer needs: requests, limits, settings and the progress reporter.

    ``hashes`` holds the local files' known sha256 (uploads of multipart files read it, and
    record what they compute, so an unchanged file isn't hashed again); ``real_roots`` the
    real paths of the download destinations, resolved once per batch.
    """

    requests: S3Requests
    bucket: str
    prefix: str
    settings: TransferSettings
    budget: ByteBudget
    io_limiter: anyio.CapacityLimiter
    progress: ProgressReporter
    endpoint: str = ""
    hashes: HashCache | None = None
    real_roots: dict[Path, Path] = field(default_factory=dict)
    """Destination directories created and resolved by this batch (see
    :func:`~provena_like.storage.keys.prepare_local_target`)."""
    hops: SharedHops = field(default_factory=SharedHops)
    """Worker-thread hops shared by short file jobs (see :meth:`in_shared_hop`)."""

    def key(self, path: str) -> str:
        """The full object key of a dataset-relative path."""
        return self.prefix + path

    async def in_thread(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run blocking file work (I/O, hashing) in a worker thread, bounded by the limiter."""
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs), limiter=self.io_limiter)

    async def in_shared_hop(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Like :meth:`in_thread`, in one hop with the other calls waiting (:mod:`._hops`).

        For short jobs only (a small file's write): the calls of a hop run one after another.
        """
        return await self.hops.run(lambda: fn(*args, **kwargs), self.io_limiter)


class _Item(Protocol):
    path: str


I = TypeVar("I", bound=_Item)  # noqa: E741


def strip_etag(etag: str | None) -> str | None:
    """An ETag without its quotes."""
    return None if etag is None else etag.strip('"')


def ok_result(
    path: str,
    digests: Digests,
    etag: str | None,
    local: Path | None,
    *,
    size: int | None = None,
) -> FileResult:
    """The result of a file moved and checked: hashes, unquoted ETag, size.

    The size is the bytes hashed, unless ``size`` says otherwise.
    """
    return FileResult(
        path=path,
        status="ok",
        size=digests.size if size is None else size,
        sha256=digests.sha256,
        md5=digests.md5,
        etag=strip_etag(etag),
        local=local,
    )


def failed_result(
    path: str,
    exc: Exception,
    *,
    action: str,
    size: int | None = None,
    local: Path | None = None,
) -> FileResult:
    """The result of a file that failed with ``exc``."""
    error = to_transfer_error(exc, f"{action} {path}")
    return FileResult(
        path=path, status="failed", size=size, reason=describe(exc), error=error, local=local
    )


async def run_batch(
    items: Sequence[I],
    work: Callable[[I], Awaitable[FileResult]],
    *,
    files_in_flight: int,
    fail_fast: bool,
    progress: ProgressReporter,
    action: str,
) -> TransferResult:
    """Run ``work`` on every item concurrently and collect one result per item, in order.

    ``work`` reports its own failures as results; anything it raises anyway becomes that
    file's failure. With ``fail_fast``, the first failure cancels the files in flight and
    the rest; they are reported as skipped.
    """
    results: list[FileResult | None] = [None] * len(items)
    queue = iter(enumerate(items))

    async def worker(scope: anyio.CancelScope) -> None:
        # a few long-lived tasks take the items in order: a task per file cost as much
        # event-loop time as the rest of a small file's bookkeeping
        for index, item in queue:
            try:
                result = await work(item)
            except Exception as exc:  # a bug or an unexpected error: still a per-file result
                log.debug("%s %s failed unexpectedly", action, item.path, exc_info=True)
                result = failed_result(item.path, exc, action=action)
            results[index] = result
            await progress.finished(result)
            if fail_fast and result.status == "failed":
                scope.cancel()

    async with anyio.create_task_group() as tg:
        for _ in range(min(max(1, files_in_flight), len(items))):
            tg.start_soon(worker, tg.cancel_scope)

    final: list[FileResult] = []
    for item, maybe in zip(items, results, strict=True):
        if maybe is None:
            maybe = FileResult(path=item.path, status="skipped", reason=_CANCELLED)
            progress.files_done += 1
        final.append(maybe)
    await progress.close()
    return TransferResult(final)
