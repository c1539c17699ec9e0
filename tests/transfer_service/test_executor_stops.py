"""How a POSIX-to-POSIX copy stops part-way (no server needed: the copy runs in this thread).

The copy runs in a worker thread, where the job's cancel scope can't reach it, so it checks
between chunks whether it must stop. A lost lease (the heartbeat's renewal came too late, or
another worker took the job over) must stop it as *lost*: the runner then writes nothing and
the job runs again from its checkpoint. Stopping it as *canceled* would settle the attempt
as canceled and fail the task ("the task's job ended canceled") though nobody canceled it.
Either way, nothing is left at the destination: no file, no temp file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from provena_like.server.jobs import JobCanceled, JobLeaseLost
from provena_like.server.transfer.collections import Collection
from provena_like.server.transfer.executor import _Run
from provena_like.server.transfer.paths import ResolvedPath
from provena_like.server.transfer.posix import PosixBackend

SIZE = 3 * 1024 * 1024 + 17  # several of the copy's 1 MiB chunks


def _collection(root: Path) -> Collection:
    root.mkdir()
    return Collection(
        id="5d1c6a1e-0000-4000-8000-000000000000",
        item_id="10378.1/1",
        display_name=root.name,
        owner="alice",
        description="",
        roles=[],
        writable=True,
        backend=PosixBackend(root.resolve()),
    )


def _run(tmp_path: Path, *, lost: bool = False, canceled: bool = False) -> _Run:
    row = SimpleNamespace(
        task_id="0f6d3a2e-0000-4000-8000-000000000000",
        owner="alice",
        options={"verify_checksum": True},
        deadline=datetime(2100, 1, 1, tzinfo=UTC),
    )
    ctx = SimpleNamespace(_lost=lost, cancel_requested=canceled)
    source, dest = _collection(tmp_path / "src"), _collection(tmp_path / "dst")
    (tmp_path / "src" / "a.bin").write_bytes(b"x" * SIZE)
    nothing = cast(Any, None)
    return _Run(nothing, cast(Any, ctx), cast(Any, row), source, dest, nothing)


def _copy(run: _Run) -> Any:
    return run._posix_copy(ResolvedPath(("a.bin",)), ResolvedPath(("d", "b.bin")), None)


def test_a_lost_lease_stops_the_copy_as_lost_not_canceled(tmp_path: Path) -> None:
    with pytest.raises(JobLeaseLost, match="no longer holds its job"):
        _copy(_run(tmp_path, lost=True))
    assert list((tmp_path / "dst" / "d").iterdir()) == []  # no file, no temp file


def test_a_cancel_stops_the_copy_as_canceled(tmp_path: Path) -> None:
    with pytest.raises(JobCanceled, match="was canceled"):
        _copy(_run(tmp_path, canceled=True))
    assert list((tmp_path / "dst" / "d").iterdir()) == []


def test_a_lost_lease_wins_over_a_cancel(tmp_path: Path) -> None:
    # the claim is no longer this worker's: it must not settle the job, even as canceled
    with pytest.raises(JobLeaseLost):
        _copy(_run(tmp_path, lost=True, canceled=True))


def test_otherwise_the_copy_is_put_in_place_whole(tmp_path: Path) -> None:
    copied = _copy(_run(tmp_path))
    assert copied.state == "done" and copied.size == SIZE and copied.checksummed == SIZE
    assert [p.name for p in (tmp_path / "dst" / "d").iterdir()] == ["b.bin"]
    assert (tmp_path / "dst" / "d" / "b.bin").read_bytes() == b"x" * SIZE
