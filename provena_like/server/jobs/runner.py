"""The server's job runner: durable jobs in the database, run by a few worker tasks.

See :class:`JobRunner`. The guarantees, in short:

- a job is a row of ``jobs`` (state, attempts, lease, progress, result); a process keeps
  nothing else, so several server processes on one database share the queue;
- a worker claims a job with a compare-and-set ``UPDATE`` and holds it by a lease that a
  heartbeat renews while the handler runs: one job never runs twice at the same time, as long
  as the processes' clocks agree to well within the lease; a handler whose lease went
  unrenewed for two thirds of it is stopped, even when the renewal itself hangs;
- a worker that dies (a crash, ``SIGKILL``) leaves a lease that lapses; another worker then
  takes the job over with one more attempt and the progress the handler saved, and a job
  whose attempts are all used up that way ends ``failed`` ("interrupted N times");
- at a clean shutdown running handlers are cancelled and their jobs go back to ``queued``
  without losing an attempt;
- a cancel request stops a queued job at once and a running one promptly: its heartbeat sees
  the flag and cancels the handler, and :meth:`JobContext.checkpoint` raises
  :class:`JobCanceled`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeAlias

import anyio
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from provena_like.server.jobs import store
from provena_like.server.jobs.context import JobContext
from provena_like.server.jobs.model import JobCanceled, JobLeaseLost, JobRecord, JobRetry, JobState

log = logging.getLogger(__name__)

JobHandler: TypeAlias = Callable[[JobContext], Awaitable[Mapping[str, Any] | None]]
"""Runs one attempt of a job; returns its result (JSON), or ``None``."""

_AFTER_COMMIT = "provena_like.jobs.after_commit"
_SETTLE_SECONDS = 15.0
"""How long writing a job's outcome may take at shutdown before it is left to the lease."""


def _run_after_commit(sync: Session) -> None:
    actions: list[Callable[[], None]] = sync.info.get(_AFTER_COMMIT, [])
    todo, actions[:] = list(actions), []
    for action in todo:
        try:
            action()
        except Exception:  # a wake-up is an optimisation: never fail a commit over it
            log.exception("a job runner's after-commit action failed")


def _drop_after_commit(sync: Session) -> None:
    sync.info.get(_AFTER_COMMIT, []).clear()


def after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run ``action`` once the session's current transaction commits (never on rollback)."""
    sync = session.sync_session
    actions: list[Callable[[], None]] | None = sync.info.get(_AFTER_COMMIT)
    if actions is None:
        actions = sync.info[_AFTER_COMMIT] = []
        event.listen(sync, "after_commit", _run_after_commit)
        event.listen(sync, "after_rollback", _drop_after_commit)
    actions.append(action)


@dataclass(frozen=True)
class _Registration:
    handler: JobHandler
    max_attempts: int


@dataclass
class _Outcome:
    """How an attempt ended: ``succeeded``, ``failed``, ``retry``, ``canceled`` or ``lost``."""

    how: str
    result: Mapping[str, Any] | None = None
    error: BaseException | None = None
    delay: float = 0.0


