"""search kinds

Search terms by kind of name, for ``column:``, ``attribute:``, ``dataset:`` and
``variable:`` queries: ``extracted_files.kinds`` (kind → the file's terms of that kind) and
``extraction_runs.search_kinds`` (kind → the run's terms of that kind, joined), and the
search index made again with a field (SQLite) or a vector (PostgreSQL) per kind.

Results attached before this revision get their kinds here, from the compact metadata the
server kept (:func:`provena_like.extractors.kinds.term_kinds`); the committed runs' search
text is computed again and every item indexed again, in the migration's transaction. A file
whose metadata was cut to its scalars when attached (more than 16 KiB of it) has no names
left to read: attach it again for its kinds.

Revision ID: 0017_search_kinds
Revises: 0016_sign_in_failures
Create Date: 2026-12-06 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from provena_like.extractors.kinds import term_kinds
from provena_like.server.search.documents import SearchText
from provena_like.server.search.index import recreate_sync

revision: str = "0017_search_kinds"
down_revision: str | None = "0016_sign_in_failures"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 500

_files = sa.table(
    "extracted_files",
    sa.column("id", sa.Integer),
    sa.column("run_id", sa.String),
    sa.column("terms", sa.JSON),
    sa.column("kinds", sa.JSON),
    sa.column("extracted", sa.JSON),
)
_runs = sa.table(
    "extraction_runs",
    sa.column("id", sa.String),
    sa.column("state", sa.String),
    sa.column("terms", sa.Integer),
    sa.column("search_text", sa.Text),
    sa.column("search_kinds", sa.JSON),
)


def _kinds_of_files(bind: sa.Connection) -> None:
    """Every stored file's kinds, from its stored metadata and terms."""
    last = 0
    while rows := bind.execute(
        sa.select(_files.c.id, _files.c.terms, _files.c.extracted)
        .where(_files.c.id > last)
        .order_by(_files.c.id)
        .limit(_BATCH)
    ).all():
        for file_id, terms, extracted in rows:
            kinds = term_kinds(extracted or {}, terms or [])
            if kinds:
                bind.execute(sa.update(_files).where(_files.c.id == file_id).values(kinds=kinds))
        last = rows[-1][0]


def _search_text_of_runs(bind: sa.Connection) -> None:
    """Each committed run's search text and kinds, as a commit now makes them."""
    committed = bind.execute(sa.select(_runs.c.id).where(_runs.c.state == "committed"))
    for (run_id,) in committed.all():
        text = SearchText()
        files = bind.execute(
            sa.select(_files.c.terms, _files.c.kinds).where(_files.c.run_id == run_id)
        )
        for terms, kinds in files:
            text.add(terms or (), kinds or {})
        bind.execute(
            sa.update(_runs)
            .where(_runs.c.id == run_id)
            .values(terms=text.count, search_text=text.text, search_kinds=text.kinds)
        )


def upgrade() -> None:
    with op.batch_alter_table("extracted_files", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kinds", sa.JSON(), server_default="{}", nullable=False))
    with op.batch_alter_table("extraction_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("search_kinds", sa.JSON(), server_default="{}", nullable=False)
        )
    bind = op.get_bind()
    _kinds_of_files(bind)
    _search_text_of_runs(bind)
    recreate_sync(bind)


def downgrade() -> None:
    with op.batch_alter_table("extraction_runs", schema=None) as batch_op:
        batch_op.drop_column("search_kinds")
    with op.batch_alter_table("extracted_files", schema=None) as batch_op:
        batch_op.drop_column("kinds")
    recreate_sync(op.get_bind())
