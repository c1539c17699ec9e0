"""The local crawl's fast path: records built without validation, ``basic`` in the walk's thread.

Whatever the fast path makes must be what the general path makes (the same records, equal,
with the same fields set), and every crawl feature must work on it.
"""

from __future__ import annotations

import gc
import hashlib
import os
import time
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path

import pytest

from provena_like._core.errors import UsageError
from provena_like.crawler import (
    CrawlError,
    ExtractionRunner,
    FileRecord,
    FileResult,
    Group,
    LocalSource,
    crawl,
)
from provena_like.crawler import walk as walk_module
from provena_like.crawler._lister import _error, _file
from provena_like.crawler.listing import scan_dir
from provena_like.crawler.records import Extraction, trusted
from provena_like.crawler.sources import CrawlFilter, record_itself
from provena_like.extractors.basic import BasicExtractor
from tests.crawler.nasty import NeedsMissingModule
from tests.support.transfer_tasks import write_tree

pytestmark = pytest.mark.anyio

TREE = {
    "top.csv": b"a,b\n1,2\n",
    "notes.txt": b"hello",
    ".hidden.txt": b"secret",
    "raw/a.csv": b"a\n1\n",
    "raw/.cache/x.bin": b"x",
    "raw/deep/c.npy": b"\x93NUMPY",
    "raw/deep/deeper/d.txt": b"d",
    "tmp/junk.csv": b"junk",
    "archive.tar.gz": b"gz",
    "..odd": b"dots",
}


async def general(
    records: AsyncIterable[FileRecord | CrawlError | Group],
) -> AsyncIterator[FileRecord | CrawlError | Group]:
    """The same records, but not a crawl object: the runner takes its general path."""
    async for record in records:
        yield record


def by_path(items: list[FileResult | CrawlError | Group]) -> dict[str, FileResult | CrawlError]:
    out: dict[str, FileResult | CrawlError] = {}
    for item in items:
        assert isinstance(item, FileResult | CrawlError), item
        key = item.record.path if isinstance(item, FileResult) else f"error:{item.path}"
        assert key not in out
        out[key] = item
    return out


async def test_trusted_records_are_the_validated_ones(tmp_path: Path) -> None:
    """Fields in declaration order, the same fields set, equal, copyable, serialised alike."""
    write_tree(tmp_path, {"a.csv": b"1", "b": b"22", "c.csv": b"333"})
    dirs: list[tuple[str, tuple[int, int] | None]] = []
    source = LocalSource(tmp_path)
    async with ExtractionRunner([BasicExtractor(sha256=False)], workers=1) as runner:
        finish, listed = runner._local_finish(source)
        items = sorted(
            source.scan("", 0, CrawlFilter(), finish, dirs),
            key=lambda r: r.record.path if isinstance(r, FileResult) else "",
        )
        # what a listing process sends: the first of a type goes through finish(), the
        # next one (c.csv after a.csv) is made from the item alone
        entries = scan_dir(
            str(tmp_path), "", 0, CrawlFilter(), False, (), _file(0, False), _error, []
        )
        from_items = [listed(item) for item in sorted(entries)]  # type: ignore[arg-type]
    assert len(items) == 3 and not dirs
    assert [r.model_dump(exclude={"extractions"}) for r in from_items] == [
        r.model_dump(exclude={"extractions"}) for r in items
    ]
    for listed_result, result in zip(from_items, items, strict=True):
        assert isinstance(listed_result, FileResult) and isinstance(result, FileResult)
        for one, other in zip(listed_result.extractions, result.extractions, strict=True):
            assert one.model_dump(exclude={"seconds"}) == other.model_dump(exclude={"seconds"})
    for result in [*items, *from_items]:
        assert isinstance(result, FileResult)
        (basic,) = result.extractions
        for made in (result, result.record, basic):
            cls = type(made)
            assert list(made.__dict__) == list(cls.model_fields)  # no field left out
            validated = cls.model_validate(made.model_dump(exclude_unset=True))
            assert made == validated
            assert made.model_fields_set == validated.model_fields_set
            assert made.model_dump_json() == validated.model_dump_json()
            assert made.__pydantic_extra__ is None and made.__pydantic_private__ is None
        copy = result.record.model_copy(update={"sha256": "x"})
        assert copy.sha256 == "x" and result.record.sha256 is None
        assert "sha256" in copy.model_fields_set and "etag" not in result.record.model_fields_set
        tagged = result.record.model_copy(update={"etag": "e"})  # a field not set before
        assert "etag" in tagged.model_fields_set
        assert "etag" not in result.record.model_fields_set  # not the shared set
    first, second = items[0], from_items[2]  # c.csv: made from the listing process's item
    assert isinstance(first, FileResult) and isinstance(second, FileResult)
    # records given the same fields share one fields-set (read-only: copies get their own)
    assert first.record.model_fields_set is second.record.model_fields_set
    assert first.extractions[0].model_fields_set is second.extractions[0].model_fields_set
    values = {"kind": "error", "source": "s", "path": "p", "reason": "failed", "message": "m"}
    error = trusted(CrawlError, values, frozenset(values) - {"kind"})
    assert error.model_fields_set == {"source", "path", "reason", "message"}
    again = trusted(CrawlError, dict(values), frozenset(values) - {"kind"})
    assert again == error and again.model_fields_set is error.model_fields_set
    changed = again.model_copy(update={"message": "n"})
    assert changed.message == "n" and error.message == "m"
    assert changed.model_fields_set is not error.model_fields_set


