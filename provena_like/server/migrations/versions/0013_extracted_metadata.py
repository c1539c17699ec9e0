"""extracted metadata

Extraction runs of datasets and the files of each run (``extraction_runs``,
``extracted_files``: see :mod:`provena_like.server.extracted.tables`), and a search index
with an ``extracted`` field for their terms: the index objects are made again by the
backend (:mod:`provena_like.server.search.sqlite_fts`,
:mod:`provena_like.server.search.postgres_fts`) and every item is indexed again, in the
migration's transaction.

Revision ID: 0013_extracted_metadata
Revises: 0012_archived_files
Create Date: 2026-12-06 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import provena_like.server.db.base
from provena_like.server.search.index import recreate_sync

revision: str = "0013_extracted_metadata"
down_revision: str | None = "0012_archived_files"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild_index() -> None:
    recreate_sync(op.get_bind())


def upgrade() -> None:
    op.create_table(
        "extraction_runs",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("dataset_id", sa.String(length=255), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=2048), nullable=True),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("terms", sa.Integer(), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", provena_like.server.db.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "committed_at", provena_like.server.db.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["registry_items.id"],
            name=op.f("fk_extraction_runs_dataset_id_registry_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_extraction_runs")),
    )
    op.create_index(
        "ix_extraction_runs_dataset_state", "extraction_runs", ["dataset_id", "state"], unique=False
    )
    op.create_table(
        "extracted_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("path", sa.String(length=1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("extractors", sa.JSON(), nullable=False),
        sa.Column("terms", sa.JSON(), nullable=False),
        sa.Column("extracted", sa.JSON(), nullable=False),
        sa.Column("errors", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["extraction_runs.id"],
            name=op.f("fk_extracted_files_run_id_extraction_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_extracted_files")),
        sa.UniqueConstraint("run_id", "path", name="uq_extracted_files_path"),
    )
    _rebuild_index()


def downgrade() -> None:
    op.drop_table("extracted_files")
    op.drop_index("ix_extraction_runs_dataset_state", table_name="extraction_runs")
    op.drop_table("extraction_runs")
    _rebuild_index()
