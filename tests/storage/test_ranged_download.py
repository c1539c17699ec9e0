"""Ranged downloads: parts streamed to their offsets, the written prefix hashed, bounded memory.

Against the real SeaweedFS, directly and through the fault-injecting proxy (which answers
chosen ranged GETs with an S3 error).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web

from provena_like._core.errors import TransferError
from provena_like.storage import S3Credentials, TransferEngine, _download, _splice
from provena_like.storage._download import _PART_WINDOW, STREAM_CHUNK, _Frontier, _TempFile
from provena_like.storage._requests import GetHeaders, S3Requests
from provena_like.storage.hashing import StreamingHasher
from tests.support.storage_helpers import FaultProxy

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
PART = 5 * MiB


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*") if p.is_file())


@dataclasses.dataclass
class _GetsInFlight:
    """Counts an engine's GETs in flight (its transport's ``open_get`` and
    ``get_range_into``, patched)."""

    in_flight: int = 0
    peak: int = 0

    def install(
        self,
        requests: S3Requests,
        monkeypatch: pytest.MonkeyPatch,
        *,
        hold: float = 0.0,
        on_open: Callable[[int], None] | None = None,
    ) -> None:
        """Count from now on; ``hold`` each response open that long; ``on_open(in_flight)``."""
        opened = requests.open_get

        @contextlib.asynccontextmanager
        async def counted(
            key: str, **kwargs: Any
        ) -> AsyncIterator[tuple[GetHeaders, AsyncIterator[bytes]]]:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            if on_open is not None:
                on_open(self.in_flight)
            try:
                async with opened(key, **kwargs) as response:
                    if hold:
                        await anyio.sleep(hold)
                    yield response
            finally:
                self.in_flight -= 1

        into = requests.get_range_into

        async def counted_into(key: str, *args: Any, **kwargs: Any) -> GetHeaders:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
            if on_open is not None:
                on_open(self.in_flight)
            try:
                if hold:
                    await anyio.sleep(hold)
                return await into(key, *args, **kwargs)
            finally:
                self.in_flight -= 1

        monkeypatch.setattr(requests, "open_get", counted)
        monkeypatch.setattr(requests, "get_range_into", counted_into)


def test_the_frontier_is_the_contiguous_prefix_whatever_the_order() -> None:
    frontier = _Frontier(3, [(3, 10), (10, 20), (20, 25)])
    frontier.wrote(2, 5)  # the last part, complete: nothing contiguous yet
    frontier.wrote(1, 4)
    assert frontier.frontier == 3
    frontier.wrote(0, 6)
    assert frontier.frontier == 9
    frontier.wrote(0, 1)  # part 0 complete: part 1's first 4 bytes join the prefix
    assert frontier.frontier == 14
    frontier.wrote(1, 6)  # part 1 complete: part 2 already was
    assert frontier.frontier == 25


def test_written_ranges_are_hashed_in_order_and_kept_when_dropped_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_download, "_DROP_WINDOW", MiB)  # drops behind from the second MiB
    monkeypatch.setattr(_download, "_READBACK", 40_000)  # many windows per range
    data = os.urandom(3 * MiB + 12345)
    sink = _TempFile(tmp_path, tmp_path / "out.bin", StreamingHasher())
    try:
        # written out of order, settled in order from unaligned offsets
        sink.write_at(MiB + 7, [data[MiB + 7 :]])
        sink.write_at(0, [data[:5], data[5 : MiB + 7]])
        for start, end in ((0, 3), (3, 70_001), (70_001, MiB + 9), (MiB + 9, len(data))):
            sink.hash_range(start, end)
            sink.drop_behind(start, end)
        assert sink.digests().sha256 == hashlib.sha256(data).hexdigest()
        with pytest.raises(TransferError, match="shorter"):
            sink.hash_range(len(data), len(data) + 1)
    finally:
        sink.discard()
    assert not sink.tmp.exists()
    sink = _TempFile(tmp_path, tmp_path / "again.bin", StreamingHasher())
    sink.write_at(0, [data])
    sink.hash_range(0, len(data))
    sink.drop_behind(0, len(data))
    sink.commit("again.bin", _download._Expected(hashlib.sha256(data).hexdigest()), len(data))
    assert (tmp_path / "again.bin").read_bytes() == data  # nothing lost to the dropped pages


@pytest.mark.parametrize("resume", [False, True], ids=["no-resume", "resume"])
async def test_a_part_failing_midway_leaves_no_file(
    tmp_path: Path, creds: S3Credentials, proxy: FaultProxy, resume: bool
) -> None:
    data = os.urandom(4 * PART + 123)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "big.bin").write_bytes(data)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "big.bin").write_bytes(b"the previous copy")
    failing = f"bytes={2 * PART}-"  # the third part's GET

    def fault(request: web.Request) -> str | None:
        wanted = request.headers.get("Range", "")
        return "403 AccessDenied" if wanted.startswith(failing) else None

    proxy.fault = fault
    settings: dict[str, Any] = {"part_size": PART, "ranged_get_threshold": PART, "resume": resume}
    async with TransferEngine(creds, **settings) as engine:
        assert not (await engine.upload(tmp_path / "src")).failed
    via = dataclasses.replace(creds, endpoint_url=proxy.url)
    async with TransferEngine(via, **settings) as engine:
        result = await engine.download("", dest)
    assert [f.path for f in result.failed] == ["big.bin"]
    assert "AccessDenied" in (result.failed[0].reason or "")
    assert proxy.seen[("GET", f"/{creds.bucket}/{creds.prefix}big.bin")] >= 3  # ranged GETs
    assert (dest / "big.bin").read_bytes() == b"the previous copy"  # untouched
    if not resume:
        assert _leftovers(dest) == ["big.bin"]
        return
    # resuming: the contiguous prefix (at most the two parts before the failing one) is kept,
    # and the next download continues from it
    partial = dest / ".big.bin.provena-partial"
    kept = partial.stat().st_size if partial.exists() else 0
    assert kept <= 2 * PART
    assert partial.read_bytes() == data[:kept] if kept else True
    proxy.fault = lambda request: None
    async with TransferEngine(via, **settings) as engine:
        again = await engine.download("", dest)
    assert not again.failed
    assert again.files[0].sha256 == hashlib.sha256(data).hexdigest()
    assert (dest / "big.bin").read_bytes() == data
    assert _leftovers(dest) == ["big.bin"]


async def test_many_ranged_downloads_share_few_request_slots(
    tmp_path: Path, creds: S3Credentials
) -> None:
    """More large files in flight than request slots: every part still gets a slot."""
    files = {f"f{i}.bin": os.urandom(2 * PART + i) for i in range(6)}
    (tmp_path / "src").mkdir()
    for name, data in files.items():
        (tmp_path / "src" / name).write_bytes(data)
    settings: dict[str, Any] = {"part_size": PART, "ranged_get_threshold": PART}
    async with TransferEngine(creds, max_concurrency=2, **settings) as engine:
        assert engine.files_in_flight > 2
        assert not (await engine.upload(tmp_path / "src")).failed
        with anyio.fail_after(300):  # generous: a deadlock would hang forever
            result = await engine.download("", tmp_path / "dest")
    assert not result.failed, [f.reason for f in result.failed]
    for name, data in files.items():
        assert (tmp_path / "dest" / name).read_bytes() == data


@pytest.mark.parametrize("splicing", [True, False], ids=["spliced", "streamed"])
async def test_buffered_bytes_stay_within_the_budget(
    tmp_path: Path, creds: S3Credentials, monkeypatch: pytest.MonkeyPatch, splicing: bool
) -> None:
    """Each ranged GET reserves its window before it is sent, and never buffers more.

    Spliced (Linux), the parts after the first never pass through the process at all.
    """
    spliced = splicing and _splice.AVAILABLE
    monkeypatch.setattr(_splice, "AVAILABLE", spliced)
    limit = 3 * _PART_WINDOW + _PART_WINDOW // 2  # room for three ranged GETs' windows, not four
    data = os.urandom(12 * PART)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "big.bin").write_bytes(data)
    settings: dict[str, Any] = {"part_size": PART, "ranged_get_threshold": PART}
    gets = _GetsInFlight()
    shortfalls: list[tuple[int, int]] = []
    written: list[int] = []

    async with TransferEngine(creds, memory_limit=limit, **settings) as engine:
        assert not (await engine.upload(tmp_path / "src")).failed
        requests: S3Requests = engine._requests  # type: ignore[assignment]
        budget = engine._budget

        def check_budget(in_flight: int) -> None:
            if budget.used < in_flight * _PART_WINDOW:
                shortfalls.append((budget.used, in_flight))

        gets.install(requests, monkeypatch, on_open=check_budget)
        write_at = _TempFile.write_at

        def write_and_count(self: _TempFile, offset: int, pieces: list[bytes]) -> None:
            written.append(sum(len(piece) for piece in pieces))
            write_at(self, offset, pieces)

        monkeypatch.setattr(_download._TempFile, "write_at", write_and_count)
        result = await engine.download("", tmp_path / "dest")
        assert budget.used == 0  # every reservation given back
    assert not result.failed, [f.reason for f in result.failed]
    assert (tmp_path / "dest" / "big.bin").read_bytes() == data
    assert shortfalls == []  # every GET in flight had its window reserved
    assert 1 < gets.peak <= limit // _PART_WINDOW  # concurrent, within the budget
    assert sum(written) == (PART if spliced else len(data))  # spliced: the first part only
    assert max(written) < 2 * STREAM_CHUNK  # what one write holds: under two chunks


async def test_one_object_has_at_most_ranged_streams_gets_in_flight(
    tmp_path: Path, creds: S3Credentials, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Request slots and budget to spare: one object still streams only RANGED_STREAMS parts."""
    data = os.urandom(12 * PART + 5)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "big.bin").write_bytes(data)
    settings: dict[str, Any] = {"part_size": PART, "ranged_get_threshold": PART}
    gets = _GetsInFlight()
    async with TransferEngine(creds, max_concurrency=16, memory_limit=256 * MiB, **settings) as e:
        assert not (await e.upload(tmp_path / "src")).failed
        requests: S3Requests = e._requests  # type: ignore[assignment]
        gets.install(requests, monkeypatch, hold=0.05)  # let the others start: a cap must show
        result = await e.download("", tmp_path / "dest")
    assert not result.failed, [f.reason for f in result.failed]
    assert result.files[0].sha256 == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "dest" / "big.bin").read_bytes() == data
    assert gets.peak == _download.RANGED_STREAMS


