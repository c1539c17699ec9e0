"""Handles: the persistent identifiers of registry items, ``<prefix>/<n>``.

``n`` comes from the ``handle`` row of ``registry_counters``, bumped with one atomic
``INSERT ... ON CONFLICT DO UPDATE SET value = value + 1 RETURNING value`` inside the caller's
transaction. On PostgreSQL the upsert takes the row lock, so concurrent creators queue on it
and each gets its own number; on SQLite the statement takes the database write lock (the
busy timeout makes others wait). A transaction that rolls back gives its number back, so
numbers are dense except across crashes. The first call creates the row: no seeding needed.
"""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.server.registry.tables import CounterRow

__all__ = ["format_handle", "mint_handle", "next_value", "split_handle"]

HANDLE_COUNTER = "handle"


async def next_value(session: AsyncSession, name: str) -> int:
    """Increment the counter ``name`` (creating it at 1) and return its new value."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        pg = postgresql.insert(CounterRow).values(name=name, value=1)
        stmt = pg.on_conflict_do_update(
            index_elements=[CounterRow.name], set_={"value": CounterRow.value + 1}
        ).returning(CounterRow.value)
    elif dialect == "sqlite":
        lite = sqlite.insert(CounterRow).values(name=name, value=1)
        stmt = lite.on_conflict_do_update(
            index_elements=[CounterRow.name], set_={"value": CounterRow.value + 1}
        ).returning(CounterRow.value)
    else:  # pragma: no cover - the server supports SQLite and PostgreSQL
        raise RuntimeError(f"unsupported database dialect {dialect!r}")
    value = (await session.execute(stmt)).scalar_one()
    return int(value)


def format_handle(prefix: str, number: int) -> str:
    """The handle of item ``number`` under ``prefix``."""
    return f"{prefix}/{number}"


def split_handle(handle: str) -> tuple[str, str]:
    """``"10378.1/42"`` → ``("10378.1", "42")``; raises ValueError for anything else."""
    prefix, sep, suffix = handle.partition("/")
    if not sep or not prefix or not suffix or "/" in suffix:
        raise ValueError(f"not a handle: {handle!r}")
    return prefix, suffix


async def mint_handle(session: AsyncSession, prefix: str) -> tuple[str, int]:
    """Reserve the next handle in the caller's transaction; returns (handle, number)."""
    number = await next_value(session, HANDLE_COUNTER)
    return format_handle(prefix, number), number
