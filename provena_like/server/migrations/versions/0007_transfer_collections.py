"""transfer collections

The transfer service's collection index (``transfer_collections``): a collection UUID per
dataset (an S3 collection) and per ``transfer_collection`` item (a directory of the server).
New items get their row from the registry's post-write hook; this migration writes the rows
of the datasets that exist already, with the same UUIDs the hook computes (uuid5 of the
fixed namespace below and the handle).

Revision ID: 0007_transfer_collections
Revises: 0006_registered_files
Create Date: 2026-12-06 05:12:44.180385
"""

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_transfer_collections"
down_revision: str | None = "0006_registered_files"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# provena_like.server.transfer.index.COLLECTION_NAMESPACE, frozen here
_NAMESPACE = uuid.UUID("0b4f6c5e-6f1d-5a8e-9d3c-2f7a9e1c4b10")


def upgrade() -> None:
    table = op.create_table(
        "transfer_collections",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("item_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["registry_items.id"],
            name=op.f("fk_transfer_collections_item_id_registry_items"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfer_collections")),
        sa.UniqueConstraint("item_id", name=op.f("uq_transfer_collections_item_id")),
    )
    items = sa.table("registry_items", sa.column("id"), sa.column("subtype"))
    handles = op.get_bind().scalars(sa.select(items.c.id).where(items.c.subtype == "dataset"))
    rows = [
        {"id": str(uuid.uuid5(_NAMESPACE, handle)), "item_id": handle, "kind": "s3"}
        for handle in handles
    ]
    if rows:
        op.bulk_insert(table, rows)


def downgrade() -> None:
    op.drop_table("transfer_collections")
