"""The real globus-sdk against the live server: every operation and endpoint route.

Each answer is compared with globus-sdk's own registered responses (``globus_sdk.testing``):
the same keys, JSON types, ``DATA_TYPE`` / ``code`` values and HTTP status (ids, times and
request ids differ, of course). ``ls`` has no registered response; its envelope is compared
with the keys real Globus answers with (globus-cli's recorded responses) and each entry with
the SDK's ``operation_stat`` file document.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import globus_sdk
import pytest
from globus_sdk import TransferClient

from provena_like.testing.server_thread import ServerThread
from tests.support.transfer import (
    FILE_LIST_KEYS,
    TYPE_ZERO,
    call_as,
    fixture_json,
    like_fixture,
    new_root,
    register_collection,
    same_error,
    shape_mismatches,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio


def _same_error(err: globus_sdk.TransferAPIError, name: str, case: str) -> None:
    same_error(err.http_status, err.raw_json, name, case)


@pytest.fixture
async def collection(server: ServerThread, admin: User) -> tuple[str, Path]:
    root = new_root(server)
    (root / "share").mkdir()
    (root / "share" / "file1.txt").write_text("abcd")
    (root / "share" / "b.csv").write_text("t,v\n")
    (root / "share" / ".hidden").write_text("h")
    (root / "share" / "sub").mkdir()
    col = await register_collection(server, admin, root, name=f"Tutorial {uuid.uuid4().hex[:6]}")
    return col["collection_id"], root


async def test_submission_id(server: ServerThread, admin: User) -> None:
    first = await call_as(server, admin, lambda tc: tc.get_submission_id().data)
    second = await call_as(server, admin, lambda tc: tc.get_submission_id()["value"])
    like_fixture(first, "get_submission_id")
    assert uuid.UUID(first["value"]) and first["value"] != second


async def test_get_endpoint(
    server: ServerThread, admin: User, collection: tuple[str, Path], new_user: Callable[..., User]
) -> None:
    cid, _ = collection
    doc = await call_as(server, admin, lambda tc: tc.get_endpoint(cid).data)
    like_fixture(doc, "get_endpoint")
    assert doc["id"] == cid and doc["display_name"].startswith("Tutorial")
    assert doc["entity_type"] == "GCSv5_mapped_collection" and doc["default_directory"] == "/~/"
    with pytest.raises(globus_sdk.TransferAPIError) as err:
        await call_as(server, new_user("stranger"), lambda tc: tc.get_endpoint(cid))
    assert (err.value.http_status, err.value.code) == (403, "EndpointPermissionDenied")
    with pytest.raises(globus_sdk.TransferAPIError) as err:
        await call_as(server, admin, lambda tc: tc.get_endpoint(str(uuid.uuid4())))
    assert (err.value.http_status, err.value.code) == (404, "ClientError.NotFound")


async def test_operation_mkdir(
    server: ServerThread, admin: User, collection: tuple[str, Path]
) -> None:
    cid, root = collection
    made = await call_as(server, admin, lambda tc: tc.operation_mkdir(cid, "/~/share/new").data)
    like_fixture(made, "operation_mkdir")
    assert made["resource"] == f"/v0.10/operation/endpoint/{cid}/mkdir"
    assert (root / "share" / "new").is_dir()
    with pytest.raises(globus_sdk.TransferAPIError) as err:
        await call_as(server, admin, lambda tc: tc.operation_mkdir(cid, "/share/new/"))
    assert (err.value.http_status, err.value.code) == (502, "ExternalError.MkdirFailed.Exists")
    assert set(err.value.raw_json or {}) == TYPE_ZERO


async def test_operation_rename(
    server: ServerThread, admin: User, collection: tuple[str, Path]
) -> None:
    cid, root = collection
    renamed = await call_as(
        server, admin, lambda tc: tc.operation_rename(cid, "/share/file1.txt", "/share/f.txt").data
    )
    like_fixture(renamed, "operation_rename")
    assert (root / "share" / "f.txt").read_text() == "abcd"
    with pytest.raises(globus_sdk.TransferAPIError) as err:
        await call_as(server, admin, lambda tc: tc.operation_rename(cid, "/share/nope", "/x"))
    assert (err.value.http_status, err.value.code) == (404, "ClientError.NotFound")


async def test_operation_stat(
    server: ServerThread, admin: User, collection: tuple[str, Path], new_user: Callable[..., User]
) -> None:
    cid, _ = collection
    info = await call_as(
        server, admin, lambda tc: tc.operation_stat(cid, "/~/share/file1.txt").data
    )
    like_fixture(info, "operation_stat")
    assert (info["name"], info["size"], info["type"]) == ("file1.txt", 4, "file")
    assert len(info["last_modified"]) == len("2021-01-15 01:45:50+00:00")
    assert info["last_modified"].endswith("+00:00")
    folder = await call_as(server, admin, lambda tc: tc.operation_stat(cid, "/share/sub/").data)
    assert folder["type"] == "dir"

    with pytest.raises(globus_sdk.TransferAPIError) as err:
        await call_as(server, admin, lambda tc: tc.operation_stat(cid, "/~/foo"))
    _same_error(err.value, "operation_stat", "not_found")
    with pytest.raises(globus_sdk.TransferAPIError) as err:
        await call_as(server, new_user("stranger"), lambda tc: tc.operation_stat(cid, "/share"))
    _same_error(err.value, "operation_stat", "permission_denied")


async def test_operation_ls(
    server: ServerThread, admin: User, collection: tuple[str, Path]
) -> None:
    cid, _ = collection
    stat_doc = fixture_json("operation_stat")

    listing = await call_as(server, admin, lambda tc: tc.operation_ls(cid, path="/~/share").data)
    assert set(listing) == FILE_LIST_KEYS and listing["DATA_TYPE"] == "file_list"
    for entry in listing["DATA"]:
        assert shape_mismatches(entry, stat_doc) == []
        assert entry["DATA_TYPE"] == "file"
    assert listing["path"] == "/share/" and listing["endpoint"] == cid
    assert [e["name"] for e in listing["DATA"]] == [".hidden", "b.csv", "file1.txt", "sub"]
    assert listing["total"] == listing["length"] == 4

    async def ls(**kwargs: Any) -> dict[str, Any]:
        data: dict[str, Any] = await call_as(
            server, admin, lambda tc: tc.operation_ls(cid, path="/share/", **kwargs).data
        )
        return data

    assert [e["name"] for e in (await ls(show_hidden=False))["DATA"]] == [
        "b.csv",
        "file1.txt",
        "sub",
    ]
    page = await ls(limit=2, offset=1)
    assert [e["name"] for e in page["DATA"]] == ["b.csv", "file1.txt"]
    assert (page["length"], page["total"]) == (2, 4)
    by_type = await ls(orderby=["type DESC", "name DESC"], show_hidden=False)
    assert [e["name"] for e in by_type["DATA"]] == ["file1.txt", "b.csv", "sub"]
    files = await ls(filter={"type": "file", "name": "~*.csv,*.txt"})
    assert [e["name"] for e in files["DATA"]] == ["b.csv", "file1.txt"]
    dirs = await ls(filter="type:dir")
    assert [e["name"] for e in dirs["DATA"]] == ["sub"]
    big = await ls(filter="size:>=4/type:file")  # clauses of one filter: all must match
    assert [e["name"] for e in big["DATA"]] == ["b.csv", "file1.txt"]
    # several filter parameters: an entry matching any of them is listed (what `globus ls
    # --recursive --filter` sends, so that it can walk every directory)
    either = await ls(filter=[{"type": "dir"}, {"name": "~*.csv"}])
    assert [e["name"] for e in either["DATA"]] == ["b.csv", "sub"]
    sized = await ls(filter=["size:>=4/type:file", "name:.hidden"])
    assert [e["name"] for e in sized["DATA"]] == [".hidden", "b.csv", "file1.txt"]

    root = await call_as(server, admin, lambda tc: tc.operation_ls(cid).data)
    assert root["path"] == "/" and [e["name"] for e in root["DATA"]] == ["share"]

    with pytest.raises(globus_sdk.TransferAPIError) as err:
        await call_as(server, admin, lambda tc: tc.operation_ls(cid, path="/share/file1.txt"))
    assert (err.value.http_status, err.value.code) == (
        502,
        "ExternalError.DirListingFailed.NotDirectory",
    )
    with pytest.raises(globus_sdk.TransferAPIError) as err:
        await call_as(server, admin, lambda tc: tc.operation_ls(cid, path="/nope/"))
    assert (err.value.http_status, err.value.code) == (404, "ClientError.NotFound")
    with pytest.raises(globus_sdk.TransferAPIError) as err:
        await call_as(
            server, admin, lambda tc: tc.operation_ls(cid, path="/share", orderby="colour")
        )
    assert (err.value.http_status, err.value.code) == (400, "ClientError.BadRequest")


async def test_endpoint_search_pages_and_access(
    server: ServerThread, admin: User, new_user: Callable[..., User]
) -> None:
    term = f"survey{uuid.uuid4().hex[:8]}"
    team = f"team-{uuid.uuid4().hex[:6]}"
    member, stranger = new_user("member", groups=(team,)), new_user("stranger")
    count = 105  # more than one page of the SDK's paginator (100)
    limiter = anyio.CapacityLimiter(8)

    async def register(i: int) -> None:
        async with limiter:
            access: dict[str, Any] = {"groups": {team: ["data-read"]}} if i % 2 == 0 else {}
            await register_collection(
                server, admin, new_root(server), name=f"{term} {i:03d}", **access
            )

    async with anyio.create_task_group() as group:
        for i in range(count):
            group.start_soon(register, i)

    def search(tc: TransferClient, **kwargs: Any) -> list[dict[str, Any]]:
        kwargs.setdefault("filter_fulltext", term)
        return list(tc.paginated.endpoint_search(**kwargs).items())

    found = await call_as(server, admin, search)
    assert [e["display_name"] for e in found] == [f"{term} {i:03d}" for i in range(count)]
    assert len({e["id"] for e in found}) == count
    for entry in found[:3]:
        assert shape_mismatches(entry, fixture_json("get_endpoint")) == []
    mine = await call_as(server, admin, lambda tc: search(tc, filter_scope="my-endpoints"))
    assert len(mine) == count
    shared = await call_as(server, member, lambda tc: search(tc, filter_scope="shared-with-me"))
    assert [e["display_name"] for e in shared] == [f"{term} {i:03d}" for i in range(0, count, 2)]
    assert await call_as(server, member, lambda tc: search(tc, filter_scope="my-endpoints")) == []
    assert await call_as(server, stranger, search) == []
    upper = await call_as(server, admin, lambda tc: search(tc, filter_fulltext=term.upper()))
    assert len(upper) == count

    page = await call_as(
        server, admin, lambda tc: tc.endpoint_search(term, limit=10, offset=100).data
    )
    assert (page["DATA_TYPE"], page["offset"], page["limit"]) == ("endpoint_list", 100, 10)
    assert len(page["DATA"]) == 5 and page["has_next_page"] is False
    first = await call_as(server, admin, lambda tc: tc.endpoint_search(term, limit=10).data)
    assert first["has_next_page"] is True and len(first["DATA"]) == 10


async def test_authentication_is_type_zero(server: ServerThread) -> None:
    def call(token: str) -> globus_sdk.TransferAPIError:
        tc = TransferClient(
            base_url=server.url + "/", authorizer=globus_sdk.AccessTokenAuthorizer(token)
        )
        try:
            tc.get_submission_id()
        except globus_sdk.TransferAPIError as err:
            return err
        raise AssertionError("a bad token was accepted")

    err = await anyio.to_thread.run_sync(call, "not-a-token")
    assert (err.http_status, err.code) == (401, "AuthenticationFailed")
    assert set(err.raw_json or {}) == TYPE_ZERO

    def anonymous() -> globus_sdk.TransferAPIError:
        with TransferClient(base_url=server.url + "/") as tc:
            try:
                tc.operation_mkdir(str(uuid.uuid4()), "/x")
            except globus_sdk.TransferAPIError as err:
                return err
        raise AssertionError("no token was accepted")

    err = await anyio.to_thread.run_sync(anonymous)
    assert (err.http_status, err.code) == (401, "AuthenticationFailed")
    assert err.raw_json is not None and err.raw_json["resource"].endswith("/mkdir")
