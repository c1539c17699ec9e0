"""Discover's listings are rate-limited: N ``ls`` calls at R a second take at least (N-1)/R."""

from __future__ import annotations

import time

from provena_like import ProvenaClient
from provena_like.repositories import TransferRepository
from provena_like.testing.server_thread import ServerThread
from tests.archive.conftest import ArchivePlace
from tests.support.transfer_tasks import open_collection_of
from tests.support.users import User

FOLDERS = 6
RATE = 4.0


async def test_listing_a_location_keeps_to_list_rate(
    server: ServerThread, registry_admin: User, pv: ProvenaClient, place: ArchivePlace
) -> None:
    archive_id, archive_dir = await open_collection_of(server, registry_admin, "rated")
    for i in range(FOLDERS - 1):  # the root and FOLDERS - 1 sub-folders: FOLDERS listings
        (archive_dir / f"d{i}").mkdir()
        (archive_dir / f"d{i}" / "f.bin").write_bytes(b"x")
    repo = TransferRepository(
        pv.transfer_client, f"{archive_id}:/", place.laptop, list_concurrency=8, list_rate=RATE
    )
    started = time.monotonic()
    paths = sorted([info.path async for info in repo.list()])
    elapsed = time.monotonic() - started
    assert paths == [f"d{i}/f.bin" for i in range(FOLDERS - 1)]
    assert elapsed >= (FOLDERS - 1) / RATE * 0.95
    assert pv.archive.list_rate == 10.0  # discover's default
