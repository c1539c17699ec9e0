"""Resuming interrupted transfers, and orphaned multipart uploads (real SeaweedFS)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from provena_like.storage import BytesTransferred, S3Credentials, TransferEngine, TransferEvent
from tests.support.storage_helpers import BUCKET, count_requests

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
PART = 5 * MiB
SIZE = 64 * MiB  # 13 parts of 5 MiB


def count_calls(engine: TransferEngine, operation: str) -> list[str]:
    """Count the engine's requests of one S3 operation (on either request path)."""
    return count_requests(engine, (operation,))


async def cancel_after(engine: TransferEngine, n: int, run: Any, *, total_done: int = 0) -> None:
    """Run ``run(progress)`` and cancel it once ``n`` byte events were seen (with at least
    ``total_done`` bytes of the file done)."""
    seen = 0
    with anyio.CancelScope() as scope:

        def progress(event: TransferEvent) -> None:
            nonlocal seen
            if isinstance(event, BytesTransferred) and event.total_done >= total_done:
                seen += 1
                if seen >= n:
                    scope.cancel()

        await run(progress)
    assert scope.cancel_called


async def test_interrupted_upload_resumes_with_the_missing_parts_only(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str
) -> None:
    data = os.urandom(SIZE)
    (tmp_path / "big.bin").write_bytes(data)
    settings: dict[str, Any] = {"multipart_threshold": PART, "part_size": PART}
    async with TransferEngine(creds, max_concurrency=2, **settings) as engine:
        await cancel_after(engine, 7, lambda p: engine.upload(tmp_path, progress=p))
        open_uploads = await engine.list_incomplete_uploads()
        assert [u.key for u in open_uploads] == ["big.bin"]
    await anyio.sleep(0.5)  # a part cancelled mid-request may still be landing on the server
    stored = admin.list_parts(
        Bucket=BUCKET, Key=prefix + "big.bin", UploadId=open_uploads[0].upload_id
    )["Parts"]
    assert len(stored) >= 7 - 2  # 7 parts reported sent; parts in flight may or may not land
    async with TransferEngine(creds, max_concurrency=2, **settings) as engine:
        parts = count_calls(engine, "UploadPart")
        result = await engine.upload(tmp_path)
    assert not result.failed
    # hashed while the parts went up: the parts already there were read for the hash too
    assert [f.sha256 for f in result.ok] == [hashlib.sha256(data).hexdigest()]
    assert len(parts) <= 13 - len(stored)  # only the missing parts: none sent twice
    assert len(parts) <= 13 - 7 + 2  # at most two parts sent again
    body = admin.get_object(Bucket=BUCKET, Key=prefix + "big.bin")["Body"].read()
    assert body == data
    assert admin.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", []) == []


async def test_a_changed_file_starts_the_upload_over(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str
) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(4 * PART))
    settings: dict[str, Any] = {"multipart_threshold": PART, "part_size": PART}
    async with TransferEngine(creds, max_concurrency=1, **settings) as engine:
        await cancel_after(engine, 2, lambda p: engine.upload(tmp_path, progress=p))
    changed = os.urandom(4 * PART)
    (tmp_path / "big.bin").write_bytes(changed)
    async with TransferEngine(creds, max_concurrency=2, **settings) as engine:
        parts = count_calls(engine, "UploadPart")
        result = await engine.upload(tmp_path)
    assert len(parts) == 4
    assert [f.sha256 for f in result.ok] == [hashlib.sha256(changed).hexdigest()]
    body = admin.get_object(Bucket=BUCKET, Key=prefix + "big.bin")["Body"].read()
    assert body == changed
    assert admin.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads", []) == []


async def test_orphaned_uploads_are_listed_and_aborted(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str
) -> None:
    for name in ("a.bin", "b.bin"):
        admin.create_multipart_upload(Bucket=BUCKET, Key=f"{prefix}{name}")
    async with TransferEngine(creds) as engine:
        assert sorted(u.key for u in await engine.list_incomplete_uploads()) == ["a.bin", "b.bin"]
        from datetime import timedelta

        assert await engine.abort_incomplete_uploads(older_than=timedelta(days=1)) == []
        gone = await engine.abort_incomplete_uploads()
        assert sorted(u.key for u in gone) == ["a.bin", "b.bin"]
        assert await engine.list_incomplete_uploads() == []


def sidecars(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if "partial" in p.name]


@pytest.mark.parametrize("ranged", [False, True], ids=["streamed", "ranged"])
@pytest.mark.parametrize("change", [False, True], ids=["same", "replaced"])
async def test_interrupted_download_resumes_or_starts_over(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str, change: bool, ranged: bool
) -> None:
    data = os.urandom(SIZE)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "big.bin").write_bytes(data)
    dest = tmp_path / "dest"
    # streamed: one GET, byte events every 8 MiB; ranged: 8 MiB parts written at their
    # offsets, events as each MiB lands, ``total_done`` the contiguous prefix kept (one
    # request at a time, so that the prefix grows steadily instead of jumping at the end)
    settings: dict[str, Any] = (
        {"ranged_get_threshold": 16 * MiB, "max_concurrency": 1}
        if ranged
        else {"ranged_get_threshold": None}
    )
    async with TransferEngine(creds, multipart_threshold=SIZE + 1, **settings) as engine:
        assert not (await engine.upload(tmp_path / "src")).failed
        await cancel_after(
            engine, 1, lambda p: engine.download("", dest, progress=p), total_done=24 * MiB
        )
    assert not (dest / "big.bin").exists()
    partial, sidecar = dest / ".big.bin.provena-partial", dest / ".big.bin.provena-partial.json"
    assert partial.exists() and sidecar.exists()
    done = partial.stat().st_size
    assert 16 * MiB <= done < SIZE
    if change:
        data = os.urandom(SIZE)
        admin.put_object(
            Bucket=BUCKET,
            Key=prefix + "big.bin",
            Body=data,
            Metadata={"sha256": hashlib.sha256(data).hexdigest()},
        )
    received: list[int] = []
    async with TransferEngine(creds) as engine:
        result = await engine.download(
            "",
            dest,
            progress=lambda e: received.append(e.n) if isinstance(e, BytesTransferred) else None,
        )
    assert not result.failed
    assert result.files[0].sha256 == hashlib.sha256(data).hexdigest()
    assert (dest / "big.bin").read_bytes() == data
    assert sum(received) == (SIZE if change else SIZE - done)
    assert sidecars(dest) == []


async def test_tampered_object_after_a_partial_download_leaves_nothing_behind(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str
) -> None:
    data = os.urandom(32 * MiB)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "big.bin").write_bytes(data)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "big.bin").write_bytes(b"previous")
    async with TransferEngine(creds, multipart_threshold=SIZE) as engine:
        assert not (await engine.upload(tmp_path / "src")).failed
        tampered = bytearray(data)
        tampered[-1] ^= 0xFF
        admin.put_object(
            Bucket=BUCKET,
            Key=prefix + "big.bin",
            Body=bytes(tampered),
            Metadata={"sha256": hashlib.sha256(data).hexdigest()},
        )
        result = await engine.download("", dest)
    from provena_like import ChecksumMismatch

    assert isinstance(result.failed[0].error, ChecksumMismatch)
    assert (dest / "big.bin").read_bytes() == b"previous"
    assert sidecars(dest) == []