@pytest.mark.parametrize("sha256", [False, True])
async def test_runner_fast_path_gives_what_the_general_path_gives(
    tmp_path: Path, sha256: bool
) -> None:
    write_tree(tmp_path, TREE)
    os.symlink("..", tmp_path / "raw" / "up")  # a loop when links are followed
    os.symlink(tmp_path / "nowhere", tmp_path / "broken.txt")
    extractors = [BasicExtractor(sha256=sha256), NeedsMissingModule()]
    options: list[dict[str, object]] = [
        {},
        {"hidden": True},
        {"max_depth": 1},
        {"include": ["*.csv", "*.txt"], "exclude": ["tmp/*", "raw/deep"]},
    ]
    async with ExtractionRunner(extractors, workers=1) as runner:
        for follow in (False, True):
            for option in options:
                source = LocalSource(tmp_path, follow_symlinks=follow)
                fast_crawl = crawl(source, **option)  # type: ignore[arg-type]
                fast = by_path([r async for r in runner.extract(fast_crawl)])
                slow = by_path(
                    [r async for r in runner.extract(general(crawl(source, **option)))]  # type: ignore[arg-type]
                )
                assert fast.keys() == slow.keys(), (follow, option)
                for key, item in fast.items():
                    other = slow[key]
                    if isinstance(item, CrawlError):
                        assert item == other
                        continue
                    assert isinstance(other, FileResult)
                    assert item.record == other.record
                    assert [e.model_dump(exclude={"seconds"}) for e in item.extractions] == [
                        e.model_dump(exclude={"seconds"}) for e in other.extractions
                    ], key
    plain = by_path([r async for r in runner.extract(general(crawl(tmp_path)))])
    assert fast_crawl.started
    assert "error:broken.txt" in plain
    result = plain["notes.txt"]
    assert isinstance(result, FileResult)
    basic, missing = result.extractions
    assert basic.metadata is not None and basic.metadata["size"] == 5
    assert (basic.metadata.get("sha256") == hashlib.sha256(b"hello").hexdigest()) == sha256
    assert missing.status == "skipped"


