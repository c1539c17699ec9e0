"""The file manifest of a dataset: what was uploaded, with its checksums and ETag.

Registering comes *after* an upload and claims nothing the store doesn't hold: every file is
checked with HEAD first (it must exist with exactly the stated size, and when the store keeps
a full-object SHA-256 it must match). Identical content registered again is a no-op
(``unchanged``); a new checksum for a known path replaces the row. The whole batch is one
transaction: either every file is recorded or none is. The manifest is frozen, like the
data, while the dataset is locked, in review (``PENDING``) or ``RELEASED``.

Removing files (:func:`remove_files`) is the reverse, in the reverse order: one transaction
deletes the manifest rows, and only after the commit are the objects deleted
(:func:`delete_removed_objects`), so the manifest never claims a file that is gone. An object
that can't be deleted then is merely orphaned (logged); paths that weren't registered are
reported as ``not_registered``, so removing twice is harmless.

Listing the manifest needs ``data-read`` (file names often say more than the record, e.g.
subject ids), like the data itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.datastore import (
    METADATA_FILE,
    FileRegistration,
    ManifestEntry,
    RegisterFilesResponse,
    RemoveFilesResponse,
)
from provena_like.server import access
from provena_like.server.db.base import utcnow
from provena_like.server.errors import ServiceError, not_found, task_group, validation_error
from provena_like.server.extracted import service as extracted
from provena_like.server.pagination import KeyColumn, keyset_page
from provena_like.server.security import Principal

from . import storage
from .objects import CopiedObject
from .service import claim_data_writes, load_dataset, refuse_data_writes
from .storage import ObjectHead, ObjectStore
from .tables import DatasetRow, ManifestRow

__all__ = [
    "RemovedFiles",
    "copy_manifest",
    "delete_removed_objects",
    "get_file",
    "head_files",
    "list_files",
    "record_files",
    "remove_files",
    "to_entry",
]

log = logging.getLogger(__name__)

_RESERVED = f"{METADATA_FILE} is the dataset's own metadata file, not a data file"


@dataclass(frozen=True)
class RemovedFiles:
    """What :func:`remove_files` committed, and what :func:`delete_removed_objects` needs.

    Attributes:
        response: the wire answer.
        prefix: the dataset's key prefix.
        etags: the registered ETag of each removed path (only that object gets deleted).
    """

    response: RemoveFilesResponse
    prefix: str
    etags: dict[str, str]


def to_entry(row: ManifestRow) -> ManifestEntry:
    """The wire form of a manifest row."""
    return ManifestEntry(
        path=row.path,
        size=row.size,
        sha256=row.sha256,
        md5=row.md5,
        etag=row.etag,
        registered_at=row.registered_at,
        registered_by=row.registered_by,
    )


def _invalid(details: list[dict[str, Any]]) -> ServiceError:
    return validation_error(details, what="files to register")


async def head_files(
    store: ObjectStore, dataset: DatasetRow, files: list[FileRegistration]
) -> dict[str, ObjectHead]:
    """HEAD every file (concurrently); 422 naming each one that is missing or differs."""
    heads: dict[str, ObjectHead | None] = {}
    limiter = anyio.CapacityLimiter(store.concurrency)

    async def one(entry: FileRegistration) -> None:
        async with limiter:
            heads[entry.path] = await storage.head_object(store, dataset.prefix + entry.path)

    async with task_group() as group:
        for entry in files:
            group.start_soon(one, entry)
    details: list[dict[str, Any]] = []
    found: dict[str, ObjectHead] = {}
    for i, entry in enumerate(files):
        field = f"files.{i}.path"
        head = heads.get(entry.path)
        if entry.path == METADATA_FILE:
            message = _RESERVED
            details.append({"field": field, "message": message, "type": "reserved_path"})
        elif head is None:
            message = f"no object {entry.path!r} in the dataset: upload it before registering"
            details.append({"field": field, "message": message, "type": "missing_object"})
        elif head.size != entry.size:
            message = (
                f"{entry.path!r} is {head.size} bytes in the store, not {entry.size}: the upload "
                "is incomplete or the size is wrong"
            )
            details.append({"field": field, "message": message, "type": "size_mismatch"})
        elif head.sha256 is not None and head.sha256 != entry.sha256:
            message = f"the store's SHA-256 of {entry.path!r} differs from the one given"
            details.append({"field": field, "message": message, "type": "checksum_mismatch"})
        else:
            found[entry.path] = head
    if details:
        raise _invalid(details)
    return found


def _same(row: ManifestRow, entry: FileRegistration, etag: str) -> bool:
    return (
        row.size == entry.size
        and row.sha256 == entry.sha256
        and row.etag == etag
        and (entry.md5 is None or row.md5 == entry.md5)
    )


async def record_files(
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    files: list[FileRegistration],
    heads: dict[str, ObjectHead],
) -> RegisterFilesResponse:
    """Write the manifest rows of checked files; needs ``data-write``.

    Refused (409) while the dataset is locked, in review or released; the check is the
    transaction's first write (:func:`claim_data_writes`), so it holds until the commit.
    """
    item, dataset = await load_dataset(session, item_id)
    access.require(principal, item, "data-write")
    refuse_data_writes(item, dataset)
    await claim_data_writes(session, item_id)
    paths = [f.path for f in files]
    existing = {
        r.path: r
        for r in await session.scalars(
            select(ManifestRow).where(ManifestRow.item_id == item_id, ManifestRow.path.in_(paths))
        )
    }
    now = utcnow()
    registered: list[ManifestRow] = []
    unchanged: list[str] = []
    changed: dict[str, int | None] = {}
    for entry in files:
        etag = heads[entry.path].etag
        row = existing.get(entry.path)
        if row is not None and _same(row, entry, etag):
            unchanged.append(entry.path)
            continue
        if row is None:
            row = ManifestRow(item_id=item_id, path=entry.path)
            session.add(row)
            changed[entry.path] = entry.size  # results of these bytes may have come first
        elif (row.sha256, row.size) != (entry.sha256, entry.size):
            changed[entry.path] = None  # other bytes: results of the old ones are stale
        row.size = entry.size
        row.sha256 = entry.sha256
        row.md5 = entry.md5
        row.etag = etag
        row.registered_at = now
        row.registered_by = principal.username
        registered.append(row)
    await session.flush()
    await extracted.drop_stale(session, item, changed)
    return RegisterFilesResponse(registered=[to_entry(r) for r in registered], unchanged=unchanged)


def _reserved(paths: list[str]) -> None:
    details = [
        {
            "field": f"paths.{i}",
            "message": _RESERVED,
            "type": "reserved_path",
        }
        for i, path in enumerate(paths)
        if path == METADATA_FILE
    ]
    if details:
        raise validation_error(
            details,
            message=f"{METADATA_FILE} can't be removed: it is the dataset's own metadata file.",
        )


async def remove_files(
    session: AsyncSession, principal: Principal, item_id: str, paths: list[str]
) -> RemovedFiles:
    """Delete the manifest rows of ``paths``; needs ``data-write``.

    Refused like registration (409 while locked, in review or released; the check is the
    transaction's first write) and 422 for ``metadata.json``. Paths that aren't registered
    are listed in ``not_registered``. The objects stay: delete them after the commit with
    :func:`delete_removed_objects`.
    """
    item, dataset = await load_dataset(session, item_id)
    access.require(principal, item, "data-write")
    refuse_data_writes(item, dataset)
    _reserved(paths)
    await claim_data_writes(session, item_id)
    rows = await session.scalars(
        select(ManifestRow).where(ManifestRow.item_id == item_id, ManifestRow.path.in_(paths))
    )
    etags = {row.path: row.etag for row in rows}
    if etags:
        await session.execute(
            delete(ManifestRow)
            .where(ManifestRow.item_id == item_id, ManifestRow.path.in_(list(etags)))
            .execution_options(synchronize_session=False)
        )
    await extracted.drop_stale(session, item, dict.fromkeys(etags))
    response = RemoveFilesResponse(
        removed=[p for p in paths if p in etags],
        not_registered=[p for p in paths if p not in etags],
    )
    return RemovedFiles(response=response, prefix=dataset.prefix, etags=etags)


async def delete_removed_objects(store: ObjectStore, item_id: str, removed: RemovedFiles) -> None:
    """Delete the objects of files removed from the manifest (after the commit); never raises.

    Only an object that still has the ETag it was registered with is deleted: one uploaded
    again since (to be registered anew) is left alone. An object that can't be checked or
    deleted stays, orphaned, and is logged at WARNING.
    """
    if not removed.etags:
        return
    limiter = anyio.CapacityLimiter(store.concurrency)
    doomed: list[str] = []
    failed: list[str] = []

    async def check(path: str, etag: str) -> None:
        key = removed.prefix + path
        async with limiter:
            try:
                head = await storage.head_object(store, key)
            except ServiceError:
                failed.append(path)
                return
        if head is not None and head.etag == etag:
            doomed.append(key)

    async with task_group() as group:
        for path, etag in removed.etags.items():
            group.start_soon(check, path, etag)
    try:
        await storage.delete_objects(store, sorted(doomed))
    except ServiceError as err:
        failed.extend(key.removeprefix(removed.prefix) for key in doomed)
        log.warning("dataset %s: deleting removed files' objects failed: %s", item_id, err)
    if failed:
        log.warning(
            "dataset %s: %d removed file(s) left orphaned in the store, e.g. %r",
            item_id,
            len(failed),
            sorted(failed)[0],
        )


async def copy_manifest(
    session: AsyncSession, source_id: str, dest_id: str, copied: list[CopiedObject], user: str
) -> None:
    """Copy the manifest rows of ``copied`` objects to the new version, with their new ETags."""
    by_path = {c.path: c for c in copied}
    if not by_path:
        return
    rows = await session.scalars(select(ManifestRow).where(ManifestRow.item_id == source_id))
    now = utcnow()
    session.add_all(
        ManifestRow(
            item_id=dest_id,
            path=row.path,
            size=row.size,
            sha256=row.sha256,
            md5=row.md5,
            etag=by_path[row.path].etag,
            registered_at=now,
            registered_by=user,
        )
        for row in rows
        if row.path in by_path and by_path[row.path].size == row.size
    )
    await session.flush()


async def list_files(
    session: AsyncSession,
    principal: Principal,
    item_id: str,
    *,
    prefix: str | None,
    page_size: int,
    cursor: str | None,
) -> tuple[list[ManifestEntry], str | None]:
    """One page of the manifest in path order (``prefix``: only paths starting with it)."""
    item, _ = await load_dataset(session, item_id)
    access.require(principal, item, "data-read")
    query = select(ManifestRow).where(ManifestRow.item_id == item_id)
    if prefix:
        # substr, not LIKE: LIKE is case-insensitive on SQLite and needs escaping.
        query = query.where(
            ManifestRow.path >= prefix, func.substr(ManifestRow.path, 1, len(prefix)) == prefix
        )
    rows, next_cursor = await keyset_page(
        session,
        query,
        [KeyColumn(ManifestRow.path, "str", lambda r: r.path)],
        cursor=cursor,
        page_size=page_size,
        scope=[item_id, prefix or ""],
    )
    return [to_entry(r) for r in rows], next_cursor


async def get_file(
    session: AsyncSession, principal: Principal, item_id: str, path: str
) -> ManifestEntry:
    """One file's manifest entry; needs ``data-read``; 404 when it isn't registered."""
    item, _ = await load_dataset(session, item_id)
    access.require(principal, item, "data-read")
    row = await session.get(ManifestRow, (item_id, path))
    if row is None:
        raise not_found(f"File {path!r} of dataset {item_id}")
    return to_entry(row)
