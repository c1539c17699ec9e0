"""The task executor: runs transfer and delete tasks on the server's job runner.

:class:`TaskExecutor` registers the handlers of the job kinds ``transfer`` and ``delete``.
A transfer runs in two phases, both resumable:

1. **Expand** the submitted items once: a file item is one file; a directory (``recursive``,
   or not set) is walked breadth first over the source collection, hidden files included as
   Globus does, symlinks leading nowhere or outside skipped (``recursive_symlinks: ignore``);
   ``filter_rules`` are tried in order on each name and the first match wins (an excluded
   directory is not entered). Each directory and file becomes a
   :class:`~provena_like.server.transfer.task_tables.TaskItemRow`; the job's progress then
   says ``expanded``.
2. **Copy** the pending rows in batches (at most :data:`BATCH_FILES` files, the directories
   among them not counted, and, beyond the first file, :data:`BATCH_BYTES` bytes), a few
   files at a time: the ``sync_level`` (0 exists, 1 size, 2 the destination older than
   the source, 3 sha256) decides against the destination whether a file is copied
   (without one, and without ``preserve_timestamp``, the size the expansion saw is used and
   the source is not looked at again); a copy never
   leaves a half-written destination file (POSIX destinations: a temp file beside it,
   ``fsync``, atomic rename; S3 destinations: one PUT or a completed multipart upload);
   ``verify_checksum`` reads the written bytes back (POSIX), or relies on the sha256 the
   object store checks on upload and the engine checks on download (an S3 download is
   hashed only then: without ``verify_checksum``, which Globus defaults to false, only its
   size is checked, as Globus checks no checksum then either; uploads are always hashed,
   their sha256 is stored with the object); ``preserve_timestamp`` sets a
   POSIX destination's mtime (S3 keeps its own). S3 sides are moved by the transfer engine
   (:class:`~provena_like.storage.engine.TransferEngine`) with the owner's scoped credentials
   for the dataset, S3 to S3 by server-side ``CopyObject``. After each batch the rows (one
   executemany) and the task's counters are written and the job checkpointed, while the next
   batch copies: a task taken over after a crash resumes with the rows not yet done (a file
   copied but not recorded is copied again, over the complete file the rename left).

``delete_destination_extra`` deletes, after the copy, the destination files of recursive
items that the source doesn't have. A missing source fails the task at once with the fatal
error ``FILE_NOT_FOUND`` and an event (**unlike Globus**, which keeps the task ACTIVE and
retries until the deadline); with ``skip_source_errors`` it is a skipped error instead.
Past its ``deadline`` a task ends FAILED (``DEADLINE_EXCEEDED``). A cancel (see the cancel
route) ends the task FAILED with ``CANCELED`` and stops the handler at its next checkpoint or
heartbeat.

A delete expands its paths (``interpret_globs``: the last segment is a glob matched in its
directory), refuses a missing path unless ``ignore_missing``, and deletes each (a directory
only when ``recursive``).
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import anyio.to_thread
from sqlalchemy import Table, bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from provena_like.server.datastore import storage
from provena_like.server.db.base import utcnow
from provena_like.server.errors import ServiceError, task_group
from provena_like.server.jobs import JobCanceled, JobContext, JobLeaseLost, JobRunner
from provena_like.server.security import Principal, load_principal
from provena_like.server.transfer.backend import FileInfo
from provena_like.server.transfer.collections import Collection, open_collection
from provena_like.server.transfer.errors import TransferAPIError
from provena_like.server.transfer.paths import ResolvedPath, normalise
from provena_like.server.transfer.posix import PosixBackend
from provena_like.server.transfer.s3 import S3Backend
from provena_like.server.transfer.task_tables import TaskItemRow, TaskRow
from provena_like.server.transfer.tasks import ACTIVE, add_event, finish
from provena_like.server.transfer.watch import changed_on_commit
from provena_like.storage.credentials import RefreshingCredentials, S3Credentials
from provena_like.storage.engine import TransferEngine

__all__ = [
    "BATCH_BYTES",
    "BATCH_FILES",
    "ENGINE_CONCURRENCY",
    "FILES_AT_ONCE",
    "TaskExecutor",
    "file_sha256",
    "matches_rules",
]

log = logging.getLogger(__name__)

BATCH_FILES = 1000
"""The most files copied between two checkpoints of a task (directories not counted)."""

_BATCH_DIRECTORIES = 256
"""Rows beyond :data:`BATCH_FILES` read for a batch, for the directories among its files: a
tree of 2,000 files in 10 folders is two batches (and two engine calls), not three."""

BATCH_BYTES = 16 << 20
"""A batch ends once its files add up to this many bytes (it holds at least one file)."""

FILES_AT_ONCE = 4
"""Files of one task copied at the same time (POSIX copies, S3 copies and stats)."""

ENGINE_CONCURRENCY = 16
"""Requests in flight at once in a task's transfer engine (per S3 side)."""

_CHUNK = 1 << 20


class _Fatal(Exception):  # noqa: N818 - a signal: end the task FAILED with this error
    def __init__(self, code: str, description: str, details: str = "") -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.details = details or description


