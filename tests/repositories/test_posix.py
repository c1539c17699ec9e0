"""What only a directory tree has: symlinks, temp files of killed writers, fsync'd renames."""

from __future__ import annotations

import hashlib
import os
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from provena_like import UnsafePath
from provena_like.repositories import TEMP_PREFIX, ObjectInfo, ObjectNotFound, PosixRepository

pytestmark = pytest.mark.anyio


@pytest.fixture
async def repo(tmp_path: Path) -> PosixRepository:
    return PosixRepository(tmp_path / "repo", name="lab-server")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(b"secret")
    return folder


async def test_symlinks_never_lead_outside_the_root(
    repo: PosixRepository, tmp_path: Path, outside: Path
) -> None:
    local = tmp_path / "a.txt"
    local.write_bytes(b"a")
    await repo.put(local, "inside/a.txt")
    os.symlink(outside, repo.root / "link")  # a folder planted inside, pointing out
    os.symlink(outside / "secret.txt", repo.root / "inside" / "secret.txt")  # a file

    with pytest.raises(UnsafePath):
        await repo.put(local, "link/new.txt")
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    with pytest.raises(UnsafePath):
        await repo.stat("link/secret.txt")
    for many in (False, True):  # a file symlinked out is refused, never followed
        with pytest.raises(UnsafePath):
            if many:
                await repo.stat_many(["inside/a.txt", "inside/secret.txt"], verify=True)
            else:
                await repo.stat("inside/secret.txt", verify=True)
    os.symlink(repo.root / "inside" / "a.txt", repo.root / "inside" / "alias.txt")
    seen = await repo.stat_many(["inside/a.txt", "inside/alias.txt"], verify=True)
    assert [i is not None for i in seen] == [True, False]  # a symlink inside is no object
    with pytest.raises(UnsafePath):
        await repo.get("link/secret.txt", tmp_path / "stolen.txt")
    with pytest.raises(UnsafePath):
        await repo.get("inside/secret.txt", tmp_path / "stolen.txt")
    with pytest.raises(UnsafePath):
        await repo.delete("link/secret.txt")
    with pytest.raises(UnsafePath):
        [o async for o in repo.list("link/")]
    assert not (tmp_path / "stolen.txt").exists()
    assert (outside / "secret.txt").read_bytes() == b"secret"
    # symlinks are not objects, and the listing doesn't follow them
    assert [o.path async for o in repo.list()] == ["inside/a.txt"]
    # a put over a symlinked file replaces the link, never writes through it
    await repo.put(local, "inside/secret.txt")
    assert (outside / "secret.txt").read_bytes() == b"secret"
    assert not (repo.root / "inside" / "secret.txt").is_symlink()


async def test_temp_files_of_killed_writers_are_not_objects(
    repo: PosixRepository, tmp_path: Path
) -> None:
    local = tmp_path / "a.txt"
    local.write_bytes(b"a")
    await repo.put(local, "s/a.txt")
    # what a writer killed between its write and its rename leaves behind
    leftover = repo.root / "s" / f"{TEMP_PREFIX}0123456789ab-a.txt"
    leftover.write_bytes(b"half")
    assert [o.path async for o in repo.list()] == ["s/a.txt"]
    assert [o.path for o in await repo.incomplete()] == [f"s/{leftover.name}"]
    elsewhere = repo.root / "t" / "u" / f"{TEMP_PREFIX}0123456789ab-b.txt"
    elsewhere.parent.mkdir(parents=True)
    elsewhere.write_bytes(b"other")
    assert [o.path for o in await repo.incomplete("t/u/")] == [f"t/u/{elsewhere.name}"]
    assert [o.path for o in await repo.incomplete("s/")] == [f"s/{leftover.name}"]
    assert await repo.incomplete("s/a") == []  # a temp name starts with its prefix, not "a"
    assert [o.path for o in await repo.discard_incomplete(prefix="t/")] == [f"t/u/{elsewhere.name}"]
    assert leftover.exists() and not elsewhere.exists()
    assert await repo.discard_incomplete(timedelta(hours=1)) == []  # too recent
    removed = await repo.discard_incomplete()
    assert [o.path for o in removed] == [f"s/{leftover.name}"]
    assert not leftover.exists() and await repo.incomplete() == []
    # nobody can store an object under a temp name (it would be invisible)
    with pytest.raises(UnsafePath):
        await repo.put(local, f"s/{TEMP_PREFIX}x")


