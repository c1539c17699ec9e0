"""User, group and client administration (system role ``admin``).

Errors use the common envelope; lists are keyset-paginated by name; creating POSTs replay
their first answer for a repeated ``Idempotency-Key``. A new client's secret is shown once,
stored only as a digest, and kept sealed (encrypted) in the idempotency record so that a
retried create can return it again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from provena_like.models.auth import (
    Group,
    GroupCreate,
    GroupMember,
    OAuthClient,
    OAuthClientCreate,
    OAuthClientCreated,
    User,
    UserCreate,
    UserUpdate,
)
from provena_like.models.shared import Page
from provena_like.server.auth.keys import AuthKeys
from provena_like.server.auth.protocol import new_secret, sha256_hex
from provena_like.server.auth.tables import OAuthClientRow, RefreshTokenRow
from provena_like.server.db.base import utcnow
from provena_like.server.db.identity import GroupMemberRow, GroupRow, UserRow
from provena_like.server.errors import ServiceError, forbidden, not_found, validation_error
from provena_like.server.idempotency import run_request_once
from provena_like.server.pagination import KeyColumn, keyset_page
from provena_like.server.params import Cursor, IdempotencyKey, PageSize, error_responses
from provena_like.server.security import Principal, require_principal, sessions

router = APIRouter(responses=error_responses(400, 401, 403, 404, 409, 413, 422))

SERVICE_ACCOUNT_PREFIX = "service-account-"
_USERNAME_MAX = 64


async def require_admin(principal: Principal = Depends(require_principal)) -> Principal:
    """The caller, who must hold the system role ``admin`` (403 otherwise)."""
    if not principal.is_admin:
        raise forbidden("This needs the system role 'admin'.")
    return principal


def user_model(row: UserRow) -> User:
    """The wire form of a user row (never the password hash)."""
    return User(
        username=row.username,
        display_name=row.display_name,
        email=row.email,
        system_roles=list(row.system_roles or []),
        disabled=row.disabled,
        service_account=row.service_account,
        created_at=row.created_at,
    )


def client_model(row: OAuthClientRow) -> OAuthClient:
    """The wire form of a client row (never the secret)."""
    return OAuthClient(
        client_id=row.client_id,
        name=row.name,
        confidential=row.confidential,
        grant_types=list(row.grant_types or []),
        service_account=row.service_account,
        created_at=row.created_at,
    )


async def _members(session: AsyncSession, names: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {name: [] for name in names}
    if names:
        rows = await session.execute(
            select(GroupMemberRow.group_name, GroupMemberRow.username)
            .where(GroupMemberRow.group_name.in_(names))
            .order_by(GroupMemberRow.group_name, GroupMemberRow.username)
        )
        for group_name, username in rows:
            out[group_name].append(username)
    return out


async def _group_models(session: AsyncSession, rows: Sequence[GroupRow]) -> list[Group]:
    """The wire form of group rows, each with its members by username."""
    members = await _members(session, [r.name for r in rows])
    return [
        Group(
            name=r.name, description=r.description, members=members[r.name], created_at=r.created_at
        )
        for r in rows
    ]


async def _group_model(session: AsyncSession, row: GroupRow) -> Group:
    return (await _group_models(session, [row]))[0]


def _by(column: InstrumentedAttribute[str]) -> list[KeyColumn]:
    """The keyset order of an admin listing: one unique name column."""
    return [KeyColumn(column, "str", lambda r: getattr(r, column.key))]


async def _page_by(
    request: Request, column: InstrumentedAttribute[str], *, cursor: str | None, page_size: int
) -> tuple[list[Any], str | None]:
    """One page of the rows of ``column``'s table in the order of that name column."""
    async with sessions(request)() as session:
        query = select(column.class_)
        return await keyset_page(session, query, _by(column), cursor=cursor, page_size=page_size)


async def _revoke_user_tokens(session: AsyncSession, username: str) -> None:
    await session.execute(
        update(RefreshTokenRow).where(RefreshTokenRow.username == username).values(revoked=True)
    )


async def _other_enabled_admins(session: AsyncSession, username: str) -> int:
    rows = await session.scalars(
        select(UserRow).where(UserRow.username != username, UserRow.disabled.is_(False))
    )
    return sum(1 for row in rows if "admin" in (row.system_roles or ()))