def matches_rules(rules: Sequence[Mapping[str, Any]], name: str, *, is_dir: bool) -> bool:
    """Whether ``name`` is transferred under the filter ``rules`` (first match wins).

    Example:
        ```python
        rules = [{"method": "exclude", "name": "*.tmp", "type": "file"}]
        assert matches_rules(rules, "a.csv", is_dir=False)
        assert not matches_rules(rules, "a.tmp", is_dir=False)
        assert matches_rules(rules, "a.tmp", is_dir=True)
        ```
    """
    kind = "dir" if is_dir else "file"
    for rule in rules:
        if rule.get("type") not in (None, kind):
            continue
        if fnmatch.fnmatchcase(name, str(rule["name"])):
            return bool(rule["method"] == "include")
    return True


def _fatal_of(err: TransferAPIError) -> _Fatal:
    if err.status == 404:
        return _Fatal("FILE_NOT_FOUND", "a source path was not found", err.message)
    if err.status == 403:
        return _Fatal("PERMISSION_DENIED", "permission denied", err.message)
    return _Fatal("ENDPOINT_ERROR", err.code, err.message)


def _sha256_fd(fd: int) -> str:
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


async def file_sha256(collection: Collection, path: ResolvedPath) -> str | None:
    """The sha256 of a file of a collection.

    A POSIX file is read; an S3 object's stored sha256 is used (``None`` when it has none, or
    is gone).

    Raises:
        TransferAPIError: The POSIX file can't be opened (404 missing, 403 outside the root).
    """
    backend = collection.backend
    if isinstance(backend, PosixBackend):
        return await anyio.to_thread.run_sync(lambda: _sha256_fd(backend.open_read(path)))
    head = await storage.head_object(backend.store, backend.key(path))
    if head is None:
        return None
    return head.sha256 or head.metadata.get("sha256")


@dataclass
class _Copied:
    """How one file went: ``done`` (copied), ``skipped`` (sync), ``error`` or ``failed``."""

    state: str
    size: int = 0
    checksum: str | None = None
    checksummed: int = 0
    error: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class _Item:
    """What the copy needs of a pending :class:`TaskItemRow`.

    Plain columns, no ORM object: loading 1,000 ORM instances per batch cost more event-loop
    time than the rest of the batch's bookkeeping.
    """

    seq: int
    source_path: str
    destination_path: str | None
    is_directory: bool
    size: int | None


_ITEM_COLUMNS = (
    TaskItemRow.seq,
    TaskItemRow.source_path,
    TaskItemRow.destination_path,
    TaskItemRow.is_directory,
    TaskItemRow.size,
)
_ITEMS: Table = TaskItemRow.__table__  # type: ignore[assignment]  # a mapped Table
_RECORD_ITEM = (
    update(_ITEMS)
    .where(_ITEMS.c.task_id == bindparam("b_task"), _ITEMS.c.seq == bindparam("b_seq"))
    .values(
        state=bindparam("b_state", type_=_ITEMS.c.state.type),
        checksum=bindparam("b_checksum", type_=_ITEMS.c.checksum.type),
        error=bindparam("b_error", type_=_ITEMS.c.error.type),
        updated_at=bindparam("b_at", type_=_ITEMS.c.updated_at.type),
    )
)
"""One item's outcome, by primary key: a Core executemany (the ORM's bulk UPDATE by primary
key builds its parameters through the mapper, row by row)."""


async def _pending_items(
    session: AsyncSession, task_id: str, *, after: int = -1, limit: int | None = None
) -> list[_Item]:
    """The task's pending items after ``seq`` ``after``, in order (at most ``limit``)."""
    query = (
        select(*_ITEM_COLUMNS)
        .where(
            TaskItemRow.task_id == task_id,
            TaskItemRow.state == "pending",
            TaskItemRow.seq > after,
        )
        .order_by(TaskItemRow.seq)
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        _Item(seq, source, destination, bool(is_dir), size)
        for seq, source, destination, is_dir, size in (await session.execute(query)).all()
    ]


