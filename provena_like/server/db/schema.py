"""Bring the database schema to the current version with the Alembic migrations.

Developers add a revision after changing tables with:

```text
python -m provena_like.server.db.schema revision "what changed"
```
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

_SCRIPTS = str(Path(__file__).resolve().parent.parent / "migrations")


def alembic_config(url: str | None = None) -> Config:
    """An Alembic configuration pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", _SCRIPTS)
    if url:
        cfg.set_main_option("sqlalchemy.url", url)
    return cfg


def _upgrade(connection: Connection) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "heads")


MIGRATION_LOCK = 0x70726F76
"""The PostgreSQL advisory lock key under which the schema is upgraded."""


async def upgrade_schema(engine: AsyncEngine) -> None:
    """Create or migrate the schema to the newest revision, in one transaction.

    On PostgreSQL the transaction first takes an advisory lock, so that servers starting at
    once on one database (API workers on several hosts) migrate one after the other; the
    workers of one ``serve`` also take turns through
    :func:`~provena_like.server.startup.startup_lock`, which covers SQLite.
    """
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        await conn.run_sync(_upgrade)


def _main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[0] != "revision":
        raise SystemExit('usage: python -m provena_like.server.db.schema revision "message"')
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/schema.db"
        cfg = alembic_config(url)
        command.upgrade(cfg, "heads")
        command.revision(cfg, message=argv[1], autogenerate=True)


if __name__ == "__main__":
    _main(sys.argv[1:])
