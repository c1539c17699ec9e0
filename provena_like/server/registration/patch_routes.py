"""HTTP routes of patching and deleting registered datasets, mounted at ``/registry``.

- ``POST /registry/patches`` commits a patch (:mod:`.patches`), all or nothing; 201 when
  committed now, 200 for the same request again (same ``patch_id``). Honours
  ``Idempotency-Key`` too.
- ``GET /registry/patches/{patch_id}``: a committed patch (404 if it never was).
- ``GET /registry/registered-datasets/{id}/patches``: a revision's patch history.
- ``POST /registry/registered-datasets/{id}/deletion`` marks a revision ``deleting``;
  ``PUT /registry/registered-datasets/{id}/files/{repository}`` marks a replica present or
  absent; ``DELETE /registry/registered-datasets/{id}`` removes the records once no replica
  is left (:mod:`.deletion`).
- ``POST /registry/repositories/{id}/credentials``: STS credentials limited to an S3
  repository's root prefix in the server's own bucket.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.datastore import CredentialsRequest, ScopedCredentials
from provena_like.models.patching import (
    FileRecordUpdate,
    PatchHistoryEntry,
    PatchRequest,
    PatchResult,
)
from provena_like.models.registration import RegisteredDataset
from provena_like.models.shared import Page
from provena_like.server import access
from provena_like.server.datastore.routes import (
    credentials_answer,
    mint_credentials,
    require_object_store,
)
from provena_like.server.datastore.storage import ObjectStore
from provena_like.server.errors import ServiceError, not_found, validation_error
from provena_like.server.idempotency import Unchanged, run_request_once
from provena_like.server.params import Cursor, IdempotencyKey, PageSize, error_responses
from provena_like.server.registry.tables import ItemRow
from provena_like.server.security import Principal, db_session, require_principal

from . import deletion, patches
from .replicas import own_prefix

__all__ = ["PATCH_ATTEMPTS", "router"]

router = APIRouter(tags=["registry"], responses=error_responses(400, 401, 403, 404, 409, 422))

Caller = Annotated[Principal, Depends(require_principal)]
Session = Annotated[AsyncSession, Depends(db_session)]

PATCH_ATTEMPTS = 3
"""How often a patch commit that met a constraint (a concurrent writer) is tried."""


def _store(request: Request) -> ObjectStore | None:
    """The app's object store, if it has one (the server looks into its own bucket)."""
    store: ObjectStore | None = getattr(request.app.state, "object_store", None)
    return store


