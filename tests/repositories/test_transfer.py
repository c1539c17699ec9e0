"""TransferRepository beyond the contract: one task for many files, and the failure paths.

Against the session server's transfer service: a task that FAILED, a put through a symlink
that leads outside the collection, a collection the user may not use, a caller cancelled
while its task runs. Against globus-sdk's registered responses (real Globus, which no test can
reach, and which pauses tasks; our service never does): a task that is INACTIVE or stuck.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import responses
from globus_sdk.testing import load_response

from provena_like import (
    ChecksumMismatch,
    Forbidden,
    TaskFailed,
    TransferError,
    UnsafePath,
    UsageError,
)
from provena_like.clients.transfer import TransferClient
from provena_like.repositories import SPOOL, LocalEndpoint, TransferRepository, globus_root
from provena_like.testing.server_thread import ServerThread
from tests.support.globus_repository import GlobusPlace, backing, new_repository
from tests.support.globus_responses import (
    event_list,
    file_doc,
    globus_mock,
    register,
    register_task,
    sent_json,
    task_doc,
)
from tests.support.repository_helpers import sha, write
from tests.support.transfer import new_root, register_collection
from tests.support.transfer_tasks import (
    fifo_writers_fixture,  # noqa: F401 - the fifo_writers fixture
)
from tests.support.users import User

__all__ = ["globus_mock"]

pytestmark = pytest.mark.anyio


@pytest.fixture
def admin(new_user: Callable[..., User]) -> User:
    return new_user("admin", system_roles=("admin",))


@pytest.fixture
async def repo(globus_local: GlobusPlace) -> AsyncIterator[TransferRepository]:
    """A repository on a local collection (its files are on this machine)."""
    async with new_repository(globus_local) as opened:
        yield opened


async def task_count(client: TransferClient) -> int:
    return len([t async for t in client.iter_tasks(page_size=100)])


async def test_put_many_and_delete_many_are_one_task_each(
    repo: TransferRepository, tmp_path: Path
) -> None:
    files = {f"s/{i % 3}/f{i}.bin": os.urandom(100 + i) for i in range(12)}
    pairs = [(write(tmp_path / p, data), p) for p, data in files.items()]
    before = await task_count(repo.client)

    infos = await repo.put_many(pairs)
    assert [(i.path, i.size, i.sha256) for i in infos] == [
        (p, len(d), sha(d)) for p, d in files.items()
    ]
    assert await task_count(repo.client) == before + 1
    stored = backing(repo).directory
    assert stored is not None
    assert {p: (stored / p).read_bytes() for p in files} == files
    assert [i.path async for i in repo.list("s/")] == sorted(files)

    await repo.delete_many([*files, "never/there.bin"])
    assert await task_count(repo.client) == before + 2
    assert [i async for i in repo.list()] == []
    assert await repo.spooled() == [] and await repo.incomplete() == []
    with pytest.raises(UsageError):
        await repo.put_many([pairs[0], pairs[0]])
    assert await repo.put_many([]) == []


async def test_a_failed_task_raises_naming_the_path_and_keeps_nothing(
    repo: TransferRepository, tmp_path: Path
) -> None:
    stored = backing(repo).directory
    assert stored is not None
    write(stored / "a" / "x.bin" / "inside.txt", b"a folder where the object would go")
    with pytest.raises(TaskFailed, match=r"put a/x\.bin.*FAILED") as failed:
        await repo.put(write(tmp_path / "x.bin", b"new"), "a/x.bin")
    assert failed.value.outcome == "FAILED"
    task = await repo.client.get_task(failed.value.task_id)
    assert task.status == "FAILED" and task.fatal_error is not None
    assert (stored / "a" / "x.bin" / "inside.txt").read_bytes().startswith(b"a folder")
    assert await repo.spooled() == [] and await repo.incomplete() == []


async def test_a_symlink_out_of_the_collection_is_never_followed(
    repo: TransferRepository, tmp_path: Path
) -> None:
    stored = backing(repo).directory
    assert stored is not None
    outside = tmp_path / "outside"
    outside.mkdir()
    write(outside / "secret.txt", b"not yours")
    stored.mkdir(parents=True, exist_ok=True)
    (stored / "out").symlink_to(outside, target_is_directory=True)

    with pytest.raises((TransferError, Forbidden)):
        await repo.put(write(tmp_path / "x.txt", b"x"), "out/x.txt")
    with pytest.raises((TransferError, Forbidden)):
        await repo.get("out/secret.txt", tmp_path / "got.txt")
    with pytest.raises(Forbidden, match="outside the collection"):
        await repo.stat("out/secret.txt")
    assert sorted(os.listdir(outside)) == ["secret.txt"]
    assert not (tmp_path / "got.txt").exists()
    assert [i async for i in repo.list()] == []  # the link is not an object, nor a folder
    assert await repo.spooled() == []


async def test_a_collection_the_user_may_not_use_is_refused(
    server: ServerThread, admin: User, globus_local: GlobusPlace, tmp_path: Path
) -> None:
    private = await register_collection(server, admin, new_root(server, "repo-private"))
    repo = TransferRepository(
        globus_local.client,
        f"globus://{private['collection_id']}/data",
        globus_local.local,
        name="private",
        poll=0.05,
    )
    with pytest.raises(Forbidden) as refused:
        await repo.put(write(tmp_path / "a.txt", b"a"), "a.txt")
    assert refused.value.code == "EndpointPermissionDenied"
    assert any("private: put a.txt" in note for note in refused.value.__notes__)
    for call in (repo.stat("a.txt"), repo.delete("a.txt")):
        with pytest.raises(Forbidden):
            await call
    with pytest.raises(Forbidden):
        _ = [i async for i in repo.list()]
    assert await repo.spooled() == []


async def test_a_cancelled_caller_cancels_its_task(
    repo: TransferRepository, tmp_path: Path, fifo_writers: list[Path]
) -> None:
    stored = backing(repo).directory
    assert stored is not None
    stored.mkdir(parents=True, exist_ok=True)
    fifo = stored / "slow.bin"
    os.mkfifo(fifo)  # the service's copy blocks opening it: the task stays ACTIVE
    fifo_writers.append(fifo)
    before = {t.task_id async for t in repo.client.iter_tasks()}

    async def running() -> str:
        with anyio.fail_after(60):
            while True:
                tasks = [t async for t in repo.client.iter_tasks(filter={"status": "ACTIVE"})]
                started = [t.task_id for t in tasks if t.task_id not in before]
                if started:
                    return started[0]
                await anyio.sleep(0.05)

    task_id = ""
    async with anyio.create_task_group() as group:
        group.start_soon(repo.get, "slow.bin", tmp_path / "slow.bin")
        task_id = await running()
        group.cancel_scope.cancel()

    task = await repo.client.get_task(task_id)
    assert task.status == "FAILED" and task.fatal_error is not None
    assert task.fatal_error.code == "CANCELED"
    assert not (tmp_path / "slow.bin").exists()
    assert await repo.spooled() == []  # (the fifo_writers fixture unblocks the copy, if any)


async def test_corrupted_s3_bytes_the_service_refuses_are_a_checksum_mismatch(
    globus_s3: GlobusPlace, tmp_path: Path, s3_admin: Any
) -> None:
    """An S3 collection checks the sha256 stored at upload: the read-back task fails, and
    stat(verify=True) reads the stored bytes back unchecked (a second task, with
    ``verify_checksum=False``) and hashes what arrives."""
    async with new_repository(globus_s3) as repo:
        data = os.urandom(10_000)
        await repo.put(write(tmp_path / "a.bin", data), "a.bin")
        stored = backing(repo)
        key = stored.prefix + "a.bin"
        got = s3_admin.get_object(Bucket=stored.bucket, Key=key)
        flipped = bytearray(got["Body"].read())
        flipped[0] ^= 0xFF
        s3_admin.put_object(
            Bucket=stored.bucket, Key=key, Body=bytes(flipped), Metadata=got["Metadata"]
        )
        verified = await repo.stat("a.bin", verify=True)
        assert verified is not None and verified.sha256 == sha(bytes(flipped))
        verifies = [
            t.status
            async for t in repo.client.iter_tasks(orderby="request_time ASC")
            if (t.label or "").endswith("verify a.bin")
        ]
        assert verifies == ["FAILED", "SUCCEEDED"]  # checked (refused), then as stored
        with pytest.raises(ChecksumMismatch, match="get a.bin"):
            await repo.get("a.bin", tmp_path / "out.bin")
        assert not (tmp_path / "out.bin").exists()
        assert await repo.spooled() == []


# -- real Globus (registered responses): paused and stuck tasks --------------------------------

COLLECTION = "6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e"
LOCAL = "00000000-0000-0000-0005-4925541e7725"


def _cancels(task_id: str) -> int:
    return sum(1 for c in responses.calls if c.request.url.endswith(f"/task/{task_id}/cancel"))


@pytest.mark.parametrize(
    ("changes", "outcome"),
    [
        ({"status": "INACTIVE", "nice_status": "PAUSED_BY_ADMIN", "is_paused": True}, "INACTIVE"),
        (
            {"status": "ACTIVE", "nice_status": "FILE_NOT_FOUND", "faults": 3, "is_ok": False},
            "STUCK",
        ),
    ],
)
async def test_a_paused_or_stuck_task_is_cancelled_and_raised(
    globus_mock: object, tmp_path: Path, changes: dict[str, Any], outcome: str
) -> None:
    del globus_mock
    load_response("transfer.get_submission_id")
    submitted = load_response("transfer.submit_transfer")
    task_id = submitted.metadata["task_id"]
    register_task(task_id, task_doc(task_id, completion_time=None, **changes))
    register(f"/v0.10/task/{task_id}/event_list", json_body=event_list([("PAUSED", "x", False)]))
    register(
        f"/v0.10/task/{task_id}/cancel",
        method="POST",
        json_body={"DATA_TYPE": "result", "code": "Canceled", "message": "canceled"},
    )
    async with TransferClient(max_retries=0) as tc:
        repo = TransferRepository(
            tc,
            f"globus://{COLLECTION}/archive",
            LocalEndpoint(LOCAL, tmp_path / "endpoint"),
            name="archive",
            poll=0.01,
            stuck_after=0.05,
        )
        with pytest.raises(TaskFailed, match=f"archive: put m1/a.bin: task {task_id} {outcome}"):
            await repo.put(write(tmp_path / "a.bin", b"abc"), "m1/a.bin")
    assert _cancels(task_id) == 1
    document = sent_json(path_endswith="/v0.10/transfer")
    assert (document["sync_level"], document["verify_checksum"]) == (3, True)
    (item,) = document["DATA"]
    assert item["destination_path"] == "/archive/m1/a.bin"
    assert item["source_path"].startswith(f"/{SPOOL}/")
    assert os.listdir(tmp_path / "endpoint" / SPOOL) == []  # the staged copy is gone


async def test_the_root_in_every_notation(repo: TransferRepository, tmp_path: Path) -> None:
    cid, path = repo.root.collection, repo.root.path
    assert globus_root(f"{cid}:{path}") == repo.root == globus_root(f"globus://{cid}{path}")
    assert globus_root(repo.root) == repo.root
    repo.client.locations.register("archive", cid, path)
    assert globus_root("archive:a/b", repo.client) == repo.root / "a" / "b"
    for bad in ("archive:a", f"{cid[:-1]}:/x", "s3://bucket/x"):
        with pytest.raises(UsageError):
            globus_root(bad)
    with pytest.raises(UnsafePath):
        globus_root(f"{cid}:/a/../b")

    await repo.put(write(tmp_path / "a.txt", b"a"), "x/a.txt")
    same = TransferRepository(repo.client, f"{cid}:{path}", repo.local, name="registry form")
    assert [i.path async for i in same.list()] == ["x/a.txt"]
    assert repr(same) == f"TransferRepository('globus://{cid}{path}', name='registry form')"


async def test_a_task_that_ends_well_while_being_cancelled_is_a_success(
    globus_mock: object, tmp_path: Path
) -> None:
    """INACTIVE, then the cancel answers TaskComplete: the task SUCCEEDED meanwhile."""
    del globus_mock
    load_response("transfer.get_submission_id")
    task_id = load_response("transfer.submit_transfer").metadata["task_id"]
    paused = {"status": "INACTIVE", "nice_status": "PAUSED_BY_ADMIN", "completion_time": None}
    register_task(task_id, task_doc(task_id, **paused), task_doc(task_id))
    register(f"/v0.10/task/{task_id}/event_list", json_body=event_list([]))
    register(
        f"/v0.10/task/{task_id}/cancel",
        method="POST",
        json_body={"DATA_TYPE": "result", "code": "TaskComplete", "message": "done"},
    )
    register(f"/v0.10/operation/endpoint/{COLLECTION}/stat", json_body=file_doc("a.bin", size=3))
    async with TransferClient(max_retries=0) as tc:
        repo = TransferRepository(
            tc,
            f"{COLLECTION}:/archive",
            LocalEndpoint(LOCAL, tmp_path / "endpoint"),
            poll=0.01,
        )
        info = await repo.put(write(tmp_path / "a.bin", b"abc"), "m1/a.bin")
    assert (info.path, info.size, info.sha256) == ("m1/a.bin", 3, sha(b"abc"))
    assert _cancels(task_id) == 1


async def test_what_a_killed_process_left_in_the_spool_is_found_and_discarded(
    repo: TransferRepository,
) -> None:
    spool = repo.local.directory / SPOOL
    write(spool / "0123456789abcdef", b"staged, never sent")
    write(spool / ".provena-tmp-abc-0123", b"half a copy into the spool")
    left = sorted(info.path for info in await repo.spooled())
    assert left == [f"{SPOOL}/.provena-tmp-abc-0123", f"{SPOOL}/0123456789abcdef"]
    assert [i async for i in repo.list()] == []  # the spool is not in the repository
    removed = await repo.discard_spooled()
    assert sorted(info.path for info in removed) == left
    assert await repo.spooled() == [] and os.listdir(spool) == []


async def test_a_task_past_the_timeout_is_cancelled_and_raised(
    globus_local: GlobusPlace, tmp_path: Path, fifo_writers: list[Path]
) -> None:
    async with new_repository(globus_local, timeout=0.5) as repo:
        stored = backing(repo).directory
        assert stored is not None
        stored.mkdir(parents=True, exist_ok=True)
        fifo = stored / "slow.bin"
        os.mkfifo(fifo)  # the service's copy blocks opening it: the task stays ACTIVE
        fifo_writers.append(fifo)
        with pytest.raises(TaskFailed, match=r"get slow\.bin: task \S+ TIMED_OUT") as late:
            await repo.get("slow.bin", tmp_path / "slow.bin")
        assert late.value.outcome == "TIMED_OUT"
        task = await repo.client.get_task(late.value.task_id)
        assert task.fatal_error is not None and task.fatal_error.code == "CANCELED"
        assert not (tmp_path / "slow.bin").exists()
        assert await repo.spooled() == []
