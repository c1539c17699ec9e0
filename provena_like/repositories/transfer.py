"""``TransferRepository``: a directory on a Globus collection, through the transfer service.

The repository's objects live under a root on a **destination collection**
(``globus://<collection>/<root>``, or a label of the client's
:class:`~provena_like.clients.transfer.Locations`); the bytes move by transfer tasks between
it and a **local endpoint**: a collection that exposes a directory of this machine (what ONE
and map-ephys configure by hand as ``local_endpoint`` + ``local_path``, and what Globus
Connect Personal gives a laptop). See :class:`LocalEndpoint`.

How each promise of the contract (:mod:`provena_like.repositories.base`) is kept:

- **put** copies the local file into the local endpoint's spool (``.provena-spool/`` in its
  directory), hashing it as it goes and failing if the file changes meanwhile; that private
  copy is the snapshot the task reads, so a file edited during a long transfer can never
  land mixed. One transfer task (``sync_level="checksum"``, ``verify_checksum=True``) moves
  it; the destination endpoint writes a temp name and renames it (our transfer service
  does, for local and S3 collections), so a reader sees the old object or the complete new
  one. Before ``put`` returns, ``operation_stat`` must show the object with the staged size.
- **get** transfers the object into the spool (checksum-verified), checks the size against
  the ``stat`` taken first, and then copies it to ``local_path`` through a temp file that is
  renamed only after the size and ``sha256`` check.
- **stat** is ``operation_stat`` (size, time). ``verify=True`` needs a sha256 computed from
  the stored bytes, and Globus lists no checksums: the object is transferred back into the
  spool with ``verify_checksum`` and hashed there (a full read; the choice works on real
  Globus too). When the endpoint refuses to deliver bytes that don't match its own record of
  them (our service's S3 collections check the sha256 stored at upload: the task FAILS on a
  checksum), a second task reads them back with ``verify_checksum=False`` (bytes as stored,
  checked by size only) and they are hashed in the spool, so the sha256 is always one
  computed here from bytes received, never parsed out of an endpoint's message. (Real
  Globus retries a checksum failure instead; the task is then reported stuck and
  cancelled.)
- **delete** is a delete task (``ignore_missing``: a missing object is success).
- **list** walks ``operation_ls`` level by level, with at most ``list_concurrency`` listings
  in flight; temp files of writes (``.provena-tmp-`` in the name), symlinks and the spool are
  never objects.
- :meth:`TransferRepository.put_many` and :meth:`TransferRepository.delete_many` send **one**
  task for many files (the base class does one call per file); :meth:`TransferRepository.send`
  and :meth:`TransferRepository.receive` move many files of the local endpoint's directory
  in one task without a spool copy (the archive's raw data).

Every wait is :meth:`~provena_like.clients.transfer.TaskHandle.wait`, which reports a paused
(INACTIVE) task, or one stuck retrying errors, as not done. The repository then **cancels**
the task it gives up on (also when the calling task is cancelled, or the wait times out), so
that it can't complete later behind the caller's back, and raises
:class:`~provena_like.TaskFailed` naming the path, the task and why. A task that FAILED on a
checksum raises :class:`~provena_like.ChecksumMismatch`; on a missing source,
:class:`~provena_like.repositories.ObjectNotFound`. Errors of the API itself (e.g.
:class:`~provena_like.Forbidden` with ``EndpointPermissionDenied``) are raised as they are,
with a note naming the repository and path.

Example:
    ```python
    from provena_like.repositories import LocalEndpoint, TransferRepository

    laptop = LocalEndpoint(local_collection_id, local_dir)
    repo = TransferRepository(pv.transfer_client, f"globus://{archive_id}/labs/x", laptop)
    async with repo:
        info = await repo.put(local_dir / "a.b.npy", "m1/2024-01-31/001/alf/a.b.npy")
        assert (await repo.stat(info.path, verify=True)).sha256 == info.sha256
    ```
"""

from __future__ import annotations

import builtins
import functools
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import anyio

