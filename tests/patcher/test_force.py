"""``force=True`` on a protected revision: the new bytes become a new revision of the dataset.

Registered not present and not default, staged, verified, then made present and the default
in the commit; the protected revision is never touched. Interrupted at each step, readers
get the old or the new bytes from the dataset's default revision (and the protected one's
always), re-running completes, and no orphan is left in any repository.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.errors import APIConnectionError
from provena_like.models.registration import RegisteredDataset
from provena_like.modules.patcher import PatchAborted, ProtectedDatasets
from provena_like.repositories import OpenRepositories, Repository
from tests.support.patcher_helpers import (
    Bench,
    Flaky,
    Injected,
    assert_no_orphans,
    hold_files,
    listing,
    read_all,
    write_local,
)

pytestmark = pytest.mark.anyio

OLD = [b"protected old", b"plain old"]
NEW = [b"protected new!", b"plain new!"]


async def _setup(
    client: httpx.AsyncClient, pv: ProvenaClient, bench: Bench, repos: OpenRepositories, tmp: Path
) -> tuple[list[RegisteredDataset], list[Path]]:
    """A protected dataset and a plain one, held in both repositories; their new versions."""
    v = bench.vocabulary
    names = [f"alf/{v.name()}", f"alf/{v.name('intervals')}"]
    datasets = await hold_files(client, bench, repos, dict(zip(names, OLD, strict=True)))
    tagged = await pv.registry_client.tag_dataset(str(datasets[0].id), v.protected_tag)
    assert tagged.protected and tagged.default
    paths = [write_local(tmp / "local", d, new) for d, new in zip(datasets, NEW, strict=True)]
    pv.patcher.journal_dir = tmp / "journals"
    return datasets, paths


async def _revisions(pv: ProvenaClient, dataset: RegisteredDataset) -> list[RegisteredDataset]:
    """Every revision of ``dataset``'s dataset (same session, collection and name)."""
    return [
        d
        async for d in pv.registry_client.iter_registered_datasets(session=dataset.session)
        if (d.collection, d.name) == (dataset.collection, dataset.name)
    ]


async def _readers(
    pv: ProvenaClient, repos: OpenRepositories, datasets: list[RegisteredDataset], tmp: Path
) -> RegisteredDataset | None:
    """What readers get now: old or new bytes, never a mix or nothing; the new revision if any.

    The protected revision reads back its old bytes from every repository; the default
    revision of each dataset reads back old or new ones; a new revision that is not the
    default yet says it has no file anywhere.
    """
    protected, plain = (str(d.id) for d in datasets)
    assert await read_all(pv, repos, [protected], tmp / "protected") == {
        (protected, h): OLD[0] for h in repos
    }
    got = await read_all(pv, repos, [plain], tmp / "plain")
    assert set(got.values()) in ({OLD[1]}, {NEW[1]})
    revisions = await _revisions(pv, datasets[0])
    (default,) = [d for d in revisions if d.default]
    read = await read_all(pv, repos, [str(default.id)], tmp / "default")
    assert set(read.values()) == ({OLD[0]} if default.id == protected else {NEW[0]})
    new = [d for d in revisions if d.id != protected]
    assert len(new) <= 1
    if new and not new[0].default:
        assert new[0].files and not any(f.exists for f in new[0].files)
    return new[0] if new else None


async def _completed(
    pv: ProvenaClient, repos: OpenRepositories, datasets: list[RegisteredDataset], tmp: Path
) -> RegisteredDataset:
    """The new revision is the default with the new bytes everywhere; no orphan is left."""
    new = await _readers(pv, repos, datasets, tmp)
    assert new is not None and new.default and all(f.exists for f in new.files)
    protected = await pv.registry_client.get_registered_dataset(str(datasets[0].id))
    assert protected.protected and not protected.default
    assert protected.files == datasets[0].files  # its records are untouched
    await assert_no_orphans(pv, repos, [str(d.id) for d in datasets] + [str(new.id)])
    assert not pv.patcher.unfinished()
    return new


