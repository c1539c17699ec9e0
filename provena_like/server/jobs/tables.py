"""The ``jobs`` table: one row per job of the server's job runner.

A row is the whole state of a job; the runner keeps nothing else that matters. Workers claim a
row with one compare-and-set ``UPDATE`` (see :mod:`provena_like.server.jobs.store`), so the
indexes serve the two claim conditions: queued jobs in creation order, and running jobs whose
lease has expired.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from provena_like.server.db.base import Base, UTCDateTime, utcnow


class JobRow(Base):
    """A durable job: what to run (``kind``, ``payload``) and where it stands.

    ``attempts`` counts the claims of the job that count (a claim given back at a clean
    shutdown does not); ``lease_owner`` is unique per claim, so only the worker holding the
    current claim can renew it or write the outcome; ``lease_expires_at`` is when another
    worker may take the job over. ``run_after`` delays a job that asked to be retried later.
    """

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    run_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    owner: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        Index("ix_jobs_claim", "state", "created_at"),
        Index("ix_jobs_lease", "state", "lease_expires_at"),
        Index("ix_jobs_kind", "kind", "state"),
        Index("ix_jobs_owner", "owner", "created_at"),
    )
