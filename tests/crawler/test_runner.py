"""The extraction runner: a crash, hang or memory blow-up costs only that file."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from provena_like.crawler import (
    CrawlError,
    ExtractionRunner,
    FileRecord,
    FileResult,
    crawl,
)
from provena_like.crawler import (
    runner as runner_module,
)
from provena_like.extractors import available_extractors
from provena_like.extractors.basic import BasicExtractor
from tests.crawler.nasty import Nasty, NeedsMissingModule
from tests.support.transfer_tasks import write_tree

pytestmark = pytest.mark.anyio

GOOD = {f"good{i}.txt": b"fine" * (i + 1) for i in range(6)}
BAD = {"crash.txt": b"crash", "hang.txt": b"hang", "oom.txt": b"oom", "raise.txt": b"raise"}


@pytest.fixture
def nasty_registered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Nasty]:
    """Register the test-only extractor as an entry point (a dist-info on sys.path)."""
    site = tmp_path / "site"
    info = site / "crawler_test_extractors-0.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: crawler-test-extractors\n")
    (info / "entry_points.txt").write_text(
        "[provena_like.extractors]\nnasty = tests.crawler.nasty:Nasty\n"
    )
    monkeypatch.syspath_prepend(str(site))
    yield available_extractors()["nasty"]  # type: ignore[misc]


async def results_of(runner: ExtractionRunner, root: Path) -> dict[str, FileResult]:
    out: dict[str, FileResult] = {}
    async for item in runner.extract(crawl(root)):
        assert isinstance(item, FileResult), item
        assert item.record.path not in out
        out[item.record.path] = item
    return out


async def test_each_failure_costs_only_its_file(tmp_path: Path, nasty_registered: Nasty) -> None:
    registered = available_extractors()
    assert set(registered) >= {"basic", "nasty"}
    write_tree(tmp_path / "files", {**GOOD, **BAD, "table.csv": b"a,b\n"})
    async with ExtractionRunner(
        [registered["basic"], nasty_registered], workers=2, timeout=1, memory_limit=1024**3
    ) as runner:
        results = await results_of(runner, tmp_path / "files")
        assert set(results) == {*GOOD, *BAD, "table.csv"}  # every file has a result
        for name, data in {**GOOD, **BAD}.items():
            basic = results[name].extractions[0]
            assert basic.extractor == "basic" and basic.status == "ok"
            assert basic.metadata is not None
            assert basic.metadata["sha256"] == hashlib.sha256(data).hexdigest()
        for name, data in GOOD.items():
            nasty = results[name].extractions[1]
            assert (nasty.status, nasty.metadata) == ("ok", {"chars": len(data), "terms": ["x"]})
            assert results[name].terms == ["x"]
        errors = {n: results[n].extractions[1] for n in BAD}
        assert all(e.status == "failed" for e in errors.values())
        assert "died (exit code 3)" in (errors["crash.txt"].error or "")
        assert "timed out after 1 s" in (errors["hang.txt"].error or "")
        assert "MemoryError" in (errors["oom.txt"].error or "")
        assert errors["raise.txt"].error == "ValueError: corrupt file"
        assert not results["crash.txt"].ok and results["good0.txt"].ok
        assert [e.extractor for e in results["table.csv"].extractions] == ["basic"]
        assert runner.restarts == 1  # only the crash cost a worker

        # the runner goes on working after all that
        again = await results_of(runner, tmp_path / "files")
        assert again["good3.txt"].extractions[1].status == "ok"


async def test_a_worker_stuck_in_native_code_is_killed_and_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner_module, "_GRACE", 0.5)
    write_tree(tmp_path, {"stuck.txt": b"stuck", "good.txt": b"fine"})
    async with ExtractionRunner([Nasty()], workers=1, timeout=1) as runner:
        results = await results_of(runner, tmp_path)
        stuck = results["stuck.txt"].extractions[0]
        assert stuck.status == "failed" and "worker killed" in (stuck.error or "")
        assert results["good.txt"].extractions[0].status == "ok"
        assert runner.restarts == 1


async def test_skips_unavailable_extractors_and_remote_files(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.txt": b"fine"})
    async with ExtractionRunner(
        [BasicExtractor(sha256=False), NeedsMissingModule()], workers=1
    ) as runner:
        (local,) = (await results_of(runner, tmp_path)).values()
        basic, missing = local.extractions
        assert basic.status == "ok" and "sha256" not in (basic.metadata or {})
        assert missing.status == "skipped"
        assert missing.error == "extractor unavailable: needs provena_like_no_such_module"
        assert local.ok

        remote = FileRecord(source="dataset:10378.1/1", path="a.txt", extension=".txt")
        error = CrawlError(source="dataset:10378.1/1", path="x", reason="failed", message="m")

        async def feed():  # type: ignore[no-untyped-def]
            yield remote
            yield error

        out = [r async for r in runner.extract(feed())]
        assert error in out
        (result,) = [r for r in out if isinstance(r, FileResult)]
        assert {e.status for e in result.extractions} == {"skipped"}
        assert "not a local file" in (result.extractions[0].error or "")


async def test_plans_per_file_type_stay_right_and_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plans are made once per file type and kept in a bounded map (odd suffixes)."""
    monkeypatch.setattr(runner_module, "_PLANS", 2)
    write_tree(tmp_path, {f"f.{i:04d}": b"x" for i in range(5)} | {"b.txt": b"y"})
    picky = NeedsMissingModule()
    async with ExtractionRunner([BasicExtractor(sha256=False), picky], workers=1) as runner:
        results = await results_of(runner, tmp_path)
        assert len(runner._plans) <= 2
    assert sorted(results) == ["b.txt", "f.0000", "f.0001", "f.0002", "f.0003", "f.0004"]
    for path, result in results.items():
        statuses = {e.extractor: e.status for e in result.extractions}
        assert statuses.pop("basic") == "ok"
        assert statuses == ({picky.name: "skipped"} if path == "b.txt" else {}), path
