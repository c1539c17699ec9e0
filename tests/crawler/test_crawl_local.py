"""Crawling a local folder: every file gets a record or an error; filters, depth, loops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from provena_like._core.errors import UsageError
from provena_like.crawler import (
    CrawlError,
    FileRecord,
    Group,
    LocalSource,
    crawl,
    group,
    read_jsonl,
    write_jsonl,
)
from tests.support.transfer_tasks import write_tree

pytestmark = pytest.mark.anyio

TREE = {
    "top.csv": b"a,b\n1,2\n",
    "notes.txt": b"hello",
    ".hidden.txt": b"secret",
    ".cache/x.bin": b"x",
    "raw/a.csv": b"a\n1\n",
    "raw/b.json": b"{}",
    "raw/deep/c.npy": b"\x93NUMPY",
    "raw/deep/deeper/d.txt": b"d",
    "tmp/junk.csv": b"junk",
    "alf/_ibl_trials.goCue_times.npy": b"1",
    "alf/_ibl_trials.intervals.npy": b"2",
    "alf/wheel.position.npy": b"3",
    "alf/README": b"not alf",
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    write_tree(root, TREE)
    return root


async def records(source: object, **options: object) -> list[FileRecord | CrawlError]:
    return [r async for r in crawl(source, **options)]  # type: ignore[arg-type]


def paths(items: list[FileRecord | CrawlError]) -> set[str]:
    return {r.path for r in items if isinstance(r, FileRecord)}


async def test_every_visible_file_once_with_its_stat(tree: Path) -> None:
    found = await records(tree)
    visible = {p for p in TREE if not any(part.startswith(".") for part in p.split("/"))}
    files = [r for r in found if isinstance(r, FileRecord)]
    assert sorted(r.path for r in files) == sorted(visible)  # each once, nothing else
    by_path = {r.path: r for r in files}
    top = by_path["top.csv"]
    assert top.source == f"local:{tree.absolute().as_posix()}"
    assert (top.size, top.extension, top.mime_type, top.depth) == (8, ".csv", "text/csv", 0)
    assert top.mtime is not None and top.mtime.tzinfo is not None
    assert by_path["raw/deep/deeper/d.txt"].depth == 3
    assert by_path["alf/README"].extension == "" and by_path["alf/README"].mime_type is None
    assert top.sha256 is None  # checksums only when asked

    with_hidden = await records(tree, hidden=True)
    assert paths(with_hidden) == set(TREE)


async def test_depth_include_exclude(tree: Path) -> None:
    assert paths(await records(tree, max_depth=0)) == {"top.csv", "notes.txt"}
    assert "raw/deep/c.npy" in paths(await records(tree, max_depth=2))
    assert "raw/deep/deeper/d.txt" not in paths(await records(tree, max_depth=2))
    csv = paths(await records(tree, include=["*.csv"], exclude=["tmp/*"]))
    assert csv == {"top.csv", "raw/a.csv"}
    assert not any(p.startswith("raw/") for p in paths(await records(tree, exclude=["raw"])))
    with pytest.raises(UsageError):
        await records(tree, max_depth=-1)


async def test_checksums_from_the_project_hash_code(tree: Path) -> None:
    import hashlib

    found = await records(LocalSource(tree, checksums=("sha256", "md5")), include=["notes.txt"])
    (record,) = found
    assert isinstance(record, FileRecord)
    assert record.sha256 == hashlib.sha256(b"hello").hexdigest()
    assert record.md5 == hashlib.md5(b"hello").hexdigest()
    with pytest.raises(UsageError):
        LocalSource(tree, checksums=("crc",))


async def test_symlink_loop_is_recorded_not_followed_forever(tree: Path) -> None:
    os.symlink("..", tree / "raw" / "up")  # raw/up -> the root: a loop
    os.symlink(tree / "raw" / "deep", tree / "alias")  # a second path to raw/deep
    os.symlink(tree / "nowhere", tree / "broken.txt")

    followed = await records(LocalSource(tree, follow_symlinks=True))
    errors = {r.path: r for r in followed if isinstance(r, CrawlError)}
    files = [r.path for r in followed if isinstance(r, FileRecord)]
    assert len(files) == len(set(files))  # nothing crawled twice
    assert errors["broken.txt"].reason == "not_found"
    assert {errors["raw/up"].reason} == {"symlink_loop"}
    # raw/deep and alias are one directory: one of them is entered, the other recorded
    assert ("alias" in errors) != ("raw/deep" in errors)

    not_followed = await records(tree)
    assert "raw/up" not in {r.path for r in not_followed}
    assert not any(p.startswith("alias/") for p in paths(not_followed))


async def test_root_that_is_not_a_folder_is_one_error(tmp_path: Path) -> None:
    (missing,) = await records(tmp_path / "absent")
    assert isinstance(missing, CrawlError) and missing.reason == "not_found"
    (tmp_path / "f").write_bytes(b"")
    (not_dir,) = await records(tmp_path / "f")
    assert isinstance(not_dir, CrawlError) and not_dir.reason == "not_a_directory"


@pytest.fixture
def shared_tree() -> Iterator[Path]:
    """A tree that another user can reach (outside the 0700 pytest temp dir)."""
    root = Path(tempfile.mkdtemp(prefix="crawl-perm-"))
    try:
        root.chmod(0o755)
        write_tree(root, {"ok/a.txt": b"a", "locked/b.txt": b"b", "c.txt": b"c"})
        for d in (root / "ok",):
            d.chmod(0o755)
        (root / "locked").chmod(0)
        yield root
    finally:
        (root / "locked").chmod(0o755)
        import shutil

        shutil.rmtree(root)


CRAWL_AND_PRINT = """
import os, sys, tempfile
import anyio
from provena_like.crawler import crawl, to_jsonl

