"""Uploading one file: a single verified PUT, or a multipart upload with concurrent parts.

Small files (below the multipart threshold) are read whole in a worker thread, hashed from
the same bytes, and sent with ``x-amz-checksum-sha256`` (the server recomputes it and refuses
a mismatch with ``BadDigest``) and ``x-amz-meta-sha256``.

Large files are uploaded in parts, each read in a worker thread together with its CRC32
(sent as ``x-amz-checksum-crc32`` and checked by the server), and uploaded concurrently
within the batch's request and memory limits. ``CreateMultipartUpload`` is the only request
that takes metadata, so the file's sha256 must be known before it for the object to get
``x-amz-meta-sha256``, as a single-part object does: it comes from the hash cache
(:class:`~provena_like.storage.cache.HashCache`, by path, size and mtime), which every
hashed upload fills, or else from a pass over the file before ``CreateMultipartUpload``
that computes the sha256 and every part's CRC32 from the same bytes (1.2-1.6 s of CPU per
GiB on the loaded 2-core reference machine, before the first part is sent; see the
transfer tasks guide). Each part is then read again to
be sent: its CRC32 must equal the one of that pass, else the file changed in between and
the upload fails; the store checks the bytes it receives against the same CRC32. So a
downloader can check a multipart object against the sha256 stored with it instead of
recomputing its multipart ETag (an md5 of every part, 2.5 times slower than a sha256). With
``md5`` on, the file's md5 is computed in the same pass and stored too, as ``md5chksum``
(base64): rclone's convention, so that ``rclone copy`` checks what it downloads. The
file's size and mtime are compared when it is opened and after the last part: a file that
changed meanwhile fails instead of being recorded with a checksum of other bytes. Any
failure or cancellation aborts the multipart upload, unless resuming is on (the engine's
default): an interrupted upload then stays open, recorded under the cache directory with the
file's size, mtime and sha256 (see :mod:`~provena_like.storage._resume`), and the next upload
of the same unchanged file sends only the parts ``ListParts`` doesn't already show with
matching checksums.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from botocore.exceptions import ClientError

from provena_like._core.errors import TransferError
from provena_like.storage._batch import BatchContext, failed_result, ok_result
from provena_like.storage._plan import UploadItem, part_size_for
from provena_like.storage._resume import (
    UploadState,
    load_upload_state,
    remove_upload_state,
    save_upload_state,
)
from provena_like.storage.hashing import (
    CHUNK_SIZE,
    MD5_METADATA_KEY,
    Digests,
    StreamingHasher,
    md5_b64,
    read_file,
    sha256_b64,
)
from provena_like.storage.results import FileResult

if TYPE_CHECKING:
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

__all__ = ["upload_file"]

log = logging.getLogger(__name__)

_ABORT_TIMEOUT = 30.0
_METADATA_KEY = "sha256"
_PREHASH_STEP = 64 * 1024 * 1024
"""Bytes hashed per worker-thread hop before ``CreateMultipartUpload`` (whole parts; a
cancellation takes effect between hops)."""


INLINE_READ = 64 * 1024
"""Files up to this size are read and hashed on the event loop (open, read, close: tens of
microseconds from the page cache), not in a worker thread: waking one and being woken
back cost more than the read itself."""


async def upload_file(ctx: BatchContext, item: UploadItem) -> FileResult:
    """Upload one planned file; failures become a failed result."""
    if item.error is not None:
        return failed_result(item.path, item.error, action="upload", local=item.local)
    await ctx.progress.started(item.path, item.size)
    size = item.size or 0
    try:
        if size < ctx.settings.multipart_threshold:
            return await _put_small(ctx, item)
        return await _put_multipart(ctx, item)
    except Exception as exc:
        return failed_result(item.path, exc, action="upload", size=item.size, local=item.local)


def _put_headers(digests: Digests) -> dict[str, str]:
    """PutObject headers: the server checks the body against each checksum sent."""
    headers: dict[str, str] = {}
    if digests.sha256 is not None:
        headers["x-amz-checksum-sha256"] = sha256_b64(digests.sha256)
        headers["x-amz-meta-" + _METADATA_KEY] = digests.sha256
    if digests.md5 is not None:
        headers["Content-MD5"] = md5_b64(digests.md5)
    return headers


async def _put_small(ctx: BatchContext, item: UploadItem) -> FileResult:
    settings = ctx.settings
    held = await ctx.budget.acquire(item.size or 0)
    try:
        if (item.size or 0) <= INLINE_READ:  # cheaper than the hop to a worker thread
            data, digests = read_file(item.local, sha256=settings.checksum, md5=settings.md5)
        else:
            data, digests = await ctx.in_thread(
                read_file, item.local, sha256=settings.checksum, md5=settings.md5
            )
        response = await ctx.requests.put(ctx.key(item.path), data, _put_headers(digests))
    finally:
        ctx.budget.release(held)
    if digests.size != item.size:
        ctx.progress.unexpected_bytes(item.size, digests.size)
    await ctx.progress.transferred(item.path, digests.size, digests.size)
    return ok_result(item.path, digests, response.etag, item.local)


@dataclass(frozen=True, slots=True)
class _Snapshot:
    size: int
    mtime_ns: int


def _open_and_stat(path: os.PathLike[str]) -> tuple[int, os.stat_result]:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        return fd, os.fstat(fd)
    except BaseException:
        os.close(fd)
        raise


def _snapshot(fd: int) -> _Snapshot:
    info = os.fstat(fd)
    return _Snapshot(info.st_size, info.st_mtime_ns)


class _FileChanged(TransferError):
    """The file's bytes are not those hashed: no upload of it is worth resuming."""


