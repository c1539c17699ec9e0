"""A big local crawl listed by worker processes gives what the single-process walk gives."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from provena_like._core.errors import UsageError
from provena_like.crawler import (
    CrawlError,
    ExtractionRunner,
    FileRecord,
    FileResult,
    LocalSource,
    crawl,
    to_jsonl,
)
from provena_like.crawler import parallel as parallel_module
from provena_like.crawler import walk as walk_module
from provena_like.crawler.sources import CrawlFilter, record_itself
from provena_like.extractors.basic import BasicExtractor
from tests.support.transfer_tasks import write_tree

pytestmark = pytest.mark.anyio

TREE = {
    **{f"d{i}/sub{j}/f{k}.csv": b"a,b\n" for i in range(4) for j in range(3) for k in range(5)},
    **{f"d{i}/n{k}.txt": b"x" * k for i in range(4) for k in range(4)},
    "top.json": b"{}",
    ".hidden/h.txt": b"h",
    "d0/.dot.txt": b"dot",
    "tmp/junk.csv": b"junk",
    "deep/a/b/c/d/e.bin": b"e",
}


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[parallel_module.Lister]:
    """The listing processes the crawls of a test start."""
    made: list[parallel_module.Lister] = []
    real = parallel_module.Lister

    def spy(tree: LocalSource, rules: CrawlFilter, full: bool = True) -> parallel_module.Lister:
        lister = real(tree, rules, full)
        made.append(lister)
        return lister

    monkeypatch.setattr(parallel_module, "Lister", spy)
    return made


def tree_with_links(root: Path) -> Path:
    write_tree(root, TREE)
    os.symlink("..", root / "d1" / "up")  # a loop when links are followed
    os.symlink(root / "d2", root / "d3" / "again")  # a second way into d2
    os.symlink(root / "nowhere", root / "broken.txt")
    return root


async def lines(source: LocalSource, **options: object) -> list[str]:
    return [to_jsonl(r) async for r in crawl(source, **options)]  # type: ignore[arg-type]


async def test_the_same_records_as_the_single_process_walk(
    tmp_path: Path, started: list[parallel_module.Lister]
) -> None:
    root = tree_with_links(tmp_path)
    processes = 2
    options: list[dict[str, object]] = [
        {},
        {"hidden": True},
        {"max_depth": 1},
        {"include": ["*.csv", "*.txt"], "exclude": ["tmp/*", "d1/sub2"]},
        {"rate_limit": 1000},
    ]
    for follow in (False, True):
        for checksums in ((), ("sha256", "md5")):
            for option in options if not checksums else options[:1]:
                single = LocalSource(root, follow_symlinks=follow, checksums=checksums, processes=0)
                pooled = LocalSource(
                    root,
                    follow_symlinks=follow,
                    checksums=checksums,
                    processes=processes,
                    processes_after=0,
                )
                alone = await lines(single, **option)
                before = len(started)
                together = await lines(pooled, **option)
                assert sorted(together) == sorted(alone), (follow, checksums, option)
                assert len(together) == len(set(together))  # nothing twice
                assert len(started) == before + processes  # the processes were used
    for lister in started:
        assert lister.process.poll() is not None  # every one ended and reaped


async def test_runner_fast_path_through_listing_processes(
    tmp_path: Path, started: list[parallel_module.Lister]
) -> None:
    """``basic`` from the stat a listing process made: the same results, stat and all."""
    root = tree_with_links(tmp_path)
    results: dict[int, dict[str, dict[str, object]]] = {}
    async with ExtractionRunner([BasicExtractor(sha256=False)], workers=1) as runner:
        for processes in (0, 2):
            source = LocalSource(root, processes=processes, processes_after=0)
            found: dict[str, dict[str, object]] = {}
            async for item in runner.extract(crawl(source)):
                if isinstance(item, FileResult):
                    (basic,) = item.extractions
                    found[item.record.path] = {
                        "record": item.record,
                        "basic": basic.model_dump(exclude={"seconds"}),
                    }
                else:
                    assert isinstance(item, CrawlError)
                    found[f"error:{item.path}"] = {"error": item}
            results[processes] = found
    assert started and results[0] == results[2]
    sizes = {k: v["record"].size for k, v in results[2].items() if "record" in v}  # type: ignore[attr-defined]
    assert sizes["d0/n3.txt"] == 3 and "error:broken.txt" in results[2]


async def test_a_listing_process_that_dies_costs_one_directory(
    tmp_path: Path, started: list[parallel_module.Lister], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(walk_module, "_BATCH", 8)
    monkeypatch.setattr(parallel_module, "_TASK_DIRS", 2)
    write_tree(tmp_path, {f"d{i:02d}/f{k}.txt": b"x" for i in range(30) for k in range(20)})
    source = LocalSource(tmp_path, processes=2, processes_after=0)
    batches = walk_module._local_batches(
        source, CrawlFilter(), walk_module.RateLimiter(None), record_itself
    )
    found = list(next(batches))
    for lister in started:
        lister.process.kill()
    for batch in batches:
        found += batch
    files = [r.path for r in found if isinstance(r, FileRecord)]
    errors = [r for r in found if isinstance(r, CrawlError)]
    assert len(files) == len(set(files))
    assert all(e.reason == "failed" and "listing process" in e.message for e in errors)
    assert len(errors) <= 2  # one directory per process at most
    lost = {e.path for e in errors}
    expected = {f"d{i:02d}/f{k}.txt" for i in range(30) for k in range(20)}
    assert {p for p in expected if p.split("/")[0] not in lost} <= set(files) <= expected


async def test_early_exit_ends_the_listing_processes(
    tmp_path: Path, started: list[parallel_module.Lister]
) -> None:
    write_tree(tmp_path, {f"d{i:02d}/f{k}.txt": b"x" for i in range(40) for k in range(40)})
    records = crawl(LocalSource(tmp_path, processes=2, processes_after=0))
    seen = 0
    async for _ in records:
        seen += 1
        if seen == 500:
            break
    await records.aclose()
    assert len(started) == 2
    for lister in started:
        assert lister.process.poll() is not None


async def test_rate_limit_holds_with_listing_processes(
    tmp_path: Path, started: list[parallel_module.Lister]
) -> None:
    write_tree(tmp_path, {f"d{i}/f{j}.txt": b"x" for i in range(5) for j in range(60)})
    began = time.monotonic()
    source = LocalSource(tmp_path, processes=2, processes_after=0)
    files = [r async for r in crawl(source, rate_limit=20)]
    assert len(files) == 300 and started
    assert time.monotonic() - began >= 5 / 20 - 0.05  # 6 listings, 20 per second


def test_small_trees_and_bad_settings(tmp_path: Path) -> None:
    with pytest.raises(UsageError):
        LocalSource(tmp_path, processes=-1)
    assert parallel_module.default_processes() <= 3


@pytest.fixture
def shared_tree() -> Iterator[Path]:
    """A tree that another user can reach (outside the 0700 pytest temp dir)."""
    root = Path(tempfile.mkdtemp(prefix="crawl-perm-"))
    try:
        root.chmod(0o755)
        write_tree(root, {f"ok{i}/a.txt": b"a" for i in range(6)} | {"locked/b.txt": b"b"})
        for i in range(6):
            (root / f"ok{i}").chmod(0o755)
        (root / "locked").chmod(0)
        yield root
    finally:
        (root / "locked").chmod(0o755)
        import shutil

        shutil.rmtree(root)


CRAWL_AND_PRINT = """
import os, sys, tempfile
import anyio
from provena_like.crawler import LocalSource, crawl, to_jsonl