@router.post(
    "/patches",
    status_code=201,
    response_model=PatchResult,
    responses={**error_responses(412, 502), 200: {"model": PatchResult}},
)
async def commit_patch_route(
    body: PatchRequest,
    request: Request,
    principal: Caller,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Commit a patch: new content of registered revisions, already staged in place.

    One transaction: each revision's size, hashes and version, each repository's file
    record switched to the given relative path (``exists`` True; ``verified_at`` now only
    where the server checked the object itself: S3 repositories in its own bucket), and a
    history row per file. The caller must be a member of each session's lab. Refused, with
    nothing changed: a protected revision (412, also with ``force``), a revision whose sha256
    is not ``expected_sha256`` any more (409 ``patch_conflict``) or that is being deleted
    (409 ``dataset_deleting``), a location whose size or sha256 is not the file's, a
    repository holding the revision without a location, a missing md5 where a repository
    keeps md5s (422). The answer lists per file the old locations to clean up. The same
    request again (same ``patch_id``) answers the same (200); another request with a used
    ``patch_id`` is 409 ``patch_id_used``.
    """
    store = _store(request)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        result, committed = await patches.commit_patch(session, principal, body, store)
        answer = result.model_dump(mode="json")
        return (201, answer) if committed else Unchanged(200, answer)

    fingerprinted = body.model_dump(mode="json")
    for attempt in range(PATCH_ATTEMPTS):
        try:
            return await run_request_once(request, principal, idempotency_key, fingerprinted, work)
        except IntegrityError:
            if attempt == PATCH_ATTEMPTS - 1:
                raise ServiceError(
                    409,
                    "patch_conflict",
                    "The patch met a concurrent change it could not get past (another "
                    "record has one of its paths?); read the datasets again. Nothing was "
                    "changed.",
                ) from None
    raise AssertionError("unreachable")  # pragma: no cover


@router.get("/patches/{patch_id}", response_model=PatchResult)
async def get_patch_route(patch_id: UUID, principal: Caller, session: Session) -> PatchResult:
    """A committed patch, as its commit answered (404 if it was never committed).

    A client that lost the answer of its commit asks here whether it happened.
    """
    return await patches.get_patch(session, principal, str(patch_id))


@router.get("/registered-datasets/{dataset_id}/patches", response_model=Page[PatchHistoryEntry])
async def list_patches_route(
    dataset_id: UUID,
    principal: Caller,
    session: Session,
    page_size: PageSize = 100,
    cursor: Cursor = None,
) -> Page[PatchHistoryEntry]:
    """The patches of a registered revision, oldest first (needs read access to its session)."""
    items, next_cursor = await patches.list_patches(
        session, principal, str(dataset_id), page_size=page_size, cursor=cursor
    )
    return Page[PatchHistoryEntry](items=items, next_cursor=next_cursor)


@router.post(
    "/registered-datasets/{dataset_id}/deletion",
    response_model=RegisteredDataset,
    responses=error_responses(412),
)
async def mark_deleting_route(
    dataset_id: UUID, principal: Caller, session: Session
) -> RegisteredDataset:
    """Mark a revision ``deleting`` (lab members): the first step of deleting it.

    From then on its content, tags and default flag can't change (409 ``dataset_deleting``);
    reads keep working and show ``state``. A protected revision is refused (412). Calling it
    again changes nothing.
    """
    async with session.begin():
        model, _ = await deletion.mark_deleting(session, principal, str(dataset_id))
        return model


@router.put(
    "/registered-datasets/{dataset_id}/files/{prefix}/{suffix}",
    response_model=RegisteredDataset,
    responses=error_responses(502),
)
async def update_file_record_route(
    dataset_id: UUID,
    prefix: str,
    suffix: str,
    body: FileRecordUpdate,
    request: Request,
    principal: Caller,
    session: Session,
) -> RegisteredDataset:
    """Mark the revision's replica in repository ``prefix/suffix`` present or absent.

    Present needs the ``size`` and ``sha256`` read back from the repository, equal to the
    revision's (422). In the server's own bucket the server checks the object itself.
    """
    store = _store(request)
    async with session.begin():
        return await deletion.update_file_record(
            session, principal, str(dataset_id), f"{prefix}/{suffix}", body, store
        )


@router.delete(
    "/registered-datasets/{dataset_id}",
    status_code=204,
    response_class=Response,
    responses=error_responses(502),
)
async def delete_dataset_route(
    dataset_id: UUID, request: Request, principal: Caller, session: Session
) -> Response:
    """Remove a revision's records: the last step of deleting it (lab members).

    Accepted only when it is ``deleting`` (409 ``not_deleting``) and no replica is left:
    every file record says absent and nothing is left in the server's own bucket (409
    ``replicas_remain`` listing the repositories).
    """
    store = _store(request)
    async with session.begin():
        await deletion.delete_dataset(session, principal, str(dataset_id), store)
    return Response(status_code=204)


@router.post(
    "/repositories/{prefix}/{suffix}/credentials",
    response_model=ScopedCredentials,
    responses=error_responses(502, 503),
)
async def repository_credentials_route(
    prefix: str,
    suffix: str,
    body: CredentialsRequest,
    request: Request,
    principal: Caller,
    session: Session,
) -> JSONResponse:
    """S3 credentials limited to an S3 repository's root prefix (STS AssumeRole).

    For a repository of ``kind`` ``s3`` whose root is a prefix of the server's own bucket
    (422 naming ``root`` otherwise). Who may: the registry's access evaluator on the
    repository item, ``data-read`` for ``read`` and ``data-write`` for ``write`` (403
    otherwise). A repository is vocabulary a registry admin writes, so by default only its
    owner holds those roles: the admin grants them to a lab's group in the item's access
    settings. The lifetimes, the policy and the answer are the datastore's credentials'.
    """
    store = require_object_store(request)
    handle = f"{prefix}/{suffix}"
    item = await session.get(ItemRow, handle)
    if item is None or item.subtype != "repository":
        raise not_found(f"Repository {handle}")
    if "metadata-read" not in access.roles_on(principal, item):
        raise not_found(f"Repository {handle}")
    access.require(principal, item, "data-write" if body.access == "write" else "data-read")
    key_prefix = own_prefix(store, item)
    if not key_prefix:
        message = (
            f"repository {handle} is not a prefix of the server's bucket "
            f"(s3://{store.bucket}/<prefix>): the server has no credentials to give for it"
        )
        detail = {"field": "root", "message": message, "type": "not_in_server_bucket"}
        raise validation_error([detail], message=message)
    await session.close()  # no connection held during the STS call
    issued = await mint_credentials(store, principal, handle, store.bucket, key_prefix, body)
    return credentials_answer(store, issued, store.bucket, key_prefix, body.access)
