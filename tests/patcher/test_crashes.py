"""A patch interrupted after each step: readers get the old or the new bytes, never a mix or
nothing; re-running completes it; afterwards no repository holds an orphan."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.errors import APIConnectionError, NotFound
from provena_like.modules.patcher import PatchAborted
from provena_like.repositories import OpenRepositories, Repository
from provena_like.testing.localstack import LocalStack
from tests.support.patcher_helpers import (
    Bench,
    Flaky,
    Injected,
    assert_no_orphans,
    hold_files,
    listing,
    read_all,
    sha256,
    write_local,
)

pytestmark = pytest.mark.anyio

OLD = [b"old zero", b"old one", b"old two"]
NEW = [b"new zero!", b"new one!", b"new two!"]


async def _setup(
    client: httpx.AsyncClient, pv: ProvenaClient, bench: Bench, repos: OpenRepositories, tmp: Path
) -> tuple[list[str], list[Path]]:
    v = bench.vocabulary
    names = [f"alf/{v.name()}", f"alf/{v.name('intervals')}", f"alf/sub/{v.name()}"]
    datasets = await hold_files(client, bench, repos, dict(zip(names, OLD, strict=True)))
    paths = [write_local(tmp / "local", d, new) for d, new in zip(datasets, NEW, strict=True)]
    pv.patcher.journal_dir = tmp / "journals"
    return [str(d.id) for d in datasets], paths


async def _old_or_new(
    pv: ProvenaClient, repos: OpenRepositories, ids: list[str], tmp: Path
) -> None:
    """Each reader gets, from every repository, exactly the bytes of the current record."""
    got = await read_all(pv, repos, ids, tmp)  # checked against the recorded sha256
    for (dataset_id, _), data in got.items():
        i = ids.index(dataset_id)
        assert data in (OLD[i], NEW[i])


async def _completed(pv: ProvenaClient, repos: OpenRepositories, ids: list[str], tmp: Path) -> None:
    """Every reader gets the new bytes from every repository, and no orphan is left."""
    got = await read_all(pv, repos, ids, tmp)
    assert got == {(d, h): NEW[i] for i, d in enumerate(ids) for h in repos}
    await assert_no_orphans(pv, repos, ids)


STEPS: dict[str, tuple[str, int]] = {
    "after plan (first put)": ("put", 1),
    "mid stage (third put)": ("put", 3),
    "after stage (first read-back)": ("stat", 1),
    "after commit (first clean-up delete)": ("delete", 1),
    "mid clean-up (second delete)": ("delete", 2),
}


@pytest.mark.parametrize("where", list(STEPS))
async def test_a_failing_repository_at_each_step(
    where: str,
    client: httpx.AsyncClient,
    pv: ProvenaClient,
    bench: Bench,
    repos: OpenRepositories,
    tmp_path: Path,
) -> None:
    ids, paths = await _setup(client, pv, bench, repos, tmp_path)
    flaky: dict[str, Repository] = {bench.s3: Flaky(repos[bench.s3], STEPS[where])}
    flaky[bench.posix] = repos[bench.posix]
    with pytest.raises(Injected):
        await pv.patcher.patch_files(paths, repositories=flaky)
    (journal,) = pv.patcher.unfinished()
    await _old_or_new(pv, repos, ids, tmp_path / "read")
    committed = journal.step == "committed"
    assert committed == where.startswith(("after commit", "mid clean"))
    digests = {(await pv.registry_client.get_registered_dataset(d)).sha256 for d in ids}
    assert digests == {sha256(b) for b in (NEW if committed else OLD)}
    outcome = await pv.patcher.patch_files(paths, repositories=dict(repos))  # the same paths
    assert outcome.resumed and outcome.step == "done" and outcome.patch_id == journal.patch_id
    assert not pv.patcher.unfinished()
    await _completed(pv, repos, ids, tmp_path / "after")


@pytest.mark.parametrize("lost_answer", [False, True], ids=["before-commit", "answer-lost"])
async def test_a_failure_around_the_commit(
    lost_answer: bool,
    client: httpx.AsyncClient,
    pv: ProvenaClient,
    bench: Bench,
    repos: OpenRepositories,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The connection breaks before the commit is sent, or after it went through."""
    ids, paths = await _setup(client, pv, bench, repos, tmp_path)
    real: Callable[..., Awaitable[Any]] = pv.registry_client.commit_patch

    async def broken(*args: Any, **kwargs: Any) -> Any:
        if lost_answer:
            await real(*args, **kwargs)
        raise APIConnectionError("injected: the connection broke")

    monkeypatch.setattr(pv.registry_client, "commit_patch", broken)
    with pytest.raises(APIConnectionError):
        await pv.patcher.patch_files(paths, repositories=dict(repos))
    (journal,) = pv.patcher.unfinished()
    assert journal.step == "verified"
    await _old_or_new(pv, repos, ids, tmp_path / "read")
    monkeypatch.undo()
    if lost_answer:
        assert (await pv.registry_client.get_patch(journal.patch_id)).patch_id == journal.patch_id
    else:
        with pytest.raises(NotFound):
            await pv.registry_client.get_patch(journal.patch_id)
    outcome = await pv.patcher.resume(journal.patch_id, repositories=dict(repos))
    assert outcome.step == "done" and outcome.result is not None
    await _completed(pv, repos, ids, tmp_path / "after")


