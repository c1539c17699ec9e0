"""Sync and verify: a planner over an explicit :class:`SyncContext`.

One comparison serves both: a local file matches its remote copy when its size matches and
its content is shown equal by one of, in this order (the first that applies decides):

1. **The known sha256** (a manifest, a download spec) - for a sync, trusted only while the
   listed object still has the ETag the manifest recorded (``remote_etags``), so an object
   replaced behind the manifest's back is not taken for the registered one;
2. **The ETag of a single-part object** (no ``-N`` suffix: the md5 of its bytes), compared
   with the local file's md5 - no request (the ETag comes from the listing). A different md5
   goes on to 3, for ETags that aren't md5s (server-side encryption);
3. **The stored sha256** (``x-amz-meta-sha256``, ``SyncContext.stored_sha256``: one HEAD),
   else **the stored md5** that rclone keeps on the multipart objects it uploads
   (``md5chksum``, ``SyncContext.stored_md5``: the engine's context reads it from the same
   HEAD; the engine writes it too with ``md5=True``), compared with the local file's md5;
4. **The ETag of a multipart object** (``<md5 of the parts' md5s>-<N>``) whose sha256 is
   neither known nor stored (an object another tool uploaded, or a store that drops user
   metadata): computed locally for the part size the store reports for part 1
   (``SyncContext.first_part_size``: one HEAD), else for the common part sizes that cut the
   file into ``N`` parts (:func:`~provena_like.storage.hashing.etag_part_sizes`). The
   multipart ETag found equal is cached with the file's hashes: the next sync compares it
   with the listed ETag first, without a request.

A multipart object no rule shows equal is transferred again. For a sync the local hashes
come from :class:`~provena_like.storage.cache.HashCache` when the file's size and mtime are
unchanged, else they are computed in a worker thread (same-size edits are always caught:
nothing is skipped on size and mtime alone). A verify reads every byte again (the ETags of
a listed prefix included, download specs carry none). Local partial downloads never count as
files (:func:`~provena_like.storage.selection.local_files`).

Work per file runs in at most ``SyncContext.files_in_flight`` tasks at once (workers that
take the next file), not one task per file.

``dry_run`` sends no writing request and touches no local file: the plan comes back as
``skipped`` results whose reason says what would happen (``would upload``, ``would download``,
``would delete``). Unchanged files are ``skipped`` with reason ``unchanged``.

The planner sends no S3 request itself: listing, HEAD, upload, download and delete are the
context's callables, which :meth:`TransferEngine.sync_context
<provena_like.storage.engine.TransferEngine.sync_context>` binds to an open engine.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

import anyio

from provena_like.storage._plan import part_size_for, plan_downloads, plan_uploads
from provena_like.storage._requests import describe
from provena_like.storage.cache import HashCache
from provena_like.storage.events import HashMeter, ProgressCallback, hashing_progress
from provena_like.storage.hashing import etag_md5, etag_part_sizes, etag_parts
from provena_like.storage.keys import RESERVED_KEYS, validate_prefix
from provena_like.storage.listing import RemoteObject
from provena_like.storage.results import (
    UNCHANGED,
    FileCheck,
    FileResult,
    TransferResult,
    VerifyResult,
)
from provena_like.storage.selection import DownloadSpec, download_entry, local_files, matches

__all__ = ["UNCHANGED", "SyncContext", "sync_down", "sync_up", "verify"]

T = TypeVar("T")


class Uploader(Protocol):
    """Uploads ``(local file, key relative to prefix)`` pairs (``TransferEngine.upload``)."""

    async def __call__(
        self,
        files: list[tuple[Path, str]],
        *,
        prefix: str,
        progress: ProgressCallback | None,
        fail_fast: bool,
    ) -> TransferResult: ...


class Downloader(Protocol):
    """Downloads specs into a folder (``TransferEngine.download``)."""

    async def __call__(
        self,
        objects: list[DownloadSpec],
        dest: Path,
        *,
        progress: ProgressCallback | None,
        fail_fast: bool,
    ) -> TransferResult: ...


@dataclass(frozen=True, slots=True)
class SyncContext:
    """Everything the sync planner uses, as values and callables (keys relative to the dataset).

    Attributes:
        list_objects: The objects under a prefix, in key order (``TransferEngine.list``).
        stored_sha256: An object's ``x-amz-meta-sha256`` (lowercase) or ``None``; raises
            when the object can't be read.
        upload: Sends files (``TransferEngine.upload``).
        download: Fetches objects (``TransferEngine.download``).
        delete: Deletes objects, a result per key.
        cache_dir: Where the local hash cache lives (one file per local root).
        io_limiter: Worker threads for stat and hashing.
        files_in_flight: Most files compared at once (tasks and calls in flight).
        first_part_size: The size of part 1 of a multipart object, as the store reports it
            (``None`` if it doesn't); ``None``: only common part sizes are tried (rule 4).
        part_size: The part size this engine is asked to upload with (``None``: its default),
            tried for rule 4 after the one the store reports.
        stored_md5: An object's ``md5chksum`` (rclone's whole-file md5, as lowercase hex) or
            ``None``; raises when the object can't be read. Asked only when no sha256 is
            known or stored; ``None``: rule 3 ends with the sha256.
    """

    list_objects: Callable[[str], AsyncIterator[RemoteObject]]
    stored_sha256: Callable[[str], Awaitable[str | None]]
    upload: Uploader
    download: Downloader
    delete: Callable[[Sequence[str]], Awaitable[list[FileResult]]]
    cache_dir: Path
    io_limiter: anyio.CapacityLimiter
    files_in_flight: int
    first_part_size: Callable[[str], Awaitable[int | None]] | None = None
    part_size: int | None = None
    stored_md5: Callable[[str], Awaitable[str | None]] | None = None


@dataclass(slots=True)
class _Pair:
    path: str  # key relative to the dataset root
    local: Path
    size: int | None  # the remote copy's, if known
    remote_sha256: str | None
    etag: str | None = None  # the listed object's ETag (syncs only)


def _etag(value: str | None) -> str | None:
    """An ETag without quotes, lowercase (``None`` stays ``None``)."""
    return value.strip().strip('"').lower() if value is not None else None


async def _bounded(items: Sequence[T], work: Callable[[T], Awaitable[None]], limit: int) -> None:
    """``work(item)`` for every item, in at most ``limit`` tasks (workers sharing one queue)."""
    queue = iter(items)

    async def worker() -> None:
        for item in queue:  # each next() hands one item to one worker
            await work(item)

    async with anyio.create_task_group() as tg:
        for _ in range(min(max(1, limit), len(items))):
            tg.start_soon(worker)


def _stat(path: Path) -> os.stat_result | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info if not os.path.isdir(path) else None


async def _compare(
    ctx: SyncContext, pair: _Pair, cache: HashCache, meter: HashMeter, *, trust_cache: bool
) -> FileCheck:
    """The sync comparison of one file (see :func:`_check`), its hashing counted by ``meter``."""
    read = 0

    def counted(n: int) -> None:  # in the hashing thread
        nonlocal read
        read += n
        meter.add(n)

    try:
        return await _check(ctx, pair, cache, counted, trust_cache=trust_cache)
    finally:
        meter.file_done(expected=pair.size or 0, read=read)


async def _check(
    ctx: SyncContext,
    pair: _Pair,
    cache: HashCache,
    on_bytes: Callable[[int], None],
    *,
    trust_cache: bool,
) -> FileCheck:
    """The sync comparison of one file: size, then the first rule that applies (see above)."""
    remote = pair.remote_sha256
    md5 = etag_md5(pair.etag) if remote is None else None
    # when nothing remote is to be read first, stat and hash in one trip to a worker thread
    hash_now = remote is not None or md5 is not None

    def inspect() -> tuple[os.stat_result | None, tuple[str, str | None] | None]:
        info = _stat(pair.local)
        if info is None or not hash_now or (pair.size is not None and info.st_size != pair.size):
            return info, None
        return info, cache.digest(
            pair.local, info, trust_cache=trust_cache, md5=md5 is not None, on_bytes=on_bytes
        )

    info, hashes = await anyio.to_thread.run_sync(inspect, limiter=ctx.io_limiter)
    if info is None:
        return FileCheck(pair.path, "missing-local", "missing", size=pair.size, local=pair.local)

    def mismatch(reason: str, sha256: str | None = None) -> FileCheck:
        return FileCheck(pair.path, "mismatch", reason, pair.size, sha256, pair.local)

    if pair.size is not None and info.st_size != pair.size:
        return mismatch(f"size {info.st_size}, expected {pair.size}")
    unproven = "no sha256 to compare with (none known or stored)"
    if md5 is not None:  # a single-part object: its ETag is its md5, no request needed
        if hashes is None:
            return mismatch("the local file can't be read")
        if hashes[1] == md5:
            return FileCheck(pair.path, "ok", size=pair.size, sha256=hashes[0], local=pair.local)
        # most likely changed; but an ETag that isn't an md5 (SSE-KMS, SSE-C) looks the same,
        # so a stored sha256 still has the last word
        unproven = f"md5 {hashes[1]}, expected {md5} (the object's ETag)"
    parts = etag_parts(pair.etag) if remote is None and pair.size is not None else None
    if parts is not None and trust_cache and (tag := cache.get_etag(pair.local, info)):
        sha256 = cache.get(pair.local, info)
        if tag[1] == pair.etag and sha256 is not None:  # rule 4, found equal before
            return FileCheck(pair.path, "ok", size=pair.size, sha256=sha256, local=pair.local)
    if remote is None:
        try:
            remote = await ctx.stored_sha256(pair.path)
        except Exception as exc:
            return mismatch(f"the stored sha256 can't be read: {describe(exc)}")
    if remote is None and ctx.stored_md5 is not None:
        try:
            stored_md5 = await ctx.stored_md5(pair.path)
        except Exception as exc:
            return mismatch(f"the stored md5 (md5chksum) can't be read: {describe(exc)}")
        if stored_md5 is not None:
            return await _by_stored_md5(
                ctx, pair, cache, info, hashes, stored_md5, on_bytes, trust_cache=trust_cache
            )
    if remote is None and parts is not None and pair.size is not None:
        return await _by_multipart_etag(
            ctx, pair, cache, info, parts, on_bytes, trust_cache=trust_cache
        )
    if remote is None:
        return mismatch(unproven, hashes[0] if hashes is not None else None)
    if hashes is None:
        stat = info
        hashes = await anyio.to_thread.run_sync(
            lambda: cache.digest(pair.local, stat, trust_cache=trust_cache, on_bytes=on_bytes),
            limiter=ctx.io_limiter,
        )
    if hashes is None:
        return mismatch("the local file can't be read")
    local = hashes[0]
    if local != remote.lower():
        return mismatch(f"sha256 {local}, expected {remote.lower()}", local)
    return FileCheck(pair.path, "ok", size=pair.size, sha256=local, local=pair.local)


async def _by_stored_md5(
    ctx: SyncContext,
    pair: _Pair,
    cache: HashCache,
    info: os.stat_result,
    hashes: tuple[str, str | None] | None,
    stored_md5: str,
    on_bytes: Callable[[int], None],
    *,
    trust_cache: bool,
) -> FileCheck:
    """Rule 3, rclone's way: the local file's md5 against the object's ``md5chksum``."""
    if hashes is None or hashes[1] is None:
        hashes = await anyio.to_thread.run_sync(
            lambda: cache.digest(
                pair.local, info, trust_cache=trust_cache, md5=True, on_bytes=on_bytes
            ),
            limiter=ctx.io_limiter,
        )
    if hashes is None:
        reason, sha256 = "the local file can't be read", None
    elif hashes[1] == stored_md5:
        return FileCheck(pair.path, "ok", size=pair.size, sha256=hashes[0], local=pair.local)
    else:
        reason = f"md5 {hashes[1]}, expected {stored_md5} (the object's md5chksum)"
        sha256 = hashes[0]
    return FileCheck(pair.path, "mismatch", reason, pair.size, sha256, pair.local)


