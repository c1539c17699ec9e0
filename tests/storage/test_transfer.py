"""TransferEngine against a real SeaweedFS with STS-scoped credentials (no mocks)."""

from __future__ import annotations

import hashlib
import os
import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiobotocore.session import AioSession

from provena_like import ChecksumMismatch, RemoteChanged, UnsafePath, UsageError
from provena_like.storage import (
    BytesTransferred,
    FileFinished,
    FileStarted,
    S3Credentials,
    TransferEngine,
    TransferEvent,
    TransferProgress,
)
from provena_like.testing.seaweed import SeaweedS3
from tests.support.storage_helpers import BUCKET, mint

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
THRESHOLD = 6 * MiB


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def partials(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if "partial" in p.name]


@pytest.fixture(scope="module")
def dataset_files() -> dict[str, bytes]:
    """300 small files in nested folders and 2 above the (lowered) multipart threshold."""
    rng = random.Random(42)
    files = {
        f"run{i % 3}/day{i % 7}/f{i:03d}.{'csv' if i % 2 else 'txt'}": rng.randbytes(
            rng.randrange(0, 6000)
        )
        for i in range(300)
    }
    files["big/a.bin"] = rng.randbytes(THRESHOLD + 3 * MiB + 11)  # 2 parts of 8 MiB... 1 + tail
    files["big/b.bin"] = rng.randbytes(2 * THRESHOLD + 5)
    return files


async def test_round_trip_of_a_folder(
    tmp_path: Path,
    creds: S3Credentials,
    admin: Any,
    prefix: str,
    dataset_files: dict[str, bytes],
    make_tree: Callable[..., dict[str, bytes]],
) -> None:
    src = tmp_path / "src"
    make_tree(src, dataset_files)
    total = sum(len(d) for d in dataset_files.values())
    events: list[TransferEvent] = []

    async with TransferEngine(creds, multipart_threshold=THRESHOLD, part_size=5 * MiB) as engine:
        up = await engine.upload(src, prefix="data", progress=events.append)
        assert up.failed == []
        assert len(up.ok) == 302
        assert up.bytes == total
        by_path = {f.path: f for f in up.ok}
        for relative, data in dataset_files.items():
            result = by_path[f"data/{relative}"]
            assert (result.sha256, result.size) == (sha(data), len(data))
            assert result.etag
        assert by_path["data/big/b.bin"].etag.endswith("-3")  # multipart: 5 + 5 + 2 MiB

        # every object stores its sha256: a multipart one's was computed before
        # CreateMultipartUpload, the only request that takes metadata
        head = admin.head_object(Bucket=BUCKET, Key=prefix + "data/run0/day0/f000.txt")
        assert head["Metadata"]["sha256"] == by_path["data/run0/day0/f000.txt"].sha256
        head = admin.head_object(Bucket=BUCKET, Key=prefix + "data/big/a.bin")
        assert head["Metadata"]["sha256"] == by_path["data/big/a.bin"].sha256
        small = admin.head_object(
            Bucket=BUCKET, Key=prefix + "data/run0/day0/f000.txt", ChecksumMode="ENABLED"
        )
        assert "ChecksumSHA256" in small  # sent as x-amz-checksum-sha256, stored

        listed = [obj async for obj in engine.list("data/")]
        assert sorted(o.key for o in listed) == sorted(by_path)
        assert {o.key: o.size for o in listed} == {p: f.size for p, f in by_path.items()}

        # download by manifest (expected checksums, one streamed GET per object) ...
        manifest = [(f.path, f.path.removeprefix("data/"), f.sha256) for f in up.ok]
        down = await engine.download(manifest, tmp_path / "by-manifest")
    # ... and by prefix (stored checksums; sizes listed, so large objects use ranged GETs)
    down_events: list[TransferEvent] = []
    async with TransferEngine(creds, part_size=5 * MiB, ranged_get_threshold=THRESHOLD) as engine:
        by_prefix = await engine.download(
            "data/", tmp_path / "by-prefix", progress=down_events.append
        )
    assert down_events[-1] == TransferProgress(302, 302, total, total)

    for result in (down, by_prefix):
        assert result.failed == []
        assert len(result.ok) == 302
        assert {f.path: f.sha256 for f in result.ok} == {p: f.sha256 for p, f in by_path.items()}
    for relative, data in dataset_files.items():
        assert (tmp_path / "by-manifest" / relative).read_bytes() == data
        assert (tmp_path / "by-prefix" / relative).read_bytes() == data
    assert partials(tmp_path) == []

    # progress: one start and one finish per file, bytes add up, final totals complete
    kinds = Counter(type(e) for e in events)
    assert kinds[FileStarted] == kinds[FileFinished] == 302
    moved = sum(e.n for e in events if isinstance(e, BytesTransferred))
    assert moved == total
    assert kinds[BytesTransferred] < 302 + 10  # one per file, one per part: coalesced
    last = events[-1]
    assert isinstance(last, TransferProgress)
    assert (last.files_done, last.files_total, last.bytes_done, last.bytes_total) == (
        302,
        302,
        total,
        total,
    )


