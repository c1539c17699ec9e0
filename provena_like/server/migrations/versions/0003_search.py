"""search index

The full-text index of registry items, in the form of the database's own search engine:
an FTS5 virtual table on SQLite, a side table with a ``tsvector`` column and a GIN index
(plus the ``provena_search`` text search configuration) on PostgreSQL. The DDL lives with
the backends (:mod:`provena_like.server.search.sqlite_fts`,
:mod:`provena_like.server.search.postgres_fts`); the items already registered are indexed
here, in the migration's transaction.

Revision ID: 0003_search
Revises: 0002_datastore
Create Date: 2026-11-23 10:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

from provena_like.server.search.backend import backend_for
from provena_like.server.search.index import rebuild_sync

revision: str = "0003_search"
down_revision: str | None = "0002_datastore"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    for stmt in backend_for(bind.dialect.name).create_ddl():
        op.execute(stmt)
    rebuild_sync(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for stmt in backend_for(bind.dialect.name).drop_ddl():
        op.execute(stmt)
