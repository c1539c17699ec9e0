"""OIDC discovery, the JWKS, the trusted issuers and ``/userinfo``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select

from provena_like.models.auth import (
    OIDCConfiguration,
    TrustedIssuerInfo,
    TrustedIssuers,
    UserInfo,
)
from provena_like.server.auth.protocol import SUPPORTED_GRANTS, SUPPORTED_SCOPES
from provena_like.server.db.identity import GroupMemberRow, UserRow
from provena_like.server.errors import unauthenticated
from provena_like.server.params import error_responses
from provena_like.server.security import Principal, require_principal, sessions
from provena_like.server.settings import ServerSettings

router = APIRouter()


@router.get(
    "/.well-known/openid-configuration",
    response_model=OIDCConfiguration,
    response_model_exclude_none=True,
    summary="OpenID Provider metadata",
)
async def openid_configuration(request: Request) -> OIDCConfiguration:
    """Where the endpoints are and what they support (absolute URLs from ``public_url``)."""
    settings: ServerSettings = request.app.state.settings
    issuer = settings.issuer
    return OIDCConfiguration(
        issuer=issuer,
        token_endpoint=f"{issuer}/token",
        device_authorization_endpoint=f"{issuer}/device_authorization",
        userinfo_endpoint=f"{issuer}/userinfo",
        jwks_uri=f"{issuer}/jwks",
        revocation_endpoint=f"{issuer}/revoke",
        grant_types_supported=list(SUPPORTED_GRANTS),
        scopes_supported=list(SUPPORTED_SCOPES),
        token_endpoint_auth_methods_supported=[
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
    )


@router.get("/jwks", summary="The public keys that sign access tokens")
async def jwks(request: Request) -> dict[str, Any]:
    """The JSON Web Key Set (RFC 7517)."""
    keys: dict[str, Any] = request.app.state.tokens.jwks()
    return keys


@router.get("/issuers", response_model=TrustedIssuers, summary="Where users may sign in")
async def issuers(request: Request) -> TrustedIssuers:
    """The issuers whose access tokens this server accepts: its own and the trusted ones."""
    settings: ServerSettings = request.app.state.settings
    return TrustedIssuers(
        embedded=settings.issuer if settings.embedded_issuer_enabled else None,
        issuers=[
            TrustedIssuerInfo(
                issuer=t.issuer,
                name=t.name,
                discovery_url=t.resolved_discovery_url,
                audiences=list(t.audiences),
                client_id=t.client_id,
            )
            for t in settings.trusted_issuers
        ],
    )


@router.get(
    "/userinfo",
    response_model=UserInfo,
    summary="Who the bearer of the token is",
    responses=error_responses(401),
)
async def userinfo(request: Request, principal: Principal = Depends(require_principal)) -> UserInfo:
    """The caller's identity, current groups and system roles."""
    async with sessions(request)() as session:
        user = await session.get(UserRow, principal.username)
        if user is None:
            raise unauthenticated("The account of this token does not exist.")
        groups = (
            await session.scalars(
                select(GroupMemberRow.group_name)
                .where(GroupMemberRow.username == principal.username)
                .order_by(GroupMemberRow.group_name)
            )
        ).all()
    return UserInfo(
        sub=user.username,
        preferred_username=user.username,
        name=user.display_name,
        email=user.email,
        groups=list(groups),
        roles=sorted(user.system_roles or ()),
        client_id=principal.client_id,
    )
