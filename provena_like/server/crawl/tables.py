"""Tables of server-side crawl jobs: the job, its result rows, its events.

A **crawl job** (:class:`CrawlJobRow`) is one requested crawl: what it crawls, with which
options, for whom, where it stands and its counters. Its id is also the id of the job of the
server's job runner that runs it (:mod:`provena_like.server.jobs`); both rows are written in
one transaction.

A **result** (:class:`CrawlResultRow`) is one record the crawl produced (a file, a group or a
directory it could not read), numbered by ``seq`` in the order stored. ``key`` identifies the
record within the job (a digest of its kind and path or group id): a run resumed after a
restart walks the source again and stores only what is not there yet. ``delivery`` is where
the record stands in the at-least-once delivery of ``flush``/``ack``: ``pending`` (never
leased), ``leased`` (to ``lease`` until ``lease_expires_at``: after that it is delivered
again) or ``acked``.

An **event** (:class:`CrawlEventRow`) is one line of the job's history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from provena_like.server.db.base import Base, UTCDateTime, utcnow

__all__ = ["CrawlEventRow", "CrawlJobRow", "CrawlResultRow"]


class CrawlJobRow(Base):
    """One server-side crawl job."""

    __tablename__ = "crawl_jobs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    source: Mapped[dict[str, Any]] = mapped_column(JSON, doc="dataset/collection, path, id")
    options: Mapped[dict[str, Any]] = mapped_column(JSON, doc="the crawl options requested")
    state: Mapped[str] = mapped_column(
        String(16), doc="queued | running | succeeded | failed | canceled"
    )
    files: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    groups: Mapped[int] = mapped_column(Integer, default=0)
    errors: Mapped[int] = mapped_column(Integer, default=0)
    records: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_crawl_jobs_owner", "owner", "created_at"),)


class CrawlResultRow(Base):
    """One record a crawl job produced, and where its delivery stands."""

    __tablename__ = "crawl_job_results"

    job_id: Mapped[str] = mapped_column(
        ForeignKey("crawl_jobs.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(8), doc="file | group | error")
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    delivery: Mapped[str] = mapped_column(String(8), doc="pending | leased | acked")
    lease: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deliveries: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        UniqueConstraint("job_id", "key", name="uq_crawl_job_results_key"),
        Index("ix_crawl_job_results_delivery", "job_id", "delivery", "seq"),
        Index("ix_crawl_job_results_lease", "job_id", "lease"),
    )


class CrawlEventRow(Base):
    """One event of a crawl job."""

    __tablename__ = "crawl_job_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("crawl_jobs.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
