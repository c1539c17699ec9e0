"""Patches of registered datasets: commit new content that is already in place, all or nothing.

A patch is the commit step of the Patcher's staged protocol (DESIGN.md §4): the client has
written the new bytes of each file to a staging path in every repository that holds it and
read them back; :func:`commit_patch` then switches, in one transaction, each revision's
size, hashes and version and each repository's file record to the staged path, and writes
the history. Nothing is claimed before it is so: a location in the server's own bucket is
HEADed first (:mod:`.replicas`), and a mismatch refuses the whole patch.

The order of the checks, all before anything is written:

1. a used ``patch_id``: the same request (same caller) answers the stored answer, another
   one 409 ``patch_id_used``;
2. the request itself: each dataset once, each repository once per file, each location's
   size and sha256 equal the file's (422 naming ``files.N.locations.M``);
3. each dataset readable (404), the caller a member of its session's lab (403);
   each repository a repository (422), an md5 where a repository keeps md5s (422), each
   location in the server's bucket holding the new bytes (422);
4. with the writers of each session queued (as for a registration): no revision being
   deleted (409 ``dataset_deleting``), none protected (412 ``protected``; ``force`` does
   not change that), each still with the ``expected_sha256`` (409 ``patch_conflict``
   naming the dataset), every repository with a file record of it given a location (422).

A file with ``default`` also becomes its dataset's default revision in the same transaction:
how the Patcher's ``force`` publishes the new revision it registered (not present, not
default) in place of a protected one, once its bytes are verified in every repository.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import anyio
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.patching import (
    PatchedFile,
    PatchFile,
    PatchHistoryEntry,
    PatchRequest,
    PatchResult,
)
from provena_like.models.registration import FileRecordInfo
from provena_like.server.datastore.storage import ObjectStore
from provena_like.server.db.base import utcnow
from provena_like.server.errors import ServiceError, not_found, validation_error
from provena_like.server.idempotency import fingerprint
from provena_like.server.pagination import KeyColumn, keyset_page
from provena_like.server.registry.handles import next_value
from provena_like.server.registry.tables import ItemRow
from provena_like.server.security import Principal

from . import files
from .replicas import Look, look, own_prefix, verify_bytes
from .rules import reference, require_lab_member
from .tables import DatasetPatchRow, FileRecordRow, PatchRow, RegisteredDatasetRow

__all__ = ["commit_patch", "get_patch", "list_patches"]

_HEADS_AT_ONCE = 32
"""The most HEADs of a patch's own-bucket locations in flight at once (the S3 client's pool)."""

_IDS_PER_QUERY = 500
"""Ids in one ``IN (...)`` of a query (SQLite limits the variables of a statement)."""


class _Record(NamedTuple):
    """A file record as :func:`_check_rows` reads it: plain values, no ORM bookkeeping."""

    id: int
    dataset_id: str
    repository_id: str
    relative_path: str
    exists: bool
    verified_at: datetime | None


_RECORD_COLUMNS = [getattr(FileRecordRow, name) for name in _Record._fields]
"""The columns of a :class:`_Record`, in its order."""


class _Writes(NamedTuple):
    """What the files of a patch write, gathered to be written together (executemany)."""

    history: list[dict[str, Any]]
    """The values of each file's history row."""
    updates: list[dict[str, Any]]
    """The new values of each file record that changes (with its ``id``)."""
    inserts: list[dict[str, Any]]
    """The values of each new file record (a repository the revision had no record in)."""


def _replay(found: PatchRow, fp: str) -> PatchResult:
    if found.fingerprint != fp:
        raise ServiceError(
            409,
            "patch_id_used",
            f"Patch {found.id} was already committed with a different request; a new patch "
            "needs a new patch_id. Nothing was changed.",
        )
    return PatchResult.model_validate(found.answer)