async def test_include_and_exclude(
    tmp_path: Path, creds: S3Credentials, make_tree: Callable[..., dict[str, bytes]]
) -> None:
    make_tree(
        tmp_path / "src",
        {"a.csv": b"1", "raw/b.csv": b"2", "raw/tmp/c.csv": b"3", "raw/d.txt": b"4"},
    )
    async with TransferEngine(creds, session=AioSession()) as engine:
        up = await engine.upload(tmp_path / "src", include=["*.csv"], exclude=["raw/tmp/*"])
        assert sorted(f.path for f in up.ok) == ["a.csv", "raw/b.csv"]
        down = await engine.download("", tmp_path / "dst", exclude=["a.*"])
    assert [f.path for f in down.ok] == ["raw/b.csv"]
    assert sorted(p.name for p in (tmp_path / "dst").rglob("*")) == ["b.csv", "raw"]


async def test_per_file_failures_do_not_stop_the_batch(
    tmp_path: Path,
    store: SeaweedS3,
    prefix: str,
    make_tree: Callable[..., dict[str, bytes]],
) -> None:
    # the session policy allows only <prefix>allowed/: other keys get AccessDenied
    creds = mint(store, prefix, allowed=prefix + "allowed/")
    files = make_tree(tmp_path, {f"f{i}.bin": os.urandom(100 + i) for i in range(20)})
    pairs = [(tmp_path / name, f"allowed/{name}") for name in files]
    pairs += [
        (tmp_path / "f0.bin", "denied/f0.bin"),
        (tmp_path / "f1.bin", "denied/f1.bin"),
        (tmp_path / "missing.bin", "allowed/missing.bin"),
        (tmp_path, "allowed/a-directory"),
        (tmp_path / "f2.bin", "metadata.json"),
        (tmp_path / "f3.bin", "../escape.bin"),
    ]
    (tmp_path / "big.bin").write_bytes(os.urandom(THRESHOLD + 1))
    pairs.append((tmp_path / "big.bin", "denied/big.bin"))  # multipart, refused at create
    # files that vanish after planning, just before they are read (small and multipart)
    (tmp_path / "gone.bin").write_bytes(b"soon gone")
    (tmp_path / "gone-big.bin").write_bytes(os.urandom(THRESHOLD + 1))
    pairs += [(tmp_path / "gone.bin", "allowed/gone.bin")]
    pairs += [(tmp_path / "gone-big.bin", "allowed/gone-big.bin")]

    def remove_on_start(event: TransferEvent) -> None:
        if isinstance(event, FileStarted) and event.path.startswith("allowed/gone"):
            (tmp_path / event.path.removeprefix("allowed/")).unlink()

    async with TransferEngine(creds, multipart_threshold=THRESHOLD) as engine:
        result = await engine.upload(pairs, progress=remove_on_start)
    assert len(result.ok) == 20
    reasons = {f.path: f.reason or "" for f in result.failed}
    assert set(reasons) == {
        "denied/f0.bin",
        "denied/f1.bin",
        "denied/big.bin",
        "allowed/missing.bin",
        "allowed/a-directory",
        "metadata.json",
        "../escape.bin",
        "allowed/gone.bin",
        "allowed/gone-big.bin",
    }
    assert "No such file" in reasons["allowed/gone.bin"]
    assert "No such file" in reasons["allowed/gone-big.bin"]
    assert reasons["denied/f0.bin"].startswith("AccessDenied (HTTP 403) on PutObject")
    assert reasons["denied/big.bin"].startswith("AccessDenied (HTTP 403) on CreateMultipartUpload")
    assert "No such file" in reasons["allowed/missing.bin"]
    assert "reserved" in reasons["metadata.json"]
    assert "'..'" in reasons["../escape.bin"]
    assert all(f.error is not None for f in result.failed)
    assert [f.path for f in result.ok] == [f"allowed/{name}" for name in files]  # input order


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
async def test_unreadable_file_fails_alone(tmp_path: Path, creds: S3Credentials) -> None:
    (tmp_path / "ok.txt").write_bytes(b"ok")
    locked = tmp_path / "locked.txt"
    locked.write_bytes(b"secret")
    locked.chmod(0)
    async with TransferEngine(creds) as engine:
        result = await engine.upload(tmp_path)
    assert [f.path for f in result.ok] == ["ok.txt"]
    assert "Permission denied" in (result.failed[0].reason or "")


