"""Attacks on the Patcher: another user's datasets, and two patches of one dataset racing."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.errors import APIConnectionError, APIStatusError, UsageError
from provena_like.modules.patcher import PatchAborted
from provena_like.repositories import OpenRepositories
from provena_like.testing.localstack import LocalStack
from tests.support.patcher_helpers import (
    Bench,
    assert_no_orphans,
    hold_files,
    read_all,
    sha256,
    write_local,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio


async def test_another_users_datasets_are_refused(
    client: httpx.AsyncClient,
    localstack: LocalStack,
    pv: ProvenaClient,
    bench: Bench,
    repos: OpenRepositories,
    new_user: Callable[..., User],
    tmp_path: Path,
) -> None:
    v = bench.vocabulary
    (dataset,) = await hold_files(client, bench, repos, {f"alf/{v.name()}": b"theirs"})
    path = write_local(tmp_path / "local", dataset, b"mine")
    outsider = new_user("outsider")
    async with ProvenaClient(localstack.config(access_token=outsider.token)) as other:
        other.patcher.journal_dir = tmp_path / "journals"
        # the outsider can't see the session: the path matches nothing
        with pytest.raises(UsageError, match="no registered dataset matches"):
            await other.patcher.patch_files([path], repositories=dict(repos))
        # and the server refuses a commit sent directly (own bucket or not)
        body = {
            "patch_id": str(uuid.uuid4()),
            "files": [
                {
                    "dataset": str(dataset.id),
                    "expected_sha256": dataset.sha256,
                    "size": 4,
                    "sha256": sha256(b"mine"),
                    "md5": "0" * 32,
                    "locations": [
                        {
                            "repository": r.repository,
                            "relative_path": r.relative_path,
                            "size": 4,
                            "sha256": sha256(b"mine"),
                        }
                        for r in dataset.files
                    ],
                }
            ],
        }
        with pytest.raises(APIStatusError) as err:
            await other.registry_client.commit_patch(body)
        assert err.value.status_code in (403, 404)
    got = await read_all(pv, repos, [str(dataset.id)], tmp_path / "read")
    assert set(got.values()) == {b"theirs"}


async def test_two_patches_of_one_dataset_racing(
    client: httpx.AsyncClient,
    localstack: LocalStack,
    pv: ProvenaClient,
    bench: Bench,
    repos: OpenRepositories,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A stages and verifies, B patches the same dataset meanwhile, A's commit gets 409."""
    v = bench.vocabulary
    (dataset,) = await hold_files(client, bench, repos, {f"alf/{v.name()}": b"original"})
    ids = [str(dataset.id)]
    path_a = write_local(tmp_path / "a", dataset, b"from A")
    path_b = write_local(tmp_path / "b", dataset, b"from B")
    pv.patcher.journal_dir = tmp_path / "journals-a"
    real: Callable[..., Awaitable[Any]] = pv.registry_client.commit_patch

    async def held_up(*args: Any, **kwargs: Any) -> Any:
        raise APIConnectionError("A is held up before its commit")

    monkeypatch.setattr(pv.registry_client, "commit_patch", held_up)
    with pytest.raises(APIConnectionError):
        await pv.patcher.patch_files([path_a], repositories=dict(repos))
    (journal_a,) = pv.patcher.unfinished()
    monkeypatch.setattr(pv.registry_client, "commit_patch", real)
    async with ProvenaClient(localstack.config(access_token=bench.lab.member.token)) as pv_b:
        pv_b.patcher.journal_dir = tmp_path / "journals-b"
        done_b = await pv_b.patcher.patch_files([path_b], repositories=dict(repos))
    assert done_b.step == "done"
    with pytest.raises(PatchAborted, match="changed since it was read"):
        await pv.patcher.resume(journal_a.patch_id, repositories=dict(repos))
    assert pv.patcher.journal(journal_a.patch_id).step == "aborted"
    got = await read_all(pv, repos, ids, tmp_path / "read")
    assert set(got.values()) == {b"from B"}
    await assert_no_orphans(pv, repos, ids)  # A's staged copies are gone too
