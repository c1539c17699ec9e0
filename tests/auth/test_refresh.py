"""Refreshing: rotation and reuse detection on the server; AuthManager's single-flight refresh,
refresh before expiry, one retry after a 401, and the stored-token life cycle."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from pydantic import SecretStr

from provena_like._core.config import ProvenaConfig
from provena_like._core.errors import LoginRequired, TokenRefreshFailed
from provena_like.auth import (
    AuthManager,
    DevicePrompt,
    StaticToken,
    TokenKey,
    TokenSet,
    TokenStore,
)
from provena_like.testing.device_approval import approve_device_code
from provena_like.testing.server_thread import ServerThread
from tests.support.auth_helpers import (
    CLI,
    OFFLINE,
    TokenCalls,
    admin_password,
    device_login,
    forged_token,
    issuer_of,
    running_server,
)
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio

TTL = 5


@pytest.fixture(scope="module")
def short(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """A server whose access tokens live 5 s, always inside a 60 s refresh margin."""
    with running_server(tmp_path_factory.mktemp("short-ttl"), access_token_ttl=TTL) as srv:
        yield srv


async def raw_refresh(srv: ServerThread, refresh_token: str) -> httpx.Response:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        return await http.post(
            f"{issuer_of(srv)}/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": CLI},
        )


def expired(tokens: TokenSet) -> TokenSet:
    """The same sign-in with an access token that has expired: the next use refreshes it."""
    return dataclasses.replace(tokens, expires_at=time.time() - 1)


def secret(value: SecretStr | None) -> str:
    assert value is not None
    return value.get_secret_value()


async def stored_manager(
    srv: ServerThread, directory: Path, tokens: TokenSet, **kwargs: float
) -> tuple[AuthManager, TokenStore, TokenKey]:
    store = TokenStore(directory)
    key = TokenKey.of(issuer_of(srv), CLI, OFFLINE)
    await store.save(key, tokens)
    manager = AuthManager(
        issuer=issuer_of(srv), client_id=CLI, scopes=OFFLINE, store=store, **kwargs
    )
    return manager, store, key


async def test_rotation_and_reuse_detection(short: ServerThread) -> None:
    tokens = await device_login(short)
    r1 = secret(tokens.refresh_token)
    first = await raw_refresh(short, r1)
    assert first.status_code == 200, first.text
    assert first.headers["cache-control"] == "no-store"
    r2 = first.json()["refresh_token"]
    assert r2 != r1
    assert first.json()["scope"] == "openid offline_access"
    reused = await raw_refresh(short, r1)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    # the reuse revoked the whole family: the newest token is dead too
    newest = await raw_refresh(short, r2)
    assert newest.status_code == 400
    assert newest.json()["error"] == "invalid_grant"


async def test_refresh_cannot_widen_scope_or_cross_clients(short: ServerThread) -> None:
    tokens = await device_login(short, scopes=["openid", "offline_access"])
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        wider = await http.post(
            f"{issuer_of(short)}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": secret(tokens.refresh_token),
                "client_id": CLI,
                "scope": "openid email",
            },
        )
    assert wider.json()["error"] == "invalid_scope"


async def test_one_refresh_for_twenty_concurrent_requests(
    short: ServerThread, tmp_path: Path
) -> None:
    tokens = await device_login(short)
    manager, store, key = await stored_manager(short, tmp_path, expired(tokens), refresh_margin=60)
    calls = TokenCalls()
    statuses: list[int] = []
    async with httpx.AsyncClient(
        verify=SHARED_TLS, auth=manager, event_hooks={"request": [calls]}
    ) as http:
        manager.bind(http)

        async def one() -> None:
            r = await http.get(f"{issuer_of(short)}/userinfo")
            statuses.append(r.status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(one)
    await manager.aclose()
    assert statuses == [200] * 20
    assert calls.grants == ["refresh_token"]  # exactly one token call for the whole burst
    saved = await store.load(key)
    assert saved is not None
    assert saved.refresh_token != tokens.refresh_token  # the rotated token was persisted
    assert saved.access_token != tokens.access_token
    assert (await raw_refresh(short, secret(saved.refresh_token))).status_code == 200


async def test_refresh_happens_before_expiry(short: ServerThread, tmp_path: Path) -> None:
    tokens = await device_login(short)
    manager, _, _ = await stored_manager(short, tmp_path, tokens, refresh_margin=TTL - 1)
    # the margin is capped at half the token's lifetime: renewal starts 2.5 s before expiry
    assert manager.effective_margin(tokens) == TTL / 2
    calls = TokenCalls()
    async with httpx.AsyncClient(
        verify=SHARED_TLS, auth=manager, event_hooks={"request": [calls]}
    ) as http:
        manager.bind(http)
        assert (await http.get(f"{issuer_of(short)}/userinfo")).status_code == 200
        assert calls.grants == []  # fresh: used as is
        assert tokens.expires_at is not None
        await anyio.sleep(max(tokens.expires_at - TTL / 2 - time.time(), 0) + 0.2)
        assert tokens.expires_at > time.time()  # inside the margin, still valid
        assert (await http.get(f"{issuer_of(short)}/userinfo")).status_code == 200
    assert calls.grants == ["refresh_token"]


async def test_401_refreshes_once_and_retries(short: ServerThread, tmp_path: Path) -> None:
    tokens = await device_login(short)
    bad = TokenSet(
        access_token=SecretStr(forged_token(short)),
        refresh_token=tokens.refresh_token,
        expires_at=time.time() + 3600,
    )
    manager, _, _ = await stored_manager(short, tmp_path, bad, refresh_margin=0)
    calls = TokenCalls()
    async with httpx.AsyncClient(
        verify=SHARED_TLS, auth=manager, event_hooks={"request": [calls]}
    ) as http:
        manager.bind(http)
        r = await http.get(f"{issuer_of(short)}/userinfo")
        # the 401 is in the history, the retry succeeded
        assert [h.status_code for h in r.history] == [401]
    await manager.aclose()
    assert r.status_code == 200
    assert calls.grants == ["refresh_token"]
    assert calls.paths.count("/auth/userinfo") == 2


async def test_static_token_401_is_returned_not_retried(short: ServerThread) -> None:
    calls = TokenCalls()
    manager = AuthManager(StaticToken(forged_token(short)))
    async with httpx.AsyncClient(
        verify=SHARED_TLS, auth=manager, event_hooks={"request": [calls]}
    ) as http:
        r = await http.get(f"{issuer_of(short)}/userinfo")
    assert r.status_code == 401
    assert calls.paths == ["/auth/userinfo"]


async def test_refused_refresh_raises_once_for_all_waiters(
    short: ServerThread, tmp_path: Path
) -> None:
    tokens = await device_login(short)
    assert (await raw_refresh(short, secret(tokens.refresh_token))).status_code == 200
    # the stored refresh token is now used: presenting it again is refused
    manager, _, _ = await stored_manager(short, tmp_path, expired(tokens), refresh_margin=60)
    calls = TokenCalls()
    errors: list[BaseException] = []
    async with httpx.AsyncClient(
        verify=SHARED_TLS, auth=manager, event_hooks={"request": [calls]}
    ) as http:
        manager.bind(http)

        async def one() -> None:
            try:
                await http.get(f"{issuer_of(short)}/userinfo")
            except TokenRefreshFailed as err:
                errors.append(err)

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(one)
    assert len(errors) == 5
    assert calls.grants == ["refresh_token"]
    message = str(errors[0])
    assert "invalid_grant" in message
    assert secret(tokens.refresh_token) not in message


async def test_no_token_raises_login_required(short: ServerThread, tmp_path: Path) -> None:
    config = ProvenaConfig(base_url=short.url, token_dir=tmp_path / "tokens")
    with pytest.raises(LoginRequired, match="provena-like login"):
        AuthManager.from_config(config, require_token=True)
    manager = AuthManager.from_config(config)
    async with httpx.AsyncClient(verify=SHARED_TLS, auth=manager) as http:
        with pytest.raises(LoginRequired, match="provena-like login"):
            await http.get(f"{issuer_of(short)}/userinfo")
    await manager.aclose()


async def test_login_store_reuse_and_logout(short: ServerThread, tmp_path: Path) -> None:
    config = ProvenaConfig(base_url=short.url, token_dir=tmp_path / "tokens")
    async with httpx.AsyncClient(verify=SHARED_TLS) as browser:

        async def prompt(p: DevicePrompt) -> None:
            assert p.verification_uri_complete is not None
            await approve_device_code(
                browser, p.verification_uri_complete, "admin", admin_password(short)
            )

        async with AuthManager.from_config(config) as first:
            await first.login_device(prompt)
    key = TokenKey.for_config(config)
    store = TokenStore(config.resolved_token_dir)
    assert store.path_for(key).stat().st_mode & 0o777 == 0o600
    saved = await store.load(key)
    assert saved is not None and saved.refresh_token is not None
    AuthManager.from_config(config, require_token=True)  # signed in now: no error

    # a new process, after the access token expired: the stored login is found, refreshed
    # and used
    await store.save(key, expired(saved))
    second = AuthManager.from_config(config)
    calls = TokenCalls()
    async with httpx.AsyncClient(
        verify=SHARED_TLS, auth=second, event_hooks={"request": [calls]}
    ) as http:
        second.bind(http)
        r = await http.get(f"{issuer_of(short)}/userinfo")
        assert r.status_code == 200 and r.json()["sub"] == "admin"
        assert calls.grants == ["refresh_token"]
        newest = await store.load(key)
        assert newest is not None
        await second.logout()
    assert not store.path_for(key).exists()
    # the refresh token was revoked at the provider
    refused = await raw_refresh(short, secret(newest.refresh_token))
    assert refused.json()["error"] == "invalid_grant"


async def test_two_processes_sharing_a_store_do_not_trip_reuse_detection(
    short: ServerThread, tmp_path: Path
) -> None:
    tokens = await device_login(short)
    a, store, key = await stored_manager(short, tmp_path, expired(tokens), refresh_margin=60)
    b = AuthManager(
        issuer=issuer_of(short), client_id=CLI, scopes=OFFLINE, store=store, refresh_margin=60
    )
    url = f"{issuer_of(short)}/userinfo"
    calls = TokenCalls()
    hooks = {"request": [calls]}
    async with (
        httpx.AsyncClient(verify=SHARED_TLS, auth=b, event_hooks=hooks) as hb,
        httpx.AsyncClient(verify=SHARED_TLS, auth=a, event_hooks=hooks) as ha,
    ):
        a.bind(ha)
        b.bind(hb)
        assert (await hb.get(url)).status_code == 200  # b: R1 → R2
        assert (await ha.get(url)).status_code == 200  # a: finds R2 in the store, fresh
        await anyio.sleep(TTL / 2 + 0.2)  # both hold R2's access token, now due for renewal
        assert (await hb.get(url)).status_code == 200  # b: R2 → R3
        assert (await ha.get(url)).status_code == 200  # a holds R2 (used): must take R3
    assert calls.grants == ["refresh_token", "refresh_token"]
    saved = await store.load(key)
    assert saved is not None
    assert (await raw_refresh(short, secret(saved.refresh_token))).status_code == 200


async def test_revoke_endpoint(short: ServerThread) -> None:
    tokens = await device_login(short)
    url = f"{issuer_of(short)}/revoke"
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        anonymous = await http.post(url, data={"token": secret(tokens.refresh_token)})
        unknown = await http.post(url, data={"token": "not-a-token", "client_id": CLI})
        revoked = await http.post(
            url,
            data={
                "token": secret(tokens.refresh_token),
                "token_type_hint": "refresh_token",
                "client_id": CLI,
            },
        )
    assert anonymous.status_code == 401
    assert anonymous.json()["error"] == "invalid_client"
    assert unknown.status_code == 200
    assert revoked.status_code == 200
    assert (await raw_refresh(short, secret(tokens.refresh_token))).json()["error"] == (
        "invalid_grant"
    )
