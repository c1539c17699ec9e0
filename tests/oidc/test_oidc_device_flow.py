"""The SDK's discovery and device flow against an independent, certified OpenID provider.

The provider is npm ``oidc-provider`` (see ``provider/server.mjs``); the SDK runs with its
defaults (default client id and scopes, default polling, ``AuthManager.from_config``).
"""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
import pytest

from provena_like._core.config import ProvenaConfig
from provena_like._core.errors import AccessDenied, DeviceCodeExpired
from provena_like.auth import (
    AuthManager,
    DeviceCodeFlow,
    DevicePrompt,
    OIDCDiscovery,
    TokenKey,
    TokenStore,
)
from tests.support.oidc_support import (
    CLI,
    DEVICE_CODE_TTL,
    DEVICE_GRANT,
    DEVICE_INTERVAL,
    EXPIRING,
    PACED,
    SLOW,
    USER,
    Provider,
)
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio

DEFAULT_SCOPES = ProvenaConfig().scopes


async def test_discovery(oidc: Provider) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        discovery = OIDCDiscovery(oidc.issuer + "/")
        config = await discovery.get(http)
        again = await discovery.get(http)
    assert again is config
    assert config.issuer == oidc.issuer
    assert config.token_endpoint == f"{oidc.issuer}/token"
    assert config.device_authorization_endpoint == f"{oidc.issuer}/device/auth"
    assert config.revocation_endpoint == f"{oidc.issuer}/token/revocation"


async def test_device_sign_in_with_the_defaults(oidc: Provider, tmp_path: Path) -> None:
    config = ProvenaConfig(issuer=oidc.issuer, token_dir=tmp_path)
    assert config.client_id == CLI
    prompts: list[DevicePrompt] = []

    async def prompt(p: DevicePrompt) -> None:
        prompts.append(p)
        await oidc.approve(p.verification_uri_complete)

    auth = AuthManager.from_config(config)
    async with httpx.AsyncClient(verify=SHARED_TLS, auth=auth) as http:
        auth.bind(http)
        await auth.login_device(prompt)
        me = await http.get(oidc.resource_url)

    assert me.status_code == 200, me.text
    assert me.json()["sub"] == USER
    assert me.json()["client_id"] == CLI
    (p,) = prompts
    assert p.verification_uri == f"{oidc.issuer}/device"
    assert p.verification_uri_complete == f"{p.verification_uri}?user_code={p.user_code}"
    assert p.expires_in == 60
    # approved before the first poll, which came after the interval: no slow_down
    polls = await oidc.token_calls(DEVICE_GRANT, CLI)
    assert [c["status"] for c in polls] == [200]
    stored = await TokenStore(tmp_path).load(TokenKey.for_config(config))
    assert stored is not None
    assert stored.refresh_token is not None  # offline_access, one of the default scopes
    assert stored.scope is not None and "offline_access" in stored.scope.split()


async def test_polls_at_the_interval_until_approved(oidc: Provider) -> None:
    """The user approves a few seconds later; the SDK polls, never faster than the interval."""
    approve_after = 1.5
    async with httpx.AsyncClient(verify=SHARED_TLS) as http, anyio.create_task_group() as tg:

        async def approve_later(uri: str | None) -> None:
            await anyio.sleep(approve_after)
            await oidc.approve(uri)

        def prompt(p: DevicePrompt) -> None:  # a plain (sync) callback works too
            tg.start_soon(approve_later, p.verification_uri_complete)

        flow = DeviceCodeFlow(PACED, DEFAULT_SCOPES, prompt)
        tokens = await flow.fetch_token(http, OIDCDiscovery(oidc.issuer))

    assert tokens.refresh_token is not None
    polls = await oidc.token_calls(DEVICE_GRANT, PACED)
    answers = [c.get("error") or c["status"] for c in polls]
    assert answers[-1] == 200
    assert len(answers) >= 2
    assert set(answers[:-1]) == {"authorization_pending"}  # the provider saw no slow_down
    gaps = [b["at"] - a["at"] for a, b in zip(polls, polls[1:], strict=False)]
    assert min(gaps) >= DEVICE_INTERVAL - 0.05


@pytest.mark.slow
async def test_slow_down_makes_the_sdk_poll_5_s_slower(oidc: Provider) -> None:
    """The provider answers the first poll ``slow_down``; the SDK waits interval (0) + 5 s."""

    async def prompt(p: DevicePrompt) -> None:
        await oidc.approve(p.verification_uri_complete)

    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        flow = DeviceCodeFlow(SLOW, DEFAULT_SCOPES, prompt)
        tokens = await flow.fetch_token(http, OIDCDiscovery(oidc.issuer))

    assert tokens.access_token.get_secret_value()
    polls = await oidc.token_calls(DEVICE_GRANT, SLOW)
    # A second poll sooner than interval + 5 s would have been answered slow_down again.
    assert [c.get("error") for c in polls] == ["slow_down", None]
    assert [c["status"] for c in polls] == [400, 200]
    assert polls[1]["at"] - polls[0]["at"] >= 0 + 5 - 0.05


async def test_denied_sign_in_raises_access_denied(oidc: Provider) -> None:
    async def prompt(p: DevicePrompt) -> None:
        await oidc.deny(p.verification_uri_complete)

    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        flow = DeviceCodeFlow(CLI, DEFAULT_SCOPES, prompt)
        with pytest.raises(AccessDenied):
            await flow.fetch_token(http, OIDCDiscovery(oidc.issuer))

    polls = await oidc.token_calls(DEVICE_GRANT, CLI)
    assert [c.get("error") for c in polls] == ["access_denied"]


async def test_expired_device_code_raises_device_code_expired(oidc: Provider) -> None:
    prompts: list[DevicePrompt] = []
    started = anyio.current_time()
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        flow = DeviceCodeFlow(EXPIRING, DEFAULT_SCOPES, prompts.append)  # nobody approves
        with pytest.raises(DeviceCodeExpired):
            await flow.fetch_token(http, OIDCDiscovery(oidc.issuer))
    elapsed = anyio.current_time() - started

    (p,) = prompts
    assert p.expires_in == DEVICE_CODE_TTL
    polls = await oidc.token_calls(DEVICE_GRANT, EXPIRING)
    assert [c.get("error") for c in polls] == ["expired_token"]  # the provider's answer
    assert elapsed < 30
