"""HTTP routes of extracted metadata, mounted at ``/datastore`` beside the datasets.

``/datastore/datasets/{id}/extracted-metadata``: ``GET`` lists the files of the dataset's
committed extraction run by path (``metadata-read``); ``DELETE`` removes every run
(``metadata-write``). ``POST .../runs`` opens a run (``metadata-write``; honours
``Idempotency-Key``), ``POST .../runs/{run_id}/files`` adds a batch of up to 1,000 files
(a path already in the run is replaced, so resending a batch changes nothing), and
``POST .../runs/{run_id}/commit`` makes the run the dataset's extracted metadata, in place
of the previous one, and reindexes the dataset for search - one transaction.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.extracted import (
    ExtractedFile,
    ExtractedFilesAdded,
    ExtractedFilesBatch,
    ExtractionRun,
    ExtractionRunRequest,
)
from provena_like.models.shared import Page
from provena_like.server.idempotency import run_request_once
from provena_like.server.params import Cursor, IdempotencyKey, PageSize, error_responses
from provena_like.server.security import Principal, db_session, require_principal, sessions

from . import service

__all__ = ["router"]

router = APIRouter(tags=["datastore"], responses=error_responses(400, 401, 403, 404, 413, 422))

Caller = Annotated[Principal, Depends(require_principal)]
Session = Annotated[AsyncSession, Depends(db_session)]

_BASE = "/datasets/{id_prefix}/{id_suffix}/extracted-metadata"


@router.get(_BASE, response_model=Page[ExtractedFile])
async def list_extracted_route(
    id_prefix: str,
    id_suffix: str,
    principal: Caller,
    session: Session,
    path_prefix: Annotated[
        str | None, Query(alias="prefix", max_length=1024, description="only paths starting so")
    ] = None,
    page_size: PageSize = 100,
    cursor: Cursor = None,
) -> Page[ExtractedFile]:
    """The files of the dataset's committed extraction run, by path; needs ``metadata-read``.

    Empty when the dataset has no committed run.
    """
    files, next_cursor = await service.list_files(
        session,
        principal,
        f"{id_prefix}/{id_suffix}",
        path_prefix=path_prefix,
        page_size=page_size,
        cursor=cursor,
    )
    return Page[ExtractedFile](items=files, next_cursor=next_cursor)


@router.delete(_BASE, response_model=dict[str, int])
async def clear_extracted_route(
    id_prefix: str, id_suffix: str, request: Request, principal: Caller
) -> dict[str, int]:
    """Delete the dataset's extracted metadata (every run); needs ``metadata-write``.

    Its terms leave the search index in the same transaction. Answers ``{"deleted": n}``,
    the number of file records deleted.
    """
    async with sessions(request)() as session, session.begin():
        deleted = await service.clear(session, principal, f"{id_prefix}/{id_suffix}")
    return {"deleted": deleted}


@router.post(
    _BASE + "/runs",
    status_code=201,
    response_model=ExtractionRun,
    responses=error_responses(409),
)
async def start_extraction_run_route(
    id_prefix: str,
    id_suffix: str,
    request: Request,
    principal: Caller,
    body: ExtractionRunRequest | None = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Open an extraction run of the dataset; needs ``metadata-write``.

    Add files with ``POST .../runs/{run_id}/files``, then commit it. Open runs older than a
    day are deleted when a new one starts. Honours ``Idempotency-Key``.
    """
    dataset_id = f"{id_prefix}/{id_suffix}"
    request_body = body or ExtractionRunRequest()

    async def work(session: AsyncSession) -> tuple[int, Any]:
        run = await service.start_run(session, principal, dataset_id, request_body)
        return 201, run.model_dump(mode="json")

    return await run_request_once(
        request, principal, idempotency_key, request_body.model_dump(mode="json"), work
    )


@router.post(
    _BASE + "/runs/{run_id}/files",
    response_model=ExtractedFilesAdded,
    responses=error_responses(409),
)
async def add_extracted_files_route(
    id_prefix: str,
    id_suffix: str,
    run_id: str,
    body: ExtractedFilesBatch,
    request: Request,
    principal: Caller,
) -> ExtractedFilesAdded:
    """Add up to 1,000 files to an open run; needs ``metadata-write``.

    A path already in the run is replaced, so sending a batch again changes nothing. 409
    ``run_committed`` once the run is committed; 404 for a run of another dataset.
    """
    async with sessions(request)() as session, session.begin():
        return await service.add_files(session, principal, f"{id_prefix}/{id_suffix}", run_id, body)


@router.post(
    _BASE + "/runs/{run_id}/commit",
    response_model=ExtractionRun,
    responses=error_responses(409),
)
async def commit_extraction_run_route(
    id_prefix: str, id_suffix: str, run_id: str, request: Request, principal: Caller
) -> ExtractionRun:
    """Make the run the dataset's extracted metadata, replacing the previous run.

    Needs ``metadata-write``. One transaction: the previous run's files go, this run's
    terms are indexed for search with the dataset. Committing again changes nothing.
    """
    async with sessions(request)() as session, session.begin():
        return await service.commit_run(session, principal, f"{id_prefix}/{id_suffix}", run_id)
