"""A refresh token the provider rejects (``invalid_grant``) is discarded, never replayed."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.config import ProvenaConfig
from provena_like._core.errors import LoginRequired, RefreshTokenInvalid, TokenRefreshFailed
from provena_like.auth import AuthManager, RefreshTokenFlow, TokenKey, TokenSet, TokenStore
from provena_like.testing.server_thread import ServerThread
from tests.support.auth_helpers import CLI, OFFLINE, TokenCalls, device_login, issuer_of
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio


async def dead_sign_in(srv: ServerThread) -> TokenSet:
    """A sign-in whose refresh token was already used (so the provider rejects it)."""
    tokens = await device_login(srv)
    assert tokens.refresh_token is not None
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        used = await http.post(
            f"{issuer_of(srv)}/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens.refresh_token.get_secret_value(),
                "client_id": CLI,
            },
        )
    assert used.status_code == 200
    return dataclasses.replace(tokens, expires_at=time.time() - 1)


async def test_rejected_stored_token_is_discarded_and_never_sent_again(
    server: ServerThread, tmp_path: Path
) -> None:
    dead = await dead_sign_in(server)
    config = ProvenaConfig(base_url=server.url, token_dir=tmp_path / "tokens")
    store = TokenStore(config.resolved_token_dir)
    key = TokenKey.for_config(config)
    await store.save(key, dead)
    manager = AuthManager.from_config(config)
    calls = TokenCalls()
    url = f"{issuer_of(server)}/userinfo"
    async with httpx.AsyncClient(
        verify=SHARED_TLS, auth=manager, event_hooks={"request": [calls]}
    ) as http:
        manager.bind(http)
        with pytest.raises(RefreshTokenInvalid) as first:
            await http.get(url)
        assert calls.grants == ["refresh_token"]
        assert not store.path_for(key).exists(), "the dead token is still stored"
        sent = list(calls.paths)
        for _ in range(3):
            with pytest.raises(LoginRequired) as later:
                await http.get(url)
            assert not isinstance(later.value, RefreshTokenInvalid)
            assert "provena-like login" in str(later.value)
        assert calls.paths == sent, "a later call reached the network"
    await manager.aclose()
    err = first.value
    assert isinstance(err, LoginRequired) and isinstance(err, TokenRefreshFailed)
    assert err.error == "invalid_grant"
    assert dead.refresh_token is not None
    assert dead.refresh_token.get_secret_value() not in str(err)
    # another process finds nothing stored: it asks for a sign-in without calling anyone
    with pytest.raises(LoginRequired):
        AuthManager.from_config(config, require_token=True)


async def test_provena_client_raises_login_required_once_then_locally(
    server: ServerThread, tmp_path: Path
) -> None:
    dead = await dead_sign_in(server)
    store = TokenStore(tmp_path / "tokens")
    key = TokenKey.of(issuer_of(server), CLI, OFFLINE)
    await store.save(key, dead)
    async with ProvenaClient(base_url=server.url, token_dir=store.directory) as pv:
        with pytest.raises(RefreshTokenInvalid):
            await pv.auth_client.userinfo()
        assert not store.path_for(key).exists()
        with pytest.raises(LoginRequired) as later:
            await pv.auth_client.userinfo()
        assert not isinstance(later.value, RefreshTokenInvalid)  # not sent to the provider


async def test_refresh_token_source_is_not_replayed(server: ServerThread) -> None:
    dead = await dead_sign_in(server)
    assert dead.refresh_token is not None
    manager = AuthManager(RefreshTokenFlow(dead.refresh_token, CLI), issuer=issuer_of(server))
    calls = TokenCalls()
    async with httpx.AsyncClient(
        verify=SHARED_TLS, auth=manager, event_hooks={"request": [calls]}
    ) as http:
        manager.bind(http)
        with pytest.raises(RefreshTokenInvalid):
            await http.get(f"{issuer_of(server)}/userinfo")
        with pytest.raises(LoginRequired):
            await http.get(f"{issuer_of(server)}/userinfo")
    await manager.aclose()
    assert calls.grants == ["refresh_token"]
