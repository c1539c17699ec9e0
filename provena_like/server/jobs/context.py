"""What a job's handler is given: :class:`JobContext`."""

from __future__ import annotations

import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from provena_like.server.jobs import store
from provena_like.server.jobs.model import JobCanceled, JobLeaseLost, JobRecord


class JobContext:
    """One attempt of one job, as its handler sees it.

    Attributes:
        job_id: The job's id.
        kind: The job's kind.
        payload: What it was enqueued with (read-only).
        attempt: Which attempt this is, from 1 (a run cut short by a clean shutdown is not
            counted).
        owner: The user it runs for, if any.
        progress: What the last :meth:`checkpoint` saved, by this attempt or an earlier one:
            resume from it.
        sessions: A session factory for the handler's own database work.

    Example:
        ```python
        async def copy_files(ctx: JobContext) -> dict[str, int]:
            done = int(ctx.progress.get("done", 0))
            for n in range(done, len(ctx.payload["files"])):
                await copy_one(ctx.payload["files"][n])
                await ctx.checkpoint({"done": n + 1})  # raises JobCanceled on a cancel
            return {"copied": len(ctx.payload["files"])}
        ```
    """

    def __init__(
        self,
        record: JobRecord,
        lease: str,
        sessions: async_sessionmaker[AsyncSession],
        lease_seconds: float,
    ) -> None:
        self.job_id = record.id
        self.kind = record.kind
        self.payload: Mapping[str, Any] = MappingProxyType(dict(record.payload))
        self.attempt = record.attempts
        self.owner = record.owner
        self.progress: Mapping[str, Any] = MappingProxyType(dict(record.progress))
        self.sessions = sessions
        self._lease = lease
        self._lease_seconds = lease_seconds
        self._cancel = False
        self._lost = False
        self._renewed_at = time.monotonic()
        self._nudge = anyio.Event()

    @property
    def cancel_requested(self) -> bool:
        """Whether a cancel of the job was seen (the handler is being stopped)."""
        return self._cancel

    async def checkpoint(self, progress: Mapping[str, Any] | None = None) -> None:
        """Save ``progress`` (JSON) and extend the lease; stop here if the job was cancelled.

        Call it between units of work: what it saves is what a later attempt resumes from.
        ``None`` saves nothing and only renews the lease and checks for a cancel.

        Raises:
            JobCanceled: A cancel of the job was requested (the progress is saved first).
            JobLeaseLost: This worker no longer holds the job; nothing was saved.
        """
        if self._lost:
            raise JobLeaseLost(f"job {self.job_id} is no longer held by this worker")
        if self._cancel:
            raise JobCanceled(f"job {self.job_id} was canceled")
        asked_at = time.monotonic()  # the new expiry counts from before the UPDATE
        flag = await store.renew(
            self.sessions, self.job_id, self._lease, self._lease_seconds, progress
        )
        if flag is None:
            self._lost = True
            raise JobLeaseLost(f"job {self.job_id} is no longer held by this worker")
        self._renewed_at = max(self._renewed_at, asked_at)
        if progress is not None:
            self.progress = MappingProxyType(dict(progress))
        if flag:
            self._cancel = True
            raise JobCanceled(f"job {self.job_id} was canceled")

    def _wake(self) -> None:
        """Make the heartbeat look at the job now (a local cancel request)."""
        self._nudge.set()
