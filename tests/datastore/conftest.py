"""Fixtures of the datastore tests: fresh users, an HTTP client, registry items to refer to."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from provena_like.testing.localstack import LocalStack
from provena_like.testing.seaweed import SeaweedS3
from provena_like.testing.server_thread import ServerThread
from tests.support.datastore_helpers import Refs, User


@pytest.fixture
def client_service() -> str:
    return "datastore"


@pytest.fixture
def store(localstack: LocalStack) -> SeaweedS3:
    assert localstack.s3 is not None
    return localstack.s3


@pytest.fixture
def bucket(server: ServerThread) -> str:
    name: str = server.settings.s3.bucket
    return name


async def make_refs(registry: httpx.AsyncClient, user: User, *, general: bool = False) -> Refs:
    """An organisation and a person owned by ``user`` (readable by all when ``general``)."""
    extra: dict[str, Any] = {"general": ["metadata-read"]} if general else {}
    r = await registry.post(
        "/items",
        json={"subtype": "organisation", "record": {"name": "Marine Institute"}, **extra},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    org = r.json()["id"]
    person = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}
    r = await registry.post(
        "/items", json={"subtype": "person", "record": person, **extra}, headers=user.headers
    )
    assert r.status_code == 201, r.text
    return Refs(organisation=org, person=r.json()["id"])


@pytest.fixture
async def owner(new_user: Callable[..., User]) -> User:
    return new_user("owner")


@pytest.fixture
async def refs(registry: httpx.AsyncClient, owner: User) -> Refs:
    return await make_refs(registry, owner)
