"""Institutions' OpenID providers that the session's reference server is made to trust.

An institution is npm ``oidc-provider`` (``tests/oidc/provider/server.mjs``) configured to
issue access tokens for our server's audience (:data:`AUDIENCE`), with the user's groups in a
claim: JWT access tokens to the device-flow client :data:`CLI`, opaque ones (checked by
introspection, RFC 7662) to :data:`OPAQUE_CLI`; :data:`INTROSPECTOR` is the confidential
client our server asks about opaque tokens as. :func:`trusting` gives the session's server an
authenticator that trusts some institutions (built from settings, as at start-up).
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from provena_like._core.config import ProvenaConfig
from provena_like.auth import AuthManager, DevicePrompt
from provena_like.server.auth.external import Authenticator
from provena_like.server.settings import TrustedIssuer
from provena_like.testing.server_thread import ServerThread
from tests.support.oidc_support import (
    CLI,
    Provider,
    ProviderProcess,
    ensure_installed,
    node_commands,
    start_provider,
)
from tests.support.tls import SHARED_TLS

AUDIENCE = "https://provena-like.test/api"
RUN = uuid.uuid4().hex[:8]
LAB = f"reef-lab-{RUN}"
"""Our group that the institution's ``reef`` group maps to."""
USER = f"ada{RUN}"
"""The user who signs in at an institution (unless it is started for another)."""
PASSWORD = "ada-password-for-tests"

OPAQUE_CLI = "provena-like-cli-opaque"
"""A public device-flow client that gets opaque access tokens for :data:`AUDIENCE`."""
INTROSPECTOR = "provena-like-api"
"""The confidential client our server introspects opaque tokens as."""
INTROSPECTOR_SECRET = "introspector-secret-for-tests-7f3a9c"


def claims_of(user: str) -> dict[str, Any]:
    """The claims an institution puts in the access tokens of ``user``."""
    return {
        "preferred_username": user,
        "email": f"{user}@uni.example",
        "groups": ["reef", "stewards"],
    }


CLAIMS = claims_of(USER)


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


def institution_config(key: RSAKey, user: str = USER) -> dict[str, Any]:
    device_client = {
        "token_endpoint_auth_method": "none",
        "grant_types": ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"],
        "response_types": [],
        "redirect_uris": [],
    }
    return {
        "users": {user: PASSWORD},
        "scopes": ["openid", "offline_access", "api:read"],
        "clients": [
            {"client_id": CLI, **device_client},
            {"client_id": OPAQUE_CLI, **device_client},
            {
                "client_id": INTROSPECTOR,
                "client_secret": INTROSPECTOR_SECRET,
                "token_endpoint_auth_method": "client_secret_basic",
                "grant_types": [],
                "response_types": [],
                "redirect_uris": [],
            },
        ],
        "profiles": {CLI: {"deviceInterval": 0}, OPAQUE_CLI: {"deviceInterval": 0}},
        "signingKeys": [key.as_dict(private=True)],
        "resource": {"indicator": AUDIENCE, "scope": "api:read"},
        "claims": {user: claims_of(user)},
        "opaque": {"clients": [OPAQUE_CLI]},
    }