def _shape_problems(body: PatchRequest) -> list[dict[str, Any]]:
    """The request's own problems: duplicates and locations that disagree with their file."""
    problems: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, f in enumerate(body.files):
        dataset = str(f.dataset)
        if dataset in seen:
            problems.append(
                files.problem(
                    f"files.{i}.dataset",
                    f"{dataset} is also files.{seen[dataset]}",
                    "duplicate_dataset",
                )
            )
        seen.setdefault(dataset, i)
        repositories: dict[str, int] = {}
        for m, loc in enumerate(f.locations):
            field = f"files.{i}.locations.{m}"
            if loc.repository in repositories:
                message = f"repository {loc.repository} is also at {repositories[loc.repository]}"
                problems.append(
                    files.problem(f"{field}.repository", message, "duplicate_repository")
                )
            repositories.setdefault(loc.repository, m)
            if (loc.size, loc.sha256) != (f.size, f.sha256):
                problems.append(
                    files.problem(
                        field,
                        f"the bytes read back from {loc.repository} ({loc.size} bytes, sha256 "
                        f"{loc.sha256}) are not the file's ({f.size} bytes, sha256 {f.sha256})",
                        "location_mismatch",
                    )
                )
    return problems


async def _repositories(
    session: AsyncSession, principal: Principal, body: PatchRequest
) -> tuple[dict[str, ItemRow], list[dict[str, Any]]]:
    """Each repository the locations name (422 if not one), and the missing md5s."""
    found: dict[str, ItemRow] = {}
    for i, f in enumerate(body.files):
        for m, loc in enumerate(f.locations):
            if loc.repository not in found:
                found[loc.repository] = await reference(
                    session,
                    principal,
                    loc.repository,
                    "repository",
                    field_name=f"files.{i}.locations.{m}.repository",
                    readable=False,
                )
    problems: list[dict[str, Any]] = []
    for i, f in enumerate(body.files):
        keeping = [x.repository for x in f.locations if "md5" in _hashes(found[x.repository])]
        if f.md5 is None and keeping:
            problems.append(
                files.problem(
                    f"files.{i}.md5",
                    f"repository {keeping[0]} keeps an md5 of every file (its record's "
                    "hashes); send the file's md5",
                    "md5_required",
                    part="md5",
                )
            )
    return found, problems


def _hashes(repository: ItemRow) -> list[str]:
    return list(repository.record.get("hashes") or ())


async def _verify_locations(
    store: ObjectStore | None, body: PatchRequest, repositories: dict[str, ItemRow]
) -> tuple[set[tuple[int, int]], list[dict[str, Any]]]:
    """HEAD the locations in the server's own bucket: the verified ones, and the problems.

    The HEADs run a few at once (a patch may have thousands of locations): that many
    tasks take the next location in turn (not a task and a limiter's turn per location:
    a thousand of those cost the event loop more than the HEADs' answers).
    """
    seen: dict[tuple[int, int], Look] = {}
    ours = {h: own_prefix(store, r) is not None for h, r in repositories.items()}
    todo: list[tuple[int, int, str, ItemRow]] = []
    for i, f in enumerate(body.files):
        for m, loc in enumerate(f.locations):
            if ours[loc.repository]:
                todo.append((i, m, loc.relative_path, repositories[loc.repository]))
            else:  # nothing to look at
                seen[i, m] = Look(ours=False)
    left = iter(todo)

    async def looking() -> None:
        for i, m, relative_path, repository in left:  # shared: each location once
            seen[i, m] = await look(store, repository, relative_path)

    async with anyio.create_task_group() as tg:
        for _ in range(min(_HEADS_AT_ONCE, len(todo))):
            tg.start_soon(looking)
    verified: set[tuple[int, int]] = set()
    problems: list[dict[str, Any]] = []
    for i, f in enumerate(body.files):
        for m, _ in enumerate(f.locations):
            ok, problem = verify_bytes(seen[i, m], f.size, f.sha256)
            if ok:
                verified.add((i, m))
            elif problem is not None:
                problems.append(
                    files.problem(f"files.{i}.locations.{m}", problem, "location_not_verified")
                )
    return verified, problems


