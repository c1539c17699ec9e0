"""Fixtures of the registry tests (``new_user`` and ``client`` come from ``tests.support``)."""

from __future__ import annotations

import pytest


@pytest.fixture
def client_service() -> str:
    return "registry"
