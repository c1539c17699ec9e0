"""The repository contract, the same tests for every implementation (S3, POSIX, Globus).

put/get/stat/delete/list; atomicity (a put killed, or failing, halfway leaves the old object
whole and nothing else visible); corrupted stored bytes caught by ``stat(verify=True)`` and
``get``, and by ``confirm_many``; paths that would escape the root refused before any I/O.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import pytest

from provena_like import ChecksumMismatch, TransferError, UnsafePath, UsageError
from provena_like.repositories import (
    ObjectInfo,
    ObjectNotFound,
    PosixRepository,
    Repository,
    S3Repository,
    TransferRepository,
)
from provena_like.storage import (
    BytesTransferred,
    FileFinished,
    TransferEvent,
    TransferProgress,
    hash_file,
)
from tests.support.globus_repository import backing
from tests.support.repository_helpers import sha, write

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
SESSION = "lab/Subjects/mouse1/2024-01-31/001"


async def paths(repo: Repository, prefix: str = "") -> list[str]:
    return [info.path async for info in repo.list(prefix)]


async def put_random(
    repo: Repository, tmp_path: Path, stem: str, count: int, size: int
) -> dict[str, bytes]:
    """Put ``count`` objects of random bytes (``size``, ``size + 1``, ...) in the session's alf."""
    files = {f"{SESSION}/alf/{stem}{i}.npy": os.urandom(size + i) for i in range(count)}
    for path, data in files.items():
        await repo.put(write(tmp_path / "src" / path, data), path)
    return files


async def leftovers(repo: Repository) -> list[str]:
    """What a write in progress or interrupted left behind (never objects, but storage)."""
    if isinstance(repo, S3Repository):
        return [up.key for up in await repo.engine.list_incomplete_uploads()]
    if isinstance(repo, TransferRepository):  # temp files at the root, files left in the spool
        return [info.path for info in await repo.incomplete() + await repo.spooled()]
    assert isinstance(repo, PosixRepository)
    return [info.path for info in await repo.incomplete()]