async def main():
    async for r in crawl(tempfile.gettempdir(), max_depth=0):  # load every module first
        pass
    if os.geteuid() == 0:  # root reads any directory: become an unprivileged user
        os.setgid(65534)
        os.setuid(65534)
    async for r in crawl(sys.argv[1]):
        print(to_jsonl(r))

anyio.run(main)
"""


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_unreadable_directory_is_recorded_and_the_crawl_goes_on(shared_tree: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CRAWL_AND_PRINT, str(shared_tree)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert {o["path"] for o in out if o["kind"] == "file"} == {"ok/a.txt", "c.txt"}
    (error,) = [o for o in out if o["kind"] == "error"]
    assert (error["path"], error["reason"]) == ("locked", "unreadable")


async def test_groupers(tree: Path) -> None:
    async def groups(by: object) -> list[Group]:
        out = [r async for r in group(crawl(tree), by)]  # type: ignore[arg-type]
        assert len([r for r in out if isinstance(r, FileRecord)]) == 11  # passed through
        return [r for r in out if isinstance(r, Group)]

    per_file = await groups("file")
    assert len(per_file) == 11 and all(len(g.files) == 1 for g in per_file)

    by_dir = {g.key: set(g.files) for g in await groups("directory")}
    assert by_dir["raw/deep"] == {"raw/deep/c.npy"}
    assert by_dir[""] == {"top.csv", "notes.txt"}

    by_ext = {g.key: g for g in await groups("extension")}
    assert set(by_ext[".csv"].files) == {"top.csv", "raw/a.csv", "tmp/junk.csv"}
    assert by_ext[".csv"].size == 8 + 4 + 4

    alf = await groups("alf_object")
    keyed = {g.key: set(g.files) for g in alf}
    assert keyed["alf/_ibl_trials"] == {
        "alf/_ibl_trials.goCue_times.npy",
        "alf/_ibl_trials.intervals.npy",
    }
    assert keyed["alf/wheel"] == {"alf/wheel.position.npy"}
    assert keyed["alf/README"] == {"alf/README"}  # not an ALF name: a group of its own
    ids = [g.group_id for g in alf]
    assert len(ids) == len(set(ids))
    again = {g.key: g.group_id for g in await groups("alf_object")}
    assert again == {g.key: g.group_id for g in alf}  # stable ids

    def top_folder(record: FileRecord) -> str:
        return record.path.split("/")[0] if "/" in record.path else "."

    custom = {g.key: g for g in await groups(top_folder)}
    assert set(custom) == {".", "raw", "tmp", "alf"} and custom["raw"].grouper == "top_folder"
    with pytest.raises(UsageError):
        await groups("by_colour")


async def test_jsonl_round_trip(tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "crawl.jsonl"
    n = await write_jsonl(group(crawl(tree), "directory"), out)
    back = list(read_jsonl(out))
    assert len(back) == n
    assert {type(r) for r in back} == {FileRecord, Group}
    assert {r.path for r in back if isinstance(r, FileRecord)} == paths(await records(tree))


async def test_breaking_out_early_cancels_the_listings(tmp_path: Path) -> None:
    write_tree(tmp_path, {f"d{i}/f{j}.txt": b"x" for i in range(20) for j in range(5)})
    seen = 0
    async for _ in crawl(tmp_path, concurrency=4):
        seen += 1
        if seen == 3:
            break
    assert seen == 3
