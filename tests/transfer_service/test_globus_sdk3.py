"""globus-sdk 3.x (the newest, in an environment of its own) against the live server.

v3 does not send what v4 sends: full documents (every boolean, ``notify_on_*`` true), a
submission id fetched when a document is built, ``base_path`` joined to ``base_url``. The
script ``envs/globus_sdk3_calls.py`` calls every route with it and prints what it was
answered; this test compares that with globus-sdk's registered responses (key sets, JSON
types, ``DATA_TYPE``/``code`` values, statuses) as the v4 conformance tests do, and checks the
bytes moved.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

import anyio
import pytest

from provena_like.testing.server_thread import ServerThread
from tests.support.tool_envs import ENVS_DIR, ToolEnv
from tests.support.transfer import (
    FILE_LIST_KEYS,
    TYPE_ZERO,
    fixture_json,
    like_fixture,
    same_error,
    shape_mismatches,
)
from tests.support.transfer_tasks import (
    open_collection_of,
    task_admin_fixture,  # noqa: F401 - the task_admin fixture
    task_user_fixture,  # noqa: F401 - the task_user fixture
    tree,
    write_tree,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio

RUN_TIMEOUT = 240.0
"""Bounds the whole script (two tasks waited for with ``task_wait``, on a shared machine)."""

TASK_IGNORED = frozenset({"DATA_TYPE"})
"""The task documents of the registered ``task_list`` have no ``DATA_TYPE``; ours do."""


async def run_v3(env: ToolEnv, setup: dict[str, Any]) -> dict[str, Any]:
    """Run ``globus_sdk3_calls.py`` with the v3 environment's Python; its JSON output."""
    with anyio.fail_after(RUN_TIMEOUT):
        done = await anyio.run_process(
            [str(env.python), str(ENVS_DIR / "globus_sdk3_calls.py")],
            input=json.dumps(setup).encode(),
            check=False,
            stderr=subprocess.PIPE,
        )
    assert done.returncode == 0, done.stderr.decode()[-4000:]
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def ok(answer: dict[str, Any], name: str, **kwargs: Any) -> Any:
    """The JSON of a 200 ``answer``, checked against the registered response ``name``."""
    assert answer["status"] == 200, answer
    like_fixture(answer["json"], name, **kwargs)
    return answer["json"]


def failed(answer: dict[str, Any], status: int, code: str) -> None:
    """Assert that ``answer`` is a Type-Zero error ``status``/``code``."""
    assert (answer["status"], answer["json"]["code"]) == (status, code), answer
    assert set(answer["json"]) == TYPE_ZERO


