"""What a registration record must satisfy beyond its model, checked before it is written.

The registry runs :func:`check_record` on every create, update and revert of an item (see
:mod:`provena_like.server.registry.subtypes`), with the caller and the validated record, in
the writer's transaction. The rules of the registration subtypes:

- **references**: the items a record names exist and are of the right subtype (a subject's
  ``lab``, a session's ``subject`` and ``lab``, a weighing's ``subject``), and a referenced
  subject is readable by the caller; the usernames it names are accounts. Otherwise 422, the
  detail naming the field (``record.lab``) and why (``unknown_item``, ``wrong_subtype``,
  ``unreadable_item``, ``unknown_user``).
- **membership**: a lab's records are written by its members only. A lab names an auth group
  (``record.group``); its *members* are the members of that group. Registering or changing a
  lab needs membership in its group; a subject needs membership in its lab; a session in its
  own lab and in its subject's lab; a weighing or water administration in its subject's lab.
  System admins may write any of them. Otherwise 403 ``forbidden``, naming the lab and group.
  The check runs on every write, on top of the item's roles, so an owner who left the lab
  (or anyone the owner granted ``metadata-write``) can no longer change the lab's records.
- **vocabulary**: dataset types, data formats, repositories and tags are shared by every lab
  (a dataset type with pattern ``*.*`` would make everyone's files ambiguous; a protected tag
  freezes data), so only registry admins (system role ``admin``) create, change or revert
  them: 403 ``forbidden`` otherwise. Tagging a registered dataset is a lab member's action
  (``POST /registry/datasets/{id}/tags``), not an edit of the tag record.
- **dates**: a session's ``start_time`` falls on its ``date`` in the lab's time zone.

A rule's :class:`RuleOutcome` also says what the item gets when created: the lab's group is
granted ``metadata-write`` on a lab's records (so that every member may change them; the
membership check still applies) and ``metadata-read`` on the lab itself, and a display name
(``KS023/2026-12-06/001`` for a session).

Uniqueness (names, session numbers) is the business of the index that follows every write,
:mod:`provena_like.server.registration.index`: the database constraints live there.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.archive import STORAGE_LOCATION
from provena_like.models.registration import (
    LabRecord,
    SessionFields,
    SessionRecord,
    SubjectRecord,
    WaterAdministrationRecord,
    WeighingRecord,
)
from provena_like.models.registry import Role
from provena_like.models.transfer_collections import TRANSFER_COLLECTION
from provena_like.server import access
from provena_like.server.db.identity import GroupRow, UserRow
from provena_like.server.errors import ServiceError, forbidden, validation_error
from provena_like.server.registry.tables import ItemRow
from provena_like.server.security import Principal

__all__ = [
    "RECORD_RULES",
    "RecordRule",
    "RuleOutcome",
    "check_record",
    "check_session_parts",
    "lab_group",
    "reference",
    "require_lab_member",
]

MEMBER_ROLES: list[Role] = ["metadata-write"]
"""What a lab's group holds on the lab's records: its members may change them."""


@dataclass(frozen=True)
class RuleOutcome:
    """What a record that passed its rule gets when it is created.

    Attributes:
        groups: group grants added to the item's access settings.
        display_name: the display name when the caller gives none (None: the generic one).
    """

    groups: dict[str, list[Role]] = field(default_factory=dict)
    display_name: str | None = None


RecordRule = Callable[
    [AsyncSession, Principal, BaseModel, ItemRow | None, str], Awaitable[RuleOutcome]
]
"""A rule: (session, caller, validated record, the item as stored or None, field prefix)."""


def _field(within: str, name: str) -> str:
    return f"{within}.{name}" if within else name


def _problem(field_name: str, message: str, kind: str) -> dict[str, Any]:
    return {"field": field_name, "message": message, "type": kind}


async def reference(
    session: AsyncSession,
    principal: Principal,
    handle: str,
    subtype: str,
    *,
    field_name: str,
    readable: bool = True,
) -> ItemRow:
    """The item ``handle`` named by a record's field, which must be a ``subtype``.

    Args:
        session: a database session.
        principal: the caller.
        handle: the handle in the record.
        subtype: what the item must be.
        field_name: the field, for the 422 (``record.subject``).
        readable: the caller must hold ``metadata-read`` on it.

    Raises:
        ServiceError: 422 ``unknown_item``, ``wrong_subtype`` or ``unreadable_item``.
    """
    row = await session.get(ItemRow, handle)
    if row is None:
        problem = _problem(
            field_name,
            f"no registry item {handle} exists; register the {subtype} first",
            "unknown_item",
        )
    elif row.subtype != subtype:
        problem = _problem(
            field_name, f"item {handle} is a {row.subtype}, not a {subtype}", "wrong_subtype"
        )
    elif readable and "metadata-read" not in access.roles_on(principal, row):
        problem = _problem(
            field_name,
            f"you can't read item {handle}; ask its owner for metadata-read access",
            "unreadable_item",
        )
    else:
        return row
    raise validation_error([problem], what=f"{subtype} reference")


def lab_group(lab: ItemRow) -> str:
    """The auth group whose members are the members of ``lab``."""
    return str(lab.record["group"])


def _require_member(principal: Principal, group: str, what: str) -> None:
    if principal.is_admin or group in principal.groups:
        return
    raise forbidden(
        f"{what} is written by the lab's members only: you are not a member of group "
        f"{group!r}; ask a lab member or an admin to add you."
    )


def require_lab_member(principal: Principal, lab: ItemRow) -> None:
    """403 unless ``principal`` is a member of ``lab`` (or a system admin)."""
    _require_member(principal, lab_group(lab), f"Lab {lab.record.get('name')} ({lab.id})")


async def _check_users(
    session: AsyncSession, usernames: Iterable[tuple[str, str]]
) -> list[dict[str, Any]]:
    """422 details for each (field, username) that is not an account."""
    wanted = list(usernames)
    if not wanted:
        return []
    names = sorted({name for _, name in wanted})
    known = set(await session.scalars(select(UserRow.username).where(UserRow.username.in_(names))))
    return [
        _problem(where, f"no user named {name!r}", "unknown_user")
        for where, name in wanted
        if name not in known
    ]


def _grants(lab: ItemRow, roles: list[Role] = MEMBER_ROLES) -> dict[str, list[Role]]:
    return {lab_group(lab): list(roles)}


async def _lab_rule(
    session: AsyncSession,
    principal: Principal,
    record: BaseModel,
    current: ItemRow | None,
    within: str,
) -> RuleOutcome:
    del current
    assert isinstance(record, LabRecord)
    if await session.get(GroupRow, record.group) is None:
        problem = _problem(
            _field(within, "group"), f"no group named {record.group!r}", "unknown_group"
        )
        raise validation_error([problem], what="lab record")
    _require_member(principal, record.group, f"Lab {record.name}")
    return RuleOutcome(groups={record.group: ["metadata-read"]})


async def _subject_rule(
    session: AsyncSession,
    principal: Principal,
    record: BaseModel,
    current: ItemRow | None,
    within: str,
) -> RuleOutcome:
    assert isinstance(record, SubjectRecord)
    lab = await reference(
        session, principal, record.lab, "lab", field_name=_field(within, "lab"), readable=False
    )
    require_lab_member(principal, lab)
    if current is not None and current.record.get("lab") != record.lab:
        # moving a subject: the lab it leaves must agree too
        old = await session.get(ItemRow, str(current.record.get("lab")))
        if old is not None and old.subtype == "lab":
            require_lab_member(principal, old)
    user = record.responsible_user
    problems = await _check_users(
        session, [(_field(within, "responsible_user"), user)] if user else []
    )
    if problems:
        raise validation_error(problems, what="subject record")
    return RuleOutcome(groups=_grants(lab), display_name=record.nickname)


async def _subject_of(
    session: AsyncSession, principal: Principal, handle: str, within: str
) -> tuple[ItemRow, ItemRow | None]:
    """The subject ``handle`` (readable) and its lab (None if the lab is gone)."""
    subject = await reference(
        session, principal, handle, "subject", field_name=_field(within, "subject")
    )
    lab = await session.get(ItemRow, str(subject.record.get("lab")))
    return subject, lab if lab is not None and lab.subtype == "lab" else None


def _local_date(when: datetime, zone: str) -> date | None:
    try:
        return when.astimezone(ZoneInfo(zone)).date()
    except (OverflowError, ValueError):
        return None


async def check_session_parts(
    session: AsyncSession,
    principal: Principal,
    fields: SessionFields,
    lab_id: str | None,
    *,
    within: str,
) -> tuple[ItemRow, ItemRow]:
    """Check a session's subject, lab, users and start time; returns (subject, lab).

    ``lab_id`` None is the subject's lab. Used for a session record and for a request to
    create one (``POST /registry/sessions``, whose fields have no ``record.`` prefix).

    Raises:
        ServiceError: 422 naming the field, or 403 when the caller is not a member of the
            session's lab or of the subject's lab.
    """
    subject_id, day = fields.subject, fields.date
    subject, subject_lab = await _subject_of(session, principal, subject_id, within)
    if lab_id is None:
        if subject_lab is None:
            problem = _problem(
                _field(within, "lab"), f"subject {subject_id} has no lab; name one", "missing"
            )
            raise validation_error([problem], what="session")
        lab = subject_lab
    else:
        lab = await reference(
            session, principal, lab_id, "lab", field_name=_field(within, "lab"), readable=False
        )
    require_lab_member(principal, lab)
    if subject_lab is not None and subject_lab.id != lab.id:
        require_lab_member(principal, subject_lab)
    problems = await _check_users(
        session, [(_field(within, f"users.{i}"), name) for i, name in enumerate(fields.users)]
    )
    start_time = fields.start_time
    if start_time is not None:
        zone = str(lab.record.get("timezone") or "UTC")
        local = _local_date(start_time, zone)
        if local != day:
            problems.append(
                _problem(
                    _field(within, "start_time"),
                    f"start_time is on {local} in the lab's time zone {zone}, not on the "
                    f"session's date {day}",
                    "date_mismatch",
                )
            )
    if problems:
        raise validation_error(problems, what="session")
    return subject, lab


def session_display_name(subject: ItemRow, day: date, number: int) -> str:
    """``KS023/2026-12-06/001``: the subject's nickname, the date and the 3-digit number."""
    return f"{subject.record.get('nickname', subject.id)}/{day.isoformat()}/{number:03d}"