async def _load_rows(session: AsyncSession, body: PatchRequest) -> dict[str, RegisteredDatasetRow]:
    """The rows of the patched datasets as they are now in the database (missing ones left out).

    One query per 500 ids (SQLite's variables are counted), not one per file.
    """
    ids = [str(f.dataset) for f in body.files]
    found: dict[str, RegisteredDatasetRow] = {}
    for start in range(0, len(ids), _IDS_PER_QUERY):
        for row in await session.scalars(
            select(RegisteredDatasetRow)
            .where(RegisteredDatasetRow.id.in_(ids[start : start + _IDS_PER_QUERY]))
            .execution_options(populate_existing=True)
        ):
            found[row.id] = row
    return found


async def _sessions(
    session: AsyncSession, principal: Principal, body: PatchRequest
) -> list[files._SessionContext]:
    """The sessions of the patched datasets, for a caller who may write each of them.

    The caller must read each dataset (404) and be a member of its session's lab (403),
    and none may be being deleted (409); the first file (in the request's order) that fails
    one of these is the one reported. The rows are read at once and each session once.
    """
    rows = await _load_rows(session, body)
    contexts: dict[str, files._SessionContext] = {}
    for f in body.files:
        row = rows.get(str(f.dataset))
        if row is None:
            raise not_found(f"Registered dataset {f.dataset}")
        ctx = contexts.get(row.session_id)
        if ctx is None:
            try:
                ctx = await files.load_session(session, principal, row.session_id, write=False)
            except ServiceError as err:
                if err.status == 404:
                    raise not_found(f"Registered dataset {f.dataset}") from None
                raise
            contexts[row.session_id] = ctx
        require_lab_member(principal, ctx.lab)
        files.refuse_deleting([row])  # early (checked again once queued): no object calls
    return list({ctx.row.id: ctx for ctx in contexts.values()}.values())


async def _take_turns(
    session: AsyncSession, body: PatchRequest, contexts: list[files._SessionContext]
) -> dict[str, RegisteredDatasetRow]:
    """Queue with each session's writers, then read the rows again.

    Sessions are queued in a fixed order, so two patches never wait for each other.
    """
    for ctx in sorted(contexts, key=lambda c: c.row.seq):
        await next_value(session, files.writers(ctx))
    rows = await _load_rows(session, body)
    for f in body.files:
        if str(f.dataset) not in rows:
            raise not_found(f"Registered dataset {f.dataset}")
    return rows


async def _check_rows(
    session: AsyncSession, body: PatchRequest, rows: dict[str, RegisteredDatasetRow]
) -> dict[str, dict[str, _Record]]:
    """The file records of each dataset by repository, once the rows pass the checks.

    The records are read as plain values (no ORM objects: a patch may have thousands),
    500 datasets to a query.

    Refuses revisions being deleted (409), protected (412) or changed (409), and a patch
    that leaves a replica stale (422).
    """
    files.refuse_deleting(rows.values())
    protected = await files.protected_ids(session, rows)
    if protected:
        details = [
            {"field": f"files.{i}.dataset", "type": "protected", "dataset": str(f.dataset)}
            for i, f in enumerate(body.files)
            if str(f.dataset) in protected
        ]
        raise ServiceError(
            412,
            "protected",
            f"{len(details)} revision(s) are protected and can't be patched "
            f"({', '.join(d['dataset'] for d in details[:5])}). Register the new content as a "
            "new revision instead: the Patcher's force registers it as the next revision, "
            "stages and verifies it, then makes it the default; the protected revision stays "
            "as it is. Nothing was changed.",
            details=details,
        )
    changed = [
        {
            "field": f"files.{i}.expected_sha256",
            "type": "patch_conflict",
            "dataset": str(f.dataset),
            "sha256": rows[str(f.dataset)].sha256,
        }
        for i, f in enumerate(body.files)
        if rows[str(f.dataset)].sha256 != f.expected_sha256
    ]
    if changed:
        raise ServiceError(
            409,
            "patch_conflict",
            f"Registered dataset {changed[0]['dataset']} changed since it was read (its sha256 "
            f"is now {changed[0]['sha256']}, not the expected one); read it again and decide. "
            "Nothing was changed.",
            details=changed,
        )
    records: dict[str, dict[str, _Record]] = {d: {} for d in rows}
    ids = list(rows)
    for start in range(0, len(ids), _IDS_PER_QUERY):
        for found in await session.execute(
            select(*_RECORD_COLUMNS)
            .where(FileRecordRow.dataset_id.in_(ids[start : start + _IDS_PER_QUERY]))
            .order_by(FileRecordRow.id)
        ):
            record = _Record(*found)
            records[record.dataset_id][record.repository_id] = record
    stale = [
        files.problem(
            f"files.{i}.locations",
            f"dataset {f.dataset} has a file record in repository {repository}, which the "
            "patch gives no location: its replica there would be left stale",
            "missing_location",
            repository=repository,
        )
        for i, f in enumerate(body.files)
        for repository in records[str(f.dataset)]
        if repository not in {loc.repository for loc in f.locations}
    ]
    if stale:
        raise validation_error(stale, what="files")
    return records


