"""Refreshing against an independent, certified OpenID provider (npm ``oidc-provider``).

Refresh before expiry, refresh-token rotation and reuse detection, revocation, one refresh for
many concurrent requests, and resuming from the token store, with the SDK's defaults
(``ProvenaConfig`` → ``AuthManager.from_config``, default refresh margin, default scopes).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from pydantic import SecretStr

from provena_like._core.config import ProvenaConfig
from provena_like._core.errors import AuthError, LoginRequired, TokenRefreshFailed
from provena_like.auth import (
    AuthManager,
    DeviceCodeFlow,
    DevicePrompt,
    OIDCDiscovery,
    RefreshTokenFlow,
    TokenKey,
    TokenSet,
    TokenStore,
)
from tests.support.oidc_support import (
    CLI,
    DEVICE_GRANT,
    SHORT,
    SHORT_TTL,
    USER,
    Provider,
)
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio

DEFAULT_SCOPES = ProvenaConfig().scopes
REFRESH = "refresh_token"


def secret(value: SecretStr | None) -> str:
    assert value is not None
    return value.get_secret_value()


def config_for(oidc: Provider, token_dir: Path, client_id: str = CLI) -> ProvenaConfig:
    return ProvenaConfig(issuer=oidc.issuer, client_id=client_id, token_dir=token_dir)


async def sign_in(oidc: Provider, config: ProvenaConfig) -> TokenSet:
    """Sign in with the device flow through ``AuthManager.from_config`` (stores the tokens)."""

    async def approve(p: DevicePrompt) -> None:
        await oidc.approve(p.verification_uri_complete)

    async with AuthManager.from_config(config) as auth:
        await auth.login_device(approve)
    stored = await stored_token(oidc, config)
    assert stored is not None and stored.refresh_token is not None
    return stored


async def stored_token(oidc: Provider, config: ProvenaConfig) -> TokenSet | None:
    return await TokenStore(config.resolved_token_dir).load(key_of(oidc, config))


def token_id(token: TokenSet) -> str:
    """How the provider's record names an (opaque) access token."""
    return hashlib.sha256(secret(token.access_token).encode()).hexdigest()[:12]


def key_of(oidc: Provider, config: ProvenaConfig) -> TokenKey:
    key = TokenKey.for_config(config)
    assert key.issuer == oidc.issuer
    return key


async def mark_expired(oidc: Provider, config: ProvenaConfig) -> TokenSet:
    """Make the stored access token look expired to the SDK (its refresh token is untouched)."""
    stored = await stored_token(oidc, config)
    assert stored is not None
    old = TokenSet(
        stored.access_token,
        stored.refresh_token,
        expires_at=1.0,
        scope=stored.scope,
        token_type=stored.token_type,
    )
    await TokenStore(config.resolved_token_dir).save(key_of(oidc, config), old)
    return old


async def device_tokens(oidc: Provider, client_id: str = CLI) -> TokenSet:
    """Tokens straight from ``DeviceCodeFlow`` (no manager, no store)."""

    async def approve(p: DevicePrompt) -> None:
        await oidc.approve(p.verification_uri_complete)

    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        return await DeviceCodeFlow(client_id, DEFAULT_SCOPES, approve).fetch_token(
            http, OIDCDiscovery(oidc.issuer)
        )


async def refresh_with(oidc: Provider, refresh_token: SecretStr | None) -> TokenSet:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        return await RefreshTokenFlow(secret(refresh_token), CLI).fetch_token(
            http, OIDCDiscovery(oidc.issuer)
        )


async def resource_status(oidc: Provider, token: TokenSet) -> int:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        r = await http.get(oidc.resource_url, headers={"Authorization": token.authorization()})
    return r.status_code


async def revoke(oidc: Provider, token: SecretStr | None, client_id: str = CLI) -> None:
    """Revoke a refresh token at the provider (as a user would from another device)."""
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        r = await http.post(
            f"{oidc.issuer}/token/revocation",
            data={
                "token": secret(token),
                "token_type_hint": "refresh_token",
                "client_id": client_id,
            },
        )
    assert r.status_code == 200, r.text


