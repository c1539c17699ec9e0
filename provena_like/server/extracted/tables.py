"""The tables of extracted metadata: extraction runs of a dataset, and the files of each run.

A dataset has at most one ``committed`` run: its current extracted metadata. Other runs are
``open`` (taking batches); committing one deletes the dataset's previous committed run (its
files go with it, by cascade) in the same transaction. ``search_text`` holds the run's
distinct terms, joined, as search indexes them, and ``search_kinds`` the same per kind of name
(``{"column": "site · temperature"}``: see :data:`provena_like.models.extracted.SearchKind`),
both set at commit. Deleting the dataset's item
deletes its runs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from provena_like.server.db.base import Base, UTCDateTime

__all__ = ["ExtractedFileRow", "ExtractionRunRow"]


class ExtractionRunRow(Base):
    """One extraction run of a dataset."""

    __tablename__ = "extraction_runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(
        ForeignKey("registry_items.id", ondelete="CASCADE"), doc="the dataset item"
    )
    state: Mapped[str] = mapped_column(String(16), doc="open or committed")
    source: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    files: Mapped[int] = mapped_column(Integer, default=0)
    terms: Mapped[int] = mapped_column(Integer, default=0)
    search_text: Mapped[str] = mapped_column(Text, default="")
    search_kinds: Mapped[dict[str, str]] = mapped_column(
        JSON, default=dict, server_default="{}", doc="kind → its terms, joined"
    )
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    committed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (Index("ix_extraction_runs_dataset_state", "dataset_id", "state"),)


class ExtractedFileRow(Base):
    """One file of an extraction run."""

    __tablename__ = "extracted_files"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("extraction_runs.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    extractors: Mapped[list[str]] = mapped_column(JSON, default=list)
    terms: Mapped[list[str]] = mapped_column(JSON, default=list)
    kinds: Mapped[dict[str, list[str]]] = mapped_column(
        JSON, default=dict, server_default="{}", doc="kind → the terms of that kind"
    )
    extracted: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, doc="the metadata")
    errors: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)

    __table_args__ = (UniqueConstraint("run_id", "path", name="uq_extracted_files_path"),)
