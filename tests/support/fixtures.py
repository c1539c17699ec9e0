"""Fixtures shared by the service test folders (loaded as a plugin by ``tests/conftest.py``).

* ``new_user``: a factory of users no other test knows, with tokens signed by the server.
* ``client``: an HTTP client for one service of the session server; a folder picks the
  service by overriding ``client_service`` in its ``conftest.py``.
* ``registry``: an HTTP client for the registry service (for tests of other services that
  need registry items).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from provena_like.testing.server_thread import ServerThread
from tests.support.tls import SHARED_TLS
from tests.support.users import User


@asynccontextmanager
async def service_client(
    server: ServerThread, service: str | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for ``service`` of ``server`` (``None``: paths carry the service prefix)."""
    base_url = server.url + (f"/{service}" if service else "")
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(
        verify=SHARED_TLS, base_url=base_url, timeout=60, limits=limits
    ) as client:
        yield client


@pytest.fixture(scope="session")
def new_user(make_token: Callable[..., str]) -> Callable[..., User]:
    """A factory of users that no other test knows: ``new_user("rob", groups=("lab",))``."""

    def make(prefix: str = "user", **kwargs: Any) -> User:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        return User(name, make_token(name, **kwargs))

    return make


@pytest.fixture
def client_service() -> str:
    """The service the ``client`` fixture talks to (override it in a folder's conftest)."""
    raise pytest.UsageError("override the 'client_service' fixture to use 'client'")


@pytest.fixture
async def client(server: ServerThread, client_service: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the ``client_service`` service of the session server."""
    async with service_client(server, client_service) as c:
        yield c


@pytest.fixture
async def registry(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the registry service of the session server."""
    async with service_client(server, "registry") as c:
        yield c
