"""Fixtures of the deletion and check tests: datasets held by an S3 and a POSIX repository.

``lab``, ``registry_admin`` and ``vocabulary`` are the registration tests' fixtures.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like.repositories import Repository
from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread
from tests.registration.conftest import (  # noqa: F401 (fixtures)
    client_service,
    lab,
    registry_admin,
    vocabulary,
)
from tests.support.deletion_helpers import (
    GlobusHeld,
    Replicated,
    held_in_globus,
    opened,
    replicate,
)
from tests.support.registration_helpers import Lab, Vocabulary
from tests.support.users import User


@pytest.fixture
async def pv(localstack: LocalStack, lab: Lab) -> AsyncIterator[ProvenaClient]:  # noqa: F811
    """An SDK client signed in as the lab's member."""
    async with ProvenaClient(localstack.config(access_token=lab.member.token)) as client:
        yield client


@pytest.fixture
async def rep(
    client: httpx.AsyncClient,
    pv: ProvenaClient,
    lab: Lab,  # noqa: F811
    vocabulary: Vocabulary,  # noqa: F811
    registry_admin: User,  # noqa: F811
    tmp_path: Path,
) -> Replicated:
    """Two datasets of a new session, each with its bytes in both repositories."""
    return await replicate(client, pv, lab, vocabulary, registry_admin, tmp_path / "lab")


@pytest.fixture
async def repos(pv: ProvenaClient, rep: Replicated) -> AsyncIterator[dict[str, Repository]]:
    """Both repositories, open (handle → repository)."""
    async with opened(pv, rep) as repositories:
        yield repositories


@pytest.fixture
async def globus(
    client: httpx.AsyncClient,
    server: ServerThread,
    lab: Lab,  # noqa: F811
    vocabulary: Vocabulary,  # noqa: F811
    registry_admin: User,  # noqa: F811
) -> GlobusHeld:
    """A dataset held in a Globus repository of the server's transfer service."""
    return await held_in_globus(client, server, lab, vocabulary, registry_admin)
