"""The public types of the job runner: states, the snapshot of a job, handler signals."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class JobState(StrEnum):
    """Where a job stands. ``succeeded``, ``failed`` and ``canceled`` are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def final(self) -> bool:
        """Whether the job will never run again."""
        return self in _FINAL


_FINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELED})


class JobCanceled(Exception):  # noqa: N818 - a signal, not an error of the caller
    """Raised by :meth:`JobContext.checkpoint` once a cancel of the job was requested.

    A handler lets it propagate (after cleaning up); the job then ends ``canceled``.
    """


class JobLeaseLost(JobCanceled):
    """Raised by :meth:`JobContext.checkpoint` when this worker no longer holds the job.

    Its lease lapsed (the process stalled longer than the lease, or lost the database) and
    another worker may have taken the job over: stop at once and write nothing more. It is a
    :class:`JobCanceled`, so a handler that cleans up on cancel does so here too.
    """


class JobRetry(Exception):  # noqa: N818 - a signal, not an error of the caller
    """Raise it from a handler to run the job again later (a transient failure).

    The job goes back to ``queued`` (its saved progress kept) and runs again after ``delay``
    seconds, while attempts are left; on the last attempt it ends ``failed`` with this
    message. Any other exception fails the job at once.

    Args:
        message: Why the attempt failed; recorded as the job's error.
        delay: Seconds to wait before the next attempt.
    """

    def __init__(self, message: str, *, delay: float = 0.0) -> None:
        super().__init__(message)
        self.delay = max(0.0, delay)


@dataclass(frozen=True)
class JobRecord:
    """A snapshot of one job, as :meth:`JobRunner.get` read it.

    Attributes:
        id: The job's id (a UUID string).
        kind: Which handler runs it.
        payload: What the handler was given.
        state: Where it stands.
        attempts: Attempts made so far (a claim given back at a clean shutdown is not one).
        max_attempts: Attempts allowed before it fails.
        cancel_requested: Whether someone asked to cancel it.
        progress: What its handler last saved with ``checkpoint``.
        result: What its handler returned (``succeeded`` jobs).
        error: ``{"type", "message", "attempt"}`` of the last failure, or ``None``.
        owner: The user it runs for, if any.
        lease_owner: The claim running it now (``running`` jobs).
        lease_expires_at: When that claim lapses unless renewed.
        created_at: When it was enqueued.
        started_at: When its first attempt started.
        finished_at: When it reached a final state.
        updated_at: When its row last changed (a heartbeat included).
    """

    id: str
    kind: str
    payload: Mapping[str, Any]
    state: JobState
    attempts: int
    max_attempts: int
    cancel_requested: bool
    progress: Mapping[str, Any]
    result: Mapping[str, Any] | None
    error: Mapping[str, Any] | None
    owner: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime

    @property
    def finished(self) -> bool:
        """Whether the job reached a final state."""
        return self.state.final
