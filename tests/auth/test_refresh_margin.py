"""The refresh margin is bounded by the token's lifetime, and it is a setting.

With ``refresh_margin=60`` a token that lives 30 s used to be stale at birth: every request
renewed it (a new client-credentials grant, or a refresh rotating the refresh token).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from provena_like import ProvenaClient
from provena_like._core.config import ProvenaConfig
from provena_like._core.errors import UsageError
from provena_like.auth import AuthManager, TokenKey, TokenSet, TokenStore
from provena_like.testing.server_thread import ServerThread
from tests.support.auth_helpers import (
    CLI,
    OFFLINE,
    bearer,
    device_login,
    forged_token,
    issuer_of,
    running_server,
)
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio

TTL = 30
REQUESTS = 8


@pytest.fixture(scope="module")
def thirty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """A server whose access tokens live 30 s, half the default 60 s refresh margin."""
    with running_server(tmp_path_factory.mktemp("ttl-30"), access_token_ttl=TTL) as srv:
        yield srv


class CountingTransport(httpx.AsyncBaseTransport):
    """A real HTTP transport that records the grant type of every token-endpoint call."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.grants: list[str] = []
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        if request.url.path.endswith("/token"):
            body = dict(httpx.QueryParams((await request.aread()).decode()))
            self.grants.append(body.get("grant_type", ""))
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def new_client(srv: ServerThread) -> tuple[str, str]:
    admin = await device_login(srv)
    client_id = f"svc-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        r = await http.post(
            f"{issuer_of(srv)}/clients",
            json={"client_id": client_id, "name": "short tokens"},
            headers=bearer(admin),
        )
    assert r.status_code == 201, r.text
    return client_id, r.json()["client_secret"]


async def test_thirty_second_tokens_one_grant_for_many_requests(thirty: ServerThread) -> None:
    client_id, secret = await new_client(thirty)
    transport = CountingTransport()
    async with ProvenaClient(
        base_url=thirty.url, client_id=client_id, client_secret=secret, transport=transport
    ) as pv:
        for _ in range(REQUESTS):
            me = await pv.auth_client.userinfo()
            assert me.sub == f"service-account-{client_id}"
    assert transport.grants == ["client_credentials"]


async def test_a_401_costs_exactly_one_refresh(thirty: ServerThread, tmp_path: Path) -> None:
    tokens = await device_login(thirty)
    assert tokens.lifetime == TTL
    # a stored sign-in whose access token the server rejects (signed by an unknown key)
    store = TokenStore(tmp_path / "tokens")
    key = TokenKey.of(issuer_of(thirty), CLI, OFFLINE)
    bad = TokenSet(
        access_token=SecretStr(forged_token(thirty)),
        refresh_token=tokens.refresh_token,
        expires_at=time.time() + 3600,
    )
    await store.save(key, bad)
    transport = CountingTransport()
    async with ProvenaClient(
        base_url=thirty.url, token_dir=tmp_path / "tokens", transport=transport
    ) as pv:
        for _ in range(REQUESTS):
            assert (await pv.auth_client.userinfo()).sub == "admin"
    assert transport.grants == ["refresh_token"]
    assert transport.paths.count("/auth/userinfo") == REQUESTS + 1  # the 401, then the retry
    # the refreshed sign-in went to the per-server key (the old-format file moved over)
    saved = await store.load(TokenKey.of(issuer_of(thirty), CLI, OFFLINE, server=issuer_of(thirty)))
    assert saved is not None and saved.lifetime == TTL
    assert not store.path_for(key).exists()


async def test_effective_margin_is_at_most_half_the_lifetime() -> None:
    manager = AuthManager(issuer="https://idp.example.org", refresh_margin=60)
    now = 1000.0
    short = TokenSet(SecretStr("a"), expires_at=now + 30, issued_at=now)
    long = TokenSet(SecretStr("a"), expires_at=now + 900, issued_at=now)
    unknown = TokenSet(SecretStr("a"), expires_at=now + 30)  # stored by an older version
    assert manager.effective_margin(short) == 15
    assert manager.effective_margin(long) == 60
    assert manager.effective_margin(unknown) == 60
    assert not short.is_expiring(manager.effective_margin(short), now=now + 1)
    assert short.is_expiring(manager.effective_margin(short), now=now + 15)


async def test_refresh_margin_is_a_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "config.toml"
    empty.write_text("")
    assert ProvenaConfig().token_refresh_margin == 60
    monkeypatch.setenv("PROVENA_TOKEN_REFRESH_MARGIN", "5")
    config = ProvenaConfig.load(empty, token_dir=tmp_path / "tokens")
    assert config.token_refresh_margin == 5
    assert AuthManager.from_config(config).refresh_margin == 5
    secret = config.replace(client_id="etl", client_secret="s")
    assert AuthManager.from_config(secret).refresh_margin == 5
    static = config.replace(access_token="t")
    assert AuthManager.from_config(static).refresh_margin == 5
    async with ProvenaClient(config.replace(token_refresh_margin=7)) as client:
        assert isinstance(client.auth_manager, AuthManager)
        assert client.auth_manager.refresh_margin == 7
    monkeypatch.setenv("PROVENA_TOKEN_REFRESH_MARGIN", "-1")
    with pytest.raises(UsageError, match="token_refresh_margin"):
        ProvenaConfig.load(empty)
