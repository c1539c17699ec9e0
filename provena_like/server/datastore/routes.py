"""HTTP routes of the datastore service, mounted at ``/datastore``.

Dataset ids are handles with exactly one ``/`` (``10378.1/42``), so dataset routes are
``/datasets/{id_prefix}/{id_suffix}``. Every route needs a Bearer token, and answers 503
``datastore_unavailable`` when the server has no object store configured. Each write is one
database transaction; the object writes that go with it (``metadata.json``, copies) happen
inside it and are taken back if it fails (see :mod:`~provena_like.server.datastore.objects`).

Roles: reading a dataset needs ``metadata-read``, changing its record ``metadata-write``,
read credentials, presigned URLs and the manifest ``data-read``, write credentials and file
registration and removal ``data-write`` (refused while the dataset is locked, in review or
released), versioning ``admin`` (the owner has every role). While a dataset is ``PENDING`` or
``RELEASED`` its metadata is frozen too (409 ``under_review`` / ``released``); the release
workflow's own routes are in :mod:`provena_like.server.review`.

Validation errors name fields from the body's root (``record.associations.organisation_id``,
``files.0.path``, ``paths.0``) and query parameters as ``query.<name>``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import WithJsonSchema
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.datastore import (
    MAX_OBJECT_PATH,
    OBJECT_PATH_PATTERN,
    AccessLevel,
    CredentialsRequest,
    Dataset,
    DatasetRecord,
    DatasetSortKey,
    DatasetUpdate,
    ManifestEntry,
    MintRequest,
    MintResponse,
    PresignedURL,
    PresignRequest,
    RegisterFilesRequest,
    RegisterFilesResponse,
    ReleaseStatus,
    RemoveFilesRequest,
    RemoveFilesResponse,
    RevertRequest,
    ScopedCredentials,
    SortOrder,
    ValidateResponse,
    VersionRequest,
    VersionResponse,
    check_object_path,
)
from provena_like.models.shared import ErrorBody, Page
from provena_like.server import access
from provena_like.server.errors import ServiceError, not_found, validation_error
from provena_like.server.extracted import service as extracted
from provena_like.server.idempotency import Work, run_request_once
from provena_like.server.params import Cursor, IdempotencyKey, IfMatch, PageSize
from provena_like.server.registry.routes import expected_revision, revision_etag
from provena_like.server.registry.service import check_names, list_history
from provena_like.server.registry.tables import ItemRow
from provena_like.server.security import Principal, db_session, require_principal, sessions

from . import manifest, objects, policy, service, storage, verification
from .freeze import DataFreeze
from .objects import StorageJournal
from .storage import ObjectStore
from .tables import DatasetRow

__all__ = ["credentials_answer", "mint_credentials", "require_object_store", "router"]


def require_object_store(request: Request) -> ObjectStore:
    """The app's object store; 503 when the server runs without one."""
    store: ObjectStore | None = getattr(request.app.state, "object_store", None)
    if store is None:
        raise ServiceError(
            503,
            "datastore_unavailable",
            "This server has no object store configured (server setting 's3'), so the "
            "datastore is unavailable; ask its operator to configure one.",
        )
    return store


_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody} for status in (400, 401, 403, 404, 409, 412, 413, 422, 502, 503)
}

router = APIRouter(
    tags=["datastore"],
    responses=_ERRORS,
    dependencies=[Depends(require_object_store)],
)

Caller = Annotated[Principal, Depends(require_principal)]
Session = Annotated[AsyncSession, Depends(db_session)]
Store = Annotated[ObjectStore, Depends(require_object_store)]

_EXPIRY_SLACK = 30
"""Seconds a store's stated expiration may exceed the lifetime asked for (clock skew)."""

_STS_MINIMUM = 900
"""The shortest ``DurationSeconds`` STS accepts; asking for less gets the store's default."""


def _dataset_id(id_prefix: str, id_suffix: str) -> str:
    return f"{id_prefix}/{id_suffix}"


