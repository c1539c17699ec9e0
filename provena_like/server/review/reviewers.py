"""Reviewers: users with the system role ``reviewer`` (the one source of truth).

System admins add and remove the role here (or with ``PATCH /auth/users/{name}``, which
writes the same column); anyone signed in may list reviewers, so that a requester can pick
one. A reviewer with pending reviews can't be removed (409 ``reviewer_busy``) until those
requests are decided or withdrawn, so no request is left with nobody to decide it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, cast, select
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.review import Reviewer
from provena_like.server import access
from provena_like.server.db.identity import GroupMemberRow, UserRow
from provena_like.server.errors import ServiceError, not_found, validation_error
from provena_like.server.pagination import KeyColumn, keyset_page
from provena_like.server.registry.tables import ItemRow
from provena_like.server.security import Principal

__all__ = [
    "REVIEWER",
    "add_reviewer",
    "check_reviewer",
    "holds_admin",
    "list_reviewers",
    "remove_reviewer",
    "reviewer_principal",
    "to_reviewer",
]

REVIEWER = "reviewer"
"""The system role of reviewers."""


def to_reviewer(row: UserRow) -> Reviewer:
    """The wire form of a reviewer (username and display name only)."""
    return Reviewer(username=row.username, display_name=row.display_name)


def _is_reviewer(row: UserRow) -> bool:
    return REVIEWER in (row.system_roles or ()) and not row.disabled


async def list_reviewers(
    session: AsyncSession, *, page_size: int, cursor: str | None
) -> tuple[list[Reviewer], str | None]:
    """One page of enabled reviewers, by username, and the cursor of the next page."""
    # system_roles is a JSON list of known names: its text holds '"reviewer"' exactly when
    # the role is there, on SQLite and PostgreSQL alike.
    query = select(UserRow).where(
        cast(UserRow.system_roles, String).like(f'%"{REVIEWER}"%'),
        UserRow.disabled.is_(False),
    )
    rows, next_cursor = await keyset_page(
        session,
        query,
        [KeyColumn(UserRow.username, "str", lambda r: r.username)],
        cursor=cursor,
        page_size=page_size,
    )
    return [to_reviewer(r) for r in rows if _is_reviewer(r)], next_cursor


async def add_reviewer(session: AsyncSession, username: str) -> tuple[Reviewer, bool]:
    """Give ``username`` the system role ``reviewer``; returns it and whether it was new.

    Raises:
        ServiceError: 404 for an unknown user, 422 for a disabled one.
    """
    row = await session.get(UserRow, username, populate_existing=True, with_for_update=True)
    if row is None:
        raise not_found(f"User {username!r}")
    if row.disabled:
        raise validation_error(
            [{"field": "username", "message": "disabled", "type": "user_disabled"}],
            message=f"User {username!r} is disabled and can't review; enable the account first.",
        )
    roles = list(row.system_roles or ())
    if REVIEWER in roles:
        return to_reviewer(row), False
    row.system_roles = [*roles, REVIEWER]
    await session.flush()
    return to_reviewer(row), True


async def remove_reviewer(session: AsyncSession, username: str) -> None:
    """Take the system role ``reviewer`` from ``username``.

    The role is taken first (the transaction's first write, which orders it against a
    concurrent release request naming this user), then the pending reviews are counted.

    Raises:
        ServiceError: 404 when the user is not a reviewer; 409 ``reviewer_busy`` while
            release requests await their decision (``details.datasets`` lists them).
    """
    row = await session.get(UserRow, username, populate_existing=True, with_for_update=True)
    if row is None or REVIEWER not in (row.system_roles or ()):
        raise not_found(f"Reviewer {username!r}")
    row.system_roles = [r for r in row.system_roles if r != REVIEWER]
    await session.flush()
    pending = list(
        await session.scalars(
            select(ItemRow.id).where(ItemRow.reviewer == username).order_by(ItemRow.seq).limit(10)
        )
    )
    if pending:
        raise ServiceError(
            409,
            "reviewer_busy",
            f"{username!r} is the reviewer of pending release requests ({', '.join(pending)}"
            f"{', ...' if len(pending) == 10 else ''}): they must approve or reject them, or "
            "the requesters withdraw them, before the role can be taken away.",
            details={"datasets": pending},
        )


async def reviewer_principal(session: AsyncSession, row: UserRow) -> Principal:
    """The user ``row`` as a :class:`Principal` (system roles and current groups)."""
    groups = await session.scalars(
        select(GroupMemberRow.group_name).where(GroupMemberRow.username == row.username)
    )
    return Principal(
        username=row.username,
        system_roles=frozenset(row.system_roles or ()),
        groups=frozenset(groups),
    )


def holds_admin(principal: Principal, item: ItemRow) -> bool:
    """Whether ``principal`` holds ``admin`` on ``item`` (owner, grant or system admin).

    Such a user could have made the release themselves, so the four-eyes rule keeps them
    from approving it.
    """
    return "admin" in access.roles_on(principal, item)


async def check_reviewer(
    session: AsyncSession, username: str, *, requester: str, item: ItemRow, lock: bool = False
) -> None:
    """422 (field ``reviewer``) unless ``username`` may review ``requester``'s request.

    A reviewer is an enabled user with the system role ``reviewer``, other than the
    requester (``self_review``) and holding no ``admin`` on the dataset (``dataset_admin``:
    its owner, anyone an ``admin`` grant reaches, system admins). An unknown user, a disabled
    one and one without the role all get the same answer (``not_a_reviewer``), so that the
    request can't be used to learn which usernames exist. ``lock`` keeps the user row from
    changing until the transaction ends (PostgreSQL), so the role can't be taken away
    between this check and the commit.
    """
    problem: dict[str, Any] | None = None
    if username == requester:
        problem = {"message": "you can't review your own release request", "type": "self_review"}
    else:
        row = await session.get(UserRow, username, populate_existing=True, with_for_update=lock)
        if row is None or not _is_reviewer(row):
            problem = {
                "message": f"{username!r} is not a reviewer; pick one from "
                "GET /datastore/reviewers, or ask a system admin to add them",
                "type": "not_a_reviewer",
            }
        elif holds_admin(await reviewer_principal(session, row), item):
            problem = {
                "message": f"{username!r} holds admin on dataset {item.id}, so they can't "
                "review its release (four-eyes rule); pick a reviewer without admin on it",
                "type": "dataset_admin",
            }
    if problem is not None:
        raise validation_error(
            [{"field": "reviewer", **problem}],
            message=f"Invalid request: check reviewer ({problem['message']}).",
        )
