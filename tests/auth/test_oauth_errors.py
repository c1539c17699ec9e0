"""OAuth error responses become typed errors carrying ``.error``, ``.error_description`` and
``.error_uri`` (RFC 6749 §5.2, RFC 8628 §3.5)."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

import provena_like
from provena_like._core.config import ProvenaConfig
from provena_like._core.errors import (
    AccessDenied,
    AuthError,
    DeviceFlowError,
    InvalidClient,
    LoginRequired,
    RefreshTokenInvalid,
    TokenRefreshFailed,
)
from provena_like.auth import (
    AuthManager,
    ClientCredentials,
    DeviceCodeFlow,
    DevicePrompt,
    OIDCDiscovery,
    RefreshTokenFlow,
)
from provena_like.testing.device_approval import approve_device_code
from provena_like.testing.server_thread import ServerThread
from tests.support.auth_helpers import CLI, OFFLINE, admin_password, bearer, device_login, issuer_of
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio


def test_hierarchy_and_exports() -> None:
    assert issubclass(InvalidClient, AuthError)
    assert issubclass(RefreshTokenInvalid, TokenRefreshFailed)
    assert issubclass(RefreshTokenInvalid, LoginRequired)
    for name in ("InvalidClient", "RefreshTokenInvalid"):
        assert name in provena_like.__all__
        assert getattr(provena_like, name) is getattr(provena_like._core.errors, name)
    plain = LoginRequired("not signed in")
    assert (plain.error, plain.error_description, plain.error_uri) == (None, None, None)
    assert plain.message == "not signed in"


async def test_wrong_client_secret_is_invalid_client(
    server: ServerThread, admin_token: str
) -> None:
    client_id = f"svc-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        created = await http.post(
            f"{issuer_of(server)}/clients",
            json={"client_id": client_id},
            headers=bearer(admin_token),
        )
        assert created.status_code == 201
        with pytest.raises(InvalidClient) as direct:
            await ClientCredentials(client_id, "wrong-secret").fetch_token(
                http, OIDCDiscovery(issuer_of(server))
            )
    assert direct.value.error == "invalid_client"
    assert direct.value.error_description
    assert "wrong-secret" not in str(direct.value)
    # the same through the manager a ProvenaClient uses
    config = ProvenaConfig(base_url=server.url, client_id=client_id, client_secret="wrong")
    async with AuthManager.from_config(config) as manager:
        with pytest.raises(InvalidClient) as managed:
            await manager.get_access_token()
    assert managed.value.error == "invalid_client"


async def test_refresh_refusals_keep_their_code(server: ServerThread) -> None:
    tokens = await device_login(server)
    assert tokens.refresh_token is not None
    discovery = OIDCDiscovery(issuer_of(server))
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        wider = RefreshTokenFlow(tokens.refresh_token, CLI, scopes=["openid", "email"])
        with pytest.raises(TokenRefreshFailed) as scope:
            await wider.fetch_token(http, discovery)
        # not a dead token: the refresh token still works
        fresh = await RefreshTokenFlow(tokens.refresh_token, CLI).fetch_token(http, discovery)
        reused = RefreshTokenFlow(tokens.refresh_token, CLI)
        with pytest.raises(RefreshTokenInvalid) as grant:
            await reused.fetch_token(http, discovery)
        with pytest.raises(InvalidClient) as client:
            await RefreshTokenFlow(fresh.refresh_token or "x", "no-such-client").fetch_token(
                http, discovery
            )
    assert not isinstance(scope.value, LoginRequired)
    assert scope.value.error == "invalid_scope"
    assert grant.value.error == "invalid_grant"
    assert grant.value.error_description
    assert client.value.error == "invalid_client"


async def test_device_flow_errors_keep_their_code(server: ServerThread) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:

        async def deny(p: DevicePrompt) -> None:
            assert p.verification_uri_complete is not None
            await approve_device_code(
                http, p.verification_uri_complete, "admin", admin_password(server), approve=False
            )

        discovery = OIDCDiscovery(issuer_of(server))
        with pytest.raises(AccessDenied) as denied:
            await DeviceCodeFlow(CLI, OFFLINE, deny).fetch_token(http, discovery)
        with pytest.raises(DeviceFlowError) as scope:
            await DeviceCodeFlow(CLI, ["root"], deny).fetch_token(http, discovery)
        with pytest.raises(InvalidClient) as client:
            await DeviceCodeFlow("no-such-client", OFFLINE, deny).fetch_token(http, discovery)
    assert denied.value.error == "access_denied"
    assert scope.value.error == "invalid_scope"
    assert client.value.error == "invalid_client"


async def test_error_uri_is_kept() -> None:
    # The reference server sends no error_uri; a provider that does is simulated here.
    issuer = "https://idp.example.org"

    def provider(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            document = {
                "issuer": issuer,
                "token_endpoint": f"{issuer}/token",
                "jwks_uri": f"{issuer}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            }
            return httpx.Response(200, json=document)
        body = {
            "error": "unauthorized_client",
            "error_description": "this client may not use this grant",
            "error_uri": "https://idp.example.org/docs/errors#unauthorized_client",
        }
        return httpx.Response(400, content=json.dumps(body).encode())

    async with httpx.AsyncClient(transport=httpx.MockTransport(provider)) as http:
        with pytest.raises(AuthError) as info:
            await ClientCredentials("etl", "secret").fetch_token(http, OIDCDiscovery(issuer))
    assert type(info.value) is AuthError
    assert info.value.error == "unauthorized_client"
    assert info.value.error_description == "this client may not use this grant"
    assert info.value.error_uri == "https://idp.example.org/docs/errors#unauthorized_client"
