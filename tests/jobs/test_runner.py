"""The job runner on a real SQLite database file: run, fail, retry, cancel, shut down, race."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest
from sqlalchemy import text

from provena_like.server.db.base import utcnow
from provena_like.server.jobs import (
    JobCanceled,
    JobContext,
    JobHandler,
    JobRecord,
    JobRetry,
    JobRunner,
    JobState,
)
from provena_like.server.jobs.runner import after_commit
from tests.support.job_helpers import (
    enqueue,
    leave_as_crashed,
    open_sessions,
    read_job,
    set_job,
    wait_for_job,
)

pytestmark = pytest.mark.anyio

FAST = {"lease_seconds": 3.0, "poll_seconds": 0.2}


def finished(record: Any) -> bool:
    return bool(record.finished)


async def test_enqueued_job_runs_to_succeeded(job_db: str) -> None:
    seen: list[tuple[str, Mapping[str, Any], int, str | None]] = []

    async def echo(ctx: JobContext) -> dict[str, Any]:
        seen.append((ctx.job_id, dict(ctx.payload), ctx.attempt, ctx.owner))
        return {"echo": ctx.payload["text"]}

    runner = JobRunner(workers=2, **FAST)
    runner.register("test.echo", echo)
    async with open_sessions(job_db) as sessions, runner.running(sessions):
        job_id = await enqueue(runner, sessions, "test.echo", {"text": "hi"}, owner="alice")
        record = await wait_for_job(sessions, job_id, finished)
    assert record.state is JobState.SUCCEEDED
    assert record.result == {"echo": "hi"}
    assert (record.attempts, record.max_attempts, record.error) == (1, 3, None)
    assert record.owner == "alice" and record.kind == "test.echo"
    assert record.lease_owner is None and record.lease_expires_at is None
    assert record.started_at is not None and record.finished_at is not None
    assert record.created_at <= record.started_at <= record.finished_at
    assert seen == [(job_id, {"text": "hi"}, 1, "alice")]


async def test_commit_wakes_local_workers_at_once(job_db: str) -> None:
    """Workers polling only every 60 s still start a job enqueued here right after commit."""

    async def noop(_ctx: JobContext) -> None:
        return None

    runner = JobRunner(workers=1, lease_seconds=3.0, poll_seconds=60.0)
    runner.register("test.noop", noop)
    async with open_sessions(job_db) as sessions, runner.running(sessions):
        await anyio.sleep(0.5)  # the worker found nothing and waits
        job_id = await enqueue(runner, sessions, "test.noop", {})
        record = await wait_for_job(sessions, job_id, finished, timeout=20.0)
    assert record.state is JobState.SUCCEEDED


async def test_job_of_a_rolled_back_transaction_never_exists(job_db: str) -> None:
    calls: list[str] = []

    async def record_call(ctx: JobContext) -> None:
        calls.append(ctx.job_id)

    runner = JobRunner(workers=1, **FAST)
    runner.register("test.call", record_call)
    async with open_sessions(job_db) as sessions, runner.running(sessions):
        async with sessions() as session:
            async with session.begin():
                job_id = await runner.enqueue(session, "test.call", {})
                assert await runner.get(session, job_id) is not None  # visible inside
                await session.rollback()
        await anyio.sleep(1.0)
        async with sessions() as session:
            assert await runner.get(session, job_id) is None
    assert calls == []


async def test_enqueue_refuses_unknown_kinds_and_non_json(job_db: str) -> None:
    async def noop(_ctx: JobContext) -> None:
        return None

    runner = JobRunner(workers=0)
    runner.register("test.noop", noop)
    with pytest.raises(ValueError, match="already has a handler"):
        runner.register("test.noop", noop)
    async with open_sessions(job_db) as sessions, sessions() as session:
        with pytest.raises(ValueError, match="no handler"):
            await runner.enqueue(session, "test.other", {})
        with pytest.raises(ValueError, match="JSON"):
            await runner.enqueue(session, "test.noop", {"when": utcnow()})


async def test_handler_exception_fails_the_job_with_its_message(job_db: str) -> None:
    attempts: list[int] = []

    async def boom(ctx: JobContext) -> None:
        attempts.append(ctx.attempt)
        raise ValueError("the source is gone")

    runner = JobRunner(workers=1, **FAST)
    runner.register("test.boom", boom, max_attempts=3)
    async with open_sessions(job_db) as sessions, runner.running(sessions):
        job_id = await enqueue(runner, sessions, "test.boom", {})
        record = await wait_for_job(sessions, job_id, finished)
    assert record.state is JobState.FAILED
    assert record.error == {"type": "ValueError", "message": "the source is gone", "attempt": 1}
    assert attempts == [1]  # no retry for a plain exception


async def test_job_retry_runs_again_until_attempts_are_used_up(job_db: str) -> None:
    attempts: list[tuple[int, Mapping[str, Any]]] = []

    async def flaky(ctx: JobContext) -> dict[str, int]:
        attempts.append((ctx.attempt, dict(ctx.progress)))
        await ctx.checkpoint({"tried": ctx.attempt})
        if ctx.payload["succeed_on"] == ctx.attempt:
            return {"attempt": ctx.attempt}
        raise JobRetry(f"busy on attempt {ctx.attempt}", delay=0.1)

    runner = JobRunner(workers=1, **FAST)
    runner.register("test.flaky", flaky, max_attempts=3)
    async with open_sessions(job_db) as sessions, runner.running(sessions):
        never = await enqueue(runner, sessions, "test.flaky", {"succeed_on": 0})
        failed = await wait_for_job(sessions, never, finished)
        second = await enqueue(runner, sessions, "test.flaky", {"succeed_on": 2})
        succeeded = await wait_for_job(sessions, second, finished)
    assert failed.state is JobState.FAILED and failed.attempts == 3
    assert failed.error == {"type": "JobRetry", "message": "busy on attempt 3", "attempt": 3}
    assert succeeded.state is JobState.SUCCEEDED and succeeded.result == {"attempt": 2}
    assert succeeded.attempts == 2
    # each attempt resumed from what the one before saved
    assert attempts == [(1, {}), (2, {"tried": 1}), (3, {"tried": 2}), (1, {}), (2, {"tried": 1})]


async def run_and_cancel(
    job_db: str, handler: JobHandler, started: anyio.Event, *, from_another_process: bool = False
) -> tuple[str, JobRecord]:
    """Run a job of ``handler``, cancel it once ``started`` is set; its id and final record."""
    runner = JobRunner(workers=1, **FAST)
    runner.register("test.cancel", handler)
    async with (
        open_sessions(job_db) as sessions,
        open_sessions(job_db) as other_sessions,  # another process: no local wake-up
        runner.running(sessions),
    ):
        job_id = await enqueue(runner, sessions, "test.cancel", {})
        with anyio.fail_after(20):
            await started.wait()
        canceller, cancel_sessions = (
            (JobRunner(workers=0), other_sessions) if from_another_process else (runner, sessions)
        )
        async with cancel_sessions() as session, session.begin():
            assert await canceller.request_cancel(session, job_id) is True
        record = await wait_for_job(sessions, job_id, finished, timeout=10.0)
        async with sessions() as session, session.begin():
            assert await runner.request_cancel(session, job_id) is False  # already over
    assert record.state is JobState.CANCELED and record.cancel_requested
    assert record.error is None and record.result is None
    return job_id, record


async def test_cancel_stops_a_checkpointing_handler(job_db: str) -> None:
    started = anyio.Event()
    saw_cancel: list[bool] = []

    async def loop(ctx: JobContext) -> None:
        n = 0
        started.set()
        try:
            while True:
                n += 1
                await ctx.checkpoint({"n": n})
                await anyio.sleep(0.05)
        except JobCanceled:
            saw_cancel.append(ctx.cancel_requested)
            raise

    _, record = await run_and_cancel(job_db, loop, started)
    assert record.progress["n"] >= 1
    assert saw_cancel in ([True], [])  # stopped by checkpoint, or by the heartbeat's cancel


async def test_cancel_stops_a_handler_that_never_checkpoints(job_db: str) -> None:
    started = anyio.Event()
    stopped: list[str] = []

    async def sleeper(ctx: JobContext) -> None:
        started.set()
        try:
            await anyio.sleep(3600)
        finally:
            stopped.append(ctx.job_id)

    job_id, _ = await run_and_cancel(job_db, sleeper, started)
    assert stopped == [job_id]


async def test_a_local_cancel_is_seen_by_the_handler_as_soon_as_it_commits(job_db: str) -> None:
    # a handler's worker thread (a transfer's copy) checks cancel_requested before it puts a
    # file in place: it must not wait for the heartbeat's round-trip to the database
    started = anyio.Event()
    contexts: list[JobContext] = []

    async def sleeper(ctx: JobContext) -> None:
        contexts.append(ctx)
        started.set()
        await anyio.sleep(3600)

    runner = JobRunner(workers=1, lease_seconds=30.0, poll_seconds=10.0)
    runner.register("test.cancel", sleeper)
    seen_at_commit: list[bool] = []
    async with open_sessions(job_db) as sessions, runner.running(sessions):
        job_id = await enqueue(runner, sessions, "test.cancel", {})
        with anyio.fail_after(20):
            await started.wait()
        assert contexts[0].cancel_requested is False
        async with sessions() as session, session.begin():
            assert await runner.request_cancel(session, job_id) is True
            after_commit(session, lambda: seen_at_commit.append(contexts[0].cancel_requested))
        record = await wait_for_job(sessions, job_id, finished, timeout=10.0)
    assert seen_at_commit == [True]
    assert record.state is JobState.CANCELED


async def test_cancel_made_by_another_process_is_seen_by_the_heartbeat(job_db: str) -> None:
    started = anyio.Event()

    async def sleeper(_ctx: JobContext) -> None:
        started.set()
        await anyio.sleep(3600)

    await run_and_cancel(job_db, sleeper, started, from_another_process=True)


async def test_cancel_of_a_queued_job_is_immediate(job_db: str) -> None:
    async def never(_ctx: JobContext) -> None:
        raise AssertionError("a canceled job ran")

    runner = JobRunner(workers=1, **FAST)
    runner.register("test.never", never)
    async with open_sessions(job_db) as sessions:
        job_id = await enqueue(runner, sessions, "test.never", {})
        async with sessions() as session, session.begin():
            assert await runner.request_cancel(session, job_id)
            assert not await runner.request_cancel(session, "no-such-job")
        record = await read_job(sessions, job_id)
        assert record.state is JobState.CANCELED and record.finished_at is not None
        async with runner.running(sessions):
            await anyio.sleep(0.6)
        assert (await read_job(sessions, job_id)).attempts == 0


async def test_shutdown_mid_job_puts_it_back_in_the_queue(job_db: str) -> None:
    started = anyio.Event()
    runs: list[tuple[int, Mapping[str, Any]]] = []

    async def two_steps(ctx: JobContext) -> dict[str, str]:
        runs.append((ctx.attempt, dict(ctx.progress)))
        if "step" not in ctx.progress:
            await ctx.checkpoint({"step": 1})
            started.set()
            await anyio.sleep(3600)
        return {"done": "yes"}

    async with open_sessions(job_db) as sessions:
        first = JobRunner(workers=1, **FAST)
        first.register("test.two_steps", two_steps)
        async with first.running(sessions):
            job_id = await enqueue(first, sessions, "test.two_steps", {})
            with anyio.fail_after(20):
                await started.wait()
        record = await read_job(sessions, job_id)
        assert record.state is JobState.QUEUED
        assert record.attempts == 0  # a clean shutdown costs no attempt
        assert record.progress == {"step": 1} and record.error is None
        assert record.lease_owner is None and record.lease_expires_at is None

        second = JobRunner(workers=1, **FAST)
        second.register("test.two_steps", two_steps)
        async with second.running(sessions):
            record = await wait_for_job(sessions, job_id, finished)
    assert record.state is JobState.SUCCEEDED and record.result == {"done": "yes"}
    assert runs == [(1, {}), (1, {"step": 1})]


async def test_lapsed_lease_is_taken_over_with_its_progress(job_db: str) -> None:
    """What a crashed worker leaves (a running job, an old lease) runs again as attempt 2."""
    runs: list[tuple[int, Mapping[str, Any]]] = []

    async def resume(ctx: JobContext) -> dict[str, int]:
        runs.append((ctx.attempt, dict(ctx.progress)))
        return {"from": int(ctx.progress["step"])}

    runner = JobRunner(workers=1, **FAST)
    runner.register("test.resume", resume, max_attempts=3)
    async with open_sessions(job_db) as sessions:
        job_id = await enqueue(runner, sessions, "test.resume", {})
        await leave_as_crashed(sessions, job_id, attempts=1, lapses_in=1.5, progress={"step": 7})
        async with runner.running(sessions):
            await anyio.sleep(0.6)
            assert (await read_job(sessions, job_id)).state is JobState.RUNNING  # still leased
            record = await wait_for_job(sessions, job_id, finished)
    assert record.state is JobState.SUCCEEDED and record.result == {"from": 7}
    assert record.attempts == 2
    assert runs == [(2, {"step": 7})]


async def test_job_interrupted_on_its_last_attempt_fails_explicitly(job_db: str) -> None:
    async def never(_ctx: JobContext) -> None:
        raise AssertionError("an exhausted job ran again")

    runner = JobRunner(workers=1, **FAST)
    runner.register("test.never", never, max_attempts=3)
    async with open_sessions(job_db) as sessions:
        job_id = await enqueue(runner, sessions, "test.never", {})
        await leave_as_crashed(sessions, job_id, attempts=3, lapses_in=-1.0)
        async with runner.running(sessions):
            record = await wait_for_job(sessions, job_id, finished)
    assert record.state is JobState.FAILED and record.attempts == 3
    assert record.error is not None and record.error["type"] == "interrupted"
    assert "interrupted 3 times" in record.error["message"]


async def test_a_worker_that_lost_its_lease_stops_and_writes_nothing(job_db: str) -> None:
    """If another worker took the job over, the old one is stopped and its outcome dropped."""
    started = anyio.Event()
    stopped = anyio.Event()

    async def sleeper(_ctx: JobContext) -> dict[str, str]:
        started.set()
        try:
            await anyio.sleep(3600)
        finally:
            stopped.set()
        return {"late": "result"}

    runner = JobRunner(workers=1, **FAST)
    runner.register("test.sleeper", sleeper)
    async with open_sessions(job_db) as sessions, runner.running(sessions):
        job_id = await enqueue(runner, sessions, "test.sleeper", {})
        with anyio.fail_after(20):
            await started.wait()
        far = utcnow() + timedelta(hours=1)
        await set_job(sessions, job_id, lease_owner="other-host:2:taken", lease_expires_at=far)
        with anyio.fail_after(10):
            await stopped.wait()
        await anyio.sleep(0.3)
        record = await read_job(sessions, job_id)
    assert record.state is JobState.RUNNING and record.lease_owner == "other-host:2:taken"
    assert record.result is None and record.error is None


async def test_shutdown_right_after_a_handler_returned_keeps_its_result(job_db: str) -> None:
    returned = anyio.Event()

    async def quick(_ctx: JobContext) -> dict[str, bool]:
        returned.set()
        return {"done": True}

    runner = JobRunner(workers=1, **FAST)
    runner.register("test.quick", quick)
    async with open_sessions(job_db) as sessions:
        async with runner.running(sessions):
            job_id = await enqueue(runner, sessions, "test.quick", {})
            with anyio.fail_after(20):
                await returned.wait()
        record = await read_job(sessions, job_id)  # the shutdown came before the outcome
    assert record.state is JobState.SUCCEEDED and record.result == {"done": True}
    assert record.attempts == 1


class _Sleeper:
    """A handler that sleeps until stopped, and when it was stopped."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.stopped = anyio.Event()
        self.stopped_at: datetime | None = None

    async def __call__(self, _ctx: JobContext) -> None:
        self.started.set()
        try:
            await anyio.sleep(3600)
        finally:
            self.stopped_at = utcnow()
            self.stopped.set()


