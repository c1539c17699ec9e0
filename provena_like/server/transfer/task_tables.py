"""Tables of the transfer service's tasks: the task, its files, its events.

A **task** (:class:`TaskRow`) is one submitted transfer or delete: its options as submitted,
where it stands (``status``, counters, ``fatal_error``) and who owns it; its id is also the id
of the job that runs it (:mod:`provena_like.server.jobs`), and both rows are written in one
transaction. ``submission_id`` is unique, so a re-submitted document finds the task made the
first time (Globus's ``Duplicate``). ``paths_key`` is a digest of the task's type, collections
and items: two *active* tasks with the same one are "identical paths" (409 ``Conflict``).

A **task item** (:class:`TaskItemRow`) is one file (or, for deletes, one path) the executor
found when it expanded the submitted items; its ``state`` says whether it was copied and
verified, skipped by the sync level, skipped as a source error, or failed. A restarted task
resumes from these rows: done files are not copied again.

An **event** (:class:`TaskEventRow`) is one line of the task's ``event_list``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from provena_like.server.db.base import Base, UTCDateTime, utcnow

__all__ = ["TaskEventRow", "TaskItemRow", "TaskRow"]


class TaskRow(Base):
    """One transfer or delete task."""

    __tablename__ = "transfer_tasks"

    task_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(8), doc="TRANSFER | DELETE")
    owner: Mapped[str] = mapped_column(String(64))
    label: Mapped[str | None] = mapped_column(String(128))
    submission_id: Mapped[str] = mapped_column(String(64), unique=True)
    source_collection: Mapped[str | None] = mapped_column(String(36))
    destination_collection: Mapped[str | None] = mapped_column(String(36))
    options: Mapped[dict[str, Any]] = mapped_column(JSON, doc="the submitted document")
    paths_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), doc="ACTIVE | INACTIVE | SUCCEEDED | FAILED")
    nice_status: Mapped[str | None] = mapped_column(String(64))
    files: Mapped[int] = mapped_column(Integer, default=0)
    directories: Mapped[int] = mapped_column(Integer, default=0)
    files_transferred: Mapped[int] = mapped_column(Integer, default=0)
    files_skipped: Mapped[int] = mapped_column(Integer, default=0)
    bytes_transferred: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_checksummed: Mapped[int] = mapped_column(BigInteger, default=0)
    subtasks_failed: Mapped[int] = mapped_column(Integer, default=0)
    subtasks_skipped_errors: Mapped[int] = mapped_column(Integer, default=0)
    faults: Mapped[int] = mapped_column(Integer, default=0)
    fatal_error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    request_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    completion_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_transfer_tasks_owner", "owner", "request_time"),
        Index("ix_transfer_tasks_paths", "paths_key", "status"),
    )


class TaskItemRow(Base):
    """One file (or delete path) of a task, as the executor expanded it."""

    __tablename__ = "transfer_task_items"

    task_id: Mapped[str] = mapped_column(
        ForeignKey("transfer_tasks.task_id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    source_path: Mapped[str] = mapped_column(Text)
    destination_path: Mapped[str | None] = mapped_column(Text)
    is_directory: Mapped[bool] = mapped_column(Boolean, default=False)
    size: Mapped[int | None] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(
        String(16), doc="pending | done (moved) | skipped (by sync) | error (skipped) | failed"
    )
    checksum: Mapped[str | None] = mapped_column(String(64), doc="sha256, when verified")
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (Index("ix_transfer_task_items_state", "task_id", "state", "seq"),)


class TaskEventRow(Base):
    """One event of a task's ``event_list``."""

    __tablename__ = "transfer_task_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(
        ForeignKey("transfer_tasks.task_id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(255))
    details: Mapped[str] = mapped_column(Text, default="")
    is_error: Mapped[bool] = mapped_column(Boolean, default=False)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
