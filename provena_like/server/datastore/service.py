"""Dataset logic on a database session: no HTTP and no object store here.

A dataset is a registry item of subtype ``dataset`` plus a :class:`DatasetRow`. Creating,
updating and reverting go through the registry service (:mod:`provena_like.server.registry.
service`), so handles, history, grants, locks and optimistic concurrency behave exactly as for
any item; this module adds the dataset's storage location, its keyword rows and the checks of
the handles a record refers to. Every function runs inside the caller's transaction.

Storage side effects (``metadata.json``, copies) are the routes' business, through
:mod:`provena_like.server.datastore.objects`, around these functions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import delete, exists, func, literal, select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.datastore import (
    Dataset,
    DatasetRecord,
    DatasetSortKey,
    DatasetUpdate,
    MintRequest,
    ReleaseStatus,
    SortOrder,
    StorageLocation,
)
from provena_like.models.registry import HistoryEntry, ItemCreate, ItemUpdate, Role, Versioning
from provena_like.server import access
from provena_like.server.db.base import UTCDateTime, utcnow
from provena_like.server.errors import ServiceError, not_found, validation_error
from provena_like.server.pagination import KeyColumn, keyset_page
from provena_like.server.registry import service as registry
from provena_like.server.registry.tables import HistoryRow, ItemRow
from provena_like.server.security import Principal

from .tables import DatasetKeywordRow, DatasetRow

__all__ = [
    "DATASET",
    "check_references",
    "claim_data_writes",
    "create_dataset",
    "dataset_prefix",
    "link_new_version",
    "list_datasets",
    "load_dataset",
    "locked_error",
    "refuse_data_writes",
    "refuse_metadata_writes",
    "refuse_unless_open",
    "release_state_error",
    "revert_dataset",
    "to_dataset",
    "update_dataset",
]

DATASET = "dataset"

REFERENCES: tuple[tuple[str, str, str], ...] = (
    ("associations", "organisation_id", "organisation"),
    ("associations", "data_custodian_id", "person"),
    ("associations", "point_of_contact", "person"),
    ("dataset_info", "publisher_id", "organisation"),
)
"""(section, field, subtype) of every handle a record refers to."""

NEVER_RELEASED = datetime(9999, 12, 31, tzinfo=UTC)
"""The sort key of datasets with no release time: after every real one."""


_CASELESS = frozenset("0123456789.-_")


def dataset_prefix(handle: str) -> str:
    """The storage prefix of a new dataset: ``<handle with '/' → '-'>/``, e.g. ``10378.1-42/``.

    Only characters without case variants (digits, ``.``, ``-``, ``_``): a letter of the
    handle's prefix becomes ``_`` (the handle's number alone makes the prefix unique). The
    object store matches policy resources without regard to case, so credentials for a
    prefix with letters would also reach its case variants (``DATASETS/...`` for
    ``datasets/...``); a prefix without letters has none. Datasets minted before keep the
    prefix they were given (``datasets/<handle with '/' → '-'>/``): it is stored with them.
    """
    slug = "".join(c if c in _CASELESS else "_" for c in handle.replace("/", "-"))
    return f"{slug}/"


# -- reading -------------------------------------------------------------------------------


async def load_dataset(
    session: AsyncSession, item_id: str, *, for_update: bool = False
) -> tuple[ItemRow, DatasetRow]:
    """The dataset ``item_id`` as stored; 404 when there is no such dataset.

    ``for_update`` locks both rows until the transaction ends (PostgreSQL; SQLite ignores it).
    """
    item = await session.get(ItemRow, item_id, populate_existing=True, with_for_update=for_update)
    dataset = await session.get(
        DatasetRow, item_id, populate_existing=True, with_for_update=for_update
    )
    if item is None or dataset is None or item.subtype != DATASET:
        raise not_found(f"Dataset {item_id}")
    return item, dataset


def to_dataset(
    item: ItemRow,
    dataset: DatasetRow,
    roles: list[Role],
    *,
    endpoint_url: str | None,
    history: list[HistoryEntry] | None = None,
) -> Dataset:
    """The wire form of a dataset for a caller holding ``roles``."""
    status = cast(ReleaseStatus, dataset.release_status)
    return Dataset(
        id=item.id,
        display_name=item.display_name,
        owner=item.owner,
        created_at=item.created_at,
        updated_at=item.updated_at,
        revision=item.revision,
        record=DatasetRecord.model_validate(item.record),
        access=registry.get_access(item),
        locked=item.locked,
        versioning=Versioning(
            version=item.version, previous=item.previous_version, next=item.next_version
        ),
        roles=roles,
        storage=StorageLocation(
            repository=dataset.repository,
            bucket=dataset.bucket,
            prefix=dataset.prefix,
            endpoint_url=endpoint_url,
        ),
        release_status=status,
        release_time=dataset.release_time,
        release_reviewer=item.reviewer if status == "PENDING" else None,
        release_requester=dataset.release_requester,
        release_requested_at=dataset.release_requested_at,
        release_approver=dataset.release_approver,
        history=history,
    )


# -- checks --------------------------------------------------------------------------------


async def check_references(
    session: AsyncSession, principal: Principal, record: DatasetRecord
) -> None:
    """422 unless every handle the record refers to is a readable item of the right subtype.

    Each problem names its field, e.g. ``record.associations.organisation_id``.
    """
    wanted: list[tuple[str, str, str]] = []
    for section, name, subtype in REFERENCES:
        value = getattr(getattr(record, section), name)
        if value is not None:
            wanted.append((f"record.{section}.{name}", value, subtype))
    if not wanted:
        return
    handles = sorted({handle for _, handle, _ in wanted})
    rows = {r.id: r for r in await session.scalars(select(ItemRow).where(ItemRow.id.in_(handles)))}
    details: list[dict[str, Any]] = []
    for field, handle, subtype in wanted:
        row = rows.get(handle)
        if row is None:
            message = f"no registry item {handle} exists; register the {subtype} first"
            kind = "unknown_item"
        elif "metadata-read" not in access.roles_on(principal, row):
            message = f"you can't read item {handle}; ask its owner for metadata-read access"
            kind = "unreadable_item"
        elif row.subtype != subtype:
            message = f"item {handle} is a {row.subtype}, not a {subtype}"
            kind = "wrong_subtype"
        else:
            continue
        details.append({"field": field, "message": message, "type": kind})
    if details:
        raise validation_error(details, what="dataset record")


def release_state_error(item_id: str, state: str, what: str) -> ServiceError:
    """The 409 for something the release state ``state`` doesn't allow.

    The code names the state - ``under_review`` (PENDING), ``released`` (RELEASED),
    ``not_under_review`` (NOT_RELEASED) - and ``details.state`` holds it; ``what`` says
    what was refused (``"its data can't change"``, ``"there is no request to approve"``).
    """
    if state == "PENDING":
        code = "under_review"
        message = (
            f"Dataset {item_id} is PENDING review: {what} until the reviewer approves or "
            "rejects it (or the requester withdraws the request)."
        )
    elif state == "RELEASED":
        code = "released"
        message = f"Dataset {item_id} is RELEASED: {what}; create a new version to change it."
    else:
        code = "not_under_review"
        message = f"Dataset {item_id} is {state}: {what}."
    return ServiceError(409, code, message, details={"state": state})


def locked_error(item_id: str, state: str, what: str) -> ServiceError:
    """The 409 ``locked`` for a locked dataset in release state ``state`` (``details.state``).

    ``what`` says what the lock prevents (``"unlock it before asking for its release"``).
    """
    return ServiceError(
        409, "locked", f"Dataset {item_id} is locked: {what}.", details={"state": state}
    )


def refuse_unless_open(item: ItemRow, dataset: DatasetRow, *, locked: str, closed: str) -> None:
    """409 unless the dataset is unlocked and ``NOT_RELEASED`` (not in review, not released).

    Args:
        item: the dataset's registry item.
        dataset: its datastore row.
        locked: the ``what`` of :func:`locked_error` when the item is locked.
        closed: the ``what`` of :func:`release_state_error` when it is in review or released.
    """
    if item.locked:
        raise locked_error(item.id, dataset.release_status, locked)
    if dataset.release_status != "NOT_RELEASED":
        raise release_state_error(item.id, dataset.release_status, closed)


def refuse_data_writes(item: ItemRow, dataset: DatasetRow) -> None:
    """409 when the dataset's data may not change: locked, or in review or released."""
    refuse_unless_open(
        item,
        dataset,
        locked="its data can't change until an admin unlocks it",
        closed="its data can't change",
    )