def _write_file(
    principal: Principal,
    body: PatchRequest,
    index: int,
    row: RegisteredDatasetRow,
    records: dict[str, _Record],
    verified: set[tuple[int, int]],
    now: datetime,
    writes: _Writes,
) -> list[FileRecordInfo]:
    """Switch one revision to its new content; its old locations (to clean up).

    The revision's row changes in place (the session flushes it); its file records' new
    values and its history row are appended to ``writes``, written for all files at once.
    """
    f: PatchFile = body.files[index]
    old_locations: list[FileRecordInfo] = []
    paths: dict[str, dict[str, str | None]] = {}
    for m, loc in enumerate(f.locations):
        record = records.get(loc.repository)
        when = now if (index, m) in verified else None
        paths[loc.repository] = {
            "old": record.relative_path if record is not None else None,
            "new": loc.relative_path,
        }
        values = {"relative_path": loc.relative_path, "exists": True, "verified_at": when}
        if record is None:
            writes.inserts.append({"dataset_id": row.id, "repository_id": loc.repository, **values})
            continue
        if record.relative_path != loc.relative_path:
            old_locations.append(
                FileRecordInfo(
                    repository=record.repository_id,
                    relative_path=record.relative_path,
                    exists=record.exists,
                    verified_at=record.verified_at,
                )
            )
        writes.updates.append({"id": record.id, **values})
    writes.history.append(
        {
            "patch_id": str(body.patch_id),
            "dataset_id": row.id,
            "old_size": row.size,
            "new_size": f.size,
            "old_sha256": row.sha256,
            "new_sha256": f.sha256,
            "old_md5": row.md5,
            "new_md5": f.md5,
            "old_version": row.version,
            "new_version": f.version,
            "paths": paths,
            "created_by": principal.username,
            "created_at": now,
        }
    )
    row.size, row.sha256, row.md5, row.version = f.size, f.sha256, f.md5, f.version
    row.updated_at = now
    return old_locations


