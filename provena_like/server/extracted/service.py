"""Extraction runs of a dataset: start one, add batches of files, commit it, read the result.

Access is decided by the one evaluator (:mod:`provena_like.server.access`) on the dataset's
item: writing (runs, batches, commits, clearing) needs ``metadata-write``, reading the
committed files ``metadata-read``. A commit replaces the dataset's previous committed run and
reindexes the dataset for search in the same transaction, so a search sees the terms of the
committed run and nothing else.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.extracted import (
    ExtractedFile,
    ExtractedFilesAdded,
    ExtractedFilesBatch,
    ExtractionRun,
    ExtractionRunRequest,
)
from provena_like.models.registry import Role
from provena_like.server.db.base import utcnow
from provena_like.server.errors import ServiceError, not_found, validation_error
from provena_like.server.pagination import KeyColumn, keyset_page
from provena_like.server.registry.service import load_item_of
from provena_like.server.registry.tables import ItemRow
from provena_like.server.search import index as search_index
from provena_like.server.search.documents import SearchText
from provena_like.server.security import Principal

from .tables import ExtractedFileRow, ExtractionRunRow

__all__ = [
    "OPEN_RUN_LIFETIME",
    "add_files",
    "carry_to_version",
    "clear",
    "commit_run",
    "drop_stale",
    "list_files",
    "start_run",
]

_CARRY_BATCH = 500  # paths per query when a new version's results are carried over

OPEN_RUN_LIFETIME = timedelta(days=1)
"""An open run older than this is deleted when the dataset's next run starts."""

_ORDER = [
    KeyColumn(ExtractedFileRow.path, "str", lambda r: r.path),
    KeyColumn(ExtractedFileRow.id, "int", lambda r: r.id),
]


async def _dataset(
    session: AsyncSession,
    principal: Principal,
    dataset_id: str,
    role: Role,
    *,
    for_update: bool = False,
) -> ItemRow:
    return await load_item_of(
        session, principal, dataset_id, "dataset", role, for_update=for_update
    )


def _wire(row: ExtractionRunRow) -> ExtractionRun:
    return ExtractionRun(
        run_id=row.id,
        dataset=row.dataset_id,
        state="committed" if row.state == "committed" else "open",
        files=row.files,
        terms=row.terms,
        source=row.source,
        created_by=row.created_by,
        created_at=row.created_at,
        committed_at=row.committed_at,
    )


def _file(row: ExtractedFileRow) -> ExtractedFile:
    return ExtractedFile(
        path=row.path,
        size=row.size,
        extractors=row.extractors,
        terms=row.terms,
        kinds=row.kinds or {},
        metadata=row.extracted,
        errors=row.errors,
    )


def _row(run_id: str, f: ExtractedFile) -> ExtractedFileRow:
    return ExtractedFileRow(
        run_id=run_id,
        path=f.path,
        size=f.size,
        extractors=list(f.extractors),
        terms=list(f.terms),
        kinds={kind: list(names) for kind, names in f.kinds.items()},
        extracted=dict(f.metadata),
        errors=dict(f.errors),
    )


def _new_run(dataset_id: str, source: str | None, user: str) -> ExtractionRunRow:
    """An open run of ``dataset_id``, not yet added to a session."""
    return ExtractionRunRow(
        id=uuid.uuid4().hex,
        dataset_id=dataset_id,
        state="open",
        source=source,
        files=0,
        terms=0,
        search_text="",
        search_kinds={},
        created_by=user,
        created_at=utcnow(),
    )


async def _committed(session: AsyncSession, dataset_id: str) -> ExtractionRunRow | None:
    return await session.scalar(
        select(ExtractionRunRow).where(
            ExtractionRunRow.dataset_id == dataset_id, ExtractionRunRow.state == "committed"
        )
    )


async def _run(
    session: AsyncSession, principal: Principal, dataset_id: str, run_id: str
) -> tuple[ItemRow, ExtractionRunRow]:
    """The dataset (``metadata-write`` checked, row locked) and its run ``run_id`` (404)."""
    item = await _dataset(session, principal, dataset_id, "metadata-write", for_update=True)
    run = await session.get(ExtractionRunRow, run_id, populate_existing=True)
    if run is None or run.dataset_id != dataset_id:
        raise not_found(f"Extraction run {run_id} of dataset {dataset_id}")
    return item, run


