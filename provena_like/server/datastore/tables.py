"""Tables of the datastore service: datasets' storage and release state, keywords, manifest.

A dataset is a registry item (``registry_items``, subtype ``dataset``) plus one
:class:`DatasetRow`. Its keywords are copied into :class:`DatasetKeywordRow` (one row per
keyword) so that the listing filters by keyword inside SQL on any backend; they are rewritten
in the same transaction as the record. :class:`ManifestRow` records each registered file.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from provena_like.server.db.base import Base, UTCDateTime, utcnow


class DatasetRow(Base):
    """Where a dataset's objects live and where it is in review.

    The release workflow (:mod:`provena_like.server.review`) keeps its state here: the
    status, who asked and when, who approved; the reviewer of a pending request is on the
    item row (``registry_items.reviewer``), because it grants read access.
    """

    __tablename__ = "datastore_datasets"

    item_id: Mapped[str] = mapped_column(
        ForeignKey("registry_items.id", ondelete="CASCADE"), primary_key=True
    )
    repository: Mapped[str] = mapped_column(String(64), default="default")
    bucket: Mapped[str] = mapped_column(String(255))
    prefix: Mapped[str] = mapped_column(String(1024), doc='key prefix, ending with "/"')
    release_status: Mapped[str] = mapped_column(String(16), default="NOT_RELEASED")
    release_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    release_requester: Mapped[str | None] = mapped_column(String(64))
    release_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    release_approver: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_datastore_datasets_release_status", "release_status"),
        Index("ix_datastore_datasets_release_time", "release_time"),
        Index("ix_datastore_datasets_requester", "release_requester", "release_status"),
    )


class DatasetKeywordRow(Base):
    """One keyword of a dataset's ``dataset_info.keywords`` (exact, case-sensitive)."""

    __tablename__ = "datastore_dataset_keywords"

    item_id: Mapped[str] = mapped_column(
        ForeignKey("registry_items.id", ondelete="CASCADE"), primary_key=True
    )
    keyword: Mapped[str] = mapped_column(String(200), primary_key=True)

    __table_args__ = (Index("ix_datastore_dataset_keywords_keyword", "keyword", "item_id"),)


class ManifestRow(Base):
    """A registered file of a dataset: its checksums and the ETag it had when registered."""

    __tablename__ = "datastore_files"

    item_id: Mapped[str] = mapped_column(
        ForeignKey("registry_items.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    md5: Mapped[str | None] = mapped_column(String(32))
    etag: Mapped[str] = mapped_column(String(128))
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    registered_by: Mapped[str] = mapped_column(String(64))
