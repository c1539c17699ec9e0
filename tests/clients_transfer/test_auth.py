"""Who signs the transfer client's requests.

(a) Our service: the bearer token of our L1 auth, from the real reference server (a real
    device-flow sign-in), refreshed by it, renewed once after a 401.
(b) Real Globus: a native-app login whose tokens live in our 0600 token store, refreshed by a
    RefreshTokenAuthorizer that writes them back; Globus Auth and Transfer are globus-sdk's
    registered responses (no real Globus is reachable).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import responses
from globus_sdk.testing import get_response_set, load_response
from pydantic import SecretStr

from provena_like import LoginRequired, ProvenaClient, Unauthorized, UsageError
from provena_like.auth import AuthManager, RefreshTokenFlow, TokenSet, TokenStore
from provena_like.clients.transfer import (
    TRANSFER_SCOPE,
    GlobusNativeLogin,
    Location,
    TransferClient,
)
from provena_like.testing.server_thread import ServerThread
from tests.clients_transfer.conftest import LAB
from tests.support.auth_helpers import CLI, bearer, device_login, issuer_of
from tests.support.globus_responses import (
    file_doc,
    file_list,
    register,
    register_token,
    token_answer,
)
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio

UNAUTHORIZED = {
    "code": "AuthenticationFailed",
    "message": "Token is not active",
    "request_id": "a1b2c3d4e",
    "resource": f"/v0.10/operation/endpoint/{LAB}/ls",
}


def _auth_headers(path_suffix: str) -> list[str]:
    return [
        c.request.headers.get("Authorization", "")
        for c in responses.calls
        if urlsplit(c.request.url).path.endswith(path_suffix)
    ]


# -- (a) our service, our L1 auth ---------------------------------------------------------


async def test_l1_token_signs_and_a_401_renews_it_once(
    server: ServerThread, globus_mock: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    tokens = await device_login(server)
    assert tokens.refresh_token is not None
    manager = AuthManager(RefreshTokenFlow(tokens.refresh_token, CLI), issuer=issuer_of(server))
    ls = f"/v0.10/operation/endpoint/{LAB}/ls"
    register(ls, json_body=UNAUTHORIZED, status=401, base=server.url)
    register(ls, json_body=file_list(LAB, "/data/", [file_doc("a.bin")]), base=server.url)
    try:
        async with ProvenaClient(base_url=server.url, auth=manager) as pv:
            tc = pv.transfer_client
            assert tc.base_url == server.url + "/"
            listing = await tc.ls(LAB, "/data")
            assert [e.name for e in listing.entries] == ["a.bin"]
            first, second = _auth_headers("/ls")
            assert first.startswith("Bearer ") and second.startswith("Bearer ")
            assert first != second  # renewed after the 401, then retried once
            async with httpx.AsyncClient(
                verify=SHARED_TLS
            ) as http:  # both are real tokens of our server
                me = await http.get(
                    f"{issuer_of(server)}/userinfo", headers={"Authorization": second}
                )
            assert me.status_code == 200 and me.json()["sub"] == "admin"
            # the next call reuses the renewed token: no renewal without a reason
            register(ls, json_body=file_list(LAB, "/data/", []), base=server.url)
            await tc.ls(LAB, "/data")
            assert _auth_headers("/ls")[-1] == second
    finally:
        await manager.aclose()
    for header in (first, second):
        assert header.split()[1] not in caplog.text


async def test_a_static_token_is_not_renewed(
    server: ServerThread, globus_mock: object, make_token: object
) -> None:
    assert callable(make_token)
    token = make_token("transfer-static-user")
    ls = f"/v0.10/operation/endpoint/{LAB}/ls"
    register(ls, json_body=UNAUTHORIZED, status=401, base=server.url)
    async with ProvenaClient(base_url=server.url, access_token=token) as pv:
        with pytest.raises(Unauthorized) as info:
            await pv.transfer_client.ls(LAB, "/data")
    assert info.value.code == "AuthenticationFailed" and info.value.request_id == "a1b2c3d4e"
    assert _auth_headers("/ls") == [bearer(token)["Authorization"]]  # one try, no retry
    assert token not in str(info.value)


async def test_no_l1_token_raises_login_required_before_any_request(tmp_path, globus_mock) -> None:  # type: ignore[no-untyped-def]
    async with ProvenaClient(base_url="http://127.0.0.1:9/", token_dir=tmp_path) as pv:
        with pytest.raises(LoginRequired, match="not signed in"):
            await pv.transfer_client.ls(LAB, "/data")
    assert len(responses.calls) == 0


async def test_provena_client_builds_the_transfer_client_once_and_closes_it(
    globus_mock: object,
) -> None:
    del globus_mock
    pv = ProvenaClient(
        base_url="http://127.0.0.1:9/",
        access_token="t",
        transfer_locations={"lab": (LAB, "/data")},
        timeout=12,
    )
    tc = pv.transfer_client
    assert pv.transfer_client is tc
    assert tc.locations.resolve("lab:x") == Location(LAB, "/data/x")
    assert tc.http_timeout == 12 and tc.base_url == "http://127.0.0.1:9/"
    await pv.aclose()
    with pytest.raises(UsageError, match="closed"):
        await tc.ls("lab:x")
    with pytest.raises(UsageError, match="closed"):
        pv.transfer_client  # noqa: B018


# -- (b) real Globus, a native-app login --------------------------------------------------


def _token_posts() -> list[dict[str, list[str]]]:
    return [
        parse_qs(c.request.body if isinstance(c.request.body, str) else c.request.body.decode())
        for c in responses.calls
        if c.request.url.endswith("/v2/oauth2/token")
    ]


async def test_native_login_keeps_tokens_in_the_0600_store(tmp_path, globus_mock) -> None:  # type: ignore[no-untyped-def]
    store = TokenStore(tmp_path / "tokens")
    login = GlobusNativeLogin("5c1e6a0b-native-app", [TRANSFER_SCOPE], store=store)
    register_token("access-1", "refresh-1")
    with pytest.raises(UsageError, match="start"):
        await login.finish("code")
    urls: list[str] = []

    async def prompt(url: str) -> str:
        urls.append(url)
        return " the-code\n"

    tokens = await login.login(prompt)
    query = parse_qs(urlsplit(urls[0]).query)
    assert query["client_id"] == ["5c1e6a0b-native-app"]
    assert query["scope"] == [TRANSFER_SCOPE] and query["access_type"] == ["offline"]
    assert "code_challenge" in query
    (post,) = _token_posts()
    assert post["grant_type"] == ["authorization_code"] and post["code"] == ["the-code"]
    assert "code_verifier" in post
    assert tokens.refresh_token is not None
    path = store.path_for(login.key)
    assert login.key.issuer == "https://auth.globus.org"
    if os.name == "posix":
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = await store.load(login.key)
    assert stored is not None and stored.access_token.get_secret_value() == "access-1"
    assert stored.refresh_token is not None
    assert stored.refresh_token.get_secret_value() == "refresh-1"
    assert "access-1" not in repr(login) and "refresh-1" not in repr(stored)
    assert await login.has_tokens()


async def test_expired_token_is_refreshed_and_written_back(tmp_path, globus_mock, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    store = TokenStore(tmp_path / "tokens")
    login = GlobusNativeLogin("5c1e6a0b-native-app", [TRANSFER_SCOPE], store=store)
    expired = TokenSet(SecretStr("old-access"), SecretStr("refresh-1"), expires_at=time.time() - 10)
    await store.save(login.key, expired)
    register_token("fresh-access", "refresh-2")  # Globus Auth rotates the refresh token
    load_response("transfer.operation_stat")
    collection = get_response_set("transfer.operation_stat").metadata["endpoint_id"]
    async with TransferClient(auth=login, max_retry_sleep=0.01) as tc:
        entry = await tc.stat(collection, "/~/file1.txt")
    assert entry.name == "file1.txt"
    (post,) = _token_posts()
    assert post["grant_type"] == ["refresh_token"] and post["refresh_token"] == ["refresh-1"]
    assert _auth_headers("/stat") == ["Bearer fresh-access"]
    stored = await store.load(login.key)
    assert stored is not None and stored.access_token.get_secret_value() == "fresh-access"
    assert stored.refresh_token is not None
    assert stored.refresh_token.get_secret_value() == "refresh-2"
    if os.name == "posix":
        assert stat.S_IMODE(store.path_for(login.key).stat().st_mode) == 0o600
    for secret in ("fresh-access", "refresh-1", "refresh-2", "old-access"):
        assert secret not in caplog.text
    login.close()


async def test_a_401_from_globus_refreshes_once(tmp_path, globus_mock) -> None:  # type: ignore[no-untyped-def]
    store = TokenStore(tmp_path / "tokens")
    login = GlobusNativeLogin("5c1e6a0b-native-app", [TRANSFER_SCOPE], store=store)
    valid = TokenSet(SecretStr("revoked"), SecretStr("refresh-1"), expires_at=time.time() + 3600)
    await store.save(login.key, valid)
    register_token("after-401", None)
    collection = get_response_set("transfer.operation_stat").metadata["endpoint_id"]
    stat_path = f"/v0.10/operation/endpoint/{collection}/stat"
    register(stat_path, json_body=dict(UNAUTHORIZED, resource=stat_path), status=401)
    load_response("transfer.operation_stat")
    async with TransferClient(auth=login, max_retry_sleep=0.01) as tc:
        await tc.stat(collection, "/~/file1.txt")
    assert _auth_headers("/stat") == ["Bearer revoked", "Bearer after-401"]
    assert len(_token_posts()) == 1
    stored = await store.load(login.key)
    assert stored is not None and stored.access_token.get_secret_value() == "after-401"
    assert stored.refresh_token is not None  # kept: Globus did not send a new one
    assert stored.refresh_token.get_secret_value() == "refresh-1"


async def test_without_usable_tokens_login_is_required(tmp_path, globus_mock) -> None:  # type: ignore[no-untyped-def]
    store = TokenStore(tmp_path / "tokens")
    login = GlobusNativeLogin("5c1e6a0b-native-app", [TRANSFER_SCOPE], store=store)
    async with TransferClient(auth=login) as tc:
        with pytest.raises(LoginRequired, match="login"):
            await tc.ls(LAB, "/")
    await store.save(login.key, TokenSet(SecretStr("a"), expires_at=time.time() - 1))
    async with TransferClient(auth=login) as tc:
        with pytest.raises(LoginRequired, match="expired"):
            await tc.ls(LAB, "/")
    assert len(responses.calls) == 0
    with pytest.raises(UsageError):
        GlobusNativeLogin("x", [], store=store)
    load_response("auth.oauth2_revoke_token")
    assert await login.logout() is True  # no refresh token; the access token is revoked
    (revoke,) = [c for c in responses.calls if c.request.url.endswith("/revoke")]
    assert "token=a" in str(revoke.request.body)
    assert not await login.has_tokens()
    assert await login.logout() is False


async def test_concurrent_401s_refresh_once(tmp_path, globus_mock) -> None:  # type: ignore[no-untyped-def]
    """Eight threads get a 401 for the same token: the shared authorizer refreshes once."""
    import json

    import anyio

    store = TokenStore(tmp_path / "tokens")
    login = GlobusNativeLogin("5c1e6a0b-native-app", [TRANSFER_SCOPE], store=store)
    valid = TokenSet(SecretStr("revoked"), SecretStr("refresh-1"), expires_at=time.time() + 3600)
    await store.save(login.key, valid)
    refreshed = token_answer("after-401", None)

    def slow_token(request):  # type: ignore[no-untyped-def]
        time.sleep(0.1)  # a refresh takes a while: the other threads must not start one
        return 200, {}, json.dumps(refreshed)

    responses.add_callback(
        responses.POST, "https://auth.globus.org/v2/oauth2/token", callback=slow_token
    )
    stat_doc = get_response_set("transfer.operation_stat").lookup("default").json
    waiting = 0
    together = threading.Barrier(8, timeout=10)

    def answer(request):  # type: ignore[no-untyped-def]
        nonlocal waiting
        if request.headers["Authorization"] == "Bearer revoked":
            waiting += 1
            together.wait()  # all eight 401s arrive at once
            return 401, {}, json.dumps(dict(UNAUTHORIZED, resource="/stat"))
        return 200, {}, json.dumps(stat_doc)

    responses.add_callback(
        responses.GET,
        f"https://transfer.api.globus.org/v0.10/operation/endpoint/{LAB}/stat",
        callback=answer,
    )
    async with TransferClient(auth=login, max_concurrency=8, max_retry_sleep=0.01) as tc:
        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(tc.stat, LAB, f"/f{i}")
    assert waiting == 8  # every request carried the revoked token at first
    assert len(_token_posts()) == 1
    assert _auth_headers("/stat").count("Bearer after-401") == 8
