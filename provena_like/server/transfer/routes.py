"""Routes of the transfer service that list and change collections, and find them.

Mounted at the root (``/v0.10/...``), JSON, bearer token = an access token of this server;
answers shaped as the Globus Transfer API v0.10 answers (checked against globus-sdk's
registered responses). Errors are Type-Zero bodies (:mod:`~provena_like.server.transfer.
errors`).

| route | answers |
|---|---|
| ``GET /v0.10/submission_id`` | ``{"value": <new UUID>}`` |
| ``GET /v0.10/endpoint/{id}`` | the collection's endpoint document |
| ``GET /v0.10/endpoint_search`` | ``endpoint_list`` of the collections the caller may use |
| ``GET /v0.10/operation/endpoint/{id}/ls`` | ``file_list`` of a directory |
| ``GET /v0.10/operation/endpoint/{id}/stat`` | one ``file`` document |
| ``POST /v0.10/operation/endpoint/{id}/mkdir`` | ``mkdir_result`` ``DirectoryCreated`` |
| ``POST /v0.10/operation/endpoint/{id}/rename`` | ``result`` ``FileRenamed`` |
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.server.access import ROLE_LEVEL, readable_filter
from provena_like.server.middleware import current_request_id
from provena_like.server.registry.tables import ItemGrantRow, ItemRow
from provena_like.server.security import Principal, db_session, require_principal
from provena_like.server.transfer.collections import describe, open_collection
from provena_like.server.transfer.errors import ERROR_RESPONSES
from provena_like.server.transfer.listing import apply_filters, order_entries
from provena_like.server.transfer.tables import CollectionRow

__all__ = [
    "ENTITY_TYPE",
    "LS_LIMIT",
    "SEARCH_CAP",
    "SearchScope",
    "endpoint_document",
    "router",
]

router = APIRouter(prefix="/v0.10", tags=["transfer"], responses=ERROR_RESPONSES)

Caller = Annotated[Principal, Depends(require_principal)]
Session = Annotated[AsyncSession, Depends(db_session)]

ENTITY_TYPE = "GCSv5_mapped_collection"
"""What every collection of this service is, in Globus terms."""

LS_LIMIT = 100_000
"""The default and largest ``limit`` of ``ls`` (as Globus)."""

SEARCH_CAP = 1000
"""``endpoint_search`` answers at most this many results of one search (as Globus)."""

SearchScope = Literal["all", "my-endpoints", "administered-by-me", "shared-with-me"]
"""The ``filter_scope`` values of ``endpoint_search`` this service knows (others: 400)."""


def _result(request: Request, data_type: str, code: str, message: str) -> dict[str, Any]:
    return {
        "DATA_TYPE": data_type,
        "code": code,
        "message": message,
        "request_id": current_request_id(),
        "resource": request.url.path,
    }


def endpoint_document(
    collection_id: str, display_name: str, owner: str, description: str
) -> dict[str, Any]:
    """The Globus endpoint document of a collection.

    The keys of globus-sdk's ``get_endpoint`` response; the GCSv4-only fields are null or
    false.
    """
    return {
        "DATA_TYPE": "endpoint",
        "id": collection_id,
        "display_name": display_name,
        "organization": "",
        "username": owner,
        "description": description,
        "entity_type": ENTITY_TYPE,
        "public": False,
        "french_english_bilingual": False,
        "is_globus_connect": False,
        "globus_connect_setup_key": None,
        "gcp_connected": None,
        "gcp_paused": None,
        "s3_url": None,
        "s3_owner_activated": False,
        "host_endpoint_id": None,
        "host_path": None,
        "disable_verify": False,
        "disable_anonymous_writes": False,
        "force_verify": False,
        "force_encryption": False,
        "mfa_required": False,
        "myproxy_server": None,
        "myproxy_dn": None,
        "non_functional": False,
        "non_functional_endpoint_display_name": None,
        "non_functional_endpoint_id": None,
        "oauth_server": None,
        "default_directory": "/~/",
        "activated": True,
        "expires_in": -1,
        "expire_time": None,
        "shareable": False,
        "acl_available": False,
        "acl_editable": False,
        "in_use": False,
        "DATA": [],
    }


@router.get("/submission_id")
async def submission_id_route(_principal: Caller) -> dict[str, str]:
    """A new submission id for a transfer or delete (``{"value": uuid}``)."""
    return {"value": str(uuid.uuid4())}


@router.get("/endpoint/{endpoint_id}")
async def get_endpoint_route(
    endpoint_id: str, request: Request, principal: Caller
) -> dict[str, Any]:
    """The endpoint document of a collection the caller may read (``data-read``)."""
    col = await open_collection(request.app, principal, endpoint_id, write=False)
    return endpoint_document(col.id, col.display_name, col.owner, col.description)


def _like(term: str) -> str:
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@router.get("/endpoint_search")
async def endpoint_search_route(
    principal: Caller,
    session: Session,
    filter_fulltext: str | None = None,
    filter_scope: SearchScope = "all",
    filter_owner_id: str | None = None,
    filter_entity_type: str | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    offset: Annotated[int, Query(ge=0, le=SEARCH_CAP)] = 0,
) -> dict[str, Any]:
    """The collections the caller may use (``data-read``), filtered and paged in SQL.

    ``filter_scope``: ``all``, ``my-endpoints`` (owned by the caller),
    ``administered-by-me`` (owned, or held with the ``admin`` role), ``shared-with-me``
    (usable but owned by someone else). ``filter_fulltext`` matches the display name or the
    owner (case-insensitive substring); ``filter_owner_id`` is an owner's username. At most
    :data:`SEARCH_CAP` results in all, as Globus.
    """
    query = (
        select(CollectionRow.id, ItemRow)
        .join(ItemRow, ItemRow.id == CollectionRow.item_id)
        .where(readable_filter(principal, "data-read"))
    )
    if filter_scope == "my-endpoints":
        query = query.where(ItemRow.owner == principal.username)
    elif filter_scope == "shared-with-me":
        query = query.where(ItemRow.owner != principal.username)
    elif filter_scope == "administered-by-me" and not principal.is_admin:
        admin_grant = (
            select(ItemGrantRow.item_id)
            .where(
                ItemGrantRow.item_id == ItemRow.id,
                ItemGrantRow.level >= ROLE_LEVEL["admin"],
                or_(
                    ItemGrantRow.kind == "general",
                    ItemGrantRow.grantee.in_(sorted(principal.groups)),
                ),
            )
            .exists()
        )
        query = query.where(or_(ItemRow.owner == principal.username, admin_grant))
    if filter_owner_id:
        query = query.where(ItemRow.owner == filter_owner_id)
    if filter_entity_type and filter_entity_type != ENTITY_TYPE:
        query = query.where(false())  # every collection here is of ENTITY_TYPE
    if filter_fulltext:
        pattern = _like(filter_fulltext)
        query = query.where(
            or_(
                func.lower(ItemRow.display_name).like(pattern, escape="\\"),
                func.lower(ItemRow.owner).like(pattern, escape="\\"),
            )
        )
    limit = max(0, min(limit, SEARCH_CAP - offset))
    page = query.order_by(ItemRow.name_key, ItemRow.seq).offset(offset).limit(limit + 1)
    rows = (await session.execute(page)).all()
    has_next = len(rows) > limit and offset + limit < SEARCH_CAP
    return {
        "DATA_TYPE": "endpoint_list",
        "offset": offset,
        "limit": limit,
        "has_next_page": has_next,
        "DATA": [
            endpoint_document(cid, item.display_name, item.owner, describe(item))
            for cid, item in rows[:limit]
        ],
    }


@router.get("/operation/endpoint/{endpoint_id}/ls")
async def ls_route(
    endpoint_id: str,
    request: Request,
    principal: Caller,
    path: str | None = None,
    show_hidden: bool = True,
    limit: Annotated[int, Query(ge=0, le=LS_LIMIT)] = LS_LIMIT,
    offset: Annotated[int, Query(ge=0)] = 0,
    orderby: str | None = None,
    filter: Annotated[list[str] | None, Query()] = None,  # noqa: A002 - the API's name
    local_user: str | None = None,
) -> dict[str, Any]:
    """The entries of a directory (``file_list``); see :mod:`.listing` for the options.

    404 ``ClientError.NotFound`` for a missing path, 502
    ``ExternalError.DirListingFailed.NotDirectory`` for a file. ``path`` is echoed
    normalised, ending with ``/`` (clients build child paths as ``path + name``).
    ``local_user`` is accepted and ignored (there is no identity mapping here).
    """
    del local_user
    col = await open_collection(request.app, principal, endpoint_id, write=False)
    where = col.resolve(path)
    entries = await col.backend.list_dir(where)
    if not show_hidden:
        entries = [e for e in entries if not e.name.startswith(".")]
    entries = order_entries(apply_filters(entries, filter or ()), orderby)
    page = entries[offset : offset + limit]
    return {
        "DATA_TYPE": "file_list",
        "DATA": [e.to_globus() for e in page],
        "absolute_path": where.as_dir,
        "endpoint": col.id,
        "length": len(page),
        "path": where.as_dir,
        "rename_supported": True,
        "symlink_supported": False,
        "total": len(entries),
    }


@router.get("/operation/endpoint/{endpoint_id}/stat")
async def stat_route(
    endpoint_id: str,
    request: Request,
    principal: Caller,
    path: str | None = None,
    local_user: str | None = None,
) -> dict[str, Any]:
    """One ``file`` document; 404 ``NotFound`` when the path doesn't exist."""
    del local_user
    col = await open_collection(request.app, principal, endpoint_id, write=False)
    info = await col.backend.stat(col.resolve(path))
    return info.to_globus()


