"""SQLAlchemy declarative base and engine set-up (SQLite in WAL mode, or PostgreSQL)."""

from __future__ import annotations

import contextlib
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, event, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

from provena_like.server.db.nul_text import install as install_nul_rules
from provena_like.server.db.sqlite_driver import one_trip_dbapi

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every table; constraint names are deterministic for migrations."""

    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:  # noqa: ARG002
        """Store aware datetimes as UTC; refuse naive ones."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:  # noqa: ARG002
        """Return aware UTC datetimes whatever the backend stored."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


_SQLITE_SIDE_FILES = ("", "-wal", "-shm", "-journal")


def secure_data_dir(data_dir: Path, database_url: str) -> None:
    """Make the server's data directory (0700) and its SQLite database files (0600) private.

    The directory holds signing keys, the database and, on first start, the admin password.
    The database file is created empty with mode 0600 before SQLite opens it: SQLite gives
    its ``-wal`` and ``-shm`` files the database file's mode, so they are private too. Files
    left readable by an older version are tightened. Blocking: call it in a worker thread.

    Args:
        data_dir: The server's data directory (created if missing).
        database_url: The SQLAlchemy URL; only a file-backed SQLite database is touched.
    """
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    if not database_url.startswith("sqlite"):
        return
    database = make_url(database_url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in _SQLITE_SIDE_FILES:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", 0o600)


def _skip_idle_rollbacks(engine: AsyncEngine) -> None:
    """The SQLite dialect rolls back only a connection with a transaction open.

    A session closed without a commit rolls its connection back, and the pool rolls back a
    connection returned to it outside a session. On aiosqlite each rollback is a trip to the
    connection's thread, and ``sqlite3`` then does nothing when no transaction is open: the
    driver opens one before a write only (deferred transactions), so after reads only there
    is none: two such trips per authenticated read request (the caller's session and the
    route's). The dialect's documented ``do_rollback`` hook of this engine, which both
    call, is wrapped to skip them; a closed connection is still rolled back (that reports it).
    """
    dialect = engine.sync_engine.dialect
    rollback = dialect.do_rollback

    def do_rollback(dbapi_connection: Any) -> None:
        try:
            in_transaction = bool(dbapi_connection.driver_connection.in_transaction)
        except ValueError:  # aiosqlite's connection is closed
            in_transaction = True
        if in_transaction:
            rollback(dbapi_connection)

    dialect.do_rollback = do_rollback  # type: ignore[method-assign]


def create_engine(url: str) -> AsyncEngine:
    """Create the async engine; SQLite gets WAL, foreign keys and a busy timeout.

    Both get the NUL rules of :mod:`provena_like.server.db.nul_text`: text holding a NUL is
    refused when stored and matches nothing when looked up, on either database.
    """
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url,
            connect_args={"timeout": 30},
            module=one_trip_dbapi(),  # a statement in one trip to aiosqlite's thread, not four
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        _skip_idle_rollbacks(engine)
        install_nul_rules(engine.sync_engine)
        return engine
    engine = create_async_engine(url, pool_pre_ping=True)
    install_nul_rules(engine.sync_engine)
    return engine


def create_sessionmaker(
    engine: AsyncEngine, *, info: dict[str, Any] | None = None
) -> async_sessionmaker[AsyncSession]:
    """A session factory whose objects stay usable after commit.

    Args:
        engine: the database engine.
        info: the ``info`` every session starts with (e.g. the registry's post-write hooks,
            :func:`provena_like.server.registry.events.session_info`).
    """
    return async_sessionmaker(engine, expire_on_commit=False, info=info)