# -- refresh before expiry --------------------------------------------------------------------


@pytest.mark.slow
async def test_refresh_before_expiry_without_a_401(oidc: Provider, tmp_path: Path) -> None:
    """Requests over more than the token's lifetime: refreshed in time, never a 401."""
    config = config_for(oidc, tmp_path, SHORT)
    first = await sign_in(oidc, config)
    oidc.reset()

    statuses: list[int] = []
    auth = AuthManager.from_config(config)
    async with httpx.AsyncClient(verify=SHARED_TLS, auth=auth) as http:
        auth.bind(http)
        started = anyio.current_time()
        while anyio.current_time() - started < SHORT_TTL + 1:
            statuses.append((await http.get(oidc.resource_url)).status_code)
            await anyio.sleep(0.5)

    assert set(statuses) == {200}
    assert set(await oidc.resource_statuses()) == {200}  # the provider never answered 401
    refreshes = await oidc.token_calls(REFRESH, SHORT)
    assert refreshes, "the token outlived its lifetime without a refresh"
    assert [c["status"] for c in refreshes] == [200] * len(refreshes)
    assert all(c["rotated"] for c in refreshes)  # a public client: rotated every time
    last = await stored_token(oidc, config)
    assert last is not None and last.refresh_token != first.refresh_token