from provena_like._core.concurrency import each
from provena_like._core.errors import (
    APIError,
    ChecksumMismatch,
    NotFound,
    RemoteChanged,
    ServerError,
    TaskFailed,
    TransferError,
    UsageError,
)
from provena_like._core.ratelimit import RateLimiter
from provena_like.clients.transfer import (
    FileEntry,
    Location,
    LocationLike,
    Locations,
    TaskHandle,
    TaskOutcome,
    TaskResult,
    TransferClient,
)
from provena_like.repositories.base import (
    ObjectInfo,
    ObjectNotFound,
    Repository,
    RepositoryKind,
    check_path,
    check_prefix,
)
from provena_like.repositories.posix import TEMP_PREFIX, PosixRepository
from provena_like.storage.events import (
    BytesTransferred,
    FileStarted,
    ProgressCallback,
    ProgressReporter,
    TransferEvent,
)
from provena_like.storage.hashing import CHUNK_SIZE
from provena_like.storage.results import FileResult

__all__ = ["SPOOL", "LocalEndpoint", "TransferRepository", "globus_root"]

log = logging.getLogger(__name__)

SPOOL = ".provena-spool"
"""The folder of the local endpoint's directory that holds the files in flight."""

_TEMP_MARK = TEMP_PREFIX
"""Names holding this are temp files of writes (ours, and the transfer service's
``.<name>.provena-tmp-<task>``), never objects."""

_CANCEL_TIMEOUT = 30.0
_NOT_DIRECTORY = "ExternalError.DirListingFailed.NotDirectory"
_LABEL = re.compile(r"[^A-Za-z0-9 _,.-]")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True)
class LocalEndpoint:
    """A collection that exposes a directory of this machine (a Globus Connect endpoint).

    Attributes:
        collection: The collection UUID.
        directory: The directory of this machine the collection shows at ``path``.
        path: Where on the collection ``directory`` is (``/``: its root).

    Example:
        ```python
        laptop = LocalEndpoint("6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e", Path("/data"))
        assert laptop.location.path == "/"
        ```
    """

    collection: str
    directory: Path
    path: str = "/"

    def __post_init__(self) -> None:
        location = Location(self.collection, self.path)  # checks the UUID and the path
        object.__setattr__(self, "collection", location.collection)
        object.__setattr__(self, "path", location.path)
        object.__setattr__(self, "directory", Path(self.directory).absolute())

    @property
    def location(self) -> Location:
        """The collection and path that show :attr:`directory`."""
        return Location(self.collection, self.path)


def _label(text: str) -> str:
    """A task label Globus accepts (letters, digits, space and ``_,.-``; 128 characters)."""
    return _LABEL.sub("_", text)[:128]


def _is_temp(name: str) -> bool:
    return _TEMP_MARK in name


def _is_object(entry: FileEntry) -> bool:
    """A regular file (folders and symlinks are never objects)."""
    return entry.type == "file" and entry.link_target is None


def globus_root(root: LocationLike, client: TransferClient | None = None) -> Location:
    """The location of a Globus repository's root.

    Args:
        root: ``globus://<collection>/<path>``; ``<collection>:/<path>`` (how a repository
            item of the registry writes a Globus root); a
            :class:`~provena_like.clients.transfer.Location`; or, with ``client``, a label of
            its locations (``"archive:labs/x"``).
        client: The transfer client whose labels ``root`` may use.

    Raises:
        UsageError: If ``root`` is none of these.
        UnsafePath: If its path holds ``..`` or a NUL byte.

    Example:
        ```python
        cid = "6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e"
        assert globus_root(f"{cid}:/data/labs") == Location(cid, "/data/labs")
        assert globus_root(f"globus://{cid}/data/labs") == Location(cid, "/data/labs")
        ```
    """
    if isinstance(root, str):
        collection, sep, path = root.partition(":")
        if sep and _UUID.fullmatch(collection):
            return Location(collection, path or "/")
    locations = client.locations if client is not None else Locations()
    return locations.resolve(root)


