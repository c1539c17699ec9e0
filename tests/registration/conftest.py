"""Fixtures of the registration tests (``new_user`` and ``client`` come from ``tests.support``)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.support.registration_helpers import Lab, make_lab
from tests.support.users import User


@pytest.fixture
def client_service() -> str:
    return "registry"


@pytest.fixture
async def lab(client: httpx.AsyncClient, new_user: Callable[..., User]) -> Lab:
    """A new lab, its group and a member."""
    return await make_lab(client, new_user)
