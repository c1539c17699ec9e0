"""Sessions on a database session: create one with the next free number, list them.

Number allocation (:func:`allocate_number`) runs inside the creating transaction, and its
first write bumps a counter named after the subject and the date
(:func:`~provena_like.server.registry.handles.next_value`): on PostgreSQL that upsert takes
the counter row's lock, so concurrent allocations for one subject and day queue there; on
SQLite it takes the database write lock. Under that lock the next number is read and the
session written, so concurrent callers get distinct numbers. The unique constraint of
``registration_sessions`` stays the judge: a session created meanwhile with an explicit
number (which takes no counter lock) makes the allocation fail with ``session_number_taken``,
and the route then retries the whole transaction.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.registration import MAX_SESSION_NUMBER, SessionCreate
from provena_like.models.registry import ItemCreate, SortOrder
from provena_like.server import access
from provena_like.server.errors import ServiceError
from provena_like.server.pagination import KeyColumn, keyset_page
from provena_like.server.registry import service as registry
from provena_like.server.registry.handles import next_value
from provena_like.server.registry.tables import ItemRow
from provena_like.server.security import Principal

from .index import number_taken
from .rules import check_session_parts
from .tables import SessionIndexRow

__all__ = ["allocate_number", "create_session", "list_sessions", "session_counter"]


def session_counter(subject: ItemRow, day: date) -> str:
    """The name of the counter that serializes allocations for ``subject`` on ``day``."""
    return f"session:{subject.seq}:{day.isoformat()}"


async def _taken(session: AsyncSession, subject_id: str, day: date) -> set[int]:
    numbers = await session.scalars(
        select(SessionIndexRow.number).where(
            SessionIndexRow.subject_id == subject_id, SessionIndexRow.date == day.isoformat()
        )
    )
    return set(numbers)


async def allocate_number(session: AsyncSession, subject: ItemRow, day: date) -> int:
    """The next free session number of ``subject`` on ``day``, in the caller's transaction.

    One more than the highest number taken; when that is past 999, the lowest free one.

    Raises:
        ServiceError: 409 ``session_numbers_exhausted`` when all of 1-999 are taken.
    """
    await next_value(session, session_counter(subject, day))
    taken = await _taken(session, subject.id, day)
    number = max(taken, default=0) + 1
    if number > MAX_SESSION_NUMBER:
        free = sorted(set(range(1, MAX_SESSION_NUMBER + 1)) - taken)
        if not free:
            raise ServiceError(
                409,
                "session_numbers_exhausted",
                f"Subject {subject.id} has all {MAX_SESSION_NUMBER} session numbers on {day}.",
            )
        number = free[0]
    return number


async def create_session(
    session: AsyncSession, principal: Principal, body: SessionCreate, *, prefix: str
) -> ItemRow:
    """Register a session of ``body.subject`` on ``body.date``; the number is allocated here.

    Checks first (the subject, lab and users, membership, the start time), naming the
    request's fields, then allocates the number (or checks the given one) and creates the
    session item through the registry.

    Raises:
        ServiceError: 422 naming the field, 403 for a non-member, 409 when the given number
            is taken (``session_number_taken``) or no number is free.
    """
    subject, lab = await check_session_parts(session, principal, body, body.lab, within="")
    if body.number is None:
        number = await allocate_number(session, subject, body.date)
    else:
        number = body.number
        holder = await session.scalar(
            select(SessionIndexRow.item_id).where(
                SessionIndexRow.subject_id == subject.id,
                SessionIndexRow.date == body.date.isoformat(),
                SessionIndexRow.number == number,
            )
        )
        if holder is not None:
            raise number_taken(subject.id, body.date.isoformat(), number, holder, field="number")
    record: dict[str, Any] = body.model_dump(mode="json", exclude={"lab", "number"})
    record.update(lab=lab.id, number=number)
    item = ItemCreate(subtype="session", record=record)
    return await registry.create_item(session, principal, item, prefix=prefix)


async def list_sessions(
    session: AsyncSession,
    principal: Principal,
    *,
    subject: str | None = None,
    lab: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    number: int | None = None,
    order: SortOrder = "asc",
    page_size: int = 100,
    cursor: str | None = None,
) -> tuple[list[ItemRow], str | None]:
    """One page of the sessions ``principal`` may read, by date, number and handle.

    Filters: ``subject`` and ``lab`` (handles), ``date_from`` and ``date_to`` (inclusive),
    ``number``. Keyset pagination on (date, number, handle number), so a walk returns every
    session present throughout exactly once.
    """
    query: Select[Any] = (
        select(ItemRow)
        .join(SessionIndexRow, SessionIndexRow.item_id == ItemRow.id)
        .where(access.readable_filter(principal))
    )
    if subject is not None:
        query = query.where(SessionIndexRow.subject_id == subject)
    if lab is not None:
        query = query.where(SessionIndexRow.lab_id == lab)
    if date_from is not None:
        query = query.where(SessionIndexRow.date >= date_from.isoformat())
    if date_to is not None:
        query = query.where(SessionIndexRow.date <= date_to.isoformat())
    if number is not None:
        query = query.where(SessionIndexRow.number == number)
    desc = order == "desc"
    keys = [
        KeyColumn(SessionIndexRow.date, "str", lambda r: str(r.record["date"]), desc),
        KeyColumn(SessionIndexRow.number, "int", lambda r: int(r.record["number"]), desc),
        KeyColumn(ItemRow.seq, "int", lambda r: r.seq, desc),
    ]
    scope = [
        subject,
        lab,
        date_from.isoformat() if date_from else None,
        date_to.isoformat() if date_to else None,
        number,
        order,
    ]
    return await keyset_page(session, query, keys, cursor=cursor, page_size=page_size, scope=scope)
