"""Running transfer and delete tasks, driven by the real globus-sdk against the live server.

POSIX collections are directories under the server's transfer root; S3 collections are
datasets in the session's SeaweedFS. Each test submits with ``globus_sdk.TransferClient`` (in
a worker thread), waits for the task, and checks the bytes on both sides and the task's
documents (shapes compared with globus-sdk's registered responses).
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import globus_sdk
import pytest

from provena_like.server.transfer.paths import normalise
from provena_like.server.transfer.s3 import S3Backend
from provena_like.testing.server_thread import ServerThread
from tests.support.transfer import (
    fixture_json,
    in_server,
    mint_dataset,
    open_as,
    same_shape,
    sdk,
    transfer_client,
)
from tests.support.transfer_tasks import (
    delete_doc,
    open_collection_of,
    posix_pair,
    task_admin_fixture,  # noqa: F401 - the task_admin fixture
    task_user_fixture,  # noqa: F401 - the task_user fixture
    transfer_doc,
    tree,
    wait_done,
    write_tree,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio


async def _run(tc: globus_sdk.TransferClient, doc: Any, *, delete: bool = False) -> dict[str, Any]:
    submit = tc.submit_delete if delete else tc.submit_transfer
    accepted = await sdk(lambda: submit(doc))
    assert accepted["code"] == "Accepted", accepted.data
    return await wait_done(tc, accepted["task_id"])


def _moved(tc: globus_sdk.TransferClient, task_id: str, limit: int = 1000) -> list[str]:
    """Destination paths of the task's successful transfers, following next_marker."""
    found: list[str] = []
    marker = None
    while True:
        params: dict[str, Any] = {"limit": limit}
        page = tc.task_successful_transfers(task_id, marker=marker, query_params=params).data
        assert page["DATA_TYPE"] == "successful_transfers"
        found.extend(d["destination_path"] for d in page["DATA"])
        marker = page["next_marker"]
        if marker is None:
            return found


