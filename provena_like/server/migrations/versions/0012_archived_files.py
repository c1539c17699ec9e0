"""archived files

The archive's records of files in storage locations (``archived_files``): see
:class:`provena_like.server.archive.tables.ArchivedFileRow`. A new table only.

Revision ID: 0012_archived_files
Revises: 0011_external_identities
Create Date: 2026-12-06 14:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import provena_like.server.db.base

revision: str = "0012_archived_files"
down_revision: str | None = "0011_external_identities"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "archived_files",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("location_id", sa.String(length=255), nullable=False),
        sa.Column("session_id", sa.String(length=255), nullable=False),
        sa.Column("relative_path", sa.String(length=1024), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("task_id", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=2048), nullable=True),
        sa.Column(
            "archived_at", provena_like.server.db.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["location_id"],
            ["registry_items.id"],
            name=op.f("fk_archived_files_location_id_registry_items"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["registry_items.id"],
            name=op.f("fk_archived_files_session_id_registry_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archived_files")),
        sa.UniqueConstraint("location_id", "relative_path", name="uq_archived_files_path"),
    )
    op.create_index("ix_archived_files_session", "archived_files", ["session_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_archived_files_session", table_name="archived_files")
    op.drop_table("archived_files")
