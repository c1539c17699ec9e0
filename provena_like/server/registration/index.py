"""The registration index: unique names and session numbers, kept in step with the registry.

:func:`subscribe` hangs :func:`follow` on the registry's post-write hooks
(:mod:`provena_like.server.registry.events`), so every write of a named record or a session
updates :class:`~provena_like.server.registration.tables.RecordNameRow` or
:class:`~provena_like.server.registration.tables.SessionIndexRow` *in the writer's
transaction*. Their constraints are what enforce uniqueness: a name or a session number
already held by another item is a 409 (``name_taken``, ``session_number_taken``) whose
detail names the field and the item holding it, and the write is rolled back. The check
before the insert gives the clear message; the constraint decides between concurrent
writers (the loser's insert fails inside a savepoint and is answered the same 409).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.archive import STORAGE_LOCATION
from provena_like.server.errors import ServiceError
from provena_like.server.registry.events import ItemHooks, ItemWritten
from provena_like.server.registry.tables import ItemRow

from .tables import RecordNameRow, SessionIndexRow

__all__ = [
    "NAME_FIELDS",
    "SESSION_NUMBER_TAKEN",
    "follow",
    "name_taken",
    "number_taken",
    "subscribe",
]

NAME_FIELDS: dict[str, str] = {
    "lab": "name",
    "subject": "nickname",
    "dataset_type": "name",
    "data_format": "name",
    "repository": "name",
    "tag": "name",
    STORAGE_LOCATION: "name",
}
"""subtype → the record field that is its unique name (a subject's within its lab)."""

SESSION_NUMBER_TAKEN = "session_number_taken"


def _name_scope(row: ItemRow) -> tuple[str, str]:
    scope = str(row.record["lab"]) if row.subtype == "subject" else ""
    return scope, str(row.record[NAME_FIELDS[row.subtype]]).casefold()


def name_taken(subtype: str, name: str, holder: str | None, *, field: str) -> ServiceError:
    """The 409 for a ``subtype`` named ``name`` when ``holder`` already has that name."""
    field_name = NAME_FIELDS[subtype]
    where = " in this lab" if subtype == "subject" else ""
    message = f"A {subtype} with {field_name} {name!r} already exists{where}"
    message += f": {holder}." if holder else "."
    detail = {"field": field, "message": message, "type": "name_taken", "item_id": holder}
    return ServiceError(409, "name_taken", message, details=[detail])


def number_taken(
    subject: str, day: str, number: int, holder: str | None, *, field: str
) -> ServiceError:
    """The 409 for session ``number`` of ``subject`` on ``day`` when ``holder`` has it."""
    message = f"Subject {subject} already has session {number:03d} on {day}"
    message += f": {holder}." if holder else "."
    detail = {"field": field, "message": message, "type": SESSION_NUMBER_TAKEN, "item_id": holder}
    return ServiceError(409, SESSION_NUMBER_TAKEN, message, details=[detail])


async def _replace(
    session: AsyncSession, table: Any, item_id: str, values: dict[str, Any], taken: ServiceError
) -> None:
    """Replace the index row of ``item_id`` by ``values``; ``taken`` if a constraint refuses."""
    try:
        async with session.begin_nested():
            await session.execute(delete(table).where(table.item_id == item_id))
            await session.execute(insert(table).values(item_id=item_id, **values))
    except IntegrityError:
        raise taken from None


async def _index_name(session: AsyncSession, row: ItemRow) -> None:
    scope, name = _name_scope(row)
    key = and_(
        RecordNameRow.subtype == row.subtype,
        RecordNameRow.scope == scope,
        RecordNameRow.name == name,
    )
    holder = await session.scalar(select(RecordNameRow.item_id).where(key))
    if holder == row.id:
        return
    shown = str(row.record[NAME_FIELDS[row.subtype]])
    field = f"record.{NAME_FIELDS[row.subtype]}"
    if holder is not None:
        raise name_taken(row.subtype, shown, holder, field=field)
    values = {"subtype": row.subtype, "scope": scope, "name": name}
    await _replace(
        session, RecordNameRow, row.id, values, name_taken(row.subtype, shown, None, field=field)
    )


async def _index_session(session: AsyncSession, row: ItemRow) -> None:
    subject, day, number = str(row.record["subject"]), str(row.record["date"]), row.record["number"]
    holder = await session.scalar(
        select(SessionIndexRow.item_id).where(
            SessionIndexRow.subject_id == subject,
            SessionIndexRow.date == day,
            SessionIndexRow.number == number,
        )
    )
    values = {
        "subject_id": subject,
        "lab_id": str(row.record["lab"]),
        "date": day,
        "number": number,
    }
    if holder == row.id:
        current = await session.get(SessionIndexRow, row.id, populate_existing=True)
        if current is not None and current.lab_id == values["lab_id"]:
            return
    elif holder is not None:
        raise number_taken(subject, day, number, holder, field="record.number")
    taken = number_taken(subject, day, number, None, field="record.number")
    await _replace(session, SessionIndexRow, row.id, values, taken)


async def follow(session: AsyncSession, event: ItemWritten) -> None:
    """Keep the index in step with one write of an item (a registry post-write hook)."""
    if event.change == "access_changed":
        return  # the record is unchanged
    if event.item.subtype in NAME_FIELDS:
        await _index_name(session, event.item)
    elif event.item.subtype == "session":
        await _index_session(session, event.item)


def subscribe(hooks: ItemHooks) -> None:
    """Follow every item write announced on ``hooks`` (the app does this at start)."""
    hooks.subscribe(follow)
