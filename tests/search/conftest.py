"""Fixtures of the search tests: fresh users, and HTTP clients for search and registry.

Set ``PROVENA_TEST_DATABASE_URL`` (e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/db``)
and run ``pytest tests/search`` alone to run these tests against that database instead of
the session's SQLite stack.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from tests.support.databases import TEST_DATABASE_URL
from tests.support.search_helpers import User

if TEST_DATABASE_URL:
    from tests.support.databases import localstack_on_test_database  # noqa: F401


@pytest.fixture
def admin(make_token: Callable[..., str]) -> User:
    """A system administrator."""
    name = f"root-{uuid.uuid4().hex[:10]}"
    return User(name, make_token(name, system_roles=("admin",)))


@pytest.fixture
def client_service() -> str:
    return "search"