async def test_fail_fast_stops_the_batch(tmp_path: Path, creds: S3Credentials) -> None:
    pairs = [(tmp_path / "missing", "a-missing")]
    for i in range(40):
        (tmp_path / f"f{i}").write_bytes(b"x")
        pairs.append((tmp_path / f"f{i}", f"f{i}"))
    async with TransferEngine(creds, max_concurrency=1) as engine:
        result = await engine.upload(pairs, fail_fast=True)
    assert result.files[0].status == "failed"
    assert len(result) == 41
    assert result.skipped
    assert all("fail_fast" in (f.reason or "") for f in result.skipped)


async def test_corrupted_object_is_refused_and_the_destination_left_untouched(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str
) -> None:
    small, big = os.urandom(5000), os.urandom(12 * MiB + 7)
    (tmp_path / "small.bin").write_bytes(small)
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "fine.bin").write_bytes(b"fine")
    settings = {"part_size": 5 * MiB, "ranged_get_threshold": THRESHOLD}
    async with TransferEngine(creds, multipart_threshold=THRESHOLD, **settings) as engine:
        up = await engine.upload(tmp_path)
        manifest = [(f.path, f.path, f.sha256) for f in up.ok]  # no sizes: streamed GETs
        # someone overwrites two objects behind the datastore's back (same metadata kept)
        for name, data in (("small.bin", small), ("big.bin", big)):
            tampered = bytearray(data)
            tampered[len(data) // 2] ^= 0xFF
            admin.put_object(
                Bucket=BUCKET,
                Key=prefix + name,
                Body=bytes(tampered),
                Metadata={"sha256": sha(data)},
            )
        dest = tmp_path / "dest"
        dest.mkdir()
        (dest / "small.bin").write_bytes(b"previous version")
        by_manifest = await engine.download(manifest, dest)
        by_stored_checksum = await engine.download("", tmp_path / "dest2")  # sized: ranged

    for result in (by_manifest, by_stored_checksum):
        assert [f.path for f in result.ok] == ["fine.bin"]
        failed = {f.path: f for f in result.failed}
        assert set(failed) == {"small.bin", "big.bin"}
        for f in failed.values():
            assert isinstance(f.error, ChecksumMismatch)
            assert "sha256" in (f.reason or "")
    assert (dest / "small.bin").read_bytes() == b"previous version"
    assert not (dest / "big.bin").exists()
    assert not (tmp_path / "dest2" / "big.bin").exists()
    assert partials(tmp_path) == []


async def test_unsafe_keys_are_refused_before_any_filesystem_call(
    tmp_path: Path, creds: S3Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "dest"
    unsafe = ["../x", "/abs", "C:\\x", "C:/x", "\\\\server\\share\\x", "a\\..\\b"]
    unsafe += ["a//b", "a/./b", "a\x00b", ""]
    touched: list[str] = []

    def spy(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(path: Any, *args: Any, **kwargs: Any) -> Any:
            if str(path).startswith(str(tmp_path)):
                touched.append(f"{name} {path}")
            return real(path, *args, **kwargs)

        return wrapper

    (tmp_path / "ok.txt").write_bytes(b"ok")
    async with TransferEngine(creds) as engine:
        assert not (await engine.upload([(tmp_path / "ok.txt", "ok.txt")])).failed
        for name in ("open", "mkdir", "makedirs", "stat", "lstat", "replace"):
            monkeypatch.setattr(os, name, spy(name, getattr(os, name)))
        by_key = await engine.download([(k, "ok.txt", None) for k in unsafe], dest)
        by_local = await engine.download([("ok.txt", k, None) for k in unsafe], dest)
        refused = list(touched)
        control = await engine.download([("ok.txt", "ok.txt", None)], dest)
        monkeypatch.undo()
    for result in (by_key, by_local):
        assert len(result.failed) == len(unsafe)
        assert all(isinstance(f.error, UnsafePath) for f in result.failed)
    assert refused == []
    assert control.ok and touched  # the spy does see the calls of a real download


async def test_a_symlink_in_the_destination_cannot_redirect_writes(
    tmp_path: Path, creds: S3Credentials
) -> None:
    src, dest, outside = tmp_path / "src", tmp_path / "dest", tmp_path / "outside"
    for d in (src / "evil" / "sub", dest, outside):
        d.mkdir(parents=True)
    (src / "evil" / "x.txt").write_bytes(b"x")
    (src / "evil" / "sub" / "y.txt").write_bytes(b"y")
    (src / "link.txt").write_bytes(b"new content")
    (outside / "target.txt").write_bytes(b"outside, keep me")
    (dest / "evil").symlink_to(outside, target_is_directory=True)
    (dest / "link.txt").symlink_to(outside / "target.txt")
    async with TransferEngine(creds) as engine:
        assert not (await engine.upload(src)).failed
        result = await engine.download("", dest)
    failed = {f.path: f for f in result.failed}
    assert set(failed) == {"evil/x.txt", "evil/sub/y.txt"}
    assert all(isinstance(f.error, UnsafePath) for f in failed.values())
    assert sorted(p.name for p in outside.iterdir()) == ["target.txt"]
    assert (outside / "target.txt").read_bytes() == b"outside, keep me"
    # the file symlink was replaced by the downloaded file, not written through
    assert not (dest / "link.txt").is_symlink()
    assert (dest / "link.txt").read_bytes() == b"new content"


async def test_metadata_json_cannot_be_uploaded(tmp_path: Path, creds: S3Credentials) -> None:
    (tmp_path / "metadata.json").write_text("{}")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "metadata.json").write_text("{}")
    async with TransferEngine(creds) as engine:
        result = await engine.upload(tmp_path)
        assert [f.path for f in result.ok] == ["sub/metadata.json"]
        assert isinstance(result.failed[0].error, UnsafePath)
        nested = await engine.upload(tmp_path, prefix="copy")  # not at the root: fine
    assert len(nested.ok) == 2


@pytest.mark.parametrize("ranged", [False, True], ids=["streamed", "ranged"])
async def test_cancelled_download_leaves_no_temp_files(
    tmp_path: Path, creds: S3Credentials, make_tree: Callable[..., dict[str, bytes]], ranged: bool
) -> None:
    files = {f"small/{i}.bin": os.urandom(2000) for i in range(30)}
    files["big.bin"] = os.urandom(30 * MiB)
    make_tree(tmp_path / "src", files)
    dest = tmp_path / "dest"
    threshold = THRESHOLD if ranged else None
    settings: dict[str, Any] = {"part_size": 5 * MiB, "ranged_get_threshold": threshold}
    async with TransferEngine(creds, max_concurrency=4, resume=False, **settings) as engine:
        assert not (await engine.upload(tmp_path / "src")).failed
        with anyio.CancelScope() as scope:

            def cancel_mid_way(event: TransferEvent) -> None:
                if isinstance(event, BytesTransferred) and event.path == "big.bin":
                    scope.cancel()

            await engine.download("", dest, progress=cancel_mid_way)
        assert scope.cancel_called
        assert partials(dest) == []
        assert not (dest / "big.bin").exists()
        # the engine is still usable, and its memory budget was given back
        again = await engine.download("", dest)
    assert not again.failed
    assert (dest / "big.bin").read_bytes() == files["big.bin"]


async def test_cancelled_multipart_upload_is_aborted(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str
) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(20 * MiB))
    async with TransferEngine(
        creds, multipart_threshold=THRESHOLD, part_size=5 * MiB, resume=False
    ) as engine:
        with anyio.CancelScope() as scope:

            def cancel_after_a_part(event: TransferEvent) -> None:
                if isinstance(event, BytesTransferred):
                    scope.cancel()

            await engine.upload(tmp_path, progress=cancel_after_a_part)
    assert scope.cancel_called
    uploads = admin.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix)
    assert uploads.get("Uploads", []) == []
    assert "Contents" not in admin.list_objects_v2(Bucket=BUCKET, Prefix=prefix)


