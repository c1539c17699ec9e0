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
from sqlalchemy import Connection
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


async def upgrade_schema(engine: AsyncEngine) -> None:
    """Create or migrate the schema to the newest revision, in one transaction."""
    async with engine.begin() as conn:
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
