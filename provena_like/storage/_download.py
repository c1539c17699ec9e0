"""Downloading one object: verified, into a temp file beside the target, renamed at the end.

Every GET goes through the direct path (:mod:`._direct`, without botocore's per-request
costs; a streamed body's pieces are never joined). Small objects of known size (up to 1 MiB)
are read whole, then hashed, checked, written and renamed in a single worker-thread hop.

Objects whose size is known beforehand (a listing or a sized manifest) and at least
``ranged_get_threshold`` (16 MiB by default) are fetched with concurrent ranged GETs of
``part_size`` (at most :data:`RANGED_STREAMS` of one object at once), pinned to the
first response's ETag (``If-Match``: an object replaced meanwhile fails with
:class:`~provena_like.RemoteChanged`). Each part is written at its
offset (``pwritev``) as it arrives, so parts never wait for each other and memory holds at
most :data:`_PART_WINDOW` per part in flight, reserved from the byte budget before its
request; on Linux over plain HTTP the parts after the first are spliced instead, the
kernel moving their bytes from the socket into the file (:mod:`._splice`: about half the
CPU); one task hashes the contiguous prefix written so far, read back from the page
cache in a worker thread, then lets the page cache drop it behind a
window (its write-back started): the download reuses the same pages of memory. Measured on
loopback (2 cores shared with SeaweedFS and other load): a 1 GiB object in 1.8-2.7 s
against 2.5-4.0 s with one GET in the same minutes (3.9 s against 8.5 s under heavy load),
because the server streams the ranges on several cores. With
resuming on, the contiguous prefix survives a failure.

Other objects (or of unknown size) are streamed with one GET, written and hashed 1 MiB at a
time in worker threads while the body streams in.

The expected sha256 is the manifest's, or else the ``x-amz-meta-sha256`` stored at upload. A
mismatch fails the file with :class:`~provena_like.ChecksumMismatch`: the temp file is
removed and the destination left untouched. Temp files (``.<name>.<random>.partial``) are
removed on any failure or cancellation, in a shielded scope.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from botocore.exceptions import ClientError

from provena_like._core.errors import ChecksumMismatch, ProvenaError, RemoteChanged, TransferError
from provena_like.storage._batch import BatchContext, failed_result, ok_result
from provena_like.storage._objects import first_part_size
from provena_like.storage._plan import DownloadItem, download_part_size, part_size_for
from provena_like.storage._requests import GetHeaders, error_code
from provena_like.storage._resume import (
    PartialState,
    partial_paths,
    read_partial,
    remove_partial,
    write_sidecar,
)
from provena_like.storage._splice import SpliceUnsupported
from provena_like.storage.hashing import (
    CHUNK_SIZE,
    Digests,
    StoredHashes,
    StreamingHasher,
    etag_md5,
    etag_part_sizes,
    etag_parts,
)
from provena_like.storage.keys import prepare_local_target
from provena_like.storage.results import FileResult

if TYPE_CHECKING:
    from anyio.streams.memory import MemoryObjectReceiveStream

__all__ = ["STREAM_CHUNK", "download_file", "temp_path"]

log = logging.getLogger(__name__)

STREAM_CHUNK = 1024 * 1024
"""Bytes gathered from a streamed body before one worker-thread hop writes and hashes them."""
_PROGRESS_STEP = 8 * 1024 * 1024
_PIPELINE_DEPTH = 4
"""Chunks read ahead of the writer thread in a streamed download."""
_OPEN_FLAGS = (
    os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
)
SHARED_HOP_SIZE = 64 * 1024
"""Objects up to this size are hashed, written and renamed in worker-thread hops shared with
the other small objects ready meanwhile (:mod:`._hops`), larger ones in a hop of their own."""
_MAX_NAME = 200
PARTIAL_SUFFIX = ".partial"
_RESUME_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
_SIDECAR_STEP = 64 * 1024 * 1024
_IOV_BATCH = 512  # buffers per pwritev (IOV_MAX is at least 1024 on Linux and macOS)
_READ_BUFSIZE = 1024 * 1024
"""aiohttp's read buffer per GET: up to twice this is buffered unread. 1 MiB rather than
256 KiB: aiohttp pauses and resumes reading the socket (two epoll calls) whenever its buffer
fills, hundreds of times per GiB with 256 KiB. A 1 GiB ranged download (8 MiB parts,
2-core loopback machine, three alternating runs each): median 3.2 s (2.9-4.3) against 4.4 s
(4.1-4.4) under heavy load, 2.3 s (2.0-2.4) against 2.5 s (2.3-2.7) on a quieter machine."""
_PART_WINDOW = 2 * STREAM_CHUNK + 2 * _READ_BUFSIZE
"""Budget per ranged GET in flight: a list being gathered or written (under two chunks),
and what the connection buffers unread."""
_READBACK = 4 * STREAM_CHUNK
"""The written prefix of a ranged download is hashed (and dropped behind) once this much of
it is new, or all of it is written: fewer thread hops. Also the size of the buffer each
``pread`` that hashes it reads into."""
_DROP_BEHIND = hasattr(os, "posix_fadvise")
_DROP_WINDOW = 64 * 1024 * 1024
"""Bytes of a ranged download's prefix (written and hashed) left in the page cache behind
the point hashed last: earlier ones have been written back by then, and are dropped
(:meth:`_TempFile.drop_behind`)."""
RANGED_STREAMS = 4
"""Ranged GETs of one object in flight at once (rclone's ``--multi-thread-streams``
default), whatever the engine's request limit. With 16 side by side (the default request
limit and budget allow that many), the first part completed only when about half of the
object had arrived, so the sha256 of the contiguous prefix could only start then; with 4 it
runs alongside the download. Measured on a loaded 2-core loopback machine (load average
10-13, SeaweedFS on the same cores), 1 GiB: with the engine's request limit at 4 against 16,
6.1-7.0 s against 9.0-11.9 s (two alternating runs); this cap alone against none, medians
of four alternating runs 7.6 s against 8.1 s, within the noise. Client CPU is the same."""


def temp_path(final: Path) -> Path:
    """A unique temp file name beside ``final``: ``.<name>.<random>.partial``."""
    return final.with_name(f".{final.name[:_MAX_NAME]}.{secrets.token_hex(4)}{PARTIAL_SUFFIX}")


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


if hasattr(os, "pwritev"):

    def _write_at(fd: int, pieces: list[bytes], offset: int) -> None:
        """Write ``pieces`` at ``offset``: one system call per 512 pieces, mostly."""
        for first in range(0, len(pieces), _IOV_BATCH):
            batch = pieces[first : first + _IOV_BATCH]
            written = os.pwritev(fd, batch, offset)
            size = sum(len(piece) for piece in batch)
            if written < size:  # a short write: the rest in one piece
                rest = memoryview(b"".join(batch))[written:]
                while rest:
                    n = os.pwrite(fd, rest, offset + written)
                    rest, written = rest[n:], written + n
            offset += size

    def _read_at(fd: int, buffer: memoryview, offset: int) -> int:
        return os.preadv(fd, [buffer], offset)

else:  # pragma: no cover - Windows: positional I/O through one lock per process
    _POSITION = threading.Lock()

    def _write_at(fd: int, pieces: list[bytes], offset: int) -> None:
        with _POSITION:
            os.lseek(fd, offset, os.SEEK_SET)
            for piece in pieces:
                _write_all(fd, piece)

    def _read_at(fd: int, buffer: memoryview, offset: int) -> int:
        with _POSITION:
            os.lseek(fd, offset, os.SEEK_SET)
            data = os.read(fd, len(buffer))
        buffer[: len(data)] = data
        return len(data)


@dataclass(frozen=True, slots=True)
class _Expected:
    """What the downloaded bytes must hash to: a sha256, else an md5, else an ETag."""

    sha256: str | None
    etag: str | None = None
    md5: str | None = None
    """The whole object's md5 stored in its metadata (rclone's ``md5chksum``)."""


def _check(path: str, digests: Digests, expected: _Expected, size: int) -> None:
    if digests.size != size:
        raise TransferError(f"{path}: received {digests.size} bytes, expected {size}")
    want = expected.sha256
    if want is not None and digests.sha256 is not None and digests.sha256 != want:
        raise ChecksumMismatch(
            f"{path}: sha256 of the downloaded bytes is {digests.sha256}, expected {want}"
        )
    if want is None and expected.md5 is not None:
        if digests.md5 is not None and digests.md5 != expected.md5:
            raise ChecksumMismatch(
                f"{path}: md5 of the downloaded bytes is {digests.md5}, the object's stored "
                f"md5 (md5chksum) is {expected.md5} (no sha256 known or stored)"
            )
    elif want is None and expected.etag is not None:
        got = digests.etag if etag_parts(expected.etag) else digests.md5
        if got is not None and got != expected.etag:
            raise ChecksumMismatch(
                f"{path}: the downloaded bytes would have the ETag {got}, the object's is "
                f"{expected.etag} (no sha256 known or stored)"
            )


class _TempFile:
    """A temp file beside the target that becomes the target only if its bytes check out.

    Every method is blocking: call them in worker threads.
    """

    def __init__(
        self,
        dest: Path,
        target: Path,
        hasher: StreamingHasher | None,
        resumable: PartialState | None = None,
        real_roots: dict[Path, Path] | None = None,
    ) -> None:
        self.final = prepare_local_target(dest, target, real_roots=real_roots)
        self.size = 0
        self.committed = False
        self._hasher = hasher
        self._state = resumable
        self._saved = 0
        self._readback: memoryview | None = None
        self._dropped = 0
        self._writing = threading.Lock()
        self.splices = True
        """Whether ranges may be spliced into the file (until its file system refused)."""
        if resumable is None:
            self.tmp = temp_path(self.final)
            self._fd: int | None = os.open(self.tmp, _OPEN_FLAGS, 0o666)
            return
        # a resumable download: a fixed name, continued from ``resumable.done`` bytes
        self.tmp = partial_paths(self.final)[0]
        self._fd = os.open(self.tmp, _RESUME_FLAGS, 0o666)
        try:
            if resumable.done and hasher is not None:
                with open(self.tmp, "rb", buffering=0) as fh:
                    left = resumable.done
                    while left and (chunk := fh.read(min(left, CHUNK_SIZE))):
                        hasher.update(chunk)
                        left -= len(chunk)
            os.ftruncate(self._fd, resumable.done)
            os.lseek(self._fd, resumable.done, os.SEEK_SET)
            self.size = self._saved = resumable.done
            write_sidecar(self.final, resumable)
        except BaseException:
            self._close()
            raise

    def write(self, pieces: list[bytes]) -> None:
        """Append ``pieces`` and hash them."""
        self.append(pieces)
        self.hash(pieces)

    def append(self, pieces: list[bytes]) -> None:
        """Append ``pieces`` without hashing them (see :meth:`hash`)."""
        assert self._fd is not None
        for piece in pieces:
            _write_all(self._fd, piece)
            self.size += len(piece)
        if self._state is not None and self.size - self._saved >= _SIDECAR_STEP:
            self._remember()

    def write_at(self, offset: int, pieces: list[bytes]) -> None:
        """Write ``pieces`` at ``offset`` (not hashed: see :meth:`hash_range`).

        Threads may call it for different ranges at once; they write one at a time (a lock
        they sleep on): the file system takes the file's inode lock for each write anyway,
        and writers waiting for it there spin on the CPU that, on 2 cores, the sha256 and the
        object store need. Measured on the 2-core VM, 4 threads writing 1 GiB at offsets
        into fresh page cache (slow writes: each page's first touch faults in the host):
        1.7-2.7 s of CPU with the lock against 3.0-3.7 s without (four runs each); with
        warm pages 0.2-0.6 s either way. :attr:`size` is left to the caller (:meth:`mark`).
        """
        assert self._fd is not None
        with self._writing:
            _write_at(self._fd, pieces, offset)

    def fileno(self) -> int:
        """The temp file's descriptor, for writers of their own (:mod:`._splice`)."""
        assert self._fd is not None
        return self._fd

    @property
    def write_lock(self) -> threading.Lock:
        """The lock writers at offsets take turns on (see :meth:`write_at`)."""
        return self._writing

    def hash_range(self, start: int, end: int) -> None:
        """Hash bytes ``[start, end)`` of the file, read back (from the page cache).

        One buffer of :data:`_READBACK` is reused for the whole file: a fresh one per call
        cost a zero-filled allocation (page faults) per call, a GiB of them per GiB hashed.
        Read with ``pread``, not through a mapping: a mapping costs less system CPU (0.03 s
        per GiB against 0.1-0.6 s) but a read error, or another process truncating the
        file, would then kill the process (``SIGBUS``) - the server's, for a transfer task
        - instead of failing the download.
        """
        if self._hasher is None or start >= end:
            return
        assert self._fd is not None
        if self._readback is None:
            self._readback = memoryview(bytearray(_READBACK))
        buffer = self._readback
        while start < end:
            n = _read_at(self._fd, buffer[: min(len(buffer), end - start)], start)
            if n <= 0:
                raise TransferError(f"{self.tmp} is shorter than the bytes written to it")
            self._hasher.update(buffer[:n])
            start += n

    def drop_behind(self, start: int, end: int) -> None:
        """Let the page cache drop bytes ``[start, end)`` (written and hashed) behind a window.

        The range's write-back to disk starts now (``POSIX_FADV_DONTNEED`` starts it for dirty
        pages), and everything up to :data:`_DROP_WINDOW` before ``end`` (written back
        meanwhile) is dropped, so the download reuses the same few pages of memory instead of
        taking a fresh page per 4 KiB written. On a virtual machine that hands freed memory
        back to its host, the first touch of each fresh page faults in the host: measured on
        the 2-core benchmark VM, writing 1 GiB into a new file cost 2.7-3.6 s of system CPU
        (9-13 s wall) without this and 0.5-0.7 s (1.3-1.9 s) with it. Pages still dirty or
        under write-back are left alone (nothing is ever lost, the hint only frees clean
        copies); the last :data:`_DROP_WINDOW` bytes stay cached. Only advice: no-op where
        unsupported. May wait for the disk's queue: call it apart from the hashing.
        """
        if not _DROP_BEHIND or self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.posix_fadvise(self._fd, start, end - start, os.POSIX_FADV_DONTNEED)
            clean = end - _DROP_WINDOW
            if clean > self._dropped:
                os.posix_fadvise(
                    self._fd, self._dropped, clean - self._dropped, os.POSIX_FADV_DONTNEED
                )
                self._dropped = clean

    def mark(self, contiguous: int) -> bool:
        """Note that the first ``contiguous`` bytes are written.

        Returns:
            Whether a resumable download should record it now (:meth:`record`, blocking).
        """
        self.size = contiguous
        return self._state is not None and self.size - self._saved >= _SIDECAR_STEP

    def record(self) -> None:
        """Record in the sidecar how many bytes a resumed download can keep."""
        self._remember()

    @property
    def hashing(self) -> bool:
        """Whether bytes written must also be hashed."""
        return self._hasher is not None

    def hash(self, pieces: list[bytes]) -> None:
        """Hash ``pieces`` (appended, or to be appended, in this order)."""
        if self._hasher is not None:
            for piece in pieces:
                self._hasher.update(piece)

    def _remember(self) -> None:
        assert self._state is not None
        self._saved = self.size
        write_sidecar(self.final, PartialState(self._state.etag, self._state.size, self.size))

    def digests(self) -> Digests:
        """The checksums of everything written."""
        return self._hasher.digests() if self._hasher is not None else Digests(self.size, None)

    def commit(self, path: str, expected: _Expected, total: int) -> Digests:
        """Check size and sha256, then rename into place."""
        digests = self.digests()
        _check(path, digests, expected, total)
        self._close()
        os.replace(self.tmp, self.final)
        self.committed = True
        if self._state is not None:
            remove_partial(self.final)
        return digests

    def _close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    def discard(self, *, keep: bool = False) -> None:
        """Close and remove the temp file (no-op once committed).

        With ``keep``, a resumable download's bytes stay, with their sidecar, for next time.
        """
        if self.committed:
            return
        with contextlib.suppress(OSError):
            self._close()
        if self._state is not None:
            if keep and self.size > 0:
                with contextlib.suppress(OSError):
                    # a ranged download may have written parts beyond its contiguous prefix
                    os.truncate(self.tmp, self.size)
                    self._remember()
                    return
            remove_partial(self.final)
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


def _save_whole(
    dest: Path,
    target: Path,
    path: str,
    data: bytes,
    expected: _Expected,
    hasher: StreamingHasher | None,
    real_roots: dict[Path, Path] | None = None,
) -> tuple[Digests, Path]:
    """Hash and check ``data`` first (nothing touches the disk if it is wrong), then save it."""
    digests = Digests(size=len(data), sha256=None)
    if hasher is not None:
        hasher.update(data)
        digests = hasher.digests()
    _check(path, digests, expected, len(data))
    sink = _TempFile(dest, target, None, real_roots=real_roots)
    try:
        sink.write([data])
        sink.commit(path, _Expected(None), len(data))
    finally:
        sink.discard()
    return digests, sink.final


@dataclass(frozen=True, slots=True)
class _Target:
    """Where a download goes and how: what :class:`_TempFile` is made from."""

    dest: Path
    target: Path
    hasher: StreamingHasher | None
    resumable: PartialState | None


async def _fill_and_commit(
    ctx: BatchContext,
    path: str,
    where: _Target,
    expect: tuple[_Expected, int],
    fill: Callable[[_TempFile], Awaitable[None]],
) -> tuple[Digests, _TempFile]:
    """Make the temp file, ``fill`` it, check it (``expect``: sha256 and size) and rename it.

    On failure or cancellation the temp file is removed, or, for a resumable download
    failing for a reason worth retrying, kept for next time.
    """
    sink = await ctx.in_thread(
        _TempFile, where.dest, where.target, where.hasher, where.resumable, ctx.real_roots
    )
    keep = False
    try:
        await fill(sink)
        digests = await ctx.in_thread(sink.commit, path, *expect)
        return digests, sink
    except BaseException as exc:
        keep = where.resumable is not None and _resumable_error(exc)
        raise
    finally:
        await _discard(ctx, sink, keep=keep)


async def _discard(ctx: BatchContext, sink: _TempFile, *, keep: bool = False) -> None:
    if not sink.committed:
        with anyio.CancelScope(shield=True):
            await ctx.in_thread(lambda: sink.discard(keep=keep))


def _resumable_error(exc: BaseException) -> bool:
    """Whether a download that failed so can continue later (not for wrong bytes)."""
    return not isinstance(exc, ProvenaError)


def _find_partial(
    dest: Path, target: Path, real_roots: dict[Path, Path]
) -> tuple[Path, PartialState | None]:
    final = prepare_local_target(dest, target, real_roots=real_roots)
    return final, read_partial(final)


async def _expected(
    ctx: BatchContext, item: DownloadItem, headers: GetHeaders, hasher: StreamingHasher | None
) -> _Expected:
    """What to check: the manifest's sha256, else the stored one, else the object's ETag.

    Before the ETag, the whole object's md5 stored by rclone (``md5chksum``, base64), which
    needs no guess at a part size. ``hasher`` is set to compute that md5, or the ETag's md5
    (single-part) or multipart ETag, for the part size the store reports for part 1, else
    the likeliest one that gives its number of parts. An encrypted object's ETag is no md5:
    not checked. Call it before any byte is hashed.
    """
    if not ctx.settings.checksum:
        return _Expected(None)
    if item.expected_sha256 is not None:
        return _Expected(item.expected_sha256.lower())
    stored = StoredHashes.of(headers.metadata)
    if stored.sha256 is not None:
        return _Expected(stored.sha256)
    if hasher is None:
        return _Expected(None)
    if stored.md5 is not None:
        hasher.track_etag(md5=True)
        return _Expected(None, md5=stored.md5)
    if headers.encrypted:
        return _Expected(None)
    etag = headers.etag.strip().strip('"').lower()
    if etag_md5(etag) is not None:
        hasher.track_etag(md5=True)
        return _Expected(None, etag)
    parts = etag_parts(etag)
    if parts is None:
        return _Expected(None)
    reported: int | None = None
    with contextlib.suppress(Exception):  # the store doesn't say: the likeliest size then
        # the GET holds this task's request slot
        reported = await first_part_size(
            ctx.requests, ctx.bucket, ctx.prefix, item.path, holding=True
        )
    total = headers.total_size
    own = part_size_for(total, ctx.settings.part_size)
    sizes = etag_part_sizes(total, parts, (reported, own))
    if not sizes:
        return _Expected(None)
    hasher.track_etag(part_size=sizes[0])
    return _Expected(None, etag)


async def download_file(ctx: BatchContext, dest: Path, item: DownloadItem) -> FileResult:
    """Download one planned object; failures become a failed result."""
    if item.error is not None or item.target is None:
        error = item.error or TransferError("no local target")
        return failed_result(item.path, error, action="download")
    await ctx.progress.started(item.path, item.size)
    settings = ctx.settings
    hasher = (
        StreamingHasher(sha256=settings.checksum, md5=settings.md5)
        if settings.checksum or settings.md5
        else None
    )
    threshold = settings.ranged_get_threshold
    try:
        if threshold is not None and item.size is not None and item.size >= max(threshold, 1):
            headers, digests, final = await _ranged(ctx, dest, item, item.target, hasher)
        else:
            headers, digests, final = await _streamed(ctx, dest, item, item.target, hasher)
    except Exception as exc:
        if error_code(exc) == "PreconditionFailed":
            exc = RemoteChanged(f"{item.path} was replaced while it was being downloaded")
        return failed_result(item.path, exc, action="download", size=item.size, local=item.target)
    return ok_result(item.path, digests, headers.etag, final)


async def _streamed(
    ctx: BatchContext,
    dest: Path,
    item: DownloadItem,
    target: Path,
    hasher: StreamingHasher | None,
) -> tuple[GetHeaders, Digests, Path]:
    """One GET; the body is written and hashed 1 MiB at a time in worker threads.

    With resuming on, a large object continues a partial download of the same ETag.
    """
    if item.size is not None and item.size <= STREAM_CHUNK:
        return await _whole(ctx, dest, item, target, hasher)
    resumable = ctx.settings.resume and (item.size is None or item.size > STREAM_CHUNK)
    partial: PartialState | None = None
    where: Path | None = None
    if resumable:
        where, partial = await ctx.in_thread(_find_partial, dest, target, ctx.real_roots)
    # the chunk being read, the queued ones, the ones being written and hashed, and what
    # the connection buffers unread
    held = await ctx.budget.acquire(
        min(item.size or STREAM_CHUNK, STREAM_CHUNK * (_PIPELINE_DEPTH + 3) + 2 * _READ_BUFSIZE)
    )
    try:
        async with contextlib.AsyncExitStack() as stack:
            headers, body, offset = await _open_body(ctx, stack, item, where, partial)
            total = headers.total_size
            if item.size is not None and total != item.size:
                ctx.progress.unexpected_bytes(item.size, total)
            if offset:
                ctx.progress.unexpected_bytes(offset, 0)
            expected = await _expected(ctx, item, headers, hasher)
            if total <= STREAM_CHUNK and not offset:
                data = b"".join([piece async for piece in body])
                digests, final = await ctx.in_thread(
                    _save_whole, dest, target, item.path, data, expected, hasher, ctx.real_roots
                )
                await ctx.progress.transferred(item.path, len(data), len(data))
                return headers, digests, final
            state = PartialState(headers.etag, total, offset) if resumable else None
            reported = 0

            async def pump(sink: _TempFile) -> None:
                nonlocal reported
                reported = await _pump(ctx, item.path, body, sink)

            target_file = _Target(dest, target, hasher, state)
            digests, sink = await _fill_and_commit(
                ctx, item.path, target_file, (expected, total), pump
            )
            await ctx.progress.transferred(item.path, sink.size - reported, sink.size)
            return headers, digests, sink.final
    finally:
        ctx.budget.release(held)


async def _pump(ctx: BatchContext, path: str, body: AsyncIterator[bytes], sink: _TempFile) -> int:
    """Stream ``body`` into ``sink``, reading the socket while threads write and hash.

    Writing and hashing run in two worker threads side by side, each fed in order through
    its own queue of at most ``_PIPELINE_DEPTH`` chunks, so receiving, writing and hashing
    overlap instead of taking turns (a 1 GiB download: ~1 s less on 2 cores).

    Returns:
        The size last reported in progress events (the caller reports the rest).
    """
    consumers = [sink.append, sink.hash] if sink.hashing else [sink.append]
    streams = [anyio.create_memory_object_stream[list[bytes]](_PIPELINE_DEPTH) for _ in consumers]
    failures: list[Exception] = []
    reported = sink.size

    async def consume(
        work: Callable[[list[bytes]], None],
        receive: MemoryObjectReceiveStream[list[bytes]],
        scope: anyio.CancelScope,
        reports: bool,
    ) -> None:
        nonlocal reported
        try:
            async with receive:
                async for pieces in receive:
                    await ctx.in_thread(work, pieces)
                    if reports and sink.size - reported >= _PROGRESS_STEP:
                        await ctx.progress.transferred(path, sink.size - reported, sink.size)
                        reported = sink.size
        except Exception as exc:
            failures.append(exc)
            scope.cancel()

    async with anyio.create_task_group() as tg:
        for index, (work, (_, receive)) in enumerate(zip(consumers, streams, strict=True)):
            # the writer (first) reports progress: bytes on disk
            tg.start_soon(consume, work, receive, tg.cancel_scope, index == 0)
        try:
            async with contextlib.AsyncExitStack() as senders:
                sends = [await senders.enter_async_context(send) for send, _ in streams]
                async for pieces in _gathered(body):
                    for send in sends:
                        await send.send(pieces)
        except Exception as exc:
            failures.append(exc)
            tg.cancel_scope.cancel()
    if failures:
        raise failures[0]
    return reported


async def _gathered(body: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """A body in lists of pieces of at least :data:`STREAM_CHUNK` bytes (but the last).

    Each list holds less than ``STREAM_CHUNK`` plus one piece.
    """
    pieces: list[bytes] = []
    gathered = 0
    async for piece in body:
        pieces.append(piece)
        gathered += len(piece)
        if gathered >= STREAM_CHUNK:
            yield pieces
            pieces, gathered = [], 0
    if pieces:
        yield pieces


async def _whole(
    ctx: BatchContext,
    dest: Path,
    item: DownloadItem,
    target: Path,
    hasher: StreamingHasher | None,
) -> tuple[GetHeaders, Digests, Path]:
    """A small object of known size: one GET into memory, checked and saved in one hop."""
    held = await ctx.budget.acquire(item.size or 0)
    try:
        got = await ctx.requests.get(ctx.key(item.path))
        headers = got.headers
        if item.size is not None and headers.total_size != item.size:
            ctx.progress.unexpected_bytes(item.size, headers.total_size)
        expected = await _expected(ctx, item, headers, hasher)
        hop = ctx.in_shared_hop if len(got.data) <= SHARED_HOP_SIZE else ctx.in_thread
        digests, final = await hop(
            _save_whole, dest, target, item.path, got.data, expected, hasher, ctx.real_roots
        )
    finally:
        ctx.budget.release(held)
    await ctx.progress.transferred(item.path, len(got.data), len(got.data))
    return headers, digests, final


async def _open_body(
    ctx: BatchContext,
    stack: contextlib.AsyncExitStack,
    item: DownloadItem,
    final: Path | None,
    partial: PartialState | None,
    *,
    length: int | None = None,
) -> tuple[GetHeaders, AsyncIterator[bytes], int]:
    """GET the rest of a partial download (same ETag), else the whole object.

    With ``length``, only the first ``length`` bytes of that (a ranged download's first part).
    """
    key = ctx.key(item.path)
    if partial is not None and final is not None:
        last = partial.size - 1 if length is None else min(partial.done + length, partial.size) - 1
        try:
            headers, body = await stack.enter_async_context(
                ctx.requests.open_get(
                    key,
                    byte_range=(partial.done, last),
                    if_match=f'"{partial.etag.strip(chr(34))}"',
                    read_bufsize=_READ_BUFSIZE,
                )
            )
            if headers.total_size == partial.size:
                log.info("resuming the download of %s at byte %d", item.path, partial.done)
                return headers, body, partial.done
            await stack.aclose()
        except ClientError as exc:
            if error_code(exc) not in {"PreconditionFailed", "InvalidRange"}:
                raise
        log.info("%s changed since its partial download: starting over", item.path)
        await ctx.in_thread(remove_partial, final)
    byte_range = None if length is None else (0, length - 1)
    headers, body = await stack.enter_async_context(
        ctx.requests.open_get(key, byte_range=byte_range, read_bufsize=_READ_BUFSIZE)
    )
    return headers, body, 0


class _Frontier:
    """Which bytes of a ranged download are on disk: parts fill from their start, in any order.

    ``frontier`` is the end of the contiguous prefix written so far (from ``start``): the
    bytes that may be hashed, and that a resumed download can keep. Updated on the event
    loop only (after each write returns from its worker thread).

    Example:
        ```python
        f = _Frontier(0, [(0, 10), (10, 20)])
        f.wrote(1, 10)
        assert f.frontier == 0
        f.wrote(0, 10)
        assert f.frontier == 20
        ```
    """

    def __init__(self, start: int, parts: list[tuple[int, int]]) -> None:
        self._parts = parts
        self._written = [0] * len(parts)
        self._first = 0
        self.frontier = start

    def wrote(self, index: int, n: int) -> None:
        """``n`` more bytes of part ``index`` were written, continuing from its start."""
        self._written[index] += n
        parts, written = self._parts, self._written
        while self._first < len(parts):
            first_start, first_end = parts[self._first]
            self.frontier = first_start + written[self._first]
            if self.frontier < first_end:
                return
            self._first += 1


def _plan_parts(start: int, first_end: int, total: int, part_size: int) -> list[tuple[int, int]]:
    """``[start, first_end)`` (already requested), then ``part_size`` ranges up to ``total``."""
    parts = [(start, first_end)]
    parts += [(at, min(at + part_size, total)) for at in range(first_end, total, part_size)]
    return parts


async def _ranged(
    ctx: BatchContext,
    dest: Path,
    item: DownloadItem,
    target: Path,
    hasher: StreamingHasher | None,
) -> tuple[GetHeaders, Digests, Path]:
    """Concurrent ranged GETs of ``part_size``, each streamed to its offset in the temp file.

    Each part's body is written where it belongs (``pwrite``) as it arrives, in chunks of
    :data:`STREAM_CHUNK`, so parts never wait for each other and memory holds at most two
    chunks per part in flight (reserved from the byte budget before its request). One task
    hashes the contiguous prefix written so far, read back from the page cache in a
    worker thread, while later parts still stream in, and lets the page cache
    drop it behind (:meth:`_TempFile.drop_behind`); the sha256 is checked
    before the rename. The first GET's ETag pins the others (``If-Match``). With resuming
    on, the contiguous prefix is kept on failure and a later download continues from there.
    """
    size = item.size or 0
    part_size = download_part_size(size, ctx.settings.part_size)
    resumable = ctx.settings.resume
    partial: PartialState | None = None
    where: Path | None = None
    if resumable:
        where, partial = await ctx.in_thread(_find_partial, dest, target, ctx.real_roots)
    first_held = await ctx.budget.acquire(min(_PART_WINDOW, size))
    try:
        async with contextlib.AsyncExitStack() as stack:
            headers, body, start = await _open_body(
                ctx, stack, item, where, partial, length=part_size
            )
            total = headers.total_size
            if total != size:
                ctx.progress.unexpected_bytes(size, total)
            if start:
                ctx.progress.unexpected_bytes(start, 0)
            expected = await _expected(ctx, item, headers, hasher)
            state = PartialState(headers.etag, total, start) if resumable else None
            parts = _plan_parts(start, min(start + part_size, total), total, part_size)

            async def fetch(sink: _TempFile) -> None:
                nonlocal first_held
                held, first_held = first_held, 0  # _fetch_parts releases it
                await _fetch_parts(ctx, item, sink, headers, parts, (body, stack), held)

            target_file = _Target(dest, target, hasher, state)
            digests, sink = await _fill_and_commit(
                ctx, item.path, target_file, (expected, total), fetch
            )
            return headers, digests, sink.final
    finally:
        ctx.budget.release(first_held)


async def _fetch_parts(
    ctx: BatchContext,
    item: DownloadItem,
    sink: _TempFile,
    headers: GetHeaders,
    parts: list[tuple[int, int]],
    first: tuple[AsyncIterator[bytes], contextlib.AsyncExitStack],
    first_held: int,
) -> None:
    """Stream ``parts[0]`` from the ``first`` body and GET the others, hashing the prefix.

    Takes over ``first_held`` and the first response (closed by its exit stack as soon as
    its part is streamed, so that its request slot serves the other parts): every part's
    budget is released when the part is done, and in any case before this returns or raises.
    """
    first_body, first_response = first
    key = ctx.key(item.path)
    holding = {0: first_held}  # budget per part not yet released

    def release(index: int) -> None:
        ctx.budget.release(holding.pop(index, 0))

    total = parts[-1][1]
    streams = anyio.Semaphore(RANGED_STREAMS - 1)  # the first part's stream is open already
    frontier = _Frontier(parts[0][0], parts)
    progressed = anyio.Event()
    hashed = sink.size
    hash_moved = anyio.Event()  # set when ``hashed`` moves
    failures: list[Exception] = []

    async def wrote(index: int, n: int) -> None:
        before = frontier.frontier
        frontier.wrote(index, n)
        if frontier.frontier != before and sink.mark(frontier.frontier):
            await ctx.in_thread(sink.record)
        await ctx.progress.transferred(item.path, n, frontier.frontier)
        progressed.set()

    async def stream(index: int, body: AsyncIterator[bytes]) -> None:
        at, end = parts[index]
        async for pieces in _gathered(body):
            n = sum(len(p) for p in pieces)
            if at + n > end:
                raise RemoteChanged(f"{item.path} changed while it was being downloaded")
            await ctx.in_thread(sink.write_at, at, pieces)
            at += n
            await wrote(index, n)
        if at != end:
            raise TransferError(
                f"{item.path}: received {at - parts[index][0]} bytes of part "
                f"{index + 1}, expected {end - parts[index][0]}"
            )

    async def fetch(index: int) -> None:
        start, end = parts[index]
        try:
            await fetch_pinned(index, start, end)
        except ClientError as exc:
            if error_code(exc) != "PreconditionFailed":
                raise
            # not worth resuming: the bytes kept belong to the object that was replaced
            raise RemoteChanged(f"{item.path} was replaced while it was being downloaded") from exc
        finally:
            release(index)
            streams.release()

    async def fetch_pinned(index: int, start: int, end: int) -> None:
        if ctx.requests.splices and sink.splices:  # the kernel moves the body (Linux, HTTP)
            try:
                got = await ctx.requests.get_range_into(
                    key,
                    sink.fileno(),
                    (start, end - 1),
                    if_match=headers.etag,
                    lock=sink.write_lock,
                )
            except SpliceUnsupported:
                sink.splices = False  # this file system: the parts stream, this one too
            else:
                if got.total_size != total:
                    raise RemoteChanged(f"{item.path} changed while it was being downloaded")
                await wrote(index, end - start)
                return
        async with ctx.requests.open_get(
            key, byte_range=(start, end - 1), if_match=headers.etag, read_bufsize=_READ_BUFSIZE
        ) as (got, body):
            if got.total_size != total:
                raise RemoteChanged(f"{item.path} changed while it was being downloaded")
            await stream(index, body)

    async def stream_first() -> None:
        try:
            await stream(0, first_body)
        finally:
            await first_response.aclose()
            release(0)
            streams.release()

    async def guarded(work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Exception as exc:
            failures.append(exc)
            tg.cancel_scope.cancel()

    async def hash_prefix() -> None:
        nonlocal hashed, progressed, hash_moved
        while (sink.hashing or _DROP_BEHIND) and hashed < total:
            await progressed.wait()
            progressed = anyio.Event()
            upto = frontier.frontier
            if upto - hashed >= _READBACK or (upto == total and upto > hashed):
                if sink.hashing:
                    await ctx.in_thread(sink.hash_range, hashed, upto)
                hashed = upto
                hash_moved.set()
                hash_moved = anyio.Event()

    async def drop_behind() -> None:
        # apart from the hashing, which never waits for the disk: on a disk slower than the
        # download this lags behind (more stays cached, as without it) and stops at the end
        dropped = hashed
        while _DROP_BEHIND and hashed < total:
            if hashed > dropped:
                upto = hashed
                await ctx.in_thread(sink.drop_behind, dropped, upto)
                dropped = upto
            else:
                await hash_moved.wait()

    async def spawn_the_rest() -> None:
        for index in range(1, len(parts)):
            start, end = parts[index]
            await streams.acquire()  # this object's streams first, then budget, then a slot
            try:
                holding[index] = await ctx.budget.acquire(min(_PART_WINDOW, end - start))
            except BaseException:
                streams.release()
                raise
            tg.start_soon(guarded, functools.partial(fetch, index))

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(guarded, hash_prefix)
            tg.start_soon(guarded, drop_behind)
            tg.start_soon(guarded, spawn_the_rest)
            # this task holds the first response's request slot: it streams that part
            await guarded(stream_first)
    finally:
        for index in list(holding):  # parts cancelled before they started
            release(index)
    if failures:
        raise failures[0]