def _crc_b64(crc: int) -> str:
    return base64.b64encode(crc.to_bytes(4, "big")).decode()


def _read_part(
    fd: int,
    offset: int,
    length: int,
    crc: bool,
    hasher: StreamingHasher | None,
    expected_crc: int | None = None,
) -> tuple[bytes, str | None]:
    """Read one part, feed it to ``hasher`` (parts come in order) and compute its CRC32.

    With ``expected_crc`` (the part's CRC32 when the file was hashed before the upload),
    bytes with another CRC32 mean that the file changed since: the upload fails.
    """
    data = os.pread(fd, length, offset)
    if len(data) != length:
        raise _FileChanged(f"the file ended early at byte {offset + len(data)} while uploading")
    if hasher is not None:
        hasher.update(data)
    if not crc and expected_crc is None:
        return data, None
    value = zlib.crc32(data)
    if expected_crc is not None and value != expected_crc:
        raise _FileChanged("the file changed while it was being uploaded")
    return data, _crc_b64(value) if crc else None


@dataclass(slots=True)
class _Prehash:
    """The sha256 (and md5) of a whole file and the CRC32 of each of its parts, one read."""

    hasher: StreamingHasher
    part_size: int
    crcs: list[int]
    buffer: bytearray


def _prehash_parts(fd: int, state: _Prehash, first: int, last: int, size: int) -> None:
    """Hash parts ``first`` to ``last`` (excluded) of the file, in order. Blocking."""
    view = memoryview(state.buffer)
    for index in range(first, last):
        offset = index * state.part_size
        end = min(offset + state.part_size, size)
        crc = 0
        while offset < end:
            n = os.preadv(fd, [view[: min(len(view), end - offset)]], offset)
            if n <= 0:
                raise _FileChanged(f"the file ended early at byte {offset} while hashing it")
            chunk = view[:n]
            state.hasher.update(chunk)
            crc = zlib.crc32(chunk, crc)
            offset += n
        state.crcs.append(crc)


