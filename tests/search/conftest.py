"""Fixtures of the search tests: fresh users, and HTTP clients for search and registry.

The tests run on SQLite and on PostgreSQL (see :mod:`tests.support.databases`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from tests.support.search_helpers import User


@pytest.fixture
def admin(make_token: Callable[..., str]) -> User:
    """A system administrator."""
    name = f"root-{uuid.uuid4().hex[:10]}"
    return User(name, make_token(name, system_roles=("admin",)))


@pytest.fixture
def client_service() -> str:
    return "search"
