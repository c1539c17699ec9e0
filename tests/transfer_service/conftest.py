"""Fixtures of the transfer service tests (helpers live in ``tests/support/transfer.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from provena_like.testing.server_thread import ServerThread
from tests.support.fixtures import service_client
from tests.support.users import User


@pytest.fixture
def admin(new_user: Callable[..., User]) -> User:
    """A fresh system admin: who registers transfer collections."""
    return new_user("admin", system_roles=("admin",))


@pytest.fixture
async def http(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the session server (paths carry their prefix, e.g. ``/v0.10/``)."""
    async with service_client(server) as client:
        yield client
