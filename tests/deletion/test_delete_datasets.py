"""``delete_datasets``: objects deleted and verified gone everywhere, then the records.

Each dataset is held by an S3 repository (in the server's own bucket) and a POSIX one.
"""

from __future__ import annotations

import dataclasses
import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import pytest

from provena_like import NotFound, ProvenaClient
from provena_like.modules.deletion import DeletionEvent, DeletionStep, delete_datasets
from provena_like.repositories import Repository, path_from_dataset
from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread
from tests.support.deletion_helpers import Replicated, listing
from tests.support.registration_db import rows_of
from tests.support.registration_helpers import Lab, Vocabulary, make_lab
from tests.support.users import User

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


async def expected_paths(pv: ProvenaClient, rep: Replicated) -> dict[str, list[str]]:
    """Per repository, the paths of every replica of ``rep``'s datasets."""
    paths: dict[str, list[str]] = {rep.s3: [], rep.posix: []}
    for dataset_id in rep.ids:
        dataset = await pv.registry_client.get_registered_dataset(dataset_id)
        for handle in paths:
            paths[handle].append(path_from_dataset(dataset, handle))
    return {handle: sorted(found) for handle, found in paths.items()}


async def assert_all_gone(pv: ProvenaClient, server: ServerThread, rep: Replicated) -> None:
    """No object left in either repository, no record left on the server."""
    assert await listing(pv, rep) == {rep.s3: [], rep.posix: []}
    for dataset_id in rep.ids:
        with pytest.raises(NotFound):
            await pv.registry_client.get_registered_dataset(dataset_id)
    assert await rows_of(server, rep.session) == {"datasets": [], "file_records": [], "tags": []}


async def test_a_dry_run_lists_every_file_per_repository_and_changes_nothing(
    pv: ProvenaClient, server: ServerThread, rep: Replicated, repos: dict[str, Repository]
) -> None:
    stored = await listing(pv, rep)
    rows = await rows_of(server, rep.session)
    events: list[DeletionEvent] = []
    report = await delete_datasets(
        pv, rep.ids, repositories=repos, dry_run=True, on_progress=events.append
    )
    assert report.dry_run and report.ok
    assert [d.status for d in report.datasets] == ["would_delete", "would_delete"]
    assert report.by_repository() == await expected_paths(pv, rep) == stored
    assert all(r.present and r.recorded_exists for d in report.datasets for r in d.replicas)
    assert {e.step for e in events} == {"planned"} and len(events) == 4
    assert await listing(pv, rep) == stored
    assert await rows_of(server, rep.session) == rows


async def test_a_deletion_removes_every_object_verified_then_the_records(
    pv: ProvenaClient, server: ServerThread, rep: Replicated, repos: dict[str, Repository]
) -> None:
    events: list[DeletionEvent] = []
    report = await delete_datasets(pv, rep.ids, repositories=repos, on_progress=events.append)
    assert report.ok, [d.error for d in report.failed]
    assert [d.status for d in report.datasets] == ["deleted", "deleted"]
    for d in report.datasets:
        assert all(r.removed and r.verified_gone and r.recorded_absent for r in d.replicas)
        steps = [e.step for e in events if e.dataset_id == d.dataset_id]
        # per repository: deleted, verified, recorded; the records go last
        assert steps == ["marked"] + ["deleted", "verified", "recorded"] * 2 + ["removed"]
    await assert_all_gone(pv, server, rep)


CRASH_POINTS: list[tuple[DeletionStep, int, int, list[bool]]] = [
    # (stop after the nth+1 event of this step, the victim's objects left, its exists flags)
    ("marked", 0, 2, [True, True]),  # marked deleting, nothing deleted yet
    ("deleted", 0, 1, [True, True]),  # deleted in the first repository only
    ("verified", 0, 1, [True, True]),  # verified gone there, not yet recorded absent
    ("recorded", 1, 0, [False, False]),  # every replica recorded absent: before the records go
]


@pytest.mark.parametrize(("step", "nth", "objects", "flags"), CRASH_POINTS)
async def test_a_deletion_stopped_at_any_step_completes_when_run_again(
    pv: ProvenaClient,
    server: ServerThread,
    rep: Replicated,
    repos: dict[str, Repository],
    step: DeletionStep,
    nth: int,
    objects: int,
    flags: list[bool],
) -> None:
    victim, other = rep.ids
    dataset = await pv.registry_client.get_registered_dataset(victim)
    paths = {h: path_from_dataset(dataset, h) for h in (rep.s3, rep.posix)}
    seen: list[DeletionEvent] = []

    def crash(event: DeletionEvent) -> None:
        if event.dataset_id != victim or event.step != step:
            return
        seen.append(event)
        if len(seen) > nth:
            raise RuntimeError(f"injected failure after {step}")

    first = await delete_datasets(pv, rep.ids, repositories=repos, on_progress=crash)
    # the failure of one dataset doesn't stop the other
    assert [d.status for d in first.datasets] == ["failed", "deleted"]
    assert "injected failure" in (first.datasets[0].error or "")
    # the victim is being deleted, still readable, and its records are still there
    dataset = await pv.registry_client.get_registered_dataset(victim)
    assert dataset.state == "deleting" and [f.exists for f in dataset.files] == flags
    left = await listing(pv, rep)
    assert sum(paths[h] in left[h] for h in paths) == objects
    again = await delete_datasets(pv, [victim, other], repositories=repos)
    assert [d.status for d in again.datasets] == ["deleted", "not_found"]
    await assert_all_gone(pv, server, rep)


