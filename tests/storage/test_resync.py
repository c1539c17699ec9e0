"""Re-syncs decide from the listing: the manifest's sha256 + ETag, or a single-part ETag's md5.

Requests are counted through an instrumented :class:`SyncContext` (HEADs are its
``stored_sha256``, transfers its ``upload``/``download``), against the real SeaweedFS.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from provena_like.storage import S3Credentials, SyncContext, TransferEngine, _sync
from provena_like.storage.cache import HashCache
from provena_like.storage.events import ProgressCallback
from provena_like.storage.listing import RemoteObject
from provena_like.storage.results import TransferResult
from provena_like.storage.selection import DownloadSpec
from tests.support.storage_helpers import BUCKET, put_multipart, put_plain, strip_metadata

pytestmark = pytest.mark.anyio

FILES = 40
MiB = 1024 * 1024


@dataclasses.dataclass
class Counted:
    """An engine's sync context whose HEADs, uploads and downloads are counted."""

    ctx: SyncContext
    heads: list[str] = dataclasses.field(default_factory=list)
    uploaded: list[str] = dataclasses.field(default_factory=list)
    downloaded: list[str] = dataclasses.field(default_factory=list)

    def context(self) -> SyncContext:
        ctx = self.ctx

        async def head(key: str) -> str | None:
            self.heads.append(key)
            return await ctx.stored_sha256(key)

        async def upload(
            files: list[tuple[Path, str]],
            *,
            prefix: str,
            progress: ProgressCallback | None,
            fail_fast: bool,
        ) -> TransferResult:
            self.uploaded += [prefix + key for _, key in files]
            return await ctx.upload(files, prefix=prefix, progress=progress, fail_fast=fail_fast)

        async def download(
            objects: list[DownloadSpec],
            dest: Path,
            *,
            progress: ProgressCallback | None,
            fail_fast: bool,
        ) -> TransferResult:
            self.downloaded += [spec[0] for spec in objects]
            return await ctx.download(objects, dest, progress=progress, fail_fast=fail_fast)

        return dataclasses.replace(ctx, stored_sha256=head, upload=upload, download=download)


