"""Fixtures of the transfer service tests (helpers live in ``tests/support/transfer.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from provena_like.testing.server_thread import ServerThread
from tests.support.fixtures import service_client
from tests.support.tool_envs import tool_env_fixture
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


globus_cli_env = tool_env_fixture("globus-cli.txt", "globus_cli_env")
"""The real globus CLI (globus-cli 3.44.0) in an environment of its own, for the session."""

globus_sdk3_env = tool_env_fixture("globus-sdk-3.txt", "globus_sdk3_env")
"""The newest globus-sdk 3.x in an environment of its own, for the session."""
