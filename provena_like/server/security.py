"""Who is calling: bearer-token verification and the request's :class:`Principal`.

Routes declare ``principal: Principal = Depends(require_principal)`` (401 without a valid
token) or ``Depends(optional_principal)``. The authenticator (``app.state.authenticator``,
set up by the auth service) verifies tokens and links trusted issuers' subjects to users;
this module loads the user's current groups and roles from the database so that a
disabled account or a changed membership takes effect at once.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from fastapi import Depends, Request
from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from provena_like.server.db.identity import GroupMemberRow, UserRow
from provena_like.server.errors import unauthenticated


class TokenVerifier(Protocol):
    """What the auth service provides to check access tokens (``app.state.authenticator``)."""

    async def verify_access_token(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid access token; raise a 401 ServiceError otherwise."""
        ...

    async def local_claims(self, session: AsyncSession, claims: dict[str, Any]) -> dict[str, Any]:
        """The claims with ``sub`` the user of this server (a trusted issuer's subject linked)."""
        ...


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    username: str
    system_roles: frozenset[str] = field(default_factory=frozenset)
    groups: frozenset[str] = field(default_factory=frozenset)
    client_id: str | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_admin(self) -> bool:
        """System administrators may do everything."""
        return "admin" in self.system_roles


def sessions(request: Request) -> async_sessionmaker[AsyncSession]:
    """The app's session factory (for routes that manage their own transactions)."""
    factory: async_sessionmaker[AsyncSession] = request.app.state.sessions
    return factory


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session for one request; routes open ``session.begin()`` for each write."""
    async with sessions(request)() as session:
        yield session


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthenticated("The Authorization header must be 'Bearer <token>'.")
    return token.strip()


_VERIFIED = "provena_like.verified_token"
"""The key of the request's (ASGI scope's) state that holds the token verified for it."""


async def verified_claims(
    scope: MutableMapping[str, Any], verifier: TokenVerifier, token: str
) -> dict[str, Any]:
    """The claims of ``token``, its signature checked once per request.

    The first check (the body-limit middleware's, before the body is read) keeps the
    token and its claims in the request's state; a later check of the same token in the
    same request (the route's dependency) takes them from there, and only checks again
    that the token has not expired since (say, during a slow upload).

    Raises:
        ServiceError: 401 when the token is not valid (or has expired since).
    """
    state: MutableMapping[str, Any] = scope.setdefault("state", {})
    found = state.get(_VERIFIED)
    if found is not None and found[0] == token and found[1].get("exp", 0) > time.time():
        claims: dict[str, Any] = found[1]
        return claims
    claims = await verifier.verify_access_token(token)
    state[_VERIFIED] = (token, claims)
    return claims


_USERS: Table = UserRow.__table__  # type: ignore[assignment]  # a mapped Table
_MEMBERS: Table = GroupMemberRow.__table__  # type: ignore[assignment]
_PRINCIPAL = (
    select(_USERS.c.disabled, _USERS.c.system_roles, _MEMBERS.c.group_name)
    .select_from(_USERS.outerjoin(_MEMBERS, _MEMBERS.c.username == _USERS.c.username))
    .where(_USERS.c.username == bindparam("username"))
)
"""The account and its groups, in one query that every authenticated request runs: built
once, on the tables (no ORM entities: the session runs it on its Core path)."""


async def load_principal(session: AsyncSession, claims: dict[str, Any]) -> Principal:
    """Build the principal from verified claims and the user's current database state."""
    username = claims.get("sub")
    if not isinstance(username, str):
        raise unauthenticated("The token has no subject.")
    rows = (await session.execute(_PRINCIPAL, {"username": username})).all()
    if not rows or rows[0].disabled:
        raise unauthenticated("The account of this token does not exist or is disabled.")
    scope = claims.get("scope", "")
    return Principal(
        username=username,
        system_roles=frozenset(rows[0].system_roles or ()),
        groups=frozenset(r.group_name for r in rows if r.group_name is not None),
        client_id=claims.get("client_id"),
        scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
    )


async def optional_principal(request: Request) -> Principal | None:
    """The caller, or None when no Authorization header was sent (a bad one is still a 401)."""
    token = _bearer(request)
    if token is None:
        return None
    verifier: TokenVerifier = request.app.state.authenticator
    claims = await verified_claims(request.scope, verifier, token)
    async with sessions(request)() as session:
        return await load_principal(session, await verifier.local_claims(session, claims))


async def require_principal(
    principal: Principal | None = Depends(optional_principal),
) -> Principal:
    """The caller; 401 when unauthenticated."""
    if principal is None:
        raise unauthenticated()
    return principal