async def _session_rule(
    session: AsyncSession,
    principal: Principal,
    record: BaseModel,
    current: ItemRow | None,
    within: str,
) -> RuleOutcome:
    del current
    assert isinstance(record, SessionRecord)
    subject, lab = await check_session_parts(session, principal, record, record.lab, within=within)
    return RuleOutcome(
        groups=_grants(lab), display_name=session_display_name(subject, record.date, record.number)
    )


async def _subject_event_rule(
    session: AsyncSession,
    principal: Principal,
    record: BaseModel,
    current: ItemRow | None,
    within: str,
) -> RuleOutcome:
    del current
    assert isinstance(record, WeighingRecord | WaterAdministrationRecord)
    subject, lab = await _subject_of(session, principal, record.subject, within)
    if lab is None:
        raise ServiceError(
            409, "subject_without_lab", f"Subject {subject.id} has no lab: fix the subject first."
        )
    require_lab_member(principal, lab)
    user = record.user
    problems = await _check_users(session, [(_field(within, "user"), user)] if user else [])
    if problems:
        raise validation_error(problems, what="record")
    nickname = subject.record.get("nickname", subject.id)
    amount = f"{record.grams:g} g" if isinstance(record, WeighingRecord) else f"{record.ml:g} ml"
    return RuleOutcome(
        groups=_grants(lab), display_name=f"{nickname}: {amount} at {record.time.isoformat()}"
    )