def tree(root: Path, count: int, size: int = 4096) -> dict[str, bytes]:
    files = {f"d{i % 4}/f{i:03d}.bin": os.urandom(size) for i in range(count)}
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def local_state(root: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


async def sync_up(
    ctx: SyncContext,
    src: Path,
    *,
    known: dict[str, str] | None = None,
    etags: dict[str, str] | None = None,
) -> TransferResult:
    extra = {} if etags is None else {"remote_etags": etags}
    return await _sync.sync_up(
        ctx,
        src,
        prefix="",
        delete=False,
        dry_run=False,
        include=(),
        exclude=(),
        remote_sha256=known,
        progress=None,
        fail_fast=False,
        **extra,
    )


async def sync_down(ctx: SyncContext, objects: str, dest: Path) -> TransferResult:
    return await _sync.sync_down(
        ctx,
        objects,
        dest,
        delete=False,
        dry_run=False,
        include=(),
        exclude=(),
        progress=None,
        fail_fast=False,
    )


async def test_unchanged_resync_up_sends_no_head_and_no_put(
    tmp_path: Path, creds: S3Credentials
) -> None:
    src = tmp_path / "src"
    tree(src, FILES)
    async with TransferEngine(creds, cache_dir=tmp_path / "cache") as engine:
        first = await engine.upload(src)
        first.raise_for_failures()
        manifest = {f.path: f.sha256 for f in first.ok if f.sha256}
        recorded = {f.path: f.etag for f in first.ok if f.etag}
        assert len(manifest) == len(recorded) == FILES

        # without a manifest: each single-part ETag is the object's md5, still no HEAD
        counted = Counted(engine.sync_context())
        bare = await sync_up(counted.context(), src)
        assert len(bare.skipped) == FILES and {f.reason for f in bare} == {"unchanged"}
        assert counted.heads == [] and counted.uploaded == []
        assert {f.path: f.sha256 for f in bare.skipped} == manifest

        # with the manifest (sha256 + the ETag it was recorded for): the listing decides
        counted = Counted(engine.sync_context())
        again = await sync_up(counted.context(), src, known=manifest, etags=recorded)
        assert {f.reason for f in again} == {"unchanged"} and len(again.skipped) == FILES
        assert counted.heads == [] and counted.uploaded == []
        assert {f.path: f.sha256 for f in again.skipped} == manifest


async def test_an_object_replaced_behind_the_manifest_is_sent_again(
    tmp_path: Path, creds: S3Credentials, admin: Any
) -> None:
    src = tmp_path / "src"
    files = tree(src, 6)
    async with TransferEngine(creds, cache_dir=tmp_path / "cache") as engine:
        first = await engine.upload(src)
        first.raise_for_failures()
        manifest = {f.path: f.sha256 for f in first.ok if f.sha256}
        recorded = {f.path: f.etag for f in first.ok if f.etag}

        # same size, other bytes, put with the admin's S3 behind the manifest's back
        put_plain(admin, creds.prefix + "d1/f001.bin", os.urandom(4096))
        # and one replaced by a multipart object without any sha256 stored
        big = os.urandom(5 * MiB + 1)
        (src / "big.bin").write_bytes(big)
        manifest["big.bin"] = hashlib.sha256(big).hexdigest()
        recorded["big.bin"] = "0" * 32 + "-2"  # what the manifest recorded: another object
        put_multipart(admin, creds.prefix + "big.bin", big[:-1] + bytes([big[-1] ^ 1]))

        counted = Counted(engine.sync_context())
        result = await sync_up(counted.context(), src, known=manifest, etags=recorded)
        assert sorted(counted.uploaded) == ["big.bin", "d1/f001.bin"]
        assert sorted(f.path for f in result.ok) == ["big.bin", "d1/f001.bin"]
        # ETags not the recorded ones: the md5 (single-part) or nothing (multipart) differs,
        # and no sha256 is stored to overrule it
        assert sorted(counted.heads) == ["big.bin", "d1/f001.bin"]
        stored = admin.get_object(Bucket=BUCKET, Key=creds.prefix + "d1/f001.bin")
        assert stored["Body"].read() == files["d1/f001.bin"]
        stored = admin.get_object(Bucket=BUCKET, Key=creds.prefix + "big.bin")
        assert stored["Body"].read() == big


async def test_resync_down_of_plain_boto3_objects_rewrites_only_what_differs(
    tmp_path: Path, creds: S3Credentials, admin: Any
) -> None:
    files = {f"d{i % 4}/f{i:03d}.bin": os.urandom(4096) for i in range(FILES)}
    for relative, data in files.items():
        put_plain(admin, creds.prefix + "raw/" + relative, data)
    dest = tmp_path / "copy"
    for relative, data in files.items():
        (dest / relative).parent.mkdir(parents=True, exist_ok=True)
        (dest / relative).write_bytes(data)
        old = (time.time_ns() - 60 * 10**9,) * 2  # older than the cache's racy window
        os.utime(dest / relative, ns=old)
    os.utime(dest / "d0/f000.bin", ns=(10**18, 10**18))  # a local mtime that lies

    async with TransferEngine(creds, cache_dir=tmp_path / "cache") as engine:
        before = local_state(dest)
        counted = Counted(engine.sync_context())
        same = await sync_down(counted.context(), "raw/", dest)
        assert counted.downloaded == [] and counted.heads == []
        assert len(same.skipped) == FILES and {f.reason for f in same} == {"unchanged"}
        assert {f.path: f.sha256 for f in same.skipped} == {
            "raw/" + k: hashlib.sha256(v).hexdigest() for k, v in files.items()
        }
        assert local_state(dest) == before

        # the md5 is cached next to the sha256: an unchanged file isn't read again
        cache = HashCache.for_root(tmp_path / "cache", dest)
        local = dest / "d2/f002.bin"
        assert cache.get_md5(local, local.stat()) == hashlib.md5(files["d2/f002.bin"]).hexdigest()

        # one object changes (same size): exactly that file is rewritten
        changed = os.urandom(4096)
        put_plain(admin, creds.prefix + "raw/d3/f003.bin", changed)
        counted = Counted(engine.sync_context())
        result = await sync_down(counted.context(), "raw/", dest)
        # its md5 differs, and no stored sha256 says otherwise (one HEAD, for that file only)
        assert counted.downloaded == ["raw/d3/f003.bin"]
        assert counted.heads == ["raw/d3/f003.bin"]
        assert [f.path for f in result.ok] == ["raw/d3/f003.bin"]
        assert (dest / "d3/f003.bin").read_bytes() == changed
        after = local_state(dest)
        assert {k for k in after if after[k] != before[k]} == {"d3/f003.bin"}


async def test_a_multipart_object_without_sha256_is_never_taken_as_unchanged(
    tmp_path: Path, creds: S3Credentials, admin: Any
) -> None:
    data = os.urandom(5 * MiB + 1)
    etag = put_multipart(admin, creds.prefix + "big.bin", data)
    assert etag.endswith("-2")
    small = os.urandom(100)
    put_plain(admin, creds.prefix + "small.bin", small)
    dest = tmp_path / "copy"
    dest.mkdir()
    (dest / "big.bin").write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, differs
    (dest / "small.bin").write_bytes(small)

    async with TransferEngine(creds, cache_dir=tmp_path / "cache") as engine:
        counted = Counted(engine.sync_context())
        result = await sync_down(counted.context(), "", dest)
        # nothing proves the copy equal (no sha256 stored, the ETag is no md5): fetched
        assert counted.heads == ["big.bin"] and counted.downloaded == ["big.bin"]
        assert [f.path for f in result.ok] == ["big.bin"]
        assert [(f.path, f.reason) for f in result.skipped] == [("small.bin", "unchanged")]
        assert (dest / "big.bin").read_bytes() == data


async def test_an_etag_that_is_no_md5_defers_to_the_stored_sha256(
    tmp_path: Path, creds: S3Credentials
) -> None:
    """SSE-KMS and SSE-C objects have single-part ETags that aren't md5s (the store here can't
    make one, so the listing is rewritten): the stored sha256 decides, nothing is re-sent."""
    src = tmp_path / "src"
    files = tree(src, 5)
    async with TransferEngine(creds, cache_dir=tmp_path / "cache") as engine:
        (await engine.upload(src)).raise_for_failures()
        ctx = engine.sync_context()

        async def listed(prefix: str) -> AsyncIterator[RemoteObject]:
            async for obj in ctx.list_objects(prefix):
                yield dataclasses.replace(obj, etag="f" * 32)

        counted = Counted(dataclasses.replace(ctx, list_objects=listed))
        result = await sync_up(counted.context(), src)
        assert {f.reason for f in result} == {"unchanged"} and len(result.skipped) == 5
        assert sorted(counted.heads) == sorted(files) and counted.uploaded == []


async def test_unchanged_multipart_objects_of_another_tool_are_not_fetched_again(
    tmp_path: Path, creds: S3Credentials, admin: Any
) -> None:
    """Rule 4: a multipart object's ETag, computed locally for the part size the store
    reports for part 1 (6 MiB here: no common size), or a common one (5 MiB: rclone's)."""
    six = os.urandom(6 * MiB + 10)
    five = os.urandom(5 * MiB + 10)
    put_multipart(admin, creds.prefix + "raw/six.bin", six, part=6 * MiB)
    put_multipart(admin, creds.prefix + "raw/five.bin", five, part=5 * MiB)
    dest = tmp_path / "copy"
    async with TransferEngine(creds, cache_dir=tmp_path / "cache") as engine:
        counted = Counted(engine.sync_context())
        first = await sync_down(counted.context(), "raw/", dest)
        assert sorted(f.path for f in first.ok) == ["raw/five.bin", "raw/six.bin"]
        for name in ("five.bin", "six.bin"):  # older than the hash cache's racy window
            os.utime(dest / name, ns=(time.time_ns() - 60 * 10**9,) * 2)

        counted = Counted(engine.sync_context())
        second = await sync_down(counted.context(), "raw/", dest)
        assert counted.downloaded == [] and second.bytes == 0
        assert sorted((f.path, f.reason) for f in second.skipped) == [
            ("raw/five.bin", "unchanged"),
            ("raw/six.bin", "unchanged"),
        ]
        assert {f.path: f.sha256 for f in second.skipped} == {
            "raw/five.bin": hashlib.sha256(five).hexdigest(),
            "raw/six.bin": hashlib.sha256(six).hexdigest(),
        }
        # the multipart ETag found equal is cached: the third sync sends no HEAD
        counted = Counted(engine.sync_context())
        third = await sync_down(counted.context(), "raw/", dest)
        assert counted.downloaded == [] and counted.heads == [] and len(third.skipped) == 2

        # without the store's part size, only the common sizes are left: 5 MiB is one
        blind = dataclasses.replace(engine.sync_context(), first_part_size=None)
        fresh = tmp_path / "cache2"
        blind = dataclasses.replace(blind, cache_dir=fresh)
        counted = Counted(blind)
        fourth = await sync_down(counted.context(), "raw/", dest)
        assert [f.path for f in fourth.ok] == ["raw/six.bin"] and counted.downloaded == [
            "raw/six.bin"
        ]
        assert [f.path for f in fourth.skipped] == ["raw/five.bin"]

        # the same file changed in place (same size): found different, fetched again
        changed = six[:-1] + bytes([six[-1] ^ 1])
        put_multipart(admin, creds.prefix + "raw/six.bin", changed, part=6 * MiB)
        counted = Counted(engine.sync_context())
        fifth = await sync_down(counted.context(), "raw/", dest)
        assert counted.downloaded == ["raw/six.bin"] and [f.path for f in fifth.ok] == [
            "raw/six.bin"
        ]
        assert (dest / "six.bin").read_bytes() == changed


async def test_a_multipart_upload_whose_metadata_the_store_dropped_is_not_sent_again(
    tmp_path: Path, creds: S3Credentials, admin: Any
) -> None:
    """No manifest, no ``x-amz-meta-sha256`` (stripped as some stores do): the engine's own
    part size gives the multipart ETag, so an unchanged file isn't uploaded again."""
    src = tmp_path / "src"
    src.mkdir()
    data = os.urandom(6 * MiB + 10)
    (src / "big.bin").write_bytes(data)
    async with TransferEngine(
        creds, cache_dir=tmp_path / "cache", multipart_threshold=6 * MiB, part_size=5 * MiB
    ) as engine:
        (await engine.upload(src)).raise_for_failures()
        strip_metadata(admin, creds.prefix + "big.bin")
        os.utime(src / "big.bin", ns=(time.time_ns() - 60 * 10**9,) * 2)
        counted = Counted(engine.sync_context())
        result = await sync_up(counted.context(), src)
        assert counted.uploaded == [] and [(f.path, f.reason) for f in result] == [
            ("big.bin", "unchanged")
        ]
        assert result.skipped[0].sha256 == hashlib.sha256(data).hexdigest()
