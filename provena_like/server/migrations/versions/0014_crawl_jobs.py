"""crawl jobs

Server-side crawl jobs (``crawl_jobs``), their result rows with their delivery state
(``crawl_job_results``) and their events (``crawl_job_events``): see
:mod:`provena_like.server.crawl.tables`. New tables only.

Revision ID: 0014_crawl_jobs
Revises: 0013_extracted_metadata
Create Date: 2026-12-06 16:38:41.309840
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import provena_like.server.db.base

revision: str = "0014_crawl_jobs"
down_revision: str | None = "0013_extracted_metadata"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "crawl_jobs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("source", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("files", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("groups", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "created_at", provena_like.server.db.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "started_at", provena_like.server.db.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "finished_at", provena_like.server.db.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "updated_at", provena_like.server.db.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crawl_jobs")),
    )
    with op.batch_alter_table("crawl_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_crawl_jobs_owner", ["owner", "created_at"], unique=False)

    op.create_table(
        "crawl_job_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("time", provena_like.server.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["crawl_jobs.id"],
            name=op.f("fk_crawl_job_events_job_id_crawl_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crawl_job_events")),
    )
    with op.batch_alter_table("crawl_job_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_crawl_job_events_job_id"), ["job_id"], unique=False)

    op.create_table(
        "crawl_job_results",
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("delivery", sa.String(length=8), nullable=False),
        sa.Column("lease", sa.String(length=64), nullable=True),
        sa.Column(
            "lease_expires_at",
            provena_like.server.db.base.UTCDateTime(timezone=True),
            nullable=True,
        ),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"],
            ["crawl_jobs.id"],
            name=op.f("fk_crawl_job_results_job_id_crawl_jobs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("job_id", "seq", name=op.f("pk_crawl_job_results")),
        sa.UniqueConstraint("job_id", "key", name="uq_crawl_job_results_key"),
    )
    with op.batch_alter_table("crawl_job_results", schema=None) as batch_op:
        batch_op.create_index(
            "ix_crawl_job_results_delivery", ["job_id", "delivery", "seq"], unique=False
        )
        batch_op.create_index("ix_crawl_job_results_lease", ["job_id", "lease"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("crawl_job_results", schema=None) as batch_op:
        batch_op.drop_index("ix_crawl_job_results_lease")
        batch_op.drop_index("ix_crawl_job_results_delivery")

    op.drop_table("crawl_job_results")
    with op.batch_alter_table("crawl_job_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_crawl_job_events_job_id"))

    op.drop_table("crawl_job_events")
    with op.batch_alter_table("crawl_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_crawl_jobs_owner")

    op.drop_table("crawl_jobs")