class _Relay:
    """Progress of a put or get: the bytes of the local copy, then one ``FileFinished``.

    The local copies (into the spool for ``put``, out of it for ``get``) run on a
    :class:`PosixRepository`; their ``FileStarted``/``BytesTransferred`` events are passed on
    under the repository path, and the file is reported finished only when the whole
    operation is.
    """

    def __init__(self, progress: ProgressCallback | None, paths: dict[str, str], total: int):
        self.paths = paths
        self.reporter = ProgressReporter(progress, files_total=len(paths), bytes_total=total)
        self.done: set[str] = set()

    async def __call__(self, event: TransferEvent) -> None:
        if isinstance(event, FileStarted):
            await self.reporter.started(self.paths.get(event.path, event.path), event.size)
        elif isinstance(event, BytesTransferred):
            path = self.paths.get(event.path, event.path)
            await self.reporter.transferred(path, event.n, event.total_done)

    async def finished(self, result: FileResult) -> None:
        if result.path not in self.done:
            self.done.add(result.path)
            await self.reporter.finished(result)

    async def close(self, error: BaseException | None = None) -> None:
        """Report every file not reported yet as failed (with ``error``), then the totals."""
        with anyio.CancelScope(shield=True):
            for path in self.paths.values():
                reason = (str(error) or type(error).__name__) if error else "interrupted"
                await self.finished(FileResult(path, "failed", reason=reason, error=error))
            await self.reporter.close()


