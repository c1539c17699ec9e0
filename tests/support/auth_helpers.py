"""Helpers of the auth tests: servers with other settings, real sign-ins, call counting."""

from __future__ import annotations

import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from provena_like.auth import DeviceCodeFlow, DevicePrompt, OIDCDiscovery, TokenSet
from provena_like.server.app import create_app
from provena_like.server.settings import PasswordHashing, ServerSettings
from provena_like.testing.device_approval import approve_device_code
from provena_like.testing.server_thread import ServerThread, bind_socket
from provena_like.testing.server_workers import ServerWorkers
from tests.support.tls import SHARED_TLS

CLI = "provena-like-cli"
OFFLINE = ("openid", "offline_access")


ADMIN_PASSWORD = "admin-password-for-tests"  # the same as the session server's

CHEAP_PASSWORD_HASHING = PasswordHashing(time_cost=1, memory_kib=8, parallelism=1)
"""argon2id at its lowest cost, for the test servers (a default hash is 0.1-0.5 s of CPU).

Not for tests that measure what hashing costs (tests/security/test_throttling.py)."""


def _test_settings(
    data_dir: Path, sock: socket.socket, overrides: dict[str, Any]
) -> ServerSettings:
    host, port = sock.getsockname()[:2]
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "public_url": f"http://{host}:{port}",
        "initial_admin_password": ADMIN_PASSWORD,
        "device_poll_interval": 0,
        "password_hashing": CHEAP_PASSWORD_HASHING,
        **overrides,
    }
    return ServerSettings.model_validate(values)


@contextmanager
def running_server(data_dir: Path, **overrides: Any) -> Iterator[ServerThread]:
    """A reference server with some settings changed (its public URL is its real one)."""
    sock = bind_socket()
    srv = ServerThread(create_app(_test_settings(data_dir, sock, overrides)), sock=sock)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@contextmanager
def running_workers(data_dir: Path, workers: int, **overrides: Any) -> Iterator[ServerWorkers]:
    """:func:`running_server` as ``workers`` processes on one socket (``serve --workers``)."""
    sock = bind_socket()
    srv = ServerWorkers(_test_settings(data_dir, sock, overrides), workers=workers, sock=sock)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def admin_password(srv: ServerThread) -> str:
    configured = srv.settings.initial_admin_password
    assert configured is not None
    password: str = configured.get_secret_value()
    return password


def issuer_of(srv: ServerThread) -> str:
    issuer: str = srv.settings.issuer
    return issuer


async def device_login(
    srv: ServerThread,
    username: str = "admin",
    password: str | None = None,
    *,
    scopes: Sequence[str] = OFFLINE,
    client_id: str = CLI,
) -> TokenSet:
    """Sign in through the device flow, approving on the HTML page like a browser."""
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:

        async def prompt(p: DevicePrompt) -> None:
            assert p.verification_uri_complete is not None
            secret = password if password is not None else admin_password(srv)
            await approve_device_code(http, p.verification_uri_complete, username, secret)

        flow = DeviceCodeFlow(client_id, scopes, prompt)
        return await flow.fetch_token(http, OIDCDiscovery(issuer_of(srv)))


def bearer(token: TokenSet | str) -> dict[str, str]:
    value = token if isinstance(token, str) else token.access_token.get_secret_value()
    return {"Authorization": f"Bearer {value}"}


class TokenCalls:
    """An httpx event hook that counts calls to the token endpoint, by grant type."""

    def __init__(self) -> None:
        self.grants: list[str] = []
        self.paths: list[str] = []

    async def __call__(self, request: httpx.Request) -> None:
        self.paths.append(request.url.path)
        if request.url.path.endswith("/token"):
            body = dict(httpx.QueryParams(request.content.decode()))
            self.grants.append(body.get("grant_type", ""))


def forged_token(srv: ServerThread, subject: str = "admin") -> str:
    """A well-formed access token for ``srv`` signed by a key the server doesn't know."""
    import time

    from joserfc import jwt
    from joserfc.jwk import ECKey

    key = ECKey.generate_key("P-256", auto_kid=True)
    now = int(time.time())
    claims = {
        "iss": issuer_of(srv),
        "sub": subject,
        "aud": "provena-like",
        "iat": now,
        "exp": now + 3600,
        "scope": "openid",
    }
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)
