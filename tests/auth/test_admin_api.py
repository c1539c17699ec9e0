"""The admin API (users, groups, clients), discovery and the first-start bootstrap."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from provena_like.auth import ClientCredentials, OIDCDiscovery, fetch_oidc_configuration
from provena_like.server.app import create_app
from provena_like.server.settings import ServerSettings
from provena_like.testing.server_thread import ServerThread
from tests.support.auth_helpers import bearer, device_login, issuer_of, running_server
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio

BOB_PASSWORD = "bob-password-123"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """A server of this module's own: user counts and admins are predictable."""
    with running_server(tmp_path_factory.mktemp("admin-api")) as s:
        yield s


@pytest.fixture(scope="module")
def tokens(srv: ServerThread) -> dict[str, str]:
    """Access tokens of ``admin`` and of ``bob``, a user without system roles."""

    async def setup() -> dict[str, str]:
        admin = (await device_login(srv)).access_token.get_secret_value()
        async with httpx.AsyncClient(verify=SHARED_TLS) as http:
            r = await http.post(
                f"{issuer_of(srv)}/users",
                json={"username": "bob", "password": BOB_PASSWORD, "email": "bob@example.org"},
                headers=bearer(admin),
            )
            assert r.status_code == 201, r.text
        bob = (await device_login(srv, "bob", BOB_PASSWORD)).access_token.get_secret_value()
        return {"admin": admin, "bob": bob}

    return anyio.run(setup)


@pytest.fixture
async def admin(srv: ServerThread, tokens: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        verify=SHARED_TLS, base_url=issuer_of(srv), headers=bearer(tokens["admin"])
    ) as c:
        yield c


@pytest.fixture
async def bob(srv: ServerThread, tokens: dict[str, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        verify=SHARED_TLS, base_url=issuer_of(srv), headers=bearer(tokens["bob"])
    ) as c:
        yield c


async def test_discovery_is_absolute_and_complete(srv: ServerThread) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        config = await fetch_oidc_configuration(http, issuer_of(srv))
        jwks = (await http.get(config.jwks_uri or "")).json()
    base = issuer_of(srv)
    assert config.issuer == base
    assert config.token_endpoint == f"{base}/token"
    assert config.device_authorization_endpoint == f"{base}/device_authorization"
    assert config.userinfo_endpoint == f"{base}/userinfo"
    assert config.revocation_endpoint == f"{base}/revoke"
    assert config.token_endpoint_auth_methods_supported == [
        "client_secret_basic",
        "client_secret_post",
        "none",
    ]
    assert "urn:ietf:params:oauth:grant-type:device_code" in config.grant_types_supported
    assert "offline_access" in config.scopes_supported
    assert jwks["keys"][0]["kty"] == "EC" and "d" not in jwks["keys"][0]


async def test_unauthenticated_and_forbidden(srv: ServerThread, bob: httpx.AsyncClient) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS, base_url=issuer_of(srv)) as anon:
        r = await anon.get("/users")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"
    assert r.headers["www-authenticate"].startswith("Bearer")
    for call in (
        bob.get("/users"),
        bob.post("/users", json={"username": "eve", "password": "12345678"}),
        bob.get("/groups"),
        bob.get("/clients"),
        bob.get("/users/admin"),
    ):
        answer = await call
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "forbidden"
    me = await bob.get("/users/bob")
    assert me.status_code == 200 and me.json()["email"] == "bob@example.org"
    assert "password" not in me.text


async def test_create_user_is_idempotent(admin: httpx.AsyncClient) -> None:
    name = f"u-{uuid.uuid4().hex[:8]}"
    body = {"username": name, "password": "password-123", "display_name": "U"}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await admin.post("/users", json=body, headers=key)
    replay = await admin.post("/users", json=body, headers=key)
    reused = await admin.post("/users", json={**body, "display_name": "V"}, headers=key)
    duplicate = await admin.post("/users", json=body)
    assert first.status_code == 201
    assert replay.status_code == 201
    assert replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    assert reused.status_code == 409
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "conflict"


async def test_create_client_replays_the_same_working_secret(
    srv: ServerThread, admin: httpx.AsyncClient
) -> None:
    client_id = f"c-{uuid.uuid4().hex[:8]}"
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = await admin.post("/clients", json={"client_id": client_id}, headers=key)
    replay = await admin.post("/clients", json={"client_id": client_id}, headers=key)
    listed = await admin.get("/clients", params={"page_size": 1000})
    assert first.status_code == replay.status_code == 201
    assert replay.json() == first.json()
    assert first.headers["cache-control"] == "no-store"
    secret = replay.json()["client_secret"]
    assert secret
    assert secret not in listed.text
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        got = await ClientCredentials(client_id, secret).fetch_token(
            http, OIDCDiscovery(issuer_of(srv))
        )
    assert got.access_token.get_secret_value()


async def test_client_validation(admin: httpx.AsyncClient) -> None:
    public_cc = await admin.post(
        "/clients",
        json={"client_id": "pub-cc", "confidential": False, "grant_types": ["client_credentials"]},
    )
    long_id = await admin.post("/clients", json={"client_id": "x" * 60})
    assert public_cc.status_code == 422
    assert long_id.status_code == 422


