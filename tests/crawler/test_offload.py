"""offload: the source goes only after every file was transferred and read back the same."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from provena_like import ProvenaClient
from provena_like._core.config import ProvenaConfig
from provena_like.crawler import offload
from provena_like.repositories import PosixRepository
from provena_like.testing.server_thread import ServerThread
from tests.support.l3_helpers import mint_dataset
from tests.support.transfer_tasks import write_tree
from tests.support.users import User

pytestmark = pytest.mark.anyio

RESULTS = {"run1/results.jsonl": b'{"kind": "file"}\n', "run1/deep/errors.jsonl": b"{}\n"}


@asynccontextmanager
async def signed_in(server: ServerThread, user: User) -> AsyncIterator[ProvenaClient]:
    config = ProvenaConfig(base_url=server.url, access_token=user.token, max_retries=0)
    async with ProvenaClient(config) as pv:
        yield pv


async def test_to_a_repository_deletes_only_after_a_verified_copy(tmp_path: Path) -> None:
    write_tree(tmp_path / "out", RESULTS)
    async with PosixRepository(tmp_path / "safe") as repo:
        # a folder stands where one file must go: that put fails, the whole source stays
        (tmp_path / "safe" / "crawls" / "deep" / "errors.jsonl").mkdir(parents=True)
        kept = await offload(tmp_path / "out" / "run1", repo, prefix="crawls/", delete_source=True)
        assert not kept.ok and not kept.source_deleted
        # the batch stopped at that file (sorted first): the one after it was never sent
        assert {f.path for f in kept.failed} == {"crawls/deep/errors.jsonl", "crawls/results.jsonl"}
        assert (tmp_path / "out" / "run1" / "results.jsonl").exists()
        assert (tmp_path / "out" / "run1" / "deep" / "errors.jsonl").exists()

        (tmp_path / "safe" / "crawls" / "deep" / "errors.jsonl").rmdir()
        done = await offload(tmp_path / "out" / "run1", repo, prefix="crawls/", delete_source=True)
        assert done.ok and done.source_deleted
        assert not (tmp_path / "out" / "run1").exists()
        for path, content in RESULTS.items():
            info = await repo.stat("crawls/" + path.removeprefix("run1/"), verify=True)
            assert info is not None and info.sha256 == hashlib.sha256(content).hexdigest()

    write_tree(tmp_path / "one", {"r.jsonl": b"x"})
    async with PosixRepository(tmp_path / "safe") as repo:
        kept_anyway = await offload(tmp_path / "one" / "r.jsonl", repo)  # not asked to delete
    assert kept_anyway.ok and not kept_anyway.source_deleted
    assert (tmp_path / "one" / "r.jsonl").exists()


async def test_to_a_dataset_keeps_the_source_when_the_transfer_fails(
    server: ServerThread, new_user: Callable[..., User], tmp_path: Path
) -> None:
    owner, reader = new_user("owner"), new_user("reader")
    write_tree(tmp_path / "out", RESULTS)
    async with signed_in(server, owner) as pv, signed_in(server, reader) as pv_reader:
        ds = await mint_dataset(pv, "offload")
        settings = await pv.registry_client.get_access(ds.id)
        await pv.registry_client.update_access(
            ds.id, {**settings.model_dump(), "general": ["data-read"]}
        )
        # the reader may read the dataset but not write to it: a real, refused transfer
        theirs = await pv_reader.datastore.interactive(ds.id)
        kept = await offload(tmp_path / "out" / "run1", theirs, delete_source=True)
        assert not kept.ok and not kept.source_deleted
        assert {f.path for f in kept.failed} == {"results.jsonl", "deep/errors.jsonl"}
        assert all(f.error and f.error.startswith("transfer failed") for f in kept.failed)
        assert (tmp_path / "out" / "run1" / "results.jsonl").read_bytes() == RESULTS[
            "run1/results.jsonl"
        ]

        done = await offload(tmp_path / "out" / "run1", ds, prefix="crawls/", delete_source=True)
        assert done.ok and done.source_deleted, done.failed
        assert not (tmp_path / "out" / "run1").exists()
        manifest = {e.path: e.sha256 for e in await ds.list_files(prefix="crawls/")}
        assert manifest == {
            "crawls/" + p.removeprefix("run1/"): hashlib.sha256(c).hexdigest()
            for p, c in RESULTS.items()
        }

        single = tmp_path / "results.jsonl"
        single.write_bytes(b"{}\n")
        one = await offload(single, ds, prefix="crawls/single/", delete_source=True)
        assert [f.path for f in one.files] == ["crawls/single/results.jsonl"]
        assert one.source_deleted and not single.exists()
