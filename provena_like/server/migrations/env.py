"""Alembic environment: migrations run on a connection handed over by the server."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import Connection, create_engine

from provena_like.server.db import tables  # noqa: F401  (registers every table)
from provena_like.server.db.base import Base
from provena_like.server.search.backend import is_index_table

config = context.config
target_metadata = Base.metadata


def _include_name(name: str | None, type_: str, _parents: Any) -> bool:
    """Leave the search index tables out of the comparison with the declared metadata.

    They (FTS5 and its shadow tables, or the PostgreSQL side table) are dialect-specific
    DDL made by the ``0002_search`` migration, not part of ``Base.metadata``.
    """
    return not (type_ == "table" and is_index_table(name))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        include_name=_include_name,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:  # the alembic CLI, for developers generating revisions
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.begin() as conn:
        _run(conn)
