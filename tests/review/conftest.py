"""Fixtures of the review tests: fresh users (reviewers among them), an HTTP client, refs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from provena_like.testing.server_thread import ServerThread
from tests.support.fixtures import service_client
from tests.support.review_helpers import Refs, User, make_refs


@pytest.fixture
async def api(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the session server (paths start with the service prefix)."""
    async with service_client(server) as client:
        yield client


@pytest.fixture
def owner(new_user: Callable[..., User]) -> User:
    return new_user("owner")


@pytest.fixture
def reviewer(new_user: Callable[..., User]) -> User:
    return new_user("reviewer", system_roles=("reviewer",))


@pytest.fixture
async def refs(api: httpx.AsyncClient, owner: User) -> Refs:
    return await make_refs(api, owner)
