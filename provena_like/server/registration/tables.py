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

Registered files (ALF datasets) are rows of their own, not registry items:

- :class:`RegisteredDatasetRow`: one row per (session, collection, name, revision), unique
  together; ``revision_seq`` numbers the revisions of one (session, collection, name) 1, 2,
  ... in registration order (unique too): the server's order of revisions. A partial unique
  index keeps at most one ``is_default`` row per dataset (SQLite and PostgreSQL both have
  them).
- :class:`DatasetTagRow`: the tags on a registered dataset; a dataset is protected iff one
  of its tags' records says ``protected``.
- :class:`FileRecordRow`: where a registered dataset's file is: one per (dataset,
  repository), and a repository's ``relative_path`` is unique. ``exists`` is the caller's
  claim when ``verified_at`` is None (the server can't look into POSIX or Globus
  repositories).
- :class:`PatchRow`: a committed patch (``POST /registry/patches``): its id (the caller's
  uuid, the primary key: a patch commits at most once), a fingerprint of its request and
  the answer it got (replayed to a retry of the same request).
- :class:`DatasetPatchRow`: the history of a registered dataset's content: one row per file
  of a patch, with the revision's size, hashes and version before and after, and each
  repository's relative path before and after.
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
    String,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from provena_like.server.db.base import Base, UTCDateTime


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


class RegisteredDatasetRow(Base):
    """One revision of an ALF dataset of a session (see the module's docstring)."""

    __tablename__ = "registration_datasets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, doc="a uuid")
    session_id: Mapped[str] = mapped_column(ForeignKey("registry_items.id", ondelete="CASCADE"))
    collection: Mapped[str] = mapped_column(String(512), doc="'' or folders joined by '/'")
    name: Mapped[str] = mapped_column(String(255), doc="ALF dataset name, no UUID")
    revision: Mapped[str] = mapped_column(String(255), doc="'' for none")
    revision_seq: Mapped[int] = mapped_column(Integer, doc="1, 2, ... per dataset")
    dataset_type_id: Mapped[str] = mapped_column(String(255))
    data_format_id: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    is_default: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(
        String(16),
        default="active",
        server_default="active",
        doc="'active', or 'deleting' once its deletion began (no more writes of its content)",
    )
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint(
            "session_id", "collection", "name", "revision", name="uq_registration_datasets_revision"
        ),
        UniqueConstraint(
            "session_id", "collection", "name", "revision_seq", name="uq_registration_datasets_seq"
        ),
        Index(
            "uq_registration_datasets_default",
            "session_id",
            "collection",
            "name",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
        Index("ix_registration_datasets_type", "dataset_type_id"),
    )


class DatasetTagRow(Base):
    """A tag (a ``tag`` record's handle) on a registered dataset."""

    __tablename__ = "registration_dataset_tags"

    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("registration_datasets.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[str] = mapped_column(String(255), primary_key=True)


class FileRecordRow(Base):
    """Where a registered dataset's file is in a repository."""

    __tablename__ = "registration_file_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("registration_datasets.id", ondelete="CASCADE")
    )
    repository_id: Mapped[str] = mapped_column(String(255))
    relative_path: Mapped[str] = mapped_column(String(1024))
    exists: Mapped[bool] = mapped_column(Boolean)
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        UniqueConstraint("dataset_id", "repository_id", name="uq_registration_file_records_repo"),
        UniqueConstraint(
            "repository_id", "relative_path", name="uq_registration_file_records_path"
        ),
    )


class PatchRow(Base):
    """A committed patch: what was asked (its fingerprint), by whom, and the answer."""

    __tablename__ = "registration_patches"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, doc="the caller's uuid")
    fingerprint: Mapped[str] = mapped_column(String(64), doc="sha256 of the user and request")
    force: Mapped[bool] = mapped_column(Boolean)
    answer: Mapped[dict[str, Any]] = mapped_column(JSON, doc="the committed answer, replayed")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DatasetPatchRow(Base):
    """One file of a patch: a registered dataset's content before and after."""

    __tablename__ = "registration_dataset_patches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patch_id: Mapped[str] = mapped_column(ForeignKey("registration_patches.id", ondelete="CASCADE"))
    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("registration_datasets.id", ondelete="CASCADE")
    )
    old_size: Mapped[int] = mapped_column(BigInteger)
    new_size: Mapped[int] = mapped_column(BigInteger)
    old_sha256: Mapped[str] = mapped_column(String(64))
    new_sha256: Mapped[str] = mapped_column(String(64))
    old_md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    new_md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    old_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    new_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    paths: Mapped[dict[str, Any]] = mapped_column(
        JSON, doc="repository -> {'old': relative path or None, 'new': relative path}"
    )
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("patch_id", "dataset_id", name="uq_registration_dataset_patches_file"),
        Index("ix_registration_dataset_patches_dataset", "dataset_id", "id"),
    )
