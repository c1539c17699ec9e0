"""The browser sign-in (authorization code + PKCE on a loopback redirect) against oidc-provider.

The SDK listens on ``127.0.0.1:<free port>``; the test plays the user's browser with httpx:
it opens the authorization URL the SDK hands over, signs in and consents on the provider's
pages, and follows the provider's redirect back to the SDK's listener.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from provena_like._core.config import ProvenaConfig
from provena_like._core.errors import AccessDenied, AuthorizationFlowError, AuthorizationTimeout
from provena_like.auth import (
    AuthManager,
    AuthorizationCodeFlow,
    BrowserPrompt,
    TokenKey,
    TokenStore,
)
from tests.support.oidc_support import BROWSER, USER, Provider
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio


def manager(oidc: Provider, tmp_path: Path) -> tuple[AuthManager, ProvenaConfig]:
    config = ProvenaConfig(issuer=oidc.issuer, client_id=BROWSER, token_dir=tmp_path)
    return AuthManager.from_config(config), config


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_browser_sign_in_with_pkce(oidc: Provider, tmp_path: Path) -> None:
    auth, config = manager(oidc, tmp_path)
    prompts: list[BrowserPrompt] = []
    landed: list[httpx.Response] = []

    async def browser(p: BrowserPrompt) -> None:
        prompts.append(p)
        landed.append(await oidc.browse(p.authorization_url))

    async with httpx.AsyncClient(verify=SHARED_TLS, auth=auth) as http:
        auth.bind(http)
        await auth.login_browser(browser)
        me = await http.get(oidc.resource_url)

    assert me.status_code == 200, me.text
    assert me.json() == {"sub": USER, "client_id": BROWSER, "scope": "openid offline_access"}
    (p,) = prompts
    asked = query(p.authorization_url)
    redirect = urlsplit(p.redirect_uri)
    assert (redirect.scheme, redirect.hostname, redirect.path) == ("http", "127.0.0.1", "/callback")
    assert redirect.port and asked["redirect_uri"] == p.redirect_uri
    assert asked["response_type"] == "code" and asked["client_id"] == BROWSER
    assert asked["code_challenge_method"] == "S256" and len(asked["code_challenge"]) == 43
    assert asked["prompt"] == "consent"  # offline_access needs it (OIDC Core §11)
    assert p.authorization_url.startswith(f"{oidc.issuer}/auth?")
    (page,) = landed
    assert page.status_code == 200 and "signed in" in page.text
    calls = await oidc.token_calls("authorization_code", BROWSER)
    assert [c["status"] for c in calls] == [200]
    stored = await TokenStore(tmp_path).load(TokenKey.for_config(config))
    assert stored is not None and stored.refresh_token is not None
    # the listener is gone: nothing answers on its port any more
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(verify=SHARED_TLS) as late:
            await late.get(p.redirect_uri)


async def test_an_answer_with_another_state_is_refused(oidc: Provider, tmp_path: Path) -> None:
    auth, config = manager(oidc, tmp_path)
    pages: list[httpx.Response] = []

    async def forger(p: BrowserPrompt) -> None:
        # a page in the user's browser sends a code of its own to the listener (CSRF)
        async with httpx.AsyncClient(verify=SHARED_TLS) as http:
            pages.append(await http.get(p.redirect_uri, params={"code": "x", "state": "forged"}))

    with pytest.raises(AuthorizationFlowError, match="state does not match") as refused:
        await auth.login_browser(forger)
    await auth.aclose()
    assert not isinstance(refused.value, AccessDenied)
    (page,) = pages
    assert page.status_code == 400 and "Sign-in failed" in page.text
    assert await oidc.token_calls() == []  # the code was never sent to the provider
    assert await TokenStore(tmp_path).load(TokenKey.for_config(config)) is None


async def test_an_answer_from_another_issuer_is_refused(oidc: Provider, tmp_path: Path) -> None:
    auth, _ = manager(oidc, tmp_path)

    async def mix_up(p: BrowserPrompt) -> None:
        state = query(p.authorization_url)["state"]
        forged = {"code": "x", "state": state, "iss": "https://idp.attacker.example"}
        async with httpx.AsyncClient(verify=SHARED_TLS) as http:
            await http.get(p.redirect_uri, params=forged)

    with pytest.raises(AuthorizationFlowError, match="another issuer"):
        await auth.login_browser(mix_up)
    await auth.aclose()
    assert await oidc.token_calls() == []


async def test_a_denied_sign_in_raises_access_denied(oidc: Provider, tmp_path: Path) -> None:
    auth, _ = manager(oidc, tmp_path)
    pages: list[httpx.Response] = []

    async def deny(p: BrowserPrompt) -> None:
        pages.append(await oidc.browse(p.authorization_url, deny=True))

    with pytest.raises(AccessDenied) as denied:
        await auth.login_browser(deny)
    await auth.aclose()
    assert denied.value.error == "access_denied"
    assert "denied" in str(denied.value)
    (page,) = pages
    assert page.status_code == 400 and "access_denied" in page.text


async def test_nobody_coming_back_times_out(oidc: Provider, tmp_path: Path) -> None:
    auth, _ = manager(oidc, tmp_path)
    prompts: list[BrowserPrompt] = []

    with pytest.raises(AuthorizationTimeout, match="within 0.5 s"):
        await auth.login_browser(prompts.append, timeout=0.5)
    await auth.aclose()
    (p,) = prompts
    assert p.expires_in == 0.5
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(verify=SHARED_TLS) as late:
            await late.get(p.redirect_uri)


async def test_a_manager_on_the_flow_signs_in_once_then_resumes_from_the_store(
    oidc: Provider, tmp_path: Path
) -> None:
    store = TokenStore(tmp_path)
    prompts: list[BrowserPrompt] = []

    async def browser(p: BrowserPrompt) -> None:
        prompts.append(p)
        await oidc.browse(p.authorization_url)

    subjects = []
    for _ in range(2):  # two processes, one after the other
        flow = AuthorizationCodeFlow(BROWSER, ["openid", "offline_access"], browser)
        auth = AuthManager(flow, issuer=oidc.issuer, store=store)
        assert auth.scopes == ("openid", "offline_access")  # the flow's, as for the device flow
        async with httpx.AsyncClient(verify=SHARED_TLS, auth=auth) as http:
            auth.bind(http)
            subjects.append((await http.get(oidc.resource_url)).json()["sub"])
        await auth.aclose()
    assert subjects == [USER, USER]
    assert len(prompts) == 1  # the second one used the stored sign-in
    assert await store.keys() == [TokenKey.of(oidc.issuer, BROWSER, ["openid", "offline_access"])]


async def test_stray_requests_do_not_end_the_sign_in(oidc: Provider, tmp_path: Path) -> None:
    auth, _ = manager(oidc, tmp_path)
    strays: list[int] = []

    async def browser(p: BrowserPrompt) -> None:
        base = p.redirect_uri.rsplit("/", 1)[0]
        async with httpx.AsyncClient(verify=SHARED_TLS) as http:
            strays.append((await http.get(base + "/favicon.ico")).status_code)
            strays.append((await http.get(p.redirect_uri)).status_code)  # no answer in it
        await oidc.browse(p.authorization_url)

    async with httpx.AsyncClient(verify=SHARED_TLS, auth=auth) as http:
        auth.bind(http)
        await auth.login_browser(browser)
        assert (await http.get(oidc.resource_url)).json()["sub"] == USER
    assert strays == [404, 400]


async def test_an_error_of_the_callback_is_raised_as_is(oidc: Provider, tmp_path: Path) -> None:
    auth, _ = manager(oidc, tmp_path)

    def broken(p: BrowserPrompt) -> None:  # noqa: ARG001
        raise RuntimeError("no display")

    with pytest.raises(RuntimeError, match="no display"):
        await auth.login_browser(broken)
    await auth.aclose()