async def _by_multipart_etag(
    ctx: SyncContext,
    pair: _Pair,
    cache: HashCache,
    info: os.stat_result,
    parts: int,
    on_bytes: Callable[[int], None],
    *,
    trust_cache: bool,
) -> FileCheck:
    """Rule 4: the local file's multipart ETag, for the part sizes that give ``parts`` parts."""
    assert pair.size is not None and pair.etag is not None
    reported: int | None = None
    if ctx.first_part_size is not None:
        try:
            reported = await ctx.first_part_size(pair.path)
        except Exception:  # the store doesn't say: the common part sizes remain
            reported = None
    own = part_size_for(pair.size, ctx.part_size)  # how this engine would have cut it
    sizes = etag_part_sizes(pair.size, parts, (reported, own))
    sha256: str | None = None

    def digest(part_size: int) -> tuple[str, str] | None:
        return cache.digest_etag(
            pair.local, info, part_size, trust_cache=trust_cache, on_bytes=on_bytes
        )

    for part_size in sizes:
        got = await anyio.to_thread.run_sync(digest, part_size, limiter=ctx.io_limiter)
        if got is None:
            return FileCheck(
                pair.path, "mismatch", "the local file can't be read", pair.size, None, pair.local
            )
        sha256 = got[0]
        if got[1] == pair.etag:
            return FileCheck(pair.path, "ok", size=pair.size, sha256=sha256, local=pair.local)
    tried = ", ".join(f"{n // 1024} KiB" for n in sizes) or "none gives that many parts"
    reason = (
        f"no sha256 to compare with (none known or stored), and no part size tried ({tried}) "
        f"gives the object's multipart ETag {pair.etag}"
    )
    return FileCheck(pair.path, "mismatch", reason, pair.size, sha256, pair.local)


