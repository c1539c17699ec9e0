"""Fixtures of the registration tests (``new_user`` and ``client`` come from ``tests.support``).

Set ``PROVENA_TEST_DATABASE_URL`` and run ``pytest tests/registration`` alone to run these
tests against that database (e.g. PostgreSQL) instead of the session's SQLite stack.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.support.databases import TEST_DATABASE_URL
from tests.support.registration_helpers import Lab, Vocabulary, make_lab, make_vocabulary
from tests.support.users import User

if TEST_DATABASE_URL:
    from tests.support.databases import localstack_on_test_database  # noqa: F401


@pytest.fixture
def client_service() -> str:
    return "registry"


@pytest.fixture
async def lab(client: httpx.AsyncClient, new_user: Callable[..., User]) -> Lab:
    """A new lab, its group and a member."""
    return await make_lab(client, new_user)


@pytest.fixture
def registry_admin(new_user: Callable[..., User]) -> User:
    """A registry admin (system role ``admin``): writes the shared vocabulary."""
    return new_user("regadmin", system_roles=("admin",))


@pytest.fixture
async def vocabulary(client: httpx.AsyncClient, registry_admin: User) -> Vocabulary:
    """Dataset types, a data format, a repository and tags no other test uses."""
    return await make_vocabulary(client, registry_admin)
