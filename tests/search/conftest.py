"""Fixtures of the search tests: fresh users, and HTTP clients for search and registry.

Set ``PROVENA_TEST_DATABASE_URL`` (e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/db``)
and run ``pytest tests/search`` alone to run these tests against that database instead of
the session's SQLite stack.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable

import pytest

from provena_like.testing.localstack import LocalStack
from tests.support.search_helpers import User

_DATABASE_URL = os.environ.get("PROVENA_TEST_DATABASE_URL")

if _DATABASE_URL:

    @pytest.fixture(scope="session")
    async def localstack(anyio_backend: str) -> AsyncIterator[LocalStack]:
        """A stack on the database of ``PROVENA_TEST_DATABASE_URL`` (no object store)."""
        del anyio_backend
        async with LocalStack(s3=False, database_url=_DATABASE_URL) as stack:
            yield stack


@pytest.fixture
def admin(make_token: Callable[..., str]) -> User:
    """A system administrator."""
    name = f"root-{uuid.uuid4().hex[:10]}"
    return User(name, make_token(name, system_roles=("admin",)))


@pytest.fixture
def client_service() -> str:
    return "search"
