"""Fixtures of the Patcher tests: a lab member's client and a bench of two repositories."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like.repositories import OpenRepositories
from provena_like.testing.localstack import LocalStack
from tests.support.patcher_helpers import Bench, make_bench
from tests.support.registration_helpers import Lab, Vocabulary, make_lab, make_vocabulary
from tests.support.users import User


@pytest.fixture
def client_service() -> str:
    return "registry"


@pytest.fixture
def registry_admin(new_user: Callable[..., User]) -> User:
    """A registry admin: creates the repositories and grants their data roles."""
    return new_user("regadmin", system_roles=("admin",))


@pytest.fixture
async def lab(client: httpx.AsyncClient, new_user: Callable[..., User]) -> Lab:
    return await make_lab(client, new_user)


@pytest.fixture
async def vocabulary(client: httpx.AsyncClient, registry_admin: User) -> Vocabulary:
    return await make_vocabulary(client, registry_admin)


@pytest.fixture
async def bench(
    client: httpx.AsyncClient,
    registry_admin: User,
    lab: Lab,
    vocabulary: Vocabulary,
    tmp_path: Path,
) -> Bench:
    return await make_bench(client, registry_admin, lab, vocabulary, tmp_path)


@pytest.fixture
async def pv(localstack: LocalStack, lab: Lab) -> AsyncIterator[ProvenaClient]:
    """An SDK client signed in as the lab's member."""
    async with ProvenaClient(localstack.config(access_token=lab.member.token)) as client:
        yield client


@pytest.fixture
async def repos(pv: ProvenaClient, bench: Bench) -> AsyncIterator[OpenRepositories]:
    """The bench's two repositories, open for writing as the lab's member."""
    async with await bench.resolver(pv).open([bench.s3, bench.posix], access="write") as opened:
        yield opened