async def _compare_all(
    ctx: SyncContext,
    pairs: Sequence[_Pair],
    cache: HashCache,
    progress: ProgressCallback | None,
    *,
    trust_cache: bool,
) -> dict[str, FileCheck]:
    """Compare every pair; the hashing is reported to ``progress`` as ``HashingProgress``."""
    checks: dict[str, FileCheck] = {}
    total = sum(pair.size or 0 for pair in pairs)
    async with hashing_progress(progress, files_total=len(pairs), bytes_total=total) as meter:

        async def one(pair: _Pair) -> None:
            checks[pair.path] = await _compare(ctx, pair, cache, meter, trust_cache=trust_cache)

        await _bounded(pairs, one, ctx.files_in_flight)
    return checks


async def _unchanged(
    ctx: SyncContext,
    pairs: Sequence[_Pair],
    cache: HashCache,
    progress: ProgressCallback | None,
) -> dict[str, str]:
    """The pairs (same size on both sides) whose sha256 matches too, with that sha256."""
    checks = await _compare_all(ctx, pairs, cache, progress, trust_cache=True)
    return {path: c.sha256 for path, c in checks.items() if c.ok and c.sha256 is not None}


def _skipped(pairs: Sequence[_Pair], same: Mapping[str, str]) -> list[FileResult]:
    """Skipped results of the unchanged pairs, with size and sha256 (``same``: path → sha256).

    Size and sha256 are there so that a caller can register an unchanged upload.
    """
    sizes = {p.path: p.size for p in pairs}
    return [
        FileResult(p, "skipped", size=sizes[p], sha256=same[p], reason=UNCHANGED)
        for p in sorted(same)
    ]


