"""The L2 TransferClient against our own transfer service (the live reference server).

The other tests of this package answer the client with globus-sdk's registered responses (a
stand-in for Globus); these run the same calls against the server's ``/v0.10/`` routes, signed
by our L1 auth (``pv.transfer_client``): paths, submit and wait (SUCCEEDED, FAILED, a deadline,
TIMED_OUT, a cancel), delete, and the paging of task_list, event_list and endpoint_search.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio.to_thread
import pytest

from provena_like import Forbidden, NotFound, ProvenaClient, ServerError
from provena_like._core.config import ProvenaConfig
from provena_like.clients.transfer import (
    MKDIR_EXISTS,
    FilterRule,
    Location,
    TaskOutcome,
    TransferClient,
    TransferItem,
)
from provena_like.testing.server_thread import ServerThread
from tests.support.transfer import mint_dataset, new_root, register_collection
from tests.support.transfer_tasks import (
    feed_fifo,
    fifo_writers_fixture,  # noqa: F401 - the fifo_writers fixture
    open_collection_of,
    task_admin_fixture,  # noqa: F401 - the task_admin fixture
    tree,
    write_tree,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio

POLL = 0.1


@pytest.fixture
async def alice(new_user: Callable[..., User]) -> User:
    return new_user("alice")


@pytest.fixture
async def tc(server: ServerThread, alice: User) -> AsyncIterator[TransferClient]:
    """Alice's transfer client of the live server (our L1 auth: her access token)."""
    config = ProvenaConfig(base_url=server.url, access_token=alice.token, max_retries=0)
    async with ProvenaClient(config) as pv:
        yield pv.transfer_client


async def test_paths_ls_stat_mkdir_rename_walk(
    server: ServerThread, task_admin: User, tc: TransferClient
) -> None:
    cid, root = await open_collection_of(server, task_admin, "l2-paths")
    write_tree(root, {"a.txt": b"alpha", "sub/b.txt": b"beta", "sub/deep/c.txt": b"c", ".h": b""})
    tc.locations.register("paths", cid, "/sub")

    listing = await tc.ls(f"globus://{cid}/")
    assert listing.path == "/" and listing.total == 3
    assert {e.path for e in listing.entries} == {"/a.txt", "/sub", "/.h"}
    assert ".h" not in {e.name for e in (await tc.ls(cid, "/", show_hidden=False)).entries}
    only_dirs = await tc.ls(cid, "/", filter={"type": "dir"})
    assert [e.name for e in only_dirs.entries] == ["sub"]
    page = await tc.ls(cid, "/", orderby="name ASC", limit=2, offset=1)
    assert [e.name for e in page.entries] == ["a.txt", "sub"]
    below = await tc.ls("paths")  # a label: its root
    assert below.path == "/sub/" and {e.name for e in below.entries} == {"b.txt", "deep"}

    entry = await tc.stat("paths:b.txt")
    assert (entry.path, entry.type, entry.size) == ("/sub/b.txt", "file", 4)
    assert (await tc.stat(cid, "/sub")).is_dir

    assert await tc.mkdir("paths:new") is True
    assert await tc.mkdir("paths:new") is False  # exist_ok
    with pytest.raises(ServerError) as exists:
        await tc.mkdir("paths:new", exist_ok=False)
    assert exists.value.code == MKDIR_EXISTS and exists.value.status_code == 502
    assert (root / "sub" / "new").is_dir()

    await tc.rename("paths:b.txt", "paths:renamed.txt")
    await tc.rename(Location(cid, "/a.txt"), "/z.txt")
    assert (root / "sub" / "renamed.txt").read_bytes() == b"beta"
    assert (root / "z.txt").read_bytes() == b"alpha" and not (root / "a.txt").exists()

    walked = [e.path async for e in tc.walk(cid, "/", rate_limit=None)]
    assert walked.index("/sub") < walked.index("/sub/deep") < walked.index("/sub/deep/c.txt")
    shallow = [e.path async for e in tc.walk(cid, "/", max_depth=0, rate_limit=None)]
    assert "/sub/renamed.txt" not in shallow and "/sub" in shallow

    with pytest.raises(NotFound) as missing:
        await tc.ls(cid, "/nope")
    assert missing.value.code == "ClientError.NotFound"
    with pytest.raises(ServerError) as not_dir:
        await tc.ls(cid, "/z.txt")
    assert not_dir.value.code == "ExternalError.DirListingFailed.NotDirectory"
    private = await register_collection(server, task_admin, new_root(server, "l2-private"))
    with pytest.raises(Forbidden) as refused:
        await tc.ls(private["collection_id"], "/")
    assert refused.value.code == "EndpointPermissionDenied"
    with pytest.raises(NotFound):
        await tc.stat(str(uuid.uuid4()), "/")


