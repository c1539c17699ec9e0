"""external identities

The links of subjects at trusted issuers to users (``external_identities``): see
:class:`provena_like.server.db.identity.ExternalIdentityRow`. A new table only.

Revision ID: 0011_external_identities
Revises: 0010_dataset_patches
Create Date: 2026-12-06 08:55:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import provena_like.server.db.base

revision: str = "0011_external_identities"
down_revision: str | None = "0010_dataset_patches"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "external_identities",
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column(
            "created_at", provena_like.server.db.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.ForeignKeyConstraint(["username"], ["users.username"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("issuer", "subject"),
    )
    op.create_index(
        op.f("ix_external_identities_username"), "external_identities", ["username"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_external_identities_username"), table_name="external_identities")
    op.drop_table("external_identities")
