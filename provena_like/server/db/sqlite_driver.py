"""aiosqlite connections whose statements take one trip to the driver's thread, not four.

aiosqlite runs every call of a ``sqlite3`` connection in a thread of its own, and each call is
a trip there and back: a queue, a thread switch, a wake-up of the event loop (about 140 us of
CPU and 190 us of wall time each, measured on the reference machine). SQLAlchemy's aiosqlite
adapter makes four per statement: create the cursor, execute, fetch the rows, close the
cursor. That was half the CPU of registering a dataset on SQLite (52 trips).

The connection here (:class:`OneTripConnection`, an :class:`aiosqlite.Connection`) hands
SQLAlchemy cursors that do all four in one trip: the statement runs, its first rows are
fetched (:data:`FIRST_ROWS`), and a cursor with nothing more to read is closed, in the
driver's thread; ``description``, ``rowcount`` and ``lastrowid`` are read there too. A
statement with more rows keeps its ``sqlite3`` cursor open, and the rest are fetched in
further trips as they are asked for (a streamed result stays streamed), so the driver's
objects are still only ever used in its own thread.

The engine gets it through SQLAlchemy's documented ``module`` argument: SQLAlchemy's own
aiosqlite module adapter over aiosqlite, with ``connect`` making these connections
(:func:`one_trip_dbapi`).
"""

from __future__ import annotations

import sqlite3
from collections import deque
from collections.abc import Callable
from functools import partial
from pathlib import Path
from types import SimpleNamespace, TracebackType
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi

__all__ = ["FIRST_ROWS", "OneTripConnection", "one_trip_dbapi"]

T = TypeVar("T")

FIRST_ROWS = 512
"""Rows fetched in the statement's own trip; more take one trip per :data:`FIRST_ROWS`."""

_Description = tuple[tuple[Any, ...], ...] | None


class _Outcome:
    """What one trip brought back: the rows, and the cursor's state after them."""

    __slots__ = ("description", "lastrowid", "open", "rowcount", "rows")

    def __init__(self, cursor: sqlite3.Cursor, rows: list[Any], *, done: bool) -> None:
        self.description: _Description = cursor.description
        self.rows = rows
        self.rowcount = cursor.rowcount
        self.lastrowid = cursor.lastrowid
        self.open = not done


def _fetch(cursor: sqlite3.Cursor, size: int | None) -> _Outcome:
    """In the driver's thread: up to ``size`` more rows (``None``: all); close when done."""
    try:
        if cursor.description is None:
            rows: list[Any] = []
            done = True
        elif size is None:
            rows = cursor.fetchall()
            done = True
        else:
            rows = cursor.fetchmany(size)
            done = len(rows) < size
        outcome = _Outcome(cursor, rows, done=done)
    except BaseException:
        cursor.close()
        raise
    if done:
        cursor.close()
    return outcome


def _execute(
    connection: sqlite3.Connection, sql: str, parameters: Any, many: bool
) -> tuple[sqlite3.Cursor, _Outcome]:
    """In the driver's thread: a new cursor runs ``sql``; its first rows are fetched."""
    cursor = connection.cursor()
    try:
        if many:
            cursor.executemany(sql, parameters)
        elif parameters is None:
            cursor.execute(sql)
        else:
            cursor.execute(sql, parameters)
    except BaseException:
        cursor.close()
        raise
    return cursor, _fetch(cursor, FIRST_ROWS)


class _Cursor:
    """The part of :class:`aiosqlite.Cursor` SQLAlchemy's adapter uses, one trip a statement."""

    def __init__(self, connection: OneTripConnection) -> None:
        self._connection = connection
        self._cursor: sqlite3.Cursor | None = None  # while it has rows left to fetch
        self._rows: deque[Any] = deque()
        self.description: _Description = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.arraysize = 1

    def _took(self, cursor: sqlite3.Cursor, outcome: _Outcome) -> None:
        self.description = outcome.description
        self.rowcount = outcome.rowcount
        self.lastrowid = outcome.lastrowid
        self._rows.extend(outcome.rows)
        self._cursor = cursor if outcome.open else None

    async def _start(self, sql: str, parameters: Any, *, many: bool) -> _Cursor:
        await self.close()
        cursor, outcome = await self._connection.run(
            _execute, self._connection.sqlite, sql, parameters, many
        )
        self._took(cursor, outcome)
        return self

    async def execute(self, sql: str, parameters: Any = None) -> _Cursor:
        """Run ``sql``; its first rows are already fetched when this returns."""
        return await self._start(sql, parameters, many=False)

    async def executemany(self, sql: str, parameters: Any) -> _Cursor:
        """Run ``sql`` once per parameter set."""
        return await self._start(sql, parameters, many=True)

    async def _read(self, size: int | None) -> None:
        if self._cursor is not None:
            self._took(self._cursor, await self._connection.run(_fetch, self._cursor, size))

    async def fetchone(self) -> Any:
        """The next row, or ``None``."""
        if not self._rows:
            await self._read(FIRST_ROWS)
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        """Up to ``size`` rows (``arraysize`` by default)."""
        want = self.arraysize if size is None else size
        while len(self._rows) < want and self._cursor is not None:
            await self._read(max(FIRST_ROWS, want - len(self._rows)))
        return [self._rows.popleft() for _ in range(min(want, len(self._rows)))]

    async def fetchall(self) -> list[Any]:
        """Every row left."""
        await self._read(None)
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        """Drop what is left; a cursor still open is closed in the driver's thread."""
        self._rows.clear()
        cursor, self._cursor = self._cursor, None
        if cursor is not None:
            await self._connection.run(cursor.close)


class _OpenCursor:
    """``connection.cursor()``: awaited, or entered with ``async with``, it gives a cursor."""

    def __init__(self, connection: OneTripConnection) -> None:
        self._cursor = _Cursor(connection)

    def __await__(self) -> Any:
        return self.__aenter__().__await__()

    async def __aenter__(self) -> _Cursor:
        return self._cursor

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._cursor.close()


class OneTripConnection(aiosqlite.Connection):
    """An aiosqlite connection whose cursors run a statement in one trip (see the module)."""

    def cursor(self) -> Any:
        """A cursor; creating it takes no trip (its ``sqlite3`` cursor is made per statement)."""
        return _OpenCursor(self)

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The ``sqlite3`` connection: to be used only in the driver's thread (:meth:`run`)."""
        return self._conn

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Call ``fn(*args)`` in the driver's thread, in turn with its other calls."""
        result: T = await self._execute(fn, *args)  # type: ignore[no-untyped-call]
        return result


def _connect(database: str | bytes | Path, **kwargs: Any) -> OneTripConnection:
    """``aiosqlite.connect``, making a :class:`OneTripConnection`."""
    if isinstance(database, bytes):
        database = database.decode("utf-8")
    kwargs.pop("iter_chunk_size", None)
    return OneTripConnection(partial(sqlite3.connect, str(database), **kwargs), 64)


def one_trip_dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """The DB-API module to give ``create_async_engine(module=...)`` for SQLite."""
    names: dict[str, Any] = {n: getattr(aiosqlite, n) for n in dir(aiosqlite) if n[0] != "_"}
    names.update(connect=_connect, Connection=OneTripConnection)
    return AsyncAdapt_aiosqlite_dbapi(SimpleNamespace(**names), sqlite3)  # type: ignore[arg-type]
