"""SQLite connections go back to the pool without a transaction, and without a needless rollback.

The engine replaces the pool's unconditional rollback on return with one that runs only when
SQLite has a transaction open on the connection (see ``create_engine``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from provena_like.server.db.base import create_engine, create_sessionmaker

pytestmark = pytest.mark.anyio


async def test_a_transaction_left_open_on_the_driver_is_rolled_back_on_return(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))
        async with engine.connect() as conn:  # past SQLAlchemy: only the pool can undo it
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            await driver.execute("INSERT INTO t VALUES (1)")
            assert driver.in_transaction
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert not driver.in_transaction
            assert (await conn.execute(text("SELECT count(*) FROM t"))).scalar() == 0
    finally:
        await engine.dispose()


async def test_a_closed_session_is_not_rolled_back_twice(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (n INTEGER)"))
        sessions = create_sessionmaker(engine)
        async with engine.connect() as conn:  # the one pooled connection, to watch its driver
            driver: Any = (await conn.get_raw_connection()).driver_connection
        calls: list[str] = []
        real = driver.rollback

        async def counted() -> None:
            calls.append("driver")
            await real()

        driver.rollback = counted
        async with sessions() as session:
            await session.execute(text("SELECT count(*) FROM t"))
        async with sessions() as session, session.begin():
            await session.execute(text("INSERT INTO t VALUES (1)"))
        # the read's close rolls back once, the write commits; the pool adds nothing
        assert calls == ["driver"], calls
        assert not driver.in_transaction
    finally:
        await engine.dispose()
