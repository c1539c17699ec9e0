"""``InteractiveDataset``: one dataset's metadata, files and versions, for notebooks and scripts.

Every method is async (``await`` works at the top level of a Jupyter cell)::

    ds = await pv.datastore.interactive("10378.1/42")
    result = await ds.upload("./run-7", prefix="raw/", exclude=["*.tmp"])
    print(len(result.ok), "uploaded,", len(result.failed), "failed")
    await ds.download("./copy", paths=["raw/"])
    with (await ds.path("raw/table.csv")).open() as fh:   # cloudpathlib, blocking
        ...
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudpathlib import S3Path

from provena_like._core.errors import APIStatusError, ProvenaError, UsageError
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
from provena_like.storage import (
    FileResult,
    IncompleteUpload,
    ProgressCallback,
    RefreshingCredentials,
    S3Credentials,
    TransferEngine,
    TransferResult,
    dataset_path,
)
from provena_like.storage._plan import matches

if TYPE_CHECKING:
    from provena_like.modules.datastore import Datastore

__all__ = ["InteractiveDataset", "TransferDefaults"]

MiB = 1024 * 1024
_REGISTER_BATCH = 1000  # the server takes at most this many files per call
_REMOVE_BATCH = 1000  # likewise for removals


@dataclass(frozen=True)
class TransferDefaults:
    """Default settings of uploads and downloads (see ``TransferEngine``)."""

    max_concurrency: int = 16
    multipart_threshold: int = 16 * MiB
    part_size: int | None = None
    checksum: bool = True
    md5: bool = False


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

    def _engine(self, access: AccessLevel, concurrency: int | None) -> TransferEngine:
        defaults = self._ds.transfers

        async def provider() -> S3Credentials:
            return to_s3_credentials(await self._ds.credentials(self.id, access, force=True))

        return TransferEngine(
            RefreshingCredentials(provider),
            max_concurrency=concurrency or defaults.max_concurrency,
            multipart_threshold=defaults.multipart_threshold,
            part_size=defaults.part_size,
            checksum=defaults.checksum,
            md5=defaults.md5,
            session=self._ds.session,
        )

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

        Files go up concurrently, hashed once while read; each uploaded file is registered
        (path, size, sha256) so the server records it only once it exists. A file that
        fails, or whose registration fails, is reported as failed with the reason; the rest
        carry on.

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
        async with self._engine("write", concurrency) as engine:
            result = await engine.upload(
                files,
                prefix=prefix,
                include=include,
                exclude=exclude,
                progress=progress,
                fail_fast=fail_fast,
            )
        return await self._register(result)

    async def _register(self, result: TransferResult) -> TransferResult:
        done = [f for f in result.files if f.ok and f.sha256 is not None]
        refused: dict[str, str] = {}
        for start in range(0, len(done), _REGISTER_BATCH):
            batch = done[start : start + _REGISTER_BATCH]
            registrations = [
                FileRegistration(path=f.path, size=f.size or 0, sha256=f.sha256, md5=f.md5)
                for f in batch
            ]
            try:
                await self._ds.client.register_files(self.id, registrations)
            except (APIStatusError, UsageError):
                # the server takes a batch whole or not at all: find the file(s) it refuses
                for one in registrations:
                    try:
                        await self._ds.client.register_files(self.id, [one])
                    except (APIStatusError, UsageError) as err:
                        refused[one.path] = f"uploaded but not registered in the manifest: {err}"
        if not refused:
            return result
        files = [
            dataclasses.replace(f, status="failed", reason=refused[f.path])
            if f.path in refused
            else f
            for f in result.files
        ]
        return dataclasses.replace(result, files=files)

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
            result = await engine.download(
                selection.files,
                Path(dest),
                include=include,
                exclude=exclude,
                progress=progress,
                fail_fast=fail_fast,
            )
        if not selection.missing:
            return result
        missing = [
            FileResult(p, "failed", reason="no such file or folder in the dataset's manifest")
            for p in selection.missing
        ]
        return dataclasses.replace(result, files=[*result.files, *missing])

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

        The manifest is the remote truth: a file is ``skipped`` (``unchanged``) only when
        its size and sha256 match its manifest entry. ``delete=True`` also removes the
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
        async with self._engine("read" if dry_run else "write", concurrency) as engine:
            result = await engine.sync_up(
                Path(source),
                prefix=prefix,
                dry_run=dry_run,
                include=include,
                exclude=exclude,
                remote_sha256=known,
                progress=progress,
            )
        if not dry_run:
            result = await self._register(result)
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
            return await engine.sync_down(
                Path(dest),
                selection.files,
                delete=delete,
                dry_run=dry_run,
                include=include,
                exclude=exclude,
                progress=progress,
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

        While ``PENDING`` (and once ``RELEASED``) uploads are refused before any credentials
        are asked for, with a :class:`~provena_like.ReleaseStateConflict` saying why.

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
