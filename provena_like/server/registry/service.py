"""Registry logic on a database session: no HTTP here, so other services and tests reuse it.

Every function runs inside the caller's transaction (the routes open one per write) and
raises :class:`~provena_like.server.errors.ServiceError` for anything the caller did wrong.

Writes are optimistic: an item row changes only through :func:`_write`, one
``UPDATE ... SET revision = revision + 1 WHERE id = :id AND revision = :loaded RETURNING *``.
Every change bumps the revision, so of several writers that loaded the same revision exactly
one matches the row; a loser with a precondition (``If-Match``) gets 412, one without
reloads and wins on the second attempt (last writer wins). The UPDATE is the first write of
each transaction, so on PostgreSQL the row lock it takes orders everything that follows
(grants, history, lock events) and on SQLite the database write lock is held from then on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Select, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.registry import (
    AccessSettings,
    AccessUpdate,
    HistoryEntry,
    Item,
    ItemCreate,
    ItemUpdate,
    LockEvent,
    Role,
    SortKey,
    SortOrder,
    Versioning,
)
from provena_like.server import access
from provena_like.server.db.base import utcnow
from provena_like.server.db.identity import GroupRow, UserRow
from provena_like.server.errors import ServiceError, not_found, validation_error
from provena_like.server.pagination import KeyColumn, keyset_page
from provena_like.server.registration.rules import check_record
from provena_like.server.registry import subtypes
from provena_like.server.registry.events import ItemChange, item_written
from provena_like.server.registry.handles import mint_handle
from provena_like.server.registry.tables import HistoryRow, ItemGrantRow, ItemRow, LockEventRow
from provena_like.server.security import Principal

__all__ = [
    "Guard",
    "check_names",
    "create_item",
    "get_access",
    "history_page",
    "list_history",
    "list_items",
    "load_item",
    "lock_events",
    "revert_item",
    "set_access",
    "set_lock",
    "to_item",
    "update_item",
]


# -- reading -------------------------------------------------------------------------------


async def load_item(session: AsyncSession, item_id: str, *, for_update: bool = False) -> ItemRow:
    """The item ``item_id`` as currently stored; 404 when there is none.

    ``for_update`` locks the row until the transaction ends (PostgreSQL; SQLite ignores it).
    """
    row = await session.get(ItemRow, item_id, populate_existing=True, with_for_update=for_update)
    if row is None:
        raise not_found(f"Item {item_id}")
    return row


async def load_item_of(
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    subtype: str,
    role: Role,
    *,
    for_update: bool = False,
) -> ItemRow:
    """The item ``item_id``, when it is a ``subtype`` and ``principal`` holds ``role`` on it.

    Raises:
        ServiceError: 404 (no such item), 422 naming ``path.id`` (another subtype), 403
            (the role is missing).
    """
    row = await load_item(session, item_id, for_update=for_update)
    if row.subtype != subtype:
        raise validation_error(
            [{"field": "path.id", "message": f"{item_id} is a {row.subtype}", "type": "subtype"}],
            message=f"Item {item_id} is a {row.subtype}, not a {subtype.replace('_', ' ')}.",
        )
    access.require(principal, row, role)
    return row


def to_item(row: ItemRow, roles: list[Role], history: list[HistoryEntry] | None = None) -> Item:
    """The wire form of ``row`` for a caller holding ``roles``."""
    return Item(
        id=row.id,
        subtype=row.subtype,
        display_name=row.display_name,
        owner=row.owner,
        created_at=row.created_at,
        updated_at=row.updated_at,
        revision=row.revision,
        record=row.record,
        access=_access_of(row),
        locked=row.locked,
        versioning=Versioning(
            version=row.version, previous=row.previous_version, next=row.next_version
        ),
        roles=roles,
        history=history,
    )


def _access_of(row: ItemRow) -> AccessSettings:
    return AccessSettings(
        owner=row.owner,
        general=access.normalise_roles(row.general_roles),
        groups={g: access.normalise_roles(r) for g, r in row.group_roles.items()},
    )


def _entry(row: HistoryRow) -> HistoryEntry:
    return HistoryEntry(
        id=row.id,
        time=row.time,
        user=row.user,
        reason=row.reason,
        snapshot=row.snapshot,
        revision=row.revision,
    )


async def list_history(session: AsyncSession, item_id: str) -> list[HistoryEntry]:
    """Every history entry of an item, newest first."""
    rows = await session.scalars(
        select(HistoryRow).where(HistoryRow.item_id == item_id).order_by(HistoryRow.id.desc())
    )
    return [_entry(r) for r in rows]


async def history_page(
    session: AsyncSession, item_id: str, *, page_size: int, cursor: str | None
) -> tuple[list[HistoryEntry], str | None]:
    """One page of an item's history, newest first, and the cursor of the next page."""
    rows, next_cursor = await keyset_page(
        session,
        select(HistoryRow).where(HistoryRow.item_id == item_id),
        [KeyColumn(HistoryRow.id, "int", lambda r: r.id, descending=True)],
        cursor=cursor,
        page_size=page_size,
        scope=[item_id],
    )
    return [_entry(r) for r in rows], next_cursor


