"""The client credentials grant: service accounts, both client authentication methods."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import anyio
import httpx
import pytest

from provena_like._core.config import ProvenaConfig
from provena_like._core.errors import AuthError
from provena_like.auth import AuthManager, ClientCredentials, OIDCDiscovery
from provena_like.testing.server_thread import ServerThread
from tests.support.auth_helpers import TokenCalls, bearer, device_login, issuer_of, running_server
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio


async def new_client(
    srv: ServerThread, admin_token: str, *, roles: tuple[str, ...] = ()
) -> tuple[str, str]:
    client_id = f"svc-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        r = await http.post(
            f"{issuer_of(srv)}/clients",
            json={"client_id": client_id, "name": "CI", "system_roles": list(roles)},
            headers=bearer(admin_token),
        )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["service_account"] == f"service-account-{client_id}"
    return client_id, body["client_secret"]


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
async def test_service_account_token(server: ServerThread, admin_token: str, method: str) -> None:
    client_id, secret = await new_client(server, admin_token, roles=("reviewer",))
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        flow = ClientCredentials(
            client_id, secret, ["openid", "offline_access"], auth_method=method
        )
        tokens = await flow.fetch_token(http, OIDCDiscovery(issuer_of(server)))
        me = await http.get(f"{issuer_of(server)}/userinfo", headers=bearer(tokens))
    assert tokens.refresh_token is None  # never for this grant
    assert tokens.scope == "openid"
    assert me.json()["sub"] == f"service-account-{client_id}"
    assert me.json()["roles"] == ["reviewer"]
    assert me.json()["client_id"] == client_id


async def test_wrong_secret_is_invalid_client(server: ServerThread, admin_token: str) -> None:
    client_id, _ = await new_client(server, admin_token)
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        with pytest.raises(AuthError, match="invalid_client") as info:
            await ClientCredentials(client_id, "wrong-secret").fetch_token(
                http, OIDCDiscovery(issuer_of(server))
            )
        basic = base64.b64encode(f"{client_id}:wrong".encode()).decode()
        raw = await http.post(
            f"{issuer_of(server)}/token",
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {basic}"},
        )
        both = await http.post(
            f"{issuer_of(server)}/token",
            data={"grant_type": "client_credentials", "client_secret": "x"},
            headers={"Authorization": f"Basic {basic}"},
        )
    assert "wrong-secret" not in str(info.value)
    assert raw.status_code == 401
    assert raw.headers["www-authenticate"].startswith("Basic")
    assert raw.json()["error"] == "invalid_client"
    assert both.json()["error"] == "invalid_request"


async def test_public_client_may_not_use_client_credentials(server: ServerThread) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        r = await http.post(
            f"{issuer_of(server)}/token",
            data={"grant_type": "client_credentials", "client_id": "provena-like-cli"},
        )
        unknown = await http.post(
            f"{issuer_of(server)}/token", data={"grant_type": "password", "client_id": "x"}
        )
    assert r.status_code == 400
    assert r.json()["error"] == "unauthorized_client"
    assert unknown.json()["error"] == "unsupported_grant_type"


async def test_manager_from_config_renews_without_refresh_token(tmp_path: Path) -> None:
    # tokens that live 4 s: renewed once they are within half their life of expiring
    with running_server(tmp_path / "srv", access_token_ttl=4) as srv:
        admin = (await device_login(srv)).access_token.get_secret_value()
        client_id, secret = await new_client(srv, admin, roles=("admin",))
        config = ProvenaConfig(base_url=srv.url, client_id=client_id, client_secret=secret)
        manager = AuthManager.from_config(config)
        calls = TokenCalls()
        async with httpx.AsyncClient(
            verify=SHARED_TLS, auth=manager, event_hooks={"request": [calls]}
        ) as http:
            manager.bind(http)
            users = await http.get(f"{issuer_of(srv)}/users")  # an admin service account
            assert calls.grants == ["client_credentials"]
            first = await manager.get_access_token()
            await anyio.sleep(2.2)  # now less than half the 4 s lifetime is left
            again = await http.get(f"{issuer_of(srv)}/users")
            assert await manager.get_access_token() != first
    assert users.status_code == 200 and again.status_code == 200
    assert calls.grants == ["client_credentials", "client_credentials"]


async def test_deleted_client_can_no_longer_get_tokens(
    server: ServerThread, admin_token: str
) -> None:
    client_id, secret = await new_client(server, admin_token)
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        flow = ClientCredentials(client_id, secret)
        tokens = await flow.fetch_token(http, OIDCDiscovery(issuer_of(server)))
        deleted = await http.delete(
            f"{issuer_of(server)}/clients/{client_id}", headers=bearer(admin_token)
        )
        again = await http.delete(
            f"{issuer_of(server)}/clients/{client_id}", headers=bearer(admin_token)
        )
        with pytest.raises(AuthError, match="invalid_client"):
            await flow.fetch_token(http, OIDCDiscovery(issuer_of(server)))
        # the service account is disabled: its outstanding token stops working at once
        me = await http.get(f"{issuer_of(server)}/userinfo", headers=bearer(tokens))
    assert deleted.status_code == 204
    assert again.status_code == 404
    assert me.status_code == 401
