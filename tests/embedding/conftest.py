"""Fixtures for the embedding tests: two users of the real stack, each with a private dataset."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from provena_like import ProvenaClient
from provena_like.testing.localstack import LocalStack
from tests.support.l3_helpers import make_record
from tests.support.users import User


@dataclass(frozen=True)
class Owner:
    """A user of the stack and the private dataset they minted (nobody else may read it)."""

    user: User
    dataset_id: str


async def _owner(localstack: LocalStack, user: User) -> Owner:
    async with ProvenaClient(localstack.config(access_token=user.token)) as pv:
        registry = pv.registry_client
        org = await registry.create_item(
            {"subtype": "organisation", "record": {"name": f"Lab of {user.name}"}}
        )
        person = await registry.create_item(
            {
                "subtype": "person",
                "record": {"first_name": "Ada", "last_name": user.name, "email": "a@example.org"},
            }
        )
        refs = {"organisation": org.id, "person": person.id}
        ds = await pv.datastore.mint(make_record(refs, name=f"Private {uuid.uuid4().hex[:6]}"))
    return Owner(user, ds.id)


@pytest.fixture
async def alice(localstack: LocalStack, new_user: Callable[..., User]) -> Owner:
    return await _owner(localstack, new_user("alice"))


@pytest.fixture
async def bob(localstack: LocalStack, new_user: Callable[..., User]) -> Owner:
    return await _owner(localstack, new_user("bob"))
