"""Keeping the index in step with the registry: one item at a time, or all of them.

:func:`subscribe` puts :func:`index_item` on the registry's post-write hooks
(:mod:`provena_like.server.registry.events`) when the app is built, so every write of an item
row reindexes it in the writer's transaction: a search sees exactly the committed items (a
rolled-back write leaves the index as it was). The registry imports nothing of search.
:func:`rebuild` and :func:`rebuild_sync` rewrite the whole index from ``registry_items`` - the
admin route ``POST /search/reindex`` and the ``0003_search`` migration (for rows that existed
before it) use them.

A dataset's document also holds the search terms of its committed extraction run
(:mod:`provena_like.server.extracted`): :func:`index_item` reads them, and a commit of a run
reindexes the dataset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Select, and_, inspect, literal, null, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from provena_like.server.extracted.tables import ExtractionRunRow
from provena_like.server.registry.events import ItemHooks, ItemWritten
from provena_like.server.registry.tables import ItemRow
from provena_like.server.search.backend import SearchBackend, backend_for
from provena_like.server.search.documents import SearchDocument, document_for

__all__ = [
    "backend_of",
    "document_of",
    "index_item",
    "rebuild",
    "rebuild_sync",
    "recreate_sync",
    "reindex_written",
    "subscribe",
]

_BATCH = 500


def backend_of(session: AsyncSession) -> SearchBackend:
    """The search backend of the database ``session`` talks to."""
    return backend_for(session.get_bind().dialect.name)


def document_of(
    row: ItemRow, extracted: str = "", kinds: Mapping[str, str] | None = None
) -> SearchDocument:
    """The index document of an item row (``extracted``, ``kinds``: its extracted terms)."""
    return document_for(
        row.seq, row.display_name, row.subtype, row.owner, row.record, extracted, kinds
    )


async def extracted_text(connection: AsyncConnection, row: ItemRow) -> tuple[str, dict[str, str]]:
    """The search text of a dataset's committed extraction run, and the same per kind.

    ``("", {})`` for other items and datasets without one.
    """
    if row.subtype != "dataset":
        return "", {}
    found = (
        await connection.execute(
            select(ExtractionRunRow.search_text, ExtractionRunRow.search_kinds).where(
                ExtractionRunRow.dataset_id == row.id, ExtractionRunRow.state == "committed"
            )
        )
    ).first()
    if found is None:
        return "", {}
    return found[0] or "", found[1] or {}


async def index_item(session: AsyncSession, row: ItemRow, *, new: bool = False) -> None:
    """(Re)index one item inside the caller's transaction.

    ``new``: the item was created in this transaction, so no extraction run of it can exist
    yet and its extracted text is not looked up.

    Example:
        ```python
        async with sessions() as session, session.begin():
            row = await service.create_item(session, principal, body, prefix=prefix)
            # the app's sessions fire reindex_written, which has indexed row already
        ```
    """
    backend = backend_of(session)
    connection = await session.connection()  # Core execution: no ORM overhead per write
    doc = document_of(row, *(("", {}) if new else await extracted_text(connection, row)))
    for stmt in backend.upsert(doc):
        await connection.execute(stmt)


async def reindex_written(session: AsyncSession, event: ItemWritten) -> None:
    """The registry's post-write hook of search: (re)index the item just written.

    Every change is reindexed: the document holds the record, the name and the owner.
    """
    await index_item(session, event.item, new=event.change == "created")


def subscribe(hooks: ItemHooks) -> None:
    """Keep the index in step with every item write fired on ``hooks``."""
    hooks.subscribe(reindex_written)


def _batch(after: int, extracted: bool = True, kinds: bool = True) -> Select[*tuple[Any, ...]]:
    """The next items after ``after``, with their extracted text when ``extracted``.

    ``extracted=False`` is for migrations that run before the extraction tables exist,
    ``kinds=False`` for those before ``search_kinds`` (``0017``).
    """
    columns = [ItemRow.seq, ItemRow.display_name, ItemRow.subtype, ItemRow.owner, ItemRow.record]
    if not extracted:
        stmt = select(*columns, literal("").label("extracted"), null().label("kinds"))
    else:
        committed = and_(
            ExtractionRunRow.dataset_id == ItemRow.id, ExtractionRunRow.state == "committed"
        )
        kind_column = ExtractionRunRow.search_kinds if kinds else null().label("kinds")
        stmt = select(*columns, ExtractionRunRow.search_text, kind_column).outerjoin(
            ExtractionRunRow, committed
        )
    return stmt.where(ItemRow.seq > after).order_by(ItemRow.seq).limit(_BATCH)


def _documents(rows: Sequence[Any]) -> Iterable[SearchDocument]:
    for seq, display_name, subtype, owner, record, extracted, kinds in rows:
        yield document_for(seq, display_name, subtype, owner, record, extracted or "", kinds)


async def rebuild(session: AsyncSession) -> int:
    """Rewrite the whole index from ``registry_items`` in the caller's transaction.

    Returns:
        How many items were indexed.
    """
    backend = backend_of(session)
    connection = await session.connection()
    for stmt in backend.clear():
        await connection.execute(stmt)
    count, last = 0, 0
    while rows := (await connection.execute(_batch(last))).all():
        for doc in _documents(rows):
            for stmt in backend.upsert(doc):
                await connection.execute(stmt)
        count += len(rows)
        last = rows[-1][0]
    return count


def rebuild_sync(connection: Connection) -> int:
    """:func:`rebuild` on a synchronous connection (Alembic migrations run on one).

    Migrations before the extraction tables exist index no extracted terms, those before
    ``0017`` no kinds.

    Returns:
        How many items were indexed.
    """
    backend = backend_for(connection.dialect.name)
    for stmt in backend.clear():
        connection.execute(stmt)
    inspector = inspect(connection)
    runs = ExtractionRunRow.__tablename__
    extracted = inspector.has_table(runs)
    kinds = extracted and any(c["name"] == "search_kinds" for c in inspector.get_columns(runs))
    count, last = 0, 0
    while rows := connection.execute(_batch(last, extracted, kinds)).all():
        for doc in _documents(rows):
            for stmt in backend.upsert(doc):
                connection.execute(stmt)
        count += len(rows)
        last = rows[-1][0]
    return count


def recreate_sync(connection: Connection) -> int:
    """Drop and make again the backend's index objects, then :func:`rebuild_sync`.

    For migrations that change what the index holds (its objects are made by today's code).

    Returns:
        How many items were indexed.
    """
    backend = backend_for(connection.dialect.name)
    for stmt in [*backend.drop_ddl(), *backend.create_ddl()]:
        connection.execute(stmt)
    return rebuild_sync(connection)
