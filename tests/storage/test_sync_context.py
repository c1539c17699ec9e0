"""The sync planner over its explicit context: bounded fan-out, verify's per-file checks."""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import os
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from provena_like.storage import S3Credentials, SyncContext, TransferEngine, _sync
from provena_like.storage.results import FileResult

pytestmark = pytest.mark.anyio

FILES = 300
Head = Callable[[str], Awaitable[str | None]]


class Gauge:
    """Counts calls of a wrapped callable: in flight at once, and the event loop's tasks."""

    def __init__(self) -> None:
        self.calls = 0
        self.in_flight = 0
        self.peak = 0
        self.baseline = len(asyncio.all_tasks())
        self.peak_tasks = 0

    def wrap(
        self, fn: Callable[[str], Awaitable[str | None]]
    ) -> Callable[[str], Awaitable[str | None]]:
        async def counted(key: str) -> str | None:
            self.calls += 1
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            self.peak_tasks = max(self.peak_tasks, len(asyncio.all_tasks()) - self.baseline)
            try:
                return await fn(key)
            finally:
                self.in_flight -= 1

        return counted


def test_the_planner_imports_no_engine() -> None:
    """The engine builds the context; the planner never reaches back (no import circle)."""
    module = ast.parse(Path(_sync.__file__).read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(module) if isinstance(n, ast.ImportFrom)}
    names = {a.name for n in ast.walk(module) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "provena_like.storage.engine" not in imported
    assert not names & {"TransferEngine", "S3Requests"}  # no S3 request of its own


def tree(root: Path, count: int) -> Path:
    for i in range(count):
        path = root / f"d{i % 5}" / f"f{i:03d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(32))
    return root


async def test_sync_and_verify_of_many_files_keep_files_in_flight(
    tmp_path: Path, creds: S3Credentials
) -> None:
    src = tree(tmp_path / "src", FILES)
    async with TransferEngine(creds, max_concurrency=2, cache_dir=tmp_path / "cache") as engine:
        (await engine.upload(src)).raise_for_failures()
        ctx = engine.sync_context()
        limit = ctx.files_in_flight
        assert limit == 4

        # no manifest, single-part objects: the listed ETags (md5s) decide, no HEAD
        gauge = Gauge()
        counted = dataclasses.replace(ctx, stored_sha256=gauge.wrap(ctx.stored_sha256))
        up = await _sync.sync_up(
            counted,
            src,
            prefix="",
            delete=False,
            dry_run=True,
            include=(),
            exclude=(),
            remote_sha256=None,
            progress=None,
            fail_fast=False,
        )
        assert len(up.skipped) == FILES and {f.reason for f in up} == {"unchanged"}
        assert gauge.calls == 0
        assert gauge.peak_tasks <= limit + 4, gauge.peak_tasks

        # specs without sha256 (no listing, no ETag): each stored sha256 is read with a HEAD
        gauge = Gauge()
        counted = dataclasses.replace(ctx, stored_sha256=gauge.wrap(ctx.stored_sha256))
        keys = sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file())
        down = await _sync.sync_down(
            counted,
            [(key, key, None, 32) for key in keys],
            src,
            delete=False,
            dry_run=True,
            include=(),
            exclude=(),
            progress=None,
            fail_fast=False,
        )
        assert len(down.skipped) == FILES and {f.reason for f in down} == {"unchanged"}
        assert gauge.calls == FILES
        assert gauge.peak <= limit
        # the workers, not one task per file (a little room for the client's own tasks)
        assert gauge.peak_tasks <= limit + 4, gauge.peak_tasks

        # verify by specs without sha256: a HEAD each, bounded as well (by prefix, the
        # listed ETags, md5s here, would decide without any)
        gauge = Gauge()
        counted = dataclasses.replace(ctx, stored_sha256=gauge.wrap(ctx.stored_sha256))
        specs = [(key, key, None, 32) for key in keys]
        checked = await _sync.verify(counted, specs, src, include=(), exclude=())
        assert checked.matches and len(checked.ok) == FILES
        assert gauge.calls == FILES and gauge.peak <= limit
        assert gauge.peak_tasks <= limit + 4, gauge.peak_tasks


async def test_verify_by_prefix_reads_the_stored_sha256_and_reports_what_it_cannot(
    tmp_path: Path, creds: S3Credentials
) -> None:
    src = tree(tmp_path / "src", 3)
    async with TransferEngine(creds, cache_dir=tmp_path / "cache") as engine:
        (await engine.upload(src, prefix="raw/")).raise_for_failures()
        copy = tmp_path / "copy"
        (await engine.download("raw/", copy)).raise_for_failures()
        assert (await engine.verify(copy, "raw/")).matches

        (copy / "d1" / "f001.bin").write_bytes(os.urandom(32))
        result = await engine.verify(copy, "raw/")
        assert [(f.path, f.status) for f in result.differences] == [("raw/d1/f001.bin", "mismatch")]

        # a HEAD that fails: by prefix the listed ETags (md5s) still decide; specs carry no
        # ETag, so there is nothing to compare with: no match
        async def no_head(key: str) -> str | None:
            raise PermissionError(f"denied: {key}")

        ctx = dataclasses.replace(engine.sync_context(), stored_sha256=no_head)
        by_prefix = await _sync.verify(ctx, "raw/", copy, include=(), exclude=())
        assert [(f.path, f.status) for f in by_prefix.differences] == [
            ("raw/d1/f001.bin", "mismatch")
        ]
        specs = [(f"raw/{k}", k, None, 32) for k in sorted(_files(copy))]
        denied = await _sync.verify(ctx, specs, copy, include=(), exclude=())
        assert {f.status for f in denied} == {"mismatch"} and len(denied) == 3
        assert all("stored sha256 can't be read" in (f.reason or "") for f in denied)

    # objects another tool put there (no x-amz-meta-sha256): verified by their ETags' md5s,
    # with specs (no ETag) not at all
    async with TransferEngine(creds, checksum=False, cache_dir=tmp_path / "cache") as plain:
        (await plain.upload(src, prefix="plain/")).raise_for_failures()
        assert (await plain.verify(src, "plain/")).matches
        specs = [(f"plain/{k}", k, None, 32) for k in sorted(_files(src))]
        unknown = await plain.verify(src, specs)
        assert len(unknown) == 3
        assert {f.reason for f in unknown} == {"no sha256 to compare with (none known or stored)"}


def _files(root: Path) -> list[str]:
    return [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]


async def test_sync_deletes_through_the_context(tmp_path: Path, creds: S3Credentials) -> None:
    src = tree(tmp_path / "src", 3)
    async with TransferEngine(creds, cache_dir=tmp_path / "cache") as engine:
        (await engine.upload(src)).raise_for_failures()
        (src / "d2" / "f002.bin").unlink()
        ctx: SyncContext = engine.sync_context()
        asked: list[Sequence[str]] = []

        async def delete(keys: Sequence[str]) -> list[FileResult]:
            asked.append(list(keys))
            return await ctx.delete(keys)

        result = await _sync.sync_up(
            dataclasses.replace(ctx, delete=delete),
            src,
            prefix="",
            delete=True,
            dry_run=False,
            include=(),
            exclude=(),
            remote_sha256=None,
            progress=None,
            fail_fast=False,
        )
        assert asked == [["d2/f002.bin"]]
        assert [(f.path, f.reason) for f in result.ok] == [("d2/f002.bin", "deleted")]
        assert [o.key async for o in engine.list()] == ["d0/f000.bin", "d1/f001.bin"]