async def test_a_deletion_killed_mid_way_completes_when_run_again(
    pv: ProvenaClient,
    server: ServerThread,
    localstack: LocalStack,
    lab: Lab,
    rep: Replicated,
    repos: dict[str, Repository],
) -> None:
    config = localstack.config()
    args = {
        "base_url": str(config.base_url),
        "token_dir": str(config.token_dir),
        "token": lab.member.token,
        **{f.name: getattr(rep, f.name) for f in dataclasses.fields(rep) if f.name != "contents"},
        "posix_root": str(rep.posix_root),
        "kill_at": [rep.ids[0], "deleted"],  # after deleting it in its first repository
    }
    command = [sys.executable, "-m", "tests.support.deletion_child", json.dumps(args)]
    done = await anyio.run_process(command, cwd=ROOT, check=False, stderr=subprocess.STDOUT)
    assert done.returncode == -signal.SIGKILL, done.stdout.decode()[-3000:]
    left = await listing(pv, rep)
    dataset = await pv.registry_client.get_registered_dataset(rep.ids[0])
    assert dataset.state == "deleting" and all(f.exists for f in dataset.files)
    paths = {h: path_from_dataset(dataset, h) for h in (rep.s3, rep.posix)}
    assert sum(paths[h] in left[h] for h in paths) == 1  # deleted in one repository only
    again = await delete_datasets(pv, rep.ids, repositories=repos)
    # the other dataset may have been finished before the kill
    assert again.datasets[0].status == "deleted", again.datasets[0].error
    assert again.datasets[1].status in ("deleted", "not_found"), again.datasets[1].error
    await assert_all_gone(pv, server, rep)


async def test_a_protected_dataset_is_refused_before_anything_moves(
    pv: ProvenaClient,
    server: ServerThread,
    vocabulary: Vocabulary,
    rep: Replicated,
    repos: dict[str, Repository],
) -> None:
    protected, other = rep.ids
    tagged = await pv.registry_client.tag_dataset(protected, vocabulary.protected_tag)
    assert tagged.protected
    stored = await listing(pv, rep)
    rows = await rows_of(server, rep.session)
    plan = await delete_datasets(pv, [protected], repositories=repos, dry_run=True)
    assert plan.datasets[0].status == "refused" and "protected" in (plan.datasets[0].error or "")
    report = await delete_datasets(pv, [protected], repositories=repos)
    (result,) = report.datasets
    assert result.status == "refused" and "protected" in (result.error or ""), result
    assert not any(r.removed for r in result.replicas)
    assert await listing(pv, rep) == stored
    assert await rows_of(server, rep.session) == rows
    assert (await pv.registry_client.get_registered_dataset(other)).state == "active"


async def test_another_labs_member_cannot_delete_the_datasets(
    client: httpx.AsyncClient,
    localstack: LocalStack,
    new_user: Callable[..., User],
    pv: ProvenaClient,
    server: ServerThread,
    rep: Replicated,
    repos: dict[str, Repository],
) -> None:
    stranger = await make_lab(client, new_user)
    stored = await listing(pv, rep)
    rows = await rows_of(server, rep.session)
    async with ProvenaClient(localstack.config(access_token=stranger.member.token)) as theirs:
        for dry_run in (True, False):
            report = await delete_datasets(theirs, rep.ids, repositories=repos, dry_run=dry_run)
            assert [d.status for d in report.datasets] == ["not_found", "not_found"]
            assert all(not d.replicas for d in report.datasets)
    assert await listing(pv, rep) == stored
    assert await rows_of(server, rep.session) == rows


async def test_a_replica_in_a_repository_not_given_fails_before_anything_changes(
    pv: ProvenaClient, server: ServerThread, rep: Replicated, repos: dict[str, Repository]
) -> None:
    rows = await rows_of(server, rep.session)
    only_s3 = {rep.s3: repos[rep.s3]}
    report = await delete_datasets(pv, rep.ids[:1], repositories=only_s3)
    (result,) = report.datasets
    assert result.status == "failed" and rep.posix in (result.error or "")
    assert "nothing was changed" in (result.error or "")
    assert await rows_of(server, rep.session) == rows
    assert len((await listing(pv, rep))[rep.s3]) == len(rep.ids)