async def test_transfer_succeeds_then_duplicate_and_delete(
    server: ServerThread, task_admin: User, tc: TransferClient
) -> None:
    src, src_root = await open_collection_of(server, task_admin, "l2-src")
    dst, dst_root = await open_collection_of(server, task_admin, "l2-dst")
    files = {"run/a.bin": os.urandom(5000), "run/b.bin": os.urandom(10), "run/x.tmp": b"t"}
    write_tree(src_root, files)
    write_tree(dst_root, {"copy/b.bin": files["run/b.bin"]})  # already there: skipped

    seen: list[int] = []
    handle = await tc.transfer(
        Location(src, "/"),
        Location(dst, "/"),
        [TransferItem(source="run", destination="copy", recursive=True)],
        sync_level="checksum",
        verify_checksum=True,
        filter_rules=[FilterRule(name="*.tmp")],
        label="l2 copy",
    )
    assert handle.code == "Accepted" and handle.submission_id
    result = await handle.wait(timeout=120, poll=POLL, on_progress=lambda t: seen.append(t.files))
    assert result.outcome is TaskOutcome.SUCCEEDED, result.describe()
    assert result.raise_for_status() is result and seen
    assert tree(dst_root / "copy") == {"a.bin": files["run/a.bin"], "b.bin": files["run/b.bin"]}
    task = result.task
    assert (task.label, task.files_transferred, task.files_skipped) == ("l2 copy", 1, 1)
    moved = [t.destination_path async for t in result.successful_transfers()]
    assert moved == ["/copy/a.bin"]
    assert [e async for e in result.skipped_errors()] == []

    again = await tc.transfer(
        Location(src, "/run"), Location(dst, "/copy"), recursive=True,
        submission_id=handle.submission_id,
    )  # fmt: skip
    assert (again.task_id, again.code) == (handle.task_id, "Duplicate")

    gone = await tc.delete(Location(dst, "/"), ["copy"], recursive=True, label="clean")
    assert (await gone.wait(timeout=120, poll=POLL)).ok
    assert not (dst_root / "copy").exists()
    missing = await tc.delete(Location(dst, "/absent"))
    failed = await missing.wait(timeout=120, poll=POLL)
    assert failed.outcome is TaskOutcome.FAILED and failed.task.fatal_error is not None
    tolerated = await tc.delete(Location(dst, "/absent"), ignore_missing=True)
    assert (await tolerated.wait(timeout=120, poll=POLL)).ok


async def test_failed_deadline_timed_out_and_cancel(
    server: ServerThread, task_admin: User, tc: TransferClient, fifo_writers: list[Path]
) -> None:
    src, src_root = await open_collection_of(server, task_admin, "l2-fail-src")
    dst, dst_root = await open_collection_of(server, task_admin, "l2-fail-dst")
    write_tree(src_root, {"ok.txt": b"ok"})

    lost = await tc.transfer(Location(src, "/missing.bin"), Location(dst, "/m.bin"))
    failed = await lost.wait(timeout=120, poll=POLL)
    assert failed.outcome is TaskOutcome.FAILED and not failed.ok
    assert failed.task.fatal_error is not None and failed.events
    assert any(e.is_error for e in failed.events)
    assert "FAILED" in failed.describe()

    skipped = await tc.transfer(
        Location(src, "/"), Location(dst, "/"), ["missing.bin", "ok.txt"],
        skip_source_errors=True,
    )  # fmt: skip
    partly = await skipped.wait(timeout=120, poll=POLL)
    assert partly.ok, partly.describe()
    errors = [e async for e in partly.skipped_errors()]
    assert [e.source_path for e in errors] == ["/missing.bin"]
    assert (dst_root / "ok.txt").read_bytes() == b"ok"

    late = await tc.transfer(
        Location(src, "/ok.txt"), Location(dst, "/late.txt"),
        deadline=datetime.now(UTC) - timedelta(minutes=1),
    )  # fmt: skip
    expired = await late.wait(timeout=120, poll=POLL)
    assert expired.outcome is TaskOutcome.FAILED
    assert expired.task.fatal_error is not None
    assert expired.task.fatal_error.code == "DEADLINE_EXCEEDED"

    fifo = src_root / "slow"
    os.mkfifo(fifo)  # the copy blocks opening it: the task stays ACTIVE
    fifo_writers.append(fifo)
    slow = await tc.transfer(Location(src, "/slow"), Location(dst, "/slow"))
    waited = await slow.wait(timeout=0.5, poll=POLL)
    assert waited.outcome is TaskOutcome.TIMED_OUT and waited.task.status == "ACTIVE"
    assert await slow.cancel() == "Canceled"
    canceled = await slow.wait(timeout=120, poll=POLL)
    assert canceled.outcome is TaskOutcome.FAILED
    assert canceled.task.fatal_error is not None
    assert canceled.task.fatal_error.code == "CANCELED"
    assert await tc.cancel(slow.task_id) == "TaskComplete"
    await anyio.to_thread.run_sync(lambda: feed_fifo(fifo, b"late"))


