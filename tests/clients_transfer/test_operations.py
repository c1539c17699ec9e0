"""ls / walk / stat / mkdir / rename against globus-sdk's registered Transfer responses."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from globus_sdk.testing import get_response_set, load_response

from provena_like import APIError, Forbidden, NotFound, ServerError, UsageError
from provena_like.clients.transfer import Location, TransferClient
from tests.clients_transfer.conftest import LAB
from tests.support.globus_responses import file_doc, file_list, register, sent_json

pytestmark = pytest.mark.anyio

LS = f"/v0.10/operation/endpoint/{LAB}/ls"


def _query(call: int = -1) -> dict[str, list[str]]:
    return parse_qs(urlsplit(responses.calls[call].request.url).query)


async def test_ls_lists_with_the_normalised_path(tc: TransferClient) -> None:
    register(
        LS,
        json_body=file_list(LAB, "/data/raw/", [file_doc("a.bin", size=7), file_doc("sub", "dir")]),
    )
    listing = await tc.ls("lab:raw", filter={"type": "file"}, orderby="name ASC", limit=10)
    assert listing.path == "/data/raw/"
    assert [e.path for e in listing.entries] == ["/data/raw/a.bin", "/data/raw/sub"]
    assert [e.is_dir for e in listing.entries] == [False, True]
    assert listing.entries[0].size == 7 and listing.entries[0].last_modified is not None
    assert listing.total == 2
    query = _query()
    assert query["path"] == ["/data/raw/"]
    assert query["show_hidden"] == ["1"] or query["show_hidden"] == ["True"]
    assert query["filter"] == ["type:file"]
    assert query["orderby"] == ["name ASC"] and query["limit"] == ["10"]
    assert repr(listing) == f"Listing(globus://{LAB}/data/raw/, 2 entries)"
    assert repr(listing.entries[0]) == "FileEntry('/data/raw/a.bin', file, 7 B)"


async def test_ls_of_a_file_is_a_502_with_the_globus_code(tc: TransferClient) -> None:
    body = {
        "code": "ExternalError.DirListingFailed.NotDirectory",
        "message": "Directory listing failed: /data/a.bin is not a directory",
        "request_id": "xGb7KyZlo",
        "resource": LS,
    }
    register(LS, json_body=body, status=502)
    with pytest.raises(ServerError) as info:
        await tc.ls(LAB, "/data/a.bin")
    err = info.value
    assert err.status_code == 502
    assert err.code == "ExternalError.DirListingFailed.NotDirectory"
    assert err.request_id == "xGb7KyZlo"
    assert err.service == "transfer"
    assert "not a directory" in str(err) and "xGb7KyZlo" in str(err)
    assert len(responses.calls) == 1  # ExternalError is not retried


async def test_stat_maps_the_sdk_fixture_cases(tc: TransferClient) -> None:
    rset = get_response_set("transfer.operation_stat")
    collection = rset.metadata["endpoint_id"]
    load_response("transfer.operation_stat")
    entry = await tc.stat(collection, "/~/file1.txt")
    assert (entry.name, entry.type, entry.size, entry.path) == (
        "file1.txt",
        "file",
        4,
        "/~/file1.txt",
    )
    assert _query()["path"] == ["/~/file1.txt"]

    load_response("transfer.operation_stat", case="not_found")
    with pytest.raises(NotFound) as nf:
        await tc.stat(collection, "/~/foo")
    assert nf.value.code == "NotFound" and nf.value.request_id == "aaabbbccc"
    assert nf.value.status_code == 404 and "Path not found" in nf.value.message

    load_response("transfer.operation_stat", case="permission_denied")
    with pytest.raises(Forbidden) as pd:
        await tc.stat(collection, "/foo")
    assert pd.value.code == "EndpointPermissionDenied" and pd.value.status_code == 403
    assert isinstance(pd.value.__cause__, Exception)  # the globus-sdk error is chained


async def test_mkdir_creates_and_treats_exists_as_ok(tc: TransferClient) -> None:
    rset = get_response_set("transfer.operation_mkdir")
    collection = rset.metadata["endpoint_id"]
    load_response("transfer.operation_mkdir")
    assert await tc.mkdir(collection, "/~/new") is True
    assert sent_json() == {"DATA_TYPE": "mkdir", "path": "/~/new"}

    exists = {
        "code": "ExternalError.MkdirFailed.Exists",
        "message": "Path already exists, Error Path '/~/new' already exists",
        "request_id": "bZt9ImH5u",
        "resource": f"/v0.10/operation/endpoint/{collection}/mkdir",
    }
    responses.reset()
    register(
        f"/v0.10/operation/endpoint/{collection}/mkdir", method="POST", json_body=exists, status=502
    )
    assert await tc.mkdir(collection, "/~/new") is False
    with pytest.raises(ServerError) as info:
        await tc.mkdir(collection, "/~/new", exist_ok=False)
    assert info.value.code == "ExternalError.MkdirFailed.Exists"
    assert len(responses.calls) == 2  # not retried: an ExternalError is not transient

    other = dict(exists, code="ExternalError.MkdirFailed.PermissionDenied")
    responses.reset()
    register(
        f"/v0.10/operation/endpoint/{collection}/mkdir", method="POST", json_body=other, status=403
    )
    with pytest.raises(Forbidden):
        await tc.mkdir(collection, "/~/new")  # exist_ok covers "exists" only


async def test_rename_within_a_collection(tc: TransferClient) -> None:
    rset = get_response_set("transfer.operation_rename")
    collection = rset.metadata["endpoint_id"]
    load_response("transfer.operation_rename")
    await tc.rename(Location(collection, "/~/a.tmp"), "/~/a.bin")
    assert sent_json() == {"DATA_TYPE": "rename", "old_path": "/~/a.tmp", "new_path": "/~/a.bin"}
    with pytest.raises(UsageError, match="one collection"):
        await tc.rename("lab:a", Location(collection, "/b"))
    assert len(responses.calls) == 1


def _tree() -> None:
    """/data: a.bin, d1/ (b.bin, d2/ (c.bin)), d3/ (unlistable)."""
    register(
        LS,
        json_body=file_list(
            LAB, "/data/", [file_doc("a.bin"), file_doc("d1", "dir"), file_doc("d3", "dir")]
        ),
    )


async def test_walk_is_breadth_first_with_depth_limit_and_rate_limit(tc: TransferClient) -> None:
    import anyio

    _tree()

    # responses matches the URL without its query: answer by the path parameter instead
    def answer(request):  # type: ignore[no-untyped-def]
        import json

        path = parse_qs(urlsplit(request.url).query)["path"][0]
        docs = {
            "/data/": [file_doc("a.bin"), file_doc("d1", "dir"), file_doc("d3", "dir")],
            "/data/d1/": [file_doc("b.bin"), file_doc("d2", "dir")],
            "/data/d1/d2/": [file_doc("c.bin")],
        }
        if path not in docs:
            body = {
                "code": "EndpointPermissionDenied",
                "message": "no",
                "request_id": "r1",
                "resource": LS,
            }
            return 403, {}, json.dumps(body)
        return 200, {}, json.dumps(file_list(LAB, path, docs[path]))

    responses.reset()
    responses.add_callback(responses.GET, f"https://transfer.api.globus.org{LS}", callback=answer)
    failed: list[tuple[Location, APIError]] = []
    start = anyio.current_time()
    seen = [
        e.path
        async for e in tc.walk("lab", rate_limit=20, on_error=lambda d, e: failed.append((d, e)))
    ]
    elapsed = anyio.current_time() - start
    assert seen == [
        "/data/a.bin",
        "/data/d1",
        "/data/d3",
        "/data/d1/b.bin",
        "/data/d1/d2",
        "/data/d1/d2/c.bin",
    ]
    assert [str(d.path) for d, _ in failed] == ["/data/d3"]
    assert isinstance(failed[0][1], Forbidden)
    assert elapsed >= 3 * (1 / 20) * 0.9  # 4 ls calls, at most 20 a second

    shallow = [e.path async for e in tc.walk("lab", max_depth=0, rate_limit=None)]
    assert shallow == ["/data/a.bin", "/data/d1", "/data/d3"]
    with pytest.raises(Forbidden):  # without on_error a subdirectory's error is raised
        [e async for e in tc.walk("lab", rate_limit=None)]
    with pytest.raises(UsageError):
        [e async for e in tc.walk("lab", max_depth=-1)]