async def main():
    async for r in crawl(tempfile.gettempdir(), max_depth=0):  # load every module first
        pass
    if os.geteuid() == 0:  # root reads any directory: become an unprivileged user
        os.setgid(65534)
        os.setuid(65534)
    async for r in crawl(LocalSource(sys.argv[1], processes=2, processes_after=0)):
        print(to_jsonl(r))

anyio.run(main)
"""


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_an_unreadable_directory_is_recorded_with_listing_processes(shared_tree: Path) -> None:
    """Run as root, the crawl becomes a user who can't run this interpreter: then the walk
    goes on without listing processes."""
    done = subprocess.run(
        [sys.executable, "-c", CRAWL_AND_PRINT, str(shared_tree)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[2],
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert '"path":"locked","reason":"unreadable"' in out
    assert all(f'"path":"ok{i}/a.txt"' in out for i in range(6))


def test_a_listing_process_imports_little() -> None:
    """It starts per big crawl: neither pydantic nor anyio nor the storage layer."""
    code = (
        "import sys, provena_like.crawler._lister; "
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('pydantic', 'anyio', 'httpx') "
        "or m.startswith('provena_like.storage')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


async def test_a_source_that_lists_its_own_way_gets_no_listing_processes(
    tmp_path: Path, started: list[parallel_module.Lister]
) -> None:
    write_tree(tmp_path, {f"d{i}/{n}.txt": b"x" for i in range(6) for n in ("keep", "skip")})

    class Picky(LocalSource):
        def scan(self, relative, depth, rules, finish, dirs):  # type: ignore[no-untyped-def]
            for item in super().scan(relative, depth, rules, finish, dirs):
                if not (isinstance(item, FileRecord) and item.path.endswith("skip.txt")):
                    yield item

    found = [r async for r in crawl(Picky(tmp_path, processes=2, processes_after=0))]
    assert sorted(r.path for r in found) == [f"d{i}/keep.txt" for i in range(6)]
    assert not started


async def test_a_finish_of_ones_own_gets_the_whole_stat_from_listing_processes(
    tmp_path: Path, started: list[parallel_module.Lister]
) -> None:
    """Plain records and the runner take compact items; another ``finish`` the whole stat."""
    write_tree(tmp_path, {f"d{i}/f{k}.txt": b"x" * k for i in range(4) for k in range(3)})
    source = LocalSource(tmp_path, processes=2, processes_after=0)

    def inode(record: FileRecord, st: os.stat_result, path: str) -> tuple[str, int, int]:
        return (record.path, st.st_ino, st.st_nlink)

    got = [i async for i in crawl(source).local(inode) if isinstance(i, tuple)]
    assert started and all(lister.full for lister in started)
    expected = {
        (p.relative_to(tmp_path).as_posix(), p.stat().st_ino, 1) for p in tmp_path.rglob("*.txt")
    }
    assert set(got) == expected and len(got) == 12
    before = len(started)
    records = [r async for r in crawl(source) if isinstance(r, FileRecord)]
    assert len(started) > before and not any(lister.full for lister in started[before:])
    assert sorted((r.path, r.size) for r in records) == sorted(
        (path, int(path[-5])) for path, _, _ in expected
    )


async def test_runner_json_lines_through_listing_processes_are_the_general_paths(
    tmp_path: Path, started: list[parallel_module.Lister]
) -> None:
    """Byte for byte (but ``seconds``): results made from compact items, skipped ones too."""
    from tests.crawler.nasty import NeedsMissingModule

    root = tree_with_links(tmp_path)

    def line(item: FileResult | CrawlError | object) -> str:
        if isinstance(item, FileResult):
            timeless = [e.model_copy(update={"seconds": 0.0}) for e in item.extractions]
            item = item.model_copy(update={"extractions": timeless})
        assert isinstance(item, FileResult | CrawlError)
        return to_jsonl(item)

    async def general(source: LocalSource) -> AsyncIterator[FileRecord | CrawlError]:
        async for record in crawl(source):  # not a Crawl: the runner's general path
            yield record

    extractors = [BasicExtractor(sha256=False), NeedsMissingModule()]
    async with ExtractionRunner(extractors, workers=1) as runner:  # type: ignore[arg-type]
        pooled = LocalSource(root, processes=2, processes_after=0)
        fast = sorted([line(r) async for r in runner.extract(crawl(pooled))])
        alone = LocalSource(root, processes=0)
        slow = sorted([line(r) async for r in runner.extract(general(alone))])
    assert started and not any(lister.full for lister in started)
    assert fast == slow and len(fast) == len(set(fast))
    assert any('"status":"skipped"' in x for x in fast) and any('"mode":"-rw' in x for x in fast)