def refuse_metadata_writes(item_id: str, dataset: DatasetRow) -> None:
    """409 when the dataset's metadata may not change: in review or released.

    (A lock freezes the metadata too; the registry checks that, in the same UPDATE.)
    """
    if dataset.release_status != "NOT_RELEASED":
        raise release_state_error(item_id, dataset.release_status, "its metadata can't change")


def _metadata_guard(session: AsyncSession) -> registry.Guard:
    """Checks the release state on every attempt of the registry's conditional UPDATE.

    Release steps bump the item's revision, so an UPDATE that matches the revision checked
    here can't overwrite a dataset that went into review in between.
    """

    async def guard(row: ItemRow) -> None:
        dataset = await session.get(DatasetRow, row.id, populate_existing=True)
        if dataset is not None:
            refuse_metadata_writes(row.id, dataset)

    return guard


async def claim_data_writes(session: AsyncSession, item_id: str) -> None:
    """Make sure the dataset's data may change, as the first write of the transaction.

    A conditional UPDATE (a no-op on the row) matches only an unlocked ``NOT_RELEASED``
    dataset and takes its row lock, so a release request or a lock can't slip in between
    the check and the commit; no match is answered with the 409 that says why.
    """
    unlocked = select(ItemRow.id).where(ItemRow.id == item_id, ItemRow.locked.is_(False))
    claimed = await session.execute(
        sql_update(DatasetRow)
        .where(
            DatasetRow.item_id == item_id,
            DatasetRow.release_status == "NOT_RELEASED",
            unlocked.exists(),
        )
        .values(release_status=DatasetRow.release_status)
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 0) != 1:
        item, dataset = await load_dataset(session, item_id)
        refuse_data_writes(item, dataset)
        raise ServiceError(409, "conflict", f"Dataset {item_id} is changing; retry.")


