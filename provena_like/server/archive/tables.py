"""The table of archived files: one row per file of a storage location.

A row says that the file at ``relative_path`` under the storage location's root holds
``size`` bytes of sha256 ``sha256`` and belongs to ``session``; the SDK writes it only after
the transfer task that put it there succeeded and the archive's copy was read back (or when
``discover`` rebuilt it from what the archive holds). (``location_id``, ``relative_path``)
is unique; deleting the location or the session deletes its rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from provena_like.server.db.base import Base, UTCDateTime

__all__ = ["ArchivedFileRow"]


class ArchivedFileRow(Base):
    """One archived file of a storage location."""

    __tablename__ = "archived_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    location_id: Mapped[str] = mapped_column(
        ForeignKey("registry_items.id", ondelete="CASCADE"), doc="the storage_location item"
    )
    session_id: Mapped[str] = mapped_column(
        ForeignKey("registry_items.id", ondelete="CASCADE"), doc="the session item"
    )
    relative_path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    archived_at: Mapped[datetime] = mapped_column(UTCDateTime())
    recorded_by: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("location_id", "relative_path", name="uq_archived_files_path"),
        Index("ix_archived_files_session", "session_id"),
    )
