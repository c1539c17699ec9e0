"""The release workflow on a database session: request, approve, reject, withdraw; listings.

::

    NOT_RELEASED ──request (dataset admin, names a reviewer)──▶ PENDING
    PENDING ──approve (that reviewer)──▶ RELEASED        (release_time, approver set)
    PENDING ──reject (that reviewer, notes required)──▶ NOT_RELEASED
    PENDING ──withdraw (dataset admin)──▶ NOT_RELEASED

Anything else is refused: 409 with a code naming the current state (``under_review``,
``released``, ``not_under_review``) and ``details.state``; 403 ``not_your_review`` when
someone other than the named reviewer decides a pending request; 409 ``locked`` when asking
for the release of a locked dataset, or approving one.

Every step is one transaction whose first write is a conditional UPDATE of the item row
(``WHERE revision = <the revision checked>``, bumping it): every step bumps the revision, so
of two concurrent steps exactly one matches, and the other reloads - holding the row lock
now - and is decided again against the new state (a second approval gets 409 ``released``).
The dataset row moves with a second conditional UPDATE (``WHERE release_status = <old>``),
and the step is appended to the release history. Notifications are the routes' business,
after the commit.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import BigInteger, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.review import ReleaseAction, ReleaseEvent, ReleaseRequest
from provena_like.server import access
from provena_like.server.datastore.service import load_dataset, release_state_error
from provena_like.server.datastore.tables import DatasetRow
from provena_like.server.db.base import UTCDateTime, utcnow
from provena_like.server.errors import ServiceError
from provena_like.server.pagination import cursor_time, decode_cursor, encode_cursor
from provena_like.server.registry.tables import ItemRow
from provena_like.server.security import Principal

from .reviewers import REVIEWER, check_reviewer
from .tables import ReleaseEventRow

__all__ = [
    "Transition",
    "awaiting_review",
    "decide",
    "history_page",
    "my_requests",
    "request_release",
    "to_event",
    "withdraw",
]


@dataclass(frozen=True)
class Transition:
    """A committed-to-be step: the dataset after it and the history entry it added."""

    item: ItemRow
    dataset: DatasetRow
    event: ReleaseEventRow


@dataclass(frozen=True)
class _Step:
    action: ReleaseAction
    status: str
    reviewer: str | None  # the item's reviewer after the step
    event_reviewer: str | None  # the reviewer the history entry names
    notes: str
    values: dict[str, Any] = field(default_factory=dict)  # dataset columns to set


Decide = Callable[[ItemRow, DatasetRow, datetime], Awaitable[_Step]]


def to_event(row: ReleaseEventRow) -> ReleaseEvent:
    """The wire form of a release history row."""
    return ReleaseEvent.model_validate(
        {
            "id": row.id,
            "time": row.time,
            "user": row.user,
            "action": row.action,
            "notes": row.notes,
            "reviewer": row.reviewer,
            "status": row.status,
        }
    )


async def _apply(
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    decide_step: Decide,
    *,
    confirm: Callable[[], Awaitable[None]] | None = None,
) -> Transition:
    """Decide a step against the dataset as loaded and write it with conditional UPDATEs."""
    for attempt in range(2):
        item, dataset = await load_dataset(session, item_id, for_update=attempt > 0)
        now = utcnow()
        step = await decide_step(item, dataset, now)
        claimed = await session.execute(
            update(ItemRow)
            .where(ItemRow.id == item_id, ItemRow.revision == item.revision)
            .values(revision=ItemRow.revision + 1, updated_at=now, reviewer=step.reviewer)
            .execution_options(synchronize_session=False)
        )
        if getattr(claimed, "rowcount", 0) != 1:
            continue  # a concurrent write got in first: decide again on what it left
        moved = await session.execute(
            update(DatasetRow)
            .where(
                DatasetRow.item_id == item_id,
                DatasetRow.release_status == dataset.release_status,
            )
            .values(release_status=step.status, **step.values)
            .execution_options(synchronize_session=False)
        )
        if getattr(moved, "rowcount", 0) != 1:
            raise ServiceError(409, "conflict", f"Dataset {item_id} is changing; retry.")
        if confirm is not None:
            await confirm()
        event = ReleaseEventRow(
            item_id=item_id,
            time=now,
            user=principal.username,
            action=step.action,
            notes=step.notes,
            reviewer=step.event_reviewer,
            status=step.status,
        )
        session.add(event)
        await session.flush()
        item, dataset = await load_dataset(session, item_id)
        return Transition(item, dataset, event)
    raise ServiceError(409, "conflict", f"Dataset {item_id} is changing concurrently; retry.")


async def request_release(
    session: AsyncSession, principal: Principal, item_id: str, body: ReleaseRequest
) -> Transition:
    """Ask for the release of a dataset: ``NOT_RELEASED`` → ``PENDING``.

    Needs ``admin`` on the dataset; refused while it is locked (409 ``locked``) or not
    ``NOT_RELEASED`` (409 ``under_review`` / ``released``); the reviewer must be an enabled
    user with the system role ``reviewer`` other than the caller (422, field ``reviewer``).
    The reviewer may read the dataset's metadata and data until they decide.
    """

    async def decide_step(item: ItemRow, dataset: DatasetRow, now: datetime) -> _Step:
        access.require(principal, item, "admin")
        if item.locked:
            raise ServiceError(
                409,
                "locked",
                f"Dataset {item.id} is locked: unlock it before asking for its release.",
                details={"state": dataset.release_status},
            )
        if dataset.release_status != "NOT_RELEASED":
            raise release_state_error(item.id, dataset.release_status, "it can't be requested")
        await check_reviewer(session, body.reviewer, requester=principal.username)
        return _Step(
            action="request",
            status="PENDING",
            reviewer=body.reviewer,
            event_reviewer=body.reviewer,
            notes=body.notes,
            values={
                "release_requester": principal.username,
                "release_requested_at": now,
                "release_approver": None,
                "release_time": None,
            },
        )

    async def confirm() -> None:  # the role can't be taken away before the commit
        await check_reviewer(session, body.reviewer, requester=principal.username, lock=True)

    return await _apply(session, principal, item_id, decide_step, confirm=confirm)


async def decide(
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    verdict: Literal["approve", "reject"],
    notes: str,
) -> Transition:
    """Approve (``PENDING`` → ``RELEASED``) or reject (→ ``NOT_RELEASED``) a request.

    Only the reviewer the request names, while they hold the system role ``reviewer``, may
    decide (403 ``not_your_review`` for anyone else, system admins included). A dataset that
    is not ``PENDING`` has nothing to decide: 409 naming its state, to reviewers and to those
    who may read the dataset (403 ``forbidden`` for anyone else). A locked dataset can't be
    approved (409 ``locked``), only rejected.
    """

    async def decide_step(item: ItemRow, dataset: DatasetRow, now: datetime) -> _Step:
        if dataset.release_status != "PENDING":
            if not access.has_system_role(principal, REVIEWER):
                access.require(principal, item, "metadata-read")
            raise release_state_error(
                item.id, dataset.release_status, f"there is no pending release request to {verdict}"
            )
        if principal.username != item.reviewer:
            raise ServiceError(
                403,
                "not_your_review",
                f"Only the reviewer named in the release request of dataset {item.id} may "
                f"{verdict} it.",
                details={"state": "PENDING"},
            )
        if not access.has_system_role(principal, REVIEWER):
            raise ServiceError(
                403,
                "not_your_review",
                f"You no longer hold the system role 'reviewer', so you can't {verdict} the "
                f"release of dataset {item.id}; the requester may withdraw the request.",
                details={"state": "PENDING"},
            )
        if verdict == "approve":
            if item.locked:
                raise ServiceError(
                    409,
                    "locked",
                    f"Dataset {item.id} is locked: it can't be released until an admin of it "
                    "unlocks it (rejecting the request is still possible).",
                    details={"state": "PENDING"},
                )
            return _Step(
                action="approve",
                status="RELEASED",
                reviewer=None,
                event_reviewer=item.reviewer,
                notes=notes,
                values={"release_time": now, "release_approver": principal.username},
            )
        return _Step(
            action="reject",
            status="NOT_RELEASED",
            reviewer=None,
            event_reviewer=item.reviewer,
            notes=notes,
        )

    return await _apply(session, principal, item_id, decide_step)


async def withdraw(
    session: AsyncSession, principal: Principal, item_id: str, notes: str
) -> Transition:
    """Take back a pending request: ``PENDING`` → ``NOT_RELEASED``; needs ``admin``.

    The way out when the reviewer can't decide any more (they left, or lost the role).
    """

    async def decide_step(item: ItemRow, dataset: DatasetRow, now: datetime) -> _Step:
        del now
        access.require(principal, item, "admin")
        if dataset.release_status != "PENDING":
            raise release_state_error(
                item.id, dataset.release_status, "there is no pending release request to withdraw"
            )
        return _Step(
            action="withdraw",
            status="NOT_RELEASED",
            reviewer=None,
            event_reviewer=item.reviewer,
            notes=notes,
        )

    return await _apply(session, principal, item_id, decide_step)


# -- reading -------------------------------------------------------------------------------


def _bad_cursor() -> ServiceError:
    return ServiceError(400, "bad_cursor", "The cursor does not fit this listing; start again.")


async def history_page(
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    *,
    page_size: int,
    cursor: str | None,
) -> tuple[list[ReleaseEvent], str | None]:
    """One page of a dataset's release history, oldest first; needs ``metadata-read``."""
    item, _ = await load_dataset(session, item_id)
    access.require(principal, item, "metadata-read")
    query = select(ReleaseEventRow).where(ReleaseEventRow.item_id == item_id)
    if cursor is not None:
        scope, last = decode_cursor(cursor, length=2)
        if scope != item_id or not isinstance(last, int) or isinstance(last, bool):
            raise _bad_cursor()
        query = query.where(ReleaseEventRow.id > last)
    rows = list(await session.scalars(query.order_by(ReleaseEventRow.id).limit(page_size + 1)))
    more = len(rows) > page_size
    rows = rows[:page_size]
    next_cursor = encode_cursor([item_id, rows[-1].id]) if more else None
    return [to_event(r) for r in rows], next_cursor


