"""Globus-backed repositories against the session server's transfer service, for tests.

:func:`globus_repository` opens a :class:`~provena_like.repositories.TransferRepository` for a
user: the local endpoint is a fresh local collection of the server (its directory is on this
machine), and the destination is either another local collection (``"local"``) or the user's
dataset (``"s3"``, an S3 collection). :func:`backing` says where the objects are stored, so
that a test can change them behind the repository's back (bit rot).
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from provena_like import ProvenaClient
from provena_like._core.config import ProvenaConfig
from provena_like.repositories import LocalEndpoint, TransferRepository
from provena_like.server.transfer.s3 import S3Backend
from provena_like.testing.server_thread import ServerThread
from tests.support.transfer import mint_dataset, open_as
from tests.support.transfer_tasks import open_collection_of
from tests.support.users import User

POLL = 0.05
"""Seconds between looks at a task (the server's tasks take a fraction of a second)."""


@dataclass(frozen=True)
class Backing:
    """Where a test repository's objects are stored.

    Attributes:
        directory: The local directory of the root (a local collection), or ``None``.
        bucket: The bucket (an S3 collection), or ``None``.
        prefix: The key prefix of the root in ``bucket`` (ends with ``/``).
        local: The local endpoint's directory.
    """

    directory: Path | None
    bucket: str | None
    prefix: str
    local: Path


_BACKINGS: weakref.WeakKeyDictionary[TransferRepository, Backing] = weakref.WeakKeyDictionary()


def backing(repo: TransferRepository) -> Backing:
    """Where the objects of a repository made by :func:`globus_repository` are stored."""
    return _BACKINGS[repo]


@asynccontextmanager
async def globus_repository(
    server: ServerThread,
    admin: User,
    user: User,
    destination: Literal["local", "s3"],
    **options: object,
) -> AsyncIterator[TransferRepository]:
    """An open repository of ``user`` on ``destination`` (root: a fresh folder in it)."""
    folder = f"repo-{uuid.uuid4().hex[:8]}"
    local_id, local_dir = await open_collection_of(server, admin, "repo-local")
    if destination == "local":
        dest_id, dest_dir = await open_collection_of(server, admin, "repo-dest")
        found = Backing(dest_dir / folder, None, "", local_dir)
    else:
        dataset = await mint_dataset(server, user)
        dest_id = dataset["collection_id"]
        opened = await open_as(server, user, dest_id)
        assert isinstance(opened.backend, S3Backend)
        backend = opened.backend
        found = Backing(None, backend.bucket, f"{backend.prefix}{folder}/", local_dir)
    config = ProvenaConfig(base_url=server.url, access_token=user.token, max_retries=0)
    async with ProvenaClient(config) as pv:
        options.setdefault("poll", POLL)
        options.setdefault("timeout", 120.0)
        repo = TransferRepository(
            pv.transfer_client,
            f"globus://{dest_id}/{folder}",
            LocalEndpoint(local_id, local_dir),
            name=f"globus-{destination}",
            **options,  # type: ignore[arg-type]
        )
        _BACKINGS[repo] = found
        async with repo:
            yield repo
