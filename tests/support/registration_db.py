"""Reading the reference server's own database in registration tests (SQLite or PostgreSQL)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncConnection

from provena_like.server.db.base import create_engine
from provena_like.testing.server_thread import ServerThread


@asynccontextmanager
async def database(server: ServerThread) -> AsyncIterator[AsyncConnection]:
    """A connection to the server's own database (SQLite or PostgreSQL), committing at exit."""
    engine = create_engine(server.settings.resolved_database_url)
    try:
        async with engine.begin() as connection:
            yield connection
    finally:
        await engine.dispose()


async def rows_of(server: ServerThread, session: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every registration row of a session's datasets, read from the server's database."""
    async with database(server) as db:
        datasets = [
            tuple(r)
            for r in await db.execute(
                text("SELECT * FROM registration_datasets WHERE session_id = :s ORDER BY id"),
                {"s": session},
            )
        ]
        ids = [r[0] for r in datasets] or [""]
        records = [
            tuple(r)
            for r in await db.execute(
                text(
                    "SELECT * FROM registration_file_records WHERE dataset_id IN :ids ORDER BY id"
                ).bindparams(bindparam("ids", expanding=True)),
                {"ids": ids},
            )
        ]
        tags = [
            tuple(r)
            for r in await db.execute(
                text(
                    "SELECT * FROM registration_dataset_tags WHERE dataset_id IN :ids "
                    "ORDER BY dataset_id, tag_id"
                ).bindparams(bindparam("ids", expanding=True)),
                {"ids": ids},
            )
        ]
    return {"datasets": datasets, "file_records": records, "tags": tags}


async def writer_turns(server: ServerThread, session: str) -> int:
    """How many times writers of a session's registered files took their turn (its counter)."""
    async with database(server) as db:
        seq = (
            await db.execute(text("SELECT seq FROM registry_items WHERE id = :s"), {"s": session})
        ).scalar_one()
        value = (
            await db.execute(
                text("SELECT value FROM registry_counters WHERE name = :n"),
                {"n": f"registration-files:{seq}"},
            )
        ).scalar_one_or_none()
    return int(value or 0)


@asynccontextmanager
async def failing_insert(server: ServerThread, table: str, when: str) -> AsyncIterator[None]:
    """Make the server's database refuse inserts into ``table`` of rows matching ``when``."""
    name = f"test_fail_{uuid.uuid4().hex}"
    async with database(server) as db:
        if db.dialect.name == "sqlite":
            await db.execute(
                text(
                    f"CREATE TRIGGER {name} BEFORE INSERT ON {table} WHEN {when} "
                    "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
                )
            )
        else:
            await db.execute(
                text(
                    f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                    "BEGIN RAISE EXCEPTION 'injected failure'; END $$"
                )
            )
            await db.execute(
                text(
                    f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW "
                    f"WHEN ({when}) EXECUTE FUNCTION {name}()"
                )
            )
    try:
        yield
    finally:
        async with database(server) as db:
            if db.dialect.name == "sqlite":
                await db.execute(text(f"DROP TRIGGER {name}"))
            else:
                await db.execute(text(f"DROP TRIGGER {name} ON {table}"))
                await db.execute(text(f"DROP FUNCTION {name}()"))
