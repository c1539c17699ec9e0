"""sign-in failures

The counts of failed sign-ins (``sign_in_failures``), shared by every server process: see
:mod:`provena_like.server.auth.throttle`. A new table only; counts kept in process memory
before it are not carried over (every key starts open).

Revision ID: 0016_sign_in_failures
Revises: 0015_search_field_vectors
Create Date: 2026-12-06 19:39:51.468977
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_sign_in_failures"
down_revision: str | None = "0015_search_field_vectors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure", sa.Float(), nullable=False),
        sa.Column("locked_until", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "digest", name=op.f("pk_sign_in_failures")),
    )
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sign_in_failures_last_failure"), ["last_failure"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sign_in_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sign_in_failures_last_failure"))

    op.drop_table("sign_in_failures")