async def start_run(
    session: AsyncSession, principal: Principal, dataset_id: str, body: ExtractionRunRequest
) -> ExtractionRun:
    """Open a run of ``dataset_id``; open runs older than a day are deleted first."""
    await _dataset(session, principal, dataset_id, "metadata-write")
    now = utcnow()
    await session.execute(
        delete(ExtractionRunRow).where(
            ExtractionRunRow.dataset_id == dataset_id,
            ExtractionRunRow.state == "open",
            ExtractionRunRow.created_at < now - OPEN_RUN_LIFETIME,
        )
    )
    row = _new_run(dataset_id, body.source, principal.username)
    session.add(row)
    await session.flush()
    return _wire(row)


async def add_files(
    session: AsyncSession,
    principal: Principal,
    dataset_id: str,
    run_id: str,
    batch: ExtractedFilesBatch,
) -> ExtractedFilesAdded:
    """Add a batch to an open run.

    A path already in the run is replaced, so a resent batch changes nothing.

    Raises:
        ServiceError: 404 (no such run of the dataset), 409 (the run is committed), 422 (a
            path twice in the batch).
    """
    _, run = await _run(session, principal, dataset_id, run_id)
    if run.state != "open":
        raise ServiceError(
            409, "run_committed", f"Extraction run {run_id} is committed; start a new run."
        )
    paths = [f.path for f in batch.files]
    if len(set(paths)) != len(paths):
        raise validation_error(
            [{"field": "body.files", "message": "a path is given twice", "type": "duplicate_path"}]
        )
    await session.execute(
        delete(ExtractedFileRow).where(
            ExtractedFileRow.run_id == run_id, ExtractedFileRow.path.in_(paths)
        )
    )
    session.add_all(_row(run_id, f) for f in batch.files)
    await session.flush()
    count = await session.scalar(
        select(func.count()).select_from(ExtractedFileRow).where(ExtractedFileRow.run_id == run_id)
    )
    run.files = int(count or 0)
    return ExtractedFilesAdded(run_id=run_id, received=len(paths), files=run.files)


async def _search_text(session: AsyncSession, run_id: str) -> SearchText:
    """The run's search text (:class:`SearchText`), from its files' terms and kinds."""
    text = SearchText()
    result = await session.stream(
        select(ExtractedFileRow.terms, ExtractedFileRow.kinds)
        .where(ExtractedFileRow.run_id == run_id)
        .execution_options(yield_per=500)
    )
    async for terms, kinds in result:
        text.add(terms or (), kinds or {})
    return text