async def lock_events(session: AsyncSession, item_id: str) -> list[LockEvent]:
    """Every lock and unlock of an item, oldest first."""
    rows = await session.scalars(
        select(LockEventRow).where(LockEventRow.item_id == item_id).order_by(LockEventRow.id)
    )
    return [
        LockEvent(
            action="lock" if r.action == "lock" else "unlock",
            time=r.time,
            user=r.user,
            reason=r.reason,
        )
        for r in rows
    ]


def get_access(row: ItemRow) -> AccessSettings:
    """The access settings of an item."""
    return _access_of(row)


# -- listing -------------------------------------------------------------------------------

SORT_KEYS: dict[str, Callable[[bool], KeyColumn]] = {
    "created": lambda desc: KeyColumn(ItemRow.created_at, "time", lambda r: r.created_at, desc),
    "updated": lambda desc: KeyColumn(ItemRow.updated_at, "time", lambda r: r.updated_at, desc),
    "name": lambda desc: KeyColumn(ItemRow.name_key, "str", lambda r: r.name_key, desc),
}
"""sort → the item column it orders by (descending or not), for the listings of items."""


def item_order(sort: str, order: SortOrder, item: Callable[[Any], ItemRow]) -> list[KeyColumn]:
    """The keyset order of a listing of items: ``sort``, then the handle number.

    Args:
        sort: a key of :data:`SORT_KEYS`.
        order: ``asc`` or ``desc``, for both columns.
        item: the item row in a result row (the row itself, or a part of a tuple).
    """
    desc = order == "desc"
    key = SORT_KEYS[sort](desc)
    return [
        KeyColumn(key.column, key.kind, lambda r: key.value(item(r)), desc),
        KeyColumn(ItemRow.seq, "int", lambda r: item(r).seq, desc),
    ]


async def list_items(
    session: AsyncSession,
    principal: Principal,
    *,
    subtype: str | None = None,
    owner: str | None = None,
    sort: SortKey = "created",
    order: SortOrder = "asc",
    page_size: int = 100,
    cursor: str | None = None,
) -> tuple[list[ItemRow], str | None]:
    """One page of the items ``principal`` may read, and the cursor of the next page.

    Keyset pagination on ``(sort key, seq)``: ``seq`` (the handle number) is unique, so the
    order is total and stable, and every item present for the whole walk is returned exactly
    once. (An item updated mid-walk may move when sorting by ``updated``.) The access filter
    is part of the query, so a page is short only at the end.
    """
    if subtype is not None:
        subtypes.require_subtype(subtype, field="query.subtype")
    query: Select[ItemRow] = select(ItemRow).where(access.readable_filter(principal))
    if subtype is not None:
        query = query.where(ItemRow.subtype == subtype)
    if owner is not None:
        query = query.where(ItemRow.owner == owner)
    return await keyset_page(
        session,
        query,
        item_order(sort, order, lambda r: r),
        cursor=cursor,
        page_size=page_size,
        scope=[sort, order, subtype, owner],
    )


