"""Fixtures of the auth tests."""

from __future__ import annotations

import anyio
import pytest

from provena_like.testing.server_thread import ServerThread
from tests.support.auth_helpers import device_login


@pytest.fixture(scope="session")
def admin_token(server: ServerThread) -> str:
    """An access token of the shared server's ``admin`` (obtained through the device flow)."""
    tokens = anyio.run(device_login, server)
    return tokens.access_token.get_secret_value()
