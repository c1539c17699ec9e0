"""Sync: move only what differs, by size and sha256; delete extraneous files on request.

A file is unchanged when its size *and* sha256 match the remote copy's. The remote sha256
comes from the caller (a manifest) or from the object's ``x-amz-meta-sha256`` (one HEAD per
same-size candidate); the local one from :class:`~provena_like.storage._resume.HashCache`
when the file's size and mtime are unchanged, else it is computed in a worker thread. Same-size
edits are therefore always caught: nothing is skipped on size and mtime alone.

``dry_run`` sends no writing request and touches no local file: the plan comes back as
``skipped`` results whose reason says what would happen (``would upload``, ``would download``,
``would delete``). Unchanged files are ``skipped`` with reason ``unchanged``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from provena_like._core.errors import UsageError
from provena_like.storage._plan import matches, plan_downloads, plan_uploads
from provena_like.storage._requests import describe, to_transfer_error
from provena_like.storage._resume import PARTIAL_SUFFIX, HashCache
from provena_like.storage.hashing import hash_file, is_sha256_hex
from provena_like.storage.keys import RESERVED_KEYS, validate_prefix
from provena_like.storage.results import FileResult, TransferResult

if TYPE_CHECKING:
    from provena_like.storage.engine import DownloadSpec, TransferEngine
    from provena_like.storage.events import ProgressCallback

__all__ = ["UNCHANGED", "sync_down", "sync_up"]

UNCHANGED = "unchanged"
_DELETE_BATCH = 1000


@dataclass(slots=True)
class _Candidate:
    path: str  # key relative to the dataset root
    local: Path
    size: int
    remote_sha256: str | None


def _stat(path: Path) -> os.stat_result | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info if not os.path.isdir(path) else None


def _local_hash(cache: HashCache, path: Path, info: os.stat_result) -> str | None:
    cached = cache.get(path, info)
    if cached is not None:
        return cached
    try:
        digest = hash_file(path).sha256
    except OSError:
        return None
    if digest is not None:
        cache.put(path, info, digest)
    return digest


async def _unchanged(
    engine: TransferEngine, candidates: list[_Candidate], cache: HashCache
) -> dict[str, str]:
    """The candidates (same size on both sides) whose sha256 matches too, with that sha256."""
    requests, location = engine._open_requests()
    same: dict[str, str] = {}
    slots = anyio.Semaphore(engine.files_in_flight)

    async def check(c: _Candidate) -> None:
        async with slots:
            remote = c.remote_sha256
            if remote is None:
                try:
                    head = await requests.head(location.prefix + c.path)
                except Exception:
                    return  # can't tell: transfer it
                stored = head.metadata.get("sha256")
                remote = stored if is_sha256_hex(stored) else None
                if remote is None:
                    return
            info = await anyio.to_thread.run_sync(_stat, c.local, limiter=engine._io_limiter)
            if info is None or info.st_size != c.size:
                return
            local = await anyio.to_thread.run_sync(
                _local_hash, cache, c.local, info, limiter=engine._io_limiter
            )
            if local is not None and local == remote.lower():
                same[c.path] = local

    async with anyio.create_task_group() as tg:
        for c in candidates:
            tg.start_soon(check, c)
    return same


def _cache(engine: TransferEngine, root: Path) -> HashCache:
    cache_dir = engine._settings.cache_dir
    if cache_dir is None:  # pragma: no cover - the engine always sets one
        raise UsageError("sync needs a cache directory")
    return HashCache.for_root(cache_dir, root)


async def sync_up(
    engine: TransferEngine,
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
) -> TransferResult:
    """See :meth:`TransferEngine.sync_up`."""
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    validate_prefix(prefix)
    items = await anyio.to_thread.run_sync(
        lambda: plan_uploads(local_dir, prefix=prefix, include=include, exclude=exclude),
        limiter=engine._io_limiter,
    )
    remote = {
        obj.key: obj
        async for obj in engine.list(prefix)
        if not obj.key.endswith("/") and obj.key not in RESERVED_KEYS
    }
    known = remote_sha256 or {}
    candidates = [
        _Candidate(item.path, item.local, item.size, known.get(item.path))
        for item in items
        if item.error is None
        and item.size is not None
        and item.path in remote
        and remote[item.path].size == item.size
    ]
    cache = _cache(engine, local_dir)
    same = await _unchanged(engine, candidates, cache)
    sizes = {c.path: c.size for c in candidates}
    # with size and sha256, so that a caller can register an unchanged upload
    results = [
        FileResult(p, "skipped", size=sizes[p], sha256=same[p], reason=UNCHANGED)
        for p in sorted(same)
    ]
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
    pairs = [(item.local, item.path[len(prefix) :]) for item in todo]
    uploaded = await engine.upload(pairs, prefix=prefix, progress=progress, fail_fast=fail_fast)

    def remember() -> None:
        for f in uploaded.ok:
            if f.local is not None and f.sha256 is not None and (info := _stat(f.local)):
                if info.st_size == f.size:
                    cache.put(f.local, info, f.sha256)
        cache.save()

    await anyio.to_thread.run_sync(remember, limiter=engine._io_limiter)
    results = [*uploaded.files, *results]
    if delete:
        results += await delete_remote(engine, extraneous)
    return TransferResult(results)


async def delete_remote(engine: TransferEngine, keys: Sequence[str]) -> list[FileResult]:
    """Delete objects (keys relative to the dataset root), 1,000 per request."""
    requests, location = engine._open_requests()
    results: list[FileResult] = []
    for start in range(0, len(keys), _DELETE_BATCH):
        batch = keys[start : start + _DELETE_BATCH]
        try:
            response = await requests.call(
                requests.client.delete_objects,
                Bucket=location.bucket,
                Delete={"Objects": [{"Key": location.prefix + k} for k in batch], "Quiet": True},
            )
        except Exception as exc:
            error = to_transfer_error(exc, "delete")
            results += [FileResult(k, "failed", reason=describe(exc), error=error) for k in batch]
            continue
        errors = {
            e.get("Key", "")[len(location.prefix) :]: f"{e.get('Code')}: {e.get('Message')}"
            for e in response.get("Errors", [])
        }
        results += [
            FileResult(k, "failed", reason=errors[k])
            if k in errors
            else FileResult(k, "ok", reason="deleted")
            for k in batch
        ]
    return results


def _local_files(dest: Path) -> dict[str, Path]:
    """Every regular file under ``dest`` by relative POSIX path (partial downloads left out)."""
    found: dict[str, Path] = {}
    if not dest.is_dir():
        return found
    for dirpath, dirnames, filenames in os.walk(dest, followlinks=False):
        dirnames.sort()
        for name in filenames:
            if PARTIAL_SUFFIX in name or name.endswith(".partial"):
                continue
            path = Path(dirpath) / name
            found[path.relative_to(dest).as_posix()] = path
    return found


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
    engine: TransferEngine,
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
    """See :meth:`TransferEngine.sync_down`."""
    from provena_like.storage.engine import _entry

    entries: list[tuple[str, str, str | None, int | None]]
    if isinstance(objects, str):
        base = validate_prefix(objects)[: objects.rfind("/") + 1]
        entries = [
            (obj.key, obj.key[len(base) :], None, obj.size)
            async for obj in engine.list(objects)
            if not obj.key.endswith("/") and obj.key not in RESERVED_KEYS
        ]
    else:
        entries = [_entry(spec) for spec in objects]
    items = plan_downloads(entries, dest, include=include, exclude=exclude)
    by_key = {entry[0]: entry for entry in entries}
    locals_ = await anyio.to_thread.run_sync(_local_files, dest, limiter=engine._io_limiter)
    candidates: list[_Candidate] = []
    for item in items:
        if item.error is not None or item.target is None or item.size is None:
            continue
        relative = item.target.relative_to(dest).as_posix()
        if relative in locals_:
            candidates.append(
                _Candidate(item.path, locals_[relative], item.size, item.expected_sha256)
            )
    cache = _cache(engine, dest)
    same = await _unchanged(engine, candidates, cache)
    sizes = {c.path: c.size for c in candidates}
    # with size and sha256, so that a caller can register an unchanged upload
    results = [
        FileResult(p, "skipped", size=sizes[p], sha256=same[p], reason=UNCHANGED)
        for p in sorted(same)
    ]
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
    downloaded = await engine.download(specs, dest, progress=progress, fail_fast=fail_fast)

    def remember() -> None:
        for f in downloaded.ok:
            if f.local is not None and f.sha256 is not None and (info := _stat(f.local)):
                cache.put(f.local, info, f.sha256)
        cache.save()

    await anyio.to_thread.run_sync(remember, limiter=engine._io_limiter)
    results = [*downloaded.files, *results]
    if delete:
        results += await anyio.to_thread.run_sync(_remove, extraneous)
    return TransferResult(results)