async def _listed(ctx: SyncContext, prefix: str) -> list[RemoteObject]:
    """The objects under ``prefix``: files only (no directory markers, no metadata.json)."""
    return [
        obj
        async for obj in ctx.list_objects(prefix)
        if not obj.key.endswith("/") and obj.key not in RESERVED_KEYS
    ]


async def _entries_and_etags(
    ctx: SyncContext, objects: str | Iterable[DownloadSpec]
) -> tuple[list[tuple[str, str, str | None, int | None]], dict[str, str]]:
    """Download entries from a prefix (listed, with each key's ETag) or from specs (none)."""
    if isinstance(objects, str):
        base = validate_prefix(objects)[: objects.rfind("/") + 1]
        listed = await _listed(ctx, objects)
        entries: list[tuple[str, str, str | None, int | None]] = [
            (o.key, o.key[len(base) :], None, o.size) for o in listed
        ]
        return entries, {o.key: o.etag for o in listed}
    return [download_entry(spec) for spec in objects], {}


async def sync_up(
    ctx: SyncContext,
    local_dir: Path,
    *,
    prefix: str,
    delete: bool,
    dry_run: bool,
    include: Sequence[str],
    exclude: Sequence[str],
    remote_sha256: Mapping[str, str] | None,
    progress: ProgressCallback | None,
    fail_fast: bool,
    remote_etags: Mapping[str, str] | None = None,
) -> TransferResult:
    """See :meth:`~provena_like.storage.engine.TransferEngine.sync_up`.

    ``remote_etags`` are the ETags the ``remote_sha256`` were recorded for (a manifest's):
    a known sha256 whose ETag is given counts only while the listed object has that ETag.
    """
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    validate_prefix(prefix)
    items = await anyio.to_thread.run_sync(
        lambda: plan_uploads(local_dir, prefix=prefix, include=include, exclude=exclude),
        limiter=ctx.io_limiter,
    )
    remote = {obj.key: obj for obj in await _listed(ctx, prefix)}
    known = remote_sha256 or {}
    recorded = remote_etags or {}

    def trusted(path: str) -> str | None:
        """The known sha256, unless the object's ETag isn't the one it was recorded for."""
        etag = recorded.get(path)
        if etag is not None and _etag(etag) != _etag(remote[path].etag):
            return None  # replaced (or rewritten) since: compare with the object itself
        return known.get(path)

    pairs = [
        _Pair(item.path, item.local, item.size, trusted(item.path), _etag(remote[item.path].etag))
        for item in items
        if item.error is None
        and item.size is not None
        and item.path in remote
        and remote[item.path].size == item.size
    ]
    cache = HashCache.for_root(ctx.cache_dir, local_dir)
    same = await _unchanged(ctx, pairs, cache, progress)
    results = _skipped(pairs, same)
    todo = [item for item in items if item.path not in same]
    local_keys = {item.path for item in items}
    extraneous = [
        key
        for key in sorted(remote)
        if key not in local_keys and matches(key[len(prefix) :], include, exclude)
    ]
    if dry_run:
        results += [
            FileResult(i.path, "skipped", size=i.size, reason="would upload", local=i.local)
            for i in todo
        ]
        if delete:
            results += [FileResult(k, "skipped", reason="would delete") for k in extraneous]
        await anyio.to_thread.run_sync(cache.save)
        return TransferResult(results)
    pairs_up = [(item.local, item.path[len(prefix) :]) for item in todo]
    # the upload reads the cache from disk: the sha256 of a multipart file hashed just now
    # (rule 4) is then stored with the object
    await anyio.to_thread.run_sync(cache.save, limiter=ctx.io_limiter)
    uploaded = await ctx.upload(pairs_up, prefix=prefix, progress=progress, fail_fast=fail_fast)

    def remember() -> None:
        for f in uploaded.ok:
            if f.local is not None and f.sha256 is not None and (info := _stat(f.local)):
                if info.st_size == f.size:
                    cache.put(f.local, info, f.sha256)
        cache.save()

    await anyio.to_thread.run_sync(remember, limiter=ctx.io_limiter)
    results = [*uploaded.files, *results]
    if delete:
        results += await ctx.delete(extraneous)
    return TransferResult(results)