VOCABULARY = ("dataset_type", "data_format", "repository", "tag", STORAGE_LOCATION)
"""The shared vocabulary: subtypes only registry admins (system role ``admin``) write."""


def _admins_only(why: str) -> RecordRule:
    """A rule that lets only system admins (system role ``admin``) write.

    ``why`` is the refusal's message, with ``{kind}`` for the record's kind (``DatasetType``).
    """

    async def rule(
        session: AsyncSession,
        principal: Principal,
        record: BaseModel,
        current: ItemRow | None,
        within: str,
    ) -> RuleOutcome:
        del session, current, within
        if principal.is_admin:
            return RuleOutcome()
        raise forbidden(why.format(kind=type(record).__name__.removesuffix("Record")))

    return rule


_vocabulary_rule = _admins_only(
    "{kind} records are shared vocabulary (a dataset type's pattern decides everyone's "
    "files, a protected tag freezes data): only a registry admin (system role 'admin') "
    "creates or changes them; ask an admin."
)
_transfer_collection_rule = _admins_only(
    "A transfer collection serves a directory of the server: only a system admin "
    "(system role 'admin') registers or changes one; ask an admin."
)


RECORD_RULES: dict[str, RecordRule] = {
    **dict.fromkeys(VOCABULARY, _vocabulary_rule),
    TRANSFER_COLLECTION: _transfer_collection_rule,
    "lab": _lab_rule,
    "subject": _subject_rule,
    "session": _session_rule,
    "weighing": _subject_event_rule,
    "water_administration": _subject_event_rule,
}
"""subtype → its rule. The vocabulary (dataset types, formats, repositories, tags) is
written by registry admins only; beyond that it needs its model and its unique name. A
transfer collection (a directory of the server) is written by system admins only too."""


async def check_record(
    session: AsyncSession,
    principal: Principal,
    subtype: str,
    record: BaseModel,
    current: ItemRow | None = None,
    *,
    within: str = "record",
) -> RuleOutcome:
    """Run the rule of ``subtype`` (if any) on a validated record about to be written.

    Args:
        session: the writer's session.
        principal: the caller.
        subtype: the item's subtype.
        record: the validated record.
        current: the item as stored, for an update or revert; None for a create.
        within: where the record sits in the request, for the fields of a 422.

    Returns:
        What the item gets if it is created.

    Raises:
        ServiceError: 422 naming the field, 403 for a non-member, 409 for a subject event
            whose subject lost its lab.
    """
    rule = RECORD_RULES.get(subtype)
    if rule is None:
        return RuleOutcome()
    return await rule(session, principal, record, current, within)