async def test_folders_are_not_objects(repo: PosixRepository, tmp_path: Path) -> None:
    local = tmp_path / "a.txt"
    local.write_bytes(b"a")
    await repo.put(local, "d/e/a.txt")
    assert await repo.stat("d/e") is None
    with pytest.raises(ObjectNotFound):
        await repo.get("d/e", tmp_path / "x")
    await repo.delete("d/e")  # nothing to delete: the folder stays
    assert await repo.stat("d/e/a.txt") is not None
    assert await repo.stat("d/e/a.txt/deeper") is None
    assert [o.path async for o in repo.list("d/e/a")] == ["d/e/a.txt"]


async def test_a_missing_root_is_an_empty_repository(tmp_path: Path) -> None:
    repo = PosixRepository(tmp_path / "not-yet")
    assert [o async for o in repo.list()] == []
    assert await repo.stat("a.txt") is None
    await repo.delete("a.txt")
    assert repo.name == str(tmp_path / "not-yet")


# A writer that stops halfway through its put (having written a marker) until it is killed.
KILLED_WRITER = """
import sys, time, anyio
from provena_like.repositories import PosixRepository

async def main(root, source, path, marker):
    repo = PosixRepository(root, chunk_size=1024 * 1024)

    def halfway(event):
        if getattr(event, "total_done", 0) >= 4 * 1024 * 1024:
            open(marker, "w").close()
            time.sleep(600)  # blocks the writer mid-put: the parent kills it here

    await repo.put(source, path, progress=halfway)

anyio.run(main, *sys.argv[1:])
"""


async def test_a_writer_killed_mid_put_leaves_the_old_file_and_a_hidden_temp(
    repo: PosixRepository, tmp_path: Path
) -> None:
    import subprocess
    import sys

    import anyio

    path = "m1/2024-01-31/001/raw/ephys.raw.bin"
    old, new = b"o" * (8 * 1024 * 1024), b"n" * (8 * 1024 * 1024)
    (tmp_path / "old.bin").write_bytes(old)
    (tmp_path / "new.bin").write_bytes(new)
    await repo.put(tmp_path / "old.bin", path)
    marker = tmp_path / "halfway"
    args = [str(repo.root), str(tmp_path / "new.bin"), path, str(marker)]
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, *args])
    try:
        with anyio.fail_after(60):
            while not marker.exists():
                assert proc.poll() is None, "the writer exited before it was killed"
                await anyio.sleep(0.05)
    finally:
        proc.kill()
        proc.wait()
    # readers see the old file, whole; the half-written temp file is not an object
    info = await repo.stat(path, verify=True)
    assert info is not None and info.size == len(old)
    assert (repo.root / path).read_bytes() == old
    assert [o.path async for o in repo.list()] == [path]
    leftovers = await repo.incomplete()
    assert len(leftovers) == 1 and 0 < leftovers[0].size < len(new)
    assert leftovers[0].path.startswith("m1/2024-01-31/001/raw/" + TEMP_PREFIX)
    await repo.discard_incomplete()
    assert await repo.incomplete() == [] and [o.path async for o in repo.list()] == [path]