def _remove(paths: Iterable[tuple[str, Path]]) -> list[FileResult]:
    results: list[FileResult] = []
    for relative, path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            results.append(FileResult(relative, "ok", reason="deleted", local=path))
        except OSError as exc:
            results.append(
                FileResult(relative, "failed", reason=describe(exc), error=exc, local=path)
            )
        else:
            results.append(FileResult(relative, "ok", reason="deleted", local=path))
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only if now empty
    return results


async def sync_down(
    ctx: SyncContext,
    objects: str | Iterable[DownloadSpec],
    dest: Path,
    *,
    delete: bool,
    dry_run: bool,
    include: Sequence[str],
    exclude: Sequence[str],
    progress: ProgressCallback | None,
    fail_fast: bool,
) -> TransferResult:
    """See :meth:`~provena_like.storage.engine.TransferEngine.sync_down`."""
    entries, etags = await _entries_and_etags(ctx, objects)
    items = plan_downloads(entries, dest, include=include, exclude=exclude)
    by_key = {entry[0]: entry for entry in entries}
    locals_ = await anyio.to_thread.run_sync(local_files, dest, limiter=ctx.io_limiter)
    pairs: list[_Pair] = []
    for item in items:
        if item.error is not None or item.target is None or item.size is None:
            continue
        relative = item.target.relative_to(dest).as_posix()
        if relative in locals_:
            etag = _etag(etags.get(item.path))
            pairs.append(_Pair(item.path, locals_[relative], item.size, item.expected_sha256, etag))
    cache = HashCache.for_root(ctx.cache_dir, dest)
    same = await _unchanged(ctx, pairs, cache, progress)
    results = _skipped(pairs, same)
    todo = [item for item in items if item.path not in same]
    wanted = {item.target.relative_to(dest).as_posix() for item in items if item.target is not None}
    extraneous = [
        (rel, path)
        for rel, path in sorted(locals_.items())
        if rel not in wanted and matches(rel, include, exclude)
    ]
    if dry_run:
        results += [
            FileResult(i.path, "skipped", size=i.size, reason="would download", local=i.target)
            for i in todo
        ]
        if delete:
            results += [
                FileResult(rel, "skipped", reason="would delete", local=path)
                for rel, path in extraneous
            ]
        await anyio.to_thread.run_sync(cache.save)
        return TransferResult(results)
    specs: list[DownloadSpec] = [by_key[item.path] for item in todo]
    downloaded = await ctx.download(specs, dest, progress=progress, fail_fast=fail_fast)

    def remember() -> None:
        for f in downloaded.ok:
            if f.local is not None and f.sha256 is not None and (info := _stat(f.local)):
                cache.put(f.local, info, f.sha256)
        cache.save()

    await anyio.to_thread.run_sync(remember, limiter=ctx.io_limiter)
    results = [*downloaded.files, *results]
    if delete:
        results += await anyio.to_thread.run_sync(_remove, extraneous)
    return TransferResult(results)


