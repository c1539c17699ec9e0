"""Single-object operations: the stored hashes, a HEAD, a read-back digest, batched deletes.

The engine binds these to its open requests and the dataset's location: the sync planner
gets them through :class:`~provena_like.storage._sync.SyncContext` (it sends no S3 request
itself), and :meth:`~provena_like.storage.TransferEngine.stat`,
:meth:`~provena_like.storage.TransferEngine.digest` and
:meth:`~provena_like.storage.TransferEngine.delete` expose them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import anyio

from provena_like._core.errors import TransferError
from provena_like.storage._requests import S3Requests, describe, error_code, to_transfer_error
from provena_like.storage.hashing import CHUNK_SIZE, Digests, StoredHashes, StreamingHasher
from provena_like.storage.listing import RemoteObject
from provena_like.storage.results import FileResult

__all__ = [
    "DELETE_BATCH",
    "delete_objects",
    "digest_object",
    "first_part_size",
    "head_object",
    "read_back_object",
    "stored_hashes",
]

_MISSING = frozenset({"404", "NoSuchKey", "NotFound"})

DELETE_BATCH = 1000
"""S3's most keys per ``DeleteObjects`` call."""

_HASH_ON_LOOP = 64 * 1024
"""Bytes read back that are hashed on the event loop (~30 µs of sha256) rather than in a
worker thread (a hop costs ~100 µs of CPU and two wake-ups: most of a small object's)."""


async def stored_hashes(requests: S3Requests, prefix: str, key: str) -> StoredHashes:
    """The whole-file hashes one object's metadata holds (one HEAD): ``sha256``, ``md5chksum``.

    Args:
        requests: The engine's open requests.
        prefix: The dataset's prefix in the bucket.
        key: The key relative to the dataset root.

    Raises:
        Exception: The HEAD's error (missing object, access denied, unreachable).
    """
    return StoredHashes.of((await requests.head(prefix + key)).metadata)


def _last_modified(value: str | None) -> datetime:
    if value:
        try:
            return parsedate_to_datetime(value)
        except (TypeError, ValueError):
            pass
    return datetime.fromtimestamp(0, UTC)


async def head_object(requests: S3Requests, prefix: str, key: str) -> RemoteObject | None:
    """HEAD one object: its size, ETag, time and stored sha256, or ``None`` if it is missing.

    Args:
        requests: The engine's open requests.
        prefix: The dataset's prefix in the bucket.
        key: The key relative to the dataset root.

    Raises:
        Exception: Any error but a missing object (access denied, unreachable).
    """
    try:
        head = await requests.head(prefix + key)
    except Exception as exc:
        if error_code(exc) in _MISSING:
            return None
        raise
    return RemoteObject(
        key=key,
        size=int(head.headers.get("Content-Length", "0")),
        etag=head.etag.strip('"'),
        last_modified=_last_modified(head.headers.get("Last-Modified")),
        sha256=StoredHashes.of(head.metadata).sha256,
    )


async def first_part_size(
    requests: S3Requests, bucket: str, prefix: str, key: str, *, holding: bool = False
) -> int | None:
    """The size of part 1 of a multipart object (``HEAD ?partNumber=1``), or ``None``.

    ``None`` when the store doesn't say (no ``x-amz-mp-parts-count`` in the answer: it
    ignored the part number, or the object has one part). ``holding``: the calling task
    holds a request slot already (see :meth:`S3Requests.call_holding`).

    Raises:
        Exception: The HEAD's error (missing object, access denied, unreachable).
    """
    call = requests.call_holding if holding else requests.call
    response = await call(
        requests.client.head_object, Bucket=bucket, Key=prefix + key, PartNumber=1
    )
    if not response.get("PartsCount"):
        return None
    return int(response.get("ContentLength", 0)) or None


async def digest_object(
    requests: S3Requests,
    prefix: str,
    key: str,
    limiter: anyio.CapacityLimiter,
    *,
    if_match: str | None = None,
) -> Digests:
    """Read one object back and hash the bytes received (sha256), streaming.

    The body's pieces are hashed in worker threads, about 8 MiB at a time, so memory stays
    bounded and the event loop never hashes. ``if_match`` pins the read to an ETag (the
    GET fails with ``PreconditionFailed`` if the object has another one).

    Returns:
        The digests of the object's bytes (``size``: how many were read).

    Raises:
        TransferError: If the body broke off before the object's size.
        Exception: The GET's error (a missing object: ``ClientError`` ``NoSuchKey``).
    """
    return (await _read_back(requests, prefix, key, limiter, if_match=if_match))[1]


