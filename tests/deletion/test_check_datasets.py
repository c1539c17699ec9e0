"""``check_datasets``: each replica against its record (bytes read back), repair from a good one."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from provena_like import ProvenaClient
from provena_like.modules.checking import CheckEvent, DatasetCheck, check_datasets
from provena_like.repositories import Repository, path_from_dataset
from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread
from tests.support.deletion_helpers import Replicated, listing, put_behind, s3_key, sha256
from tests.support.registration_db import rows_of

pytestmark = pytest.mark.anyio


def statuses(datasets: Sequence[DatasetCheck]) -> list[dict[str, str]]:
    """Per dataset, repository handle → status."""
    return [{r.repository: r.status for r in d.replicas} for d in datasets]


async def test_every_replica_checks_ok_by_ids_or_by_query(
    pv: ProvenaClient, rep: Replicated, repos: dict[str, Repository]
) -> None:
    events: list[CheckEvent] = []
    by_ids = await check_datasets(pv, rep.ids, repositories=repos, on_progress=events.append)
    assert by_ids.ok, by_ids.problems
    assert statuses(by_ids.datasets) == [{rep.s3: "ok", rep.posix: "ok"}] * 2
    assert all(r.hash_checked for d in by_ids.datasets for r in d.replicas)
    assert [e.step for e in events] == ["checked"] * 4
    by_query = await check_datasets(pv, {"session": rep.session}, repositories=repos)
    assert sorted(d.dataset_id for d in by_query.datasets) == sorted(rep.ids)
    assert by_query.ok
    # a replica in a repository not given can't be checked: a problem, said so
    partial = await check_datasets(pv, rep.ids[:1], repositories={rep.s3: repos[rep.s3]})
    (d,) = partial.datasets
    assert {r.repository: r.status for r in d.replicas} == {rep.s3: "ok", rep.posix: "unchecked"}
    assert not partial.ok and rep.posix in (d.replicas[0].error or d.replicas[1].error or "")


@pytest.fixture
async def damaged(
    pv: ProvenaClient, localstack: LocalStack, rep: Replicated, repos: dict[str, Repository]
) -> dict[str, str]:
    """A: a flipped byte in S3 (its metadata still claims the right sha256). B: missing in
    POSIX, one byte more in S3. Returns each dataset's repository paths by handle."""
    a, b = rep.ids
    paths: dict[str, str] = {}
    for dataset_id in rep.ids:
        dataset = await pv.registry_client.get_registered_dataset(dataset_id)
        for handle in (rep.s3, rep.posix):
            paths[dataset_id + handle] = path_from_dataset(dataset, handle)
    good_a = rep.contents[a]
    flipped = bytes([good_a[0] ^ 0x01]) + good_a[1:]
    await put_behind(localstack, s3_key(rep, paths[a + rep.s3]), flipped, sha256(good_a))
    await repos[rep.posix].delete(paths[b + rep.posix])
    longer = rep.contents[b] + b"!"
    await put_behind(localstack, s3_key(rep, paths[b + rep.s3]), longer, sha256(longer))
    return paths


async def test_a_flipped_byte_a_missing_object_and_a_wrong_size_are_found(
    pv: ProvenaClient,
    server: ServerThread,
    rep: Replicated,
    repos: dict[str, Repository],
    damaged: dict[str, str],
) -> None:
    stored = await listing(pv, rep)
    rows = await rows_of(server, rep.session)
    report = await check_datasets(pv, rep.ids, repositories=repos)
    assert statuses(report.datasets) == [
        {rep.s3: "wrong_hash", rep.posix: "ok"},
        {rep.s3: "wrong_size", rep.posix: "missing"},
    ]
    assert not report.ok and len(report.problems) == 2
    # the flipped byte is found only by reading the bytes back: the metadata still lies
    trusting = await check_datasets(pv, rep.ids[:1], repositories=repos, verify=False)
    assert statuses(trusting.datasets) == [{rep.s3: "ok", rep.posix: "ok"}]
    # checking changes nothing
    assert await listing(pv, rep) == stored
    assert await rows_of(server, rep.session) == rows


async def test_repair_copies_from_the_good_replica_only(
    pv: ProvenaClient,
    server: ServerThread,
    rep: Replicated,
    repos: dict[str, Repository],
    damaged: dict[str, str],
) -> None:
    a, b = rep.ids
    rows_b = [r for r in (await rows_of(server, rep.session))["file_records"] if b in r]
    events: list[CheckEvent] = []
    report = await check_datasets(
        pv, rep.ids, repositories=repos, repair=True, on_progress=events.append
    )
    first, second = report.datasets
    bad_a = next(r for r in first.replicas if r.repository == rep.s3)
    assert bad_a.status == "wrong_hash" and bad_a.repaired_from == rep.posix, bad_a
    assert first.ok and not bad_a.problem
    assert [(e.dataset_id, e.repository) for e in events if e.step == "repaired"] == [(a, rep.s3)]
    # B has no good replica: reported, nothing changed
    assert not second.ok
    assert all(r.repaired_from is None for r in second.replicas)
    assert all("no good replica" in (r.repair_error or "") for r in second.replicas)
    assert not report.ok and report.problems == [second]
    listed = await listing(pv, rep)
    assert damaged[b + rep.posix] not in listed[rep.posix]
    assert [r for r in (await rows_of(server, rep.session))["file_records"] if b in r] == rows_b
    # A's S3 copy holds the right bytes again, and the server saw them (its own bucket)
    again = await check_datasets(pv, [a], repositories=repos)
    assert again.ok, again.problems
    dataset = await pv.registry_client.get_registered_dataset(a)
    record = next(f for f in dataset.files if f.repository == rep.s3)
    assert record.exists and record.verified_at is not None
    # a missing copy comes back from the good one too
    await repos[rep.posix].delete(damaged[a + rep.posix])
    report = await check_datasets(pv, [a], repositories=repos, repair=True)
    (missing,) = [r for r in report.datasets[0].replicas if r.repository == rep.posix]
    assert (missing.status, missing.repaired_from) == ("missing", rep.s3) and report.ok
    assert (await check_datasets(pv, [a], repositories=repos)).ok