# -- writing -------------------------------------------------------------------------------


async def _set_keywords(
    session: AsyncSession, item_id: str, keywords: list[str], *, replace: bool
) -> None:
    if replace:
        await session.execute(delete(DatasetKeywordRow).where(DatasetKeywordRow.item_id == item_id))
    session.add_all(DatasetKeywordRow(item_id=item_id, keyword=k) for k in dict.fromkeys(keywords))


def _record_json(record: DatasetRecord) -> dict[str, Any]:
    dumped: dict[str, Any] = record.model_dump(mode="json", exclude_none=True)
    return dumped


async def create_dataset(
    session: AsyncSession,
    principal: Principal,
    body: MintRequest,
    *,
    handle_prefix: str,
    bucket: str,
    version: int = 1,
    previous: str | None = None,
) -> tuple[ItemRow, DatasetRow]:
    """Register a dataset owned by ``principal``: a registry item plus its storage location.

    The registry allocates the handle and records the history and grants; the dataset goes
    to ``datasets/<handle-slug>/`` in ``bucket``. Nothing is written to the object store.
    """
    await check_references(session, principal, body.record)
    await registry.check_names(session, body.groups)
    item = await registry.create_item(
        session,
        principal,
        ItemCreate(
            subtype=DATASET,
            record=_record_json(body.record),
            display_name=body.display_name,
            general=body.general,
            groups=body.groups,
        ),
        prefix=handle_prefix,
    )
    if version != 1 or previous is not None:
        item.version = version
        item.previous_version = previous
    dataset = DatasetRow(
        item_id=item.id,
        repository="default",
        bucket=bucket,
        prefix=dataset_prefix(item.id),
        release_status="NOT_RELEASED",
        release_time=None,
    )
    session.add(dataset)
    await _set_keywords(session, item.id, body.record.dataset_info.keywords, replace=False)
    await session.flush()
    return item, dataset


async def update_dataset(
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    body: DatasetUpdate,
    *,
    expected: int | None,
) -> tuple[ItemRow, DatasetRow]:
    """Replace a dataset's record; needs ``metadata-write``.

    409 when locked (``locked``), in review (``under_review``) or released (``released``);
    412 when stale.
    """
    item, dataset = await load_dataset(session, item_id)
    access.require(principal, item, "metadata-write")
    refuse_metadata_writes(item_id, dataset)
    await check_references(session, principal, body.record)
    updated = await registry.update_item(
        session,
        principal,
        item_id,
        ItemUpdate(
            record=_record_json(body.record),
            reason=body.reason,
            display_name=body.display_name,
        ),
        expected=expected,
        guard=_metadata_guard(session),
    )
    await _set_keywords(session, item_id, body.record.dataset_info.keywords, replace=True)
    await session.flush()
    return await load_dataset(session, updated.id)


async def revert_dataset(
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    history_id: int,
    reason: str,
    *,
    expected: int | None,
) -> tuple[ItemRow, DatasetRow]:
    """Restore the record of a history entry as a new entry (storage and links untouched).

    The restored record must still pass today's checks (model and references). Refused
    like :func:`update_dataset` while locked, in review or released.
    """
    item, dataset = await load_dataset(session, item_id)
    access.require(principal, item, "metadata-write")
    refuse_metadata_writes(item_id, dataset)
    updated = await registry.revert_item(
        session,
        principal,
        item_id,
        history_id,
        reason,
        expected=expected,
        guard=_metadata_guard(session),
    )
    record = DatasetRecord.model_validate(updated.record)
    await check_references(session, principal, record)
    await _set_keywords(session, item_id, record.dataset_info.keywords, replace=True)
    await session.flush()
    return await load_dataset(session, item_id)