def corrupt(repo: Repository, path: str, s3_admin: Any) -> bytes:
    """Flip one byte of the stored object behind the repository's back (bit rot).

    S3 keeps the object's metadata, sha256 included: only the bytes change. Returns them.
    """
    bucket, key, target = None, "", None
    if isinstance(repo, S3Repository):
        bucket, key = repo.bucket, repo.prefix + path
    elif isinstance(repo, TransferRepository):  # on the collection's storage
        stored = backing(repo)
        bucket, key = stored.bucket, stored.prefix + path
        target = None if stored.directory is None else stored.directory / path
    else:
        assert isinstance(repo, PosixRepository)
        target = repo.root / path
    if bucket is not None:
        got = s3_admin.get_object(Bucket=bucket, Key=key)
        data = bytearray(got["Body"].read())
        data[len(data) // 2] ^= 0x01
        s3_admin.put_object(Bucket=bucket, Key=key, Body=bytes(data), Metadata=got["Metadata"])
        return bytes(data)
    assert target is not None
    with target.open("r+b") as fh:
        fh.seek(target.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, os.SEEK_CUR)
        fh.write(bytes([byte[0] ^ 0x01]))
    return target.read_bytes()


async def test_put_get_stat_delete_list(repo: Repository, tmp_path: Path) -> None:
    files = {
        f"{SESSION}/alf/trials.table.pqt": b"trials" * 100,
        f"{SESSION}/alf/#2024-02-01#/trials.table.pqt": b"revised",
        f"{SESSION}/raw/wheel.position.npy": b"",
        "other/x.y.txt": b"x",
    }
    for path, data in files.items():
        info = await repo.put(write(tmp_path / "src" / path, data), path)
        assert (info.path, info.size, info.sha256) == (path, len(data), sha(data))

    assert await paths(repo) == sorted(files)
    assert await paths(repo, f"{SESSION}/alf/") == sorted(p for p in files if "/alf/" in p)
    assert await paths(repo, f"{SESSION}/r") == [f"{SESSION}/raw/wheel.position.npy"]
    assert await paths(repo, "nothing/") == []
    listed = {info.path: info.size async for info in repo.list()}
    assert listed == {path: len(data) for path, data in files.items()}

    path = f"{SESSION}/alf/trials.table.pqt"
    plain = await repo.stat(path)
    assert plain is not None and plain.size == len(files[path])
    verified = await repo.stat(path, verify=True)
    assert verified is not None and verified.sha256 == sha(files[path])
    assert verified.mtime is not None

    got = await repo.get(path, tmp_path / "out" / "a.pqt", sha256=sha(files[path]))
    assert (tmp_path / "out" / "a.pqt").read_bytes() == files[path]
    assert got.sha256 == sha(files[path]) and got.size == len(files[path])
    empty = f"{SESSION}/raw/wheel.position.npy"
    await repo.get(empty, tmp_path / "out" / "empty.npy")
    assert (tmp_path / "out" / "empty.npy").read_bytes() == b""

    # a wrong expected sha256: nothing appears (and an existing file is not touched)
    (tmp_path / "keep.pqt").write_bytes(b"mine")
    with pytest.raises(ChecksumMismatch):
        await repo.get(path, tmp_path / "keep.pqt", sha256="0" * 64)
    assert (tmp_path / "keep.pqt").read_bytes() == b"mine"
    assert sorted(os.listdir(tmp_path / "out")) == ["a.pqt", "empty.npy"]

    # put over an existing object replaces it
    await repo.put(write(tmp_path / "new", b"new bytes"), path)
    replaced = await repo.stat(path, verify=True)
    assert replaced is not None and (replaced.size, replaced.sha256) == (9, sha(b"new bytes"))

    await repo.delete(path)
    assert await repo.stat(path) is None
    assert await repo.stat(path, verify=True) is None
    await repo.delete(path)  # idempotent
    await repo.delete("never/was.there")
    with pytest.raises(ObjectNotFound):
        await repo.get(path, tmp_path / "missing.pqt")
    assert not (tmp_path / "missing.pqt").exists()
    assert path not in await paths(repo)
    for other in files:
        if other != path:
            await repo.delete(other)
    assert await paths(repo) == []
    assert await leftovers(repo) == []


@pytest.mark.parametrize("failure", ["cancelled", "source-changed"])
async def test_a_put_that_fails_halfway_leaves_the_old_object(
    repo: Repository, tmp_path: Path, failure: str
) -> None:
    path = f"{SESSION}/raw/ephys.raw.bin"
    old = bytes(range(256)) * (12 * MiB // 256)  # 12 MiB: several parts / chunks
    new = bytes(reversed(range(256))) * (12 * MiB // 256)
    await repo.put(write(tmp_path / "old.bin", old), path)
    source = write(tmp_path / "new.bin", new)
    sent: list[int] = []

    with anyio.CancelScope() as scope:

        def halfway(event: TransferEvent) -> None:
            if not isinstance(event, BytesTransferred) or sent:
                return
            if event.total_done >= len(new) // 2:
                sent.append(event.total_done)
                if failure == "cancelled":
                    scope.cancel()  # the task putting is killed here
                else:
                    with source.open("r+b") as fh:  # the source shrinks under the reader
                        fh.truncate(len(new) // 3)

        if failure == "cancelled":
            await repo.put(source, path, progress=halfway)
            pytest.fail("the put was cancelled halfway; it can't have returned")
        with pytest.raises(TransferError, match="changed|ended early"):
            await repo.put(source, path, progress=halfway)

    assert sent and sent[0] < len(new), "the failure was injected before the last bytes"
    assert scope.cancelled_caught == (failure == "cancelled")
    # readers see the old object, whole; nothing else is visible or left behind
    info = await repo.stat(path, verify=True)
    assert info is not None and (info.size, info.sha256) == (len(old), sha(old))
    await repo.get(path, tmp_path / "read.bin", sha256=sha(old))
    assert (tmp_path / "read.bin").read_bytes() == old
    assert await paths(repo) == [path]
    assert await leftovers(repo) == []


async def test_corrupted_bytes_are_caught_by_verify(
    repo: Repository, tmp_path: Path, s3_admin: Any
) -> None:
    path = f"{SESSION}/alf/spikes.times.npy"
    data = os.urandom(64 * 1024)
    put = await repo.put(write(tmp_path / "a.npy", data), path)
    assert put.sha256 == sha(data)
    stored = corrupt(repo, path, s3_admin)

    plain = await repo.stat(path)
    assert plain is not None and plain.size == len(data)
    # what the uploader said (S3 metadata) is not evidence: the bytes read back are
    verified = await repo.stat(path, verify=True)
    assert verified is not None
    assert verified.sha256 == sha(stored) != sha(data)
    with pytest.raises(ChecksumMismatch):
        await repo.get(path, tmp_path / "out" / "a.npy", sha256=sha(data))
    out = tmp_path / "out"
    assert not out.exists() or os.listdir(out) == []  # no temp file left either


BAD_PATHS = [
    "../escape.txt",
    "a/../../escape.txt",
    "/etc/passwd",
    "a\\b.txt",
    "\\\\server\\share\\x",
    "C:/x.txt",
    "a/\x00b.txt",
    "",
    "a//b.txt",
    "./a.txt",
    "a/.",
]


async def test_delete_many_deletes_each_and_ignores_missing(
    repo: Repository, tmp_path: Path
) -> None:
    kept = f"{SESSION}/alf/kept.table.pqt"
    gone = [f"{SESSION}/alf/a.table.pqt", f"{SESSION}/raw/b.c.npy", "other/d.e.txt"]
    for path in [kept, *gone]:
        await repo.put(write(tmp_path / "src" / path, path.encode()), path)
    await repo.delete_many([*gone, "never/there.txt"])
    assert await paths(repo) == [kept]
    await repo.delete_many(gone)  # again: idempotent
    await repo.delete_many([])
    assert await paths(repo) == [kept]


@pytest.mark.parametrize("bad", BAD_PATHS)
async def test_paths_that_escape_are_refused(repo: Repository, tmp_path: Path, bad: str) -> None:
    local = write(tmp_path / "a.txt", b"a")
    with pytest.raises(UnsafePath):
        await repo.put(local, bad)
    with pytest.raises(UnsafePath):
        await repo.get(bad, tmp_path / "out.txt")
    with pytest.raises(UnsafePath):
        await repo.stat(bad)
    with pytest.raises(UnsafePath):
        await repo.delete(bad)
    with pytest.raises(UnsafePath):  # checked before anything is deleted
        await repo.delete_many(["a.txt", bad])
    if bad:
        with pytest.raises(UnsafePath):
            await paths(repo, bad)
    assert await paths(repo) == []
    assert not (tmp_path / "out.txt").exists()


async def test_object_info_is_what_the_store_says(repo: Repository, tmp_path: Path) -> None:
    info = await repo.put(write(tmp_path / "a", b"abc"), "a.b.txt")
    assert isinstance(info, ObjectInfo)
    listed = [i async for i in repo.list()]
    assert [(i.path, i.size, i.sha256) for i in listed] == [("a.b.txt", 3, None)]
    assert listed[0].mtime is not None
    if repo.kind == "s3":
        assert info.etag is not None and listed[0].etag == info.etag
    assert repr(repo).startswith(type(repo).__name__)


async def test_progress_is_the_engine_events_of_one_file(repo: Repository, tmp_path: Path) -> None:
    data = os.urandom(3 * MiB)
    events: list[TransferEvent] = []
    info = await repo.put(write(tmp_path / "a.bin", data), "p/a.bin", progress=events.append)
    got: list[TransferEvent] = []
    await repo.get("p/a.bin", tmp_path / "b.bin", progress=got.append)
    for seen in (events, got):
        kinds = [type(e).__name__ for e in seen]
        assert kinds[0] == "FileStarted" and kinds[-1] == "TransferProgress"
        assert "BytesTransferred" in kinds and kinds.count("FileFinished") == 1
        moved = [e for e in seen if isinstance(e, BytesTransferred)]
        assert moved[-1].total_done == len(data) == sum(e.n for e in moved)
        (finished,) = [e for e in seen if isinstance(e, FileFinished)]
        assert finished.result.ok and finished.result.sha256 == info.sha256 == sha(data)
        last = seen[-1]
        assert isinstance(last, TransferProgress)
        assert (last.files_done, last.bytes_done) == (1, len(data))


async def test_put_many_and_delete_many(repo: Repository, tmp_path: Path) -> None:
    files = {f"{SESSION}/alf/x{i}.npy": os.urandom(10 + i) for i in range(4)}
    pairs = [(write(tmp_path / "src" / p, data), p) for p, data in files.items()]
    with pytest.raises(UnsafePath):  # checked for all before anything is stored
        await repo.put_many([*pairs, (pairs[0][0], "../escape.npy")])
    assert await paths(repo) == []

    infos = await repo.put_many(pairs)
    assert [(i.path, i.size, i.sha256) for i in infos] == [
        (p, len(d), sha(d)) for p, d in files.items()
    ]
    assert await paths(repo) == sorted(files)
    for path, data in files.items():
        verified = await repo.stat(path, verify=True)
        assert verified is not None and verified.sha256 == sha(data)

    with pytest.raises(UnsafePath):
        await repo.delete_many([*files, "/etc/passwd"])
    assert await paths(repo) == sorted(files)
    await repo.delete_many([*files, "never/was.there"])
    assert await paths(repo) == []
    assert await leftovers(repo) == []


async def test_stat_many_answers_each_path_in_order(
    repo: Repository, tmp_path: Path, s3_admin: Any
) -> None:
    files = await put_random(repo, tmp_path, "y", 3, 100)
    first, second, third = files
    stored = corrupt(repo, second, s3_admin)  # bit rot in the middle of the batch
    asked = [first, f"{SESSION}/alf/missing.npy", second, third]
    with pytest.raises(UnsafePath):  # checked for all before anything is read
        await repo.stat_many([*asked, "../escape.npy"], verify=True)

    verified = await repo.stat_many(asked, verify=True)
    assert [(i.path, i.size, i.sha256) if i else None for i in verified] == [
        (first, 100, sha(files[first])),
        None,  # a missing object: None, and the others are still answered
        (second, 101, sha(stored)),  # the bytes read back, not what was put
        (third, 102, sha(files[third])),
    ]
    plain = await repo.stat_many(asked)
    assert [i.size if i else None for i in plain] == [100, None, 101, 102]
    assert await repo.stat_many([]) == []


async def test_confirm_many_says_what_the_store_holds(
    repo: Repository, tmp_path: Path, s3_admin: Any
) -> None:
    files = await put_random(repo, tmp_path, "z", 4, 200)
    good, rotten, no_md5, other = files
    stored = corrupt(repo, rotten, s3_admin)
    expected = {p: hash_file(tmp_path / "src" / p, md5=True) for p in files}
    asked = [good, f"{SESSION}/alf/missing.npy", rotten, no_md5, other]
    wanted = [
        expected[good],
        expected[good],
        expected[rotten],
        replace(expected[no_md5], md5=None),  # nothing the store could compare: read back
        hash_file(write(tmp_path / "else.npy", b"something else"), md5=True),
    ]
    with pytest.raises(UnsafePath):  # checked for all before anything is read
        await repo.confirm_many([*asked, "../escape.npy"], [*wanted, expected[good]])
    with pytest.raises(UsageError, match="5 paths but 4 expected"):
        await repo.confirm_many(asked, wanted[:4])

    found = await repo.confirm_many(asked, wanted)
    assert [(i.path, i.size, i.sha256) if i else None for i in found] == [
        (good, 200, sha(files[good])),
        None,
        (rotten, 201, sha(stored)),  # what the store holds, not what was expected
        (no_md5, 202, sha(files[no_md5])),
        (other, 203, sha(files[other])),
    ]
    assert await repo.confirm_many([], []) == []