async def _pending(
    session: AsyncSession,
    scope: str,
    condition: Any,
    *,
    page_size: int,
    cursor: str | None,
) -> tuple[list[tuple[ItemRow, DatasetRow]], str | None]:
    """Pending datasets matching ``condition``, oldest request first (keyset on time, seq)."""
    query = (
        select(ItemRow, DatasetRow)
        .join(DatasetRow, DatasetRow.item_id == ItemRow.id)
        .where(DatasetRow.release_status == "PENDING", condition)
    )
    if cursor is not None:
        kind, when, seq = decode_cursor(cursor, length=3)
        if kind != scope or not isinstance(seq, int) or isinstance(seq, bool):
            raise _bad_cursor()
        after = cursor_time(when)
        position = tuple_(DatasetRow.release_requested_at, ItemRow.seq)
        bound = tuple_(literal(after, UTCDateTime()), literal(seq, BigInteger()))
        query = query.where(position > bound)
    query = query.order_by(DatasetRow.release_requested_at, ItemRow.seq).limit(page_size + 1)
    rows = [(r[0], r[1]) for r in (await session.execute(query)).all()]
    more = len(rows) > page_size
    rows = rows[:page_size]
    next_cursor = None
    if more:
        item, dataset = rows[-1]
        requested = dataset.release_requested_at
        assert requested is not None  # set by every request
        next_cursor = encode_cursor([scope, requested.isoformat(), item.seq])
    return rows, next_cursor


async def awaiting_review(
    session: AsyncSession, principal: Principal, *, page_size: int, cursor: str | None
) -> tuple[list[tuple[ItemRow, DatasetRow]], str | None]:
    """The datasets awaiting the caller's review, oldest request first."""
    return await _pending(
        session,
        "awaiting",
        ItemRow.reviewer == principal.username,
        page_size=page_size,
        cursor=cursor,
    )


async def my_requests(
    session: AsyncSession, principal: Principal, *, page_size: int, cursor: str | None
) -> tuple[list[tuple[ItemRow, DatasetRow]], str | None]:
    """The caller's pending release requests, oldest first."""
    return await _pending(
        session,
        "mine",
        DatasetRow.release_requester == principal.username,
        page_size=page_size,
        cursor=cursor,
    )