class MkdirBody(BaseModel):
    """``{"DATA_TYPE": "mkdir", "path": ...}``."""

    model_config = ConfigDict(extra="ignore")

    DATA_TYPE: Literal["mkdir"] = "mkdir"
    path: str
    local_user: str | None = None


class RenameBody(BaseModel):
    """``{"DATA_TYPE": "rename", "old_path": ..., "new_path": ...}``."""

    model_config = ConfigDict(extra="ignore")

    DATA_TYPE: Literal["rename"] = "rename"
    old_path: str
    new_path: str
    local_user: str | None = None


@router.post("/operation/endpoint/{endpoint_id}/mkdir")
async def mkdir_route(
    endpoint_id: str, body: MkdirBody, request: Request, principal: Caller
) -> dict[str, Any]:
    """Make a directory (needs ``data-write``); 502 ``ExternalError.MkdirFailed.Exists``."""
    col = await open_collection(request.app, principal, endpoint_id, write=True)
    await col.backend.mkdir(col.resolve(body.path))
    return _result(
        request, "mkdir_result", "DirectoryCreated", "The directory was created successfully"
    )


@router.post("/operation/endpoint/{endpoint_id}/rename")
async def rename_route(
    endpoint_id: str, body: RenameBody, request: Request, principal: Caller
) -> dict[str, Any]:
    """Rename a file or directory within the collection (needs ``data-write``)."""
    col = await open_collection(request.app, principal, endpoint_id, write=True)
    await col.backend.rename(col.resolve(body.old_path), col.resolve(body.new_path))
    return _result(request, "result", "FileRenamed", "File or directory renamed successfully")
