"""``pv.crawler``: a server-side crawl of a dataset, waited on and read with acknowledgements."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from provena_like._core.errors import NotFound, UsageError
from provena_like.crawler import CrawlError, FileRecord, Group
from provena_like.models.crawl_jobs import CrawlJob
from provena_like.modules.crawl_jobs import parse_source
from provena_like.testing.localstack import LocalStack
from tests.support.l3_helpers import mint_dataset
from tests.support.transfer_tasks import write_tree

pytestmark = pytest.mark.anyio

FILES = {"a.csv": b"x,y\n1,2\n", "raw/b.json": b"{}", "raw/deep/c.txt": b"c" * 30}


async def test_crawl_a_dataset_on_the_server(localstack: LocalStack, tmp_path: Path) -> None:
    write_tree(tmp_path / "up", FILES)
    async with localstack.client() as pv:
        ds = await mint_dataset(pv, "server crawl")
        (await ds.upload(tmp_path / "up")).raise_for_failures()
        handle = await pv.crawler.start(f"dataset:{ds.id}", grouper="directory", checksums=True)
        seen: list[CrawlJob] = []
        job = await handle.wait(on_progress=seen.append, poll=0.1, timeout=120)
        assert job.state == "succeeded" and job.finished, job
        assert seen[-1] == job
        assert (job.files, job.bytes, job.errors) == (
            len(FILES),
            sum(map(len, FILES.values())),
            0,
        )
        assert job.groups == 3  # "", "raw", "raw/deep"
        assert job.source["dataset"] == ds.id

        # a page leased and not acknowledged is not lost: the iteration gets it later
        page = await handle.flush(2, lease_seconds=1)
        assert len(page.records) == 2 and page.cursor is not None and page.unacked == 6
        records = [r async for r in handle.records(page_size=2, poll=0.2)]
        files = {r.path: r for r in records if isinstance(r, FileRecord)}
        assert set(files) == set(FILES)  # the dataset's own metadata.json is left out
        for path, data in FILES.items():
            assert files[path].sha256 == hashlib.sha256(data).hexdigest()
            assert files[path].source == f"dataset:{ds.id}"
        groups = {g.key: sorted(g.files) for g in records if isinstance(g, Group)}
        assert groups == {"": ["a.csv"], "raw": ["raw/b.json"], "raw/deep": ["raw/deep/c.txt"]}
        assert not [r for r in records if isinstance(r, CrawlError)]
        assert (await handle.status()).unacked == 0
        assert await handle.ack(page) == 0  # its records were leased again and acknowledged

        # a second crawl of a folder, found again by id, cancelled when over: no change
        sub = await pv.crawler.start(f"dataset:{ds.id}/raw", max_depth=0)
        again = pv.crawler.job(sub.id)
        done = await again.wait(poll=0.1, timeout=120)
        assert done.files == 1 and (await again.cancel()).state == "succeeded"
        assert [r.path async for r in again if isinstance(r, FileRecord)] == ["b.json"]
        ids = [j.id async for j in pv.crawler.iter_jobs()]
        assert ids[:2] == [sub.id, handle.id]

        with pytest.raises(NotFound):
            await pv.crawler.start("dataset:10378.1/99999999")
        with pytest.raises(UsageError):
            await pv.crawler.start("/a/local/folder")


def test_parse_source() -> None:
    assert parse_source("collection:abc/x/y").model_dump() == {
        "dataset": None,
        "collection": "abc",
        "path": "x/y",
    }
    with pytest.raises(UsageError):
        parse_source("dataset:nohandle")


def test_the_blocking_api(localstack: LocalStack, tmp_path: Path) -> None:
    from provena_like.blocking import BlockingClient
    from tests.support.blocking_flow import make_refs, write_folder
    from tests.support.l3_helpers import make_record

    with BlockingClient.wrap(localstack.client()) as pv:
        ds = pv.datastore.mint(make_record(make_refs(pv), name="Blocking crawl"))
        digests = write_folder(tmp_path / "src")
        ds.upload(tmp_path / "src").raise_for_failures()
        handle = pv.crawler.start(f"dataset:{ds.id}", include=["raw/*"])
        job = handle.wait(poll=0.1, timeout=120)
        assert job.state == "succeeded" and job.files == len(digests) - 1, job
        paths = sorted(r.path for r in handle.records(page_size=5) if isinstance(r, FileRecord))
        assert paths == sorted(p for p in digests if p.startswith("raw/"))
