"""Fixtures of the review tests: fresh users (reviewers among them), an HTTP client, refs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from review_helpers import Refs, User, make_refs

from provena_like.testing.server_thread import ServerThread


@pytest.fixture(scope="session")
def new_user(make_token: Callable[..., str]) -> Callable[..., User]:
    """A factory of users no other test knows: ``new_user("rob", system_roles=("reviewer",))``."""

    def make(prefix: str = "user", **kwargs: Any) -> User:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        return User(name, make_token(name, **kwargs))

    return make


@pytest.fixture
async def api(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the session server (paths start with the service prefix)."""
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
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