def _utc(value: datetime | str) -> datetime:
    """A timestamp column as read back (SQLite keeps it as text, in UTC)."""
    return datetime.fromisoformat(value).replace(tzinfo=UTC) if isinstance(value, str) else value


async def test_a_renewal_that_hangs_stops_the_handler_before_the_lease_lapses(job_db: str) -> None:
    """A lock held on the job's row makes every renewal wait: the handler stops in time anyway."""
    sleeper = _Sleeper()
    runner = JobRunner(workers=1, lease_seconds=3.0, poll_seconds=1.0)
    runner.register("test.sleeper", sleeper)
    async with open_sessions(job_db) as sessions, runner.running(sessions):
        job_id = await enqueue(runner, sessions, "test.sleeper", {})
        with anyio.fail_after(20):
            await sleeper.started.wait()
        async with sessions() as session, session.begin():  # renewals wait on this write lock
            await session.execute(
                text("UPDATE jobs SET updated_at = updated_at WHERE id = :id"), {"id": job_id}
            )
            with anyio.fail_after(20):
                await sleeper.stopped.wait()
        async with sessions() as session:
            lease_expires_at = (
                await session.execute(
                    text("SELECT lease_expires_at FROM jobs WHERE id = :id"), {"id": job_id}
                )
            ).scalar_one()
    assert sleeper.stopped_at is not None
    assert sleeper.stopped_at < _utc(lease_expires_at)  # it stopped while the lease still held


async def test_a_worker_that_cannot_renew_its_lease_stops_before_it_lapses(job_db: str) -> None:
    """The database goes away under a running job: the handler stops while the lease holds."""
    sleeper = _Sleeper()
    runner = JobRunner(workers=1, lease_seconds=3.0, poll_seconds=1.0)
    runner.register("test.sleeper", sleeper)
    async with open_sessions(job_db) as sessions, runner.running(sessions):
        await enqueue(runner, sessions, "test.sleeper", {})
        with anyio.fail_after(20):
            await sleeper.started.wait()
        async with sessions() as session, session.begin():  # every renewal fails from now on
            await session.execute(text("ALTER TABLE jobs RENAME TO jobs_away"))
        with anyio.fail_after(20):
            await sleeper.stopped.wait()
        async with sessions() as session:
            lease_expires_at = (
                await session.execute(text("SELECT lease_expires_at FROM jobs_away"))
            ).scalar_one()
    assert sleeper.stopped_at is not None
    assert sleeper.stopped_at < _utc(lease_expires_at)  # nobody could have taken it over yet
