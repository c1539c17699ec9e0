"""search field vectors

The PostgreSQL search table gets ``extracted_vector``, the words of the ``extracted`` field
on their own, so a query can limit a term to that field (``extracted:temperature``; see
:mod:`provena_like.server.search.postgres_fts`). The index objects are made again by the
backend and every item is indexed again, in the migration's transaction (SQLite's FTS5 table
has a column per field already; it is rebuilt the same way, unchanged).

Revision ID: 0015_search_field_vectors
Revises: 0014_crawl_jobs
Create Date: 2026-12-06 20:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

from provena_like.server.search.index import recreate_sync

revision: str = "0015_search_field_vectors"
down_revision: str | None = "0014_crawl_jobs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _rebuild_index() -> None:
    recreate_sync(op.get_bind())


def upgrade() -> None:
    _rebuild_index()


def downgrade() -> None:
    _rebuild_index()
