"""Fixtures for the L3 tests: a signed-in researcher and the registry items a record needs."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from provena_like import ProvenaClient
from provena_like.testing.localstack import LocalStack


@pytest.fixture
async def pv(localstack: LocalStack) -> AsyncIterator[ProvenaClient]:
    async with localstack.client() as client:
        yield client


@pytest.fixture
async def refs(pv: ProvenaClient) -> dict[str, str]:
    org = await pv.registry_client.create_item(
        {"subtype": "organisation", "record": {"name": f"Reef Institute {uuid.uuid4().hex[:6]}"}}
    )
    person = await pv.registry_client.create_item(
        {
            "subtype": "person",
            "record": {"first_name": "Ada", "last_name": "Ocean", "email": "ada@example.org"},
        }
    )
    return {"organisation": org.id, "person": person.id}