def _wire(principal: Principal, item: ItemRow, dataset: DatasetRow, store: ObjectStore) -> Dataset:
    roles = access.roles_on(principal, item)
    return service.to_dataset(item, dataset, roles, endpoint_url=store.endpoint_url)


def _location(request: Request, dataset_id: str) -> str:
    id_prefix, _, id_suffix = dataset_id.partition("/")
    return str(request.url_for("get_dataset_route", id_prefix=id_prefix, id_suffix=id_suffix))


async def _journaled(
    request: Request,
    principal: Principal,
    key: str | None,
    body: Any,
    work: Work,
    journal: StorageJournal,
) -> JSONResponse:
    """Run ``work`` once per Idempotency-Key; undo its object writes unless it committed."""
    try:
        response = await run_request_once(request, principal, key, body, work)
    except BaseException:
        await journal.undo()
        raise
    if "idempotent-replayed" in response.headers and journal.wrote_anything:
        await journal.undo()  # a concurrent duplicate committed first: ours rolled back
    return response


# -- schema and validation -----------------------------------------------------------------


@lru_cache(maxsize=1)
def _record_schema() -> bytes:
    return json.dumps(DatasetRecord.model_json_schema(), separators=(",", ":")).encode()


@router.get("/schema", response_model=dict[str, Any])
async def schema_route(_principal: Caller) -> Response:
    """The JSON Schema of a dataset record (:class:`DatasetRecord`), for forms and tools."""
    return Response(_record_schema(), media_type="application/json")


@router.post("/datasets/validate", response_model=ValidateResponse)
async def validate_route(
    body: MintRequest, principal: Caller, session: Session
) -> ValidateResponse:
    """Check a mint request as minting would (record, referenced handles, groups); no writes.

    Answers ``{"valid": true}``, or 422 with every problem's field in ``details``.
    """
    await service.check_references(session, principal, body.record)
    await check_names(session, body.groups)
    return ValidateResponse(valid=True)


# -- datasets ------------------------------------------------------------------------------