# -- writing -------------------------------------------------------------------------------


def _snapshot(row: ItemRow) -> dict[str, Any]:
    return {"display_name": row.display_name, "record": row.record}


def _add_history(session: AsyncSession, row: ItemRow, user: str, reason: str) -> None:
    session.add(
        HistoryRow(
            item_id=row.id,
            revision=row.revision,
            time=row.updated_at,
            user=user,
            reason=reason,
            snapshot=_snapshot(row),
        )
    )


async def check_names(
    session: AsyncSession, groups: Mapping[str, object], owner: str | None = None
) -> None:
    """422 for access settings naming groups or an owner that don't exist.

    The one check of the names in access settings, for the registry's items and the
    datastore's datasets alike: each unknown group is a ``groups.<name>`` detail, an unknown
    owner an ``owner`` one.

    Args:
        session: a database session.
        groups: the groups of the settings (group name → roles).
        owner: a new owner to check, if any.

    Raises:
        ServiceError: 422 ``validation_error``.
    """
    details: list[dict[str, Any]] = []
    if groups:
        known = set(await session.scalars(select(GroupRow.name).where(GroupRow.name.in_(groups))))
        details += [
            {"field": f"groups.{g}", "message": f"no group named {g!r}", "type": "unknown_group"}
            for g in sorted(set(groups) - known)
        ]
    if owner is not None and await session.get(UserRow, owner) is None:
        details.append(
            {"field": "owner", "message": f"no user named {owner!r}", "type": "unknown_user"}
        )
    if details:
        raise validation_error(details, what="access settings")


def _normalise_groups(groups: dict[str, list[Role]]) -> dict[str, list[Role]]:
    out = {g: access.normalise_roles(r) for g, r in sorted(groups.items())}
    return {g: r for g, r in out.items() if r}


async def _write_grants(
    session: AsyncSession,
    item_id: str,
    general: list[Role],
    groups: dict[str, list[Role]],
    *,
    replace: bool = True,
) -> None:
    if replace:
        await session.execute(delete(ItemGrantRow).where(ItemGrantRow.item_id == item_id))
    session.add_all(
        ItemGrantRow(item_id=item_id, kind=kind, grantee=grantee, level=level)
        for kind, grantee, level in access.grant_levels(general, groups)
    )


async def create_item(
    session: AsyncSession, principal: Principal, body: ItemCreate, *, prefix: str
) -> ItemRow:
    """Register a new item owned by ``principal`` with the next handle under ``prefix``.

    The record is validated by its subtype's model, then by its subtype's rule
    (:func:`~provena_like.server.registration.rules.check_record`: references, lab
    membership), which may add group grants and derive the display name; updates and
    reverts run the same rule.
    """
    record = subtypes.validate_record(body.subtype, body.record)
    outcome = await check_record(session, principal, body.subtype, record)
    values = _record_values(body.subtype, record, body.display_name, outcome.display_name)
    general = access.normalise_roles(body.general)
    granted = {g: [*body.groups.get(g, []), *r] for g, r in outcome.groups.items()}
    groups = _normalise_groups({**body.groups, **granted})
    await check_names(session, groups)
    handle, seq = await mint_handle(session, prefix)
    now = utcnow()
    row = ItemRow(
        id=handle,
        seq=seq,
        subtype=body.subtype,
        owner=principal.username,
        created_at=now,
        updated_at=now,
        revision=1,
        general_roles=list(general),
        group_roles={g: list(r) for g, r in groups.items()},
        locked=False,
        version=1,
        **values,
    )
    session.add(row)
    await session.flush()  # before the rows that refer to it
    await _write_grants(session, handle, general, groups, replace=False)
    _add_history(session, row, principal.username, "created")
    await session.flush()
    await item_written(session, "created", row)
    return row


def _stale(item_id: str, expected: int, current: int) -> ServiceError:
    return ServiceError(
        412,
        "stale_revision",
        f"Item {item_id} is at revision {current}, not {expected}: fetch it again, reapply "
        "your change and retry.",
        details={"expected_revision": expected, "current_revision": current},
        headers={"ETag": f'"{current}"'},
    )