async def verify(
    ctx: SyncContext,
    objects: str | Iterable[DownloadSpec],
    dest: Path,
    *,
    include: Sequence[str],
    exclude: Sequence[str],
    progress: ProgressCallback | None = None,
) -> VerifyResult:
    """See :meth:`~provena_like.storage.engine.TransferEngine.verify`."""
    entries, etags = await _entries_and_etags(ctx, objects)
    items = plan_downloads(entries, dest, include=include, exclude=exclude)
    locals_ = await anyio.to_thread.run_sync(local_files, dest, limiter=ctx.io_limiter)
    pairs = [
        _Pair(item.path, item.target, item.size, item.expected_sha256, _etag(etags.get(item.path)))
        for item in items
        if item.error is None and item.target is not None
    ]
    cache = HashCache.for_root(ctx.cache_dir, dest)
    checks = await _compare_all(ctx, pairs, cache, progress, trust_cache=False)
    await anyio.to_thread.run_sync(cache.save)
    files: list[FileCheck] = []
    for item in items:
        if item.error is not None:  # an unsafe key: no local copy can match it
            files.append(FileCheck(item.path, "mismatch", describe(item.error), item.size))
        else:
            files.append(checks[item.path])
    wanted = {item.target.relative_to(dest).as_posix() for item in items if item.target is not None}
    files += [
        FileCheck(rel, "missing-remote", "not on the remote side", local=path)
        for rel, path in sorted(locals_.items())
        if rel not in wanted and matches(rel, include, exclude)
    ]
    return VerifyResult(files)
