"""Hashing, results, progress, the byte budget and the part-size rule."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import anyio
import pytest
from botocore.exceptions import ClientError

from provena_like import ChecksumMismatch, TransferError
from provena_like.storage import (
    FileFinished,
    FileResult,
    StreamingHasher,
    TransferEvent,
    TransferFailed,
    TransferProgress,
    TransferResult,
    hash_file,
    hash_file_async,
)
from provena_like.storage._budget import ByteBudget
from provena_like.storage._plan import MiB, download_part_size, part_size_for, plan_uploads
from provena_like.storage._requests import describe, to_transfer_error
from provena_like.storage.events import ProgressReporter
from provena_like.storage.hashing import read_file
from provena_like.storage.selection import matches


def test_hash_file_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    digests = hash_file(path, md5=True, chunk_size=1024 * 1024)
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    assert digests.md5 == hashlib.md5(data).hexdigest()
    assert digests.size == len(data)
    assert hash_file(path).md5 is None
    body, again = read_file(path)
    assert body == data
    assert again.sha256 == digests.sha256


@pytest.mark.parametrize("size", [0, 1, 4096, 64 * 1024 - 1, 64 * 1024, 64 * 1024 + 1, 200_000])
def test_hash_file_sizes_around_its_buffer(tmp_path: Path, size: int) -> None:
    # the buffer follows the file's size (at least 64 KiB): every size reads whole
    data = os.urandom(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    for chunk_size in (1000, 64 * 1024, 8 * 1024 * 1024):
        digests = hash_file(path, md5=True, chunk_size=chunk_size)
        assert (digests.size, digests.sha256, digests.md5) == (
            size,
            hashlib.sha256(data).hexdigest(),
            hashlib.md5(data).hexdigest(),
        )


def test_hash_file_reads_what_a_file_grew_by_while_hashed(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * 10)
    seen: list[int] = []

    def grow(n: int) -> None:  # the first piece read: the file then grows past the buffer
        seen.append(n)
        if len(seen) == 1:
            with path.open("ab") as fh:
                fh.write(b"b" * 100_000)

    digests = hash_file(path, on_bytes=grow)
    assert digests.size == 100_010
    assert digests.sha256 == hashlib.sha256(b"a" * 10 + b"b" * 100_000).hexdigest()


@pytest.mark.anyio
async def test_hash_file_async_runs_in_a_limited_thread(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    limiter = anyio.CapacityLimiter(1)
    digests = await hash_file_async(path, limiter=limiter)
    assert digests.sha256 == hashlib.sha256(b"abc").hexdigest()


def test_streaming_hasher_without_sha256() -> None:
    hasher = StreamingHasher(sha256=False, md5=True)
    hasher.update(b"x")
    assert hasher.digests().sha256 is None
    assert hasher.digests().md5 == hashlib.md5(b"x").hexdigest()


def test_download_part_size_rule() -> None:
    # about 32 ranged GETs per object, of 8 to 32 MiB, unless a part size is asked for
    assert download_part_size(16 * MiB) == 8 * MiB
    assert download_part_size(256 * MiB) == 8 * MiB
    assert download_part_size(512 * MiB) == 16 * MiB
    assert download_part_size(1024 * MiB) == 32 * MiB
    assert download_part_size(64 * 1024 * MiB) == 32 * MiB  # capped
    assert download_part_size(1024 * MiB, 5 * MiB) == 5 * MiB
    assert download_part_size(1000 * MiB + 1) == 32 * MiB  # whole MiB, rounded up
    huge = 500 * 1024 * MiB  # 10,000 parts at most, as for uploads
    assert download_part_size(huge) == part_size_for(huge) == 52 * MiB


def test_part_size_rule() -> None:
    assert part_size_for(0) == 8 * MiB
    assert part_size_for(64 * MiB) == 8 * MiB
    assert part_size_for(64 * MiB, 5 * MiB) == 5 * MiB
    assert part_size_for(64 * MiB, 5 * MiB + 1) == 6 * MiB  # whole MiB
    huge = 200 * 1024 * MiB
    assert part_size_for(huge) * 10_000 >= huge
    assert part_size_for(huge) == 21 * MiB
    assert part_size_for(5 * 1024 * 1024 * MiB) * 10_000 >= 5 * 1024 * 1024 * MiB  # 5 TiB


def test_include_exclude() -> None:
    assert matches("a/b.csv", ["*.csv"], [])
    assert not matches("a/b.txt", ["*.csv"], [])
    assert not matches("tmp/b.csv", ["*.csv"], ["tmp/*"])
    assert matches("b.CSV", [], ["*.csv"])  # case-sensitive on every platform


def test_plan_uploads_reports_problems_per_file(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_bytes(b"1")
    (tmp_path / "dir").mkdir()
    items = plan_uploads(
        [
            (tmp_path / "ok.txt", "ok.txt"),
            (tmp_path / "missing.txt", "missing.txt"),
            (tmp_path / "dir", "dir"),
            (tmp_path / "ok.txt", "../escape.txt"),
            (tmp_path / "ok.txt", "metadata.json"),
        ],
        prefix="",
        include=(),
        exclude=(),
    )
    errors = {item.path: type(item.error).__name__ for item in items}
    assert errors == {
        "ok.txt": "NoneType",
        "missing.txt": "FileNotFoundError",
        "dir": "IsADirectoryError",
        "../escape.txt": "UnsafePath",
        "metadata.json": "UnsafePath",
    }


def test_transfer_result() -> None:
    boom = ChecksumMismatch("bad")
    result = TransferResult(
        [
            FileResult("a", "ok", size=3),
            FileResult("b", "skipped", reason="same"),
            FileResult("c", "failed", size=5, reason="bad", error=boom),
        ]
    )
    assert [f.path for f in result.ok] == ["a"]
    assert [f.path for f in result.skipped] == ["b"]
    assert [f.path for f in result.failed] == ["c"]
    assert result.bytes == 3
    assert len(result) == 3
    with pytest.raises(TransferFailed, match="1 of 3 files failed: c: bad") as info:
        result.raise_for_failures()
    assert info.value.__cause__ is boom
    assert info.value.result is result
    assert isinstance(info.value, TransferError)
    TransferResult([FileResult("a", "ok")]).raise_for_failures()


def test_describe_and_wrap_errors() -> None:
    denied = ClientError(
        {
            "Error": {"Code": "AccessDenied", "Message": "Access Denied."},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        },
        "PutObject",
    )
    assert describe(denied) == "AccessDenied (HTTP 403) on PutObject: Access Denied."
    wrapped = to_transfer_error(denied, "upload a.txt")
    assert isinstance(wrapped, TransferError)
    assert wrapped.__cause__ is denied
    mismatch = ChecksumMismatch("x")
    assert to_transfer_error(mismatch, "download") is mismatch
    assert describe(ValueError()) == "ValueError"


@pytest.mark.anyio
async def test_byte_budget_is_fifo_and_clamped() -> None:
    budget = ByteBudget(10)
    order: list[str] = []
    first = await budget.acquire(8)

    async def want(name: str, n: int) -> None:
        held = await budget.acquire(n)
        order.append(name)
        budget.release(held)

    async with anyio.create_task_group() as tg:
        tg.start_soon(want, "big", 100)  # clamped to 10: waits for the whole budget
        await anyio.sleep(0.01)
        tg.start_soon(want, "small", 1)  # would fit now, but waits its turn
        await anyio.sleep(0.01)
        assert order == []
        budget.release(first)
    assert order == ["big", "small"]
    assert budget.used == 0


@pytest.mark.anyio
async def test_byte_budget_cancelled_waiter_gives_back_nothing_it_does_not_hold() -> None:
    budget = ByteBudget(4)
    held = await budget.acquire(4)
    with anyio.move_on_after(0.01):
        await budget.acquire(2)
    budget.release(held)
    assert budget.used == 0
    assert await budget.acquire(4) == 4


@pytest.mark.anyio
async def test_progress_callback_errors_do_not_break_the_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[TransferEvent] = []

    def broken(event: TransferEvent) -> None:
        seen.append(event)
        raise RuntimeError("progress bar bug")

    reporter = ProgressReporter(broken, files_total=2, bytes_total=10)
    await reporter.started("a", 5)
    await reporter.transferred("a", 5, 5)
    await reporter.finished(FileResult("a", "ok", size=5))
    assert len(seen) == 1
    assert "progress callback raised" in caplog.text
    assert reporter.snapshot() == TransferProgress(1, 2, 5, 10)

    async def fine(event: TransferEvent) -> None:
        seen.append(event)

    reporter = ProgressReporter(fine, files_total=1, bytes_total=None)
    await reporter.finished(FileResult("b", "ok"))
    assert isinstance(seen[-2], FileFinished)
    assert seen[-1] == TransferProgress(1, 1, 0, None)
