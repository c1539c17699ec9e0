"""The SQLite engine's connections: a statement in one trip to aiosqlite's thread, same results.

``provena_like.server.db.sqlite_driver`` replaces the four trips SQLAlchemy's aiosqlite
adapter made per statement (cursor, execute, fetch, close) with one. These tests count the
trips and check that nothing a caller sees changed: rows (many more than the first trip
fetches, plain and streamed), ``rowcount``, ``lastrowid``, ``RETURNING``, ``executemany``,
errors, and a streamed result left early (its open cursor must not keep the table locked).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from provena_like.server.db.base import create_engine, create_sessionmaker
from provena_like.server.db.sqlite_driver import FIRST_ROWS, OneTripConnection

pytestmark = pytest.mark.anyio

MANY = FIRST_ROWS * 2 + 7  # more rows than two trips of the first size
ROWS = [{"v": f"v{i}"} for i in range(MANY)]


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (n INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    try:
        yield engine
    finally:
        await engine.dispose()


async def _trips(engine: AsyncEngine) -> list[str]:
    """Every later trip of the engine's one pooled connection, by the function it ran."""
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
    assert isinstance(driver, OneTripConnection)
    trips: list[str] = []
    run = driver.run

    async def counted(fn: Callable[..., Any], *args: Any) -> Any:
        trips.append(getattr(fn, "__name__", type(fn).__name__))
        return await run(fn, *args)

    driver.run = counted  # type: ignore[method-assign]
    return trips


async def test_a_statement_takes_one_trip(engine: AsyncEngine) -> None:
    trips = await _trips(engine)
    sessions = create_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await session.execute(text("INSERT INTO t (v) VALUES ('a')"))
    assert trips == ["_execute"]  # then the commit (aiosqlite's own trip)
    trips.clear()
    async with sessions() as session:
        rows = (await session.execute(text("SELECT n, v FROM t"))).all()
    assert [tuple(r) for r in rows] == [(1, "a")]
    assert trips == ["_execute"]


async def test_rows_beyond_the_first_trip_are_all_read(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO t (v) VALUES (:v)"), [{"v": f"v{i}"} for i in range(MANY)]
        )
    trips = await _trips(engine)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT n FROM t ORDER BY n"))).scalars().all()
    assert rows == list(range(1, MANY + 1))
    assert trips == ["_execute", "_fetch"]  # the first rows with the statement, then the rest
    trips.clear()
    async with engine.connect() as conn:
        streamed = [
            n
            async for n in (
                await conn.stream(
                    text("SELECT n FROM t ORDER BY n").execution_options(yield_per=100)
                )
            ).scalars()
        ]
    assert streamed == list(range(1, MANY + 1))
    assert trips[0] == "_execute" and set(trips[1:]) == {"_fetch"}


async def test_a_stream_left_early_does_not_keep_its_cursor(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO t (v) VALUES (:v)"), [{"v": f"v{i}"} for i in range(MANY)]
        )
    async with engine.connect() as conn:
        result = await conn.stream(text("SELECT n FROM t").execution_options(yield_per=10))
        async for _ in result.scalars():
            break
        await result.close()
        await conn.execute(text("DROP TABLE t"))  # "table is locked" while a read is open
        await conn.commit()


async def test_rowcount_lastrowid_and_returning(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        inserted = await conn.execute(text("INSERT INTO t (v) VALUES ('x')"))
        assert inserted.lastrowid == 1
        await conn.execute(text("INSERT INTO t (v) VALUES (:v)"), [{"v": "y"}, {"v": "z"}])
        updated = await conn.execute(text("UPDATE t SET v = v || '!' WHERE n > 1"))
        assert updated.rowcount == 2
        back = await conn.execute(text("DELETE FROM t WHERE n < 3 RETURNING n"))
        assert sorted(back.scalars().all()) == [1, 2]
        assert (await conn.execute(text("SELECT v FROM t"))).scalars().all() == ["z!"]


async def test_an_error_is_sqlalchemys_and_the_connection_goes_on(engine: AsyncEngine) -> None:
    sessions = create_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await session.execute(text("INSERT INTO t (v) VALUES ('same')"))
    with pytest.raises(IntegrityError, match="UNIQUE"):
        async with sessions() as session, session.begin():
            await session.execute(text("INSERT INTO t (v) VALUES ('other')"))
            await session.execute(text("INSERT INTO t (v) VALUES ('same')"))
    async with sessions() as session:
        assert (await session.execute(text("SELECT v FROM t"))).scalars().all() == ["same"]


async def test_the_driver_cursor_is_aiosqlites_shape(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        driver: Any = (await conn.get_raw_connection()).driver_connection
        cursor = await driver.cursor()  # awaited, as aiosqlite's
        await cursor.execute("SELECT ?, ?", (1, "a"))
        assert [d[0] for d in cursor.description] == ["?", "?"]
        assert await cursor.fetchone() == (1, "a")
        assert await cursor.fetchone() is None
        async with driver.cursor() as entered:  # or entered
            await entered.executemany("INSERT INTO t (v) VALUES (?)", [("p",), ("q",)])
            assert entered.rowcount == 2
            await entered.execute("SELECT v FROM t ORDER BY n")
            assert await entered.fetchmany(1) == [("p",)]
            assert await entered.fetchall() == [("q",)]
        await driver.rollback()
