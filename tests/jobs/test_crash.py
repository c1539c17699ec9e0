"""A worker process killed with SIGKILL mid-job: its job is taken over with its progress."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from provena_like.server.jobs import JobContext, JobRunner, JobState
from tests.support.job_helpers import enqueue, open_sessions, read_job, wait_for_job

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
STEPS = 5


@contextmanager
def worker_process(url: str) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``tests.jobs.crashing_worker`` on ``url``; kill it on the way out if still alive."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.jobs.crashing_worker", url],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        assert proc.stderr is not None
        proc.stderr.close()


async def test_job_of_a_killed_process_is_taken_over_with_its_progress(job_db: str) -> None:
    runs: list[tuple[int, Mapping[str, Any]]] = []

    async def finish_the_rest(ctx: JobContext) -> dict[str, int]:
        runs.append((ctx.attempt, dict(ctx.progress)))
        start = done = int(ctx.progress["done"])
        while done < STEPS:
            done += 1
            await ctx.checkpoint({"done": done, "by_attempt": ctx.attempt})
        return {"resumed_from": start}

    async with open_sessions(job_db) as sessions:
        # the killed worker's short lease makes the takeover quick; the survivor's own is long,
        # so a loaded machine renewing late can't cost it its lease (a third attempt)
        survivor = JobRunner(workers=1, lease_seconds=30.0, poll_seconds=0.2)
        survivor.register("test.crash", finish_the_rest)
        job_id = await enqueue(survivor, sessions, "test.crash", {"die_after": 2})
        with worker_process(job_db) as proc:
            record = await wait_for_job(
                sessions, job_id, lambda r: r.progress.get("done") == 2, timeout=60.0
            )
            assert record.state is JobState.RUNNING and record.attempts == 1
            assert record.lease_owner is not None and f":{proc.pid}:" in record.lease_owner
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(10) == -signal.SIGKILL
        killed = await read_job(sessions, job_id)
        assert killed.state is JobState.RUNNING and killed.lease_owner == record.lease_owner

        async with survivor.running(sessions):
            final = await wait_for_job(sessions, job_id, lambda r: r.finished, timeout=20.0)
    assert final.state is JobState.SUCCEEDED and final.attempts == 2
    assert final.result == {"resumed_from": 2}
    assert final.progress == {"done": STEPS, "by_attempt": 2}
    assert runs == [(2, {"done": 2, "by_attempt": 1})]
    assert final.started_at == record.started_at  # the first attempt's start is kept