async def test_fast_path_records_loops_and_unlistable_directories(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a/x.txt": b"x", "b/y.txt": b"y"})
    os.symlink(tmp_path / "a", tmp_path / "b" / "again")  # a second way into a/
    os.symlink(tmp_path / "gone", tmp_path / "dangling")  # followed: not a listable dir

    class Vanishing(LocalSource):
        """A folder whose b/ disappears between its parent's listing and its own."""

        def scan(self, relative, depth, rules, finish, dirs):  # type: ignore[no-untyped-def]
            if relative == "b":
                (tmp_path / "b" / "y.txt").unlink()
                (tmp_path / "b" / "again").unlink()
                (tmp_path / "b").rmdir()
            return super().scan(relative, depth, rules, finish, dirs)

    async with ExtractionRunner([BasicExtractor(sha256=False)], workers=1) as runner:
        out = by_path([r async for r in runner.extract(crawl(Vanishing(tmp_path)))])
    assert set(out) == {"a/x.txt", "error:b", "error:dangling"}
    assert isinstance(out["error:b"], CrawlError) and out["error:b"].reason == "not_found"

    write_tree(tmp_path, {"b/y.txt": b"y"})
    os.symlink(tmp_path / "a", tmp_path / "b" / "again")
    found = [r async for r in crawl(LocalSource(tmp_path, follow_symlinks=True))]
    errors = {r.path: r.reason for r in found if isinstance(r, CrawlError)}
    assert errors == {"dangling": "not_found", "b/again": "symlink_loop"}


async def test_a_huge_directory_is_handed_over_in_small_batches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Memory stays flat however many files one directory holds."""
    monkeypatch.setattr(walk_module, "_BATCH", 4)
    write_tree(tmp_path, {f"f{i:02d}.txt": b"x" for i in range(30)} | {"sub/g.txt": b"y"})
    batches = list(
        walk_module._local_batches(
            LocalSource(tmp_path), CrawlFilter(), walk_module.RateLimiter(None), record_itself
        )
    )
    assert sum(len(b) for b in batches) == 31
    assert max(len(b) for b in batches) == 4


async def test_rate_limit_and_early_exit_on_the_fast_path(tmp_path: Path) -> None:
    write_tree(tmp_path, {f"d{i}/f{j}.txt": b"x" for i in range(5) for j in range(60)})
    started = time.monotonic()
    files = [r async for r in crawl(tmp_path, rate_limit=20)]
    assert len(files) == 300
    assert time.monotonic() - started >= 5 / 20 - 0.05  # 6 listings, 20 per second

    records = crawl(tmp_path)
    seen = 0
    async for _ in records:
        seen += 1
        if seen == 3:
            break
    await records.aclose()  # the walking thread stops (this would hang otherwise)
    with pytest.raises(UsageError):
        records.local(record_itself)

    async with ExtractionRunner([BasicExtractor(sha256=False)], workers=1) as runner:
        results = runner.extract(crawl(tmp_path))
        first = await results.__anext__()
        assert isinstance(first, FileResult) and isinstance(first.extractions[0], Extraction)
        await results.aclose()  # type: ignore[attr-defined]


async def test_stat_only_basic_takes_the_crawls_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No second stat on the fast path; checksums (reading files) go the general way."""
    write_tree(tmp_path, {"a.txt": b"abc", "d/b.txt": b"de"})

    def no_second_stat(self: BasicExtractor, path: object) -> None:
        raise AssertionError(f"basic stat-ed {path} again")

    monkeypatch.setattr(BasicExtractor, "extract", no_second_stat)
    async with ExtractionRunner([BasicExtractor(sha256=False)], workers=1) as runner:
        out = by_path([r async for r in runner.extract(crawl(tmp_path))])
        slow = by_path([r async for r in runner.extract(general(crawl(tmp_path)))])
    for result in out.values():
        assert isinstance(result, FileResult)
        (basic,) = result.extractions
        assert basic.status == "ok" and basic.metadata is not None
        assert basic.metadata["size"] == result.record.size
    for result in slow.values():
        assert isinstance(result, FileResult)
        assert "stat-ed" in (result.extractions[0].error or "")
    async with ExtractionRunner([BasicExtractor(sha256=True)], workers=1) as runner:
        hashed = by_path([r async for r in runner.extract(crawl(tmp_path))])
    for result in hashed.values():
        assert isinstance(result, FileResult) and result.extractions[0].status == "failed"


async def test_a_crawl_leaves_the_garbage_collector_idle(tmp_path: Path) -> None:
    """A batch of results is gone before the next is made, and stays under the GC threshold.

    Otherwise every batch triggers a collection and its survivors, promoted, make full
    collections of the whole heap: the GC's cost then grows with what else is alive.
    """
    files = 3000
    write_tree(tmp_path, {f"d{i // 100:02d}/f{i % 100:02d}.txt": b"x" for i in range(files)})
    collections = [0, 0, 0]

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections[info["generation"]] += 1

    async with ExtractionRunner([BasicExtractor(sha256=False)], workers=1) as runner:
        gc.collect()
        gc.callbacks.append(count)
        try:
            found = 0
            async for result in runner.extract(crawl(tmp_path)):
                assert isinstance(result, FileResult)
                found += 1
        finally:
            gc.callbacks.remove(count)
    assert found == files
    assert sum(collections) <= 5, collections  # one per batch would be ~30