async def read_back_object(
    requests: S3Requests, prefix: str, key: str, limiter: anyio.CapacityLimiter
) -> tuple[RemoteObject, Digests] | None:
    """Read one object back (one GET): what its headers say, and the digests of its bytes.

    As :func:`digest_object`, but ``None`` for a missing object; the headers give the ETag,
    the time and the stored sha256 (``RemoteObject.sha256``: what the uploader said), the
    digests what the bytes are.

    Raises:
        TransferError: If the body broke off before the object's size.
        Exception: The GET's error but a missing object (access denied, unreachable).
    """
    try:
        return await _read_back(requests, prefix, key, limiter)
    except Exception as exc:
        if error_code(exc) in _MISSING:
            return None
        raise


async def _read_back(
    requests: S3Requests,
    prefix: str,
    key: str,
    limiter: anyio.CapacityLimiter,
    *,
    if_match: str | None = None,
) -> tuple[RemoteObject, Digests]:
    hasher = StreamingHasher()
    pending: list[bytes] = []
    held = 0

    def feed(pieces: list[bytes]) -> None:
        for piece in pieces:
            hasher.update(piece)

    pinned = f'"{if_match.strip(chr(34))}"' if if_match is not None else None
    async with requests.open_get(prefix + key, if_match=pinned) as (headers, body):
        async for piece in body:
            pending.append(piece)
            held += len(piece)
            if held >= CHUNK_SIZE:
                batch, pending, held = pending, [], 0
                await anyio.to_thread.run_sync(feed, batch, limiter=limiter)
    if held <= _HASH_ON_LOOP:  # a thread hop costs more than hashing a few KiB here
        feed(pending)
    else:
        await anyio.to_thread.run_sync(feed, pending, limiter=limiter)
    if hasher.size != headers.total_size:
        raise TransferError(
            f"read {hasher.size} bytes of {key}, whose size is {headers.total_size}"
        )
    seen = RemoteObject(
        key=key,
        size=headers.total_size,
        etag=headers.etag.strip('"'),
        last_modified=_last_modified(headers.last_modified),
        sha256=StoredHashes.of(headers.metadata).sha256,
    )
    return seen, hasher.digests()


async def delete_objects(
    requests: S3Requests, bucket: str, prefix: str, keys: Sequence[str]
) -> list[FileResult]:
    """Delete objects (keys relative to the dataset root), 1,000 per request.

    Returns:
        One result per key: ``ok`` with reason ``deleted``, or ``failed`` with why.
    """
    results: list[FileResult] = []
    for start in range(0, len(keys), DELETE_BATCH):
        batch = keys[start : start + DELETE_BATCH]
        try:
            response = await requests.call(
                requests.client.delete_objects,
                Bucket=bucket,
                Delete={"Objects": [{"Key": prefix + k} for k in batch], "Quiet": False},
            )
        except Exception as exc:
            error = to_transfer_error(exc, "delete")
            results += [FileResult(k, "failed", reason=describe(exc), error=error) for k in batch]
            continue
        errors = {
            e.get("Key", "")[len(prefix) :]: f"{e.get('Code')}: {e.get('Message')}"
            for e in response.get("Errors", [])
        }
        deleted = {d.get("Key", "")[len(prefix) :] for d in response.get("Deleted", [])}
        # Not quiet, yet some stores (the JuiceFS gateway) answer <Deleted/> without the key:
        # a key neither reported deleted nor failed counts as deleted only if HEAD finds
        # nothing there now.
        unreported = [k for k in batch if k not in errors and k not in deleted]
        still_there = await _still_there(requests, prefix, unreported)
        results += [
            FileResult(k, "failed", reason=errors[k])
            if k in errors
            else FileResult(k, "failed", reason=still_there[k])
            if k in still_there
            else FileResult(k, "ok", reason="deleted")
            for k in batch
        ]
    return results


async def _still_there(requests: S3Requests, prefix: str, keys: Sequence[str]) -> dict[str, str]:
    """Of ``keys``, those HEAD still finds (or can't tell about), with why they failed."""
    found: dict[str, str] = {}
    limiter = anyio.CapacityLimiter(16)

    async def check(key: str) -> None:
        async with limiter:
            try:
                present = await head_object(requests, prefix, key) is not None
            except Exception as exc:
                found[key] = f"the store did not report it deleted ({describe(exc)})"
                return
        if present:
            found[key] = "the store did not report it deleted, and it is still there"

    async with anyio.create_task_group() as group:
        for key in keys:
            group.start_soon(check, key)
    return found