async def test_recursive_posix_copy_with_filters_checksums_and_times(
    server: ServerThread, task_admin: User, task_user: User
) -> None:
    p = await posix_pair(server, task_admin, task_user)
    src, src_root, dst, dst_root, tc = p.src, p.src_root, p.dst, p.dst_root, p.tc
    files = {
        "a.txt": b"alpha",
        ".hidden": b"hidden files travel too",
        "sub/b.bin": os.urandom(3 * 1024 * 1024 + 7),
        "sub/deep/c.csv": b"x,y\n1,2\n",
        "sub/skip.tmp": b"filtered out",
        "scratch/x.txt": b"in an excluded directory",
    }
    write_tree(src_root, files)
    old = datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    os.utime(src_root / "sub" / "deep" / "c.csv", (old, old))
    rules = [
        {"DATA_TYPE": "filter_rule", "method": "exclude", "name": "*.tmp", "type": "file"},
        {"DATA_TYPE": "filter_rule", "method": "exclude", "name": "scratch", "type": "dir"},
    ]
    doc = transfer_doc(
        src,
        dst,
        [("/", "/copy/", True)],
        verify_checksum=True,
        preserve_timestamp=True,
        label="recursive copy",
    )
    for rule in rules:
        doc.add_filter_rule(rule["name"], method=rule["method"], type=rule["type"])
    task = await _run(tc, doc)
    assert task["status"] == "SUCCEEDED", task
    expected = {f"copy/{k}": v for k, v in files.items() if not k.endswith(".tmp")}
    expected.pop("copy/scratch/x.txt")
    assert tree(dst_root) == expected
    assert (dst_root / "copy/sub/deep/c.csv").stat().st_mtime == old
    size = sum(len(v) for v in expected.values())
    assert (task["files"], task["files_transferred"], task["files_skipped"]) == (4, 4, 0)
    assert task["directories"] == 3  # /, sub, sub/deep
    assert task["bytes_transferred"] == task["bytes_checksummed"] == size
    assert (task["faults"], task["fatal_error"], task["nice_status"]) == (0, None, None)
    assert task["completion_time"] is not None and task["is_ok"] is None
    assert task["filter_rules"] == rules and task["verify_checksum"] is True
    assert task["owner_id"] == task_user.name and task["label"] == "recursive copy"
    fixture_task = fixture_json("task_list")["DATA"][0]
    same_shape(task, fixture_task, ignore=frozenset({"DATA_TYPE"}))
    assert set(task) - set(fixture_task) == {"DATA_TYPE"}

    moved = await sdk(lambda: _moved(tc, task["task_id"], limit=3))  # pages of 3: 2 pages
    assert sorted(moved) == sorted(f"/{p}" for p in expected)
    events = await sdk(lambda: tc.task_event_list(task["task_id"]).data)
    assert [e["code"] for e in events["DATA"]] == ["SUCCEEDED", "STARTED"]  # newest first
    assert {"DATA_TYPE", "code", "description", "details", "is_error", "time"} <= set(
        events["DATA"][0]
    )
    skipped = await sdk(lambda: tc.task_skipped_errors(task["task_id"]).data)
    assert (skipped["DATA"], skipped["next_marker"]) == ([], None)

    listed = await sdk(
        lambda: (
            tc.task_list(
                filter={"type": ["TRANSFER", "DELETE"], "status": "SUCCEEDED"}, orderby="label ASC"
            ).data
        )
    )
    assert listed["DATA_TYPE"] == "task_list" and listed["total"] == 1
    same_shape(
        listed.data if hasattr(listed, "data") else listed,
        fixture_json("task_list"),
        ignore=frozenset({"DATA_TYPE"}),
    )
    none_active = await sdk(lambda: tc.task_list(filter={"status": "ACTIVE"}).data)
    assert none_active["total"] == 0
    for bad in ({"filter": "owner:me"}, {"orderby": "size"}, {"colour": "red"}):
        with pytest.raises(globus_sdk.TransferAPIError) as err:
            await sdk(lambda bad=bad: tc.task_list(query_params=bad))
        assert (err.value.http_status, err.value.code) == (400, "ClientError.BadRequest")


async def test_sync_levels_decide_what_is_copied(
    server: ServerThread, task_admin: User, task_user: User
) -> None:
    src, src_root = await open_collection_of(server, task_admin, "src")
    base = {"same.txt": b"same", "samesize.txt": b"aaaa", "bigger.txt": b"b", "gone.txt": b"g"}
    write_tree(src_root, base)
    tc = transfer_client(server, task_user)
    expected_by_level = {
        0: {"gone.txt"},
        1: {"gone.txt", "bigger.txt"},
        2: {"gone.txt", "bigger.txt", "same.txt"},
        3: {"gone.txt", "bigger.txt", "samesize.txt"},
    }
    for level, expected in expected_by_level.items():
        dst, dst_root = await open_collection_of(server, task_admin, f"dst{level}")
        write_tree(dst_root, {k: v for k, v in base.items() if k != "gone.txt"})
        now = time.time()
        for name in ("same.txt", "samesize.txt", "bigger.txt"):
            os.utime(dst_root / name, (now, now))
        write_tree(src_root, {"samesize.txt": b"AAAA", "bigger.txt": b"bigger"})
        older, newer = now - 86400, now + 3600
        os.utime(src_root / "samesize.txt", (older, older))  # changed, but looks older
        os.utime(src_root / "same.txt", (newer, newer))  # unchanged, but looks newer
        task = await _run(tc, transfer_doc(src, dst, [("/", "/", True)], sync_level=level))
        assert task["status"] == "SUCCEEDED", task
        assert task["sync_level"] == level
        moved = await sdk(lambda task=task: _moved(tc, task["task_id"]))
        assert {m.lstrip("/") for m in moved} == expected, level
        assert task["files_transferred"] == len(expected)
        assert task["files_skipped"] == 4 - len(expected)
        write_tree(src_root, base)  # back to the start for the next level


