"""Sync up and down: only what differs moves; deletes on request; dry runs write nothing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from provena_like.storage import S3Credentials, TransferEngine, _upload
from provena_like.storage.hashing import read_file as real_read
from tests.support.storage_helpers import BUCKET, count_requests

pytestmark = pytest.mark.anyio


def remote_state(admin: Any, prefix: str) -> dict[str, str]:
    pages = admin.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


def local_state(root: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def count_writes(engine: TransferEngine) -> list[str]:
    ops = ("PutObject", "UploadPart", "CreateMultipartUpload", "DeleteObjects", "DeleteObject")
    return count_requests(engine, ops)


async def test_thousand_files_seven_failing_then_a_sync_moves_only_those(
    tmp_path: Path,
    creds: S3Credentials,
    make_tree: Callable[..., dict[str, bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    files = make_tree(tmp_path, {f"d{i % 10}/f{i:04d}.bin": os.urandom(64) for i in range(1000)})
    broken = {f"d{i % 10}/f{i:04d}.bin" for i in (3, 150, 333, 512, 640, 777, 999)}

    def flaky_read(path: Path, **kwargs: Any) -> Any:
        if path.relative_to(tmp_path).as_posix() in broken:
            raise OSError(5, "Input/output error (injected)", str(path))
        return real_read(path, **kwargs)

    async with TransferEngine(creds, max_concurrency=16) as engine:
        monkeypatch.setattr(_upload, "read_file", flaky_read)
        first = await engine.upload(tmp_path)
        assert len(first.ok) == 993 and len(first.failed) == 7
        assert {f.path for f in first.failed} == broken
        assert all("injected" in (f.reason or "") for f in first.failed)
        monkeypatch.setattr(_upload, "read_file", real_read)
        again = await engine.sync_up(tmp_path)
    assert {f.path for f in again.ok} == broken
    assert len(again.skipped) == 993 and {f.reason for f in again.skipped} == {"unchanged"}
    assert again.bytes == 7 * 64 and len(files) == 1000


async def test_same_size_edits_are_detected_and_dry_run_writes_nothing(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.txt", "b.txt", "gone.txt"):
        (src / name).write_bytes(name.encode() * 100)
    async with TransferEngine(creds) as engine:
        assert not (await engine.upload(src)).failed
        (src / "gone.txt").unlink()
        (src / "new.txt").write_bytes(b"new")
        edited = bytearray((src / "a.txt").read_bytes())
        edited[0] ^= 1  # same size, possibly same mtime: the hash must catch it
        (src / "a.txt").write_bytes(bytes(edited))
        before_remote, before_local = remote_state(admin, prefix), local_state(src)
        writes = count_writes(engine)
        plan = await engine.sync_up(src, delete=True, dry_run=True)
        assert writes == []
        assert remote_state(admin, prefix) == before_remote
        assert local_state(src) == before_local
        reasons = {f.path: f.reason for f in plan}
        assert reasons == {
            "a.txt": "would upload",
            "new.txt": "would upload",
            "b.txt": "unchanged",
            "gone.txt": "would delete",
        }
        done = await engine.sync_up(src, delete=True)
        assert {f.path: f.reason for f in done.ok} == {
            "a.txt": None,
            "new.txt": None,
            "gone.txt": "deleted",
        }
        assert sorted(k[len(prefix) :] for k in remote_state(admin, prefix)) == [
            "a.txt",
            "b.txt",
            "new.txt",
        ]
        # down: a same-size local edit is repaired, an extra local file deleted on request
        dest = tmp_path / "dest"
        assert len((await engine.sync_down(dest)).ok) == 3
        (dest / "b.txt").write_bytes(b"B" * len((dest / "b.txt").read_bytes()))
        (dest / "extra.txt").write_bytes(b"x")
        before_local = local_state(dest)
        plan = await engine.sync_down(dest, delete=True, dry_run=True)
        assert local_state(dest) == before_local
        assert {f.path: f.reason for f in plan} == {
            "a.txt": "unchanged",
            "new.txt": "unchanged",
            "b.txt": "would download",
            "extra.txt": "would delete",
        }
        done = await engine.sync_down(dest, delete=True)
        assert {f.path for f in done.ok} == {"b.txt", "extra.txt"}
    assert (dest / "b.txt").read_bytes() == (src / "b.txt").read_bytes()
    assert not (dest / "extra.txt").exists()
