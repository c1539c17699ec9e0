"""Fixtures of the transfer client's tests: registered Globus responses stand in for Globus."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from provena_like.clients.transfer import TransferClient
from tests.support.globus_responses import globus_mock

__all__ = ["globus_mock"]

LAB = "6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e"
"""A collection labelled ``lab`` (root ``/data``) in the ``tc`` fixture."""


@pytest.fixture
async def tc(globus_mock: object) -> AsyncIterator[TransferClient]:
    """A client of real Globus (its default URL), fast retries, a ``lab`` label."""
    del globus_mock
    async with TransferClient(
        locations={"lab": (LAB, "/data")}, max_retries=2, max_retry_sleep=0.05
    ) as client:
        yield client
