"""Bring the database schema to the current version (Alembic migrations)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from provena_like.server.db.base import Base


async def upgrade_schema(engine: AsyncEngine) -> None:
    """Create or migrate the schema. Importing the table modules registers them."""
    from provena_like.server.db import tables  # noqa: F401  (registers every table)

    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
