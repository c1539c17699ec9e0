"""Multipart uploads hash the file before they start, store its sha256, reuse cached hashes.

Against the real SeaweedFS: the sha256 stored as ``x-amz-meta-sha256`` and returned equals
the file's, the file is read twice (hashed in a pass of its own before
``CreateMultipartUpload``, then read part by part to be sent), a re-upload of an unchanged
file takes its sha256 from the hash cache (read once), a file changed during its upload
fails without leaving anything behind (also one changed between the hash and the parts),
and downloads and verify of an object without a stored sha256 (another tool's) still check
the manifest's. An open upload recorded by an older version (no mtime) is not resumed.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from provena_like import ChecksumMismatch
from provena_like.storage import (
    BytesTransferred,
    S3Credentials,
    TransferEngine,
    TransferEvent,
    default_cache_dir,
)
from provena_like.storage._resume import UploadState, load_upload_state, save_upload_state
from tests.storage.test_etag_checks import download_corrupted
from tests.support.storage_helpers import BUCKET, FaultProxy, put_multipart

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
PART = 5 * MiB
SIZE = 4 * PART + 123  # 5 parts


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_old(path: Path, data: bytes) -> None:
    """Write ``data`` with an mtime a minute ago (the hash cache skips just-written files)."""
    path.write_bytes(data)
    past = time.time() - 60
    os.utime(path, (past, past))


def bytes_read() -> int:
    """Bytes this process has read through read syscalls so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")  # pragma: no cover


def stored_sha256(admin: Any, key: str) -> str | None:
    metadata: dict[str, str] = admin.head_object(Bucket=BUCKET, Key=key)["Metadata"]
    return metadata.get("sha256")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/io")
async def test_the_file_is_hashed_before_its_upload_and_its_sha256_stored(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str
) -> None:
    data = os.urandom(SIZE)
    write_old(tmp_path / "big.bin", data)
    settings: dict[str, Any] = {"multipart_threshold": PART, "part_size": PART, "md5": True}
    async with TransferEngine(creds, **settings) as engine:
        before = bytes_read()
        first = await engine.upload([(tmp_path / "big.bin", "big.bin")])
        read = bytes_read() - before
    assert first.failed == []
    (result,) = first.ok
    assert (result.size, result.sha256) == (SIZE, sha(data))
    assert result.md5 == hashlib.md5(data, usedforsecurity=False).hexdigest()
    assert result.etag is not None and result.etag.endswith("-5")
    # read twice: hashed before CreateMultipartUpload, then read part by part to be sent
    assert 2 * SIZE <= read < 2.5 * SIZE
    assert admin.get_object(Bucket=BUCKET, Key=prefix + "big.bin")["Body"].read() == data
    # so the sha256 was known when the upload was created: stored with the object
    assert stored_sha256(admin, prefix + "big.bin") == sha(data)

    # the unchanged file again: its sha256 comes from the hash cache (read once, to send it)
    async with TransferEngine(creds, **settings) as engine:
        before = bytes_read()
        again = await engine.upload([(tmp_path / "big.bin", "big.bin")])
        read = bytes_read() - before
    assert [(f.sha256, f.md5) for f in again.ok] == [(result.sha256, result.md5)]
    assert SIZE <= read < 1.5 * SIZE
    assert stored_sha256(admin, prefix + "big.bin") == sha(data)
    assert admin.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", []) == []


async def test_a_file_changed_during_its_upload_fails_and_leaves_nothing(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str
) -> None:
    path = tmp_path / "big.bin"
    write_old(path, os.urandom(SIZE))
    changed = False

    def progress(event: TransferEvent) -> None:
        nonlocal changed
        if isinstance(event, BytesTransferred) and not changed:
            changed = True  # after the first part: overwrite the start, size unchanged
            with open(path, "r+b") as fh:
                fh.write(b"edited")

    async with TransferEngine(
        creds, multipart_threshold=PART, part_size=PART, max_concurrency=1
    ) as engine:
        result = await engine.upload([(path, "big.bin")], progress=progress)
    assert changed
    assert result.ok == []
    (failed,) = result.failed
    assert "changed" in (failed.reason or "")
    assert admin.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("KeyCount") == 0
    assert admin.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", []) == []


async def test_downloads_and_verify_check_the_manifest_sha256_of_such_objects(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str
) -> None:
    data = os.urandom(SIZE)
    write_old(tmp_path / "big.bin", data)
    put_multipart(admin, prefix + "big.bin", data, part=PART)  # another tool's: no sha256
    assert stored_sha256(admin, prefix + "big.bin") is None
    async with TransferEngine(creds, multipart_threshold=PART, part_size=PART) as engine:
        spec = [("big.bin", "big.bin", sha(data))]
        good = await engine.download(spec, tmp_path / "good")
        assert [f.sha256 for f in good.ok] == [sha(data)]
        assert (await engine.verify(tmp_path / "good", spec)).differences == []

        # the object replaced behind the manifest's back (same size, nothing stored)
        other = bytearray(data)
        other[-1] ^= 1
        admin.put_object(Bucket=BUCKET, Key=prefix + "big.bin", Body=bytes(other))
        bad = await engine.download(spec, tmp_path / "bad")
        assert bad.ok == []
        assert isinstance(bad.failed[0].error, ChecksumMismatch)
        assert not (tmp_path / "bad" / "big.bin").exists()

        # a local copy that differs from the manifest's sha256
        (tmp_path / "good" / "big.bin").write_bytes(bytes(other))
        (check,) = (await engine.verify(tmp_path / "good", spec)).differences
        assert check.status == "mismatch" and "sha256" in (check.reason or "")