async def test_task_list_event_list_and_endpoint_search_page(
    server: ServerThread, task_admin: User, tc: TransferClient
) -> None:
    src, src_root = await open_collection_of(server, task_admin, "l2-pages-a")
    dst, _ = await open_collection_of(server, task_admin, "l2-pages-b")
    write_tree(src_root, {f"f{i}.txt": b"%d" % i for i in range(5)})
    handles = [
        await tc.transfer(Location(src, f"/f{i}.txt"), Location(dst, f"/f{i}.txt"), label=f"p{i}")
        for i in range(5)
    ]
    for h in handles:
        assert (await h.wait(timeout=120, poll=POLL)).ok

    first = await tc.list_tasks(page_size=2, orderby="request_time ASC")
    assert len(first.items) == 2 and first.next_cursor == "2"
    every = [t.task_id async for t in tc.iter_tasks(page_size=2, orderby="request_time ASC")]
    assert every == [h.task_id for h in handles]  # alice's only tasks, in order, no repeats
    limited = [t async for t in tc.iter_tasks(page_size=2, max_items=3)]
    assert len(limited) == 3
    done = [t async for t in tc.iter_tasks(filter={"status": "SUCCEEDED", "type": "TRANSFER"})]
    assert len(done) == 5

    task_id = handles[0].task_id
    whole = (await tc.list_task_events(task_id, page_size=100)).items
    assert len(whole) >= 2 and whole[0].time is not None
    one = await tc.list_task_events(task_id, page_size=1)
    assert len(one.items) == 1 and one.next_cursor == "1"
    paged = [e async for e in tc.iter_task_events(task_id, page_size=1)]
    assert [(e.code, e.time) for e in paged] == [(e.code, e.time) for e in whole]

    found = [e.id async for e in tc.iter_endpoints("l2-pages", page_size=1)]
    assert sorted(found) == sorted([src, dst])
    head = await tc.search_endpoints("l2-pages", page_size=1)
    assert len(head.items) == 1 and head.next_cursor == "1"
    assert (await tc.get_endpoint(src)).display_name == "l2-pages-a"


async def test_a_dataset_is_an_s3_collection_for_every_call(
    server: ServerThread, task_admin: User, alice: User, tc: TransferClient
) -> None:
    src, src_root = await open_collection_of(server, task_admin, "l2-to-s3")
    files = {"run/a.bin": os.urandom(4000), "run/sub/b.bin": os.urandom(7)}
    write_tree(src_root, files)
    dataset = await mint_dataset(server, alice)
    cid = dataset["collection_id"]
    assert (await tc.get_endpoint(cid)).id == cid

    assert await tc.mkdir(cid, "/raw") is True
    assert await tc.mkdir(cid, "/raw") is False
    handle = await tc.transfer(
        Location(src, "/run"), Location(cid, "/raw/run"), recursive=True, verify_checksum=True
    )
    assert (await handle.wait(timeout=120, poll=POLL)).ok
    listing = await tc.ls(cid, "/raw/run")
    assert listing.path == "/raw/run/"
    assert {(e.name, e.type) for e in listing.entries} == {("a.bin", "file"), ("sub", "dir")}
    assert (await tc.stat(cid, "/raw/run/a.bin")).size == 4000
    walked = {e.path async for e in tc.walk(cid, "/raw", rate_limit=None)}
    assert walked == {"/raw/run", "/raw/run/a.bin", "/raw/run/sub", "/raw/run/sub/b.bin"}

    await tc.rename(Location(cid, "/raw/run/a.bin"), "/raw/run/renamed.bin")
    assert (await tc.stat(cid, "/raw/run/renamed.bin")).size == 4000
    with pytest.raises(NotFound):
        await tc.stat(cid, "/raw/run/a.bin")

    back = await tc.transfer(
        Location(cid, "/raw/run"), Location(src, "/back"), recursive=True, sync_level="checksum"
    )
    assert (await back.wait(timeout=120, poll=POLL)).ok
    assert tree(src_root / "back") == {
        "renamed.bin": files["run/a.bin"],
        "sub/b.bin": files["run/sub/b.bin"],
    }

    gone = await tc.delete(Location(cid, "/raw"), recursive=True)
    assert (await gone.wait(timeout=120, poll=POLL)).ok
    left = [e.name for e in (await tc.ls(cid, "/")).entries]
    assert "raw" not in left and left == ["metadata.json"]  # the datastore's own file stays