async def test_posix_to_s3_to_s3_to_posix_with_verified_checksums(
    server: ServerThread, task_admin: User, task_user: User
) -> None:
    src, src_root = await open_collection_of(server, task_admin, "src")
    back, back_root = await open_collection_of(server, task_admin, "back")
    first = (await mint_dataset(server, task_user))["collection_id"]
    second = (await mint_dataset(server, task_user))["collection_id"]
    files = {
        "run1/a.csv": b"a,b\n1,2\n",
        "run1/big.bin": os.urandom(20 * 1024 * 1024 + 5),  # several parts on the way
        "run1/nested/c.txt": b"c" * 1000,
        "empty.dat": b"",
    }
    write_tree(src_root, files)
    tc = transfer_client(server, task_user)
    for doc in (
        transfer_doc(src, first, [("/", "/raw/", True)], verify_checksum=True),
        transfer_doc(first, second, [("/raw/", "/copy/", True)], verify_checksum=True),
        transfer_doc(second, back, [("/copy/", "/", True)], verify_checksum=True),
    ):
        task = await _run(tc, doc)
        assert task["status"] == "SUCCEEDED", task
        assert task["files_transferred"] == len(files)
        assert task["bytes_transferred"] == sum(len(v) for v in files.values())
    assert tree(back_root) == files
    assert not [p for p in back_root.rglob("*") if "provena" in p.name]  # no temp left
    digest = hashlib.sha256(files["run1/big.bin"]).hexdigest()
    assert hashlib.sha256((back_root / "run1/big.bin").read_bytes()).hexdigest() == digest


@pytest.mark.parametrize("size", [64 * 1024 + 3, 20 * 1024 * 1024 + 5], ids=["single", "multipart"])
async def test_verify_checksum_decides_whether_a_download_is_hashed(
    server: ServerThread, task_admin: User, task_user: User, size: int
) -> None:
    """S3 to local: ``verify_checksum`` checks the bytes against the sha256 stored at upload;
    without it (Globus's default) only the size is checked, and the bytes come as stored.

    A file uploaded in parts has its sha256 stored too (hashed before the upload was
    created): its rotten bytes, rewritten in parts with that metadata kept, fail the check.
    """
    src, src_root = await open_collection_of(server, task_admin, "src")
    back, back_root = await open_collection_of(server, task_admin, "back")
    dataset = (await mint_dataset(server, task_user))["collection_id"]
    data = os.urandom(size)
    write_tree(src_root, {"a.bin": data})
    tc = transfer_client(server, task_user)
    task = await _run(tc, transfer_doc(src, dataset, [("/a.bin", "/a.bin", None)]))
    assert task["status"] == "SUCCEEDED", task
    rotten = bytearray(data)
    rotten[len(rotten) // 2] ^= 0x01  # bit rot: the bytes change, the stored sha256 doesn't
    backend = (await open_as(server, task_user, dataset)).backend
    assert isinstance(backend, S3Backend)
    key = backend.key(normalise("/a.bin"))

    async def rot() -> None:
        s3, bucket = backend.store.s3, backend.bucket
        got = await s3.head_object(Bucket=bucket, Key=key)
        metadata = got["Metadata"]
        assert metadata.get("sha256") == hashlib.sha256(data).hexdigest()
        if not got["ETag"].strip('"').endswith("-3"):  # the big file: 3 parts of 8 MiB
            assert size < 16 * 1024 * 1024
            await s3.put_object(Bucket=bucket, Key=key, Body=bytes(rotten), Metadata=metadata)
            return
        part = 8 * 1024 * 1024
        upload = (await s3.create_multipart_upload(Bucket=bucket, Key=key, Metadata=metadata))[
            "UploadId"
        ]
        parts = []
        for number, at in enumerate(range(0, size, part), start=1):
            done = await s3.upload_part(
                Bucket=bucket,
                Key=key,
                UploadId=upload,
                PartNumber=number,
                Body=bytes(rotten[at : at + part]),
            )
            parts.append({"PartNumber": number, "ETag": done["ETag"]})
        await s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
        )

    await in_server(server, rot)

    checked = await _run(
        tc, transfer_doc(dataset, back, [("/a.bin", "/a.bin", None)], verify_checksum=True)
    )
    assert checked["status"] == "FAILED", checked
    events = await sdk(lambda: tc.task_event_list(checked["task_id"]).data)
    assert any("sha256" in (e["details"] or "") for e in events["DATA"] if e["is_error"])
    assert tree(back_root) == {}  # never put in place

    for options in ({"verify_checksum": False}, {}):  # not set: Globus's default, false
        task = await _run(tc, transfer_doc(dataset, back, [("/a.bin", "/a.bin", None)], **options))
        assert task["status"] == "SUCCEEDED", task
        assert task["verify_checksum"] is False
        assert task["bytes_transferred"] == len(data) and task["bytes_checksummed"] == 0
        assert tree(back_root) == {"a.bin": bytes(rotten)}


