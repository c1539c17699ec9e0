"""Alembic environment: migrations run on a connection handed over by the server."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from provena_like.server.db import tables  # noqa: F401  (registers every table)
from provena_like.server.db.base import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
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
