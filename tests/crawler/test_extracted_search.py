"""Extracted metadata of a dataset: extracting its files, attaching the results, searching them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.config import ProvenaConfig
from provena_like._core.errors import Conflict, Forbidden, NotFound, Unprocessable, UsageError
from provena_like.crawler import (
    DatasetSource,
    ExtractionRunner,
    FileRecord,
    FileResult,
    crawl,
    extract_dataset,
)
from provena_like.extractors.basic import BasicExtractor
from provena_like.extractors.tabular import TabularExtractor
from provena_like.modules.interactive import InteractiveDataset
from provena_like.testing.server_thread import ServerThread
from tests.support.l3_helpers import mint_dataset
from tests.support.tls import SHARED_TLS
from tests.support.transfer_tasks import write_tree
from tests.support.users import User

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def signed_in(server: ServerThread, user: User) -> AsyncIterator[ProvenaClient]:
    config = ProvenaConfig(base_url=server.url, access_token=user.token, max_retries=0)
    async with ProvenaClient(config) as pv:
        yield pv


async def found(pv: ProvenaClient, q: str, dataset_id: str) -> bool:
    page = await pv.search_client.search_items(q, subtype="dataset", page_size=100)
    return any(hit.item.id == dataset_id for hit in page.items)


async def extract_and_attach(pv: ProvenaClient, ds: InteractiveDataset, tmp: Path) -> list[str]:
    """Crawl and extract the dataset (files fetched one at a time), attach; the results' paths."""
    paths = []
    async with ExtractionRunner([BasicExtractor(), TabularExtractor()], workers=1) as runner:

        async def results() -> AsyncIterator[FileResult]:
            async for r in extract_dataset(
                runner, crawl(DatasetSource(ds)), ds, batch_files=1, temp_dir=tmp
            ):
                assert isinstance(r, FileResult)
                assert r.ok, r.extractions
                paths.append(r.record.path)
                yield r

        run = await pv.datastore.attach_extracted(ds.id, results())
    assert run.state == "committed" and run.files == len(paths)
    return paths


async def test_search_finds_extracted_columns_for_readers_only(
    server: ServerThread, new_user: Callable[..., User], tmp_path: Path
) -> None:
    word = f"temperature{uuid.uuid4().hex[:8]}"  # unique to this test's dataset
    group = f"lab-{uuid.uuid4().hex[:8]}"
    owner = new_user("owner")
    member = new_user("member", groups=(group,))
    stranger = new_user("stranger")
    up = tmp_path / "up"
    write_tree(up, {"raw/a.csv": f"site,{word}\nx,1\n".encode(), "notes.txt": b"hi"})
    temp = tmp_path / "temp"
    temp.mkdir()
    async with (
        signed_in(server, owner) as pv,
        signed_in(server, member) as pv_member,
        signed_in(server, stranger) as pv_stranger,
    ):
        ds = await mint_dataset(pv, "extracted")
        (await ds.upload(up)).raise_for_failures()
        assert not await found(pv, word, ds.id)

        assert sorted(await extract_and_attach(pv, ds, temp)) == ["notes.txt", "raw/a.csv"]
        assert list(temp.iterdir()) == []  # every batch's copies deleted
        assert await found(pv, word, ds.id)
        page = await pv.search_client.search_items(word, subtype="dataset")
        assert word in page.items[0].highlights["extracted"]
        stored = {f.path: f async for f in pv.datastore_client.iter_extracted(ds.id)}
        assert stored["raw/a.csv"].terms == ["site", word]
        assert stored["raw/a.csv"].metadata["tabular"]["row_count"] == 1
        assert set(stored["raw/a.csv"].extractors) == {"basic", "tabular"}

        # private: neither another user nor a group without a grant finds or reads it
        for other in (pv_member, pv_stranger):
            assert not await found(other, word, ds.id)
            with pytest.raises(Forbidden):
                await other.datastore_client.list_extracted(ds.id)
            with pytest.raises(Forbidden):
                await other.datastore_client.start_extraction_run(ds.id)
        # a metadata-read grant to the member's group: the member finds it, reads, can't write
        settings = await pv.registry_client.get_access(ds.id)
        await pv.registry_client.update_access(
            ds.id, {**settings.model_dump(), "groups": {group: ["metadata-read"]}}
        )
        assert await found(pv_member, word, ds.id)
        assert not await found(pv_stranger, word, ds.id)
        assert len((await pv_member.datastore_client.list_extracted(ds.id)).items) == 2
        with pytest.raises(Forbidden):
            await pv_member.datastore_client.start_extraction_run(ds.id)

        # the column goes: a new run replaces the old one, and search forgets the word
        write_tree(up, {"raw/a.csv": b"site,salinity\nx,1\n"})
        (await ds.upload(up)).raise_for_failures()
        await extract_and_attach(pv, ds, temp)
        assert not await found(pv, word, ds.id)
        assert not await found(pv_member, word, ds.id)
        assert await found(pv_member, "salinity", ds.id)
        stored = {f.path: f async for f in pv.datastore_client.iter_extracted(ds.id)}
        assert stored["raw/a.csv"].terms == ["site", "salinity"]

        assert await pv.datastore_client.clear_extracted(ds.id) == 2
        assert not await found(pv, "salinity", ds.id)


