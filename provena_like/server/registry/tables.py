"""Tables of the registry service: items, their access grants, history, lock events, counters.

The reviewer named in a dataset's pending release request is kept on the item row
(``reviewer``), beside the access settings it extends: :mod:`provena_like.server.access`
gives that user read access (metadata and data) until the request is decided.

Access settings live twice, on purpose: as the JSON the API returns (``general_roles``,
``group_roles`` on the item row) and as one :class:`ItemGrantRow` per grantee holding the
strongest role level granted, which is what lets a listing filter by access *inside* SQL
(see :func:`provena_like.server.access.readable_filter`). Both are written together by the
registry service, in the same transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from provena_like.server.db.base import Base, UTCDateTime, utcnow

# SQLite only autoincrements an ``INTEGER PRIMARY KEY``; PostgreSQL gets a BIGINT identity.
AutoId = BigInteger().with_variant(Integer(), "sqlite")


class CounterRow(Base):
    """A named monotonic counter; ``handle`` numbers the items (see ``handles.py``).

    It is bumped inside the writer's transaction, so a rolled-back create consumes nothing.
    """

    __tablename__ = "registry_counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


class ItemRow(Base):
    """A registry item. ``seq`` is the number of its handle and the listing's tiebreak."""

    __tablename__ = "registry_items"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    subtype: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(500))
    name_key: Mapped[str] = mapped_column(String(500), doc="casefolded display_name, for sorting")
    owner: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    general_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    group_roles: Mapped[dict[str, list[str]]] = mapped_column(JSON, default=dict)
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    reviewer: Mapped[str | None] = mapped_column(
        String(64),
        doc="the reviewer named in a pending release request (datasets): reads until they decide",
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    previous_version: Mapped[str | None] = mapped_column(String(255))
    next_version: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        Index("ix_registry_items_created", "created_at", "seq"),
        Index("ix_registry_items_updated", "updated_at", "seq"),
        Index("ix_registry_items_name", "name_key", "seq"),
        Index("ix_registry_items_owner", "owner", "created_at", "seq"),
        Index("ix_registry_items_subtype", "subtype", "created_at", "seq"),
        Index("ix_registry_items_reviewer", "reviewer", "seq"),
    )


class ItemGrantRow(Base):
    """The strongest role granted on an item to everyone signed in (``general``) or a group.

    ``level`` is the 1-based position of the role in ``ROLE_ORDER`` (1 = metadata-read).
    """

    __tablename__ = "registry_item_grants"

    item_id: Mapped[str] = mapped_column(
        ForeignKey("registry_items.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16), primary_key=True, doc="general | group")
    grantee: Mapped[str] = mapped_column(String(64), primary_key=True, doc="'' for general")
    level: Mapped[int] = mapped_column(SmallInteger)

    __table_args__ = (Index("ix_registry_item_grants_grantee", "kind", "grantee", "item_id"),)


class HistoryRow(Base):
    """One recorded state of an item; ``snapshot`` is ``{display_name, record}``."""

    __tablename__ = "registry_history"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("registry_items.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)

    __table_args__ = (Index("ix_registry_history_item", "item_id", "id"),)


class LockEventRow(Base):
    """One lock or unlock of an item."""

    __tablename__ = "registry_lock_events"

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("registry_items.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(8), doc="lock | unlock")
    time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    user: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_registry_lock_events_item", "item_id", "id"),)
