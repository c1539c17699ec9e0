"""SQLite connections go back to the pool without a transaction, and without a needless rollback.

The engine's dialect rolls a connection back (when a session ends, or when the pool takes
the connection back) only when SQLite has a transaction open on it (see ``create_engine``):
after reads only, or after a commit, there is none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

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


async def _watched(tmp_path: Path) -> tuple[AsyncEngine, Any, list[str]]:
    """An engine with a table ``t`` and its one pooled connection's rollbacks counted."""
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER)"))
    async with engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
    calls: list[str] = []
    real = driver.rollback

    async def counted() -> None:
        calls.append("driver")
        await real()

    driver.rollback = counted
    return engine, driver, calls


async def test_reads_and_a_commit_need_no_rollback(tmp_path: Path) -> None:
    engine, driver, calls = await _watched(tmp_path)
    try:
        sessions = create_sessionmaker(engine)
        async with sessions() as session:
            await session.execute(text("SELECT count(*) FROM t"))
        async with sessions() as session, session.begin():
            await session.execute(text("INSERT INTO t VALUES (1)"))
        # the read opened no transaction, the write committed: nothing for a rollback to do
        assert calls == [], calls
        assert not driver.in_transaction
    finally:
        await engine.dispose()


async def test_an_uncommitted_write_is_rolled_back_once(tmp_path: Path) -> None:
    engine, driver, calls = await _watched(tmp_path)
    try:
        sessions = create_sessionmaker(engine)
        with pytest.raises(RuntimeError, match="boom"):
            async with sessions() as session, session.begin():
                await session.execute(text("INSERT INTO t VALUES (1)"))
                raise RuntimeError("boom")
        async with sessions() as session:  # closed without a commit
            await session.execute(text("INSERT INTO t VALUES (2)"))
        assert calls == ["driver", "driver"], calls
        assert not driver.in_transaction
        async with sessions() as session:
            assert (await session.execute(text("SELECT count(*) FROM t"))).scalar() == 0
    finally:
        await engine.dispose()