@pytest.mark.parametrize(
    ("which", "read_back_bytes"), [("s3", False), ("posix", False), ("s3", True)]
)
async def test_a_corrupted_staged_copy_is_caught_and_nothing_committed(
    which: str,
    read_back_bytes: bool,
    client: httpx.AsyncClient,
    pv: ProvenaClient,
    bench: Bench,
    repos: OpenRepositories,
    tmp_path: Path,
) -> None:
    ids, paths = await _setup(client, pv, bench, repos, tmp_path)
    before = await listing(repos, (bench.s3, bench.posix))
    handle = bench.s3 if which == "s3" else bench.posix
    wrapped: dict[str, Repository] = dict(repos)
    wrapped[handle] = Flaky(repos[handle], corrupt=True)
    pv.patcher.read_back_bytes = read_back_bytes  # the store's md5 (S3's ETag), or the bytes
    with pytest.raises(PatchAborted, match="staged copy") as err:
        await pv.patcher.patch_files(paths, repositories=wrapped)
    assert handle in str(err.value)
    with pytest.raises(NotFound):
        await pv.registry_client.get_patch(err.value.patch_id)
    assert pv.patcher.journal(err.value.patch_id).step == "aborted"
    assert await listing(repos, (bench.s3, bench.posix)) == before  # staged copies removed
    got = await read_all(pv, repos, ids, tmp_path / "read")
    assert got == {(d, h): OLD[i] for i, d in enumerate(ids) for h in (bench.s3, bench.posix)}
    # patching again (a new patch) works
    outcome = await pv.patcher.patch_files(paths, repositories=dict(repos))
    assert outcome.step == "done" and outcome.patch_id != err.value.patch_id
    await assert_no_orphans(pv, repos, ids)


async def test_a_patch_killed_mid_stage_resumes(
    client: httpx.AsyncClient,
    localstack: LocalStack,
    pv: ProvenaClient,
    bench: Bench,
    repos: OpenRepositories,
    tmp_path: Path,
) -> None:
    ids, paths = await _setup(client, pv, bench, repos, tmp_path)
    marker = tmp_path / "stalled"
    argv = [
        sys.executable,
        "-m",
        "tests.support.patcher_child",
        localstack.url,
        bench.lab.member.token,
        str(pv.patcher.journal_dir),
        bench.posix,
        str(bench.posix_root),
        str(marker),
        "1",
        *map(str, paths),
    ]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        with anyio.fail_after(120):
            while not marker.exists():
                assert child.poll() is None, child.stdout.read() if child.stdout else ""
                await anyio.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=60)
        if child.stdout:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    (journal,) = pv.patcher.unfinished()
    assert journal.step == "planned"
    await _old_or_new(pv, repos, ids, tmp_path / "read")
    staged = await listing(repos, (bench.posix,))
    assert any(p.startswith(".staging/") for p in staged[bench.posix])  # it was mid-stage
    outcome = await pv.patcher.patch_files(paths, repositories=dict(repos))
    assert outcome.resumed and outcome.patch_id == journal.patch_id and outcome.step == "done"
    await _completed(pv, repos, ids, tmp_path / "after")


async def test_a_resumed_patch_reads_every_staged_copy_back_again(
    client: httpx.AsyncClient,
    pv: ProvenaClient,
    bench: Bench,
    repos: OpenRepositories,
    tmp_path: Path,
) -> None:
    """Staging reads each batch back as it goes; a crash mid-way trusts none of it on resume.

    The first run stops at its first read-back (staging was under way); the journal then
    claims every staged copy verified, and one of them is corrupted in its repository: the
    resumed patch must read it back, catch it and commit nothing.
    """
    ids, paths = await _setup(client, pv, bench, repos, tmp_path)
    flaky: dict[str, Repository] = dict(repos)
    flaky[bench.s3] = Flaky(repos[bench.s3], ("stat", 1))
    with pytest.raises(Injected):
        await pv.patcher.patch_files(paths, repositories=flaky)
    (journal,) = pv.patcher.unfinished()
    assert journal.step == "planned"
    staged = [(f, loc) for f in journal.files for loc in f.locations if loc.staged]
    assert staged  # the batch whose read-back failed was stored
    for _, loc in staged:
        loc.verified = True
    journal.save(pv.patcher.journal_dir)
    f, loc = staged[0]
    data = bytearray(Path(f.path).read_bytes())
    data[0] ^= 0x01
    flipped = tmp_path / "flipped"
    flipped.write_bytes(bytes(data))
    await repos[loc.repository].put(flipped, loc.staged_path)
    with pytest.raises(PatchAborted, match="staged copy") as err:
        await pv.patcher.patch_files(paths, repositories=dict(repos))
    assert err.value.patch_id == journal.patch_id
    assert pv.patcher.journal(journal.patch_id).step == "aborted"
    got = await read_all(pv, repos, ids, tmp_path / "read")
    assert got == {(d, h): OLD[i] for i, d in enumerate(ids) for h in (bench.s3, bench.posix)}
