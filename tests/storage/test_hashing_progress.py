"""The hashing phase of a sync and of a verify: ``HashingProgress`` events, then the transfer."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from rich.console import Console

from provena_like.cli.progress import ProgressSink, progress_bar
from provena_like.storage import (
    FileStarted,
    HashingProgress,
    S3Credentials,
    TransferEngine,
    TransferEvent,
)

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
SIZES = {"big.bin": 3 * MiB, "mid.bin": MiB + 7, "small.bin": 1000}


def _tree(root: Path) -> int:
    """Files of SIZES, an hour old (so the hash cache may keep their hashes); total bytes."""
    root.mkdir()
    an_hour_ago = time.time() - 3600
    for name, size in SIZES.items():
        (root / name).write_bytes(os.urandom(size))
        os.utime(root / name, (an_hour_ago, an_hour_ago))
    return sum(SIZES.values())


def _hashing(events: list[TransferEvent]) -> list[HashingProgress]:
    """The hashing events, checked to come first, counting up, ending with every file done."""
    hashing = [e for e in events if isinstance(e, HashingProgress)]
    assert hashing, events
    last_hashing = max(i for i, e in enumerate(events) if isinstance(e, HashingProgress))
    assert not any(isinstance(e, FileStarted) for e in events[:last_hashing])
    done = [e.bytes_done for e in hashing]
    assert done == sorted(done)
    assert hashing[0].bytes_done == 0 and hashing[0].files_done == 0
    assert hashing[-1].files_done == hashing[-1].files_total
    assert hashing[-1].bytes_done == hashing[-1].bytes_total
    return hashing


async def test_sync_and_verify_report_the_bytes_hashed(
    tmp_path: Path, creds: S3Credentials
) -> None:
    src = tmp_path / "src"
    total = _tree(src)
    async with TransferEngine(creds, cache_dir=tmp_path / "cache") as engine:
        first: list[TransferEvent] = []
        assert (await engine.upload(src, progress=first.append)).ok
        assert not any(isinstance(e, HashingProgress) for e in first)  # hashed as sent

        # the store has same-size copies, the hash cache nothing yet: every byte is hashed
        # (to compare with the ETags) before anything moves
        (src / "small.bin").write_bytes(os.urandom(SIZES["small.bin"]))  # same size, changed
        events: list[TransferEvent] = []
        result = await engine.sync_up(src, progress=events.append)
        assert [f.path for f in result.ok] == ["small.bin"]
        hashing = _hashing(events)
        assert (hashing[0].files_total, hashing[0].bytes_total) == (3, total)
        assert (hashing[-1].files_done, hashing[-1].bytes_done) == (3, total)
        assert any(isinstance(e, FileStarted) for e in events)

        # now the hashes are cached: nothing is left to hash, the total drops to what was read
        again: list[TransferEvent] = []
        await engine.sync_up(src, progress=again.append)
        cached = _hashing(again)
        assert cached[-1].files_done == 3 and cached[-1].bytes_total < total

        # a verify reads every byte again
        checks: list[TransferEvent] = []
        assert (await engine.verify(src, progress=checks.append)).matches
        verified = _hashing(checks)
        assert (verified[-1].files_total, verified[-1].bytes_done) == (3, total)


async def test_cli_bar_shows_a_hashing_phase_then_the_transfer(
    tmp_path: Path, creds: S3Credentials
) -> None:
    src = tmp_path / "src"
    total = _tree(src)
    async with TransferEngine(creds, cache_dir=tmp_path / "cache") as engine:
        await engine.upload(src)
        (src / "big.bin").write_bytes(os.urandom(SIZES["big.bin"]))
        events: list[TransferEvent] = []
        await engine.sync_up(src, progress=events.append)
    console = Console(width=120, force_terminal=True, color_system=None)
    progress = progress_bar(console)
    sink = ProgressSink(progress, "sync up")
    frames: list[str] = []
    for event in events:
        sink(event)
        with console.capture() as captured:
            console.print(progress.get_renderable())
        frames.append(captured.get())
    first_hashing = next(i for i, e in enumerate(events) if isinstance(e, HashingProgress))
    hashing_frame = frames[first_hashing]
    assert "hashing 0/3 files" in hashing_frame
    assert f"0.0/{total / 1e6:.1f} MB" in hashing_frame
    assert "sync up" not in hashing_frame  # the transfer's row waits for the transfer
    last = frames[-1]
    assert "hashing" not in last and "1/1 files" in last
    assert sink.bytes_done == SIZES["big.bin"]  # hashing moved nothing