class _Run:
    """One attempt at one transfer task: the two collections and their engines."""

    def __init__(
        self,
        executor: TaskExecutor,
        ctx: JobContext,
        row: TaskRow,
        source: Collection,
        dest: Collection,
        stack: AsyncExitStack,
    ) -> None:
        self.executor = executor
        self.ctx = ctx
        self.task_id = row.task_id
        self.owner = row.owner
        self.options = row.options
        self.deadline = row.deadline
        self.source = source
        self.dest = dest
        self.stack = stack
        self.sync_level: int | None = self.options.get("sync_level")
        self.verify = bool(self.options.get("verify_checksum"))
        self.preserve = bool(self.options.get("preserve_timestamp"))
        self.skip_errors = bool(self.options.get("skip_source_errors"))
        self.limit = anyio.CapacityLimiter(FILES_AT_ONCE)
        self._engines: dict[str, TransferEngine] = {}

    async def engine(self, collection: Collection, *, write: bool) -> TransferEngine:
        """The transfer engine of an S3 collection, with the owner's scoped credentials."""
        backend = collection.backend
        assert isinstance(backend, S3Backend)
        key = f"{collection.id}:{write}"
        if key not in self._engines:
            access: Any = "write" if write else "read"

            async def issue() -> S3Credentials:  # again before they expire: long tasks go on
                return await backend.engine_credentials(self.owner, access=access)

            creds = RefreshingCredentials(issue)
            engine = TransferEngine(
                creds,
                max_concurrency=ENGINE_CONCURRENCY,
                resume=False,
                cache_dir=self.executor.cache_dir,
                # uploads always send (and store) their sha256; downloads check it only when
                # the task asks (``verify_checksum``), as Globus does
                checksum=write or self.verify,
            )
            self._engines[key] = await self.stack.enter_async_context(engine)
        return self._engines[key]

    # -- sync levels -----------------------------------------------------------------------

    async def _checksum(self, collection: Collection, path: ResolvedPath) -> str | None:
        return await file_sha256(collection, path)

    async def _stat(self, collection: Collection, path: ResolvedPath) -> FileInfo | None:
        try:
            return await collection.backend.stat(path)
        except TransferAPIError as err:
            if err.status == 404:
                return None
            raise

    async def needs_copy(self, src: ResolvedPath, dst: ResolvedPath, src_info: FileInfo) -> bool:
        """Whether the sync level asks for ``src`` to be copied over ``dst``."""
        level = self.sync_level
        if level is None:
            return True
        dst_info = await self._stat(self.dest, dst)
        if dst_info is None or dst_info.is_dir:
            return True
        if level == 0:
            return False
        if dst_info.size != src_info.size:
            return True
        if level == 1:
            return False
        if level == 2:
            if src_info.last_modified is None or dst_info.last_modified is None:
                return True
            return dst_info.last_modified < src_info.last_modified
        ours = await self._checksum(self.source, src)
        theirs = await self._checksum(self.dest, dst)
        return ours is None or ours != theirs

    # -- copying ---------------------------------------------------------------------------

    def _stop_if_canceled(self) -> None:
        # a lease lost (its renewal was late, or the job was taken over): stop writing, and
        # let the runner leave the job to lapse and run again, not end it as canceled
        if self.ctx._lost:
            raise JobLeaseLost(f"task {self.task_id}: this worker no longer holds its job")
        if self.ctx.cancel_requested:
            raise JobCanceled(f"task {self.task_id} was canceled")

    def _posix_copy(self, src: ResolvedPath, dst: ResolvedPath, mtime: datetime | None) -> _Copied:
        source = self.source.backend
        dest = self.dest.backend
        assert isinstance(source, PosixBackend) and isinstance(dest, PosixBackend)
        fd_in = source.open_read(src)
        try:
            dest.ensure_dir(dst.parent)
            parent = dest.local_path(dst.parent)
            dir_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except BaseException:
            os.close(fd_in)
            raise
        # one temp name per task and file: a copy cut short by a crash is overwritten by the
        # next attempt's, never left behind
        temp = f".{dst.name[:200]}.provena-tmp-{self.task_id[:8]}"
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
            fd_out = os.open(temp, flags, 0o644, dir_fd=dir_fd)
            digest = hashlib.sha256()
            size = 0
            with os.fdopen(fd_in, "rb") as fin, os.fdopen(fd_out, "wb") as fout:
                fd_in = -1
                while chunk := fin.read(_CHUNK):
                    self._stop_if_canceled()
                    digest.update(chunk)
                    fout.write(chunk)
                    size += len(chunk)
                fout.flush()
                os.fsync(fout.fileno())
            checksum = digest.hexdigest()
            checksummed = 0
            if self.verify:
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
                back = _sha256_fd(os.open(temp, flags, dir_fd=dir_fd))
                if back != checksum:
                    raise OSError(errno.EIO, f"checksum mismatch: {back} != {checksum}")
                checksummed = size
            if self.preserve and mtime is not None:
                stamp = mtime.timestamp()
                os.utime(temp, (stamp, stamp), dir_fd=dir_fd, follow_symlinks=False)
            self._stop_if_canceled()  # a canceled task never puts a file in place
            os.replace(temp, dst.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.fsync(dir_fd)
            return _Copied("done", size, checksum, checksummed)
        except BaseException:
            if fd_in >= 0:
                os.close(fd_in)
            try:
                os.unlink(temp, dir_fd=dir_fd)
            except OSError:
                pass
            raise
        finally:
            os.close(dir_fd)

    async def copy_s3(
        self, pairs: list[tuple[_Item, ResolvedPath, ResolvedPath, FileInfo]]
    ) -> dict[int, _Copied]:
        """Copy files with an S3 side: the engine (with POSIX) or CopyObject (S3 to S3)."""
        out: dict[int, _Copied] = {}
        source, dest = self.source.backend, self.dest.backend
        if isinstance(source, S3Backend) and isinstance(dest, S3Backend):

            async def one(item: _Item, src: ResolvedPath, dst: ResolvedPath, size: int) -> None:
                async with self.limit:
                    try:
                        await storage.copy_object(
                            source.store, source.key(src), dest.key(dst), size=size
                        )
                        checksum = None
                        if self.verify:
                            checksum = await self._checksum(self.dest, dst)
                            expected = await self._checksum(self.source, src)
                            if expected is not None and checksum != expected:
                                raise OSError(errno.EIO, "checksum mismatch after the copy")
                        out[item.seq] = _Copied("done", size, checksum, size if self.verify else 0)
                    except (OSError, ServiceError) as err:
                        out[item.seq] = self.failed(err)

            async with task_group() as group:
                for item, src, dst, info in pairs:
                    group.start_soon(one, item, src, dst, info.size)
            return out
        if isinstance(dest, S3Backend):  # POSIX to S3: upload
            assert isinstance(source, PosixBackend)
            engine = await self.engine(self.dest, write=True)
            by_key = {dest.key(dst)[len(dest.prefix) :]: item for item, _, dst, _ in pairs}
            upload: list[tuple[Any, str]] = []

            def locate() -> None:  # realpath checks: blocking, so in one worker thread
                parents: dict[tuple[str, ...], str] = {}  # each folder resolved once
                for item, src, dst, _ in pairs:
                    try:
                        local = source.local_path(src, parents=parents)
                        upload.append((local, dest.key(dst)[len(dest.prefix) :]))
                    except TransferAPIError as err:
                        out[item.seq] = self.failed(err)

            await anyio.to_thread.run_sync(locate)
            result = await engine.upload(upload)
            for done in result.files:
                out[by_key[done.path].seq] = self._engine_result(done)
            return out
        else:  # S3 to POSIX: one download of the whole batch, under its folders' common root
            assert isinstance(source, S3Backend) and isinstance(dest, PosixBackend)
            engine = await self.engine(self.source, write=False)
            by_key = {source.key(src)[len(source.prefix) :]: item for item, src, _, _ in pairs}
            parents: dict[ResolvedPath, str | TransferAPIError] = {}

            def make_parents() -> None:  # each destination directory once, in one thread
                for _, _, dst, _ in pairs:
                    if dst.parent not in parents:
                        try:
                            dest.ensure_dir(dst.parent)
                            parents[dst.parent] = str(dest.local_path(dst.parent))
                        except TransferAPIError as err:
                            parents[dst.parent] = err

            await anyio.to_thread.run_sync(make_parents)
            placed: list[tuple[_Item, ResolvedPath, str, int]] = []
            for item, src, dst, info in pairs:
                parent = parents[dst.parent]
                if isinstance(parent, TransferAPIError):
                    out[item.seq] = self.failed(parent)
                    continue
                placed.append((item, src, os.path.join(parent, dst.name), info.size))
            if not placed:
                return out
            # one engine call for the batch, not one per folder all at once (their files
            # contended for the same request slots, and each call plans and reports apart);
            # the engine makes and checks each level below the root again (no symlink out)
            root = os.path.dirname(placed[0][2])
            if len(placed) > 1:
                root = os.path.commonpath([os.path.dirname(p) for _, _, p, _ in placed])
            specs = [
                (source.key(src)[len(source.prefix) :], os.path.relpath(path, root), None, size)
                for _, src, path, size in placed
            ]
            result = await engine.download(specs, root)
            for done in result.files:
                out[by_key[done.path].seq] = self._engine_result(done)
            return out

    def _engine_result(self, done: Any) -> _Copied:
        if done.status == "ok":
            size = int(done.size or 0)
            return _Copied("done", size, done.sha256, size if done.sha256 else 0)
        return self.failed(done.error or OSError(errno.EIO, str(done.reason)))

    def failed(self, err: BaseException) -> _Copied:
        """The outcome of a file whose copy failed."""
        if isinstance(err, TransferAPIError):
            code = "FILE_NOT_FOUND" if err.status == 404 else "PERMISSION_DENIED"
            if err.status not in (403, 404):
                code = "ENDPOINT_ERROR"
            details = err.message
        elif isinstance(err, FileNotFoundError) or (
            isinstance(err, Exception) and storage.is_missing(err)
        ):  # a source gone since the expansion (the engine's errors)
            code, details = "FILE_NOT_FOUND", f"{type(err).__name__}: {err}"
        else:
            code, details = "ENDPOINT_ERROR", f"{type(err).__name__}: {err}"
        state = "error" if self.skip_errors and code == "FILE_NOT_FOUND" else "failed"
        return _Copied(state, error={"code": code, "details": details, "time": _now()})

    async def copy_posix(self, src: ResolvedPath, dst: ResolvedPath, info: FileInfo) -> _Copied:
        """Copy one file between two POSIX collections."""
        async with self.limit:
            try:
                return await anyio.to_thread.run_sync(
                    self._posix_copy, src, dst, info.last_modified
                )
            except (OSError, TransferAPIError) as err:
                return self.failed(err)


def _batch(rows: list[_Item]) -> list[_Item]:
    """The rows of the next batch, at least one.

    The first rows that hold at most :data:`BATCH_FILES` files (directories not counted)
    and :data:`BATCH_BYTES` bytes.

    Example:
        ```python
        rows = [_Item(0, "/d/", "/e/", True, None)]
        rows += [_Item(n, f"/d/{n}", f"/e/{n}", False, 10) for n in range(1, 1101)]
        assert [len(_batch(rows)), _batch(rows)[-1].seq] == [1001, 1000]
        big = [_Item(n, f"/{n}", f"/{n}", False, BATCH_BYTES) for n in range(3)]
        assert len(_batch(big)) == 1
        ```
    """
    total = files = 0
    for n, row in enumerate(rows):
        if row.is_directory:
            continue
        total += row.size or 0
        files += 1
        if (total > BATCH_BYTES or files > BATCH_FILES) and n > 0:
            return rows[:n]
    return rows


def _now() -> str:
    return utcnow().replace(microsecond=0).isoformat()


class TaskExecutor:
    """Runs the transfer service's tasks (job kinds ``transfer`` and ``delete``).

    Args:
        app: the server app (sessions, settings, object store).
        max_attempts: attempts of a task's job (a crash of the server costs one).
    """

    def __init__(self, app: Starlette, *, max_attempts: int = 5) -> None:
        self.app = app
        self.max_attempts = max_attempts

    @property
    def cache_dir(self) -> str:
        """Where the transfer engines keep their hash caches (under the data dir)."""
        return str(self.app.state.settings.data_dir / "transfer-cache")

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        """The app's session factory."""
        factory: async_sessionmaker[AsyncSession] = self.app.state.sessions
        return factory

    def register(self, runner: JobRunner) -> None:
        """Register the handlers on ``runner``."""
        runner.register("transfer", self.run_transfer, max_attempts=self.max_attempts)
        runner.register("delete", self.run_delete, max_attempts=self.max_attempts)

    # -- shared ----------------------------------------------------------------------------

    async def _task(self, task_id: str) -> TaskRow | None:
        async with self.sessions() as session:
            return await session.get(TaskRow, task_id)

    async def _principal(self, owner: str) -> Principal:
        async with self.sessions() as session:
            try:
                return await load_principal(session, {"sub": owner})
            except ServiceError as err:
                raise _Fatal(
                    "PERMISSION_DENIED", "the task's owner can't act", err.message
                ) from err

    async def _event(self, task_id: str, code: str, description: str, details: str = "") -> None:
        async with self.sessions() as session, session.begin():
            await add_event(session, task_id, code, description, details)

    async def _fail(self, task_id: str, fatal: _Fatal) -> None:
        async with self.sessions() as session, session.begin():
            await finish(
                session,
                task_id,
                "FAILED",
                fatal_error={"code": fatal.code, "description": fatal.description},
                event=(fatal.code, fatal.description, fatal.details),
            )

    def _check_deadline(self, row: TaskRow) -> None:
        if utcnow() > row.deadline:
            raise _Fatal(
                "DEADLINE_EXCEEDED",
                "the task's deadline passed",
                f"The deadline {row.deadline.isoformat()} passed before the task completed.",
            )

    async def _guarded(self, ctx: JobContext, kind: str) -> dict[str, Any]:
        task_id = str(ctx.payload["task_id"])
        row = await self._task(task_id)
        if row is None or row.status != ACTIVE:
            return {"status": row.status if row else "missing"}
        try:
            self._check_deadline(row)
            if not ctx.progress:
                await self._event(task_id, "STARTED", "started", f"The {kind} started.")
            if kind == "transfer":
                await self._transfer(ctx, row)
            else:
                await self._delete(ctx, row)
        except JobCanceled:
            raise
        except _Fatal as fatal:
            await self._fail(task_id, fatal)
        except TransferAPIError as err:
            await self._fail(task_id, _fatal_of(err))
        except Exception as err:
            log.exception("transfer task %s failed", task_id)
            detail = f"{type(err).__name__}: {err}"
            await self._fail(task_id, _Fatal("SERVER_ERROR", "the server failed", detail))
        ended = await self._task(task_id)
        return {"status": ended.status if ended else "missing"}

    async def run_transfer(self, ctx: JobContext) -> dict[str, Any]:
        """The handler of ``transfer`` jobs."""
        return await self._guarded(ctx, "transfer")

    async def run_delete(self, ctx: JobContext) -> dict[str, Any]:
        """The handler of ``delete`` jobs."""
        return await self._guarded(ctx, "delete")

    async def _add_items(self, task_id: str, entries: list[dict[str, Any]]) -> None:
        async with self.sessions() as session, session.begin():
            for start in range(0, len(entries), 500):  # bulk INSERTs, not one object each
                await session.execute(  # Core, not the ORM's bulk insert: a third of the cost
                    insert(_ITEMS),
                    [
                        {"task_id": task_id, "seq": n, **entry}
                        for n, entry in enumerate(entries[start : start + 500], start)
                    ],
                )
            files = sum(1 for e in entries if not e["is_directory"])
            errors = sum(1 for e in entries if e["state"] == "error")
            changed_on_commit(session, task_id)
            await session.execute(
                update(TaskRow)
                .where(TaskRow.task_id == task_id, TaskRow.status == ACTIVE)
                .values(
                    files=files,
                    directories=len(entries) - files,
                    subtasks_skipped_errors=errors,
                    nice_status="OK",
                )
            )
            for entry in entries:
                if entry["state"] == "error":
                    error = entry["error"] or {}
                    await add_event(
                        session,
                        task_id,
                        str(error.get("code", "FILE_NOT_FOUND")),
                        "a source error was skipped",
                        f"{entry['source_path']}: {error.get('details', '')}",
                        is_error=True,
                    )

    # -- transfer --------------------------------------------------------------------------

    async def _listed(
        self, run: _Run, source: Collection, path: ResolvedPath
    ) -> list[tuple[str, int, datetime | None]]:
        """Every object under the S3 directory ``path``, through the task's read engine.

        ``(full key, size, last modified)``; the engine's own listing (its direct path
        parses a page of 1,000 keys in about a third of botocore's time, and the engine is
        the one the copy uses, opened once).
        """
        backend = source.backend
        assert isinstance(backend, S3Backend)
        engine = await run.engine(source, write=False)
        start = len(backend.prefix)
        return [
            (backend.prefix + obj.key, obj.size, obj.last_modified)
            async for obj in engine.list(backend.dir_key(path)[start:])
        ]

    async def _expand(self, run: _Run, row: TaskRow, source: Collection) -> list[dict[str, Any]]:
        options = row.options
        rules: list[dict[str, Any]] = options.get("filter_rules") or []
        skip_errors = bool(options.get("skip_source_errors"))
        entries: list[dict[str, Any]] = []

        def entry(src: ResolvedPath, dst: ResolvedPath, info: FileInfo | None, **kw: Any) -> None:
            is_dir = bool(info and info.is_dir)
            entries.append(
                {
                    "source_path": src.display if not is_dir else src.as_dir,
                    "destination_path": dst.display if not is_dir else dst.as_dir,
                    "is_directory": is_dir,
                    "size": info.size if info and not is_dir else None,
                    "state": "pending",
                    "checksum": None,
                    "error": None,
                    **kw,
                }
            )

        for item in options["DATA"]:
            src = normalise(item["source_path"])
            dst = normalise(item["destination_path"])
            try:
                info = await source.backend.stat(src)
            except TransferAPIError as err:
                if err.status != 404:
                    raise
                if not skip_errors:
                    raise _Fatal(
                        "FILE_NOT_FOUND", "a source path was not found", err.message
                    ) from err
                error = {"code": "FILE_NOT_FOUND", "details": err.message, "time": _now()}
                entry(src, dst, None, state="error", error=error)
                continue
            if not info.is_dir:
                entry(src, dst, info)
                continue
            if item.get("recursive") is False:
                raise _Fatal(
                    "ENDPOINT_ERROR",
                    "a directory was given as a file",
                    f"{src.display} is a directory: transfer it with recursive set.",
                )
            queue = [(src, dst)]
            entry(src, dst, info)
            backend = source.backend
            tree = None
            if isinstance(backend, S3Backend):  # the whole tree from one listing
                tree = await backend.walk(src, await self._listed(run, source, src))
            while queue:
                here, there = queue.pop(0)
                if tree is not None:  # the whole tree from one listing
                    listing = tree.get(here.parts[len(src.parts) :], [])
                else:
                    listing = await backend.list_dir(here)
                for child in listing:
                    if child.type == "invalid_symlink":
                        continue
                    if not matches_rules(rules, child.name, is_dir=child.is_dir):
                        continue
                    s, d = here.child(child.name), there.child(child.name)
                    entry(s, d, child)
                    if child.is_dir:
                        queue.append((s, d))
        return entries

    async def _transfer(self, ctx: JobContext, row: TaskRow) -> None:
        principal = await self._principal(row.owner)
        options = row.options
        source = await open_collection(self.app, principal, options["source_endpoint"], write=False)
        dest = await open_collection(
            self.app, principal, options["destination_endpoint"], write=True
        )
        async with AsyncExitStack() as stack:
            run = _Run(self, ctx, row, source, dest, stack)
            if not ctx.progress.get("expanded"):
                async with self.sessions() as session, session.begin():  # a retried expansion
                    await session.execute(
                        delete(TaskItemRow).where(TaskItemRow.task_id == row.task_id)
                    )
                entries = await self._expand(run, row, source)
                await self._add_items(row.task_id, entries)
                await ctx.checkpoint({"expanded": True})
            done: tuple[list[_Item], dict[int, _Copied]] | None = None
            after = -1
            read_all = False
            while not read_all:
                self._check_deadline(row)
                limit = BATCH_FILES + _BATCH_DIRECTORIES
                async with self.sessions() as session:  # after the last batch: not yet recorded
                    rows = await _pending_items(session, row.task_id, after=after, limit=limit)
                if not rows:
                    break
                batch = _batch(rows)
                after = batch[-1].seq
                read_all = len(rows) < limit and len(batch) == len(rows)  # none left to read
                # the last batch is recorded (and the job checkpointed) while this one copies:
                # a crash in between only means copying again files not yet recorded
                async with task_group() as group:
                    if done is not None:
                        group.start_soon(self._record_batch, ctx, row.task_id, *done)
                    done = (batch, await self._copy_batch(run, batch))
            if done is not None:
                await self._record_batch(ctx, row.task_id, *done)
            if options.get("delete_destination_extra"):
                await self._delete_extra(run)
        await self._conclude(row.task_id)

    async def _record_batch(
        self, ctx: JobContext, task_id: str, batch: list[_Item], outcomes: dict[int, _Copied]
    ) -> None:
        await self._record(task_id, batch, outcomes)
        await ctx.checkpoint({"expanded": True, "through": batch[-1].seq})

    async def _copy_batch(self, run: _Run, batch: list[_Item]) -> dict[int, _Copied]:
        out: dict[int, _Copied] = {}
        for item in batch:  # directories first: they come before their files
            if not item.is_directory:
                continue
            dst = normalise(item.destination_path)
            try:
                if isinstance(run.dest.backend, PosixBackend):
                    await anyio.to_thread.run_sync(run.dest.backend.ensure_dir, dst)
                out[item.seq] = _Copied("done")
            except TransferAPIError as err:
                out[item.seq] = run.failed(err)
        files = [i for i in batch if not i.is_directory]
        todo: list[tuple[_Item, ResolvedPath, ResolvedPath, FileInfo]] = []

        async def decide(item: _Item) -> None:
            src, dst = normalise(item.source_path), normalise(item.destination_path)
            async with run.limit:
                try:
                    info = await run.source.backend.stat(src)
                    copy = await run.needs_copy(src, dst, info)
                except TransferAPIError as err:
                    out[item.seq] = run.failed(err)
                    return
            if copy:
                todo.append((item, src, dst, info))
            else:
                out[item.seq] = _Copied("skipped", info.size)

        async with task_group() as group:
            for item in files:
                if run.sync_level is None and not run.preserve and item.size is not None:
                    # nothing to compare and no time to keep: the expansion's size will do (a
                    # source gone since then fails its copy as FILE_NOT_FOUND all the same)
                    src, dst = normalise(item.source_path), normalise(item.destination_path)
                    todo.append((item, src, dst, FileInfo(src.name, "file", size=item.size)))
                else:
                    group.start_soon(decide, item)
        todo.sort(key=lambda t: t[0].seq)
        both_posix = isinstance(run.source.backend, PosixBackend) and isinstance(
            run.dest.backend, PosixBackend
        )
        if both_posix:

            async def one(entry: tuple[_Item, ResolvedPath, ResolvedPath, FileInfo]) -> None:
                out[entry[0].seq] = await run.copy_posix(*entry[1:])

            async with task_group() as group:
                for entry in todo:
                    group.start_soon(one, entry)
        elif todo:
            out.update(await run.copy_s3(todo))
        return out

    async def _record(self, task_id: str, batch: list[_Item], outcomes: dict[int, _Copied]) -> None:
        now = utcnow()
        async with self.sessions() as session, session.begin():
            moved = skipped = failed = errors = 0
            moved_bytes = checksummed = 0
            rows: list[dict[str, Any]] = []
            for item in batch:
                outcome = outcomes.get(item.seq) or _Copied(
                    "failed", error={"code": "ENDPOINT_ERROR", "details": "not copied"}
                )
                rows.append(
                    {
                        "b_task": task_id,
                        "b_seq": item.seq,
                        "b_state": outcome.state,
                        "b_checksum": outcome.checksum,
                        "b_error": outcome.error,
                        "b_at": now,
                    }
                )
                if item.is_directory:
                    failed += outcome.state == "failed"
                    continue
                if outcome.state == "done":
                    moved += 1
                    moved_bytes += outcome.size
                    checksummed += outcome.checksummed
                elif outcome.state == "skipped":
                    skipped += 1
                elif outcome.state == "error":
                    errors += 1
                else:
                    failed += 1
                if outcome.error is not None:
                    await add_event(
                        session,
                        task_id,
                        outcome.error["code"],
                        "a file could not be transferred"
                        if outcome.state == "failed"
                        else "a source error was skipped",
                        f"{item.source_path}: {outcome.error['details']}",
                        is_error=True,
                    )
            # one executemany by primary key, not one UPDATE statement per file
            await session.execute(_RECORD_ITEM, rows)
            changed_on_commit(session, task_id)
            await session.execute(
                update(TaskRow)
                .where(TaskRow.task_id == task_id, TaskRow.status == ACTIVE)
                .values(
                    files_transferred=TaskRow.files_transferred + moved,
                    files_skipped=TaskRow.files_skipped + skipped,
                    bytes_transferred=TaskRow.bytes_transferred + moved_bytes,
                    bytes_checksummed=TaskRow.bytes_checksummed + checksummed,
                    subtasks_failed=TaskRow.subtasks_failed + failed,
                    subtasks_skipped_errors=TaskRow.subtasks_skipped_errors + errors,
                    faults=TaskRow.faults + failed,
                    nice_status="OK" if not failed else "FILE_ERROR",
                )
            )

    async def _delete_extra(self, run: _Run) -> None:
        """Delete destination files under recursive items that the source doesn't have."""
        async with self.sessions() as session:
            rows = (
                await session.execute(
                    select(TaskItemRow.destination_path, TaskItemRow.is_directory).where(
                        TaskItemRow.task_id == run.task_id
                    )
                )
            ).all()
        wanted = {str(path).rstrip("/") for path, _ in rows}
        roots = [normalise(str(path)) for path, is_dir in rows if is_dir]
        top = [
            r
            for r in roots
            if not any(r != o and r.parts[: len(o.parts)] == o.parts for o in roots)
        ]
        rules: list[dict[str, Any]] = run.options.get("filter_rules") or []
        deleted = 0
        for root in top:
            queue = [root]
            while queue:
                here = queue.pop(0)
                try:
                    listing = await run.dest.backend.list_dir(here)
                except TransferAPIError:
                    continue
                for child in listing:
                    path = here.child(child.name)
                    if path.display in wanted:
                        if child.is_dir:
                            queue.append(path)
                        continue
                    if not matches_rules(rules, child.name, is_dir=child.is_dir):
                        continue  # a filtered-out name is not "extra"
                    await run.dest.backend.delete(path, recursive=True)
                    deleted += 1
        if deleted:
            await self._event(
                run.task_id,
                "DELETE_DESTINATION_EXTRA",
                "extra destination files deleted",
                f"{deleted} path(s) in the destination that the source doesn't have were deleted.",
            )

    async def _conclude(self, task_id: str) -> None:
        async with self.sessions() as session, session.begin():
            row = await session.get(TaskRow, task_id)
            if row is None or row.status != ACTIVE:
                return
            failed = await session.scalar(
                select(func.count())
                .select_from(TaskItemRow)
                .where(TaskItemRow.task_id == task_id, TaskItemRow.state == "failed")
            )
            if failed:
                first = await session.scalar(
                    select(TaskItemRow)
                    .where(TaskItemRow.task_id == task_id, TaskItemRow.state == "failed")
                    .order_by(TaskItemRow.seq)
                    .limit(1)
                )
                error = (first.error if first else None) or {}
                code = str(error.get("code", "ENDPOINT_ERROR"))
                description = f"{failed} file(s) could not be transferred"
                await finish(
                    session,
                    task_id,
                    "FAILED",
                    fatal_error={"code": code, "description": description},
                    event=(code, description, str(error.get("details", ""))),
                )
                return
            kind = row.type.lower()
            await finish(
                session,
                task_id,
                "SUCCEEDED",
                event=("SUCCEEDED", "succeeded", f"The {kind} completed."),
            )

    # -- delete ----------------------------------------------------------------------------

    async def _delete(self, ctx: JobContext, row: TaskRow) -> None:
        principal = await self._principal(row.owner)
        options = row.options
        collection = await open_collection(self.app, principal, options["endpoint"], write=True)
        backend = collection.backend
        recursive = bool(options.get("recursive"))
        ignore_missing = bool(options.get("ignore_missing"))
        globs = bool(options.get("interpret_globs"))
        paths: list[ResolvedPath] = []
        for item in options["DATA"]:
            path = normalise(item["path"])
            if globs and any(c in path.name for c in "*?["):
                try:
                    listing = await backend.list_dir(path.parent)
                except TransferAPIError as err:
                    if err.status == 404 and ignore_missing:
                        continue
                    raise
                paths.extend(
                    path.parent.child(f.name)
                    for f in listing
                    if fnmatch.fnmatchcase(f.name, path.name) and f.type != "invalid_symlink"
                )
                continue
            paths.append(path)
        if not ctx.progress.get("expanded"):
            async with self.sessions() as session, session.begin():
                await session.execute(delete(TaskItemRow).where(TaskItemRow.task_id == row.task_id))
            entries = [
                {
                    "source_path": p.display,
                    "destination_path": None,
                    "is_directory": False,
                    "size": None,
                    "state": "pending",
                    "checksum": None,
                    "error": None,
                }
                for p in paths
            ]
            await self._add_items(row.task_id, entries)
            await ctx.checkpoint({"expanded": True})
        async with self.sessions() as session:
            pending = await _pending_items(session, row.task_id)
        for item in pending:
            self._check_deadline(row)
            path = normalise(item.source_path)
            outcome = _Copied("done")
            try:
                info = await backend.stat(path)
                if info.is_dir and not recursive:
                    listing = await backend.list_dir(path)
                    if listing:
                        raise _Fatal(
                            "ENDPOINT_ERROR",
                            "a directory is not empty",
                            f"{path.display} is a directory that isn't empty: set recursive.",
                        )
                await backend.delete(path, recursive=recursive)
            except TransferAPIError as err:
                if err.status == 404 and ignore_missing:
                    outcome = _Copied("skipped")
                else:
                    raise _fatal_of(err) from err
            await self._record(row.task_id, [item], {item.seq: outcome})
            await ctx.checkpoint({"expanded": True, "through": item.seq})
        await self._conclude(row.task_id)
