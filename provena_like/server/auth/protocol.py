"""OAuth 2.0 protocol pieces shared by the token, revocation and device endpoints.

These endpoints answer errors with the RFC 6749 §5.2 body (``{"error", "error_description"}``)
rather than the common envelope, so that standard OAuth clients understand them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import unquote_plus

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.models.auth import DEVICE_CODE_GRANT
from provena_like.server.auth.tables import OAuthClientRow, RefreshTokenRow
from provena_like.server.auth.throttle import (
    LoginThrottle,
    Throttled,
    address_key,
    client_key,
)
from provena_like.server.db.base import utcnow
from provena_like.server.db.identity import UserRow
from provena_like.server.settings import ServerSettings

SUPPORTED_SCOPES = ("openid", "profile", "email", "offline_access")
"""Scopes this server knows; ``offline_access`` asks for a refresh token."""

DEFAULT_SCOPE = "openid"
SUPPORTED_GRANTS = ("client_credentials", "refresh_token", DEVICE_CODE_GRANT)
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthFailure(Exception):
    """An OAuth error to answer with the RFC 6749 error body.

    Args:
        error: the registered error code (``invalid_grant``, ``slow_down``, ...).
        description: a human explanation; never contains a token or secret.
        status: 400, 401 for ``invalid_client``, 429 for ``temporarily_unavailable``.
        retry_after: seconds for the ``Retry-After`` header (429).
    """

    def __init__(
        self, error: str, description: str, *, status: int = 400, retry_after: int | None = None
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.retry_after = retry_after


def invalid_client(description: str) -> OAuthFailure:
    """401 ``invalid_client`` (the response carries a ``WWW-Authenticate: Basic`` challenge)."""
    return OAuthFailure("invalid_client", description, status=401)


def oauth_error_response(exc: OAuthFailure) -> JSONResponse:
    """Render an :class:`OAuthFailure` as the RFC body, never cached."""
    headers = dict(NO_STORE)
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="provena-like"'
    if exc.retry_after is not None:
        headers["Retry-After"] = str(exc.retry_after)
    body = {"error": exc.error, "error_description": exc.description}
    return JSONResponse(body, status_code=exc.status, headers=headers)


def sha256_hex(value: str) -> str:
    """The digest under which a random secret (client secret, code, token) is stored."""
    return hashlib.sha256(value.encode()).hexdigest()


def new_secret() -> str:
    """A fresh 256-bit random secret, URL-safe."""
    return secrets.token_urlsafe(32)


async def read_form(request: Request) -> dict[str, str]:
    """Read an ``application/x-www-form-urlencoded`` body; each parameter at most once."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise OAuthFailure(
            "invalid_request", "Send the parameters as application/x-www-form-urlencoded."
        )
    form = await request.form()
    out: dict[str, str] = {}
    for name in form:
        values = form.getlist(name)
        if len(values) != 1 or not isinstance(values[0], str):
            raise OAuthFailure("invalid_request", f"Parameter {name!r} must be sent once.")
        out[name] = values[0]
    return out


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as err:
        raise invalid_client("The Basic credentials are not valid base64.") from err
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise invalid_client("The Basic credentials must be 'client_id:client_secret'.")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
    return unquote_plus(client_id), unquote_plus(secret)


async def authenticate_client(
    session: AsyncSession, request: Request, form: dict[str, str]
) -> OAuthClientRow:
    """Identify and authenticate the calling client.

    Confidential clients use ``client_secret_basic`` or ``client_secret_post`` (not both);
    public clients send only ``client_id``. Unknown clients and wrong secrets count against
    the ``client_id`` and the caller's address (:mod:`~provena_like.server.auth.throttle`);
    while either is locked the answer is 429 ``temporarily_unavailable`` with
    ``Retry-After``, before the secret is looked at.
    """
    basic = _basic_credentials(request)
    form_id = form.get("client_id")
    form_secret = form.get("client_secret")
    if basic is not None:
        if form_secret is not None:
            raise OAuthFailure("invalid_request", "Use one client authentication method only.")
        if form_id is not None and form_id != basic[0]:
            raise OAuthFailure("invalid_request", "client_id differs from the Basic credentials.")
        client_id: str = basic[0]
        secret: str | None = basic[1]
    else:
        client_id, secret = form_id or "", form_secret
    if not client_id:
        raise invalid_client("Identify the client: send client_id (and its secret, if any).")
    throttle: LoginThrottle = request.app.state.login_throttle
    keys = [client_key(client_id), address_key(request)]
    try:
        await throttle.check(keys)
    except Throttled as exc:
        raise throttled(exc) from None
    client = await session.get(OAuthClientRow, client_id)
    if client is None:
        await throttle.record(keys, success=False)
        raise invalid_client("Unknown client, or wrong client credentials.")
    if client.confidential:
        expected = client.secret_hash or ""
        if not secret or not hmac.compare_digest(sha256_hex(secret), expected):
            await throttle.record(keys, success=False)
            raise invalid_client("Unknown client, or wrong client credentials.")
        await throttle.record(keys, success=True)
    elif secret:
        raise invalid_client("This is a public client: it has no secret.")
    return client


def throttled(exc: Throttled) -> OAuthFailure:
    """429 ``temporarily_unavailable`` with ``Retry-After``, for a throttled client."""
    return OAuthFailure(
        "temporarily_unavailable",
        f"Too many failed attempts for this client or from this address; retry after "
        f"{exc.retry_after} s.",
        status=429,
        retry_after=exc.retry_after,
    )


def parse_scope(requested: str | None, *, allowed: tuple[str, ...] = SUPPORTED_SCOPES) -> str:
    """Validate a space-separated scope string; the default is ``openid``."""
    if requested is None or not requested.strip():
        return DEFAULT_SCOPE
    scopes: list[str] = []
    for scope in requested.split():
        if scope not in allowed:
            known = " ".join(allowed)
            raise OAuthFailure("invalid_scope", f"Unknown scope {scope!r}; known: {known}.")
        if scope not in scopes:
            scopes.append(scope)
    return " ".join(scopes)


def issue_tokens(
    request: Request,
    session: AsyncSession,
    *,
    user: UserRow,
    client_id: str,
    scope: str,
    refresh_scope: str | None = None,
    family_id: str | None = None,
) -> dict[str, Any]:
    """Sign an access token and, when ``refresh_scope`` is given, add a refresh token row.

    Returns the RFC 6749 §5.1 response body. The caller commits the transaction.
    """
    settings: ServerSettings = request.app.state.settings
    access = request.app.state.tokens.issue_access_token(
        subject=user.username,
        client_id=client_id,
        scope=scope,
        ttl=settings.access_token_ttl,
        extra={
            "preferred_username": user.username,
            "roles": sorted(user.system_roles or ()),
        },
    )
    body: dict[str, Any] = {
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": settings.access_token_ttl,
        "scope": scope,
    }
    if refresh_scope is not None:
        refresh = new_secret()
        now = utcnow()
        session.add(
            RefreshTokenRow(
                token_hash=sha256_hex(refresh),
                family_id=family_id or secrets.token_hex(16),
                client_id=client_id,
                username=user.username,
                scope=refresh_scope,
                expires_at=now + timedelta(seconds=settings.refresh_token_ttl),
                created_at=now,
            )
        )
        body["refresh_token"] = refresh
    return body


def token_response(body: dict[str, Any]) -> JSONResponse:
    """A successful token response, never cached."""
    return JSONResponse(body, headers=NO_STORE)