async def test_pagination_walks_groups_in_order(admin: httpx.AsyncClient) -> None:
    prefix = f"pg-{uuid.uuid4().hex[:6]}"
    names = [f"{prefix}-{n}" for n in (3, 0, 4, 1, 2)]
    for name in names:
        assert (await admin.post("/groups", json={"name": name})).status_code == 201
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"page_size": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await admin.get("/groups", params=params)).json()
        seen += [g["name"] for g in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert [n for n in seen if n.startswith(prefix)] == sorted(names)
    assert pages >= 3
    assert (await admin.get("/groups", params={"page_size": 0})).status_code == 422
    assert (await admin.get("/groups", params={"page_size": 1001})).status_code == 422
    bad = await admin.get("/groups", params={"cursor": "!!not-a-cursor"})
    assert bad.status_code == 400


async def test_users_list_pages(admin: httpx.AsyncClient) -> None:
    first = (await admin.get("/users", params={"page_size": 1})).json()
    second = (
        await admin.get("/users", params={"page_size": 1, "cursor": first["next_cursor"]})
    ).json()
    assert first["items"][0]["username"] == "admin"
    assert second["items"][0]["username"] > "admin"


async def test_group_membership(
    srv: ServerThread, admin: httpx.AsyncClient, bob: httpx.AsyncClient
) -> None:
    name = f"lab-{uuid.uuid4().hex[:6]}"
    assert (
        await admin.post("/groups", json={"name": name, "description": "Lab"})
    ).status_code == 201
    added = await admin.post(f"/groups/{name}/members", json={"username": "bob"})
    twice = await admin.post(f"/groups/{name}/members", json={"username": "bob"})
    nobody = await admin.post(f"/groups/{name}/members", json={"username": "nobody"})
    me = (await bob.get("/userinfo")).json()
    removed = await admin.delete(f"/groups/{name}/members/bob")
    again = await admin.delete(f"/groups/{name}/members/bob")
    group = (await admin.get(f"/groups/{name}")).json()
    assert added.status_code == 200 and added.json()["members"] == ["bob"]
    assert twice.json()["members"] == ["bob"]
    assert nobody.status_code == 404
    assert name in me["groups"]
    assert removed.status_code == 204
    assert again.status_code == 404
    assert group["members"] == []
    assert (await admin.get("/groups/no-such-group")).status_code == 404


async def test_a_member_key_replays_only_for_its_own_group(admin: httpx.AsyncClient) -> None:
    # The fingerprint holds the path: the same key and body for another group is refused,
    # never answered with the first group's members.
    first, second = (f"lab-{uuid.uuid4().hex[:6]}" for _ in range(2))
    for name in (first, second):
        assert (await admin.post("/groups", json={"name": name})).status_code == 201
    key = {"Idempotency-Key": uuid.uuid4().hex}
    body = {"username": "bob"}
    added = await admin.post(f"/groups/{first}/members", json=body, headers=key)
    replay = await admin.post(f"/groups/{first}/members", json=body, headers=key)
    elsewhere = await admin.post(f"/groups/{second}/members", json=body, headers=key)
    assert added.status_code == replay.status_code == 200
    assert replay.json() == added.json() and replay.headers["idempotent-replayed"] == "true"
    assert elsewhere.status_code == 409
    assert elsewhere.json()["error"]["code"] == "idempotency_key_reused"
    assert (await admin.get(f"/groups/{second}")).json()["members"] == []


async def test_patch_user_and_disable(srv: ServerThread, admin: httpx.AsyncClient) -> None:
    name = f"carol-{uuid.uuid4().hex[:6]}"
    password = "carol-password-1"
    await admin.post("/users", json={"username": name, "password": password})
    carol = await device_login(srv, name, password)
    patched = await admin.patch(
        f"/users/{name}", json={"display_name": "Carol", "system_roles": ["reviewer"]}
    )
    assert patched.json()["display_name"] == "Carol"
    assert patched.json()["system_roles"] == ["reviewer"]
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        assert (await http.get(f"{issuer_of(srv)}/userinfo", headers=bearer(carol))).json()[
            "roles"
        ] == ["reviewer"]
        disabled = await admin.patch(f"/users/{name}", json={"disabled": True})
        refused = await http.get(f"{issuer_of(srv)}/userinfo", headers=bearer(carol))
        assert carol.refresh_token is not None
        refresh = await http.post(
            f"{issuer_of(srv)}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": carol.refresh_token.get_secret_value(),
                "client_id": "provena-like-cli",
            },
        )
    assert disabled.json()["disabled"] is True
    assert refused.status_code == 401
    assert refresh.json()["error"] == "invalid_grant"
    assert (await admin.patch("/users/nobody", json={"email": "x@y.z"})).status_code == 404


async def test_last_admin_cannot_be_demoted(admin: httpx.AsyncClient) -> None:
    r = await admin.patch("/users/admin", json={"system_roles": []})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "last_admin"
    assert (await admin.patch("/users/admin", json={"disabled": True})).status_code == 409


async def test_bootstrap_writes_a_private_password_file_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with running_server(data_dir, initial_admin_password=None) as first:
        result = first.app.state.bootstrap
    path = data_dir / "initial-admin.json"
    assert result.first_start and result.password_file == path
    assert result.cli_client_created
    assert path.stat().st_mode & 0o777 == 0o600
    creds = json.loads(path.read_text())
    assert creds["username"] == "admin" and len(creds["password"]) >= 16
    with running_server(data_dir, initial_admin_password=None) as again:
        result = again.app.state.bootstrap
        tokens = await device_login(again, "admin", creds["password"])
    assert not result.first_start and result.password_file is None
    assert not result.cli_client_created
    assert tokens.access_token.get_secret_value()


def test_configured_password_writes_no_file(tmp_path: Path) -> None:
    settings = ServerSettings(data_dir=tmp_path, initial_admin_password="configured-pw-1")  # type: ignore[arg-type]
    srv = ServerThread(create_app(settings))
    srv.start()
    try:
        assert srv.app.state.bootstrap.first_start
        assert srv.app.state.bootstrap.password_file is None
    finally:
        srv.stop()
    assert not (tmp_path / "initial-admin.json").exists()