def _refuse_if_locked(row: ItemRow) -> None:
    if row.locked:
        raise ServiceError(
            409, "locked", f"Item {row.id} is locked; an item admin must unlock it first."
        )


Prepare = Callable[[ItemRow], Awaitable[dict[str, Any]]]
"""Checks a write against the item as loaded and returns the column values to set."""

Guard = Callable[[ItemRow], Awaitable[None]]
"""An extra check of a write against the item as loaded (e.g. the datastore's release state);
it runs on every attempt of the conditional UPDATE, so it sees what the UPDATE will match."""


async def _write(
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    role: Role,
    *,
    expected: int | None,
    prepare: Prepare,
    change: ItemChange = "updated",
) -> ItemRow:
    """Change an item with one conditional UPDATE; returns the row as written.

    Loads the item, checks ``role``, runs ``prepare`` (more checks; the values to set) and
    the caller's precondition ``expected`` (None: last writer wins), then runs
    ``UPDATE ... SET revision = revision + 1, ... WHERE id = :id AND revision = :loaded``.
    Every change bumps the revision, so a match means the row is exactly the one checked
    (owner, grants, lock state included). No match means a concurrent write got in first:
    the loop reloads - this time with ``FOR UPDATE`` on PostgreSQL, while SQLite already
    holds its write lock after the failed UPDATE - and decides again, so a caller with a
    stale ``expected`` gets 412 and one without wins on the second attempt. The written row
    is then announced as ``change`` (:func:`~provena_like.server.registry.events.item_written`).
    """
    for attempt in range(2):
        row = await load_item(session, item_id, for_update=attempt > 0)
        access.require(principal, row, role)
        values = await prepare(row)
        if expected is not None and row.revision != expected:
            raise _stale(item_id, expected, row.revision)
        stmt = (
            update(ItemRow)
            .where(ItemRow.id == item_id, ItemRow.revision == row.revision)
            .values(revision=ItemRow.revision + 1, updated_at=utcnow(), **values)
            .returning(ItemRow)
        )
        result = await session.scalars(
            stmt, execution_options={"populate_existing": True, "synchronize_session": False}
        )
        updated = result.one_or_none()
        if updated is not None:
            await item_written(session, change, updated)
            return updated
    raise ServiceError(409, "conflict", f"Item {item_id} is changing concurrently; retry.")


def _record_values(
    subtype: str, record: BaseModel, display_name: str | None, derived: str | None = None
) -> dict[str, Any]:
    if display_name is not None:
        name = subtypes.validate_display_name(display_name)
    elif derived is not None:
        name = derived[: subtypes.MAX_DISPLAY_NAME]
    else:
        name = subtypes.default_display_name(subtype, record)
    return {
        "record": subtypes.record_json(record),
        "display_name": name,
        "name_key": name.casefold(),
    }


async def update_item(
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    body: ItemUpdate,
    *,
    expected: int | None,
    guard: Guard | None = None,
) -> ItemRow:
    """Replace the record (and display name) of an item; needs ``metadata-write``.

    ``expected`` is the base revision (from ``If-Match`` or ``expected_revision``); without
    one the last writer wins. A ``display_name`` left out is derived from the new record.
    ``guard`` refuses the write on other grounds (it runs after the lock check).
    """

    async def prepare(row: ItemRow) -> dict[str, Any]:
        _refuse_if_locked(row)
        if guard is not None:
            await guard(row)
        record = subtypes.validate_record(row.subtype, body.record)
        outcome = await check_record(session, principal, row.subtype, record, row)
        return _record_values(row.subtype, record, body.display_name, outcome.display_name)

    updated = await _write(
        session, principal, item_id, "metadata-write", expected=expected, prepare=prepare
    )
    _add_history(session, updated, principal.username, body.reason)
    await session.flush()
    return updated


