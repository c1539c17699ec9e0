"""``provena-like login --issuer NAME``: an institution's provider, found through the server.

The institution is npm ``oidc-provider`` with the device flow turned off (``deviceFlow:
false``), so ``login`` (``--flow auto``) must sign in in the browser: authorization code +
PKCE on a loopback redirect. The test plays the browser. The sign-in is kept beside the
server's own one (tokens per server and issuer), later commands use the remembered issuer,
and ``logout`` ends one sign-in or (``--all``) both.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from provena_like._core.config import ProvenaConfig
from provena_like.auth import AuthManager, TokenKey, TokenStore
from provena_like.cli._errors import CliFailure, ExitCode
from provena_like.cli.main import app
from provena_like.cli.session import Flow, _at_issuer, _choose, _graphical_browser_likely
from provena_like.client import ProvenaClient
from provena_like.models.auth import TrustedIssuerInfo, TrustedIssuers
from provena_like.server.settings import TrustedIssuer
from provena_like.testing.server_thread import ServerThread
from tests.support.auth_helpers import device_login
from tests.support.cli_helpers import cli_command, cli_env
from tests.support.cli_runner import CliRunner
from tests.support.institutions import trusting
from tests.support.oidc_support import (
    BROWSER,
    BROWSER_CLIENT,
    Provider,
    ensure_installed,
    node_commands,
    start_provider,
)

pytestmark = pytest.mark.anyio

AUDIENCE = "https://provena-like.test/api"
RUN = uuid.uuid4().hex[:8]
USER = f"bea{RUN}"
PASSWORD = "bea-password-for-tests"


@pytest.fixture(scope="module")
def uni(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """An institution's provider that offers only the browser sign-in."""
    node, npm = node_commands()
    ensure_installed(node, npm)
    config = {
        "users": {USER: PASSWORD},
        "scopes": ["openid", "offline_access", "api:read"],
        "clients": [{"client_id": BROWSER, **BROWSER_CLIENT}],
        "resource": {"indicator": AUDIENCE, "scope": "api:read"},
        "claims": {USER: {"preferred_username": USER}},
        "deviceFlow": False,
    }
    process = start_provider(node, config, tmp_path_factory.mktemp("uni-browser"))
    try:
        yield Provider(process.issuer, process)
    finally:
        process.stop()


runner = CliRunner()


async def cli(*args: str, env: dict[str, str]) -> dict[str, Any]:
    """``provena-like ARGS --json`` (in a thread: it runs its own event loop); its JSON."""
    done = await anyio.to_thread.run_sync(lambda: runner.invoke(app, [*args, "--json"], env=env))
    assert done.exit_code == 0, done.output
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


async def browser_login(uni: Provider, env: dict[str, str], *args: str) -> dict[str, Any]:
    """``provena-like login ARGS --no-browser --json``, with the test as the user's browser."""
    command = cli_command("login", *args, "--no-browser", "--json")
    async with await anyio.open_process(command, env=cli_env(env)) as proc:
        assert proc.stderr is not None and proc.stdout is not None
        seen = b""
        with anyio.fail_after(120):
            while not (link := re.search(rb"(http://127\.0\.0\.1:\d+/auth\?\S+)\s", seen)):
                seen += await proc.stderr.receive()
            landed = await uni.browse(link.group(1).decode(), username=USER, password=PASSWORD)
            out = b"".join([chunk async for chunk in proc.stdout])
            await proc.wait()
    assert landed.status_code == 200, landed.text
    assert proc.returncode == 0, out
    doc: dict[str, Any] = json.loads(out)
    return doc