class TransferRepository(Repository):
    """A repository under a root on a Globus collection, over the L2 transfer client.

    Args:
        client: An open :class:`~provena_like.clients.transfer.TransferClient` (e.g.
            ``pv.transfer_client``); the repository doesn't close it.
        root: The repository's root: ``globus://<collection>/<path>``,
            ``<collection>:/<path>`` (a registry repository item's ``root``), ``label:path``
            of the client's locations, or a :class:`~provena_like.clients.transfer.Location`
            (see :func:`globus_root`).
        local: The local endpoint the bytes go through (see :class:`LocalEndpoint`).
        name: A name for messages and plans (default: ``root``).
        timeout: Seconds a task may take before the repository cancels it and fails.
        poll: Seconds between two looks at a running task.
        stuck_after: Seconds a task may keep retrying errors (faults) before it counts as
            stuck (cancelled, :class:`~provena_like.TaskFailed`).
        list_concurrency: ``operation_ls`` calls in flight at once while listing.
        list_rate: At most this many ``operation_ls``/``operation_stat`` calls started per
            second while listing (``None``: no limit beyond ``list_concurrency``).
        chunk_size: Bytes per step of the local copies (a cancelled copy stops after one).

    Example:
        ```python
        laptop = LocalEndpoint(local_collection_id, Path("/data/globus"))
        async with TransferRepository(tc, "archive:labs/x", laptop, name="archive") as repo:
            paths = [o.path async for o in repo.list("mouse1/")]
        ```
    """

    kind: RepositoryKind = "globus"

    def __init__(
        self,
        client: TransferClient,
        root: LocationLike,
        local: LocalEndpoint,
        *,
        name: str | None = None,
        timeout: float = 3600.0,
        poll: float = 1.0,
        stuck_after: float = 60.0,
        list_concurrency: int = 8,
        list_rate: float | None = None,
        chunk_size: int = CHUNK_SIZE,
    ) -> None:
        if timeout <= 0 or poll <= 0 or stuck_after < 0:
            raise UsageError("timeout and poll must be above 0, stuck_after not negative")
        if list_concurrency < 1:
            raise UsageError("list_concurrency must be at least 1")
        self.client = client
        self.root = globus_root(root, client)
        self.local = local
        self.name = name if name is not None else str(self.root)
        self.timeout = timeout
        self.poll = poll
        self.stuck_after = stuck_after
        self._list_limit = anyio.CapacityLimiter(list_concurrency)
        self._list_rate = RateLimiter(list_rate)
        self._spool = PosixRepository(
            local.directory, name=f"{self.name} (local endpoint)", chunk_size=chunk_size
        )

    def __repr__(self) -> str:
        return f"TransferRepository({str(self.root)!r}, name={self.name!r})"

    # ------------------------------------------------------------------ paths

    def location(self, path: str) -> Location:
        """Where the object at ``path`` is on the destination collection.

        Raises:
            UnsafePath: If ``path`` is unsafe (:func:`~provena_like.repositories.check_path`).

        Example:
            ```python
            assert repo.location("a/b.txt").path == repo.root.path.rstrip("/") + "/a/b.txt"
            ```
        """
        return self.root.joinpath(check_path(path))

    def _spooled(self) -> str:
        """A new spool path (relative to the local endpoint's directory)."""
        return f"{SPOOL}/{secrets.token_hex(8)}"

    def _on_local(self, spool_path: str) -> Location:
        return self.local.location.joinpath(spool_path)

    async def _discard(self, *spool_paths: str) -> None:
        with anyio.CancelScope(shield=True):
            for spool_path in spool_paths:
                await self._spool.delete(spool_path)

    # ------------------------------------------------------------------ tasks

    async def _wait(self, handle: TaskHandle, what: str) -> TaskResult:
        """Wait for a task; on anything but SUCCEEDED, cancel what still runs and raise."""
        try:
            result = await handle.wait(
                timeout=self.timeout, poll=self.poll, stuck_after=self.stuck_after
            )
        except BaseException:  # cancelled (or polling failed): the task must not go on
            await self._cancel(handle)
            raise
        if result.ok:
            return result
        if result.outcome is not TaskOutcome.FAILED:  # INACTIVE, STUCK, TIMED_OUT
            if await self._cancel(handle) == "TaskComplete":  # it ended meanwhile: how?
                result = await handle.wait(timeout=0, poll=self.poll)
                if result.ok:
                    return result
        raise self._task_error(result, what)

    async def _cancel(self, handle: TaskHandle) -> str | None:
        """Cancel a task we give up on; the service's answer (``None`` if there was none)."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(_CANCEL_TIMEOUT):
            try:
                return await handle.cancel()
            except APIError as err:  # the service is gone, or refuses
                log.warning("%s: cancelling task %s failed: %s", self.name, handle.task_id, err)
        return None

    def _task_error(self, result: TaskResult, what: str) -> TransferError:
        message = f"{self.name}: {what}: {result.describe()}"
        fatal = result.task.fatal_error
        if result.outcome is TaskOutcome.FAILED:
            texts = [f"{e.code} {e.description} {e.details or ''}" for e in result.events]
            if fatal is not None:
                texts.append(f"{fatal.code} {fatal.description}")
            if any("checksum" in text.lower() for text in texts):
                return ChecksumMismatch(message)
            if fatal is not None and fatal.code == "FILE_NOT_FOUND":
                return ObjectNotFound(message)
        return TaskFailed(message, task_id=result.task_id, outcome=result.outcome.value)

    async def _transfer(
        self,
        source: Location,
        destination: Location,
        items: list[tuple[str, str]] | None,
        what: str,
    ) -> TaskResult:
        handle = await self.client.transfer(
            source,
            destination,
            items,
            sync_level="checksum",
            verify_checksum=True,
            label=_label(f"{self.name} {what}"),
        )
        return await self._wait(handle, what)

    async def _entry(self, path: str) -> FileEntry | None:
        """The file at ``path`` (``operation_stat``), or ``None`` (missing, or a folder)."""
        try:
            entry = await self.client.stat(self.location(path))
        except NotFound:
            return None
        return entry if _is_object(entry) else None

    async def _concurrently(self, jobs: Iterable[Callable[[], Awaitable[None]]]) -> None:
        """Run ``jobs``, at most ``list_concurrency`` at a time and ``list_rate`` starts a second.

        The first error is raised as itself (the other jobs are cancelled), not in an
        ``ExceptionGroup``.
        """

        async def run(job: Callable[[], Awaitable[None]]) -> None:
            await self._list_rate.wait()
            await job()

        await each(jobs, run, limiter=self._list_limit)

    async def _entries(self, paths: Sequence[str]) -> dict[str, FileEntry | None]:
        """The files at ``paths`` (``None``: missing, or not a file).

        A lone file of its folder is asked for with ``operation_stat``, the files of a folder
        that holds several with one ``operation_ls`` of the folder.
        """
        folders: dict[str, builtins.list[str]] = {}
        for path in paths:
            folders.setdefault(path.rpartition("/")[0], []).append(path)
        found: dict[str, FileEntry | None] = {}

        async def look(folder: str, members: builtins.list[str]) -> None:
            if len(members) == 1:
                found[members[0]] = await self._entry(members[0])
                return
            try:
                listing = await self.client.ls(self.root.joinpath(folder))
            except NotFound:
                listing = None
            named = {} if listing is None else {e.name: e for e in listing.entries}
            for path in members:
                entry = named.get(path.rpartition("/")[2])
                found[path] = entry if entry is not None and _is_object(entry) else None

        await self._concurrently(
            functools.partial(look, folder, members) for folder, members in folders.items()
        )
        return found

    # ------------------------------------------------------------------ the contract

    async def put(
        self,
        local_path: Path | str | os.PathLike[str],
        path: str,
        *,
        progress: ProgressCallback | None = None,
    ) -> ObjectInfo:
        """Store a local file at ``path``: spool copy, one checksum-verified task, stat.

        Args:
            local_path: The file to store.
            path: Where, relative to the repository root.
            progress: Receives the events of one file: the bytes of the spool copy as they
                go, and ``FileFinished`` once the object is in place and checked.

        Raises:
            UnsafePath: If ``path`` is unsafe.
            TransferError: If the local file changed while it was copied.
            TaskFailed: If the task did not succeed (INACTIVE, stuck, timed out: cancelled).
            ChecksumMismatch: If the stored object is not what was sent.

        Example:
            ```python
            info = await repo.put("./a.b.npy", "m1/2024-01-31/001/a.b.npy")
            ```
        """
        (info,) = await self.put_many([(local_path, path)], progress=progress)
        return info

    async def put_many(
        self,
        items: Iterable[tuple[Path | str | os.PathLike[str], str]],
        *,
        progress: ProgressCallback | None = None,
    ) -> builtins.list[ObjectInfo]:
        """Store many local files in **one** transfer task (each object atomically).

        Every file is copied into the spool first (a snapshot, hashed), then one task moves
        them all; each object is then checked with ``operation_stat``. A task that fails
        leaves each object old or complete-new: which ones are new is not reported (put them
        again: ``sync_level="checksum"`` skips those already there).

        Args:
            items: ``(local file, repository path)`` pairs.
            progress: Receives the events of the batch (bytes of the spool copies, then
                ``FileFinished`` per file once all objects are in place and checked).

        Returns:
            The stored objects, in the order of ``items``.

        Raises:
            UnsafePath: If a path is unsafe (before anything is copied).
            UsageError: If a path is given twice.
            TransferError: As :meth:`put`.

        Example:
            ```python
            infos = await repo.put_many([("a.npy", "s/a.npy"), ("b.npy", "s/b.npy")])
            ```
        """
        pairs = [(Path(local), path) for local, path in items]
        for _, path in pairs:
            self.location(path)
        if len({path for _, path in pairs}) != len(pairs):
            raise UsageError("put_many() got the same repository path twice")
        if not pairs:
            return []
        spools = [self._spooled() for _ in pairs]
        sizes = await anyio.to_thread.run_sync(lambda: sum(os.stat(p).st_size for p, _ in pairs))
        relay = _Relay(
            progress, {s: path for s, (_, path) in zip(spools, pairs, strict=True)}, sizes
        )
        error: BaseException | None = None
        try:
            staged = [
                await self._spool.put(local, spool, progress=relay)
                for spool, (local, _) in zip(spools, pairs, strict=True)
            ]
            what = f"put {pairs[0][1]}" if len(pairs) == 1 else f"put {len(pairs)} files"
            await self._transfer(
                self.local.location,
                self.root,
                [(spool, path) for spool, (_, path) in zip(spools, pairs, strict=True)],
                what,
            )
            infos = []
            entries = await self._entries([path for _, path in pairs])
            for (_, path), snapshot in zip(pairs, staged, strict=True):
                entry = entries[path]
                if entry is None or entry.size != snapshot.size:
                    raise TransferError(
                        f"{self.name}: put {path}: the task succeeded but the object is "
                        f"{'missing' if entry is None else f'{entry.size} bytes'}, "
                        f"{snapshot.size} were sent"
                    )
                infos.append(
                    ObjectInfo(
                        path=path, size=snapshot.size, sha256=snapshot.sha256,
                        mtime=entry.last_modified,
                    )
                )  # fmt: skip
            for info in infos:
                await relay.finished(
                    FileResult(info.path, "ok", size=info.size, sha256=info.sha256)
                )
            return infos
        except APIError as err:
            err.add_note(f"{self.name}: put {', '.join(p for _, p in pairs[:3])}")
            error = err
            raise
        except BaseException as err:
            error = err
            raise
        finally:
            await relay.close(error)
            await self._discard(*spools)

    def local_relative(self, local_path: Path | str | os.PathLike[str]) -> str:
        """``local_path``'s path relative to the local endpoint's directory.

        Raises:
            UsageError: If it is not inside that directory (the endpoint can't reach it).
        """
        absolute = Path(local_path).absolute()
        try:
            relative = absolute.relative_to(self.local.directory)
        except ValueError:
            raise UsageError(
                f"{absolute} is not inside the local endpoint's directory "
                f"{self.local.directory}: the transfer service can't reach it"
            ) from None
        text = relative.as_posix()
        if text in ("", ".") or text.split("/")[0] == SPOOL:
            raise UsageError(f"{absolute} is not a file path the local endpoint may use")
        return check_path(text)

    async def send(
        self, items: Sequence[tuple[Path | str | os.PathLike[str], str]], *, what: str = "send"
    ) -> TaskResult:
        """Copy files of the local endpoint's directory here in **one** task, in place.

        Unlike :meth:`put_many` there is no spool copy (for large raw data that must not be
        copied twice): the task reads the files where they are, with
        ``sync_level="checksum"`` (a file already here with the same checksum is skipped)
        and ``verify_checksum=True``. A file changed while the task reads it fails the
        checksum; compare your own hash before and after to be sure of what was sent.

        Args:
            items: ``(local file inside the local endpoint's directory, repository path)``.
            what: Words for the task's label and errors.

        Returns:
            The task's result (SUCCEEDED).

        Raises:
            UsageError: If a local file is outside the local endpoint's directory.
            TaskFailed: If the task did not succeed (INACTIVE, stuck, timed out: cancelled).
            ChecksumMismatch: If a copy did not match its source.

        Example:
            ```python
            result = await repo.send([(laptop.directory / "s1/a.bin", "s1/a.bin")])
            print(result.task_id)
            ```
        """
        pairs = [(self.local_relative(local), check_path(path)) for local, path in items]
        if not pairs:
            raise UsageError("send() got no files")
        return await self._transfer(self.local.location, self.root, pairs, what)

    async def receive(
        self, items: Sequence[tuple[str, Path | str | os.PathLike[str]]], *, what: str = "receive"
    ) -> TaskResult:
        """Copy objects into the local endpoint's directory in **one** task, in place.

        The endpoint writes each file under a temp name and renames it when complete, so a
        reader sees the old file or the whole new one; ``sync_level="checksum"`` skips a
        file already there with the same checksum. Check the files' sha256 afterwards if
        you know them.

        Args:
            items: ``(repository path, local file inside the local endpoint's directory)``.
            what: Words for the task's label and errors.

        Returns:
            The task's result (SUCCEEDED).

        Raises:
            UsageError: If a local file is outside the local endpoint's directory.
            TaskFailed: If the task did not succeed (INACTIVE, stuck, timed out: cancelled).
            ObjectNotFound: If an object is missing.

        Example:
            ```python
            await repo.receive([("s1/a.bin", laptop.directory / "restore/s1/a.bin")])
            ```
        """
        pairs = [(check_path(path), self.local_relative(local)) for path, local in items]
        if not pairs:
            raise UsageError("receive() got no files")
        return await self._transfer(self.root, self.local.location, pairs, what)

    async def get(
        self,
        path: str,
        local_path: Path | str | os.PathLike[str],
        *,
        sha256: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> ObjectInfo:
        """Copy the object at ``path`` to ``local_path``: a task into the spool, then checked.

        The local file appears only after the task succeeded (checksum-verified), the size
        matched the object's and, when ``sha256`` is given, the sha256 matched.

        Raises:
            ObjectNotFound: If there is no object at ``path``.
            ChecksumMismatch: If the bytes don't match (``local_path`` is left untouched).
            RemoteChanged: If the object changed size while it was read.
            TaskFailed: If the task did not succeed.

        Example:
            ```python
            await repo.get("m1/2024-01-31/001/a.b.npy", "./a.b.npy", sha256=record.sha256)
            ```
        """
        target = self.location(path)
        entry = await self._entry(path)
        if entry is None:
            raise ObjectNotFound(f"{self.name}: no object at {path!r}")
        spool = self._spooled()
        relay = _Relay(progress, {spool: path}, entry.size or 0)
        error: BaseException | None = None
        try:
            await self._transfer(target, self._on_local(spool), None, f"get {path}")
            staged = await self._spool.stat(spool)
            if staged is None or staged.size != (entry.size or 0):
                raise RemoteChanged(
                    f"{self.name}: get {path}: {entry.size} bytes were listed, "
                    f"{None if staged is None else staged.size} arrived; read it again"
                )
            got = await self._spool.get(spool, local_path, sha256=sha256, progress=relay)
            result = replace(got, path=path, mtime=entry.last_modified)
            await relay.finished(FileResult(path, "ok", size=result.size, sha256=result.sha256))
            return result
        except BaseException as err:
            error = err
            raise
        finally:
            await relay.close(error)
            await self._discard(spool)

    async def stat(self, path: str, *, verify: bool = False) -> ObjectInfo | None:
        """The object's size and time (``operation_stat``); ``verify`` hashes a read-back copy.

        Args:
            path: The object.
            verify: Transfer the object back into the spool (checksum-verified) and compute
                its sha256 from the bytes received (see the module docstring).

        Example:
            ```python
            info = await repo.stat("m1/2024-01-31/001/a.b.npy", verify=True)
            ```
        """
        entry = await self._entry(path)
        if entry is None:
            return None
        info = ObjectInfo(path=path, size=entry.size or 0, mtime=entry.last_modified)
        if not verify:
            return info
        spool = self._spooled()
        try:
            try:
                await self._read_back(path, spool, verify_checksum=True)
            except ObjectNotFound:
                return None  # deleted since the stat
            except ChecksumMismatch:
                # the endpoint refused bytes that don't match its own record of them (our
                # service's S3 collections check the sha256 stored at upload): read them
                # back as they are stored, unchecked, and hash what arrives
                try:
                    await self._read_back(path, spool, verify_checksum=False)
                except ObjectNotFound:
                    return None
            staged = await self._spool.stat(spool, verify=True)
            if staged is None:
                raise TransferError(f"{self.name}: verify {path}: the read-back copy is gone")
            return replace(info, size=staged.size, sha256=staged.sha256)
        finally:
            await self._discard(spool)

    async def _read_back(self, path: str, spool: str, *, verify_checksum: bool) -> None:
        """Transfer the object at ``path`` into the spool path ``spool`` and wait for it."""
        handle = await self.client.transfer(
            self.location(path),
            self._on_local(spool),
            verify_checksum=verify_checksum,
            label=_label(f"{self.name} verify {path}"),
        )
        await self._wait(handle, f"verify {path}")

    async def verify_many(self, paths: Sequence[str]) -> dict[str, ObjectInfo]:
        """The sizes and sha256 of many objects, read back in **one** task (see :meth:`stat`).

        The objects are copied into the spool (``verify_checksum=True``), hashed there and
        removed: a full read of each, as ``stat(verify=True)`` does for one.

        Raises:
            TaskFailed: If the task did not succeed (cancelled unless it FAILED).
            ObjectNotFound: If an object is missing.

        Example:
            ```python
            infos = await repo.verify_many(["s/a.bin", "s/b.bin"])
            print(infos["s/a.bin"].sha256)
            ```
        """
        wanted = [check_path(path) for path in paths]
        if not wanted:
            return {}
        spools = {path: self._spooled() for path in wanted}
        try:
            await self._transfer(
                self.root,
                self.local.location,
                list(spools.items()),
                f"verify {len(wanted)} files",
            )
            found: dict[str, ObjectInfo] = {}
            for path, spool in spools.items():
                staged = await self._spool.stat(spool, verify=True)
                if staged is None:
                    raise TransferError(f"{self.name}: verify {path}: the read-back copy is gone")
                found[path] = ObjectInfo(path=path, size=staged.size, sha256=staged.sha256)
            return found
        finally:
            await self._discard(*spools.values())

    async def delete(self, path: str) -> None:
        """Delete the object at ``path`` with a delete task (a missing object is fine).

        Example:
            ```python
            await repo.delete("m1/2024-01-31/001/a.b.npy")
            ```
        """
        await self.delete_many([path])

    async def delete_many(self, paths: Iterable[str]) -> None:
        """Delete many objects with **one** delete task (missing ones are fine).

        Raises:
            UnsafePath: If a path is unsafe (before anything is deleted).
            TaskFailed: If the task did not succeed.

        Example:
            ```python
            await repo.delete_many(["s/a.npy", "s/b.npy"])
            ```
        """
        wanted = [check_path(path) for path in paths]
        if not wanted:
            return
        what = f"delete {wanted[0]}" if len(wanted) == 1 else f"delete {len(wanted)} files"
        try:
            handle = await self.client.delete(
                self.root, wanted, ignore_missing=True, label=_label(f"{self.name} {what}")
            )
        except APIError as err:
            err.add_note(f"{self.name}: {what}")
            raise
        await self._wait(handle, what)

    async def _walk(self, prefix: str, *, temps: bool) -> builtins.list[ObjectInfo]:
        """The files under the root whose path starts with ``prefix`` (or the temp files)."""
        folder = prefix.rpartition("/")[0]
        found: builtins.list[ObjectInfo] = []
        level = [folder]

        async def one(directory: str, below: builtins.list[str]) -> None:
            try:
                listing = await self.client.ls(self.root.joinpath(directory))
            except NotFound:
                return  # gone (or never there)
            except ServerError as err:
                if err.code == _NOT_DIRECTORY:
                    return  # a file where the prefix has a folder
                raise
            for entry in listing.entries:
                rel = f"{directory}/{entry.name}" if directory else entry.name
                if entry.is_dir:
                    if entry.name != SPOOL and (
                        (rel + "/").startswith(prefix) or prefix.startswith(rel + "/")
                    ):
                        below.append(rel)
                elif _is_object(entry) and _is_temp(entry.name) == temps and rel.startswith(prefix):
                    found.append(
                        ObjectInfo(path=rel, size=entry.size or 0, mtime=entry.last_modified)
                    )

        while level:
            below: builtins.list[str] = []
            await self._concurrently(
                functools.partial(one, directory, below) for directory in level
            )
            level = below
        found.sort(key=lambda info: info.path)
        return found

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield the objects whose path starts with ``prefix``, in path order.

        Files only (sizes and times as ``operation_ls`` shows them, no sha256): temp files
        of writes, symlinks and the spool folder are not objects.

        Example:
            ```python
            paths = [o.path async for o in repo.list("m1/")]
            ```
        """
        check_prefix(prefix)
        for info in await self._walk(prefix, temps=False):
            yield info

    async def incomplete(self, prefix: str = "") -> builtins.list[ObjectInfo]:
        """Temp files of writes in progress or interrupted, under the root (never objects).

        Example:
            ```python
            leftovers = await repo.incomplete()
            ```
        """
        check_prefix(prefix)
        return await self._walk(prefix, temps=True)

    async def spooled(self) -> builtins.list[ObjectInfo]:
        """Files left in the local endpoint's spool (by a process killed mid-operation).

        Paths are relative to the local endpoint's directory; delete them with
        :meth:`discard_spooled`.

        Example:
            ```python
            assert await repo.spooled() == []
            ```
        """
        objects = [info async for info in self._spool.list(f"{SPOOL}/")]
        return objects + await self._spool.incomplete(f"{SPOOL}/")

    async def discard_spooled(self) -> builtins.list[ObjectInfo]:
        """Delete the files left in the spool (none may be in use); returns them.

        Example:
            ```python
            removed = await repo.discard_spooled()
            ```
        """
        left = await self.spooled()
        await self._spool.discard_incomplete(prefix=f"{SPOOL}/")
        for info in left:
            await self._spool.delete(info.path)
        return left
