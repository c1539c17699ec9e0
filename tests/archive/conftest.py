"""Fixtures of the archive tests: a lab, a laptop's local endpoint and an archive location.

``lab`` and ``registry_admin`` are the registration tests' fixtures. The local endpoint and
the archive are two local collections of the session server's transfer service (their
directories are on this machine); the storage location item (written by the registry
admin) gives the lab's group ``data-write``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like.repositories import LocalEndpoint
from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread
from tests.registration.conftest import (  # noqa: F401 (fixtures)
    client_service,
    lab,
    registry_admin,
)
from tests.support.registration_helpers import Lab, create_item
from tests.support.transfer_tasks import open_collection_of
from tests.support.users import User

LAYOUT = "{lab}/{subject}/{date}/{number:03d}"


@dataclass(frozen=True)
class ArchivePlace:
    """Where a test archives: the laptop's endpoint, the archive's collection and item."""

    laptop: LocalEndpoint
    archive_dir: Path
    location: str
    kind: str


@pytest.fixture
async def place(
    client: httpx.AsyncClient,
    server: ServerThread,
    lab: Lab,  # noqa: F811
    registry_admin: User,  # noqa: F811
) -> ArchivePlace:
    """A fresh local endpoint, archive collection and ``storage_location`` of a new kind."""
    local_id, local_dir = await open_collection_of(server, registry_admin, "laptop")
    archive_id, archive_dir = await open_collection_of(server, registry_admin, "petrel")
    kind = f"raw-ephys-{uuid.uuid4().hex[:8]}"
    record = {
        "name": f"petrel_{uuid.uuid4().hex[:8]}",
        "kind": kind,
        "collection": archive_id,
        "root": "/raw",
        "layout": LAYOUT,
        "patterns": ["raw_ephys_data/*"],
    }
    item = await create_item(
        client, registry_admin, "storage_location", record, groups={lab.group: ["data-write"]}
    )
    return ArchivePlace(LocalEndpoint(local_id, local_dir), archive_dir / "raw", item["id"], kind)


@pytest.fixture
async def pv(localstack: LocalStack, lab: Lab) -> AsyncIterator[ProvenaClient]:  # noqa: F811
    """An SDK client of the lab's member, with fast task polls."""
    async with ProvenaClient(localstack.config(access_token=lab.member.token)) as client:
        client.archive.poll = 0.05
        client.archive.timeout = 120.0
        client.archive.stuck_after = 5.0
        yield client