# ---------------------------------------------------------------- users


@router.post("/users", status_code=201, response_model=User, summary="Create a user")
async def create_user(
    body: UserCreate,
    request: Request,
    principal: Principal = Depends(require_admin),
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Create a user with a password (409 if the username is taken)."""
    password_hash = await request.app.state.passwords.hash(body.password.get_secret_value())

    async def work(session: AsyncSession) -> tuple[int, Any]:
        if await session.get(UserRow, body.username) is not None:
            raise ServiceError(409, "conflict", f"User {body.username!r} already exists.")
        row = UserRow(
            username=body.username,
            password_hash=password_hash,
            display_name=body.display_name,
            email=body.email,
            system_roles=list(body.system_roles),
            created_at=utcnow(),
        )
        session.add(row)
        await session.flush()
        return 201, user_model(row).model_dump(mode="json")

    # SecretStr dumps as "**********": the password never reaches the fingerprint.
    return await run_request_once(
        request, principal, idempotency_key, body.model_dump(mode="json"), work
    )


@router.get("/users", response_model=Page[User], summary="List users by username")
async def list_users(
    request: Request,
    page_size: PageSize = 100,
    cursor: Cursor = None,
    _admin: Principal = Depends(require_admin),
) -> Page[User]:
    """One page of users, ordered by username."""
    rows, next_cursor = await _page_by(
        request, UserRow.username, cursor=cursor, page_size=page_size
    )
    return Page[User](items=[user_model(r) for r in rows], next_cursor=next_cursor)


@router.get("/users/{username}", response_model=User, summary="Get a user")
async def get_user(
    username: str, request: Request, principal: Principal = Depends(require_principal)
) -> User:
    """A user; admins see everyone, others only themselves."""
    if not principal.is_admin and principal.username != username:
        raise forbidden("Only admins can see other users.")
    async with sessions(request)() as session:
        row = await session.get(UserRow, username)
    if row is None:
        raise not_found(f"User {username!r}")
    return user_model(row)


@router.get("/users/{username}/groups", response_model=list[Group], summary="A user's groups")
async def list_user_groups(
    username: str, request: Request, principal: Principal = Depends(require_principal)
) -> list[Group]:
    """The groups a user belongs to, by name, with their members; admins or the user."""
    if not principal.is_admin and principal.username != username:
        raise forbidden("Only admins can see other users' groups.")
    async with sessions(request)() as session:
        if await session.get(UserRow, username) is None:
            raise not_found(f"User {username!r}")
        rows = list(
            await session.scalars(
                select(GroupRow)
                .join(GroupMemberRow, GroupMemberRow.group_name == GroupRow.name)
                .where(GroupMemberRow.username == username)
                .order_by(GroupRow.name)
            )
        )
        return await _group_models(session, rows)


@router.patch("/users/{username}", response_model=User, summary="Change a user")
async def update_user(
    username: str,
    body: UserUpdate,
    request: Request,
    _admin: Principal = Depends(require_admin),
) -> User:
    """Change the fields that are given; a new password or disabling revokes refresh tokens."""
    fields = body.model_fields_set
    new_hash = None
    if "password" in fields and body.password is not None:
        new_hash = await request.app.state.passwords.hash(body.password.get_secret_value())
    async with sessions(request)() as session, session.begin():
        row = await session.get(UserRow, username)
        if row is None:
            raise not_found(f"User {username!r}")
        was_admin = "admin" in (row.system_roles or ()) and not row.disabled
        if "display_name" in fields:
            row.display_name = body.display_name
        if "email" in fields:
            row.email = body.email
        if "system_roles" in fields and body.system_roles is not None:
            row.system_roles = list(body.system_roles)
        if "disabled" in fields and body.disabled is not None:
            row.disabled = body.disabled
        still_admin = "admin" in (row.system_roles or ()) and not row.disabled
        if was_admin and not still_admin and await _other_enabled_admins(session, username) == 0:
            raise ServiceError(409, "last_admin", "This is the last enabled admin; keep it.")
        if new_hash is not None:
            row.password_hash = new_hash
        if new_hash is not None or row.disabled:
            await _revoke_user_tokens(session, username)
        return user_model(row)


# ---------------------------------------------------------------- groups


@router.post("/groups", status_code=201, response_model=Group, summary="Create a group")
async def create_group(
    body: GroupCreate,
    request: Request,
    principal: Principal = Depends(require_admin),
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Create an empty group (409 if the name is taken)."""

    async def work(session: AsyncSession) -> tuple[int, Any]:
        if await session.get(GroupRow, body.name) is not None:
            raise ServiceError(409, "conflict", f"Group {body.name!r} already exists.")
        row = GroupRow(name=body.name, description=body.description, created_at=utcnow())
        session.add(row)
        group = Group(name=row.name, description=row.description, created_at=row.created_at)
        return 201, group.model_dump(mode="json")

    return await run_request_once(
        request, principal, idempotency_key, body.model_dump(mode="json"), work
    )


@router.get("/groups", response_model=Page[Group], summary="List groups by name")
async def list_groups(
    request: Request,
    page_size: PageSize = 100,
    cursor: Cursor = None,
    _admin: Principal = Depends(require_admin),
) -> Page[Group]:
    """One page of groups with their members, ordered by name."""
    async with sessions(request)() as session:
        rows, next_cursor = await keyset_page(
            session, select(GroupRow), _by(GroupRow.name), cursor=cursor, page_size=page_size
        )
        items = await _group_models(session, rows)
    return Page[Group](items=items, next_cursor=next_cursor)


@router.get("/groups/{name}", response_model=Group, summary="Get a group")
async def get_group(
    name: str, request: Request, _admin: Principal = Depends(require_admin)
) -> Group:
    """A group and its members."""
    async with sessions(request)() as session:
        row = await session.get(GroupRow, name)
        if row is None:
            raise not_found(f"Group {name!r}")
        return await _group_model(session, row)


@router.post("/groups/{name}/members", response_model=Group, summary="Add a group member")
async def add_member(
    name: str,
    body: GroupMember,
    request: Request,
    principal: Principal = Depends(require_admin),
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Add a user to a group; adding a member twice changes nothing."""

    async def work(session: AsyncSession) -> tuple[int, Any]:
        row = await session.get(GroupRow, name)
        if row is None:
            raise not_found(f"Group {name!r}")
        if await session.get(UserRow, body.username) is None:
            raise not_found(f"User {body.username!r}")
        if await session.get(GroupMemberRow, (name, body.username)) is None:
            session.add(GroupMemberRow(group_name=name, username=body.username))
            await session.flush()
        return 200, (await _group_model(session, row)).model_dump(mode="json")

    return await run_request_once(
        request, principal, idempotency_key, body.model_dump(mode="json"), work
    )


@router.delete(
    "/groups/{name}/members/{username}", status_code=204, summary="Remove a group member"
)
async def remove_member(
    name: str, username: str, request: Request, _admin: Principal = Depends(require_admin)
) -> Response:
    """Remove a user from a group (404 if they are not a member)."""
    async with sessions(request)() as session, session.begin():
        if await session.get(GroupRow, name) is None:
            raise not_found(f"Group {name!r}")
        member = await session.get(GroupMemberRow, (name, username))
        if member is None:
            raise not_found(f"Member {username!r} of group {name!r}")
        await session.delete(member)
    return Response(status_code=204)


# ---------------------------------------------------------------- clients


def _detail(field: str, message: str, kind: str) -> list[dict[str, Any]]:
    return [{"field": field, "message": message, "type": kind}]


def _check_client(body: OAuthClientCreate) -> None:
    if not body.confidential and "client_credentials" in body.grant_types:
        message = "A public client cannot use client_credentials; make it confidential."
        raise validation_error(
            _detail("confidential", message, "public_service_client"), message=message
        )
    service = body.confidential and "client_credentials" in body.grant_types
    if body.system_roles and not service:
        message = "system_roles are for the service account of a client_credentials client."
        raise validation_error(_detail("system_roles", message, "not_a_service"), message=message)
    if service and len(SERVICE_ACCOUNT_PREFIX + body.client_id) > _USERNAME_MAX:
        limit = _USERNAME_MAX - len(SERVICE_ACCOUNT_PREFIX)
        message = f"client_id must be at most {limit} characters for a service account."
        raise validation_error(_detail("client_id", message, "string_too_long"), message=message)


async def _ensure_service_account(
    session: AsyncSession, username: str, roles: list[str], display: str
) -> None:
    user = await session.get(UserRow, username)
    if user is not None and not user.service_account:
        raise ServiceError(
            409, "conflict", f"User {username!r} exists and is not a service account."
        )
    if user is None:
        session.add(
            UserRow(
                username=username,
                password_hash=None,
                display_name=display,
                system_roles=roles,
                service_account=True,
                created_at=utcnow(),
            )
        )
        await session.flush()
    else:  # a deleted client of the same id left it disabled: take it over
        user.system_roles = roles
        user.disabled = False


@router.post(
    "/clients", status_code=201, response_model=OAuthClientCreated, summary="Register a client"
)
async def create_client(
    body: OAuthClientCreate,
    request: Request,
    principal: Principal = Depends(require_admin),
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """Register an OAuth client; a confidential client's secret is in this answer only."""
    _check_client(body)
    keys: AuthKeys = request.app.state.auth_keys
    secret = new_secret() if body.confidential else None

    async def work(session: AsyncSession) -> tuple[int, Any]:
        if await session.get(OAuthClientRow, body.client_id) is not None:
            raise ServiceError(409, "conflict", f"Client {body.client_id!r} already exists.")
        service = None
        if body.confidential and "client_credentials" in body.grant_types:
            service = SERVICE_ACCOUNT_PREFIX + body.client_id
            display = f"Service account of {body.name or body.client_id}"
            await _ensure_service_account(session, service, list(body.system_roles), display)
        row = OAuthClientRow(
            client_id=body.client_id,
            name=body.name,
            confidential=body.confidential,
            secret_hash=sha256_hex(secret) if secret else None,
            grant_types=list(dict.fromkeys(body.grant_types)),
            service_account=service,
            created_at=utcnow(),
        )
        session.add(row)
        stored = client_model(row).model_dump(mode="json")
        stored["client_secret"] = keys.seal(secret) if secret else None
        return 201, stored

    response = await run_request_once(
        request, principal, idempotency_key, body.model_dump(mode="json"), work
    )
    body_out = json.loads(bytes(response.body))
    if body_out.get("client_secret"):
        body_out["client_secret"] = keys.unseal(body_out["client_secret"])
    headers = {"Cache-Control": "no-store"}
    if "idempotent-replayed" in response.headers:
        headers["Idempotent-Replayed"] = response.headers["idempotent-replayed"]
    return JSONResponse(body_out, status_code=response.status_code, headers=headers)


@router.get("/clients", response_model=Page[OAuthClient], summary="List clients by id")
async def list_clients(
    request: Request,
    page_size: PageSize = 100,
    cursor: Cursor = None,
    _admin: Principal = Depends(require_admin),
) -> Page[OAuthClient]:
    """One page of clients, ordered by client id."""
    rows, next_cursor = await _page_by(
        request, OAuthClientRow.client_id, cursor=cursor, page_size=page_size
    )
    return Page[OAuthClient](items=[client_model(r) for r in rows], next_cursor=next_cursor)


@router.delete("/clients/{client_id}", status_code=204, summary="Delete a client")
async def delete_client(
    client_id: str, request: Request, _admin: Principal = Depends(require_admin)
) -> Response:
    """Delete a client, its refresh tokens and pending codes; disable its service account."""
    async with sessions(request)() as session, session.begin():
        row = await session.get(OAuthClientRow, client_id)
        if row is None:
            raise not_found(f"Client {client_id!r}")
        if row.service_account:
            await session.execute(
                update(UserRow).where(UserRow.username == row.service_account).values(disabled=True)
            )
        await session.execute(delete(RefreshTokenRow).where(RefreshTokenRow.client_id == client_id))
        await session.delete(row)
    return Response(status_code=204)


async def count_users(session: AsyncSession) -> int:
    """How many user accounts exist (used by the bootstrap)."""
    return int(await session.scalar(select(func.count()).select_from(UserRow)) or 0)
