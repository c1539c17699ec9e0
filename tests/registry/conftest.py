"""Helpers for the registry tests: fresh users with tokens and an HTTP client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from registry_helpers import User

from provena_like.testing.server_thread import ServerThread


@pytest.fixture
def new_user(make_token: Callable[..., str]) -> Callable[..., User]:
    """A factory of users that no other test knows: ``new_user(groups=("lab",))``."""

    def make(prefix: str = "user", **kwargs: Any) -> User:
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        return User(name, make_token(name, **kwargs))

    return make


@pytest.fixture
async def client(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the registry service of the session server."""
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=server.url + "/registry", timeout=60, limits=limits) as c:
        yield c