async def test_object_replaced_during_a_ranged_download(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str
) -> None:
    (tmp_path / "big.bin").write_bytes(os.urandom(12 * MiB))
    # parts of 5 MiB: [0, 5), [5, 10), [10, 12). The smallest budget holds two ranged GETs
    # in flight, so the third is sent only after one of them ends: after the first progress
    # event (its first MiB written), which replaces the object
    settings: dict[str, Any] = {"part_size": 5 * MiB, "memory_limit": 5 * MiB}
    async with TransferEngine(creds, ranged_get_threshold=MiB, **settings) as engine:
        assert not (await engine.upload(tmp_path)).failed

        def replace_after_first_part(event: TransferEvent) -> None:
            if isinstance(event, BytesTransferred) and event.total_done == event.n:
                admin.put_object(Bucket=BUCKET, Key=prefix + "big.bin", Body=os.urandom(12 * MiB))

        result = await engine.download("", tmp_path / "dest", progress=replace_after_first_part)
    assert isinstance(result.failed[0].error, RemoteChanged)
    assert partials(tmp_path) == []
    assert not (tmp_path / "dest" / "big.bin").exists()


async def test_empty_files_and_md5(tmp_path: Path, creds: S3Credentials) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "empty").write_bytes(b"")
    (tmp_path / "src" / "one").write_bytes(b"1")
    async with TransferEngine(creds, md5=True, ranged_get_threshold=1) as engine:
        up = await engine.upload(tmp_path / "src")
        sized = [(f.path, f.path, f.sha256, f.size) for f in up.ok]  # ranged for "one" only
        down = await engine.download(sized, tmp_path / "dst")
    for result in (up, down):
        md5s = {f.path: f.md5 for f in result.ok}
        assert md5s == {"empty": hashlib.md5(b"").hexdigest(), "one": hashlib.md5(b"1").hexdigest()}
    assert (tmp_path / "dst" / "empty").read_bytes() == b""


