"""The device flow (RFC 8628) end to end: SDK flow ↔ server, approved on the HTML page."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import httpx
import pytest

from provena_like._core.errors import AccessDenied, DeviceCodeExpired, DeviceFlowError
from provena_like.auth import DeviceCodeFlow, DevicePrompt, OIDCDiscovery
from provena_like.models.auth import DEVICE_CODE_GRANT
from provena_like.testing.device_approval import approve_device_code
from provena_like.testing.server_thread import ServerThread
from tests.support.auth_helpers import (
    CLI,
    OFFLINE,
    admin_password,
    bearer,
    device_login,
    issuer_of,
    running_server,
)
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio


async def start(
    http: httpx.AsyncClient, srv: ServerThread, scope: str = "openid"
) -> dict[str, str]:
    r = await http.post(
        f"{issuer_of(srv)}/device_authorization", data={"client_id": CLI, "scope": scope}
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    body: dict[str, str] = r.json()
    return body


async def poll(http: httpx.AsyncClient, srv: ServerThread, device_code: str) -> httpx.Response:
    data = {"grant_type": DEVICE_CODE_GRANT, "device_code": device_code, "client_id": CLI}
    return await http.post(f"{issuer_of(srv)}/token", data=data)


async def test_device_flow_end_to_end(server: ServerThread) -> None:
    prompts: list[DevicePrompt] = []
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:

        async def prompt(p: DevicePrompt) -> None:
            prompts.append(p)
            assert p.verification_uri_complete is not None
            await approve_device_code(
                http, p.verification_uri_complete, "admin", admin_password(server)
            )

        flow = DeviceCodeFlow(CLI, OFFLINE, prompt)
        tokens = await flow.fetch_token(http, OIDCDiscovery(issuer_of(server)))
        me = await http.get(f"{issuer_of(server)}/userinfo", headers=bearer(tokens))
    (p,) = prompts
    assert re.fullmatch(r"[A-HJ-NP-Z2-9]{4}-[A-HJ-NP-Z2-9]{4}", p.user_code)
    assert p.verification_uri == f"{issuer_of(server)}/device"
    assert p.verification_uri_complete == f"{p.verification_uri}?user_code={p.user_code}"
    assert p.expires_in == 600
    assert tokens.refresh_token is not None  # offline_access was asked for
    assert tokens.scope == "openid offline_access"
    assert tokens.expires_at is not None and tokens.expires_at > time.time() + 800
    assert me.status_code == 200
    assert me.json()["sub"] == "admin"
    assert me.json()["roles"] == ["admin"]
    assert me.json()["client_id"] == CLI


async def test_without_offline_access_there_is_no_refresh_token(server: ServerThread) -> None:
    tokens = await device_login(server, scopes=["openid"])
    assert tokens.refresh_token is None
    assert tokens.scope == "openid"


async def test_deny_raises_access_denied(server: ServerThread) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:

        async def prompt(p: DevicePrompt) -> None:
            assert p.verification_uri_complete is not None
            await approve_device_code(
                http, p.verification_uri_complete, "admin", admin_password(server), approve=False
            )

        flow = DeviceCodeFlow(CLI, OFFLINE, prompt)
        with pytest.raises(AccessDenied):
            await flow.fetch_token(http, OIDCDiscovery(issuer_of(server)))


async def test_code_is_single_use_and_user_code_is_forgiving(server: ServerThread) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        auth = await start(http, server)
        assert (await poll(http, server, auth["device_code"])).json()["error"] == (
            "authorization_pending"
        )
        # lower case, no dash: the page still finds the code
        sloppy = auth["user_code"].replace("-", "").lower()
        url = f"{auth['verification_uri']}?user_code={sloppy}"
        await approve_device_code(http, url, "admin", admin_password(server))
        first = await poll(http, server, auth["device_code"])
        second = await poll(http, server, auth["device_code"])
        page = await http.get(auth["verification_uri_complete"])
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-store"
    assert second.status_code == 400
    assert second.json()["error"] == "invalid_grant"
    assert page.status_code == 404  # no pending code by that name
    assert "already used" in page.text


async def test_wrong_password_shows_the_form_again(server: ServerThread) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        auth = await start(http, server)
        with pytest.raises(DeviceFlowError, match="401: Wrong username or password"):
            await approve_device_code(http, auth["verification_uri_complete"], "admin", "nope-nope")
        with pytest.raises(DeviceFlowError, match="401"):
            await approve_device_code(http, auth["verification_uri_complete"], "nobody", "x" * 9)
        assert (await poll(http, server, auth["device_code"])).json()["error"] == (
            "authorization_pending"
        )
        await approve_device_code(
            http, auth["verification_uri_complete"], "admin", admin_password(server)
        )
        assert (await poll(http, server, auth["device_code"])).status_code == 200


async def test_unknown_code_page(server: ServerThread) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        r = await http.get(f"{issuer_of(server)}/device", params={"user_code": "ZZZZ-ZZZZ"})
        empty = await http.get(f"{issuer_of(server)}/device")
    assert r.status_code == 404
    assert "not known" in r.text
    assert empty.status_code == 200
    assert 'name="user_code"' in empty.text


async def test_approval_form_resists_csrf(server: ServerThread) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        auth = await start(http, server)
        other = await start(http, server)
        page = await http.get(auth["verification_uri_complete"])
        cookie = page.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        assert page.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        token = re.search(r'name="form_token" value="([0-9a-f]+)"', page.text)
        assert token is not None
        nonce = page.cookies["pl_device_form"]
        form = {
            "form_token": token.group(1),
            "user_code": auth["user_code"],
            "username": "admin",
            "password": admin_password(server),
            "action": "approve",
        }
        url = f"{issuer_of(server)}/device"
        # a cross-site POST: no cookie
        no_cookie = await http.post(url, data=form, headers={"Cookie": "x=y"})
        # the token can't be moved to another user code
        moved = await http.post(
            url,
            data={**form, "user_code": other["user_code"]},
            headers={"Cookie": f"pl_device_form={nonce}"},
        )
        pending = await poll(http, server, auth["device_code"])
        other_pending = await poll(http, server, other["device_code"])
        ok = await http.post(url, data=form, headers={"Cookie": f"pl_device_form={nonce}"})
    assert no_cookie.status_code == 403
    assert moved.status_code == 403
    assert pending.json()["error"] == "authorization_pending"
    assert other_pending.json()["error"] == "authorization_pending"
    assert ok.status_code == 200, ok.text


async def test_page_escapes_everything(server: ServerThread, admin_token: str) -> None:
    evil = '<script>alert("x")</script>'
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        r = await http.post(
            f"{issuer_of(server)}/clients",
            json={
                "client_id": "evil-name-client",
                "name": evil,
                "confidential": False,
                "grant_types": [DEVICE_CODE_GRANT],
            },
            headers=bearer(admin_token),
        )
        assert r.status_code == 201, r.text
        auth = (
            await http.post(
                f"{issuer_of(server)}/device_authorization", data={"client_id": "evil-name-client"}
            )
        ).json()
        page = await http.get(auth["verification_uri_complete"])
        bad = await http.get(f"{issuer_of(server)}/device", params={"user_code": evil})
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "&lt;script&gt;" in page.text
    assert "<script>" not in bad.text


async def test_unknown_scope_and_client(server: ServerThread) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        bad_scope = await http.post(
            f"{issuer_of(server)}/device_authorization", data={"client_id": CLI, "scope": "root"}
        )
        bad_client = await http.post(
            f"{issuer_of(server)}/device_authorization", data={"client_id": "no-such-client"}
        )
        json_body = await http.post(
            f"{issuer_of(server)}/device_authorization", json={"client_id": CLI}
        )
    assert bad_scope.status_code == 400
    assert bad_scope.json()["error"] == "invalid_scope"
    assert bad_client.status_code == 401
    assert bad_client.json()["error"] == "invalid_client"
    assert json_body.status_code == 400
    assert json_body.json()["error"] == "invalid_request"


# ------------------------------------------------------------------ timing: own servers


@pytest.fixture(scope="module")
def short_code_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with running_server(tmp_path_factory.mktemp("short-code"), device_code_ttl=1) as srv:
        yield srv


@pytest.fixture(scope="module")
def slow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    with running_server(tmp_path_factory.mktemp("slow"), device_poll_interval=1) as srv:
        yield srv


async def test_expired_code_raises_device_code_expired(short_code_server: ServerThread) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        raw = await start(http, short_code_server)
        flow = DeviceCodeFlow(CLI, OFFLINE, lambda p: None)
        started = time.monotonic()
        with pytest.raises(DeviceCodeExpired):
            await flow.fetch_token(http, OIDCDiscovery(issuer_of(short_code_server)))
        assert time.monotonic() - started < 5
        expired = await poll(http, short_code_server, raw["device_code"])
        page = await http.get(raw["verification_uri_complete"])
    assert expired.json()["error"] == "expired_token"
    assert page.status_code == 404
    assert "expired" in page.text


async def test_server_slow_down_grows_interval(slow_server: ServerThread) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        auth = await start(http, slow_server)
        assert auth["interval"] == 1
        first = await poll(http, slow_server, auth["device_code"])
        second = await poll(http, slow_server, auth["device_code"])
        third = await poll(http, slow_server, auth["device_code"])
    assert first.json()["error"] == "authorization_pending"
    assert second.json()["error"] == "slow_down"
    assert "6 s" in second.json()["error_description"]
    assert third.json()["error"] == "slow_down"
    assert "11 s" in third.json()["error_description"]


async def test_sdk_honours_slow_down(slow_server: ServerThread) -> None:
    """An extra poll just before the SDK's first one provokes slow_down; the SDK's next wait
    is then the announced interval + 5 s (the waits are recorded, not slept)."""
    device_code: list[str] = []
    verification: list[str] = []
    answers: list[str] = []
    waits: list[float] = []
    password = admin_password(slow_server)
    async with httpx.AsyncClient(verify=SHARED_TLS) as spy:

        async def on_request(request: httpx.Request) -> None:
            if request.url.path.endswith("/token") and not answers:
                await poll(spy, slow_server, device_code[0])  # jump the queue once

        async def on_response(response: httpx.Response) -> None:
            await response.aread()
            if response.url.path.endswith("/device_authorization"):
                device_code.append(response.json()["device_code"])
            elif response.url.path.endswith("/token"):
                answers.append(response.json().get("error", "tokens"))
                if len(answers) == 1:  # the user approves after the first poll
                    await approve_device_code(spy, verification[0], "admin", password)

        async def fake_sleep(seconds: float) -> None:
            waits.append(seconds)

        def prompt(p: DevicePrompt) -> None:
            assert p.verification_uri_complete is not None
            verification.append(p.verification_uri_complete)

        hooks = {"request": [on_request], "response": [on_response]}
        async with httpx.AsyncClient(verify=SHARED_TLS, event_hooks=hooks) as http:
            flow = DeviceCodeFlow(CLI, OFFLINE, prompt, sleep=fake_sleep)
            tokens = await flow.fetch_token(http, OIDCDiscovery(issuer_of(slow_server)))
    assert tokens.access_token.get_secret_value()
    assert answers == ["slow_down", "tokens"]
    assert waits == [1.0, 6.0]
