"""Tables of the release workflow: the release history of each dataset.

The workflow's current state lives with the dataset (``datastore_datasets.release_*``) and
the pending request's reviewer on the item row (``registry_items.reviewer``); this table
keeps every step, so the history survives however often a dataset goes round.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from provena_like.server.db.base import Base, UTCDateTime, utcnow
from provena_like.server.registry.tables import AutoId


class ReleaseEventRow(Base):
    """One step of a dataset's release workflow: who, when, what, notes, which reviewer."""

    __tablename__ = "datastore_release_events"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("registry_items.id", ondelete="CASCADE"))
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16), doc="request | approve | reject | withdraw")
    notes: Mapped[str] = mapped_column(Text, default="")
    reviewer: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), doc="the release status after the step")

    __table_args__ = (Index("ix_datastore_release_events_item", "item_id", "id"),)