async def test_checksums_off(tmp_path: Path, creds: S3Credentials) -> None:
    (tmp_path / "a").write_bytes(b"abc")
    (tmp_path / "b").write_bytes(os.urandom(THRESHOLD))
    async with TransferEngine(creds, checksum=False, multipart_threshold=THRESHOLD) as engine:
        up = await engine.upload(tmp_path)
        down = await engine.download("", tmp_path / "dst")
    assert [f.sha256 for f in up.ok + down.ok] == [None] * 4
    assert (tmp_path / "dst" / "b").read_bytes() == (tmp_path / "b").read_bytes()


async def test_misuse(tmp_path: Path, store: SeaweedS3, prefix: str) -> None:
    read_only = mint(store, prefix, access="read")
    engine = TransferEngine(read_only)
    with pytest.raises(UsageError, match="async with"):
        await engine.download("", tmp_path)
    async with engine:
        with pytest.raises(UsageError, match="read-only"):
            await engine.upload(tmp_path)
        with pytest.raises(UnsafePath):
            await engine.download("../", tmp_path)
        assert "storage-tests" in repr(engine)
        assert read_only.secret_access_key not in repr(engine)
    with pytest.raises(UsageError, match="opened once"):
        async with engine:
            pass
    with pytest.raises(UsageError, match="part_size"):
        TransferEngine(read_only, part_size=MiB)