async def test_cli_signs_in_at_an_institution_by_name_and_keeps_both_sign_ins(
    server: ServerThread, uni: Provider, tmp_path: Path
) -> None:
    tokens = tmp_path / "tokens"
    env = {"PROVENA_BASE_URL": server.url, "PROVENA_TOKEN_DIR": str(tokens)}
    own = ProvenaConfig(base_url=server.url, token_dir=tokens)
    store = TokenStore(tokens)
    # signed in at the server's own issuer already
    await store.save(TokenKey.for_config(own), await device_login(server))
    trusted = TrustedIssuer(issuer=uni.issuer, name="uni", audiences=[AUDIENCE], client_id=BROWSER)
    async with trusting(server, trusted):
        signed_in = await browser_login(uni, env, "--issuer", "uni")
        listed = await cli("login", "--list-issuers", env=env)
        # the SDK uses the CLI's sign-in too (a notebook after `provena-like login`)
        async with ProvenaClient(base_url=server.url, token_dir=tokens) as pv:
            in_python = await pv.auth_client.userinfo()
        at_uni = await cli("whoami", env=env)
        at_server = await cli("whoami", env={**env, "PROVENA_ISSUER": own.resolved_issuer})
        assert len(await store.keys()) == 2  # both sign-ins kept
        out_of_uni = await cli("logout", env=env)
        after = await cli("whoami", env=env)
        out_of_all = await cli("logout", "--all", env=env)

    assert signed_in["flow"] == "browser"  # the provider has no device flow
    assert signed_in["issuer"] == uni.issuer
    assert signed_in["username"].startswith(USER)  # provisioned from the institution's claim
    assert listed["issuers"] == [
        {
            "name": None,
            "issuer": own.resolved_issuer,
            "client_id": None,
            "current": False,
            "embedded": True,
        },
        {
            "name": "uni",
            "issuer": uni.issuer,
            "client_id": BROWSER,
            "current": True,
            "embedded": False,
        },
    ]
    # later commands use the remembered issuer; the server's own sign-in is still there
    assert in_python.sub == signed_in["username"]
    assert (at_uni["issuer"], at_uni["sub"]) == (uni.issuer, signed_in["username"])
    assert (at_server["issuer"], at_server["sub"]) == (own.resolved_issuer, "admin")
    # logging out of the institution goes back to the server's own sign-in
    assert out_of_uni == {"signed_out": True, "issuers": [uni.issuer]}
    assert (after["issuer"], after["sub"]) == (own.resolved_issuer, "admin")
    assert out_of_all == {"signed_out": True, "issuers": [own.resolved_issuer]}
    assert await store.keys() == []
    assert await store.sign_in_for(own.service_url("auth")) is None


PUBLISHED = TrustedIssuers(
    embedded="https://provena.example.org/auth",
    issuers=[
        TrustedIssuerInfo(
            issuer="https://login.uni.example/realms/research",
            name="uni",
            discovery_url="https://login.uni.example/realms/research/.well-known/openid-configuration",
            client_id="provena-cli",
        )
    ],
)


@pytest.mark.parametrize(
    ("wanted", "overrides"),
    [
        (
            "UNI",
            {"issuer": "https://login.uni.example/realms/research", "client_id": "provena-cli"},
        ),
        (
            "https://login.uni.example/realms/research/",
            {"issuer": "https://login.uni.example/realms/research", "client_id": "provena-cli"},
        ),
        ("https://provena.example.org/auth", {"issuer": "https://provena.example.org/auth"}),
    ],
)
def test_an_issuer_is_named_by_url_or_name(wanted: str, overrides: dict[str, str]) -> None:
    assert _at_issuer(ProvenaConfig(), PUBLISHED, wanted) == overrides


def test_an_issuer_the_server_does_not_trust_is_a_usage_error() -> None:
    with pytest.raises(CliFailure) as refused:
        _at_issuer(ProvenaConfig(), PUBLISHED, "elsewhere")
    assert refused.value.code == ExitCode.USAGE
    assert "uni (https://login.uni.example/realms/research)" in refused.value.message
    assert "https://provena.example.org/auth" in refused.value.message


def test_login_without_a_server_exits_unreachable(tmp_path: Path) -> None:
    env = {
        "PROVENA_BASE_URL": "http://127.0.0.1:9",
        "PROVENA_TOKEN_DIR": str(tmp_path),
        "PROVENA_MAX_RETRIES": "0",
    }
    done = runner.invoke(app, ["login", "--list-issuers", "--json"], env=env)
    assert done.exit_code == ExitCode.UNREACHABLE, done.output
    assert "cannot reach the server" in json.loads(done.stdout)["error"]["message"]


async def test_the_flow_follows_what_the_provider_offers(
    uni: Provider, oidc: Provider, tmp_path: Path
) -> None:
    browser_only = AuthManager.from_config(ProvenaConfig(issuer=uni.issuer, token_dir=tmp_path))
    both = AuthManager.from_config(ProvenaConfig(issuer=oidc.issuer, token_dir=tmp_path))
    async with browser_only, both:
        assert await _choose(browser_only, Flow.AUTO) is Flow.BROWSER
        assert await _choose(browser_only, Flow.BROWSER) is Flow.BROWSER
        with pytest.raises(CliFailure) as refused:
            await _choose(browser_only, Flow.DEVICE)
        assert await _choose(both, Flow.AUTO) is Flow.DEVICE
        assert await _choose(both, Flow.BROWSER) is Flow.BROWSER
    assert refused.value.code == ExitCode.USAGE
    assert "does not offer the device sign-in; try --flow browser" in refused.value.message


@pytest.mark.parametrize(
    ("env", "expected"),
    [({}, False), ({"DISPLAY": ":0"}, True), ({"WAYLAND_DISPLAY": "wayland-0"}, True)],
)
def test_no_console_browser_takes_over_the_terminal(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _graphical_browser_likely() is (expected or not sys.platform.startswith("linux"))