class Institution:
    """A running provider, the key it signs with and the user who signs in there."""

    def __init__(
        self, key: RSAKey, process: ProviderProcess, log_dir: Path, user: str = USER
    ) -> None:
        self.key = key
        self.process = process
        self.log_dir = log_dir
        self.user = user

    @property
    def issuer(self) -> str:
        return self.process.issuer

    def rotate(self) -> None:
        """Restart the provider at the same issuer with a new signing key (the old one gone)."""
        port = int(self.issuer.rsplit(":", 1)[1])
        self.process.stop()
        self.key = new_key(f"rotated-{uuid.uuid4().hex[:6]}")
        node, _ = node_commands()
        self.process = start_provider(
            node, institution_config(self.key, self.user), self.log_dir, port
        )

    def trusted(self, **over: Any) -> TrustedIssuer:
        settings: dict[str, Any] = {
            "issuer": self.issuer,
            "audiences": [AUDIENCE],
            "group_map": {"reef": LAB},
            "role_map": {"stewards": "reviewer"},
            **over,
        }
        return TrustedIssuer(**settings)

    def token(self, sub: str | None = None, *, key: RSAKey | None = None, **claims: Any) -> str:
        """A token signed with the institution's key (or ``key``), valid unless told otherwise."""
        claims = {**claims_of(self.user), **claims}
        return self.sign(key or self.key, self.issuer, sub or self.user, **claims)

    @staticmethod
    def sign(signer: RSAKey, issuer: str, sub: str = USER, **claims: Any) -> str:
        """A token of ``issuer`` signed with ``signer``, valid unless told otherwise."""
        now = int(time.time())
        body = {
            "iss": issuer,
            "sub": sub,
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
            "client_id": CLI,
            "scope": "api:read",
            **CLAIMS,
            **claims,
        }
        return jwt.encode({"alg": "RS256", "kid": signer.kid, "typ": "at+jwt"}, body, signer)


def start_institution(tmp: pytest.TempPathFactory, kid: str, user: str = USER) -> Institution:
    node, npm = node_commands()
    ensure_installed(node, npm)
    key = new_key(kid)
    log_dir = tmp.mktemp("institution")
    process = start_provider(node, institution_config(key, user), log_dir)
    return Institution(key, process, log_dir, user)


@contextmanager
def running(tmp: pytest.TempPathFactory, kid: str, user: str = USER) -> Iterator[Institution]:
    inst = start_institution(tmp, kid, user)
    try:
        yield inst
    finally:
        inst.process.stop()


@asynccontextmanager
async def trusting(
    server: ServerThread, *issuers: TrustedIssuer, embedded: bool = True
) -> AsyncIterator[Authenticator]:
    """The session server, trusting ``issuers`` (and its own tokens if ``embedded``)."""
    state = server.app.state
    settings_before, before = state.settings, state.authenticator
    settings = settings_before.model_copy(
        update={"trusted_issuers": list(issuers), "embedded_issuer_enabled": embedded}
    )

    async def make() -> Authenticator:
        return Authenticator.from_settings(settings, state.tokens)

    authenticator = server.call(make)
    state.settings, state.authenticator = settings, authenticator
    try:
        yield authenticator
    finally:
        state.settings, state.authenticator = settings_before, before
        server.call(authenticator.aclose)


async def userinfo(server: ServerThread, token: str) -> httpx.Response:
    async with httpx.AsyncClient(verify=SHARED_TLS, base_url=server.url, timeout=60) as http:
        return await http.get("/auth/userinfo", headers={"Authorization": f"Bearer {token}"})


def challenge(response: httpx.Response) -> str:
    """The ``WWW-Authenticate`` header of a 401 ``invalid_token`` answer."""
    assert response.status_code == 401, response.text
    header = response.headers["www-authenticate"]
    assert 'error="invalid_token"' in header
    return header


def approver(inst: Institution) -> Callable[[DevicePrompt], Awaitable[None]]:
    """A device-flow prompt that approves the code as the institution's user."""
    provider = Provider(inst.issuer, inst.process)

    async def approve(p: DevicePrompt) -> None:
        await provider.approve(p.verification_uri_complete, username=inst.user, password=PASSWORD)

    return approve


async def sdk_login(inst: Institution, tmp_path: Path, client_id: str = CLI) -> AuthManager:
    """Sign in at the institution through the SDK's device flow (as ``client_id``)."""
    config = ProvenaConfig(issuer=inst.issuer, client_id=client_id, token_dir=tmp_path)
    auth = AuthManager.from_config(config)
    async with httpx.AsyncClient(verify=SHARED_TLS, auth=auth) as http:
        auth.bind(http)
        await auth.login_device(approver(inst))
    return auth


def closed_port() -> int:
    """A loopback port nobody listens on (an unreachable provider)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
