"""Globus-backed repositories against the session server's transfer service, for tests.

:func:`globus_place` opens, once per test module, what the repositories of a user need: a
transfer client signed with the user's token, a local endpoint (a fresh local collection of
the server: its directory is on this machine), and a destination collection, either another
local collection (``"local"``) or the user's dataset (``"s3"``, an S3 collection).
:func:`new_repository` then makes a :class:`~provena_like.repositories.TransferRepository`
on a fresh folder of it, and :func:`backing` says where its objects are stored, so that a
test can change them behind the repository's back (bit rot).
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from provena_like import ProvenaClient
from provena_like._core.config import ProvenaConfig
from provena_like.clients.transfer import TransferClient
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
        prefix: The key prefix of the root in ``bucket`` (ends with ``/``), or ``""``.
    """

    directory: Path | None
    bucket: str | None
    prefix: str


@dataclass(frozen=True)
class GlobusPlace:
    """A user's transfer client, local endpoint and destination collection.

    Attributes:
        client: The user's open transfer client of the session server.
        local: The local endpoint (a local collection of the server, open to all).
        collection: The destination collection's UUID.
        kind: ``"local"`` or ``"s3"``.
        stored: Where the destination collection's root is stored.
    """

    client: TransferClient
    local: LocalEndpoint
    collection: str
    kind: Literal["local", "s3"]
    stored: Backing


_BACKINGS: weakref.WeakKeyDictionary[TransferRepository, Backing] = weakref.WeakKeyDictionary()


def backing(repo: TransferRepository) -> Backing:
    """Where the objects of a repository made by :func:`new_repository` are stored."""
    return _BACKINGS[repo]


def make_users(make_token: Callable[..., str]) -> tuple[User, User]:
    """A new admin (registers collections) and a new user, with tokens valid for an hour."""
    admin, user = f"admin-{uuid.uuid4().hex[:10]}", f"repo-{uuid.uuid4().hex[:10]}"
    return (
        User(admin, make_token(admin, system_roles=("admin",), ttl=3600)),
        User(user, make_token(user, ttl=3600)),
    )


@asynccontextmanager
async def globus_place(
    server: ServerThread, admin: User, user: User, kind: Literal["local", "s3"]
) -> AsyncIterator[GlobusPlace]:
    """``user``'s client, a local endpoint and a destination collection (see the module)."""
    local_id, local_dir = await open_collection_of(server, admin, "repo-local")
    if kind == "local":
        dest_id, dest_dir = await open_collection_of(server, admin, "repo-dest")
        stored = Backing(dest_dir, None, "")
    else:
        dataset = await mint_dataset(server, user)
        dest_id = dataset["collection_id"]
        opened = await open_as(server, user, dest_id)
        assert isinstance(opened.backend, S3Backend)
        stored = Backing(None, opened.backend.bucket, opened.backend.prefix)
    config = ProvenaConfig(base_url=server.url, access_token=user.token, max_retries=0)
    async with ProvenaClient(config) as pv:
        local = LocalEndpoint(local_id, local_dir)
        yield GlobusPlace(pv.transfer_client, local, dest_id, kind, stored)


def new_repository(place: GlobusPlace, **options: Any) -> TransferRepository:
    """A repository on a fresh folder of ``place``'s destination (fast polls by default)."""
    folder = f"repo-{uuid.uuid4().hex[:8]}"
    options.setdefault("poll", POLL)
    options.setdefault("timeout", 120.0)
    options.setdefault("name", f"globus-{place.kind}")
    repo = TransferRepository(
        place.client, f"globus://{place.collection}/{folder}", place.local, **options
    )
    stored = place.stored
    _BACKINGS[repo] = Backing(
        None if stored.directory is None else stored.directory / folder,
        stored.bucket,
        f"{stored.prefix}{folder}/" if stored.bucket is not None else "",
    )
    return repo
