"""Crawling a dataset's S3 prefix and a transfer-service collection of the live LocalStack."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from provena_like import ProvenaClient
from provena_like._core.config import ProvenaConfig
from provena_like.crawler import (
    CollectionSource,
    CrawlError,
    DatasetSource,
    FileRecord,
    Group,
    crawl,
    group,
)
from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread
from tests.support.l3_helpers import mint_dataset
from tests.support.transfer_tasks import (
    open_collection_of,
    task_admin_fixture,  # noqa: F401 - the task_admin fixture
    write_tree,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio

FILES = {
    "a.csv": b"x,y\n1,2\n",
    "raw/b.json": b"{}",
    "raw/deep/c.txt": b"ccc",
    "raw/.hidden": b"h",
    "tmp/junk.csv": b"junk",
}


def by_path(items: list[FileRecord | CrawlError | Group]) -> dict[str, FileRecord]:
    return {r.path: r for r in items if isinstance(r, FileRecord)}


async def test_dataset_prefix(localstack: LocalStack, tmp_path: Path) -> None:
    local = tmp_path / "up"
    write_tree(local, FILES)
    async with localstack.client() as pv:
        ds = await mint_dataset(pv, "crawl me")
        (await ds.upload(local)).raise_for_failures()

        found = by_path([r async for r in crawl(DatasetSource(ds))])
        assert set(found) == {"a.csv", "raw/b.json", "raw/deep/c.txt", "tmp/junk.csv"}
        c = found["raw/deep/c.txt"]
        assert (c.source, c.size, c.depth, c.extension) == (f"dataset:{ds.id}", 3, 2, ".txt")
        assert c.etag and c.mtime is not None and c.mime_type == "text/plain"

        filtered = [r async for r in crawl(DatasetSource(ds), max_depth=1, exclude=["tmp"])]
        assert set(by_path(filtered)) == {"a.csv", "raw/b.json"}
        hidden = [r async for r in crawl(DatasetSource(ds, "raw"), hidden=True)]
        assert set(by_path(hidden)) == {"b.json", "deep/c.txt", ".hidden"}

        groups = [g async for g in group(crawl(DatasetSource(ds)), "directory")]
        keys = {g.key: g.files for g in groups if isinstance(g, Group)}
        assert keys["raw/deep"] == ["raw/deep/c.txt"]


@pytest.fixture
async def alice_pv(
    server: ServerThread, new_user: Callable[..., User]
) -> AsyncIterator[ProvenaClient]:
    user = new_user("alice")
    config = ProvenaConfig(base_url=server.url, access_token=user.token, max_retries=0)
    async with ProvenaClient(config) as pv:
        yield pv


async def test_transfer_collection(
    server: ServerThread, task_admin: User, alice_pv: ProvenaClient
) -> None:
    cid, root = await open_collection_of(server, task_admin, "crawl")
    write_tree(root, FILES)
    (root / "locked").mkdir()
    os.symlink(root / "nowhere", root / "broken")
    tc = alice_pv.transfer_client

    items = [r async for r in crawl(CollectionSource(tc, f"globus://{cid}/"), rate_limit=50)]
    found = by_path(items)
    assert set(found) == {"a.csv", "raw/b.json", "raw/deep/c.txt", "tmp/junk.csv"}
    b = found["raw/b.json"]
    assert (b.source, b.size, b.depth, b.mime_type) == (
        f"collection:{cid}/",
        2,
        1,
        "application/json",
    )
    errors = {r.path: r for r in items if isinstance(r, CrawlError)}
    assert set(errors) <= {"broken"}  # a broken link is an error (where the service lists it)

    below = [r async for r in crawl(CollectionSource(tc, f"globus://{cid}/raw"), max_depth=0)]
    assert set(by_path(below)) == {"b.json"}

    missing = [r async for r in crawl(CollectionSource(tc, f"globus://{cid}/absent"))]
    assert len(missing) == 1 and isinstance(missing[0], CrawlError)
    assert missing[0].reason == "not_found"
