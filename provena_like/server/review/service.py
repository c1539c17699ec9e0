"""The release workflow on a database session: request, approve, reject, withdraw; listings.

```text
NOT_RELEASED ──request (dataset admin, names a reviewer)──▶ PENDING
PENDING ──approve (that reviewer)──▶ RELEASED        (release_time, approver set)
PENDING ──reject (that reviewer, notes required)──▶ NOT_RELEASED
PENDING ──withdraw (dataset admin)──▶ NOT_RELEASED
```

Anything else is refused: 409 with a code naming the current state (``under_review``,
``released``, ``not_under_review``) and ``details.state``; 403 ``not_your_review`` when
someone other than the named reviewer decides a pending request; 409 ``locked`` when asking
for the release of a locked dataset, or approving one. These answers name the release state,
so a caller who may not read the dataset (and was never its reviewer) gets 403 ``forbidden``
whatever the state.

The four-eyes rule: nobody who holds ``admin`` on a dataset - its owner, anyone an ``admin``
grant reaches, system admins - nor the requester may be its reviewer (422 at the request);
a reviewer who gains ``admin`` while the request waits can't approve it (403 ``four_eyes``).

Every step is one transaction whose first write is a conditional UPDATE of the item row
(``WHERE revision = <the revision checked>``, bumping it): every step bumps the revision, so
of two concurrent steps exactly one matches, and the other reloads - holding the row lock
now - and is decided again against the new state (a second approval gets 409 ``released``).
The dataset row moves with a second conditional UPDATE (``WHERE release_status = <old>``),
and the step is appended to the release history. Notifications are the routes' business,
after the commit.

A request and an approval also check the stored data against the manifest
(:mod:`~provena_like.server.datastore.integrity`; 409 ``data_changed`` naming the files),
once before anything is written and once more, for rows that changed meanwhile, after the
dataset row is claimed. They run while the data is frozen in the store: the routes wrap
them in :meth:`~provena_like.server.datastore.freeze.DataFreeze.freezing` and pass the
check; a step that needs the check and got none (its caller wasn't expected to be allowed to
take it, see :func:`freeze_wanted`) is refused with 409 ``conflict``, to be retried.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.review import ReleaseAction, ReleaseEvent, ReleaseRequest
from provena_like.server import access
from provena_like.server.datastore.integrity import ManifestCheck
from provena_like.server.datastore.service import (
    load_dataset,
    locked_error,
    refuse_unless_open,
    release_state_error,
)
from provena_like.server.datastore.tables import DatasetRow
from provena_like.server.db.base import utcnow
from provena_like.server.errors import ServiceError
from provena_like.server.pagination import KeyColumn, keyset_page
from provena_like.server.registry.tables import ItemRow
from provena_like.server.security import Principal

from .reviewers import REVIEWER, check_reviewer, holds_admin
from .tables import ReleaseEventRow

__all__ = [
    "NO_DATA_CHECK",
    "DataCheck",
    "Queue",
    "Transition",
    "decide",
    "freeze_wanted",
    "history_page",
    "pending_page",
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
    check_data: bool = False  # the stored data must match the manifest (request, approve)


@dataclass(frozen=True)
class DataCheck:
    """How a step checks the stored data against the manifest.

    With ``check``; or not at all when ``needed`` is False (a server without an object store
    has no data to check).
    """

    check: ManifestCheck | None
    needed: bool = True


NO_DATA_CHECK = DataCheck(check=None, needed=False)


def _closing_step(
    action: ReleaseAction,
    status: str,
    item: ItemRow,
    notes: str,
    *,
    values: dict[str, Any] | None = None,
    check_data: bool = False,
) -> _Step:
    """A step that ends the pending request (approve, reject, withdraw).

    The item has no reviewer after it; its history entry names the reviewer it had.
    """
    return _Step(
        action=action,
        status=status,
        reviewer=None,
        event_reviewer=item.reviewer,
        notes=notes,
        values=values or {},
        check_data=check_data,
    )


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


async def _check_data(
    data: DataCheck, session: AsyncSession, item_id: str, dataset: DatasetRow
) -> None:
    if data.check is not None:
        await data.check.run(session, item_id, dataset.prefix, dataset.release_status)
    elif data.needed:
        raise ServiceError(
            409, "conflict", f"Dataset {item_id} changed while its release step began; retry."
        )


async def _apply(
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    decide_step: Decide,
    *,
    confirm: Callable[[], Awaitable[None]] | None = None,
    data: DataCheck = NO_DATA_CHECK,
) -> Transition:
    """Decide a step against the dataset as loaded and write it with conditional UPDATEs."""
    for attempt in range(2):
        item, dataset = await load_dataset(session, item_id, for_update=attempt > 0)
        now = utcnow()
        step = await decide_step(item, dataset, now)
        if step.check_data:
            # First pass, before any write (holds no lock); then decide again, so that the
            # step's time is taken after a long check.
            await _check_data(data, session, item_id, dataset)
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
        if step.check_data:  # second pass: rows registered since the first one
            await _check_data(data, session, item_id, dataset)
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
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    body: ReleaseRequest,
    *,
    data: DataCheck = NO_DATA_CHECK,
) -> Transition:
    """Ask for the release of a dataset: ``NOT_RELEASED`` → ``PENDING``.

    Needs ``admin`` on the dataset; refused while it is locked (409 ``locked``) or not
    ``NOT_RELEASED`` (409 ``under_review`` / ``released``); the reviewer must be an enabled
    user with the system role ``reviewer`` other than the caller (422, field ``reviewer``);
    the stored files must match the manifest (409 ``data_changed``, see ``data``).
    The reviewer may read the dataset's metadata and data until they decide.
    """

    async def decide_step(item: ItemRow, dataset: DatasetRow, now: datetime) -> _Step:
        access.require(principal, item, "admin")
        refuse_unless_open(
            item,
            dataset,
            locked="unlock it before asking for its release",
            closed="it can't be requested",
        )
        await check_reviewer(session, body.reviewer, requester=principal.username, item=item)
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
            check_data=True,
        )

    async def confirm() -> None:  # the role can't be taken away before the commit
        item, _ = await load_dataset(session, item_id)
        await check_reviewer(
            session, body.reviewer, requester=principal.username, item=item, lock=True
        )

    return await _apply(session, principal, item_id, decide_step, confirm=confirm, data=data)


async def decide(
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    verdict: Literal["approve", "reject"],
    notes: str,
    *,
    data: DataCheck = NO_DATA_CHECK,
) -> Transition:
    """Approve (``PENDING`` → ``RELEASED``) or reject (→ ``NOT_RELEASED``) a request.

    An approval checks the stored files against the manifest (409 ``data_changed``, see
    ``data``): the reviewer may then reject the request, so that the files can be fixed.

    Only the reviewer the request names, while they hold the system role ``reviewer``, may
    decide (403 ``not_your_review`` for anyone else, system admins included). A dataset that
    is not ``PENDING`` has nothing to decide: 409 naming its state. Both answers tell the
    dataset's release state, so they go only to callers with a right to know it: those who
    may read the dataset (``metadata-read``, which the named reviewer holds while the request
    waits) and the reviewers its release history names. Anyone else gets the same 403
    ``forbidden`` in every state. A locked dataset can't be approved (409 ``locked``), only
    rejected; nor can a reviewer approve while they hold ``admin`` on the dataset (403
    ``four_eyes``: the owner, an admin grant or system admin).
    """

    async def decide_step(item: ItemRow, dataset: DatasetRow, now: datetime) -> _Step:
        if not await _may_know_release_state(session, principal, item):
            access.require(principal, item, "metadata-read")  # raises the uniform 403
        if dataset.release_status != "PENDING":
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
        if verdict == "approve" and holds_admin(principal, item):
            raise ServiceError(
                403,
                "four_eyes",
                f"You hold admin on dataset {item.id} (as its owner, through a grant or as a "
                "system admin), so you can't approve its release: someone without admin on "
                "it must (rejecting is still possible; the requester may withdraw and name "
                "another reviewer).",
                details={"state": "PENDING"},
            )
        if verdict == "approve":
            if item.locked:
                raise locked_error(
                    item.id,
                    "PENDING",
                    "it can't be released until an admin of it unlocks it (rejecting the "
                    "request is still possible)",
                )
            approval = {"release_time": now, "release_approver": principal.username}
            return _closing_step(
                "approve", "RELEASED", item, notes, values=approval, check_data=True
            )
        return _closing_step("reject", "NOT_RELEASED", item, notes)

    return await _apply(session, principal, item_id, decide_step, data=data)


async def freeze_wanted(
    session: AsyncSession, principal: Principal, item_id: str, action: ReleaseAction
) -> bool:
    """Whether ``action`` by ``principal`` may freeze the dataset's data, as it looks now.

    True for a request by an admin of an unlocked ``NOT_RELEASED`` dataset and for an
    approval by the named reviewer of an unlocked ``PENDING`` one. The routes freeze the
    data in the store only then, so that a caller who may not take the step can't freeze
    someone else's dataset even briefly; the step itself decides again.
    """
    try:
        item, dataset = await load_dataset(session, item_id)
    except ServiceError:
        return False
    if item.locked:
        return False
    if action == "request":
        return dataset.release_status == "NOT_RELEASED" and "admin" in access.roles_on(
            principal, item
        )
    if action == "approve":
        return dataset.release_status == "PENDING" and principal.username == item.reviewer
    return False


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
        return _closing_step("withdraw", "NOT_RELEASED", item, notes)

    return await _apply(session, principal, item_id, decide_step)


async def _may_know_release_state(
    session: AsyncSession, principal: Principal, item: ItemRow
) -> bool:
    """Whether ``principal`` may learn the dataset's release state from a refusal.

    Anyone with a role on it (every role implies ``metadata-read``; the named reviewer holds
    read roles while the request waits), and the reviewers named in its release history.
    """
    if access.roles_on(principal, item):
        return True
    named = await session.scalar(
        select(ReleaseEventRow.id)
        .where(ReleaseEventRow.item_id == item.id, ReleaseEventRow.reviewer == principal.username)
        .limit(1)
    )
    return named is not None


# -- reading -------------------------------------------------------------------------------


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
    rows, next_cursor = await keyset_page(
        session,
        select(ReleaseEventRow).where(ReleaseEventRow.item_id == item_id),
        [KeyColumn(ReleaseEventRow.id, "int", lambda r: r.id)],
        cursor=cursor,
        page_size=page_size,
        scope=[item_id],
    )
    return [to_event(r) for r in rows], next_cursor


Queue = Literal["awaiting", "mine"]
"""A queue of pending requests: those awaiting the caller's review, or the caller's own."""


async def pending_page(
    session: AsyncSession,
    principal: Principal,
    queue: Queue,
    *,
    page_size: int,
    cursor: str | None,
) -> tuple[list[tuple[ItemRow, DatasetRow]], str | None]:
    """One page of the pending datasets in ``queue``, oldest request first.

    ``awaiting``: those naming the caller as reviewer; ``mine``: those the caller requested.
    Keyset on (request time, seq); a cursor only fits the queue that made it.
    """
    if queue == "awaiting":
        condition = ItemRow.reviewer == principal.username
    else:
        condition = DatasetRow.release_requester == principal.username
    query = (
        select(ItemRow, DatasetRow)
        .join(DatasetRow, DatasetRow.item_id == ItemRow.id)
        .where(DatasetRow.release_status == "PENDING", condition)
    )
    order = [
        # release_requested_at is set by every request, so a pending dataset has one
        KeyColumn(DatasetRow.release_requested_at, "time", lambda r: r[1].release_requested_at),
        KeyColumn(ItemRow.seq, "int", lambda r: r[0].seq),
    ]
    return await keyset_page(
        session, query, order, cursor=cursor, page_size=page_size, scope=[queue]
    )
