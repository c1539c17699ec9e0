"""The server's own job runner: made by ``create_app``, run and stopped by its lifespan."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import func, select

from provena_like.server.db.identity import UserRow
from provena_like.server.jobs import JobContext, JobRecord, JobRunner, JobState
from provena_like.testing.server_thread import ServerThread
from tests.support.auth_helpers import running_server
from tests.support.job_helpers import open_sessions, read_job

pytestmark = pytest.mark.anyio


def runner_of(server: ServerThread) -> JobRunner:
    runner: JobRunner = server.app.state.job_runner
    return runner


def enqueue_on(server: ServerThread, kind: str, payload: dict[str, Any]) -> str:
    async def work() -> str:
        async with server.app.state.sessions() as session, session.begin():
            return await runner_of(server).enqueue(session, kind, payload, owner="admin")

    return server.call(work)


def wait_on(server: ServerThread, job_id: str, until: Any, timeout: float = 20.0) -> JobRecord:
    async def work() -> JobRecord:
        with anyio.fail_after(timeout):
            while True:
                async with server.app.state.sessions() as session:
                    record = await runner_of(server).get(session, job_id)
                if record is not None and until(record):
                    return record
                await anyio.sleep(0.05)

    return server.call(work, timeout=timeout + 5)


def test_the_session_server_runs_a_registered_job(server: ServerThread) -> None:
    kind = f"test.count_users.{uuid.uuid4().hex[:8]}"

    async def count_users(ctx: JobContext) -> dict[str, int]:
        async with ctx.sessions() as session:  # the handler's own database work
            users = await session.scalar(select(func.count()).select_from(UserRow))
        return {"users": int(users or 0), "attempt": ctx.attempt}

    runner = runner_of(server)
    assert runner.workers == server.settings.job_workers == 2
    runner.register(kind, count_users)  # after start-up: claimed from the next poll on
    job_id = enqueue_on(server, kind, {})
    record = wait_on(server, job_id, lambda r: r.finished)
    assert record.state is JobState.SUCCEEDED and record.owner == "admin"
    assert record.result is not None and record.result["users"] >= 1
    assert record.result["attempt"] == 1


async def test_server_restart_puts_the_running_job_back_and_resumes_it(tmp_path: Path) -> None:
    runs: list[tuple[int, Mapping[str, Any]]] = []

    async def two_steps(ctx: JobContext) -> dict[str, Any]:
        runs.append((ctx.attempt, dict(ctx.progress)))
        if "step" not in ctx.progress:
            await ctx.checkpoint({"step": 1})
            await anyio.sleep(3600)
        return {"resumed_from": ctx.progress["step"]}

    fast = {"job_lease_seconds": 3.0, "job_poll_seconds": 0.2}
    with running_server(tmp_path, **fast) as first:
        runner_of(first).register("test.two_steps", two_steps)
        job_id = enqueue_on(first, "test.two_steps", {"files": 3})
        wait_on(first, job_id, lambda r: r.progress == {"step": 1})
    url = first.settings.resolved_database_url
    async with open_sessions(url) as sessions:
        record = await read_job(sessions, job_id)
    assert record.state is JobState.QUEUED and record.attempts == 0
    assert record.progress == {"step": 1} and record.lease_owner is None

    with running_server(tmp_path, **fast) as second:
        runner_of(second).register("test.two_steps", two_steps)
        record = wait_on(second, job_id, lambda r: r.finished)
    assert record.state is JobState.SUCCEEDED and record.result == {"resumed_from": 1}
    assert record.attempts == 1
    assert runs == [(1, {}), (1, {"step": 1})]