async def revert_item(
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    history_id: int,
    reason: str,
    *,
    expected: int | None,
    guard: Guard | None = None,
) -> ItemRow:
    """Restore the snapshot of history entry ``history_id`` as a new history entry.

    The snapshot's record is validated again, so a revert can't bring back a record that
    the subtype's current model rejects. ``guard``: as for :func:`update_item`.
    """

    async def prepare(row: ItemRow) -> dict[str, Any]:
        entry = await session.get(HistoryRow, history_id)
        if entry is None or entry.item_id != item_id:
            raise not_found(f"History entry {history_id} of item {item_id}")
        _refuse_if_locked(row)
        if guard is not None:
            await guard(row)
        record = subtypes.validate_record(row.subtype, dict(entry.snapshot.get("record") or {}))
        outcome = await check_record(session, principal, row.subtype, record, row)
        name = entry.snapshot.get("display_name")
        return _record_values(
            row.subtype, record, name if isinstance(name, str) else None, outcome.display_name
        )

    updated = await _write(
        session, principal, item_id, "metadata-write", expected=expected, prepare=prepare
    )
    _add_history(session, updated, principal.username, f"reverted to entry {history_id}: {reason}")
    await session.flush()
    return updated


async def set_lock(
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    reason: str,
    *,
    lock: bool,
    expected: int | None = None,
) -> ItemRow:
    """Lock an item against record changes (``lock``) or unlock it; needs ``admin`` on it.

    409 ``already_locked`` / ``not_locked`` when there is nothing to do. The lock log gets
    an entry with ``reason``.
    """

    async def prepare(row: ItemRow) -> dict[str, Any]:
        if row.locked and lock:
            raise ServiceError(
                409, "already_locked", f"Item {item_id} is already locked; nothing to do."
            )
        if not row.locked and not lock:
            raise ServiceError(409, "not_locked", f"Item {item_id} is not locked; nothing to do.")
        return {"locked": lock}

    updated = await _write(session, principal, item_id, "admin", expected=expected, prepare=prepare)
    session.add(
        LockEventRow(
            item_id=item_id,
            action="lock" if lock else "unlock",
            time=updated.updated_at,
            user=principal.username,
            reason=reason,
        )
    )
    await session.flush()
    return updated


def _describe_access(owner: str, general: list[Role], groups: dict[str, list[Role]]) -> str:
    gen = ", ".join(general) or "none"
    grp = "; ".join(f"{g}: {', '.join(r)}" for g, r in groups.items()) or "none"
    return f"access changed (owner {owner}; general: {gen}; groups: {grp})"


async def set_access(
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    body: AccessUpdate,
    *,
    expected: int | None,
) -> ItemRow:
    """Replace an item's access settings; needs ``admin`` on it.

    Only a system admin or the current owner may change the owner; the previous owner keeps
    only what the new settings grant. A stale ``expected`` gets 412 before the names are
    checked, so a refused write never tells which users or groups exist. Allowed while the
    item is locked (a lock freezes the metadata, not who may read it). Recorded in the
    history, with ``body.reason`` if given.
    """
    general = access.normalise_roles(body.general)
    groups = _normalise_groups(body.groups)

    async def prepare(row: ItemRow) -> dict[str, Any]:
        new_owner = body.owner != row.owner
        if new_owner and not access.can_change_owner(principal, row):
            raise ServiceError(
                403,
                "forbidden",
                f"Only the owner of item {item_id} or a system admin may change its owner.",
            )
        # The precondition first: a stale write must not reveal whether the users and groups
        # it names exist (a free probe of which names exist, as nothing is written).
        if expected is not None and row.revision != expected:
            raise _stale(item_id, expected, row.revision)
        await check_names(session, groups, body.owner if new_owner else None)
        return {
            "owner": body.owner,
            "general_roles": list(general),
            "group_roles": {g: list(r) for g, r in groups.items()},
        }

    updated = await _write(
        session,
        principal,
        item_id,
        "admin",
        expected=expected,
        prepare=prepare,
        change="access_changed",
    )
    await _write_grants(session, item_id, general, groups)
    reason = _describe_access(body.owner, general, groups)
    if body.reason:
        reason = f"{reason}: {body.reason}"
    _add_history(session, updated, principal.username, reason)
    await session.flush()
    return updated
