"""No token, secret or password in logs (DEBUG included), reprs or error messages."""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from provena_like._core.config import ProvenaConfig
from provena_like._core.errors import TokenRefreshFailed
from provena_like.auth import (
    AuthManager,
    ClientCredentials,
    DeviceCodeFlow,
    DevicePrompt,
    OIDCDiscovery,
    RefreshTokenFlow,
    StaticToken,
    TokenKey,
    TokenStore,
)
from provena_like.testing.device_approval import approve_device_code
from provena_like.testing.server_thread import ServerThread
from tests.support.auth_helpers import CLI, OFFLINE, admin_password, bearer, issuer_of
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio


class SecretSpy:
    """Collects every secret that crosses the wire (request and response bodies)."""

    def __init__(self) -> None:
        self.secrets: set[str] = set()

    async def on_response(self, response: httpx.Response) -> None:
        await response.aread()
        if response.headers.get("content-type", "").startswith("application/json"):
            body = response.json()
            if isinstance(body, dict):
                for name in ("access_token", "refresh_token", "device_code", "client_secret"):
                    if isinstance(body.get(name), str):
                        self.secrets.add(body[name])
        form = dict(httpx.QueryParams(response.request.content.decode(errors="ignore")))
        for name in ("refresh_token", "device_code", "client_secret", "password", "token"):
            if form.get(name):
                self.secrets.add(form[name])
        header = response.request.headers.get("authorization")
        if header:
            self.secrets.add(header.partition(" ")[2])


async def test_no_secret_in_logs_or_reprs(
    server: ServerThread, admin_token: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spy = SecretSpy()
    password = admin_password(server)
    spy.secrets.update({password, admin_token})
    config = ProvenaConfig(base_url=server.url, token_dir=tmp_path / "tokens")
    caplog.set_level(logging.DEBUG)
    reprs: list[str] = [repr(config), str(config)]
    errors: list[str] = []
    async with httpx.AsyncClient(
        verify=SHARED_TLS, event_hooks={"response": [spy.on_response]}
    ) as http:

        async def prompt(p: DevicePrompt) -> None:
            assert p.verification_uri_complete is not None
            await approve_device_code(http, p.verification_uri_complete, "admin", password)

        # device flow + store, then a forced refresh (the stored token made expired), then logout
        login = AuthManager.from_config(config)
        login.bind(http)
        await login.login_device(prompt)
        await login.aclose()
        store = TokenStore(config.resolved_token_dir)
        key = TokenKey.for_config(config)
        signed_in = await store.load(key)
        assert signed_in is not None
        await store.save(key, dataclasses.replace(signed_in, expires_at=time.time() - 1))
        manager = AuthManager.from_config(config)
        manager.bind(http)
        token = await manager.get_access_token()
        reprs += [repr(manager), repr(manager.store), repr(token)]
        stored = await store.load(key)
        assert stored is not None and stored.refresh_token is not None
        assert stored.refresh_token != signed_in.refresh_token  # it was refreshed
        reprs += [repr(stored), str(stored)]
        await manager.logout()

        # a refused refresh (the token was revoked by logout)
        refresh = RefreshTokenFlow(stored.refresh_token, CLI)
        reprs.append(repr(refresh))
        try:
            await refresh.fetch_token(http, OIDCDiscovery(issuer_of(server)))
        except TokenRefreshFailed as err:
            errors.append(str(err))

        # client credentials with a fresh secret
        client_id = f"redact-{uuid.uuid4().hex[:6]}"
        created = await http.post(
            f"{issuer_of(server)}/clients",
            json={"client_id": client_id},
            headers=bearer(admin_token),
        )
        secret = created.json()["client_secret"]
        cc_config = ProvenaConfig(base_url=server.url, client_id=client_id, client_secret=secret)
        cc = AuthManager.from_config(cc_config)
        cc.bind(http)
        await cc.get_access_token()
        reprs += [repr(cc), repr(cc_config), str(cc_config), repr(cc.source)]
        flows = [
            ClientCredentials(client_id, secret),
            StaticToken(admin_token),
            DeviceCodeFlow(CLI, OFFLINE, prompt, client_secret=SecretStr(secret)),
            AuthManager(StaticToken(admin_token)),
            ProvenaConfig(access_token=admin_token),
        ]
        reprs += [repr(f) for f in flows]
        await manager.aclose()
        await cc.aclose()

    assert len(spy.secrets) >= 8, "the spy should have seen the secrets it checks for"
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert any(r.name.startswith("provena_like.auth") for r in caplog.records)
    assert errors and "invalid_grant" in errors[0]
    for value in spy.secrets:
        assert value not in logged, "a secret was logged"
        for text in reprs + errors:
            assert value not in text, f"a secret is in {text!r}"
