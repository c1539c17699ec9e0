"""Helpers of the deletion and check tests: datasets replicated in an S3 and a POSIX repository.

The S3 repository's root is in the reference server's own bucket (the server HEADs its
objects itself) and is opened with the repository's own scoped credentials; the POSIX one
is the vocabulary's repository item, opened on a temp directory.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
import httpx

from provena_like import ProvenaClient
from provena_like.models.registration import RegisteredDataset
from provena_like.modules.credentials import to_s3_credentials
from provena_like.repositories import (
    LocalEndpoint,
    PosixRepository,
    Repository,
    S3Repository,
    parse_s3_root,
    path_from_dataset,
)
from provena_like.storage import S3Credentials
from provena_like.testing.localstack import BUCKET, LocalStack
from provena_like.testing.server_thread import ServerThread
from tests.support.datastore_helpers import s3_client
from tests.support.patch_helpers import s3_repository
from tests.support.registration_helpers import (
    Lab,
    Vocabulary,
    create_item,
    file,
    make_session,
    register,
    unique,
)
from tests.support.transfer_tasks import open_collection_of
from tests.support.users import User


@dataclass(frozen=True)
class Replicated:
    """Registered datasets with a replica (bytes and file record) in two repositories."""

    s3: str
    """The S3 repository's handle."""
    s3_root: str
    posix: str
    """The POSIX repository's handle."""
    posix_root: Path
    ids: list[str]
    contents: dict[str, bytes]
    """Each dataset's bytes, by id."""
    session: str
    """The session's handle."""


async def grant(
    client: httpx.AsyncClient, admin: User, repository: str, group: str, *roles: str
) -> None:
    """As the registry admin, give ``group`` these roles on the repository item."""
    current = (await client.get(f"/items/{repository}/access", headers=admin.headers)).json()
    current["groups"] = {group: list(roles)}
    r = await client.put(f"/items/{repository}/access", json=current, headers=admin.headers)
    assert r.status_code == 200, r.text


def s3_credentials(pv: ProvenaClient, repository: str) -> Callable[[], Awaitable[S3Credentials]]:
    """A provider of the S3 repository's write credentials (fresh ones on each call)."""

    async def provide() -> S3Credentials:
        return to_s3_credentials(
            await pv.registry_client.get_repository_credentials(repository, "write")
        )

    return provide


@contextlib.asynccontextmanager
async def opened(pv: ProvenaClient, rep: Replicated) -> AsyncIterator[dict[str, Repository]]:
    """Both repositories, open: handle → repository."""
    async with (
        S3Repository(rep.s3_root, s3_credentials(pv, rep.s3), name="s3") as s3,
        PosixRepository(rep.posix_root, name="lab") as posix,
    ):
        yield {rep.s3: s3, rep.posix: posix}


async def replicate(
    client: httpx.AsyncClient,
    pv: ProvenaClient,
    lab: Lab,
    vocabulary: Vocabulary,
    admin: User,
    root: Path,
    count: int = 2,
) -> Replicated:
    """``count`` datasets of a new session, registered in both repositories, bytes in both."""
    s3, prefix = await s3_repository(client, admin)
    await grant(client, admin, s3, lab.group, "metadata-read", "data-read", "data-write")
    await grant(client, admin, vocabulary.repository, lab.group, "metadata-read")
    session = await make_session(client, lab)
    names = [vocabulary.name("times"), vocabulary.name("intervals")][:count]
    contents = {name: f"bytes of {name}".encode() for name in names}
    for repository in (vocabulary.repository, s3):
        files = [
            file(
                f"alf/{name}",
                data.decode(),
                md5=hashlib.md5(data).hexdigest(),
            )
            for name, data in contents.items()
        ]
        r = await register(client, lab.member, session, files, repository=repository)
        assert r.status_code == 201, r.text
    ids = [f["dataset"]["id"] for f in r.json()["files"]]
    rep = Replicated(s3, f"s3://{BUCKET}/{prefix}", vocabulary.repository, root, ids, {}, session)
    by_id: dict[str, bytes] = {}
    local = root.parent / f"{root.name}-sources"
    local.mkdir(parents=True, exist_ok=True)
    async with opened(pv, rep) as repositories:
        for dataset_id in ids:
            dataset = await pv.registry_client.get_registered_dataset(dataset_id)
            data = contents[dataset.name]
            by_id[dataset_id] = data
            source = local / dataset_id
            source.write_bytes(data)
            for handle, repository in repositories.items():
                await repository.put(source, path_from_dataset(dataset, handle))
    return replace(rep, contents=by_id)


async def listing(pv: ProvenaClient, rep: Replicated) -> dict[str, list[str]]:
    """Every object in each repository (handle → paths)."""
    async with opened(pv, rep) as repositories:
        return {
            handle: [o.path async for o in repository.list()]
            for handle, repository in repositories.items()
        }


def sha256(data: bytes) -> str:
    """The hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def s3_key(rep: Replicated, path: str) -> str:
    """The key in the server's bucket of ``path`` in ``rep``'s S3 repository."""
    _, prefix = parse_s3_root(rep.s3_root)
    return prefix + path


async def put_behind(localstack: LocalStack, key: str, data: bytes, claimed_sha256: str) -> None:
    """Overwrite ``key`` in the server's bucket with ``data``, its metadata claiming a sha256."""

    def put() -> None:
        assert localstack.s3 is not None
        with s3_client(localstack.s3) as s3:
            s3.put_object(Bucket=BUCKET, Key=key, Body=data, Metadata={"sha256": claimed_sha256})

    await anyio.to_thread.run_sync(put)


@dataclass(frozen=True)
class GlobusHeld:
    """A registered dataset whose one replica is in a Globus repository of the server."""

    repository: str
    """The repository item's handle (kind ``globus``, root ``<collection>:/lab``)."""
    dataset_id: str
    data: bytes
    stored: Path
    """Where the object is on disk (the destination collection is a local one)."""
    local: LocalEndpoint
    """The local endpoint to open the repository with."""


async def held_in_globus(
    client: httpx.AsyncClient, server: ServerThread, lab: Lab, vocabulary: Vocabulary, admin: User
) -> GlobusHeld:
    """A Globus repository item on a new local collection, and a dataset held there.

    The local endpoint is another new local collection; both are open to every user.
    """
    local_id, local_dir = await open_collection_of(server, admin, "wire-local")
    dest_id, dest_dir = await open_collection_of(server, admin, "wire-dest")
    body = {"name": unique("globus"), "kind": "globus", "root": f"{dest_id}:/lab"}
    handle: str = (await create_item(client, admin, "repository", body))["id"]
    await grant(client, admin, handle, lab.group, "metadata-read")
    session = await make_session(client, lab)
    data = b"bytes of a dataset held in a Globus repository"
    registered = file(f"alf/{vocabulary.name('times')}", data.decode())
    r = await register(client, lab.member, session, [registered], repository=handle)
    assert r.status_code == 201, r.text
    dataset = RegisteredDataset.model_validate(r.json()["files"][0]["dataset"])
    stored = dest_dir / "lab" / path_from_dataset(dataset, handle)
    stored.parent.mkdir(parents=True)
    stored.write_bytes(data)
    assert dataset.id is not None
    return GlobusHeld(handle, dataset.id, data, stored, LocalEndpoint(local_id, local_dir))
