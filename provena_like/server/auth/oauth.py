"""The token endpoint (RFC 6749 / RFC 8628) and token revocation (RFC 7009).

Grants:

* ``client_credentials``: confidential clients only; the subject is the client's service
  account (``service-account-<client_id>``); never a refresh token.
* ``refresh_token``: rotation on every use; a reused token revokes its whole family.
* ``urn:ietf:params:oauth:grant-type:device_code``: polls a device authorization; the code is
  single-use; a refresh token is issued when the granted scope includes ``offline_access``.

Every write is one transaction; outcomes that must persist state (a ``slow_down`` interval,
a revoked family) are committed before the error is returned.
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import CursorResult, update
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.auth import TokenResponse
from provena_like.server.auth.openapi import OAUTH_ERRORS, REVOKE_FORM, TOKEN_FORM
from provena_like.server.auth.protocol import (
    NO_STORE,
    SUPPORTED_GRANTS,
    OAuthFailure,
    authenticate_client,
    issue_tokens,
    oauth_error_response,
    parse_scope,
    read_form,
    sha256_hex,
    token_response,
)
from provena_like.server.auth.tables import DeviceCodeRow, OAuthClientRow, RefreshTokenRow
from provena_like.server.db.base import utcnow
from provena_like.server.db.identity import UserRow
from provena_like.server.security import sessions

log = logging.getLogger(__name__)

router = APIRouter()

Outcome = dict[str, Any] | OAuthFailure


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount)


async def revoke_family(session: AsyncSession, family_id: str) -> None:
    """Revoke every refresh token of a rotation family."""
    await session.execute(
        update(RefreshTokenRow).where(RefreshTokenRow.family_id == family_id).values(revoked=True)
    )


@router.post(
    "/token",
    summary="OAuth 2.0 token endpoint",
    response_model=TokenResponse,
    responses=OAUTH_ERRORS,
    openapi_extra=TOKEN_FORM,
)
async def token(request: Request) -> Response:
    """Exchange a grant for tokens (form-encoded, RFC 6749 §3.2)."""
    try:
        form = await read_form(request)
        grant = form.get("grant_type")
        if not grant:
            raise OAuthFailure("invalid_request", "grant_type is required.")
        if grant not in SUPPORTED_GRANTS:
            raise OAuthFailure("unsupported_grant_type", f"Grant {grant!r} is not supported.")
        async with sessions(request)() as session:
            client = await authenticate_client(session, request, form)
        if grant not in (client.grant_types or ()):
            raise OAuthFailure("unauthorized_client", f"This client may not use {grant!r}.")
        if grant == "client_credentials":
            outcome = await _client_credentials(request, client, form)
        elif grant == "refresh_token":
            outcome = await _refresh_token(request, client, form)
        else:
            outcome = await _device_code(request, client, form)
        if isinstance(outcome, OAuthFailure):
            raise outcome
    except OAuthFailure as exc:
        if exc.error not in ("authorization_pending", "slow_down"):
            log.info("token request refused: %s", exc.error)
        return oauth_error_response(exc)
    log.debug("issued tokens to client %s by %s", client.client_id, grant)
    return token_response(outcome)


async def _client_credentials(
    request: Request, client: OAuthClientRow, form: dict[str, str]
) -> Outcome:
    if not client.confidential or client.service_account is None:
        return OAuthFailure("unauthorized_client", "Only confidential clients may do this.")
    # No refresh tokens for this grant (RFC 6749 §4.4.3): offline_access is dropped.
    scope = " ".join(s for s in parse_scope(form.get("scope")).split() if s != "offline_access")
    async with sessions(request)() as session:
        user = await session.get(UserRow, client.service_account)
        if user is None or user.disabled:
            return OAuthFailure("unauthorized_client", "The client's service account is disabled.")
        return issue_tokens(
            request, session, user=user, client_id=client.client_id, scope=scope or "openid"
        )


async def _refresh_token(request: Request, client: OAuthClientRow, form: dict[str, str]) -> Outcome:
    presented = form.get("refresh_token")
    if not presented:
        return OAuthFailure("invalid_request", "refresh_token is required.")
    async with sessions(request)() as session, session.begin():
        return await _rotate(request, session, client, presented, form.get("scope"))


async def _rotate(
    request: Request,
    session: AsyncSession,
    client: OAuthClientRow,
    presented: str,
    requested_scope: str | None,
) -> Outcome:
    digest = sha256_hex(presented)
    row = await session.get(RefreshTokenRow, digest)
    invalid = OAuthFailure("invalid_grant", "The refresh token is invalid, expired or revoked.")
    if row is None or row.client_id != client.client_id or row.revoked:
        return invalid
    if row.used_at is not None:
        log.warning("refresh token reuse detected; revoking its family (client %s)", row.client_id)
        await revoke_family(session, row.family_id)
        return OAuthFailure(
            "invalid_grant", "The refresh token was already used; its session is revoked."
        )
    now = utcnow()
    if row.expires_at <= now:
        return invalid
    user = await session.get(UserRow, row.username)
    if user is None or user.disabled:
        return invalid
    granted = row.scope.split()
    scope = row.scope
    if requested_scope is not None and requested_scope.strip():
        wanted = parse_scope(requested_scope).split()
        if not set(wanted) <= set(granted):
            return OAuthFailure("invalid_scope", "A refresh cannot widen the granted scope.")
        scope = " ".join(wanted)
    claimed = await session.execute(
        update(RefreshTokenRow)
        .where(
            RefreshTokenRow.token_hash == digest,
            RefreshTokenRow.used_at.is_(None),
            RefreshTokenRow.revoked.is_(False),
        )
        .values(used_at=now)
    )
    if _rowcount(claimed) != 1:  # lost a race with another use of the same token
        await revoke_family(session, row.family_id)
        return invalid
    return issue_tokens(
        request,
        session,
        user=user,
        client_id=client.client_id,
        scope=scope,
        refresh_scope=row.scope,
        family_id=row.family_id,
    )


async def _device_code(request: Request, client: OAuthClientRow, form: dict[str, str]) -> Outcome:
    code = form.get("device_code")
    if not code:
        return OAuthFailure("invalid_request", "device_code is required.")
    async with sessions(request)() as session, session.begin():
        return await _poll(request, session, client, sha256_hex(code))


async def _poll(
    request: Request, session: AsyncSession, client: OAuthClientRow, code_hash: str
) -> Outcome:
    row = await session.get(DeviceCodeRow, code_hash)
    if row is None or row.client_id != client.client_id or row.status == "used":
        return OAuthFailure("invalid_grant", "The device code is invalid or was already used.")
    if row.expires_at <= utcnow():
        return OAuthFailure("expired_token", "The device code expired; start again.")
    if row.status == "denied":
        return OAuthFailure("access_denied", "The user denied the request.")
    if row.status == "pending":
        now = time.time()
        too_fast = row.last_polled_at is not None and now - row.last_polled_at < row.interval
        row.last_polled_at = now
        if too_fast:
            row.interval += 5
            return OAuthFailure(
                "slow_down", f"Polling too fast; wait at least {row.interval} s between polls."
            )
        return OAuthFailure("authorization_pending", "The user has not answered yet.")
    claimed = await session.execute(
        update(DeviceCodeRow)
        .where(DeviceCodeRow.code_hash == code_hash, DeviceCodeRow.status == "approved")
        .values(status="used")
    )
    user = await session.get(UserRow, row.username) if row.username else None
    if _rowcount(claimed) != 1 or user is None or user.disabled:
        return OAuthFailure("invalid_grant", "The device code is invalid or was already used.")
    scope = row.scope
    offline = "offline_access" in scope.split()
    return issue_tokens(
        request,
        session,
        user=user,
        client_id=client.client_id,
        scope=scope,
        refresh_scope=scope if offline else None,
    )


@router.post(
    "/revoke",
    summary="Token revocation (RFC 7009)",
    response_model=dict[str, Any],
    responses=OAUTH_ERRORS,
    openapi_extra=REVOKE_FORM,
)
async def revoke(request: Request) -> Response:
    """Revoke a refresh token and its whole family.

    Answers 200 whether or not the token was known (RFC 7009 §2.2); access tokens are
    short-lived signed JWTs and simply expire. The client must identify itself.
    """
    try:
        form = await read_form(request)
        presented = form.get("token")
        if not presented:
            raise OAuthFailure("invalid_request", "token is required.")
        async with sessions(request)() as session, session.begin():
            client = await authenticate_client(session, request, form)
            row = await session.get(RefreshTokenRow, sha256_hex(presented))
            if row is not None and row.client_id == client.client_id:
                await revoke_family(session, row.family_id)
                log.info("revoked a refresh token family of client %s", client.client_id)
    except OAuthFailure as exc:
        return oauth_error_response(exc)
    return JSONResponse({}, headers=NO_STORE)
