"""Tables of registration: the indexes that make the registry's records unique and findable.

The records themselves are registry items (``registry_items``); these rows are kept in step
with them by :mod:`provena_like.server.registration.index`, in the writer's transaction, and
carry the database constraints that make uniqueness hold under concurrent writers:

- :class:`RecordNameRow`: one row per named record (a lab, a subject, a dataset type, a data
  format, a repository, a tag); its primary key (``subtype``, ``scope``, ``name``) is what
  makes a name unique - globally (``scope`` ``''``) or within a lab (a subject's nickname).
- :class:`SessionIndexRow`: one row per session; the unique constraint on (``subject_id``,
  ``date``, ``number``) is what keeps two sessions from sharing a number. ``date`` is the
  ISO date (``YYYY-MM-DD``), which sorts and compares as text on every backend.
"""

from __future__ import annotations

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from provena_like.server.db.base import Base


class RecordNameRow(Base):
    """The unique name of a record: its subtype, its scope (a lab's handle or ``''``), name.

    ``name`` is case-folded, so names differing only in case collide.
    """

    __tablename__ = "registration_names"

    subtype: Mapped[str] = mapped_column(String(64), primary_key=True)
    scope: Mapped[str] = mapped_column(String(255), primary_key=True, doc="'' or a lab handle")
    name: Mapped[str] = mapped_column(String(255), primary_key=True, doc="case-folded")
    item_id: Mapped[str] = mapped_column(
        ForeignKey("registry_items.id", ondelete="CASCADE"), unique=True
    )


class SessionIndexRow(Base):
    """A session's place: subject, date and number (unique together), and its lab."""

    __tablename__ = "registration_sessions"

    item_id: Mapped[str] = mapped_column(
        ForeignKey("registry_items.id", ondelete="CASCADE"), primary_key=True
    )
    subject_id: Mapped[str] = mapped_column(String(255))
    lab_id: Mapped[str] = mapped_column(String(255))
    date: Mapped[str] = mapped_column(String(10), doc="ISO date, YYYY-MM-DD")
    number: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        UniqueConstraint("subject_id", "date", "number", name="uq_registration_sessions_number"),
        Index("ix_registration_sessions_lab", "lab_id", "date", "number"),
        Index("ix_registration_sessions_date", "date", "number"),
    )