class JobRunner:
    """Runs durable jobs stored in the server's database.

    Components register a handler per job kind when the app is built, and enqueue jobs in
    their own transactions (a job is committed, or not, with the rows that need it). The app's
    lifespan runs the workers with :meth:`running`.

    Failures: an exception in a handler fails the job at once, with the exception's type and
    message as its error. A handler that wants another attempt raises :class:`JobRetry`
    (optionally with a delay); the job is then queued again while attempts are left. A run
    interrupted by a crash counts as an attempt; a run interrupted by a clean shutdown does not.

    Args:
        workers: Jobs run at the same time by this process (0: enqueue only).
        lease_seconds: How long a claim holds without renewal; a crashed worker's job is taken
            over after at most this long. The heartbeat renews it every third of it.
        poll_seconds: How often idle workers look for jobs enqueued by other processes (jobs
            enqueued here wake them at once), and the longest a running job's heartbeat waits
            before it looks for a cancel made by another process.

    Example:
        ```python
        from provena_like.server.db.base import create_engine, create_sessionmaker
        from provena_like.server.db.schema import upgrade_schema

        engine = create_engine("sqlite+aiosqlite:///jobs.db")
        await upgrade_schema(engine)
        sessions = create_sessionmaker(engine)
        runner = JobRunner(workers=2)

        async def ping(ctx: JobContext) -> dict[str, str]:
            return {"pong": str(ctx.payload["text"])}

        runner.register("ping", ping, max_attempts=1)
        async with runner.running(sessions):
            async with sessions() as session, session.begin():
                job_id = await runner.enqueue(session, "ping", {"text": "hi"})
            record = None
            while record is None or not record.finished:
                await anyio.sleep(0.1)
                async with sessions() as session:
                    record = await runner.get(session, job_id)
        assert record.result == {"pong": "hi"}
        await engine.dispose()
        ```
    """

    def __init__(
        self, *, workers: int = 2, lease_seconds: float = 30.0, poll_seconds: float = 1.0
    ) -> None:
        if workers < 0 or lease_seconds <= 0 or poll_seconds <= 0:
            raise ValueError("workers must be >= 0, lease_seconds and poll_seconds > 0")
        self.workers = workers
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.name = f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._handlers: dict[str, _Registration] = {}
        self._sessions: async_sessionmaker[AsyncSession] | None = None
        self._wakeup = anyio.Event()
        self._active: dict[str, JobContext] = {}

    @property
    def kinds(self) -> frozenset[str]:
        """The job kinds with a handler here."""
        return frozenset(self._handlers)

    def register(self, kind: str, handler: JobHandler, *, max_attempts: int = 3) -> None:
        """Run jobs of ``kind`` with ``handler``; before or after the runner started.

        Args:
            kind: The job kind (at most 128 characters), one handler each.
            handler: Runs one attempt; see :data:`JobHandler`.
            max_attempts: Attempts a job of this kind gets (stored with each job enqueued).

        Raises:
            ValueError: ``kind`` already has a handler, or a bad argument.
        """
        if not kind or len(kind) > 128:
            raise ValueError("a job kind is 1 to 128 characters")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if kind in self._handlers:
            raise ValueError(f"job kind {kind!r} already has a handler")
        self._handlers[kind] = _Registration(handler, max_attempts)

    async def enqueue(
        self,
        session: AsyncSession,
        kind: str,
        payload: Mapping[str, Any],
        *,
        job_id: str | None = None,
        owner: str | None = None,
    ) -> str:
        """Add a queued job in the caller's transaction; its id.

        The job exists once the caller commits (a rollback drops it with the rest); the
        workers of this runner are woken then, other processes find it when they poll.

        Args:
            session: The caller's session, in a transaction.
            kind: A registered job kind.
            payload: What the handler gets (JSON).
            job_id: The job's id (a UUID string), e.g. to refer to it from rows written in the
                same transaction; default a new UUID.
            owner: The user the job runs for.

        Raises:
            ValueError: ``kind`` has no handler, or ``payload`` is not JSON.
        """
        registration = self._handlers.get(kind)
        if registration is None:
            raise ValueError(f"no handler for job kind {kind!r}")
        try:
            json.dumps(payload)
        except (TypeError, ValueError) as err:
            raise ValueError(f"a job's payload must be JSON: {err}") from err
        job_id = job_id or str(uuid.uuid4())
        session.add(
            store.new_row(
                kind,
                payload,
                job_id=job_id,
                owner=owner,
                max_attempts=registration.max_attempts,
            )
        )
        await session.flush()
        after_commit(session, self._wake_workers)
        return job_id

    async def request_cancel(self, session: AsyncSession, job_id: str) -> bool:
        """Cancel a job, in the caller's transaction.

        A queued job ends ``canceled`` at once; a running one is flagged, and its handler is
        stopped when its heartbeat sees the flag (at once here after the commit, within
        ``poll_seconds`` in another process). Here, the handler's ``cancel_requested`` is true
        as soon as the cancel commits (its worker threads check it before they put anything
        in place, and cannot wait for the heartbeat's round-trip to the database).

        Returns:
            Whether the job was queued or running; ``False`` for an unknown or finished job.
        """
        flagged = await store.request_cancel(session, job_id)
        if flagged:
            after_commit(session, lambda: self._cancel_local_job(job_id))
        return flagged

    async def get(self, session: AsyncSession, job_id: str) -> JobRecord | None:
        """A snapshot of a job, or ``None`` when there is none."""
        return await store.get(session, job_id)

    @asynccontextmanager
    async def running(self, sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[None]:
        """Run the workers while the block runs; leaving it stops them.

        Leaving cancels the running handlers and puts their jobs back in the queue (their
        attempt not counted, their saved progress kept).

        Args:
            sessions: The app's session factory (also given to handlers).

        Raises:
            RuntimeError: The runner is already running.
        """
        if self._sessions is not None:
            raise RuntimeError("the job runner is already running")
        self._sessions = sessions
        try:
            async with anyio.create_task_group() as tg:
                for n in range(self.workers):
                    tg.start_soon(self._work, sessions, name=f"job-worker-{n}")
                try:
                    yield
                finally:
                    tg.cancel_scope.cancel()
        finally:
            self._sessions = None

    def _wake_workers(self) -> None:
        wakeup, self._wakeup = self._wakeup, anyio.Event()
        wakeup.set()

    def _cancel_local_job(self, job_id: str) -> None:
        """Flag a job this runner runs whose cancel committed, and wake its heartbeat."""
        ctx = self._active.get(job_id)
        if ctx is not None:
            ctx._cancel = True
            ctx._wake()

    async def _work(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        """One worker: claim a job, run it, repeat; wait for a wake-up or a poll when idle."""
        while True:
            wakeup = self._wakeup
            lease = f"{self.name}:{uuid.uuid4().hex[:12]}"
            try:
                claim = await store.claim(sessions, self.kinds, lease, self.lease_seconds)
            except Exception:
                log.exception("claiming a job failed")
                claim = None
            if claim is None:
                with anyio.move_on_after(self.poll_seconds):
                    await wakeup.wait()
                continue
            try:
                await self._run(sessions, claim)
            except Exception:  # a bug of the runner: the job's lease lapses, it runs again
                log.exception("running job %s failed", claim.record.id)

    async def _run(self, sessions: async_sessionmaker[AsyncSession], claim: store.Claim) -> None:
        record = claim.record
        registration = self._handlers[record.kind]
        ctx = JobContext(record, claim.lease, sessions, self.lease_seconds)
        self._active[record.id] = ctx
        outcome: _Outcome | None = None
        try:
            async with anyio.create_task_group() as tg:
                scope = anyio.CancelScope()
                tg.start_soon(self._heartbeat, ctx, scope)
                tg.start_soon(self._watchdog, ctx, scope)
                outcome = await self._call(registration.handler, ctx, scope)
                tg.cancel_scope.cancel()
        except anyio.get_cancelled_exc_class():  # shutdown
            with anyio.move_on_after(_SETTLE_SECONDS, shield=True):
                if outcome is None:  # the handler was stopped: give the job back
                    await self._give_back(sessions, claim)
                else:  # it had ended: keep what it did
                    await self._settle(sessions, claim, outcome)
            raise
        finally:
            self._active.pop(record.id, None)
        assert outcome is not None  # the task group ended without a cancel: the handler did
        with anyio.move_on_after(_SETTLE_SECONDS, shield=True):
            await self._settle(sessions, claim, outcome)

    async def _call(
        self, handler: JobHandler, ctx: JobContext, scope: anyio.CancelScope
    ) -> _Outcome:
        with scope:
            try:
                result = await handler(ctx)
            except JobLeaseLost:
                return _Outcome("lost")
            except JobCanceled:
                return _Outcome("canceled")
            except JobRetry as err:
                return _Outcome("retry", error=err, delay=err.delay)
            except Exception as err:
                log.warning("job %s (%s) failed", ctx.job_id, ctx.kind, exc_info=True)
                return _Outcome("failed", error=err)
            if result is not None:
                try:
                    json.dumps(result)
                except (TypeError, ValueError) as err:
                    return _Outcome("failed", error=TypeError(f"the result is not JSON: {err}"))
            return _Outcome("succeeded", result=result)
        # the heartbeat cancelled the handler
        return _Outcome("lost" if ctx._lost else "canceled")

    async def _heartbeat(self, ctx: JobContext, scope: anyio.CancelScope) -> None:
        """Renew the lease while the handler runs; stop the handler on a cancel or a lost lease."""
        period = min(self.poll_seconds, self.lease_seconds / 3)
        while True:
            with anyio.move_on_after(period):
                await ctx._nudge.wait()
            ctx._nudge = anyio.Event()
            asked_at = time.monotonic()  # the new expiry counts from before the UPDATE
            try:
                flag = await store.renew(ctx.sessions, ctx.job_id, ctx._lease, self.lease_seconds)
            except Exception:  # try again; the watchdog stops the handler if it lasts
                log.warning("renewing the lease of job %s failed", ctx.job_id, exc_info=True)
                continue
            if flag is None:
                log.warning("job %s is no longer held by this worker: stopping it", ctx.job_id)
                ctx._lost = True
                scope.cancel()
                return
            ctx._renewed_at = max(ctx._renewed_at, asked_at)
            if flag:
                ctx._cancel = True
                scope.cancel()
                return

    async def _watchdog(self, ctx: JobContext, scope: anyio.CancelScope) -> None:
        """Stop the handler once the lease went unrenewed for two thirds of it.

        The heartbeat decides after each failed renewal, but a renewal can also hang (a locked
        database, a slow network): this deadline holds whatever the heartbeat is waiting on, and
        leaves a third of the lease for the handler to stop before another worker may take over.
        """
        while True:
            stop_at = ctx._renewed_at + self.lease_seconds * 2 / 3
            now = time.monotonic()
            if now >= stop_at:
                log.warning("job %s: the lease was not renewed in time: stopping it", ctx.job_id)
                ctx._lost = True
                scope.cancel()
                return
            await anyio.sleep(stop_at - now)

    async def _give_back(
        self, sessions: async_sessionmaker[AsyncSession], claim: store.Claim
    ) -> None:
        try:
            await store.requeue(sessions, claim.record.id, claim.lease, give_back=True)
        except Exception:
            log.exception("job %s could not be put back in the queue", claim.record.id)

    async def _settle(
        self, sessions: async_sessionmaker[AsyncSession], claim: store.Claim, outcome: _Outcome
    ) -> None:
        """Write how the attempt ended (only while the claim is still ours)."""
        record = claim.record
        attempt = record.attempts
        try:
            if outcome.how == "lost":
                return
            if outcome.how == "succeeded":
                held = await store.finish(
                    sessions, record.id, claim.lease, JobState.SUCCEEDED, result=outcome.result
                )
            elif outcome.how == "canceled":
                held = await store.finish(sessions, record.id, claim.lease, JobState.CANCELED)
            else:
                err = outcome.error
                assert err is not None
                error = store.error_of(type(err).__name__, str(err) or repr(err), attempt)
                if outcome.how == "retry" and attempt < record.max_attempts:
                    held = await store.requeue(
                        sessions,
                        record.id,
                        claim.lease,
                        give_back=False,
                        delay=outcome.delay,
                        error=error,
                    )
                else:
                    held = await store.finish(
                        sessions, record.id, claim.lease, JobState.FAILED, error=error
                    )
        except Exception:
            log.exception("the outcome of job %s could not be saved", record.id)
            return
        if not held:
            log.warning("job %s was taken over before its outcome was saved", record.id)
