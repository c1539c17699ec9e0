"""transfer / delete / cancel / get_task / task lists against registered Transfer responses."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from globus_sdk.testing import get_response_set, load_response

from provena_like import (
    APIConnectionError,
    BadRequest,
    NotFound,
    ResponseValidationError,
    UsageError,
)
from provena_like.clients.transfer import FilterRule, TaskHandle, TransferClient, TransferItem
from tests.clients_transfer.conftest import LAB
from tests.support.globus_responses import (
    GLOBUS_TRANSFER,
    event_list,
    register,
    sent_json,
    task_doc,
)

pytestmark = pytest.mark.anyio

ARCHIVE = "0b8d1a3e-1111-4222-8333-944455556666"


def _paths(suffix: str) -> list[str]:
    return [c.request.url for c in responses.calls if urlsplit(c.request.url).path.endswith(suffix)]


async def test_transfer_fetches_the_submission_id_first_and_sends_the_options(
    tc: TransferClient,
) -> None:
    sid = get_response_set("transfer.get_submission_id").metadata["submission_id"]
    load_response("transfer.get_submission_id")
    load_response("transfer.submit_transfer")
    handle = await tc.transfer(
        "lab:raw",
        f"globus://{ARCHIVE}/archive",
        ["a.bin", ("b.bin", "renamed/b.bin"), TransferItem(source="sub", recursive=True)],
        sync_level="checksum",
        verify_checksum=True,
        preserve_timestamp=True,
        delete_destination_extra=False,
        filter_rules=[
            FilterRule(name="*.tmp"),
            FilterRule(name="keep", method="include", type="dir"),
        ],
        deadline="2030-01-01T00:00:00+00:00",
        label="archive raw",
        skip_source_errors=True,
    )
    assert isinstance(handle, TaskHandle)
    assert handle.submission_id == sid and handle.code == "Accepted" and handle.type == "TRANSFER"
    assert handle.task_id == get_response_set("transfer.submit_transfer").metadata["task_id"]
    assert [urlsplit(c.request.url).path for c in responses.calls] == [
        "/v0.10/submission_id",
        "/v0.10/transfer",
    ]
    doc = sent_json()
    assert doc["submission_id"] == sid
    assert (doc["source_endpoint"], doc["destination_endpoint"]) == (LAB, ARCHIVE)
    assert doc["sync_level"] == 3 and doc["verify_checksum"] is True
    assert doc["preserve_timestamp"] is True and doc["delete_destination_extra"] is False
    assert doc["skip_source_errors"] is True and doc["label"] == "archive raw"
    assert doc["deadline"] == "2030-01-01T00:00:00+00:00"
    items = [(i["source_path"], i["destination_path"], i["recursive"]) for i in doc["DATA"]]
    assert items == [
        ("/data/raw/a.bin", "/archive/a.bin", False),
        ("/data/raw/b.bin", "/archive/renamed/b.bin", False),
        ("/data/raw/sub", "/archive/sub", True),
    ]
    assert doc["filter_rules"] == [
        {"DATA_TYPE": "filter_rule", "method": "exclude", "name": "*.tmp"},
        {"DATA_TYPE": "filter_rule", "method": "include", "name": "keep", "type": "dir"},
    ]
    assert "encrypt_data" not in doc  # v4 sends only what was set
    assert repr(handle).startswith("TaskHandle(")


async def test_single_item_transfer_and_no_items(tc: TransferClient) -> None:
    load_response("transfer.get_submission_id")
    load_response("transfer.submit_transfer")
    await tc.transfer("lab:raw", f"globus://{ARCHIVE}/raw", recursive=True)
    doc = sent_json()
    assert [(i["source_path"], i["destination_path"], i["recursive"]) for i in doc["DATA"]] == [
        ("/data/raw", "/raw", True)
    ]
    # verified unless asked otherwise: Globus (and so the service) defaults to no checksum
    assert "sync_level" not in doc and doc["verify_checksum"] is True
    load_response("transfer.get_submission_id")
    load_response("transfer.submit_transfer")
    await tc.transfer("lab:raw", f"globus://{ARCHIVE}/raw", verify_checksum=None)
    assert "verify_checksum" not in sent_json()  # None: the service's default
    with pytest.raises(UsageError):
        await tc.transfer("lab:raw", f"globus://{ARCHIVE}/raw", [])


async def test_no_transfer_items_maps_to_bad_request(tc: TransferClient) -> None:
    load_response("transfer.get_submission_id")
    load_response("transfer.submit_transfer", case="failure")
    with pytest.raises(BadRequest) as info:
        await tc.transfer("lab:raw", f"globus://{ARCHIVE}/raw")
    assert info.value.code == "ClientError.BadRequest.NoTransferItems"
    assert info.value.request_id == "oUAA6Sq2P" and info.value.status_code == 400
    sid = get_response_set("transfer.get_submission_id").metadata["submission_id"]
    assert any(sid in note for note in info.value.__notes__)


async def test_a_retried_submit_reuses_one_submission_id(tc: TransferClient) -> None:
    """The connection drops on the first submit; the retry carries the same id: one task."""
    load_response("transfer.get_submission_id")
    url = f"{GLOBUS_TRANSFER}/v0.10/transfer"
    responses.add(responses.POST, url, body=requests.ConnectionError("connection reset"))
    load_response("transfer.submit_transfer")
    handle = await tc.transfer("lab:a.bin", f"globus://{ARCHIVE}/a.bin")
    submits = [sent_json(i, path_endswith="/v0.10/transfer") for i in range(2)]
    assert len(_paths("/v0.10/transfer")) == 2
    assert len(_paths("/submission_id")) == 1
    assert submits[0]["submission_id"] == submits[1]["submission_id"] == handle.submission_id


async def test_a_failed_submit_can_be_repeated_with_its_submission_id(tc: TransferClient) -> None:
    """Every attempt is lost; the caller submits again with the same id and gets Duplicate."""
    load_response("transfer.get_submission_id")
    url = f"{GLOBUS_TRANSFER}/v0.10/transfer"
    for _ in range(3):  # the first try and the client's 2 retries
        responses.add(responses.POST, url, body=requests.ConnectionError("connection reset"))
    accepted = get_response_set("transfer.submit_transfer").lookup("default").json
    assert isinstance(accepted, dict)
    register("/v0.10/transfer", method="POST", json_body=dict(accepted, code="Duplicate"))
    with pytest.raises(APIConnectionError) as info:
        await tc.transfer("lab:a.bin", f"globus://{ARCHIVE}/a.bin")
    sid = sent_json(path_endswith="/v0.10/transfer")["submission_id"]
    assert any(f"submission_id={sid!r}" in note for note in info.value.__notes__)
    handle = await tc.transfer("lab:a.bin", f"globus://{ARCHIVE}/a.bin", submission_id=sid)
    assert handle.code == "Duplicate" and handle.submission_id == sid
    assert handle.task_id == accepted["task_id"]
    assert len(_paths("/submission_id")) == 1  # never a second id
    assert {sent_json(i, path_endswith="/v0.10/transfer")["submission_id"] for i in range(4)} == {
        sid
    }


async def test_explicit_submission_id_skips_the_fetch(tc: TransferClient) -> None:
    load_response("transfer.submit_delete")
    sid = await _fresh_id(tc)
    responses.calls.reset()
    handle = await tc.delete(
        "lab:tmp",
        ["a.bin", "b/c.bin"],
        recursive=True,
        ignore_missing=True,
        label="tidy",
        submission_id=sid,
    )
    assert [urlsplit(c.request.url).path for c in responses.calls] == ["/v0.10/delete"]
    doc = sent_json()
    assert doc["DATA_TYPE"] == "delete" and doc["endpoint"] == LAB and doc["submission_id"] == sid
    assert doc["recursive"] is True and doc["ignore_missing"] is True and doc["label"] == "tidy"
    assert "interpret_globs" not in doc
    assert [i["path"] for i in doc["DATA"]] == ["/data/tmp/a.bin", "/data/tmp/b/c.bin"]
    assert handle.type == "DELETE" and handle.code == "Accepted"


async def _fresh_id(tc: TransferClient) -> str:
    load_response("transfer.get_submission_id")
    return await tc.submission_id()


async def test_cancel_get_task_and_missing_task(tc: TransferClient) -> None:
    rset = get_response_set("transfer.cancel_task")
    load_response("transfer.cancel_task")
    assert await tc.cancel(rset.metadata["task_id"]) == "Canceled"

    task_id = "42f5b2e0-0000-4000-8000-000000000001"
    register(
        f"/v0.10/task/{task_id}",
        json_body=task_doc(
            task_id, status="ACTIVE", completion_time=None, nice_status="OK", is_ok=True
        ),
    )
    task = await tc.get_task(task_id)
    assert task.task_id == task_id and task.status == "ACTIVE" and not task.done
    assert task.document["command"] == "API 0.10"
    assert repr(task) == f"Task('{task_id}', TRANSFER ACTIVE OK, files=1/1)"
    missing = "42f5b2e0-0000-4000-8000-000000000002"
    register(
        f"/v0.10/task/{missing}",
        status=404,
        json_body={
            "code": "TaskNotFound",
            "message": f"Task {missing} not found",
            "request_id": "q1",
            "resource": "/task",
        },
    )
    with pytest.raises(NotFound) as info:
        await tc.task(missing).status()
    assert info.value.code == "TaskNotFound"


async def test_task_list_pages_by_offset_until_total(tc: TransferClient) -> None:
    fixture = get_response_set("transfer.task_list").lookup("default").json
    assert isinstance(fixture, dict)
    ids = [f"42f5b2e0-0000-4000-8000-00000000001{i}" for i in range(5)]
    for start in (0, 2, 4):
        chunk = ids[start : start + 2]
        page = dict(
            fixture,
            DATA=[task_doc(t) for t in chunk],
            offset=start,
            limit=2,
            length=len(chunk),
            total=5,
        )
        register("/v0.10/task_list", json_body=page)
    seen = [
        t.task_id
        async for t in tc.iter_tasks(
            filter={"type": "TRANSFER", "status": ["ACTIVE", "SUCCEEDED"]},
            orderby="request_time DESC",
            page_size=2,
        )
    ]
    assert seen == ids
    queries = [parse_qs(urlsplit(c.request.url).query) for c in responses.calls]
    assert [q["offset"] for q in queries] == [["0"], ["2"], ["4"]]
    assert all(q["limit"] == ["2"] for q in queries)
    assert queries[0]["filter"] == ["type:TRANSFER/status:ACTIVE,SUCCEEDED"]
    assert queries[0]["orderby"] == ["request_time DESC"]

    responses.calls.reset()
    register("/v0.10/task_list", json_body=dict(fixture, total=1))
    page = await tc.list_tasks()
    assert len(page.items) == 1 and page.next_cursor is None
    with pytest.raises(UsageError):
        await tc.list_tasks(cursor="not-an-offset")


async def test_successful_transfers_and_skipped_errors_follow_the_marker(
    tc: TransferClient,
) -> None:
    task_id = "42f5b2e0-0000-4000-8000-000000000003"
    shape = (
        get_response_set("transfer.endpoint_manager_task_successful_transfers")
        .lookup("default")
        .json
    )
    assert isinstance(shape, dict)
    item = shape["DATA"][0]
    register(
        f"/v0.10/task/{task_id}/successful_transfers",
        json_body=dict(shape, marker=0, next_marker=93979, DATA=[item]),
    )
    register(
        f"/v0.10/task/{task_id}/successful_transfers",
        json_body=dict(
            shape,
            marker=93979,
            next_marker=None,
            DATA=[dict(item, source_path="/s2", destination_path="/d2")],
        ),
    )
    moved = [
        (m.source_path, m.destination_path) async for m in tc.task(task_id).successful_transfers()
    ]
    assert moved == [("/path/to/source", "/path/to/destination"), ("/s2", "/d2")]
    markers = [parse_qs(urlsplit(c.request.url).query).get("marker") for c in responses.calls]
    assert markers == [None, ["93979"]]

    skipped = {
        "DATA_TYPE": "skipped_errors",
        "marker": None,
        "next_marker": None,
        "DATA": [
            {
                "DATA_TYPE": "skipped_error",
                "checksum_algorithm": None,
                "destination_path": "/~/dst/missing.txt",
                "error_code": "FILE_NOT_FOUND",
                "error_details": "No such file",
                "error_time": "2021-09-02T18:04:49+00:00",
                "external_checksum": None,
                "is_delete_destination_extra": False,
                "is_directory": False,
                "is_symlink": False,
                "source_path": "/~/src/missing.txt",
            }
        ],
    }
    register(f"/v0.10/task/{task_id}/skipped_errors", json_body=skipped)
    errors = [e async for e in tc.iter_skipped_errors(task_id)]
    assert [(e.source_path, e.error_code) for e in errors] == [
        ("/~/src/missing.txt", "FILE_NOT_FOUND")
    ]
    assert repr(errors[0]) == "SkippedError('/~/src/missing.txt': FILE_NOT_FOUND)"


async def test_task_events_page(tc: TransferClient) -> None:
    task_id = "42f5b2e0-0000-4000-8000-000000000004"
    register(
        f"/v0.10/task/{task_id}/event_list",
        json_body=event_list(
            [("FILE_NOT_FOUND", "file not found", True), ("STARTED", "started", False)]
        ),
    )
    events = await tc.task(task_id).events(limit=2)
    assert [(e.code, e.is_error) for e in events] == [("FILE_NOT_FOUND", True), ("STARTED", False)]
    assert parse_qs(urlsplit(responses.calls[0].request.url).query)["limit"] == ["2"]
    assert repr(events[0]) == "TaskEvent(error FILE_NOT_FOUND: 'file not found')"


async def test_a_document_that_does_not_parse_is_a_response_validation_error(
    tc: TransferClient,
) -> None:
    task_id = "42f5b2e0-0000-4000-8000-000000000005"
    register(f"/v0.10/task/{task_id}", json_body=task_doc(task_id, status="EXPLODED"))
    with pytest.raises(ResponseValidationError, match="task document.*status") as info:
        await tc.get_task(task_id)
    assert info.value.service == "transfer"