async def commit_patch(
    session: AsyncSession, principal: Principal, body: PatchRequest, store: ObjectStore | None
) -> tuple[PatchResult, bool]:
    """Commit a patch (see the module's docstring), in the caller's transaction.

    Returns:
        The answer, and whether it was committed now (False: the replay of an earlier
        commit of the same request).

    Raises:
        ServiceError: 409 ``patch_id_used``, ``dataset_deleting`` or ``patch_conflict``,
            412 ``protected``, 422 naming the field, 404 an unknown or unreadable dataset,
            403 not a member of a session's lab.
    """
    fp = fingerprint(
        "POST", "/registry/patches", [principal.username, body.model_dump(mode="json")]
    )
    found = await session.get(PatchRow, str(body.patch_id))
    if found is not None:
        return _replay(found, fp), False
    problems = _shape_problems(body)
    if problems:
        raise validation_error(problems, what="files")
    contexts = await _sessions(session, principal, body)
    repositories, problems = await _repositories(session, principal, body)
    if problems:
        raise validation_error(problems, what="files")
    # what the server can see for itself, before queueing with the writers (network calls)
    verified, problems = await _verify_locations(store, body, repositories)
    rows = await _take_turns(session, body, contexts)
    if problems:
        raise validation_error(problems, what="files")
    # a commit of this very patch may have gone through while this one queued
    found = await session.get(PatchRow, str(body.patch_id), populate_existing=True)
    if found is not None:
        return _replay(found, fp), False
    records = await _check_rows(session, body, rows)
    now = utcnow()
    # the patch's row first: its files' history rows refer to it
    patch = PatchRow(
        id=str(body.patch_id),
        fingerprint=fp,
        force=body.force,
        answer={},
        created_by=principal.username,
        created_at=now,
    )
    session.add(patch)
    await session.flush()
    writes = _Writes([], [], [])
    old = [
        _write_file(
            principal,
            body,
            i,
            rows[str(f.dataset)],
            records[str(f.dataset)],
            verified,
            now,
            writes,
        )
        for i, f in enumerate(body.files)
    ]
    await session.flush()
    # one executemany each, not an ORM object per record (records in id order, as read)
    if writes.updates:
        writes.updates.sort(key=lambda values: int(values["id"]))
        await session.execute(update(FileRecordRow), writes.updates)
    if writes.inserts:
        await session.execute(insert(FileRecordRow), writes.inserts)
    if writes.history:
        await session.execute(insert(DatasetPatchRow), writes.history)
    for f in body.files:
        if f.default:
            rows[str(f.dataset)] = await files.make_default(session, rows[str(f.dataset)])
    models = await files.dataset_models(session, [rows[str(f.dataset)] for f in body.files])
    result = PatchResult(
        patch_id=str(body.patch_id),
        force=body.force,
        created_by=principal.username,
        created_at=now,
        files=[PatchedFile(dataset=m, old_locations=o) for m, o in zip(models, old, strict=True)],
    )
    patch.answer = result.model_dump(mode="json")
    await session.flush()
    return result, True


async def get_patch(session: AsyncSession, principal: Principal, patch_id: str) -> PatchResult:
    """A committed patch: 404 if there is none, or the caller may not read all it changed.

    The caller who committed it may always read it; anyone else must be able to read each
    of its datasets' sessions (and its datasets must still be registered).
    """
    found = await session.get(PatchRow, patch_id)
    if found is None:
        raise not_found(f"Patch {patch_id}")
    if found.created_by != principal.username:
        ids = (
            await session.scalars(
                select(DatasetPatchRow.dataset_id).where(DatasetPatchRow.patch_id == patch_id)
            )
        ).all()
        if not ids:  # its datasets were deleted since: nothing left to show anyone else
            raise not_found(f"Patch {patch_id}")
        try:
            for dataset_id in ids:
                await files.readable_dataset(session, principal, dataset_id)
        except ServiceError as err:
            if err.status == 404:
                raise not_found(f"Patch {patch_id}") from None
            raise
    return PatchResult.model_validate(found.answer)


async def list_patches(
    session: AsyncSession,
    principal: Principal,
    dataset_id: str,
    *,
    page_size: int,
    cursor: str | None,
) -> tuple[list[PatchHistoryEntry], str | None]:
    """The patches of a registered revision, oldest first, one page at a time.

    Raises:
        ServiceError: 404 unless the caller may read the dataset's session.
    """
    await files.readable_dataset(session, principal, dataset_id)
    query = select(DatasetPatchRow).where(DatasetPatchRow.dataset_id == dataset_id)
    keys = [KeyColumn(DatasetPatchRow.id, "int", lambda r: r.id)]
    rows: Sequence[DatasetPatchRow]
    rows, next_cursor = await keyset_page(
        session, query, keys, cursor=cursor, page_size=page_size, scope=[dataset_id]
    )
    return [
        PatchHistoryEntry(
            patch_id=r.patch_id,
            dataset=r.dataset_id,
            old_size=r.old_size,
            new_size=r.new_size,
            old_sha256=r.old_sha256,
            new_sha256=r.new_sha256,
            old_md5=r.old_md5,
            new_md5=r.new_md5,
            old_version=r.old_version,
            new_version=r.new_version,
            paths=r.paths,
            created_by=r.created_by,
            created_at=r.created_at,
        )
        for r in rows
    ], next_cursor
