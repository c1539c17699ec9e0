"""``AuthManager(DeviceCodeFlow(...), store=...)``: a stored sign-in is used (and refreshed)
before the device flow prompts, and the flow's result is stored for the next process."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import httpx
import pytest

from provena_like.auth import AuthManager, DeviceCodeFlow, DevicePrompt, TokenKey, TokenStore
from provena_like.testing.device_approval import approve_device_code
from provena_like.testing.server_thread import ServerThread
from tests.support.auth_helpers import (
    CLI,
    OFFLINE,
    TokenCalls,
    admin_password,
    device_login,
    issuer_of,
)
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio


class Prompts:
    """A prompt callback that approves the code like a browser and counts the prompts."""

    def __init__(self, srv: ServerThread, browser: httpx.AsyncClient) -> None:
        self.srv = srv
        self.browser = browser
        self.shown = 0

    async def __call__(self, p: DevicePrompt) -> None:
        self.shown += 1
        assert p.verification_uri_complete is not None
        await approve_device_code(
            self.browser, p.verification_uri_complete, "admin", admin_password(self.srv)
        )


async def whoami(manager: AuthManager, srv: ServerThread, calls: TokenCalls) -> str:
    async with httpx.AsyncClient(
        verify=SHARED_TLS, auth=manager, event_hooks={"request": [calls]}
    ) as http:
        manager.bind(http)
        r = await http.get(f"{issuer_of(srv)}/userinfo")
    await manager.aclose()
    assert r.status_code == 200, r.text
    sub: str = r.json()["sub"]
    return sub


async def test_a_stored_sign_in_is_used_without_prompting(
    server: ServerThread, tmp_path: Path
) -> None:
    store = TokenStore(tmp_path / "tokens")
    key = TokenKey.of(issuer_of(server), CLI, OFFLINE)
    await store.save(key, await device_login(server))
    async with httpx.AsyncClient(verify=SHARED_TLS) as browser:
        prompts = Prompts(server, browser)
        # client id and scopes come from the flow: the store key matches the CLI's
        manager = AuthManager(
            DeviceCodeFlow(CLI, OFFLINE, prompts), issuer=issuer_of(server), store=store
        )
        assert manager.key == key
        calls = TokenCalls()
        assert await whoami(manager, server, calls) == "admin"
    assert prompts.shown == 0
    assert calls.grants == []


async def test_an_expired_stored_sign_in_is_refreshed_not_prompted(
    server: ServerThread, tmp_path: Path
) -> None:
    store = TokenStore(tmp_path / "tokens")
    key = TokenKey.of(issuer_of(server), CLI, OFFLINE)
    signed_in = await device_login(server)
    await store.save(key, dataclasses.replace(signed_in, expires_at=time.time() - 1))
    async with httpx.AsyncClient(verify=SHARED_TLS) as browser:
        prompts = Prompts(server, browser)
        manager = AuthManager(
            DeviceCodeFlow(CLI, OFFLINE, prompts), issuer=issuer_of(server), store=store
        )
        calls = TokenCalls()
        assert await whoami(manager, server, calls) == "admin"
    assert prompts.shown == 0
    assert calls.grants == ["refresh_token"]
    saved = await store.load(key)
    assert saved is not None and saved.refresh_token != signed_in.refresh_token


async def test_the_flow_result_is_stored_for_the_next_process(
    server: ServerThread, tmp_path: Path
) -> None:
    store = TokenStore(tmp_path / "tokens")
    key = TokenKey.of(issuer_of(server), CLI, OFFLINE)
    async with httpx.AsyncClient(verify=SHARED_TLS) as browser:
        prompts = Prompts(server, browser)
        for _ in range(3):  # three "processes", each with a new manager
            manager = AuthManager(
                DeviceCodeFlow(CLI, OFFLINE, prompts),
                issuer=issuer_of(server),
                client_id=CLI,
                scopes=OFFLINE,
                store=TokenStore(store.directory),
            )
            assert await whoami(manager, server, TokenCalls()) == "admin"
    assert prompts.shown == 1
    assert (await store.load(key)) is not None


async def test_a_dead_stored_sign_in_prompts_again(server: ServerThread, tmp_path: Path) -> None:
    store = TokenStore(tmp_path / "tokens")
    key = TokenKey.of(issuer_of(server), CLI, OFFLINE)
    dead = await device_login(server)
    assert dead.refresh_token is not None
    async with httpx.AsyncClient(verify=SHARED_TLS) as browser:
        revoked = await browser.post(
            f"{issuer_of(server)}/revoke",
            data={"token": dead.refresh_token.get_secret_value(), "client_id": CLI},
        )
        assert revoked.status_code == 200
        await store.save(key, dataclasses.replace(dead, expires_at=time.time() - 1))
        prompts = Prompts(server, browser)
        manager = AuthManager(
            DeviceCodeFlow(CLI, OFFLINE, prompts), issuer=issuer_of(server), store=store
        )
        calls = TokenCalls()
        assert await whoami(manager, server, calls) == "admin"
    assert prompts.shown == 1
    assert calls.grants[0] == "refresh_token"  # refused: invalid_grant
    saved = await store.load(key)
    assert saved is not None and saved.refresh_token != dead.refresh_token
