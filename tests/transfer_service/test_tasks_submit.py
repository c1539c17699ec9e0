"""Submitting transfer and delete tasks with the real globus-sdk: Accepted, Duplicate, refusals.

Every call goes through ``globus_sdk.TransferClient`` (in a worker thread) against the live
server; response shapes are compared with globus-sdk's registered responses.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import globus_sdk
import pytest

from provena_like.testing.server_thread import ServerThread
from tests.support.job_helpers import set_job
from tests.support.transfer import (
    fixture_json,
    fixture_status,
    in_server,
    new_root,
    register_collection,
    same_shape,
    sdk,
    transfer_client,
)
from tests.support.transfer_tasks import (
    blocked_task,
    delete_doc,
    expanded,
    feed_fifo,
    fifo_writers_fixture,  # noqa: F401 - the fifo_writers fixture
    posix_pair,
    task_admin_fixture,  # noqa: F401 - the task_admin fixture
    task_user_fixture,  # noqa: F401 - the task_user fixture
    transfer_doc,
    wait_done,
    write_tree,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio

RESULT_IGNORED = frozenset({"message"})


def _settled(root: Path) -> None:
    """Wait until no temporary file of a copy is left under ``root`` (within 60 s)."""
    deadline = time.monotonic() + 60
    while any("provena-tmp" in name for name in os.listdir(root)):
        assert time.monotonic() < deadline, os.listdir(root)
        time.sleep(0.1)
    time.sleep(1.0)  # a copy that would (wrongly) go on renames within this


async def test_submit_is_accepted_then_duplicate(
    server: ServerThread, task_admin: User, task_user: User
) -> None:
    p = await posix_pair(server, task_admin, task_user)
    src, src_root, dst, dst_root, tc = p.src, p.src_root, p.dst, p.dst_root, p.tc
    write_tree(src_root, {"a.txt": b"alpha"})
    doc = transfer_doc(src, dst, [("/a.txt", "/copy/a.txt", None)], label="first")
    accepted = await sdk(lambda: tc.submit_transfer(doc))
    assert accepted.http_status == fixture_status("submit_transfer") == 200
    assert (accepted["DATA_TYPE"], accepted["code"]) == ("transfer_result", "Accepted")
    same_shape(accepted.data, fixture_json("submit_transfer"), ignore=RESULT_IGNORED)
    assert accepted["submission_id"] == doc["submission_id"]
    assert accepted["resource"] == "/v0.10/transfer"
    assert accepted["task_link"]["href"] == f"/v0.10/task/{accepted['task_id']}?format=json"

    again = await sdk(lambda: tc.submit_transfer(doc))
    assert again.http_status == 200
    assert (again["code"], again["task_id"]) == ("Duplicate", accepted["task_id"])

    task = await wait_done(tc, accepted["task_id"])
    assert task["status"] == "SUCCEEDED", task
    assert (dst_root / "copy" / "a.txt").read_bytes() == b"alpha"
    listed = await sdk(lambda: tc.task_list(filter={"label": "first"}).data)
    assert listed["total"] == 1  # the duplicate made no second task


async def test_ten_concurrent_resubmissions_make_one_task(
    server: ServerThread, task_admin: User, task_user: User
) -> None:
    p = await posix_pair(server, task_admin, task_user)
    src, src_root, dst, tc = p.src, p.src_root, p.dst, p.tc
    write_tree(src_root, {"a.txt": b"alpha"})
    label = f"race-{uuid.uuid4().hex[:8]}"
    doc = transfer_doc(src, dst, [("/a.txt", "/a.txt", False)], label=label)
    barrier = threading.Barrier(10)
    answers: list[dict[str, str]] = []
    lock = threading.Lock()

    def one() -> None:
        tc = transfer_client(server, task_user)  # one SDK client per thread
        barrier.wait()
        try:
            answer = tc.submit_transfer(doc)
        except globus_sdk.GlobusAPIError as err:
            with lock:
                answers.append({"code": f"{err.http_status} {err.code} {err.message}"})
            return
        with lock:
            answers.append({"code": answer["code"], "task_id": answer["task_id"]})

    def all_ten() -> None:
        threads = [threading.Thread(target=one) for _ in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)

    await sdk(all_ten)
    assert len(answers) == 10
    assert sorted(a["code"] for a in answers) == ["Accepted"] + ["Duplicate"] * 9, answers
    assert sorted(a["code"] for a in answers) == ["Accepted"] + ["Duplicate"] * 9
    assert len({a["task_id"] for a in answers}) == 1
    listed = await sdk(lambda: tc.task_list(filter={"label": label}).data)
    assert listed["total"] == 1
    await wait_done(tc, answers[0]["task_id"])


async def test_no_items_is_400_no_transfer_items(
    server: ServerThread, task_admin: User, task_user: User
) -> None:
    p = await posix_pair(server, task_admin, task_user)
    src, dst, tc = p.src, p.dst, p.tc
    with pytest.raises(globus_sdk.TransferAPIError) as err:
        await sdk(lambda: tc.submit_transfer(transfer_doc(src, dst)))
    expected = fixture_json("submit_transfer", "failure")
    assert err.value.http_status == fixture_status("submit_transfer", "failure") == 400
    assert err.value.code == expected["code"] == "ClientError.BadRequest.NoTransferItems"
    assert set(err.value.raw_json or {}) == set(expected)
    with pytest.raises(globus_sdk.TransferAPIError) as err:
        await sdk(lambda: tc.submit_delete(delete_doc(dst, [])))
    assert err.value.code == "ClientError.BadRequest.NoTransferItems"


async def test_identical_active_paths_are_409_and_cancel_stops_the_task(
    server: ServerThread, task_admin: User, task_user: User, fifo_writers: list[Path]
) -> None:
    p = await posix_pair(server, task_admin, task_user)
    src, src_root, dst, dst_root, tc = p.src, p.src_root, p.dst, p.dst_root, p.tc
    fifo = src_root / "slow"
    os.mkfifo(fifo)  # the copy blocks opening it until a writer comes: the task stays ACTIVE
    fifo_writers.append(fifo)
    first = await sdk(
        lambda: tc.submit_transfer(transfer_doc(src, dst, [("/slow", "/slow", None)]))
    )
    running = await sdk(lambda: expanded(tc, first["task_id"]))
    assert (running["status"], running["files"]) == ("ACTIVE", 1)
    same_doc = transfer_doc(src, dst, [("/slow", "/slow", None)])  # another submission id
    with pytest.raises(globus_sdk.TransferAPIError) as err:
        await sdk(lambda: tc.submit_transfer(same_doc))
    assert (err.value.http_status, err.value.code) == (409, "Conflict")
    assert "identical paths" in err.value.message

    canceled = await sdk(lambda: tc.cancel_task(first["task_id"]))
    assert (canceled["DATA_TYPE"], canceled["code"]) == ("result", "Canceled")
    same_shape(canceled.data, fixture_json("cancel_task"))
    task = await sdk(lambda: tc.get_task(first["task_id"]).data)
    assert task["status"] == "FAILED"
    assert task["fatal_error"]["code"] == "CANCELED"
    assert task["completion_time"] is not None
    await sdk(lambda: feed_fifo(fifo, b"late bytes"))  # let the blocked copy go on: it must stop
    await sdk(lambda: _settled(dst_root))
    assert not (dst_root / "slow").exists()
    events = await sdk(lambda: tc.task_event_list(first["task_id"]).data)
    assert "CANCELED" in [e["code"] for e in events["DATA"]]

    again = await sdk(lambda: tc.cancel_task(first["task_id"]))
    assert again["code"] == "TaskComplete"
    # no longer active: the same paths may be submitted again
    second = await sdk(lambda: tc.submit_transfer(same_doc))
    assert second["code"] == "Accepted"
    await sdk(lambda: tc.cancel_task(second["task_id"]))
    for name in os.listdir(dst_root):
        assert name != "slow" and "provena-tmp" not in name, name


async def test_other_users_see_no_task_and_may_not_use_the_collections(
    server: ServerThread, task_admin: User, task_user: User, new_user: Callable[..., User]
) -> None:
    p = await posix_pair(server, task_admin, task_user)
    src, src_root, dst, tc = p.src, p.src_root, p.dst, p.tc
    write_tree(src_root, {"a.txt": b"alpha"})
    accepted = await sdk(
        lambda: tc.submit_transfer(transfer_doc(src, dst, [("/a.txt", "/a", None)]))
    )
    mallory = transfer_client(server, new_user("mallory"))
    for call in (
        lambda: mallory.get_task(accepted["task_id"]),
        lambda: mallory.cancel_task(accepted["task_id"]),
        lambda: mallory.task_event_list(accepted["task_id"]),
        lambda: mallory.task_successful_transfers(accepted["task_id"]),
        lambda: mallory.update_task(accepted["task_id"], {"label": "mine"}),
    ):
        with pytest.raises(globus_sdk.TransferAPIError) as err:
            await sdk(call)
        assert (err.value.http_status, err.value.code) == (404, "ClientError.NotFound")
    listed = await sdk(lambda: mallory.task_list().data)
    assert accepted["task_id"] not in [t["task_id"] for t in listed["DATA"]]

    private_root = new_root(server, "private")
    private = await register_collection(server, task_admin, private_root, "Private")
    write_tree(private_root, {"secret.txt": b"secret"})
    for doc in (
        transfer_doc(private["collection_id"], dst, [("/secret.txt", "/stolen", None)]),
        transfer_doc(src, private["collection_id"], [("/a.txt", "/planted", None)]),
    ):
        with pytest.raises(globus_sdk.TransferAPIError) as err:
            await sdk(lambda doc=doc: tc.submit_transfer(doc))
        assert (err.value.http_status, err.value.code) == (403, "EndpointPermissionDenied")
    with pytest.raises(globus_sdk.TransferAPIError) as err:
        await sdk(lambda: tc.submit_delete(delete_doc(private["collection_id"], ["/secret.txt"])))
    assert err.value.code == "EndpointPermissionDenied"
    assert (private_root / "secret.txt").read_bytes() == b"secret"
    admin_tc = transfer_client(server, task_admin)
    seen = await sdk(lambda: admin_tc.get_task(accepted["task_id"]).data)  # admins see all
    assert seen["owner_id"] == task_user.name
    await wait_done(tc, accepted["task_id"])


@pytest.mark.parametrize(
    ("source_path", "dest_path", "status", "code"),
    [
        ("/../outside.txt", "/x", 400, "ClientError.BadRequest.InvalidPath"),
        ("/a.txt", "/sub/../../x", 400, "ClientError.BadRequest.InvalidPath"),
        ("/a\x00.txt", "/x", 400, "ClientError.BadRequest.InvalidPath"),
        ("/a.txt", "/x%2F..%2F..%2Fy", 400, "ClientError.BadRequest.InvalidPath"),
        ("/out/secret.txt", "/x", 403, "EndpointPermissionDenied"),
        ("/a.txt", "/out/planted.txt", 403, "EndpointPermissionDenied"),
    ],
)
async def test_paths_that_leave_a_root_are_refused(
    server: ServerThread,
    task_admin: User,
    task_user: User,
    tmp_path: Path,
    source_path: str,
    dest_path: str,
    status: int,
    code: str,
) -> None:
    p = await posix_pair(server, task_admin, task_user)
    src, src_root, dst, dst_root, tc = p.src, p.src_root, p.dst, p.dst_root, p.tc
    outside = tmp_path / "outside"
    write_tree(outside, {"secret.txt": b"secret"})
    write_tree(src_root, {"a.txt": b"alpha"})
    (src_root / "out").symlink_to(outside)
    (dst_root / "out").symlink_to(outside)
    doc = transfer_doc(src, dst, [(source_path, dest_path, None)])
    with pytest.raises(globus_sdk.TransferAPIError) as err:
        await sdk(lambda: tc.submit_transfer(doc))
    assert (err.value.http_status, err.value.code) == (status, code), err.value.message
    bad, where = (source_path, src) if dest_path == "/x" else (dest_path, dst)
    with pytest.raises(globus_sdk.TransferAPIError) as err:
        await sdk(lambda: tc.submit_delete(delete_doc(where, [bad], recursive=True)))
    assert (err.value.http_status, err.value.code) == (status, code), err.value.message
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    assert (outside / "secret.txt").read_bytes() == b"secret"
    listed = await sdk(lambda: tc.task_list().data)
    assert listed["total"] == 0  # nothing was accepted


async def test_a_task_whose_job_gave_up_is_failed_not_forgotten(
    server: ServerThread, task_admin: User, task_user: User, fifo_writers: list[Path]
) -> None:
    blocked = await blocked_task(server, task_admin, task_user, fifo_writers)
    p, task_id, fifo = blocked.pair, blocked.task_id, blocked.fifo
    error = {"type": "JobInterrupted", "message": "interrupted 5 times", "attempt": 5}
    await in_server(  # what a job left after crashes on every attempt looks like
        server,
        lambda: set_job(server.app.state.sessions, task_id, state="failed", error=error),
    )
    task = await sdk(lambda: p.tc.get_task(task_id).data)
    assert task["status"] == "FAILED", task
    assert task["fatal_error"] == {"code": "SERVER_ERROR", "description": "interrupted 5 times"}
    events = await sdk(lambda: p.tc.task_event_list(task_id).data)
    assert events["DATA"][0]["code"] == "SERVER_ERROR"
    await sdk(lambda: feed_fifo(fifo, b"late"))  # let the blocked copy finish
    again = await sdk(lambda: p.tc.get_task(task_id).data)
    assert (again["status"], again["fatal_error"]) == ("FAILED", task["fatal_error"])