def _refuse_if_versioned(item: ItemRow) -> None:
    if item.next_version is not None:
        raise ServiceError(
            409,
            "already_versioned",
            f"Dataset {item.id} already has a newer version, {item.next_version}: version the "
            "latest one.",
            details={"next": item.next_version},
        )


async def link_new_version(
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    reason: str,
    *,
    handle_prefix: str,
    bucket: str,
) -> tuple[ItemRow, DatasetRow, ItemRow, DatasetRow]:
    """Create the next version of a dataset and link both; needs ``admin`` on it.

    The new dataset copies the record, display name and access settings (its owner is the
    caller), gets version number + 1, ``previous`` = this one, and a storage prefix of its
    own. This one gets ``next`` and a history entry. Only the latest version may be versioned
    (409 ``already_versioned``). Returns (old item, old dataset, new item, new dataset).
    """
    old, old_dataset = await load_dataset(session, item_id)
    access.require(principal, old, "admin")
    _refuse_if_versioned(old)
    # The first write of the transaction: claims this revision (and takes the row lock), so
    # of two concurrent versionings exactly one links its new version.
    claimed = await session.execute(
        sql_update(ItemRow)
        .where(
            ItemRow.id == item_id,
            ItemRow.revision == old.revision,
            ItemRow.next_version.is_(None),
        )
        .values(revision=ItemRow.revision + 1, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    changed = getattr(claimed, "rowcount", 0) != 1
    old, old_dataset = await load_dataset(session, item_id)
    if changed:
        _refuse_if_versioned(old)
        raise ServiceError(
            409, "conflict", f"Dataset {item_id} changed while it was versioned; retry."
        )
    groups: dict[str, list[Role]] = {
        g: access.normalise_roles(r) for g, r in old.group_roles.items()
    }
    new, new_dataset = await create_dataset(
        session,
        principal,
        MintRequest(
            record=DatasetRecord.model_validate(old.record),
            display_name=old.display_name,
            general=access.normalise_roles(old.general_roles),
            groups=groups,
        ),
        handle_prefix=handle_prefix,
        bucket=bucket,
        version=old.version + 1,
        previous=old.id,
    )
    old.next_version = new.id
    created = await session.scalar(
        select(HistoryRow).where(HistoryRow.item_id == new.id).order_by(HistoryRow.id.desc())
    )
    if created is not None:
        created.reason = f"created as version {new.version} of {old.id}: {reason}"
    session.add(
        HistoryRow(
            item_id=old.id,
            revision=old.revision,
            time=old.updated_at,
            user=principal.username,
            reason=f"new version {new.id} (version {new.version}): {reason}",
            snapshot={"display_name": old.display_name, "record": old.record},
        )
    )
    await session.flush()
    return old, old_dataset, new, new_dataset


# -- listing -------------------------------------------------------------------------------

_RELEASE_KEY = func.coalesce(DatasetRow.release_time, literal(NEVER_RELEASED, UTCDateTime()))


def _dataset_order(sort: DatasetSortKey, order: SortOrder) -> list[KeyColumn]:
    """The keyset order of a listing of (item, dataset) rows: ``sort``, then handle number."""
    if sort != "release_time":
        return registry.item_order(sort, order, lambda r: r[0])
    desc = order == "desc"
    return [
        KeyColumn(_RELEASE_KEY, "time", lambda r: r[1].release_time or NEVER_RELEASED, desc),
        KeyColumn(ItemRow.seq, "int", lambda r: r[0].seq, desc),
    ]


async def list_datasets(
    session: AsyncSession,
    principal: Principal,
    *,
    owner: str | None = None,
    keyword: str | None = None,
    release_status: ReleaseStatus | None = None,
    sort: DatasetSortKey = "created",
    order: SortOrder = "asc",
    page_size: int = 100,
    cursor: str | None = None,
) -> tuple[list[tuple[ItemRow, DatasetRow]], str | None]:
    """One page of the datasets ``principal`` may read, and the cursor of the next page.

    Keyset pagination on ``(sort key, handle number)``, with the access filter inside the
    query (:func:`~provena_like.server.access.readable_filter`), so every dataset present for
    the whole walk is returned exactly once and only the last page is short.
    """
    query = (
        select(ItemRow, DatasetRow)
        .join(DatasetRow, DatasetRow.item_id == ItemRow.id)
        .where(access.readable_filter(principal))
    )
    if owner is not None:
        query = query.where(ItemRow.owner == owner)
    if keyword is not None:
        query = query.where(
            exists().where(
                DatasetKeywordRow.item_id == ItemRow.id, DatasetKeywordRow.keyword == keyword
            )
        )
    if release_status is not None:
        query = query.where(DatasetRow.release_status == release_status)
    return await keyset_page(
        session,
        query,
        _dataset_order(sort, order),
        cursor=cursor,
        page_size=page_size,
        scope=[sort, order, owner, keyword, release_status],
    )