async def _prehash(
    ctx: BatchContext, fd: int, size: int, part_size: int
) -> tuple[Digests, list[int]]:
    """The file's digests and its parts' CRC32s, read before the upload starts.

    In worker-thread hops of whole parts (about :data:`_PREHASH_STEP` bytes), so that a
    cancellation stops it between hops.
    """
    settings = ctx.settings
    state = _Prehash(
        StreamingHasher(sha256=True, md5=settings.md5),
        part_size,
        [],
        bytearray(min(CHUNK_SIZE, part_size)),
    )
    count = max(1, -(-size // part_size))
    step = max(1, _PREHASH_STEP // part_size)
    for first in range(0, count, step):
        await ctx.in_thread(_prehash_parts, fd, state, first, min(first + step, count), size)
    return state.hasher.digests(), state.crcs


def _cached(ctx: BatchContext, item: UploadItem, info: os.stat_result) -> Digests | None:
    """The file's digests from the hash cache, if every one the settings ask for is there."""
    settings, cache = ctx.settings, ctx.hashes
    if cache is None or not settings.checksum:
        return None
    sha256 = cache.get(item.local, info)
    md5 = cache.get_md5(item.local, info) if settings.md5 else None
    if sha256 is None or (settings.md5 and md5 is None):
        return None
    return Digests(size=info.st_size, sha256=sha256, md5=md5)


async def _put_multipart(ctx: BatchContext, item: UploadItem) -> FileResult:
    """Upload in parts, with the sha256 computed first (or taken from the hash cache).

    The sha256 goes into the object's metadata. Without a sha256 to compute (checksums
    off), an md5 asked for is computed while the parts are read.
    """
    settings = ctx.settings
    key = ctx.key(item.path)
    client = ctx.requests.client
    fd, info = await ctx.in_thread(_open_and_stat, item.local)
    before = _Snapshot(info.st_size, info.st_mtime_ns)
    upload_id: str | None = None
    keep_open = False
    completed = False
    try:
        if before.size != item.size:
            ctx.progress.unexpected_bytes(item.size, before.size)
        cached = _cached(ctx, item, info)
        part_size = part_size_for(before.size, settings.part_size)
        crcs: list[int] | None = None
        if cached is None and settings.checksum:
            cached, crcs = await _prehash(ctx, fd, before.size, part_size)
        hasher = (
            StreamingHasher(sha256=False, md5=True) if cached is None and settings.md5 else None
        )
        upload_id, sent, stored = await _resume_or_create(ctx, key, fd, before, part_size, cached)
        try:
            parts = await _send_parts(
                ctx,
                item,
                fd,
                upload_id,
                before.size,
                part_size,
                sent,
                crc=settings.checksum,
                hasher=hasher,
                crcs=crcs,
            )
        except BaseException as exc:
            # an interruption (network, cancellation) leaves the upload open to resume
            keep_open = settings.resume and settings.checksum and not isinstance(exc, _FileChanged)
            raise
        after = await ctx.in_thread(_snapshot, fd)
        if after != before:
            raise TransferError("the file changed while it was being uploaded")
        if hasher is not None:
            digests = hasher.digests()
        elif cached is not None:
            digests = cached
        else:
            digests = Digests(size=before.size, sha256=None)
        if stored is not None and digests.sha256 != stored:
            # resumed an upload created for other bytes of the same size and mtime
            raise TransferError("the file changed since its upload was started")
        response = await ctx.requests.call(
            client.complete_multipart_upload,
            Bucket=ctx.bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )
        completed = True
    finally:
        with anyio.CancelScope(shield=True):
            await ctx.in_thread(os.close, fd)
            if upload_id is not None and not keep_open:
                if not completed:
                    await _abort(ctx, key, upload_id)
                await _forget(ctx, key)
    if crcs is not None and ctx.hashes is not None and digests.sha256 is not None:
        # hashed here: a later upload (or sync) of the unchanged file takes it from there
        ctx.hashes.put(item.local, info, digests.sha256, digests.md5)
    return ok_result(item.path, digests, response.get("ETag"), item.local, size=before.size)


async def _forget(ctx: BatchContext, key: str) -> None:
    if ctx.settings.resume and ctx.settings.cache_dir is not None:
        await ctx.in_thread(
            remove_upload_state, ctx.settings.cache_dir, ctx.endpoint, ctx.bucket, key
        )


async def _resume_or_create(
    ctx: BatchContext, key: str, fd: int, file: _Snapshot, part_size: int, known: Digests | None
) -> tuple[str, dict[int, CompletedPartTypeDef], str | None]:
    """Continue this machine's open upload of the same file, or create a new one.

    ``known`` are the file's digests, when known before its bytes are sent (cached or
    read first): its sha256 goes into the object's metadata, and its md5 too if computed
    (``md5chksum``, base64, as rclone stores it). Returns the upload id, the parts already
    there (verified against the local bytes), and the sha256 the upload stores (the file
    must have it).
    """
    sha256 = known.sha256 if known is not None else None
    settings = ctx.settings
    cache_dir = settings.cache_dir if settings.resume and settings.checksum else None
    client = ctx.requests.client
    if cache_dir is not None:
        state = await ctx.in_thread(load_upload_state, cache_dir, ctx.endpoint, ctx.bucket, key)
        if state is not None:
            same = (state.size, state.mtime_ns, state.part_size) == (
                file.size,
                file.mtime_ns,
                part_size,
            ) and (sha256 is None or state.sha256 in (None, sha256))
            if same and await _is_open(ctx, key, state.upload_id):
                listed = await _list_parts(ctx, key, state.upload_id)
                sent = await ctx.in_thread(
                    _verify_parts, fd, listed, part_size, file.size, settings.checksum
                )
                log.info("resuming the upload of %s: %d parts already there", key, len(sent))
                return state.upload_id, sent, state.sha256
            if not same:  # the file changed: that upload would record a stale sha256
                await _abort(ctx, key, state.upload_id)
            await ctx.in_thread(remove_upload_state, cache_dir, ctx.endpoint, ctx.bucket, key)
    create_args: dict[str, Any] = {}
    if settings.checksum:
        create_args["ChecksumAlgorithm"] = "CRC32"
    metadata: dict[str, str] = {}
    if sha256 is not None:
        metadata[_METADATA_KEY] = sha256
    if known is not None and known.md5 is not None:
        metadata[MD5_METADATA_KEY] = md5_b64(known.md5)
    if metadata:
        create_args["Metadata"] = metadata
    created = await ctx.requests.call(
        client.create_multipart_upload, Bucket=ctx.bucket, Key=key, **create_args
    )
    upload_id = created["UploadId"]
    if cache_dir is not None:
        state = UploadState(upload_id, sha256, file.size, part_size, file.mtime_ns)
        await ctx.in_thread(save_upload_state, cache_dir, ctx.endpoint, ctx.bucket, key, state)
    return upload_id, {}, sha256


async def _is_open(ctx: BatchContext, key: str, upload_id: str) -> bool:
    """Whether ``upload_id`` is still open: ``ListParts`` of it answers (not ``NoSuchUpload``).

    ListParts is authorised on the object (``s3:ListMultipartUploadParts``), which scoped
    write credentials have on every store; ``ListMultipartUploads`` needs a bucket-level
    permission that some stores can't limit to a prefix (so credentials may lack it).
    """
    client = ctx.requests.client
    try:
        await ctx.requests.call(
            client.list_parts, Bucket=ctx.bucket, Key=key, UploadId=upload_id, MaxParts=1
        )
    except ClientError:  # NoSuchUpload (completed, aborted, expired), or not allowed
        log.info("the recorded upload of %s is gone; starting it over", key, exc_info=True)
        return False
    return True


async def _list_parts(ctx: BatchContext, key: str, upload_id: str) -> list[dict[str, Any]]:
    client = ctx.requests.client
    parts: list[dict[str, Any]] = []
    marker = 0
    while True:
        page = await ctx.requests.call(
            client.list_parts,
            Bucket=ctx.bucket,
            Key=key,
            UploadId=upload_id,
            PartNumberMarker=marker,
        )
        parts.extend(dict(p) for p in page.get("Parts", []))
        if not page.get("IsTruncated"):
            return parts
        marker = int(page.get("NextPartNumberMarker", 0))


def _verify_parts(
    fd: int, listed: list[dict[str, Any]], part_size: int, size: int, crc: bool
) -> dict[int, CompletedPartTypeDef]:
    """The listed parts whose size and checksum (CRC32, else md5 ETag) match the local bytes.

    Parts were sent with their CRC32 when ``crc``; completing the upload needs it again for
    every part, and servers that don't list it (SeaweedFS) get it from the local bytes.
    """
    kept: dict[int, CompletedPartTypeDef] = {}
    count = max(1, -(-size // part_size))
    for part in listed:
        number = int(part.get("PartNumber", 0))
        if not 1 <= number <= count:
            continue
        offset = (number - 1) * part_size
        length = min(part_size, size - offset)
        if int(part.get("Size", -1)) != length:
            continue
        data = os.pread(fd, length, offset)
        etag = str(part.get("ETag", ""))
        listed_crc = part.get("ChecksumCRC32")
        local_crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        if listed_crc:
            good = listed_crc == local_crc
        else:
            good = etag.strip('"') == hashlib.md5(data, usedforsecurity=False).hexdigest()
        if good:
            done: CompletedPartTypeDef = {"PartNumber": number, "ETag": etag}
            if crc:
                done["ChecksumCRC32"] = local_crc
            kept[number - 1] = done
    return kept


async def _send_parts(
    ctx: BatchContext,
    item: UploadItem,
    fd: int,
    upload_id: str,
    size: int,
    part_size: int,
    sent: dict[int, CompletedPartTypeDef],
    *,
    crc: bool,
    hasher: StreamingHasher | None,
    crcs: list[int] | None = None,
) -> list[CompletedPartTypeDef]:
    """Read the parts in order (one thread hop each) and upload the missing ones concurrently.

    Every part is fed to ``hasher`` (if any) as it is read. Parts already there (a resumed
    upload) are read for the hasher only. ``crcs``: each part's CRC32 from the pass that
    hashed the file, which the bytes read now must have.
    """
    count = max(1, -(-size // part_size))
    completed: list[CompletedPartTypeDef | None] = [sent.get(i) for i in range(count)]
    failures: list[Exception] = []
    done = 0
    key = ctx.key(item.path)
    resumed = sum(min(part_size, size - i * part_size) for i in sent)
    if resumed:
        ctx.progress.unexpected_bytes(resumed, 0)  # not sent again: not part of this batch

    async def send(index: int, data: bytes, checksum: str | None, held: int) -> None:
        nonlocal done
        try:
            headers = {} if checksum is None else {"x-amz-checksum-crc32": checksum}
            response = await ctx.requests.upload_part(key, upload_id, index + 1, data, headers)
            part: CompletedPartTypeDef = {"PartNumber": index + 1, "ETag": response.etag}
            if checksum is not None:
                part["ChecksumCRC32"] = response.headers.get("x-amz-checksum-crc32", checksum)
            completed[index] = part
            done += len(data)
            await ctx.progress.transferred(item.path, len(data), done)
        except Exception as exc:
            failures.append(exc)
            tg.cancel_scope.cancel()
        finally:
            ctx.budget.release(held)

    async with anyio.create_task_group() as tg:
        try:
            for index in range(count):
                offset = index * part_size
                length = min(part_size, size - offset)
                if completed[index] is not None:
                    if hasher is not None:
                        await ctx.in_thread(_read_part, fd, offset, length, False, hasher)
                    continue
                held = await ctx.budget.acquire(length)
                try:
                    data, checksum = await ctx.in_thread(
                        _read_part,
                        fd,
                        offset,
                        length,
                        crc,
                        hasher,
                        None if crcs is None else crcs[index],
                    )
                except BaseException:
                    ctx.budget.release(held)
                    raise
                tg.start_soon(send, index, data, checksum, held)
        except Exception as exc:
            failures.append(exc)
            tg.cancel_scope.cancel()
    if failures:
        raise failures[0]
    return [part for part in completed if part is not None]


async def _abort(ctx: BatchContext, key: str, upload_id: str) -> None:
    """Abort a multipart upload, best effort (its parts would otherwise linger and cost)."""
    client = ctx.requests.client
    with anyio.move_on_after(_ABORT_TIMEOUT):
        try:
            await ctx.requests.call(
                client.abort_multipart_upload, Bucket=ctx.bucket, Key=key, UploadId=upload_id
            )
            log.debug("aborted multipart upload of %s", key)
            return
        except Exception:
            log.warning("could not abort the multipart upload of %s", key, exc_info=True)
            return
    log.warning("aborting the multipart upload of %s timed out", key)
