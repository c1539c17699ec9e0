"""Access evaluation: the one place that decides who may do what with an item.

Per-item roles are ordered (:data:`~provena_like.models.registry.ROLE_ORDER`):
``metadata-read < metadata-write < data-read < data-write < admin``, and each implies the
weaker ones. A caller's *effective* roles on an item are the union of

- every role, for a system admin (system role ``admin``) or the item's owner;
- the item's ``general`` roles, for anyone signed in;
- the roles granted to each group the caller is a member of;
- ``metadata-read`` and ``data-read`` - reading, never writing - for the reviewer named in
  a pending release request of a dataset (``registry_items.reviewer``), until the request is
  decided or withdrawn. (The one exception to "a role implies the weaker ones": a reviewer
  reads the data without being able to change the metadata.)

System roles are checked here too (:func:`has_system_role`, :func:`require_system_role`):
``admin`` (may do everything) and ``reviewer`` (may be named to review release requests).

Policy for refusals: an unauthenticated caller gets 401; a signed-in caller who lacks the
needed role gets 403 (``forbidden``) naming the role and the item, whether or not they may
see the item at all. (Handles are public identifiers, so hiding an item's existence behind a
404 would buy little and make "why can't I see it?" harder to answer.)

Listings filter by access *in SQL* with :func:`readable_filter`, over the
``registry_item_grants`` rows that :func:`grant_levels` derives from the access settings, so
that pages are full and bounded however few items the caller may read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from sqlalchemy import ColumnElement, and_, exists, or_, true

from provena_like.models.registry import ROLE_ORDER, Role
from provena_like.server.errors import forbidden, unauthenticated
from provena_like.server.registry.tables import ItemGrantRow, ItemRow
from provena_like.server.security import Principal

__all__ = [
    "ALL_ROLES",
    "GENERAL",
    "GROUP",
    "REVIEWER_ROLES",
    "ROLE_LEVEL",
    "Guarded",
    "can_change_owner",
    "effective_roles",
    "grant_levels",
    "has_system_role",
    "normalise_roles",
    "readable_filter",
    "require",
    "require_system_role",
    "role_sources",
    "roles_on",
]

ROLE_LEVEL: dict[str, int] = {role: i + 1 for i, role in enumerate(ROLE_ORDER)}
"""role → level, 1 (metadata-read) to 5 (admin); a role implies every lower level."""

ALL_ROLES: list[Role] = list(ROLE_ORDER)

GENERAL = "general"
GROUP = "group"

REVIEWER_ROLES: tuple[Role, ...] = ("metadata-read", "data-read")
"""What the reviewer named in a pending release request holds on the dataset: read only."""


class Guarded(Protocol):
    """Anything with an owner and access settings (registry items, datasets)."""

    @property
    def id(self) -> str:
        """The handle, for messages."""
        ...

    @property
    def owner(self) -> str:
        """The owning username."""
        ...

    @property
    def general_roles(self) -> Sequence[str]:
        """Roles of everyone signed in."""
        ...

    @property
    def group_roles(self) -> Mapping[str, Sequence[str]]:
        """Group name → roles of its members."""
        ...

    @property
    def reviewer(self) -> str | None:
        """The reviewer of a pending release request (datasets), or None."""
        ...


def _up_to(level: int) -> list[Role]:
    return list(ROLE_ORDER[:level])


def normalise_roles(roles: Iterable[str]) -> list[Role]:
    """``roles`` without duplicates, in :data:`ROLE_ORDER` order (unknown names dropped)."""
    given = set(roles)
    return [role for role in ROLE_ORDER if role in given]


def _level(roles: Iterable[str]) -> int:
    return max((ROLE_LEVEL.get(role, 0) for role in roles), default=0)


def effective_roles(
    principal: Principal | None,
    owner: str,
    general: Iterable[str],
    groups: Mapping[str, Iterable[str]],
    *,
    reviewer: str | None = None,
) -> list[Role]:
    """The roles ``principal`` holds on an item, implied ones included, weakest first.

    Example:
        ```python
        effective_roles(alice, "bob", ["metadata-read"], {"lab": ["data-read"]})
        # alice in "lab" → ["metadata-read", "metadata-write", "data-read"]
        ```
    """
    if principal is None:
        return []
    if principal.is_admin or principal.username == owner:
        return list(ALL_ROLES)
    level = _level(general)
    for group in principal.groups:
        level = max(level, _level(groups.get(group, ())))
    roles = _up_to(level)
    if reviewer is not None and principal.username == reviewer:
        roles = normalise_roles([*roles, *REVIEWER_ROLES])
    return roles


def roles_on(principal: Principal | None, item: Guarded) -> list[Role]:
    """:func:`effective_roles` of ``principal`` on ``item``."""
    return effective_roles(
        principal, item.owner, item.general_roles, item.group_roles, reviewer=item.reviewer
    )


def role_sources(principal: Principal, item: Guarded) -> list[str]:
    """Where the roles of ``principal`` on ``item`` come from, strongest reason first.

    Each source is ``system-admin``, ``owner``, ``general``, ``group:<name>`` or
    ``reviewer``; an empty list means no access at all.

    Example:
        ```python
        role_sources(alice, item)   # ["general", "group:lab"]
        ```
    """
    sources: list[str] = []
    if principal.is_admin:
        sources.append("system-admin")
    if principal.username == item.owner:
        sources.append("owner")
    if _level(item.general_roles):
        sources.append(GENERAL)
    sources += [
        f"group:{group}"
        for group in sorted(principal.groups)
        if _level(item.group_roles.get(group, ()))
    ]
    if item.reviewer is not None and principal.username == item.reviewer:
        sources.append("reviewer")
    return sources


def has_system_role(principal: Principal | None, role: str) -> bool:
    """Whether ``principal`` holds the system role ``role`` (``admin`` or ``reviewer``)."""
    return principal is not None and role in principal.system_roles


def require_system_role(principal: Principal | None, role: str, what: str) -> Principal:
    """Refuse unless ``principal`` holds the system role ``role``; returns the principal.

    Args:
        principal: the caller (None → 401).
        role: ``admin`` or ``reviewer``.
        what: the action, for the message (``"Managing reviewers"``).

    Raises:
        ServiceError: 401 without a principal, 403 (``forbidden``) without the role.
    """
    if principal is None:
        raise unauthenticated()
    if not has_system_role(principal, role):
        raise forbidden(f"{what} needs the system role {role!r}.")
    return principal


def require(principal: Principal | None, item: Guarded, role: Role) -> list[Role]:
    """Refuse unless ``principal`` holds ``role`` on ``item``; returns the effective roles.

    Raises:
        ServiceError: 401 without a principal, 403 (``forbidden``) without the role.
    """
    if principal is None:
        raise unauthenticated()
    roles = roles_on(principal, item)
    if role in roles:
        return roles
    if not roles:
        raise forbidden(
            f"You have no access to item {item.id}: this needs the {role!r} role; "
            "ask its owner or an admin for access."
        )
    held = ", ".join(roles)
    raise forbidden(f"This needs the {role!r} role on item {item.id}; you have: {held}.")


def can_change_owner(principal: Principal, item: Guarded) -> bool:
    """Only a system admin or the current owner may hand an item to someone else."""
    return principal.is_admin or principal.username == item.owner


def grant_levels(
    general: Iterable[str], groups: Mapping[str, Iterable[str]]
) -> list[tuple[str, str, int]]:
    """The grant rows for access settings: ``(kind, grantee, level)`` with level ≥ 1."""
    rows: list[tuple[str, str, int]] = []
    level = _level(general)
    if level:
        rows.append((GENERAL, "", level))
    for group, roles in sorted(groups.items()):
        level = _level(roles)
        if level:
            rows.append((GROUP, group, level))
    return rows


def readable_filter(principal: Principal, min_role: Role = "metadata-read") -> ColumnElement[bool]:
    """A WHERE clause on ``registry_items`` keeping the items ``principal`` holds ``min_role`` on.

    System admins see everything; others see what they own, plus items with a ``general``
    grant or a grant to one of their groups at ``min_role`` or better, plus the datasets
    they are reviewing (for the :data:`REVIEWER_ROLES`).
    """
    if principal.is_admin:
        return true()
    level = ROLE_LEVEL[min_role]
    grantee = ItemGrantRow.kind == GENERAL
    if principal.groups:
        grantee = or_(
            grantee,
            and_(ItemGrantRow.kind == GROUP, ItemGrantRow.grantee.in_(sorted(principal.groups))),
        )
    granted = exists().where(
        ItemGrantRow.item_id == ItemRow.id, ItemGrantRow.level >= level, grantee
    )
    if min_role in REVIEWER_ROLES:
        return or_(
            ItemRow.owner == principal.username, ItemRow.reviewer == principal.username, granted
        )
    return or_(ItemRow.owner == principal.username, granted)