@pytest.mark.skipif(not _splice.AVAILABLE, reason="splice(2) is Linux only")
@pytest.mark.parametrize(
    ("refusal", "streamed"),
    [(errno.EINVAL, True), (errno.ENOSPC, False)],
    ids=["file-system-without-splice", "disk-full"],
)
async def test_a_file_that_refuses_splice(
    tmp_path: Path,
    creds: S3Credentials,
    monkeypatch: pytest.MonkeyPatch,
    refusal: int,
    streamed: bool,
) -> None:
    """A file system without ``splice`` gets the parts streamed; a full disk fails the file
    with its own error, once (a write error is no connection error to retry)."""
    data = os.urandom(6 * PART + 9)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "big.bin").write_bytes(data)
    (tmp_path / "dest").mkdir()
    settings: dict[str, Any] = {"part_size": PART, "ranged_get_threshold": PART}
    real = os.splice
    refused: list[int] = []

    def splice(src: int, dst: int, count: int, *args: Any, **kwargs: Any) -> int:
        if kwargs.get("offset_dst") is not None:  # into the file
            refused.append(dst)
            raise OSError(refusal, os.strerror(refusal))
        return real(src, dst, count, *args, **kwargs)

    async with TransferEngine(creds, **settings) as engine:
        assert not (await engine.upload(tmp_path / "src")).failed
        monkeypatch.setattr(_splice.os, "splice", splice)
        result = await engine.download("", tmp_path / "dest")
    assert 1 <= len(refused) <= _download.RANGED_STREAMS  # one try per part in flight
    if streamed:
        assert not result.failed, [f.reason for f in result.failed]
        assert (tmp_path / "dest" / "big.bin").read_bytes() == data
    else:
        assert [f.path for f in result.failed] == ["big.bin"]
        assert "No space left on device" in (result.failed[0].reason or "")
        assert "big.bin" not in _leftovers(tmp_path / "dest")  # (a resumable prefix may stay)


async def test_a_part_whose_connection_drops_is_fetched_again(
    tmp_path: Path, creds: S3Credentials, proxy: FaultProxy
) -> None:
    """A dropped part is a connection error the retry policy retries (spliced or streamed):
    the part is written again from its start and the file comes out whole."""
    data = os.urandom(4 * PART + 77)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "big.bin").write_bytes(data)
    dropped: list[str] = []

    def fault(request: web.Request) -> str | None:
        wanted = request.headers.get("Range", "")
        if wanted.startswith(f"bytes={2 * PART}-") and not dropped:
            dropped.append(wanted)
            return "drop"
        return None

    settings: dict[str, Any] = {"part_size": PART, "ranged_get_threshold": PART}
    async with TransferEngine(creds, **settings) as engine:
        assert not (await engine.upload(tmp_path / "src")).failed
    proxy.fault = fault
    via = dataclasses.replace(creds, endpoint_url=proxy.url)
    async with TransferEngine(via, **settings) as engine:
        result = await engine.download("", tmp_path / "dest")
    assert not result.failed, [f.reason for f in result.failed]
    assert dropped  # the fault happened
    assert (tmp_path / "dest" / "big.bin").read_bytes() == data
    assert _leftovers(tmp_path / "dest") == ["big.bin"]