@router.post("/datasets", status_code=201, response_model=MintResponse)
async def mint_route(
    body: MintRequest,
    request: Request,
    principal: Caller,
    store: Store,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Mint a dataset: a new handle, a storage prefix and its ``metadata.json``, all or nothing.

    The caller becomes the owner. Honours ``Idempotency-Key``.
    """
    handle_prefix: str = request.app.state.settings.handle_prefix
    journal = StorageJournal(store)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        item, dataset = await service.create_dataset(
            session, principal, body, handle_prefix=handle_prefix, bucket=store.bucket
        )
        await journal.write_metadata(item, dataset, new=True)
        minted = MintResponse(dataset=_wire(principal, item, dataset, store))
        return 201, minted.model_dump(mode="json")

    response = await _journaled(
        request, principal, idempotency_key, body.model_dump(mode="json"), work, journal
    )
    minted = json.loads(bytes(response.body))["dataset"]
    response.headers["ETag"] = revision_etag(minted["revision"])
    response.headers["Location"] = _location(request, minted["id"])
    return response


@router.get("/datasets", response_model=Page[Dataset])
async def list_datasets_route(
    principal: Caller,
    session: Session,
    store: Store,
    owner: Annotated[str | None, Query(description="only datasets owned by this user")] = None,
    keyword: Annotated[str | None, Query(description="only datasets with this keyword")] = None,
    release_status: ReleaseStatus | None = None,
    sort: DatasetSortKey = "created",
    order: SortOrder = "asc",
    page_size: PageSize = 100,
    cursor: Cursor = None,
) -> Page[Dataset]:
    """The datasets the caller may read, one page at a time.

    Sorted by ``sort`` then handle number, in ``order``; pass ``next_cursor`` back as
    ``cursor`` (a cursor only fits the listing that made it). ``release_time`` puts datasets
    never released last (first in ``desc``).
    """
    rows, next_cursor = await service.list_datasets(
        session,
        principal,
        owner=owner,
        keyword=keyword,
        release_status=release_status,
        sort=sort,
        order=order,
        page_size=page_size,
        cursor=cursor,
    )
    items = [_wire(principal, item, dataset, store) for item, dataset in rows]
    return Page[Dataset](items=items, next_cursor=next_cursor)


@router.get("/datasets/{id_prefix}/{id_suffix}", response_model=Dataset, name="get_dataset_route")
async def get_dataset_route(
    id_prefix: str,
    id_suffix: str,
    principal: Caller,
    session: Session,
    store: Store,
    response: Response,
    include_history: bool = False,
) -> Dataset:
    """One dataset, with the caller's effective ``roles``; needs ``metadata-read``."""
    item, dataset = await service.load_dataset(session, _dataset_id(id_prefix, id_suffix))
    roles = access.require(principal, item, "metadata-read")
    history = await list_history(session, item.id) if include_history else None
    response.headers["ETag"] = revision_etag(item.revision)
    return service.to_dataset(
        item, dataset, roles, endpoint_url=store.endpoint_url, history=history
    )


@router.put("/datasets/{id_prefix}/{id_suffix}", response_model=Dataset)
async def update_dataset_route(
    id_prefix: str,
    id_suffix: str,
    body: DatasetUpdate,
    request: Request,
    response: Response,
    principal: Caller,
    store: Store,
    if_match: IfMatch = None,
) -> Dataset:
    """Replace the record and rewrite ``metadata.json``; needs ``metadata-write``.

    409 when locked (``locked``), in review (``under_review``) or released (``released``);
    412 when ``If-Match``/``expected_revision`` is stale.
    """
    expected = expected_revision(if_match, body.expected_revision)
    journal = StorageJournal(store)
    try:
        async with sessions(request)() as session, session.begin():
            item, dataset = await service.update_dataset(
                session, principal, _dataset_id(id_prefix, id_suffix), body, expected=expected
            )
            await journal.write_metadata(item, dataset, new=False)
            result = _wire(principal, item, dataset, store)
    except BaseException:
        await journal.undo()
        raise
    response.headers["ETag"] = revision_etag(result.revision)
    return result


@router.post("/datasets/{id_prefix}/{id_suffix}/revert", response_model=Dataset)
async def revert_dataset_route(
    id_prefix: str,
    id_suffix: str,
    body: RevertRequest,
    request: Request,
    principal: Caller,
    store: Store,
    if_match: IfMatch = None,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Restore the record of a history entry as a new entry; needs ``metadata-write``.

    Only the metadata comes back: storage, versions and access stay as they are.
    """
    expected = expected_revision(if_match, body.expected_revision)
    dataset_id = _dataset_id(id_prefix, id_suffix)
    journal = StorageJournal(store)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        item, dataset = await service.revert_dataset(
            session, principal, dataset_id, body.history_id, body.reason, expected=expected
        )
        await journal.write_metadata(item, dataset, new=False)
        return 200, _wire(principal, item, dataset, store).model_dump(mode="json")

    response = await _journaled(
        request,
        principal,
        idempotency_key,
        [body.model_dump(mode="json"), expected],
        work,
        journal,
    )
    response.headers["ETag"] = revision_etag(json.loads(bytes(response.body))["revision"])
    return response


@router.post(
    "/datasets/{id_prefix}/{id_suffix}/version", status_code=201, response_model=VersionResponse
)
async def version_dataset_route(
    id_prefix: str,
    id_suffix: str,
    body: VersionRequest,
    request: Request,
    principal: Caller,
    store: Store,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Create the next version: a new handle and prefix, linked both ways; needs ``admin``.

    With ``copy_files`` the objects are copied server-side (the old ones stay untouched) and
    the manifest rows of the copied files come along. Honours ``Idempotency-Key``.
    """
    handle_prefix: str = request.app.state.settings.handle_prefix
    dataset_id = _dataset_id(id_prefix, id_suffix)
    journal = StorageJournal(store)

    async def work(session: AsyncSession) -> tuple[int, Any]:
        old, old_dataset, new, new_dataset = await service.link_new_version(
            session,
            principal,
            dataset_id,
            body.reason,
            handle_prefix=handle_prefix,
            bucket=store.bucket,
        )
        copied: list[objects.CopiedObject] = []
        if body.copy_files:
            copied = await objects.copy_prefix(journal, old_dataset.prefix, new_dataset.prefix)
            await manifest.copy_manifest(session, old.id, new.id, copied, principal.username)
            sizes = {c.path: c.size for c in copied}
            await extracted.carry_to_version(session, old.id, new, sizes, principal.username)
        await journal.write_metadata(new, new_dataset, new=True)
        result = VersionResponse(
            id=new.id,
            version=new.version,
            previous=old.id,
            copied_files=len(copied),
            dataset=_wire(principal, new, new_dataset, store),
        )
        return 201, result.model_dump(mode="json")

    response = await _journaled(
        request, principal, idempotency_key, body.model_dump(mode="json"), work, journal
    )
    new_id = json.loads(bytes(response.body))["id"]
    response.headers["Location"] = _location(request, new_id)
    return response


# -- data access ---------------------------------------------------------------------------


def _refuse_too_long(field: str, seconds: int, limit: int) -> None:
    """422 naming ``field`` when a lifetime asked for is longer than this server allows."""
    if seconds > limit:
        message = f"{field} may be at most {limit} here"
        raise validation_error(
            [{"field": field, "message": message, "type": "too_long"}],
            message=f"Invalid request: {message}.",
        )


async def _writable_after_minting(request: Request, item_id: str, prefix: str) -> None:
    """Check again, once write credentials are minted, that the dataset may still change.

    A lock or release request committed while STS was minting would otherwise miss them: its
    freeze lasts for the credentials' lifetime counted from its own time, so credentials are
    handed out only if minted before that (409 otherwise; they are never used). And when the
    store still freezes the prefix of a dataset that was thawed (an update that failed after
    an unlock), the bucket policy is rebuilt now, so that the new credentials work.
    """
    async with sessions(request)() as session:
        item, dataset = await service.load_dataset(session, item_id)
        service.refuse_data_writes(item, dataset)
    freeze: DataFreeze | None = getattr(request.app.state, "data_freeze", None)
    if freeze is not None and prefix in freeze.frozen:
        await freeze.settle()


@router.post("/datasets/{id_prefix}/{id_suffix}/credentials", response_model=ScopedCredentials)
async def credentials_route(
    id_prefix: str,
    id_suffix: str,
    body: CredentialsRequest,
    request: Request,
    principal: Caller,
    session: Session,
    store: Store,
) -> JSONResponse:
    """S3 credentials limited to the dataset's prefix (STS AssumeRole + session policy).

    ``read`` needs ``data-read``: get and list. ``write`` needs ``data-write`` and an unlocked
    dataset that is neither in review nor released (409 ``locked``, ``under_review``,
    ``released``): also put, delete and multipart, but never ``metadata.json``. The
    ``expiration`` is the one the store stated; lifetimes under 900 s get the store's default,
    unless that is longer than 900 s (then 900 s, the STS minimum). The default lifetime is
    ``credentials_default_seconds`` (15 min) and a caller may ask for at most
    ``credentials_max_seconds`` (1 h; longer → 422, field ``duration_seconds``): credentials
    can't be called back, so access taken away ends for them when they expire. Write
    credentials live at most ``write_credentials_max_seconds`` (default 900 s); those issued
    before a lock or a release request stop writing at once: the object store's bucket policy
    denies them (see :mod:`~provena_like.server.datastore.freeze`).
    """
    item, dataset = await service.load_dataset(session, _dataset_id(id_prefix, id_suffix))
    write = body.access == "write"
    access.require(principal, item, "data-write" if write else "data-read")
    if write:
        service.refuse_data_writes(item, dataset)
    await session.close()  # no connection held during the STS call
    issued = await mint_credentials(store, principal, item.id, dataset.bucket, dataset.prefix, body)
    if write:
        await _writable_after_minting(request, item.id, dataset.prefix)
    return credentials_answer(store, issued, dataset.bucket, dataset.prefix, body.access)


async def mint_credentials(
    store: ObjectStore,
    principal: Principal,
    scope_id: str,
    bucket: str,
    prefix: str,
    body: CredentialsRequest,
) -> storage.IssuedCredentials:
    """STS credentials limited to ``s3://bucket/prefix`` (the caller checked access).

    The lifetime rules of :func:`credentials_route` (default, maximum, the STS minimum);
    ``scope_id`` (a dataset's or a repository's handle) names the role session.
    """
    settings = store.settings
    write = body.access == "write"
    duration = body.duration_seconds or settings.credentials_default_seconds
    _refuse_too_long("duration_seconds", duration, settings.credentials_max_seconds)
    limit = settings.write_credentials_max_seconds if write else settings.credentials_max_seconds
    duration = min(duration, limit)

    async def issue(seconds: int) -> storage.IssuedCredentials:
        return await storage.assume_role(
            store,
            session_name=policy.session_name(principal.username, scope_id),
            bucket=bucket,
            prefix=prefix,
            access=body.access,
            duration_seconds=seconds,
        )

    issued = await issue(duration)
    lifetime = (issued.expiration - datetime.now(UTC)).total_seconds()
    closest = min(max(duration, _STS_MINIMUM), limit)
    if lifetime > closest + _EXPIRY_SLACK:
        # Under the STS minimum the store's own default applied, and it is longer than the
        # closest lifetime STS can give to what was asked.
        issued = await issue(closest)
    return issued


def credentials_answer(
    store: ObjectStore,
    issued: storage.IssuedCredentials,
    bucket: str,
    prefix: str,
    access_level: AccessLevel,
) -> JSONResponse:
    """The :class:`ScopedCredentials` answer, secrets included, never cached."""
    creds = ScopedCredentials(
        access_key_id=issued.access_key_id,
        secret_access_key=issued.secret_access_key,
        session_token=issued.session_token,
        expiration=issued.expiration,
        endpoint_url=store.endpoint_url,
        region=store.settings.region,
        bucket=bucket,
        prefix=prefix,
        access=access_level,
    )
    out = creds.model_dump(mode="json")
    out["secret_access_key"] = issued.secret_access_key
    out["session_token"] = issued.session_token
    return JSONResponse(out, headers={"Cache-Control": "no-store"})


@router.post("/datasets/{id_prefix}/{id_suffix}/presign", response_model=PresignedURL)
async def presign_route(
    id_prefix: str,
    id_suffix: str,
    body: PresignRequest,
    principal: Caller,
    session: Session,
    store: Store,
) -> PresignedURL:
    """A presigned GET URL of one object; needs ``data-read``; 404 if missing.

    It lives ``presign_default_seconds`` (15 min) unless ``expires_in`` asks otherwise, at
    most ``presign_max_seconds`` (1 h; longer → 422, field ``expires_in``): a URL can't be
    called back, so it keeps working for whoever holds it until it expires.
    """
    item, dataset = await service.load_dataset(session, _dataset_id(id_prefix, id_suffix))
    access.require(principal, item, "data-read")
    await session.close()
    settings = store.settings
    expires_in = body.expires_in or settings.presign_default_seconds
    _refuse_too_long("expires_in", expires_in, settings.presign_max_seconds)
    key = dataset.prefix + body.path
    if await storage.head_object(store, key) is None:
        raise not_found(f"Object {body.path!r} of dataset {item.id}")
    expires_at = datetime.now(UTC) + timedelta(seconds=expires_in)
    url = await storage.presign_get(store, key, expires_in=expires_in)
    return PresignedURL(url=url, path=body.path, expires_at=expires_at)


# -- manifest ------------------------------------------------------------------------------


@router.post("/datasets/{id_prefix}/{id_suffix}/files", response_model=RegisterFilesResponse)
async def register_files_route(
    id_prefix: str,
    id_suffix: str,
    body: RegisterFilesRequest,
    request: Request,
    principal: Caller,
    store: Store,
) -> RegisterFilesResponse:
    """Record uploaded files in the manifest; needs ``data-write``.

    Refused (409 ``locked``, ``under_review``, ``released``) while the dataset is locked, in
    review or released.

    Each file must exist in the store with exactly the stated size (422 naming the path
    otherwise). Where the store doesn't verify checksums (or ``verify_uploads`` asks for it),
    the server reads back a sample or all of the files and hashes them first: 422 naming
    each file whose bytes have another sha256 (see
    :mod:`~provena_like.server.datastore.verification`). Identical content registered again
    is listed in ``unchanged``.
    """
    dataset_id = _dataset_id(id_prefix, id_suffix)
    async with sessions(request)() as session:
        item, dataset = await service.load_dataset(session, dataset_id)
        access.require(principal, item, "data-write")
        service.refuse_data_writes(item, dataset)
    heads = await manifest.head_files(store, dataset, body.files)
    await verification.check_registered(
        store, request.app.state.upload_verification, dataset.prefix, body.files, heads
    )
    for attempt in range(2):
        try:
            async with sessions(request)() as session, session.begin():
                return await manifest.record_files(
                    session, principal, dataset_id, body.files, heads
                )
        except IntegrityError:  # a concurrent registration of a new path: decide again
            if attempt:
                raise ServiceError(
                    409, "conflict", "The files are being registered concurrently; retry."
                ) from None
    raise AssertionError("unreachable")  # pragma: no cover


@router.post("/datasets/{id_prefix}/{id_suffix}/files/remove", response_model=RemoveFilesResponse)
async def remove_files_route(
    id_prefix: str,
    id_suffix: str,
    body: RemoveFilesRequest,
    request: Request,
    principal: Caller,
    store: Store,
) -> RemoveFilesResponse:
    """Remove registered files: their manifest entries, then their objects; needs ``data-write``.

    Refused (409 ``locked``, ``under_review``, ``released``) while the dataset is locked, in
    review or released; 422 naming the path for an unsafe path or ``metadata.json``.

    The manifest rows go in one transaction; the objects are deleted after the commit (an
    object that can't be deleted then is only orphaned, never claimed). Paths that aren't
    registered are listed in ``not_registered``, so removing again is harmless.
    """
    dataset_id = _dataset_id(id_prefix, id_suffix)
    async with sessions(request)() as session, session.begin():
        removed = await manifest.remove_files(session, principal, dataset_id, body.paths)
    await manifest.delete_removed_objects(store, dataset_id, removed)
    return removed.response


@router.get("/datasets/{id_prefix}/{id_suffix}/files", response_model=Page[ManifestEntry])
async def list_files_route(
    id_prefix: str,
    id_suffix: str,
    principal: Caller,
    session: Session,
    path_prefix: Annotated[
        str | None, Query(alias="prefix", description="only paths starting with this")
    ] = None,
    page_size: PageSize = 100,
    cursor: Cursor = None,
) -> Page[ManifestEntry]:
    """The dataset's manifest in path order; needs ``data-read``."""
    entries, next_cursor = await manifest.list_files(
        session,
        principal,
        _dataset_id(id_prefix, id_suffix),
        prefix=path_prefix,
        page_size=page_size,
        cursor=cursor,
    )
    return Page[ManifestEntry](items=entries, next_cursor=next_cursor)


_OBJECT_PATH = {"type": "string", "pattern": OBJECT_PATH_PATTERN, "maxLength": MAX_OBJECT_PATH}


@router.get("/datasets/{id_prefix}/{id_suffix}/files/{path:path}", response_model=ManifestEntry)
async def get_file_route(
    id_prefix: str,
    id_suffix: str,
    path: Annotated[str, Path(description="the object path"), WithJsonSchema(_OBJECT_PATH)],
    principal: Caller,
    session: Session,
) -> ManifestEntry:
    """One file's manifest entry; needs ``data-read``; 404 when it isn't registered."""
    try:
        check_object_path(path)
    except ValueError as err:
        raise validation_error(
            [{"field": "path.path", "message": str(err), "type": "unsafe_path"}],
            message=f"Invalid path: {err}.",
        ) from None
    return await manifest.get_file(session, principal, _dataset_id(id_prefix, id_suffix), path)
