"""``pv.patcher.patch_files``: plan, stage, verify, commit, clean up — against S3 and POSIX."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from provena_like import ProvenaClient
from provena_like._core.errors import UsageError
from provena_like.modules.patcher import PatchAborted, Patcher, ProtectedDatasets
from provena_like.modules.patcher.journal import Journal
from provena_like.repositories import OpenRepositories, is_staging_path
from provena_like.storage.events import TransferEvent, TransferProgress
from tests.support.patcher_helpers import (
    Bench,
    current_paths,
    hold_files,
    listing,
    read_all,
    sha256,
    write_local,
)

pytestmark = pytest.mark.anyio


async def test_a_patch_replaces_every_copy_and_leaves_no_orphan(
    client, pv: ProvenaClient, bench: Bench, repos: OpenRepositories, tmp_path: Path
) -> None:
    v = bench.vocabulary
    datasets = await hold_files(
        client, bench, repos, {f"alf/{v.name()}": b"old one", f"alf/{v.name('intervals')}": b"x2"}
    )
    ids = [str(d.id) for d in datasets]
    local = tmp_path / "local"
    paths = [write_local(local, d, f"new {i}".encode()) for i, d in enumerate(datasets)]
    patcher = pv.patcher
    patcher.journal_dir = tmp_path / "journals"
    dry = await patcher.patch_files(
        paths, repositories={bench.posix: bench.posix_root}, dry_run=True
    )
    assert dry.dry_run and dry.step == "planned"
    assert set(dry.plan.repositories) == {bench.s3, bench.posix}
    assert {f.dataset for f in dry.plan.files} == set(ids)
    assert all(is_staging_path(loc.staged_path) for f in dry.plan.files for loc in f.locations)
    assert not (tmp_path / "journals").exists()  # a dry run writes nothing
    assert await read_all(pv, repos, ids, tmp_path / "r0") == {
        (d, h): c
        for d, c in zip(ids, (b"old one", b"x2"), strict=True)
        for h in (bench.s3, bench.posix)
    }
    events: list[TransferEvent] = []
    outcome = await patcher.patch_files(
        paths, repositories={bench.posix: bench.posix_root}, on_progress=events.append
    )
    assert outcome.step == "done" and outcome.result is not None
    assert len(outcome.cleaned) == 4
    with pytest.raises(UsageError, match="no journal"):  # done: the server keeps its history
        patcher.journal(outcome.patch_id)
    last = [e for e in events if isinstance(e, TransferProgress)][-1]
    assert (last.files_done, last.files_total) == (4, 4)
    assert await read_all(pv, repos, ids, tmp_path / "r1") == {
        (d, h): f"new {i}".encode() for i, d in enumerate(ids) for h in (bench.s3, bench.posix)
    }
    for d in ids:
        assert (await pv.registry_client.get_registered_dataset(d)).sha256 in {
            sha256(b"new 0"),
            sha256(b"new 1"),
        }
    recorded = await current_paths(pv, ids)
    assert {h: set(p) for h, p in (await listing(repos, recorded)).items()} == recorded
    # the same paths again: nothing to do; a second patch of the new content works too
    again = await patcher.patch_files(paths, repositories={bench.posix: bench.posix_root})
    assert again.step == "done" and len(again.plan.unchanged) == 2 and not again.plan.files
    paths[0].write_bytes(b"third")
    third = await patcher.patch_files(paths[:1], repositories={bench.posix: bench.posix_root})
    assert third.step == "done" and len(third.cleaned) == 2
    recorded = await current_paths(pv, ids)
    assert {h: set(p) for h, p in (await listing(repos, recorded)).items()} == recorded
    assert (await read_all(pv, repos, ids[:1], tmp_path / "r2"))[ids[0], bench.s3] == b"third"


async def test_refusals_before_anything_moves(
    client, pv: ProvenaClient, bench: Bench, repos: OpenRepositories, tmp_path: Path
) -> None:
    v = bench.vocabulary
    (dataset,) = await hold_files(client, bench, repos, {f"alf/{v.name()}": b"old"})
    before = await listing(repos, (bench.s3, bench.posix))
    local = tmp_path / "local"
    path = write_local(local, dataset, b"new")
    stray = local / Path(path).relative_to(local).parent / f"{v.obj}.nothing.{v.ext}"
    stray.write_bytes(b"?")
    patcher = pv.patcher
    patcher.journal_dir = tmp_path / "journals"
    roots = {bench.posix: bench.posix_root}
    with pytest.raises(UsageError, match=str(stray)):
        await patcher.patch_files([path, stray], repositories=roots)
    with pytest.raises(UsageError, match=bench.posix):  # a POSIX repository not mounted here
        await patcher.patch_files([path])
    with pytest.raises(UsageError, match=bench.posix):  # every copy or none
        await patcher.patch_files([path], repositories=[bench.s3])
    r = await client.post(
        f"/registered-datasets/{dataset.id}/tags",
        json={"tag": v.protected_tag},
        headers=bench.lab.member.headers,
    )
    assert r.status_code in (200, 201), r.text
    with pytest.raises(ProtectedDatasets, match=str(dataset.id)):  # force: tests/patcher/test_force
        await patcher.patch_files([path], repositories=roots)
    assert await listing(repos, (bench.s3, bench.posix)) == before
    assert (await pv.registry_client.get_registered_dataset(str(dataset.id))).sha256 == sha256(
        b"old"
    )


async def test_a_patch_id_an_earlier_patch_used_is_refused_by_the_commit(
    client, pv: ProvenaClient, bench: Bench, repos: OpenRepositories, tmp_path: Path
) -> None:
    # a new patch doesn't ask the server first whether "its" commit happened: given the id
    # of a finished patch (whose journal is gone), it must not take that patch's commit for
    # its own (and report done with nothing changed and its staged copies left over)
    v = bench.vocabulary
    first, second = await hold_files(
        client, bench, repos, {f"alf/{v.name()}": b"one", f"alf/{v.name('intervals')}": b"two"}
    )
    local = tmp_path / "local"
    patcher = pv.patcher
    patcher.journal_dir = tmp_path / "journals"
    roots = {bench.posix: bench.posix_root}
    patch_id = str(uuid.uuid4())
    path = write_local(local, first, b"one, patched")
    done = await patcher.patch_files([path], repositories=roots, patch_id=patch_id)
    assert done.step == "done"
    before = await listing(repos, (bench.s3, bench.posix))
    other = write_local(local, second, b"two, patched")
    with pytest.raises(PatchAborted, match="patch_id"):
        await patcher.patch_files([other], repositories=roots, patch_id=patch_id)
    assert (await pv.registry_client.get_registered_dataset(str(second.id))).sha256 == sha256(
        b"two"
    )
    assert await listing(repos, (bench.s3, bench.posix)) == before  # its staging removed


class _Recording(Patcher):
    """A Patcher that notes each journal write: its step, and whether all was verified."""

    saved: list[tuple[str, bool]]

    async def _save(self, journal: Journal) -> None:
        verified = all(loc.verified for f in journal.files for loc in f.locations)
        self.saved.append((journal.step, verified))
        await super()._save(journal)


async def test_a_patch_verified_while_staging_journals_staged_and_verified_once(
    client, pv: ProvenaClient, bench: Bench, repos: OpenRepositories, tmp_path: Path
) -> None:
    """Every copy read back beside staging: no "staged" journal write before "verified"."""
    v = bench.vocabulary
    datasets = await hold_files(client, bench, repos, {f"alf/{v.name()}": b"old"})
    paths = [write_local(tmp_path / "local", datasets[0], b"new")]
    patcher = _Recording(pv.registry_client, pv.registration, journal_dir=tmp_path / "journals")
    patcher.saved = []
    outcome = await patcher.patch_files(paths, repositories={bench.posix: bench.posix_root})
    assert outcome.step == "done"
    steps = [step for step, _ in patcher.saved]
    assert "staged" not in steps
    assert steps[-2:] == ["verified", "committed"]
    assert patcher.saved[-2][1]  # "verified" is written with every copy verified