async def test_an_open_upload_recorded_without_mtime_is_aborted_and_started_over(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str
) -> None:
    data = os.urandom(2 * PART)
    write_old(tmp_path / "big.bin", data)
    key = prefix + "big.bin"
    # as an older version recorded it: the sha256 it stored, no mtime
    old = admin.create_multipart_upload(Bucket=BUCKET, Key=key, Metadata={"sha256": sha(data)})
    state = UploadState(old["UploadId"], sha(data), len(data), PART)
    endpoint = creds.endpoint_url or "aws"
    save_upload_state(default_cache_dir(), endpoint, BUCKET, key, state)
    async with TransferEngine(creds, multipart_threshold=PART, part_size=PART) as engine:
        result = await engine.upload([(tmp_path / "big.bin", "big.bin")])
    assert [f.sha256 for f in result.ok] == [sha(data)]
    assert admin.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data
    assert admin.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", []) == []
    assert load_upload_state(default_cache_dir(), endpoint, BUCKET, key) is None


async def test_an_engine_sync_up_keeps_an_unchanged_multipart_object_and_resends_an_edit(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str
) -> None:
    (tmp_path / "sub").mkdir()
    big = os.urandom(2 * PART)
    write_old(tmp_path / "a.txt", b"small")
    write_old(tmp_path / "sub" / "big.bin", big)
    async with TransferEngine(creds, multipart_threshold=PART, part_size=PART) as engine:
        first = await engine.sync_up(tmp_path)
        assert sorted(f.path for f in first.ok) == ["a.txt", "sub/big.bin"]
        assert stored_sha256(admin, prefix + "sub/big.bin") == sha(big)
        # the listed ETag is the one the upload recorded: unchanged, not sent again
        second = await engine.sync_up(tmp_path)
        assert second.ok == []
        assert sorted(f.path for f in second.skipped) == ["a.txt", "sub/big.bin"]
        # a same-size edit is still caught, and that upload stores the new sha256
        edited = big[:-1] + bytes([big[-1] ^ 1])
        write_old(tmp_path / "sub" / "big.bin", edited)
        third = await engine.sync_up(tmp_path)
        assert [f.path for f in third.ok] == ["sub/big.bin"]
        assert stored_sha256(admin, prefix + "sub/big.bin") == sha(edited)
        fourth = await engine.sync_up(tmp_path)
    assert fourth.ok == []
    assert sorted(f.path for f in fourth.skipped) == ["a.txt", "sub/big.bin"]


async def test_a_file_changed_after_it_was_hashed_fails_even_with_its_mtime_kept(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str, monkeypatch: Any
) -> None:
    """The parts sent must have the CRC32s of the pass that hashed the file."""
    from provena_like.storage import _upload

    path = tmp_path / "big.bin"
    data = os.urandom(SIZE)
    write_old(path, data)
    stamp = path.stat()
    real_prehash = _upload._prehash

    async def then_edit(*args: Any, **kwargs: Any) -> Any:
        digests = await real_prehash(*args, **kwargs)
        with open(path, "r+b") as fh:  # same size, and the mtime put back: only bytes differ
            fh.seek(3 * PART)
            fh.write(b"edited")
        os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        return digests

    monkeypatch.setattr(_upload, "_prehash", then_edit)
    async with TransferEngine(creds, multipart_threshold=PART, part_size=PART) as engine:
        result = await engine.upload([(path, "big.bin")])
    assert result.ok == []
    (failed,) = result.failed
    assert "changed" in (failed.reason or "")
    assert admin.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("KeyCount") == 0
    assert admin.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", []) == []


@pytest.mark.parametrize("ranged", [False, True], ids=["streamed", "ranged"])
async def test_a_corrupted_multipart_object_fails_its_stored_sha256(
    tmp_path: Path, creds: S3Credentials, admin: Any, proxy: FaultProxy, ranged: bool
) -> None:
    """Without a manifest, the sha256 stored at upload checks the bytes: no ETag md5s."""
    data = os.urandom(SIZE)
    write_old(tmp_path / "big.bin", data)
    options: dict[str, Any] = {"multipart_threshold": PART, "part_size": PART}
    options["ranged_get_threshold"] = PART if ranged else None
    async with TransferEngine(creds, **options) as engine:
        (up,) = (await engine.upload([(tmp_path / "big.bin", "raw/big.bin")])).ok
        assert up.etag is not None and up.etag.endswith("-5")
        good = await engine.download("raw/", tmp_path / "good")
    (ok,) = good.ok
    assert ok.sha256 == sha(data)
    assert (tmp_path / "good" / "big.bin").read_bytes() == data

    bad = await download_corrupted(proxy, creds, options, tmp_path / "bad")
    (failed,) = bad.failed
    assert isinstance(failed.error, ChecksumMismatch)
    # checked against the stored sha256, not the multipart ETag
    assert "sha256" in (failed.reason or "") and "ETag" not in (failed.reason or "")
    assert not (tmp_path / "bad" / "big.bin").exists()
