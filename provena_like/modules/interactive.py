"""``InteractiveDataset``: one dataset's metadata, files and versions, for notebooks and scripts.

Every method is async (``await`` works at the top level of a Jupyter cell):

```python
ds = await pv.datastore.interactive("10378.1/42")
result = await ds.upload("./run-7", prefix="raw/", exclude=["*.tmp"])
print(len(result.ok), "uploaded,", len(result.failed), "failed")
await ds.download("./copy", paths=["raw/"])
with (await ds.path("raw/table.csv")).open() as fh:   # cloudpathlib, blocking
    ...
```
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import AsyncIterator, Collection, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import ValidationError

from provena_like._core.errors import ProvenaError, Unprocessable, UsageError
from provena_like.models.datastore import (
    AccessLevel,
    Dataset,
    DatasetRecord,
    FileRegistration,
    ManifestEntry,
    PresignedURL,
    ReleaseStatus,
    RemoveFilesResponse,
    ScopedCredentials,
)
from provena_like.models.registry import HistoryEntry
from provena_like.models.review import ReleaseEvent
from provena_like.modules.credentials import to_s3_credentials
from provena_like.modules.selection import select_files
from provena_like.storage.events import (
    FileFinished,
    ProgressCallback,
    TransferEvent,
    UploadInterrupted,
    deliver,
)
from provena_like.storage.results import UNCHANGED, FileResult, TransferResult, VerifyResult
from provena_like.storage.selection import DownloadSpec, matches

if TYPE_CHECKING:  # the S3 stack (botocore, cloudpathlib) loads when first used
    from cloudpathlib import S3Path

    from provena_like.modules.datastore import Datastore
    from provena_like.storage.engine import TransferEngine
    from provena_like.storage.listing import IncompleteUpload, RemoteObject

__all__ = ["NOT_REGISTERED", "InteractiveDataset", "TransferDefaults"]

log = logging.getLogger(__name__)

MiB = 1024 * 1024
_REGISTER_BATCH = 1000  # the server takes at most this many files per call
_REGISTER_BATCHES_IN_FLIGHT = 4
_REGISTER_SINGLES_IN_FLIGHT = 8  # one-file calls, when a refusal names no file
_REMOVE_BATCH = 1000  # likewise for removals
_FILE_FIELD = re.compile(r"^files\.(\d+)(\.|$)")

NOT_REGISTERED = "uploaded but not registered: "
"""How the reason of a file that reached the store but not the manifest starts."""

_REGISTERED_NOW = f"{UNCHANGED}; in the store but not in the manifest, registered now"


@dataclass(frozen=True)
class TransferDefaults:
    """Default settings of uploads and downloads (see ``TransferEngine``).

    Attributes:
        max_concurrency: requests in flight.
        multipart_threshold: files from this size go up in parts.
        part_size: the part size (``None``: chosen per file).
        checksum: compute and check sha256 (the manifest needs it: without it uploaded
            files can't be registered and are reported failed).
        md5: also compute md5.
        register_on_cancel: seconds an interrupted upload may spend registering the files
            that finished before it lets the cancellation through.
    """

    max_concurrency: int = 16
    multipart_threshold: int = 16 * MiB
    part_size: int | None = None
    checksum: bool = True
    md5: bool = False
    register_on_cancel: float = 30.0


class _Finished:
    """Forwards progress to the caller's callback and keeps every finished file's result.

    A callback that raises is logged once and not called again (as the engine does), while
    the results are still kept: an interrupted upload registers what finished.
    """

    def __init__(self, callback: ProgressCallback | None) -> None:
        self._callback = callback
        self.results: list[FileResult] = []

    async def __call__(self, event: TransferEvent) -> None:
        if isinstance(event, FileFinished):
            self.results.append(event.result)
        callback = self._callback
        if callback is not None and not await deliver(callback, event):
            self._callback = None


class InteractiveDataset:
    """A dataset you work with: its metadata (:attr:`dataset`), files and versions.

    Get one from :meth:`Datastore.mint <provena_like.modules.datastore.Datastore.mint>` or
    :meth:`Datastore.interactive <provena_like.modules.datastore.Datastore.interactive>`.
    """

    def __init__(self, datastore: Datastore, dataset: Dataset) -> None:
        self._ds = datastore
        self.dataset = dataset

    def __repr__(self) -> str:
        return (
            f"InteractiveDataset(id={self.id!r}, name={self.dataset.display_name!r}, "
            f"revision={self.dataset.revision}, release_status={self.release_status!r})"
        )

    @property
    def id(self) -> str:
        """The dataset's handle."""
        return self.dataset.id

    @property
    def record(self) -> DatasetRecord:
        """The dataset's metadata (collection format)."""
        return self.dataset.record

    @property
    def release_status(self) -> ReleaseStatus:
        """``NOT_RELEASED``, ``PENDING`` or ``RELEASED``."""
        return self.dataset.release_status

    # ------------------------------------------------------------------ metadata

    async def refresh(self) -> Dataset:
        """Fetch the dataset again (metadata, roles, lock and release state).

        Example:
            ```python
            await ds.refresh()
            ```
        """
        self.dataset = await self._ds.fetch(self.id)
        return self.dataset

    async def history(self) -> list[HistoryEntry]:
        """The metadata history, newest first.

        Example:
            ```python
            for entry in await ds.history():
                print(entry.id, entry.time, entry.user, entry.reason)
            ```
        """
        fetched = await self._ds.fetch(self.id, include_history=True)
        return list(fetched.history or [])

    async def update_metadata(
        self,
        record: DatasetRecord | Mapping[str, Any],
        *,
        reason: str,
        display_name: str | None = None,
    ) -> Dataset:
        """Replace the metadata; fails with ``PreconditionFailed`` if it changed meanwhile.

        Example:
            ```python
            info = ds.record.dataset_info.model_copy(update={"keywords": ["ocean", "2024"]})
            await ds.update_metadata(
                ds.record.model_copy(update={"dataset_info": info}), reason="add keywords"
            )
            ```
        """
        self.dataset = await self._ds.update_metadata(
            self.id,
            record,
            reason=reason,
            expected_revision=self.dataset.revision,
            display_name=display_name,
        )
        return self.dataset

    async def revert_metadata(self, history_id: int, *, reason: str) -> Dataset:
        """Restore the metadata of a history entry.

        Example:
            ```python
            first = (await ds.history())[-1]
            await ds.revert_metadata(first.id, reason="back to the original")
            ```
        """
        self.dataset = await self._ds.revert_metadata(
            self.id, history_id, reason=reason, expected_revision=self.dataset.revision
        )
        return self.dataset

    async def version(self, *, reason: str, copy_files: bool = False) -> InteractiveDataset:
        """Create the next version and return it (this object stays on the old one).

        Example:
            ```python
            v2 = await ds.version(reason="recalibrated", copy_files=True)
            ```
        """
        response = await self._ds.version(self.id, reason=reason, copy_files=copy_files)
        await self.refresh()
        return InteractiveDataset(self._ds, response.dataset)

    # ------------------------------------------------------------------ storage access

    async def credentials(self, access: AccessLevel = "read") -> ScopedCredentials:
        """Scoped S3 credentials for this dataset (cached until shortly before expiry).

        Example:
            ```python
            creds = await ds.credentials("write")
            ```
        """
        return await self._ds.credentials(self.id, access)

    async def presigned_url(self, path: str, *, expires_in: int | None = None) -> PresignedURL:
        """A time-limited URL for one file: 1 s to 1 h, by default the server's (15 min).

        Example:
            ```python
            link = await ds.presigned_url("raw/a.csv", expires_in=600)
            ```
        """
        return await self._ds.presigned_url(self.id, path, expires_in=expires_in)

    async def path(self, relative: str = "", *, access: AccessLevel = "read") -> S3Path:
        """A cloudpathlib ``S3Path`` inside the dataset, bound to its scoped credentials.

        cloudpathlib is blocking and lists before most operations: use it interactively, and
        wrap calls in ``anyio.to_thread.run_sync`` inside async code. Bulk moves belong to
        :meth:`upload` and :meth:`download`.

        Example:
            ```python
            p = await ds.path("raw/table.csv")
            text = await anyio.to_thread.run_sync(p.read_text)
            ```
        """
        from provena_like.storage.paths import dataset_path  # cloudpathlib, botocore

        creds = await self.credentials(access)
        return dataset_path(to_s3_credentials(creds), relative)

    # ------------------------------------------------------------------ files

    async def iter_files(
        self, *, prefix: str | None = None, page_size: int = 500
    ) -> AsyncIterator[ManifestEntry]:
        """Every registered file (the manifest), in path order.

        Example:
            ```python
            async for f in ds.iter_files(prefix="raw/"):
                print(f.path, f.size, f.sha256)
            ```
        """
        async for entry in self._ds.client.iter_files(self.id, prefix=prefix, page_size=page_size):
            yield entry

    async def list_files(self, *, prefix: str | None = None) -> list[ManifestEntry]:
        """All registered files (the manifest) as a list.

        Example:
            ```python
            files = await ds.list_files()
            ```
        """
        return [entry async for entry in self.iter_files(prefix=prefix)]

    async def iter_objects(self, prefix: str = "") -> AsyncIterator[RemoteObject]:
        """Every object stored under the dataset's prefix (S3, read credentials), key order.

        Unlike :meth:`iter_files` (the manifest), this lists what is in the object store,
        registered or not.

        Example:
            ```python
            async for obj in ds.iter_objects("raw/"):
                print(obj.key, obj.size, obj.etag)
            ```
        """
        async with self._engine("read", None) as engine:
            async for obj in engine.list(prefix):
                yield obj

    async def remove_files(self, paths: Iterable[str]) -> RemoveFilesResponse:
        """Remove registered files: their manifest entries, then their objects.

        Needs ``data-write``, and the dataset must be unlocked and neither in review nor
        released. Paths that aren't registered come back in ``not_registered`` (removing
        twice is harmless). More than 1,000 paths go in several calls, each one transaction:
        an error raises, and the batches before it stay removed.

        Example:
            ```python
            result = await ds.remove_files(["raw/old.csv", "raw/tmp.bin"])
            print(result.removed, result.not_registered)
            ```
        """
        wanted = list(dict.fromkeys(paths))
        removed: list[str] = []
        not_registered: list[str] = []
        for start in range(0, len(wanted), _REMOVE_BATCH):
            batch = wanted[start : start + _REMOVE_BATCH]
            done = await self._ds.client.remove_files(self.id, batch)
            removed.extend(done.removed)
            not_registered.extend(done.not_registered)
        return RemoveFilesResponse(removed=removed, not_registered=not_registered)

    @asynccontextmanager
    async def _engine(
        self, access: AccessLevel, concurrency: int | None
    ) -> AsyncIterator[TransferEngine]:
        """An open engine of the datastore's pool (reused across calls, see ``EnginePool``)."""
        defaults = self._ds.transfers
        settings = (
            concurrency or defaults.max_concurrency,
            defaults.multipart_threshold,
            defaults.part_size,
            defaults.checksum,
            defaults.md5,
        )
        cache = self._ds.credentials_cache

        def make() -> TransferEngine:
            from provena_like.storage.engine import TransferEngine  # the S3 stack

            return TransferEngine(
                cache.source(self.id, access),
                max_concurrency=settings[0],
                multipart_threshold=defaults.multipart_threshold,
                part_size=defaults.part_size,
                checksum=defaults.checksum,
                md5=defaults.md5,
            )

        pool = self._ds.engines
        async with pool.engine(self.id, access, settings, make) as engine:
            yield engine

    def _check(self, engine: TransferEngine, result: TransferResult) -> TransferResult:
        """Retire ``engine`` after failed files: the next call starts over (new credentials)."""
        if result.failed:
            self._ds.engines.retire_after_failures(engine)
        return result

    async def upload(
        self,
        source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
        *,
        prefix: str = "",
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        progress: ProgressCallback | None = None,
        concurrency: int | None = None,
        fail_fast: bool = False,
    ) -> TransferResult:
        """Upload a folder (its contents) or a list of files, then register them in the manifest.

        Files go up concurrently, hashed once while read; then the uploaded files are
        registered (path, size, sha256), 1,000 a call, a few calls at a time, so the server
        records a file only once it exists. Nothing raises halfway: every file comes back
        ``ok``, ``skipped`` or ``failed`` with the reason. A file that reached the store but
        not the manifest is ``failed`` with a reason starting ``"uploaded but not
        registered: "`` (:data:`NOT_REGISTERED`): a refusal of the whole call (403, 409
        locked, the server unreachable after the retries) fails each file of that call with
        it; a 422 fails only the files it names, and the others are registered.

        If the upload is cancelled (Ctrl-C, a timeout around it), the files that finished
        are registered first (shielded, for at most ``register_on_cancel`` seconds, see
        :class:`TransferDefaults`), then the cancellation goes on. :meth:`sync_up` finishes
        an interrupted upload: it sends only what the store lacks, and registers files that
        are in the store but not in the manifest.

        Args:
            source: A folder (its contents are uploaded), or files (each under its own name).
            prefix: Folder inside the dataset to upload into (``"raw/"``).
            include: Glob patterns on the relative path; if any, a file must match one.
            exclude: Glob patterns; matching files are left out.
            progress: Receives typed progress events.
            concurrency: Requests in flight (default from the client's transfer settings).
            fail_fast: Stop at the first failure.

        Example:
            ```python
            result = await ds.upload("./run-7", prefix="raw/", exclude=["*.tmp"])
            result.raise_for_failures()
            ```
        """
        files = _upload_source(source)
        finished = _Finished(progress)
        result: TransferResult | None = None
        try:
            async with self._engine("write", concurrency) as engine:
                result = self._check(
                    engine,
                    await engine.upload(
                        files,
                        prefix=prefix,
                        include=include,
                        exclude=exclude,
                        progress=finished,
                        fail_fast=fail_fast,
                    ),
                )
            return await self._register(result)
        except BaseException:
            # cancelled (or broken) during the transfer or the registration: registering
            # again what is already registered is harmless (``unchanged``)
            await self._register_interrupted(result.files if result else finished.results, finished)
            raise

    async def _register(
        self, result: TransferResult, *, unchanged: Collection[str] = ()
    ) -> TransferResult:
        """Register the uploaded files of ``result`` (and the ``unchanged`` skipped ones).

        Never raises: a file that can't be registered comes back failed with the reason.
        """
        wanted = [f for f in result.files if f.ok or (f.path in unchanged and f.sha256)]
        refused: dict[str, tuple[str, BaseException | None]] = {}
        registrations: list[FileRegistration] = []
        for f in wanted:
            if f.sha256 is None:
                refused[f.path] = ("no sha256 was computed (checksums are off)", None)
                continue
            try:
                registrations.append(
                    FileRegistration(path=f.path, size=f.size or 0, sha256=f.sha256, md5=f.md5)
                )
            except ValidationError as err:
                message = "; ".join(e["msg"] for e in err.errors(include_url=False))
                refused[f.path] = (message, UsageError(message))
        batches = anyio.CapacityLimiter(_REGISTER_BATCHES_IN_FLIGHT)
        singles = anyio.CapacityLimiter(_REGISTER_SINGLES_IN_FLIGHT)
        async with anyio.create_task_group() as group:
            for start in range(0, len(registrations), _REGISTER_BATCH):
                batch = registrations[start : start + _REGISTER_BATCH]
                group.start_soon(self._register_batch, batch, refused, batches, singles)
        files: list[FileResult] = []
        for f in result.files:
            if f.path in refused:
                reason, error = refused[f.path]
                f = dataclasses.replace(
                    f, status="failed", reason=NOT_REGISTERED + reason, error=error
                )
            elif f.path in unchanged and not f.ok and f.sha256:
                f = dataclasses.replace(f, reason=_REGISTERED_NOW)
            files.append(f)
        return dataclasses.replace(result, files=files)

    async def _register_batch(
        self,
        batch: list[FileRegistration],
        refused: dict[str, tuple[str, BaseException | None]],
        batches: anyio.CapacityLimiter,
        singles: anyio.CapacityLimiter,
    ) -> None:
        """Register one batch; record in ``refused`` each file the server didn't take.

        One call for the batch (the core retries transient failures under one idempotency
        key). A 422 naming files fails those and sends the rest again; any other refusal
        fails every file of the batch with it. Only a 422 that names no file is resolved
        one file at a time (concurrently, bounded by ``singles``).
        """
        pending = batch
        async with batches:
            while pending:
                try:
                    await self._ds.client.register_files(self.id, pending)
                    return
                except Unprocessable as err:
                    named = _named_files(err, pending)
                    if not named:
                        break
                    for path, message in named.items():
                        refused[path] = (message, err)
                    pending = [r for r in pending if r.path not in named]
                except Exception as err:  # 401/403/404/409, unreachable or timed out after retries
                    for r in pending:
                        refused[r.path] = (str(err), err)
                    return
        if pending:
            await self._register_singly(pending, refused, singles)

    async def _register_singly(
        self,
        pending: list[FileRegistration],
        refused: dict[str, tuple[str, BaseException | None]],
        singles: anyio.CapacityLimiter,
    ) -> None:
        """Register files one per call, concurrently; stop calling after a non-422 refusal."""
        stop: list[Exception] = []

        async def one(registration: FileRegistration) -> None:
            async with singles:
                if stop:
                    refused[registration.path] = (str(stop[0]), stop[0])
                    return
                try:
                    await self._ds.client.register_files(self.id, [registration])
                except Unprocessable as err:
                    named = _named_files(err, [registration])
                    refused[registration.path] = (named.get(registration.path, str(err)), err)
                except Exception as err:
                    stop.append(err)
                    refused[registration.path] = (str(err), err)

        async with anyio.create_task_group() as group:
            for registration in pending:
                group.start_soon(one, registration)

    async def _register_interrupted(self, finished: list[FileResult], progress: _Finished) -> None:
        """Register the files an interrupted upload finished, shielded and time-bounded.

        Then tell ``progress`` how many finished and how many are registered
        (:class:`~provena_like.storage.events.UploadInterrupted`).
        """
        done = [f for f in finished if f.ok]
        limit = self._ds.transfers.register_on_cancel
        outcome: TransferResult | None = None
        if done:
            with anyio.move_on_after(limit, shield=True):
                try:
                    outcome = await self._register(TransferResult(done))
                except Exception:
                    log.exception("registering the files of an interrupted upload failed")
        registered = len(done) - len(outcome.failed) if outcome is not None else 0
        with anyio.CancelScope(shield=True):
            await progress(UploadInterrupted(len(done), registered, sum(f.size or 0 for f in done)))
        if not done:
            return
        if outcome is None:
            log.warning(
                "dataset %s: the upload was interrupted and %d finished file(s) could not be "
                "registered in %.0f s; sync_up registers them without sending them again",
                self.id,
                len(done),
                limit,
            )
            return
        failed = outcome.failed
        log.log(
            logging.WARNING if failed else logging.INFO,
            "dataset %s: the upload was interrupted; %d finished file(s) registered, %d not%s",
            self.id,
            len(done) - len(failed),
            len(failed),
            f" (e.g. {failed[0].path}: {failed[0].reason})" if failed else "",
        )

    async def download(
        self,
        dest: str | os.PathLike[str],
        *,
        paths: Sequence[str] | str | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        progress: ProgressCallback | None = None,
        concurrency: int | None = None,
        fail_fast: bool = False,
    ) -> TransferResult:
        """Download registered files into ``dest``, each verified against its manifest sha256.

        ``paths`` follows the Provena client: a file → that file; ``"raw"`` → the folder
        itself (``dest/raw/...``); ``"raw/"`` → its contents (``dest/...``); ``None`` → the
        whole dataset. A file appears in ``dest`` only once its checksum matched; keys that
        would escape ``dest`` are refused before anything touches the disk.

        Example:
            ```python
            result = await ds.download("./copy", paths=["raw/", "README.md"])
            print(len(result.ok), "files,", result.bytes, "bytes")
            ```
        """
        wanted = [paths] if isinstance(paths, str) else paths
        selection = select_files(await self.list_files(), wanted)
        async with self._engine("read", concurrency) as engine:
            result = self._check(
                engine,
                await engine.download(
                    selection.files,
                    Path(dest),
                    include=include,
                    exclude=exclude,
                    progress=progress,
                    fail_fast=fail_fast,
                ),
            )
        if not selection.missing:
            return result
        missing = [
            FileResult(p, "failed", reason="no such file or folder in the dataset's manifest")
            for p in selection.missing
        ]
        return dataclasses.replace(result, files=[*result.files, *missing])

    async def download_objects(
        self,
        objects: Iterable[DownloadSpec],
        dest: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        concurrency: int | None = None,
    ) -> TransferResult:
        """Download objects by key, registered or not, each verified before it appears.

        Unlike :meth:`download`, which selects from the manifest, this takes the objects'
        keys (relative to the dataset) as a crawl of the dataset found them, with the local
        path of each under ``dest`` and its sha256 when known (``None``: the one stored with
        the object at upload).

        Example:
            ```python
            result = await ds.download_objects([("raw/a.csv", "a.csv", None)], "./tmp")
            ```
        """
        async with self._engine("read", concurrency) as engine:
            return self._check(
                engine, await engine.download(list(objects), Path(dest), progress=progress)
            )

    # ------------------------------------------------------------------ sync and resume

    async def sync_up(
        self,
        source: str | os.PathLike[str],
        *,
        prefix: str = "",
        delete: bool = False,
        dry_run: bool = False,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        progress: ProgressCallback | None = None,
        concurrency: int | None = None,
    ) -> TransferResult:
        """Upload the files of a folder that differ from the dataset's, and register them.

        A file is ``skipped`` (``unchanged``) when its size and sha256 match its manifest
        entry and the object still has the ETag the manifest recorded (no request but the
        listing), or, for a file the manifest lacks or an object replaced since, the object in
        the store (the md5 a single-part object's ETag is, else its stored sha256): a file in
        the store but not in the manifest (an upload that was interrupted or not registered)
        is registered without being sent again
        (reason ``"unchanged; in the store but not in the manifest, registered now"``).
        Registration reports per file as :meth:`upload` does. ``delete=True`` also removes the
        registered files under ``prefix`` (and selected by ``include``/``exclude``) that the
        folder no longer has, as :meth:`remove_files` does (manifest entry, then object):
        each is reported ``ok`` with the reason ``deleted``, or ``failed`` with the error of
        its batch. ``dry_run=True`` writes nothing: files to delete come back ``skipped``
        with the reason ``would delete``.

        Example:
            ```python
            plan = await ds.sync_up("./run-7", prefix="raw/", delete=True, dry_run=True)
            print([(f.path, f.reason) for f in plan.skipped])
            result = await ds.sync_up("./run-7", prefix="raw/", delete=True)
            ```
        """
        manifest = await self.list_files()
        known = {entry.path: entry.sha256 for entry in manifest if entry.sha256}
        recorded = {entry.path: entry.etag for entry in manifest if entry.sha256 and entry.etag}
        finished = _Finished(progress)
        synced: TransferResult | None = None
        try:
            async with self._engine("read" if dry_run else "write", concurrency) as engine:
                synced = self._check(
                    engine,
                    await engine.sync_up(
                        Path(source),
                        prefix=prefix,
                        dry_run=dry_run,
                        include=include,
                        exclude=exclude,
                        remote_sha256=known,
                        remote_etags=recorded,
                        progress=finished,
                    ),
                )
            result = synced
            if not dry_run:
                # unchanged in the store but not in the manifest: an earlier upload that was
                # interrupted, or whose registration failed
                unregistered = {
                    f.path
                    for f in synced.skipped
                    if f.reason == UNCHANGED and f.sha256 and known.get(f.path) != f.sha256
                }
                result = await self._register(synced, unchanged=unregistered)
        except BaseException:
            if not dry_run:
                await self._register_interrupted(
                    synced.files if synced else finished.results, finished
                )
            raise
        if delete:
            base = prefix if not prefix or prefix.endswith("/") else prefix + "/"
            local = {f.path for f in result.files}
            extraneous = [
                e.path
                for e in manifest
                if e.path.startswith(base)
                and e.path not in local
                and matches(e.path[len(base) :], include, exclude)
            ]
            if dry_run:
                deleted = [FileResult(p, "skipped", reason="would delete") for p in extraneous]
            else:
                deleted = await self._delete_remote(extraneous)
            result = dataclasses.replace(result, files=[*result.files, *deleted])
        return result

    async def _delete_remote(self, paths: list[str]) -> list[FileResult]:
        """Remove ``paths`` batch by batch; a batch that fails reports its files failed."""
        results: list[FileResult] = []
        for start in range(0, len(paths), _REMOVE_BATCH):
            batch = paths[start : start + _REMOVE_BATCH]
            try:
                await self._ds.client.remove_files(self.id, batch)
            except ProvenaError as err:
                results.extend(FileResult(p, "failed", reason=str(err), error=err) for p in batch)
            else:
                # a path another client removed meanwhile is gone all the same
                results.extend(FileResult(p, "ok", reason="deleted") for p in batch)
        return results

    async def sync_down(
        self,
        dest: str | os.PathLike[str],
        *,
        paths: Sequence[str] | str | None = None,
        delete: bool = False,
        dry_run: bool = False,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        progress: ProgressCallback | None = None,
        concurrency: int | None = None,
    ) -> TransferResult:
        """Download the registered files that differ from the local copy in ``dest``.

        ``paths`` selects as for :meth:`download`; a local file is kept (``unchanged``) when
        its size and sha256 match the manifest. ``delete=True`` removes local files under
        ``dest`` that the selection doesn't contain; ``dry_run=True`` writes nothing.

        Example:
            ```python
            result = await ds.sync_down("./copy", delete=True)
            print(len(result.ok), "fetched,", len(result.skipped), "unchanged")
            ```
        """
        wanted = [paths] if isinstance(paths, str) else paths
        selection = select_files(await self.list_files(), wanted)
        async with self._engine("read", concurrency) as engine:
            return self._check(
                engine,
                await engine.sync_down(
                    Path(dest),
                    selection.files,
                    delete=delete,
                    dry_run=dry_run,
                    include=include,
                    exclude=exclude,
                    progress=progress,
                ),
            )

    async def verify(
        self,
        local_dir: str | os.PathLike[str],
        *,
        paths: Sequence[str] | str | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        concurrency: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> VerifyResult:
        """Check a local copy against the manifest: size and sha256, as :meth:`sync_down` does.

        Nothing is transferred. ``paths`` selects as for :meth:`download`; each selected file
        is read and hashed again (bounded: a few files at once), and compared with its
        manifest entry. Partial downloads left in ``local_dir`` are not files, as for
        :meth:`sync_down`. Local files the selection doesn't contain come back
        ``missing-remote``.

        Args:
            local_dir: The local copy (a folder).
            paths: Dataset files or folders, as for :meth:`download` (``None``: all).
            include: Glob patterns on the relative path; if any, a file must match one.
            exclude: Glob patterns; matching files are left out.
            concurrency: Requests in flight (default from the client's transfer settings);
                files are checked at twice this many at once.
            progress: Receives :class:`~provena_like.storage.events.HashingProgress` events
                while the local files are hashed.

        Returns:
            One :class:`~provena_like.storage.results.FileCheck` per file: ``ok``,
            ``mismatch`` (with the reason), ``missing-local`` or ``missing-remote``.

        Raises:
            UsageError: If ``local_dir`` is not a folder, or a path matches no file.

        Example:
            ```python
            await ds.download("./copy")
            result = await ds.verify("./copy")
            assert result.matches
            if not result.matches:
                for f in result.differences:
                    print(f.status, f.path, f.reason)
            ```
        """
        root = Path(local_dir)
        if not root.is_dir():
            raise UsageError(f"{root} is not a folder")
        wanted = [paths] if isinstance(paths, str) else paths
        selection = select_files(await self.list_files(), wanted)
        if selection.missing:
            raise UsageError(
                "no such file or folder in the dataset's manifest: " + ", ".join(selection.missing)
            )
        async with self._engine("read", concurrency) as engine:
            return await engine.verify(
                root, selection.files, include=include, exclude=exclude, progress=progress
            )

    async def incomplete_uploads(self) -> list[IncompleteUpload]:
        """Multipart uploads into this dataset that were interrupted and never finished.

        Example:
            ```python
            for up in await ds.incomplete_uploads():
                print(up.key, up.initiated)
            ```
        """
        async with self._engine("write", None) as engine:
            return await engine.list_incomplete_uploads()

    async def abort_incomplete_uploads(
        self, older_than: timedelta | None = None
    ) -> list[IncompleteUpload]:
        """Abort interrupted multipart uploads (all, or those older than ``older_than``).

        Example:
            ```python
            gone = await ds.abort_incomplete_uploads(timedelta(days=1))
            ```
        """
        async with self._engine("write", None) as engine:
            return await engine.abort_incomplete_uploads(older_than)

    # ------------------------------------------------------------------ review and release

    async def request_release(self, reviewer: str, notes: str = "") -> Dataset:
        """Ask ``reviewer`` to release this dataset; it is ``PENDING`` (and frozen) until then.

        While ``PENDING`` (and once ``RELEASED``) the server refuses write credentials, so
        uploads fail with a :class:`~provena_like.ReleaseStateConflict` saying why.

        Example:
            ```python
            await ds.request_release("rob", notes="ready: files and licence checked")
            print(ds.release_status)   # PENDING
            ```
        """
        self.dataset = await self._ds.review.request_release(self.id, reviewer, notes)
        return self.dataset

    async def withdraw_release(self, notes: str = "") -> Dataset:
        """Take back this dataset's pending release request (it can change again).

        Example:
            ```python
            await ds.withdraw_release("forgot a file")
            ```
        """
        self.dataset = await self._ds.review.withdraw(self.id, notes)
        return self.dataset

    async def release_history(self) -> list[ReleaseEvent]:
        """Every step of this dataset's release workflow, oldest first.

        Example:
            ```python
            for event in await ds.release_history():
                print(event.time, event.user, event.action, event.notes)
            ```
        """
        return await self._ds.review.history(self.id)


def _named_files(err: Unprocessable, sent: Sequence[FileRegistration]) -> dict[str, str]:
    """The files a 422 names (``files.<i>...`` fields) with its message; {} if none."""
    details = err.details
    if not isinstance(details, list) or not details:
        return {}
    named: dict[str, str] = {}
    for detail in details:
        field = detail.get("field") if isinstance(detail, dict) else None
        match = _FILE_FIELD.match(field) if isinstance(field, str) else None
        if match is None or int(match.group(1)) >= len(sent):
            return {}  # a refusal of the request itself: no file to blame
        path = sent[int(match.group(1))].path
        message = str(detail.get("message") or err)
        named[path] = f"{named[path]}; {message}" if path in named else message
    return named


def _upload_source(
    source: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> Path | list[tuple[Path, str]]:
    """A folder, or (file, key) pairs; refuse missing paths and two files on one key."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if path.is_dir():
            return path
        if not path.is_file():
            raise UsageError(f"nothing to upload: {path} is neither a file nor a folder")
        return [(path, path.name)]
    pairs = [(Path(p), Path(p).name) for p in source]
    seen: dict[str, Path] = {}
    for local, key in pairs:
        if key in seen:
            raise UsageError(
                f"{seen[key]} and {local} would both be uploaded as {key!r}; "
                "upload their folder instead, or one of them with another prefix"
            )
        seen[key] = local
    return pairs