async def test_a_missing_source_fails_the_task_with_an_event(
    server: ServerThread, task_admin: User, task_user: User
) -> None:
    p = await posix_pair(server, task_admin, task_user)
    src, src_root, dst, dst_root, tc = p.src, p.src_root, p.dst, p.dst_root, p.tc
    write_tree(src_root, {"here.txt": b"here"})
    items = [("/here.txt", "/here.txt", None), ("/not-here.txt", "/not-here.txt", None)]
    task = await _run(tc, transfer_doc(src, dst, items))
    assert task["status"] == "FAILED"
    assert task["fatal_error"]["code"] == "FILE_NOT_FOUND"
    events = await sdk(lambda: tc.task_event_list(task["task_id"]).data)
    errors = [e for e in events["DATA"] if e["is_error"]]
    assert errors and errors[0]["code"] == "FILE_NOT_FOUND"
    assert "/not-here.txt" in errors[0]["details"]
    assert tree(dst_root) == {}  # it failed before copying anything

    task = await _run(tc, transfer_doc(src, dst, items, skip_source_errors=True))
    assert task["status"] == "SUCCEEDED", task
    assert task["subtasks_skipped_errors"] == 1 and task["files_transferred"] == 1
    skipped = await sdk(lambda: tc.task_skipped_errors(task["task_id"]).data)
    assert [(s["source_path"], s["error_code"]) for s in skipped["DATA"]] == [
        ("/not-here.txt", "FILE_NOT_FOUND")
    ]
    assert skipped["next_marker"] is None
    assert tree(dst_root) == {"here.txt": b"here"}


async def test_delete_destination_extra_and_a_past_deadline(
    server: ServerThread, task_admin: User, task_user: User
) -> None:
    p = await posix_pair(server, task_admin, task_user)
    src, src_root, dst, dst_root, tc = p.src, p.src_root, p.dst, p.dst_root, p.tc
    write_tree(src_root, {"keep.txt": b"k", "d/keep2.txt": b"k2"})
    write_tree(dst_root, {"extra.txt": b"x", "d/extra2.txt": b"x2", "d/keep2.txt": b"old"})
    doc = transfer_doc(src, dst, [("/", "/", True)], delete_destination_extra=True)
    task = await _run(tc, doc)
    assert task["status"] == "SUCCEEDED", task
    assert tree(dst_root) == {"keep.txt": b"k", "d/keep2.txt": b"k2"}

    past = (datetime.now(UTC) - timedelta(minutes=5)).isoformat()
    task = await _run(tc, transfer_doc(src, dst, [("/keep.txt", "/late.txt", None)], deadline=past))
    assert task["status"] == "FAILED"
    assert task["fatal_error"]["code"] == "DEADLINE_EXCEEDED"
    assert not (dst_root / "late.txt").exists()