async def test_runs_replace_atomically_and_refuse_bad_batches(
    server: ServerThread, new_user: Callable[..., User]
) -> None:
    word = f"kelvin{uuid.uuid4().hex[:8]}"
    user = new_user("owner")
    headers = {"Authorization": f"Bearer {user.token}"}
    async with (
        signed_in(server, user) as pv,
        httpx.AsyncClient(verify=SHARED_TLS, base_url=server.url, headers=headers) as http,
    ):
        ds = await mint_dataset(pv, "runs")
        other = await mint_dataset(pv, "other")
        client = pv.datastore_client
        first = await client.start_extraction_run(ds.id, source=f"dataset:{ds.id}")
        added = await client.add_extracted_files(
            ds.id, first.run_id, [{"path": "a.csv", "terms": [word]}]
        )
        assert (added.received, added.files) == (1, 1)
        again = await client.add_extracted_files(  # resent: the path is replaced
            ds.id, first.run_id, [{"path": "a.csv", "terms": [word]}]
        )
        assert again.files == 1
        # an open run is invisible: readers and search still see the previous state
        assert (await client.list_extracted(ds.id)).items == []
        assert not await found(pv, word, ds.id)
        done = await client.commit_extraction_run(ds.id, first.run_id)
        assert (done.state, done.files, done.terms) == ("committed", 1, 1)
        assert (await client.commit_extraction_run(ds.id, first.run_id)).committed_at == (
            done.committed_at
        )
        assert await found(pv, word, ds.id)

        with pytest.raises(Conflict):
            await client.add_extracted_files(ds.id, first.run_id, [{"path": "b.csv"}])
        with pytest.raises(NotFound):  # a run of another dataset
            await client.commit_extraction_run(other.id, first.run_id)
        second = await client.start_extraction_run(ds.id)
        with pytest.raises(Unprocessable):  # a path twice
            await client.add_extracted_files(ds.id, second.run_id, [{"path": "x"}, {"path": "x"}])
        url = f"/datastore/datasets/{ds.id}/extracted-metadata/runs/{second.run_id}/files"
        for bad in ({"path": "x", "metadata": {"big": "y" * 20_000}}, {"path": "../x"}):
            with pytest.raises(UsageError):  # the client checks first
                await client.add_extracted_files(ds.id, second.run_id, [bad])
            answer = await http.post(url, json={"files": [bad]})  # and so does the server
            assert answer.status_code == 422, answer.text
        answer = await http.post(url, json={"files": [{"path": "x", "terms": ["t"] * 1001}]})
        assert answer.status_code == 422
        org = (await pv.registry_client.list_items(subtype="organisation", page_size=1)).items[0]
        with pytest.raises(Unprocessable):  # not a dataset
            await client.start_extraction_run(org.id)
        await client.add_extracted_files(ds.id, second.run_id, [{"path": "b.csv"}])
        await client.commit_extraction_run(ds.id, second.run_id)
        assert [f.path for f in (await client.list_extracted(ds.id)).items] == ["b.csv"]
        assert not await found(pv, word, ds.id)

        # the L3 helper: a local crawl's results under a prefix; a file given twice is one
        twice = FileResult(record=FileRecord(source="local:/copy", path="c.csv", size=1))
        run = await pv.datastore.attach_extracted(ds.id, [twice, twice], prefix="copy/")
        assert (run.files, run.source) == (1, "local:/copy")
        assert [f.path for f in (await client.list_extracted(ds.id)).items] == ["copy/c.csv"]


async def test_dataset_files_are_downloaded_in_batches_and_failures_recorded(
    server: ServerThread, new_user: Callable[..., User], tmp_path: Path
) -> None:
    up = tmp_path / "up"
    write_tree(up, {f"t{i}.csv": f"c{i},d\n1,2\n".encode() for i in range(3)})
    temp = tmp_path / "temp"
    temp.mkdir()
    async with signed_in(server, new_user("owner")) as pv:
        ds = await mint_dataset(pv, "batches")
        (await ds.upload(up)).raise_for_failures()

        async def records() -> AsyncIterator[FileRecord]:
            async for r in crawl(DatasetSource(ds)):
                assert isinstance(r, FileRecord)
                yield r
            yield FileRecord(source=f"dataset:{ds.id}", path="gone.csv", extension=".csv")

        async with ExtractionRunner([TabularExtractor()], workers=1) as runner:
            results = {
                r.record.path: r
                async for r in extract_dataset(
                    runner, records(), ds, batch_files=2, batch_bytes=10**6, temp_dir=temp
                )
                if isinstance(r, FileResult)
            }
    assert list(temp.iterdir()) == []
    assert set(results) == {"t0.csv", "t1.csv", "t2.csv", "gone.csv"}
    for i in range(3):
        (extraction,) = results[f"t{i}.csv"].extractions
        assert extraction.status == "ok" and extraction.metadata is not None
        assert extraction.metadata["terms"] == [f"c{i}", "d"]
        assert results[f"t{i}.csv"].record.source == f"dataset:{ds.id}"
    (gone,) = results["gone.csv"].extractions
    assert gone.status == "failed" and gone.error and gone.error.startswith("download failed")