async def test_every_route_with_globus_sdk_3(
    server: ServerThread,
    task_admin: User,
    task_user: User,
    globus_sdk3_env: ToolEnv,
) -> None:
    term = f"v3survey{uuid.uuid4().hex[:8]}"
    src, src_root = await open_collection_of(server, task_admin, term)
    dst, dst_root = await open_collection_of(server, task_admin, "v3-dst")
    share = {"file1.txt": b"abcd", "b.csv": b"t,v\n", ".hidden": b"h"}
    write_tree(src_root / "share", share)
    (src_root / "share" / "sub").mkdir()
    write_tree(dst_root / "old", {"x.txt": b"x", "deeper/y.txt": b"y"})  # v3 deletes it
    label = f"v3 copy {uuid.uuid4().hex[:6]}"

    out = await run_v3(
        globus_sdk3_env,
        {
            "base_url": server.url,
            "token": task_user.token,
            "src": src,
            "dst": dst,
            "term": term,
            "label": label,
        },
    )
    assert out["sdk_version"].startswith("3.")

    # endpoints
    assert uuid.UUID(ok(out["submission_id"], "get_submission_id")["value"])
    assert ok(out["endpoint"], "get_endpoint")["id"] == src
    failed(out["endpoint_missing"], 404, "ClientError.NotFound")
    found = out["endpoint_search"]
    assert found["status"] == 200 and found["json"]["DATA_TYPE"] == "endpoint_list"
    assert [e["id"] for e in found["json"]["DATA"]] == out["endpoint_search_items"] == [src]
    assert shape_mismatches(found["json"]["DATA"], [fixture_json("get_endpoint")]) == []

    # operations
    stat_doc = fixture_json("operation_stat")
    listing = out["ls"]
    assert listing["status"] == 200 and set(listing["json"]) == FILE_LIST_KEYS
    assert shape_mismatches(listing["json"]["DATA"], [stat_doc]) == []
    assert listing["json"]["path"] == "/share/"
    names = [e["name"] for e in listing["json"]["DATA"]]
    assert names == [".hidden", "b.csv", "file1.txt", "sub"]
    assert [e["name"] for e in out["ls_visible"]["json"]["DATA"]] == names[1:]
    page = out["ls_page"]["json"]
    assert [e["name"] for e in page["DATA"]] == names[1:3]
    assert (page["length"], page["total"]) == (2, 4)
    failed(out["ls_missing"], 404, "ClientError.NotFound")
    assert ok(out["stat"], "operation_stat")["size"] == 4
    same_error(
        out["stat_missing"]["status"], out["stat_missing"]["json"], "operation_stat", "not_found"
    )
    ok(out["mkdir"], "operation_mkdir")
    failed(out["mkdir_exists"], 502, "ExternalError.MkdirFailed.Exists")
    ok(out["rename"], "operation_rename")
    failed(out["rename_missing"], 404, "ClientError.NotFound")

    # a transfer task from v3's full document
    sent = out["sent_transfer"]
    assert sent["notify_on_succeeded"] is True and sent["encrypt_data"] is False
    assert sent["sync_level"] == 3 and sent["verify_checksum"] is True
    assert "submission_id" in sent  # fetched from GET /submission_id when the doc was built
    accepted = ok(out["transfer"], "submit_transfer", ignore=frozenset({"message"}))
    assert accepted["submission_id"] == sent["submission_id"]
    again = out["transfer_again"]
    assert (again["status"], again["json"]["code"]) == (200, "Duplicate")
    assert again["json"]["task_id"] == accepted["task_id"]
    empty = out["transfer_empty"]
    same_error(empty["status"], empty["json"], "submit_transfer", "failure")
    assert out["transfer_waited"] is True
    expected = {f"copy/{name}": data for name, data in share.items()}
    assert tree(dst_root) == {**expected, "single.txt": b"abcd"}
    assert (dst_root / "copy" / "sub").is_dir() and (dst_root / "renamed").is_dir()

    assert out["task"]["status"] == 200
    task = out["task"]["json"]
    assert shape_mismatches(task, fixture_json("task_list")["DATA"][0], ignore=TASK_IGNORED) == []
    assert (task["status"], task["label"], task["files_transferred"]) == ("SUCCEEDED", label, 4)
    assert (task["sync_level"], task["verify_checksum"], task["type"]) == (3, True, "TRANSFER")
    failed(out["task_missing"], 404, "ClientError.NotFound")
    updated = out["update_task"]
    assert (updated["status"], updated["json"]["code"]) == (200, "Updated")
    listed = ok(out["task_list"], "task_list", ignore=TASK_IGNORED)
    assert [t["task_id"] for t in listed["DATA"]] == [accepted["task_id"]]
    assert listed["DATA"][0]["label"] == f"{label} (renamed)"
    assert out["task_list_items"] == [accepted["task_id"]]
    moved = out["successful_transfers"]
    assert moved["status"] == 200 and moved["json"]["DATA_TYPE"] == "successful_transfers"
    assert moved["json"]["next_marker"] is None
    assert out["successful_transfers_items"] == sorted(
        ["/single.txt", *(f"/{path}" for path in expected)]
    )
    skipped = out["skipped_errors"]["json"]
    assert (skipped["DATA_TYPE"], skipped["DATA"], skipped["next_marker"]) == (
        "skipped_errors",
        [],
        None,
    )
    events = out["event_list"]["json"]
    assert [e["code"] for e in events["DATA"]] == ["SUCCEEDED", "STARTED"]
    done = out["cancel_done"]
    assert (done["status"], done["json"]["code"]) == (200, "TaskComplete")
    assert shape_mismatches(done["json"], fixture_json("cancel_task")) == []

    # a delete task from v3's full document
    sent_delete = out["sent_delete"]
    assert (sent_delete["ignore_missing"], sent_delete["interpret_globs"]) == (False, False)
    assert sent_delete["recursive"] is True
    ok(out["delete"], "submit_delete", ignore=frozenset({"message"}))
    assert out["delete_waited"] is True
    assert out["delete_task"]["json"]["status"] == "SUCCEEDED"
    assert not (dst_root / "old").exists()
