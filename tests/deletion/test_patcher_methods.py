"""``pv.patcher.delete_datasets`` / ``check_datasets``: the repositories opened by themselves.

One dataset held by an S3 repository (opened with the credentials the server mints) and a
POSIX one (opened where ``repositories`` says it is mounted); one held by a Globus
repository of the session server's transfer service (opened through its local endpoint).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from provena_like import NotFound, ProvenaClient
from provena_like.repositories import RepositoryResolver, RepositoryUnavailable, path_from_dataset
from provena_like.testing.server_thread import ServerThread
from tests.support.deletion_helpers import (
    GlobusHeld,
    Replicated,
    listing,
    replicate,
    sha256,
)
from tests.support.patcher_helpers import write_local
from tests.support.registration_db import rows_of
from tests.support.registration_helpers import Lab, Vocabulary
from tests.support.users import User

pytestmark = pytest.mark.anyio


@pytest.fixture
async def one(
    client: httpx.AsyncClient,
    pv: ProvenaClient,
    lab: Lab,
    vocabulary: Vocabulary,
    registry_admin: User,
    tmp_path: Path,
) -> Replicated:
    """One dataset of a new session, its bytes in both repositories."""
    return await replicate(client, pv, lab, vocabulary, registry_admin, tmp_path / "lab", count=1)


async def test_check_opens_the_repositories_and_repairs_from_a_good_replica(
    pv: ProvenaClient, one: Replicated
) -> None:
    (dataset_id,) = one.ids
    mounted = {one.posix: one.posix_root}
    report = await pv.patcher.check_datasets(one.ids, repositories=mounted)
    assert report.ok and report.unavailable == {}, report.problems
    (d,) = report.datasets
    assert {r.repository: r.status for r in d.replicas} == {one.s3: "ok", one.posix: "ok"}
    # the POSIX repository's mount not given: unchecked, and the replica says why
    partial = await pv.patcher.check_datasets(one.ids)
    assert (
        set(partial.unavailable) == {one.posix} and "local_roots" in partial.unavailable[one.posix]
    )
    (d,) = partial.datasets
    by_handle = {r.repository: r for r in d.replicas}
    assert by_handle[one.s3].status == "ok" and by_handle[one.posix].status == "unchecked"
    assert by_handle[one.posix].error == partial.unavailable[one.posix]
    # a list of handles opens only those
    chosen = await pv.patcher.check_datasets({"session": one.session}, repositories=[one.s3])
    assert [r.status for r in chosen.datasets[0].replicas if r.repository == one.s3] == ["ok"]
    assert set(chosen.unavailable) == {one.posix}
    # the POSIX copy lost: repaired from S3 (the repositories opened for writing)
    dataset = await pv.registry_client.get_registered_dataset(dataset_id)
    lost = one.posix_root / path_from_dataset(dataset, one.posix)
    lost.unlink()
    repaired = await pv.patcher.check_datasets(one.ids, repositories=mounted, repair=True)
    (d,) = repaired.datasets
    fixed = {r.repository: (r.status, r.repaired_from) for r in d.replicas}
    assert fixed == {one.s3: ("ok", None), one.posix: ("missing", one.s3)} and repaired.ok
    assert lost.read_bytes() == one.contents[dataset_id]


async def test_delete_plans_then_deletes_everywhere_and_refuses_without_every_repository(
    pv: ProvenaClient, server: ServerThread, one: Replicated
) -> None:
    stored = await listing(pv, one)
    rows = await rows_of(server, one.session)
    # the POSIX repository not reachable: refused before anything changes, and said why
    refused = await pv.patcher.delete_datasets(one.ids, repositories=[one.s3])
    assert [d.status for d in refused.datasets] == ["failed"]
    assert one.posix in (refused.datasets[0].error or "") and set(refused.unavailable) == {
        one.posix
    }
    assert await listing(pv, one) == stored and await rows_of(server, one.session) == rows
    mounted = {one.posix: str(one.posix_root)}
    plan = await pv.patcher.delete_datasets(one.ids, repositories=mounted, dry_run=True)
    assert [d.status for d in plan.datasets] == ["would_delete"]
    assert plan.by_repository() == stored and plan.unavailable == {}
    assert await listing(pv, one) == stored and await rows_of(server, one.session) == rows
    done = await pv.patcher.delete_datasets(one.ids, repositories=mounted)
    assert done.ok and [d.status for d in done.datasets] == ["deleted"]
    assert await listing(pv, one) == {one.s3: [], one.posix: []}
    with pytest.raises(NotFound):
        await pv.registry_client.get_registered_dataset(one.ids[0])
    assert await rows_of(server, one.session) == {"datasets": [], "file_records": [], "tags": []}


async def test_a_globus_repository_opens_through_the_transfer_service(
    pv: ProvenaClient, globus: GlobusHeld
) -> None:
    ids = [globus.dataset_id]
    # no local endpoint yet: unchecked, and the replica says what is missing
    report = await pv.patcher.check_datasets(ids)
    reason = report.unavailable[globus.repository]
    assert "Globus repository" in reason and "--local-endpoint" in reason, reason
    assert [r.status for r in report.datasets[0].replicas] == ["unchecked"]
    bare = RepositoryResolver(pv.registry_client, local_endpoint=globus.local)
    with pytest.raises(RepositoryUnavailable, match="transfer client"):
        await bare.repository(globus.repository)
    # with one: the bytes are read back through the transfer service and hashed
    pv.patcher.local_endpoint = globus.local
    report = await pv.patcher.check_datasets(ids)
    assert report.ok and report.unavailable == {}, report.problems
    (replica,) = report.datasets[0].replicas
    assert replica.status == "ok" and replica.hash_checked
    flipped = bytes([globus.data[0] ^ 0x01]) + globus.data[1:]
    globus.stored.write_bytes(flipped)
    (replica,) = (await pv.patcher.check_datasets(ids)).datasets[0].replicas
    assert replica.status == "wrong_hash"
    # and a deletion removes the object by a delete task, then the records
    done = await pv.patcher.delete_datasets(ids)
    assert done.ok and [d.status for d in done.datasets] == ["deleted"], done.failed
    assert done.by_repository() == {globus.repository: [replica.path]}
    assert not globus.stored.exists()
    with pytest.raises(NotFound):
        await pv.registry_client.get_registered_dataset(globus.dataset_id)


async def test_a_patch_goes_through_a_globus_repository(
    pv: ProvenaClient, globus: GlobusHeld, tmp_path: Path
) -> None:
    pv.patcher.journal_dir = tmp_path / "journals"
    pv.patcher.local_endpoint = globus.local
    dataset = await pv.registry_client.get_registered_dataset(globus.dataset_id)
    new = b"the new bytes, staged and verified through the transfer service"
    local = write_local(tmp_path / "local", dataset, new)
    done = await pv.patcher.patch_files([local])
    assert done.step == "done", done
    patched = await pv.registry_client.get_registered_dataset(globus.dataset_id)
    ((record,),) = [patched.files]
    assert (patched.size, patched.sha256) == (len(new), sha256(new))
    old_path = dataset.files[0].relative_path
    root = globus.stored.parents[len(Path(old_path).parts) - 1]  # the repository's root
    assert record.relative_path != old_path
    assert (root / record.relative_path).read_bytes() == new
    assert not globus.stored.exists()  # the old object was cleaned up
    (replica,) = (await pv.patcher.check_datasets([globus.dataset_id])).datasets[0].replicas
    assert replica.status == "ok" and replica.hash_checked