async def test_update_task_changes_label_and_deadline(
    server: ServerThread, task_admin: User, task_user: User
) -> None:
    p = await posix_pair(server, task_admin, task_user)
    src, src_root, dst, tc = p.src, p.src_root, p.dst, p.tc
    write_tree(src_root, {"a": b"a"})
    task = await _run(tc, transfer_doc(src, dst, [("/a", "/a", None)], label="before"))
    answer = await sdk(lambda: tc.update_task(task["task_id"], {"label": "after"}))
    assert (answer["DATA_TYPE"], answer["code"]) == ("result", "Updated")
    doc = await sdk(lambda: tc.get_task(task["task_id"]).data)
    assert doc["label"] == "after"
    with pytest.raises(globus_sdk.TransferAPIError) as err:
        await sdk(lambda: tc.update_task(task["task_id"], {"owner_id": "mallory"}))
    assert err.value.http_status == 400


async def test_a_v3_full_document_is_accepted(
    server: ServerThread, task_admin: User, task_user: User
) -> None:
    p = await posix_pair(server, task_admin, task_user)
    src, src_root, dst, dst_root, tc = p.src, p.src_root, p.dst, p.dst_root, p.tc
    write_tree(src_root, {"a.txt": b"alpha"})
    full = {  # what globus-sdk 3 sends: every boolean, recursive false on items
        "DATA_TYPE": "transfer",
        "submission_id": str(uuid.uuid4()),
        "source_endpoint": src,
        "destination_endpoint": dst,
        "verify_checksum": False,
        "preserve_timestamp": False,
        "encrypt_data": False,
        "skip_source_errors": False,
        "fail_on_quota_errors": False,
        "delete_destination_extra": False,
        "notify_on_succeeded": True,
        "notify_on_failed": True,
        "notify_on_inactive": True,
        "sync_level": "checksum",
        "some_future_key": {"ignored": True},
        "DATA": [
            {
                "DATA_TYPE": "transfer_item",
                "source_path": "/a.txt",
                "destination_path": "/b.txt",
                "recursive": False,
            }
        ],
    }
    accepted = await sdk(lambda: tc.post("/v0.10/transfer", data=full))
    assert accepted["code"] == "Accepted"
    task = await wait_done(tc, accepted["task_id"])
    assert task["status"] == "SUCCEEDED" and task["sync_level"] == 3
    assert tree(dst_root) == {"b.txt": b"alpha"}


async def test_delete_tasks(server: ServerThread, task_admin: User, task_user: User) -> None:
    col, root = await open_collection_of(server, task_admin, "del")
    write_tree(
        root,
        {"a.log": b"1", "b.log": b"2", "keep.txt": b"k", "dir/x": b"x", "full/y": b"y"},
    )
    tc = transfer_client(server, task_user)
    doc = delete_doc(col, ["/*.log", "/dir", "/never-was"], interpret_globs=True, recursive=True)
    accepted = await sdk(lambda: tc.submit_delete(doc))
    same_shape(accepted.data, fixture_json("submit_delete"), ignore=frozenset({"message"}))
    assert (accepted["DATA_TYPE"], accepted["code"]) == ("delete_result", "Accepted")
    task = await wait_done(tc, accepted["task_id"])
    assert task["status"] == "FAILED" and task["fatal_error"]["code"] == "FILE_NOT_FOUND"

    doc = delete_doc(
        col,
        ["/*.log", "/dir", "/never-was"],
        interpret_globs=True,
        recursive=True,
        ignore_missing=True,
    )
    task = await _run(tc, doc, delete=True)
    assert task["status"] == "SUCCEEDED", task
    assert task["type"] == "DELETE" and task["destination_endpoint_id"] is None
    assert tree(root) == {"keep.txt": b"k", "full/y": b"y"}

    task = await _run(tc, delete_doc(col, ["/full"]), delete=True)  # not recursive
    assert task["status"] == "FAILED"
    assert (root / "full" / "y").exists()
    task = await _run(tc, delete_doc(col, ["/full", "/keep.txt"], recursive=True), delete=True)
    assert task["status"] == "SUCCEEDED"
    assert tree(root) == {}