async def commit_run(
    session: AsyncSession, principal: Principal, dataset_id: str, run_id: str
) -> ExtractionRun:
    """Make ``run_id`` the dataset's extracted metadata, in place of the previous run.

    Committing a committed run again changes nothing. The dataset is reindexed for search
    in the same transaction.
    """
    item, run = await _run(session, principal, dataset_id, run_id)
    if run.state == "committed":
        return _wire(run)
    text = await _search_text(session, run_id)
    previous = select(ExtractionRunRow.id).where(
        ExtractionRunRow.dataset_id == dataset_id,
        ExtractionRunRow.state == "committed",
        ExtractionRunRow.id != run_id,
    )
    await session.execute(delete(ExtractedFileRow).where(ExtractedFileRow.run_id.in_(previous)))
    await session.execute(
        delete(ExtractionRunRow)
        .where(ExtractionRunRow.id.in_(previous.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(ExtractionRunRow)
        .where(ExtractionRunRow.id == run_id)
        .values(
            state="committed",
            committed_at=utcnow(),
            terms=text.count,
            search_text=text.text,
            search_kinds=text.kinds,
        )
        .execution_options(synchronize_session=False)
    )
    await search_index.index_item(session, item)
    refreshed = await session.get(ExtractionRunRow, run_id, populate_existing=True)
    assert refreshed is not None
    return _wire(refreshed)


async def carry_to_version(
    session: AsyncSession, old_id: str, new: ItemRow, copied: Mapping[str, int], user: str
) -> int:
    """Give a new version of a dataset the extracted metadata of the files it carries over.

    Called by versioning, in its transaction, after the objects were copied: the committed
    run of ``old_id`` is copied to a committed run of ``new`` holding only the files in
    ``copied`` (path → size of the copy) whose recorded size (when there is one) is the
    copy's - a file the new version does not have, or has with other bytes, gets no stale
    results. The new version is reindexed for search. Access was checked by versioning.

    Returns:
        How many files' results were carried over (0: no committed run, or no file of it
        was copied; then no run is made).
    """
    old_run = await _committed(session, old_id)
    if old_run is None or not copied:
        return 0
    run = _new_run(new.id, old_run.source, user)
    session.add(run)
    await session.flush()
    files = 0
    paths = sorted(copied)
    for start in range(0, len(paths), _CARRY_BATCH):
        rows = await session.scalars(
            select(ExtractedFileRow).where(
                ExtractedFileRow.run_id == old_run.id,
                ExtractedFileRow.path.in_(paths[start : start + _CARRY_BATCH]),
            )
        )
        carried = [
            _row(run.id, _file(row))
            for row in rows
            if row.size is None or row.size == copied[row.path]
        ]
        files += len(carried)
        session.add_all(carried)
        await session.flush()
    if not files:
        await session.delete(run)
        await session.flush()
        return 0
    text = await _search_text(session, run.id)
    run.state, run.committed_at, run.files = "committed", utcnow(), files
    run.terms, run.search_text, run.search_kinds = text.count, text.text, text.kinds
    await session.flush()
    await search_index.index_item(session, new)
    return files


async def drop_stale(
    session: AsyncSession, item: ItemRow, changed: Mapping[str, int | None]
) -> int:
    """Forget the committed results of files whose bytes changed, and reindex the dataset.

    Called in the transaction that registers or removes files of the dataset (access was
    checked there). ``changed``: path → the size of the newly registered bytes, or None
    when the file was removed or its registered bytes replaced. A path's results go when
    its value is None, or when both sizes are known and differ (results attached before
    the same file was first registered stay).

    Returns:
        How many files' results were deleted.
    """
    run = await _committed(session, item.id)
    if run is None or not changed:
        return 0
    paths = sorted(changed)
    stale: list[int] = []
    for start in range(0, len(paths), _CARRY_BATCH):
        rows = await session.execute(
            select(ExtractedFileRow.id, ExtractedFileRow.path, ExtractedFileRow.size).where(
                ExtractedFileRow.run_id == run.id,
                ExtractedFileRow.path.in_(paths[start : start + _CARRY_BATCH]),
            )
        )
        for row_id, path, size in rows:
            new_size = changed[path]
            if new_size is None or (size is not None and size != new_size):
                stale.append(row_id)
    if not stale:
        return 0
    for start in range(0, len(stale), _CARRY_BATCH):
        await session.execute(
            delete(ExtractedFileRow)
            .where(ExtractedFileRow.id.in_(stale[start : start + _CARRY_BATCH]))
            .execution_options(synchronize_session=False)
        )
    text = await _search_text(session, run.id)
    run.files = max(0, run.files - len(stale))
    run.terms, run.search_text, run.search_kinds = text.count, text.text, text.kinds
    await session.flush()
    await search_index.index_item(session, item)
    return len(stale)


async def clear(session: AsyncSession, principal: Principal, dataset_id: str) -> int:
    """Delete every run of the dataset (committed and open); returns the files deleted."""
    item = await _dataset(session, principal, dataset_id, "metadata-write", for_update=True)
    runs = select(ExtractionRunRow.id).where(ExtractionRunRow.dataset_id == dataset_id)
    count = await session.scalar(
        select(func.count()).select_from(ExtractedFileRow).where(ExtractedFileRow.run_id.in_(runs))
    )
    await session.execute(delete(ExtractedFileRow).where(ExtractedFileRow.run_id.in_(runs)))
    await session.execute(
        delete(ExtractionRunRow)
        .where(ExtractionRunRow.dataset_id == dataset_id)
        .execution_options(synchronize_session=False)
    )
    await search_index.index_item(session, item)
    return int(count or 0)


async def list_files(
    session: AsyncSession,
    principal: Principal,
    dataset_id: str,
    *,
    path_prefix: str | None,
    page_size: int,
    cursor: str | None,
) -> tuple[list[ExtractedFile], str | None]:
    """One page of the committed run's files, by path; needs ``metadata-read``."""
    await _dataset(session, principal, dataset_id, "metadata-read")
    committed = select(ExtractionRunRow.id).where(
        ExtractionRunRow.dataset_id == dataset_id, ExtractionRunRow.state == "committed"
    )
    query = select(ExtractedFileRow).where(ExtractedFileRow.run_id.in_(committed))
    if path_prefix:
        query = query.where(ExtractedFileRow.path.startswith(path_prefix, autoescape=True))
    rows, next_cursor = await keyset_page(
        session, query, _ORDER, cursor=cursor, page_size=page_size, scope=[dataset_id, path_prefix]
    )
    return [_file(r) for r in rows], next_cursor
