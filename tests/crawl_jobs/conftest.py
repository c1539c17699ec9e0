"""What the crawl job tests share: an HTTP client of the server and an admin to set up."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from provena_like.testing.server_thread import ServerThread
from tests.support.fixtures import service_client
from tests.support.users import User


@pytest.fixture
async def http(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with service_client(server) as client:
        yield client


@pytest.fixture
def admin(new_user: Callable[..., User]) -> User:
    return new_user("admin", system_roles=("admin",))
