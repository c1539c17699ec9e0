"""Fixtures of the search tests: fresh users, and HTTP clients for search and registry.

Set ``PROVENA_TEST_DATABASE_URL`` (e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/db``)
and run ``pytest tests/search`` alone to run these tests against that database instead of
the session's SQLite stack.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from search_helpers import User

from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread

_DATABASE_URL = os.environ.get("PROVENA_TEST_DATABASE_URL")

if _DATABASE_URL:

    @pytest.fixture(scope="session")
    async def localstack(anyio_backend: str) -> AsyncIterator[LocalStack]:
        """A stack on the database of ``PROVENA_TEST_DATABASE_URL`` (no object store)."""
        del anyio_backend
        async with LocalStack(s3=False, database_url=_DATABASE_URL) as stack:
            yield stack


@pytest.fixture
def new_user(make_token: Callable[..., str]) -> Callable[..., User]:
    """A factory of users that no other test knows: ``new_user(groups=("lab",))``."""

    def make(prefix: str = "user", **kwargs: Any) -> User:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        return User(name, make_token(name, **kwargs))

    return make


@pytest.fixture
def admin(make_token: Callable[..., str]) -> User:
    """A system administrator."""
    name = f"root-{uuid.uuid4().hex[:10]}"
    return User(name, make_token(name, system_roles=("admin",)))


@pytest.fixture
async def client(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the search service of the session server."""
    async with httpx.AsyncClient(base_url=server.url + "/search", timeout=60) as c:
        yield c


@pytest.fixture
async def registry(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the registry service of the session server."""
    async with httpx.AsyncClient(base_url=server.url + "/registry", timeout=60) as c:
        yield c
