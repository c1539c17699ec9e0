"""The repositories under contract: S3 on a dataset's prefix from the datastore (the session's
LocalStack, real SeaweedFS), POSIX in a temp directory, and Globus (the session server's
transfer service) on a local collection and on a dataset's S3 collection. Each test gets a
fresh root."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from provena_like import ProvenaClient
from provena_like.models.datastore import ScopedCredentials
from provena_like.repositories import PosixRepository, Repository, S3Repository
from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread
from tests.support.globus_repository import GlobusPlace, globus_place, make_users, new_repository
from tests.support.l3_helpers import make_record
from tests.support.storage_helpers import admin_client

MiB = 1024 * 1024


@pytest.fixture(scope="module")
async def pv(localstack: LocalStack) -> AsyncIterator[ProvenaClient]:
    async with localstack.client() as client:
        yield client


@pytest.fixture(scope="module")
async def dataset_id(pv: ProvenaClient) -> str:
    """A dataset of the datastore whose prefix holds the S3 repositories of this module."""
    org = await pv.registry_client.create_item(
        {"subtype": "organisation", "record": {"name": f"Repo Lab {uuid.uuid4().hex[:6]}"}}
    )
    person = await pv.registry_client.create_item(
        {
            "subtype": "person",
            "record": {"first_name": "Ada", "last_name": "Disk", "email": "ada@example.org"},
        }
    )
    minted = await pv.datastore.mint(
        make_record({"organisation": org.id, "person": person.id}, name="Repository contract")
    )
    return minted.id


@pytest.fixture
async def scoped(pv: ProvenaClient, dataset_id: str) -> ScopedCredentials:
    return await pv.datastore.credentials(dataset_id, "write")


@pytest.fixture
def s3_admin(localstack: LocalStack) -> Any:
    """An admin S3 client, to change stored objects behind a repository's back."""
    assert localstack.s3 is not None
    client = admin_client(localstack.s3)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
async def globus_places(
    server: ServerThread, make_token: Callable[..., str]
) -> AsyncIterator[dict[str, GlobusPlace]]:
    """A user's transfer client and local endpoint, with a local destination collection
    (``"globus-local"``) and the user's dataset, an S3 collection (``"globus-s3"``)."""
    users = make_users(make_token)
    async with (
        globus_place(server, *users, "local") as local,
        globus_place(server, *users, "s3") as s3,
    ):
        yield {"globus-local": local, "globus-s3": s3}


@pytest.fixture
def globus_local(globus_places: dict[str, GlobusPlace]) -> GlobusPlace:
    """The places of a repository on a local collection."""
    return globus_places["globus-local"]


@pytest.fixture
def globus_s3(globus_places: dict[str, GlobusPlace]) -> GlobusPlace:
    """The places of a repository on an S3 collection (a dataset)."""
    return globus_places["globus-s3"]


@pytest.fixture(params=["s3", "posix", "globus-local", "globus-s3"])
async def repo(
    request: pytest.FixtureRequest,
    pv: ProvenaClient,
    dataset_id: str,
    scoped: ScopedCredentials,
    tmp_path: Path,
    globus_places: dict[str, GlobusPlace],
) -> AsyncIterator[Repository]:
    """A fresh, open repository; small parts/chunks so that a 12 MiB put has several steps."""
    repository: Repository
    if request.param.startswith("globus-"):
        repository = new_repository(globus_places[request.param], chunk_size=1 * MiB)
    elif request.param == "s3":
        # under the dataset's prefix, in a folder of its own (not the dataset root, which
        # holds metadata.json): the root's prefix below the credentials' is mapped too
        root = f"s3://{scoped.bucket}/{scoped.prefix}repo-{uuid.uuid4().hex[:8]}/"
        source = pv.datastore.credentials_cache.source(dataset_id, "write")
        repository = S3Repository(
            root, source, name="primary", multipart_threshold=5 * MiB, part_size=5 * MiB
        )
    else:
        repository = PosixRepository(tmp_path / "repo", name="lab-server", chunk_size=1 * MiB)
    async with repository:
        yield repository