async def test_a_fresh_short_lived_token_is_not_refreshed(oidc: Provider, tmp_path: Path) -> None:
    """A token living less than the default 60 s margin is used, not refreshed at once."""
    config = config_for(oidc, tmp_path, SHORT)
    await sign_in(oidc, config)
    oidc.reset()
    auth = AuthManager.from_config(config)
    async with httpx.AsyncClient(verify=SHARED_TLS, auth=auth) as http:
        auth.bind(http)
        statuses = [(await http.get(oidc.resource_url)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert await oidc.token_calls(REFRESH) == []


# -- rotation, reuse and revocation -----------------------------------------------------------


async def test_rotation_and_reuse_detection(oidc: Provider) -> None:
    """A used refresh token is refused, and its reuse revokes the whole family."""
    tokens = await device_tokens(oidc)
    rotated = await refresh_with(oidc, tokens.refresh_token)
    assert rotated.refresh_token is not None
    assert rotated.refresh_token != tokens.refresh_token
    assert rotated.access_token != tokens.access_token
    assert await resource_status(oidc, rotated) == 200

    with pytest.raises(TokenRefreshFailed, match="invalid_grant"):
        await refresh_with(oidc, tokens.refresh_token)  # replayed: the provider detects reuse
    with pytest.raises(TokenRefreshFailed, match="invalid_grant"):
        await refresh_with(oidc, rotated.refresh_token)  # the family is revoked
    assert await resource_status(oidc, rotated) == 401
    answers = [(c["status"], c.get("error")) for c in await oidc.token_calls(REFRESH, CLI)]
    assert answers == [(200, None), (400, "invalid_grant"), (400, "invalid_grant")]


async def test_refused_refresh_carries_the_oauth_error_code(oidc: Provider) -> None:
    tokens = await device_tokens(oidc)
    await refresh_with(oidc, tokens.refresh_token)
    with pytest.raises(AuthError) as caught:
        await refresh_with(oidc, tokens.refresh_token)
    assert getattr(caught.value, "error", None) == "invalid_grant"
    assert secret(tokens.refresh_token) not in str(caught.value)


async def test_logout_revokes_the_refresh_token(oidc: Provider, tmp_path: Path) -> None:
    config = config_for(oidc, tmp_path)
    tokens = await sign_in(oidc, config)
    async with AuthManager.from_config(config) as auth:
        await auth.logout()

    assert await stored_token(oidc, config) is None
    revocations = [e for e in await oidc.events() if e["endpoint"] == "revocation"]
    assert [(e["status"], e["client_id"]) for e in revocations] == [(200, CLI)]
    with pytest.raises(TokenRefreshFailed, match="invalid_grant"):
        await refresh_with(oidc, tokens.refresh_token)
    assert await resource_status(oidc, tokens) == 401  # the grant went with it


async def test_a_revoked_refresh_token_stops_the_manager(oidc: Provider, tmp_path: Path) -> None:
    """Revoked elsewhere: the next request fails with an auth error after one refresh try."""
    config = config_for(oidc, tmp_path)
    tokens = await sign_in(oidc, config)
    auth = AuthManager.from_config(config)
    async with httpx.AsyncClient(verify=SHARED_TLS, auth=auth) as http:
        auth.bind(http)
        assert (await http.get(oidc.resource_url)).status_code == 200
        await revoke(oidc, tokens.refresh_token)
        oidc.reset()
        with pytest.raises(AuthError):
            await http.get(oidc.resource_url)
    assert await oidc.resource_statuses() == [401]  # the revoked access token
    assert [c.get("error") for c in await oidc.token_calls(REFRESH)] == ["invalid_grant"]


async def test_a_revoked_refresh_token_means_login_required(oidc: Provider, tmp_path: Path) -> None:
    config = config_for(oidc, tmp_path)
    tokens = await sign_in(oidc, config)
    await revoke(oidc, tokens.refresh_token)
    await mark_expired(oidc, config)
    oidc.reset()
    auth = AuthManager.from_config(config)
    async with httpx.AsyncClient(verify=SHARED_TLS, auth=auth) as http:
        auth.bind(http)
        with pytest.raises(LoginRequired):
            await http.get(oidc.resource_url)
        assert await stored_token(oidc, config) is None  # the dead token is gone
        with pytest.raises(LoginRequired):
            await http.get(oidc.resource_url)
    # ... and it was sent once, not replayed on every call
    assert len(await oidc.token_calls(REFRESH)) == 1


# -- concurrency --------------------------------------------------------------------------------


async def test_concurrent_requests_refresh_once(oidc: Provider, tmp_path: Path) -> None:
    """20 requests at once with an expired access token: one refresh, all use its result."""
    config = config_for(oidc, tmp_path)
    await sign_in(oidc, config)
    stale = await mark_expired(oidc, config)
    oidc.reset()

    statuses: list[int] = []
    auth = AuthManager.from_config(config)  # a new manager: resumes from the store
    async with httpx.AsyncClient(verify=SHARED_TLS, auth=auth) as http:
        auth.bind(http)

        async def call() -> None:
            statuses.append((await http.get(oidc.resource_url)).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(call)

    assert statuses == [200] * 20
    assert [c["status"] for c in await oidc.token_calls(REFRESH, CLI)] == [200]
    served = [e for e in await oidc.events() if e["endpoint"] == "resource"]
    assert [e["status"] for e in served] == [200] * 20
    (used,) = {e["token_id"] for e in served}  # all with one token: the refreshed one
    refreshed = await stored_token(oidc, config)
    assert refreshed is not None
    assert used == token_id(refreshed) != token_id(stale)


async def test_two_managers_sharing_a_store_refresh_once(oidc: Provider, tmp_path: Path) -> None:
    """Two clients of one user (one store) refresh at the same time: one refresh, both served.

    Without a lock both send the same refresh token; the provider sees the reuse and revokes
    the family, signing the user out.
    """
    config = config_for(oidc, tmp_path)
    await sign_in(oidc, config)
    await mark_expired(oidc, config)
    oidc.reset()
    tokens: list[SecretStr] = []

    async def one_client() -> None:
        async with AuthManager.from_config(config) as auth:
            tokens.append(await auth.get_access_token())

    async with anyio.create_task_group() as tg:
        tg.start_soon(one_client)
        tg.start_soon(one_client)

    assert len(tokens) == 2 and tokens[0] == tokens[1]
    assert [c["status"] for c in await oidc.token_calls(REFRESH)] == [200]


_REFRESHING_PROCESS = """
import sys, time
from pathlib import Path

import anyio

from provena_like._core.config import ProvenaConfig
from provena_like.auth import AuthManager

issuer, client_id, token_dir, sync_dir, name = sys.argv[1:]
config = ProvenaConfig(issuer=issuer, client_id=client_id, token_dir=token_dir)


async def main() -> str:
    async with AuthManager.from_config(config) as auth:
        (Path(sync_dir) / name).touch()
        while not (Path(sync_dir) / "go").exists():  # start together
            time.sleep(0.005)
        token = await auth.get_access_token()
    return token.get_secret_value()


sys.stdout.write(anyio.run(main))
"""


async def test_two_processes_sharing_a_store_refresh_once(oidc: Provider, tmp_path: Path) -> None:
    """Two processes of one user refresh the stored token at the same moment."""
    config = config_for(oidc, tmp_path / "tokens")
    await sign_in(oidc, config)
    await mark_expired(oidc, config)
    oidc.reset()
    sync_dir = tmp_path / "sync"
    sync_dir.mkdir()
    args = [oidc.issuer, CLI, str(config.resolved_token_dir), str(sync_dir)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _REFRESHING_PROCESS, *args, name],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("one", "two")
    ]
    try:
        with anyio.fail_after(120):
            while not all((sync_dir / name).exists() for name in ("one", "two")):
                if any(p.poll() is not None for p in procs):
                    break
                await anyio.sleep(0.01)
        (sync_dir / "go").touch()
        outcomes = [
            await anyio.to_thread.run_sync(lambda p=p: p.communicate(timeout=120)) for p in procs
        ]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    for p, (_, err) in zip(procs, outcomes, strict=True):
        assert p.returncode == 0, err[-2000:]
    (one, _), (two, _) = outcomes
    assert one == two  # the second process used the token the first one refreshed
    assert [c["status"] for c in await oidc.token_calls(REFRESH)] == [200]


# -- resuming from the store ---------------------------------------------------------------------


async def test_resume_from_the_store_without_prompting(oidc: Provider, tmp_path: Path) -> None:
    config = config_for(oidc, tmp_path)
    await sign_in(oidc, config)
    oidc.reset()

    auth = AuthManager.from_config(config, require_token=True)  # a new process, say
    async with httpx.AsyncClient(verify=SHARED_TLS, auth=auth) as http:
        auth.bind(http)
        me = await http.get(oidc.resource_url)
    assert me.status_code == 200
    assert me.json()["sub"] == USER
    events = await oidc.events()
    assert [e["endpoint"] for e in events] == ["resource"]  # no device flow, no refresh


async def test_resume_refreshes_an_expired_stored_token(oidc: Provider, tmp_path: Path) -> None:
    config = config_for(oidc, tmp_path)
    old = await sign_in(oidc, config)
    await mark_expired(oidc, config)
    oidc.reset()

    auth = AuthManager.from_config(config)
    async with httpx.AsyncClient(verify=SHARED_TLS, auth=auth) as http:
        auth.bind(http)
        assert (await http.get(oidc.resource_url)).status_code == 200
    assert [c["status"] for c in await oidc.token_calls(REFRESH, CLI)] == [200]
    assert await oidc.token_calls(DEVICE_GRANT) == []
    new = await stored_token(oidc, config)
    assert new is not None and new.refresh_token != old.refresh_token  # rotation kept
    assert new.expires_at is not None and new.expires_at > 1.0


async def test_device_flow_source_resumes_from_the_store(oidc: Provider, tmp_path: Path) -> None:
    store = TokenStore(tmp_path)
    prompts: list[DevicePrompt] = []

    async def approve(p: DevicePrompt) -> None:
        prompts.append(p)
        await oidc.approve(p.verification_uri_complete)

    def manager() -> AuthManager:
        flow = DeviceCodeFlow(CLI, DEFAULT_SCOPES, approve)
        return AuthManager(
            flow, issuer=oidc.issuer, client_id=CLI, scopes=DEFAULT_SCOPES, store=store
        )

    for _ in range(2):  # two processes, one after the other
        auth = manager()
        async with httpx.AsyncClient(verify=SHARED_TLS, auth=auth) as http:
            auth.bind(http)
            assert (await http.get(oidc.resource_url)).status_code == 200
    assert len(prompts) == 1
    assert len(await oidc.token_calls(DEVICE_GRANT)) == 1