def count_hops(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the worker-thread hops from now on (``monkeypatch.undo()`` stops counting)."""
    import anyio.to_thread

    hops = [0]
    real = anyio.to_thread.run_sync

    async def counted(*args: object, **kwargs: object) -> object:
        hops[0] += 1
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    return hops


async def test_put_many_stores_small_files_several_to_a_thread_hop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = PosixRepository(tmp_path / "repo", chunk_size=1024)
    pairs: list[tuple[Path, str]] = []
    for i in range(40):  # 40 files of 100 bytes, then one larger than a chunk, then 2 more
        local = tmp_path / f"f{i}.bin"
        local.write_bytes(bytes([i]) * 100)
        pairs.append((local, f"s/c{i % 3}/f{i}.bin"))
    big = tmp_path / "big.bin"
    big.write_bytes(b"B" * 3000)
    pairs.append((big, "s/big.bin"))
    pairs += pairs[:2]
    hops = count_hops(monkeypatch)
    infos = await repo.put_many(pairs)
    # 10 files of 100 bytes fill a 1 KiB chunk: 4 hops for 40, the big one chunk by chunk
    assert hops[0] <= 20, hops[0]
    monkeypatch.undo()
    assert [i.path for i in infos] == [p for _, p in pairs]
    for (local, path), info in zip(pairs, infos, strict=True):
        assert (repo.root / path).read_bytes() == local.read_bytes()
        stored = await repo.stat(path, verify=True)
        assert stored is not None and (info.size, info.sha256) == (stored.size, stored.sha256)
    assert await repo.incomplete() == []


async def test_stat_many_looks_at_small_files_several_to_a_thread_hop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = PosixRepository(tmp_path / "repo", chunk_size=1024)
    pairs: list[tuple[Path, str]] = []
    for i in range(40):  # 40 files of 100 bytes, one larger than a chunk, one more
        local = tmp_path / f"f{i}.bin"
        local.write_bytes(bytes([i]) * 100)
        pairs.append((local, f"s/c{i % 3}/f{i}.bin"))
    big = tmp_path / "big.bin"
    big.write_bytes(b"B" * 3000)
    pairs += [(big, "s/big.bin"), (pairs[0][0], "s/last.bin")]
    await repo.put_many(pairs)
    (repo.root / "s" / "folder.bin").mkdir()  # not an object
    asked = [p for _, p in pairs]
    asked[5:5] = ["s/missing.bin", "s/folder.bin", "s/c0/f0.bin/below.bin"]
    hops = count_hops(monkeypatch)
    found = await repo.stat_many(asked, verify=True)
    # 10 files of 100 bytes fill a 1 KiB chunk: 5 hops for the 43 small ones, 1 for the big
    assert hops[0] <= 8, hops[0]
    monkeypatch.undo()
    expected = {p: local.read_bytes() for local, p in pairs}
    assert [(i.path, i.size, i.sha256) if i else None for i in found] == [
        (p, len(expected[p]), hashlib.sha256(expected[p]).hexdigest()) if p in expected else None
        for p in asked
    ]
    assert [i.sha256 if i else None for i in await repo.stat_many(asked[:2])] == [None, None]


async def test_stat_many_raises_a_file_that_fails_in_a_batch(tmp_path: Path) -> None:
    repo = PosixRepository(tmp_path / "repo")
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(name.encode())
        await repo.put(tmp_path / name, f"s/{name}.bin")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "x.bin").write_bytes(b"x")
    (repo.root / "s" / "link").symlink_to(outside)  # a folder planted inside, leading out
    with pytest.raises(UnsafePath, match="outside the repository"):
        await repo.stat_many(["s/a.bin", "s/link/x.bin", "s/b.bin"], verify=True)
    found = await repo.stat_many(["s/a.bin", "s/b.bin"], verify=True)
    assert [i.sha256 if i else None for i in found] == [
        hashlib.sha256(b"a").hexdigest(),
        hashlib.sha256(b"b").hexdigest(),
    ]


async def test_put_many_raises_the_first_failure_keeping_what_was_stored(tmp_path: Path) -> None:
    """One failing file among slices stored side by side: its error is raised; what was
    stored is complete (no temp file, no partial object), with every file before it in its
    slice; storing the rest again completes the set."""
    repo = PosixRepository(tmp_path / "repo", io_threads=4)
    pairs = []
    for i in range(200):  # 4 slices (of 64 files at most) stored side by side
        (tmp_path / f"f{i}.bin").write_bytes(bytes([i]) * (i + 1))
        pairs.append((tmp_path / f"f{i}.bin", f"s/c{i % 3}/f{i}.bin"))
    pairs[70] = (tmp_path / "gone.bin", "s/gone.bin")  # the second slice's seventh file
    with pytest.raises(FileNotFoundError):
        await repo.put_many(pairs)
    stored = {o.path: o for o in [o async for o in repo.list()]}
    expected = {path: local for local, path in pairs if local.exists()}
    assert {p for _, p in pairs[64:70]} <= stored.keys() <= expected.keys()
    for path in stored:
        assert (repo.root / path).read_bytes() == expected[path].read_bytes()
    assert await repo.incomplete() == []
    infos = await repo.put_many([(local, path) for path, local in expected.items()])
    assert [i.path for i in infos] == list(expected)
    assert {o.path async for o in repo.list()} == expected.keys()


async def test_put_many_stores_its_slices_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two hops are in their worker threads at once (each file's fsync waits for the disk)."""
    repo = PosixRepository(tmp_path / "repo", io_threads=4)
    pairs = []
    for i in range(200):  # 4 slices (of 64 files at most)
        (tmp_path / f"f{i}.bin").write_bytes(bytes([i]) * 10)
        pairs.append((tmp_path / f"f{i}.bin", f"s/f{i}.bin"))
    together = threading.Barrier(2, timeout=30)  # broken (raised) if the hops are serial
    calls = [0]
    lock = threading.Lock()
    real = repo._put_small

    def meeting(some: list[tuple[Path, str]]) -> list[ObjectInfo]:
        with lock:
            calls[0] += 1
            first_two = calls[0] <= 2
        if first_two:
            together.wait()
        return real(some)

    monkeypatch.setattr(repo, "_put_small", meeting)
    infos = await repo.put_many(pairs)
    assert [i.path for i in infos] == [p for _, p in pairs]
    assert {o.path async for o in repo.list()} == {p for _, p in pairs}


async def test_delete_many_fsyncs_each_folder_once_after_deleting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from provena_like.repositories import posix

    repo = PosixRepository(tmp_path / "repo", io_threads=3)
    paths = [f"s/c{i % 7}/f{i}.bin" for i in range(30)]
    (tmp_path / "f").write_bytes(b"f")
    await repo.put_many([(tmp_path / "f", p) for p in paths])
    synced: list[tuple[Path, int]] = []
    real = posix._fsync_dir

    def recorded(folder: Path) -> None:  # how many objects are left when it is synced
        synced.append((folder, len([o for o in folder.iterdir() if o.is_file()])))
        real(folder)

    monkeypatch.setattr(posix, "_fsync_dir", recorded)
    await repo.delete_many([*paths[:20], "s/c0/never.bin", "t/never.bin"])
    assert sorted(f for f, _ in synced) == sorted(
        {repo.root / p.rpartition("/")[0] for p in paths[:20]}
    )
    left = {p.rpartition("/")[0]: 0 for p in paths}
    for p in paths[20:]:
        left[p.rpartition("/")[0]] += 1
    assert {f: n for f, n in synced} == {repo.root / d: left[d] for d in left}
    assert [o.path async for o in repo.list()] == sorted(paths[20:])


async def test_delete_many_unlinks_its_slices_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two slices are in their worker threads at once (an unlink waits for the disk)."""
    repo = PosixRepository(tmp_path / "repo", io_threads=4)
    paths = [f"s/c{i // 5}/f{i}.bin" for i in range(100)]  # 4 slices of 25
    (tmp_path / "f").write_bytes(b"f")
    await repo.put_many([(tmp_path / "f", p) for p in paths])
    together = threading.Barrier(2, timeout=30)  # broken (raised) if the slices are serial
    threads: set[int] = set()
    lock = threading.Lock()
    real = repo._unlink

    def meeting(path: str, *args: object) -> Path | None:
        with lock:
            first = threading.get_ident() not in threads and len(threads) < 2
            threads.add(threading.get_ident())
        if first:
            together.wait()
        return real(path, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(repo, "_unlink", meeting)
    await repo.delete_many(paths)
    assert [o.path async for o in repo.list()] == []


async def test_delete_many_refuses_a_path_leading_outside_and_syncs_what_it_deleted(
    repo: PosixRepository, tmp_path: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slice meeting a symlinked folder fails; the others' deletes are fsynced, then it raises."""
    from provena_like.repositories import posix

    paths = [f"s/c{i // 5}/f{i}.bin" for i in range(60)]
    (tmp_path / "f").write_bytes(b"f")
    await repo.put_many([(tmp_path / "f", p) for p in paths])
    os.symlink(outside, repo.root / "link")  # a folder planted inside, pointing out
    synced: list[Path] = []
    real = posix._fsync_dir

    def recorded(folder: Path) -> None:
        synced.append(folder)
        real(folder)

    monkeypatch.setattr(posix, "_fsync_dir", recorded)
    with pytest.raises(UnsafePath):
        await repo.delete_many([*paths, "link/secret.txt"])  # the last slice's last path
    assert (outside / "secret.txt").read_bytes() == b"secret"
    assert [o.path async for o in repo.list()] == []
    assert sorted(synced) == sorted({repo.root / p.rpartition("/")[0] for p in paths})