async def test_force_registers_a_new_revision_and_makes_it_the_default(
    client: httpx.AsyncClient,
    pv: ProvenaClient,
    bench: Bench,
    repos: OpenRepositories,
    tmp_path: Path,
) -> None:
    datasets, paths = await _setup(client, pv, bench, repos, tmp_path)
    with pytest.raises(ProtectedDatasets, match="force"):
        await pv.patcher.patch_files(paths, repositories=dict(repos))
    before = (await listing(repos, repos), await _revisions(pv, datasets[0]))
    dry = await pv.patcher.patch_files(paths, repositories=dict(repos), dry_run=True, force=True)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    by_dataset = {f.dataset: f for f in dry.plan.files}
    forced, plain = (by_dataset[str(d.id)] for d in datasets)
    assert forced.new_revision == today
    assert forced.new_dataset is None and plain.new_revision is None
    for loc in forced.locations:
        assert f"/alf/#{today}#/" in loc.staged_path and f"/alf/#{today}#/" in loc.old_path
    assert (await listing(repos, repos), await _revisions(pv, datasets[0])) == before
    assert not (tmp_path / "journals").exists()  # a dry run writes nothing

    outcome = await pv.patcher.patch_files(paths, repositories=dict(repos), force=True)
    assert outcome.step == "done" and outcome.result is not None and outcome.result.force
    new = await _completed(pv, repos, datasets, tmp_path / "after")
    planned = {f.dataset: f for f in outcome.plan.files}
    assert new.revision == today and planned[str(datasets[0].id)].new_dataset == str(new.id)
    committed = {f.dataset.id: f.dataset for f in outcome.result.files}
    assert committed[new.id].default and committed[new.id].revision == today
    assert {(r, p) for r, p in outcome.cleaned} == {
        (loc.repository, loc.old_path) for loc in planned[str(datasets[1].id)].locations
    }  # the plain file's old objects only: the protected ones stay

    # the new revision is not protected: a patch of its file replaces it in place
    third = write_local(tmp_path / "third", new, b"third")
    again = await pv.patcher.patch_files([third], repositories=dict(repos), force=True)
    assert again.step == "done" and again.plan.files[0].new_revision is None
    assert again.plan.files[0].dataset == str(new.id)
    assert await read_all(pv, repos, [str(new.id)], tmp_path / "third-read") == {
        (str(new.id), h): b"third" for h in repos
    }


INJECTED: dict[str, tuple[str, int]] = {
    "stage (first put)": ("put", 1),
    "verify (first read-back)": ("stat", 1),
    "clean up (first delete)": ("delete", 1),
}


@pytest.mark.parametrize(
    "where", ["register (second repository)", *INJECTED, "commit (answer lost)"]
)
async def test_force_interrupted_at_each_step_resumes(
    where: str,
    client: httpx.AsyncClient,
    pv: ProvenaClient,
    bench: Bench,
    repos: OpenRepositories,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    datasets, paths = await _setup(client, pv, bench, repos, tmp_path)
    given: dict[str, Repository] = dict(repos)
    expected: type[Exception] = APIConnectionError
    if where in INJECTED:
        given[bench.s3] = Flaky(repos[bench.s3], INJECTED[where])
        expected = Injected
    elif where.startswith("register"):
        real_register: Callable[..., Awaitable[Any]] = pv.registry_client.register_files
        calls: list[bool] = []

        async def register(*args: Any, **kwargs: Any) -> Any:
            calls.append(kwargs["dry_run"])
            if len(calls) == 3:  # the second repository's dry run: the first one is registered
                raise APIConnectionError("injected: the connection broke")
            return await real_register(*args, **kwargs)

        monkeypatch.setattr(pv.registry_client, "register_files", register)
    else:
        real_commit: Callable[..., Awaitable[Any]] = pv.registry_client.commit_patch

        async def commit(*args: Any, **kwargs: Any) -> Any:
            await real_commit(*args, **kwargs)
            raise APIConnectionError("injected: the answer was lost")

        monkeypatch.setattr(pv.registry_client, "commit_patch", commit)
    with pytest.raises(expected):
        await pv.patcher.patch_files(paths, repositories=given, force=True)
    monkeypatch.undo()
    (journal,) = pv.patcher.unfinished()
    new = await _readers(pv, repos, datasets, tmp_path / "read")
    assert new is not None  # registered (in one repository at least) before anything moved
    assert new.default == where.startswith(("commit", "clean up"))  # committed or not
    outcome = await pv.patcher.patch_files(paths, repositories=dict(repos), force=True)
    assert outcome.resumed and outcome.patch_id == journal.patch_id and outcome.step == "done"
    assert (await _completed(pv, repos, datasets, tmp_path / "after")).id == new.id


async def test_force_with_a_corrupted_staged_copy_removes_the_new_revision(
    client: httpx.AsyncClient,
    pv: ProvenaClient,
    bench: Bench,
    repos: OpenRepositories,
    tmp_path: Path,
) -> None:
    datasets, paths = await _setup(client, pv, bench, repos, tmp_path)
    before = (await listing(repos, repos), await _revisions(pv, datasets[0]))
    given: dict[str, Repository] = dict(repos)
    given[bench.posix] = Flaky(repos[bench.posix], corrupt=True)
    with pytest.raises(PatchAborted, match="staged copy"):
        await pv.patcher.patch_files(paths, repositories=given, force=True)
    # nothing committed, the staged copies and the new revision's records are gone
    assert (await listing(repos, repos), await _revisions(pv, datasets[0])) == before
    assert await _readers(pv, repos, datasets, tmp_path / "read") is None
    outcome = await pv.patcher.patch_files(paths, repositories=dict(repos), force=True)
    assert outcome.step == "done" and not outcome.resumed
    await _completed(pv, repos, datasets, tmp_path / "after")
