"""The reference server's one job runner: durable jobs in the database.

Transfer tasks and server-side crawls run on it. A component registers a handler per job
kind on ``app.state.job_runner`` (a :class:`JobRunner`, made by ``create_app``), enqueues jobs
in its own transactions, and reads them back with :meth:`JobRunner.get`; the app's lifespan
runs the workers. See :mod:`provena_like.server.jobs.runner` for the guarantees.

Public names: :class:`JobRunner`, :data:`JobHandler`, :class:`JobContext`,
:class:`JobRecord`, :class:`JobState`, and the handler signals :class:`JobCanceled`,
:class:`JobLeaseLost`, :class:`JobRetry`; :func:`after_commit` runs an action once a
session's transaction commits.
"""

from provena_like.server.jobs.context import JobContext
from provena_like.server.jobs.model import (
    JobCanceled,
    JobLeaseLost,
    JobRecord,
    JobRetry,
    JobState,
)
from provena_like.server.jobs.runner import JobHandler, JobRunner, after_commit

__all__ = [
    "JobCanceled",
    "JobContext",
    "JobHandler",
    "JobLeaseLost",
    "JobRecord",
    "JobRetry",
    "JobRunner",
    "JobState",
    "after_commit",
]
