"""The operation routes over plain HTTP: ways out of a root, dataset collections, bad requests.

Every refusal is a Type-Zero body; nothing outside a collection's root is read or written.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from provena_like.testing.server_thread import ServerThread
from tests.support.fixtures import service_client
from tests.support.transfer import mint_dataset, new_root, register_collection
from tests.support.users import User

pytestmark = pytest.mark.anyio

TYPE_ZERO = {"code", "message", "request_id", "resource"}


def _ops(cid: str, tail: str) -> str:
    return f"/v0.10/operation/endpoint/{cid}/{tail}"


def _refusal(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert set(body) == TYPE_ZERO
    assert body["code"] == code, body
    assert body["request_id"] == r.headers["x-request-id"]
    return body


def _tree(directory: Path) -> dict[str, bytes | None]:
    found: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(directory):
        found.update({os.path.join(dirpath, d): None for d in dirnames})
        found.update({os.path.join(dirpath, f): Path(dirpath, f).read_bytes() for f in filenames})
    return found


# the raw query strings: httpx would encode them once more
ESCAPES = [
    "path=..",
    "path=/../",
    "path=/a/../../x",
    "path=/%252e%252e/",  # decoded once by the server: %2e%2e
    "path=/a%252Fb",  # %2F after decoding
    "path=/a%255Cb",
    "path=/a%5Cb",  # a backslash
    "path=/a%00b",  # NUL
    "path=/%2e%2e/etc",  # .. after decoding
]


async def test_ways_out_are_refused_on_every_route(
    server: ServerThread, admin: User, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    outside = tmp_path / f"outside-{uuid.uuid4().hex[:6]}"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    root = new_root(server)
    (root / "dir").mkdir()
    (root / "file.txt").write_text("file")
    (root / "out").symlink_to(outside)
    cid = (await register_collection(server, admin, root))["collection_id"]
    before_outside, before_root = _tree(outside), _tree(root)
    h = admin.headers

    for query in ESCAPES:
        for route in ("ls", "stat"):
            r = await http.get(f"{_ops(cid, route)}?{query}", headers=h)
            _refusal(r, 400, "ClientError.BadRequest.InvalidPath")
        bad = httpx.QueryParams(query).get("path")
        r = await http.post(_ops(cid, "mkdir"), json={"DATA_TYPE": "mkdir", "path": bad}, headers=h)
        _refusal(r, 400, "ClientError.BadRequest.InvalidPath")
        for old, new in ((bad, "/x"), ("/file.txt", bad)):
            body = {"DATA_TYPE": "rename", "old_path": old, "new_path": new}
            r = await http.post(_ops(cid, "rename"), json=body, headers=h)
            _refusal(r, 400, "ClientError.BadRequest.InvalidPath")

    for path in ("/out", "/out/secret.txt", "/out/"):
        r = await http.get(_ops(cid, "ls"), params={"path": path}, headers=h)
        _refusal(r, 403, "EndpointPermissionDenied")
        r = await http.get(_ops(cid, "stat"), params={"path": path}, headers=h)
        _refusal(r, 403, "EndpointPermissionDenied")
    r = await http.post(_ops(cid, "mkdir"), json={"path": "/out/new"}, headers=h)
    _refusal(r, 403, "EndpointPermissionDenied")
    for old, new in (("/file.txt", "/out/file.txt"), ("/out/secret.txt", "/stolen.txt")):
        r = await http.post(_ops(cid, "rename"), json={"old_path": old, "new_path": new}, headers=h)
        _refusal(r, 403, "EndpointPermissionDenied")

    # a host path is a path inside the root
    r = await http.get(_ops(cid, "stat"), params={"path": "/etc/passwd"}, headers=h)
    _refusal(r, 404, "NotFound")
    assert _tree(outside) == before_outside
    assert _tree(root) == before_root


async def test_dataset_collections_through_the_routes(
    server: ServerThread, new_user: Callable[..., User], http: httpx.AsyncClient
) -> None:
    alice, bob = new_user("alice"), new_user("bob")
    dataset = await mint_dataset(server, alice)
    cid = dataset["collection_id"]
    h = alice.headers
    r = await http.post(_ops(cid, "mkdir"), json={"DATA_TYPE": "mkdir", "path": "/raw"}, headers=h)
    assert r.status_code == 200 and r.json()["code"] == "DirectoryCreated", r.text
    r = await http.post(_ops(cid, "mkdir"), json={"path": "/raw/run1/"}, headers=h)
    assert r.status_code == 200, r.text
    r = await http.get(_ops(cid, "ls"), params={"path": "~/raw"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "/raw/" and [e["name"] for e in r.json()["DATA"]] == ["run1"]
    body = {"DATA_TYPE": "rename", "old_path": "/raw/run1", "new_path": "/raw/run2"}
    r = await http.post(_ops(cid, "rename"), json=body, headers=h)
    assert r.status_code == 200 and r.json()["code"] == "FileRenamed", r.text
    r = await http.get(_ops(cid, "stat"), params={"path": "/raw/run2"}, headers=h)
    assert r.status_code == 200 and r.json()["type"] == "dir", r.text
    r = await http.post(_ops(cid, "mkdir"), json={"path": "/raw"}, headers=h)
    _refusal(r, 502, "ExternalError.MkdirFailed.Exists")
    r = await http.post(
        _ops(cid, "rename"), json={"old_path": "/raw", "new_path": "/metadata.json"}, headers=h
    )
    _refusal(r, 403, "EndpointPermissionDenied")

    r = await http.get(_ops(cid, "ls"), params={"path": "/"}, headers=bob.headers)
    _refusal(r, 403, "EndpointPermissionDenied")
    r = await http.get(f"/v0.10/endpoint/{cid}", headers=bob.headers)
    _refusal(r, 403, "EndpointPermissionDenied")

    async with service_client(server, "registry") as registry:
        r = await registry.post(f"/items/{dataset['id']}/lock", json={"reason": "r"}, headers=h)
        assert r.status_code == 200, r.text
    r = await http.post(_ops(cid, "mkdir"), json={"path": "/later"}, headers=h)
    _refusal(r, 409, "ClientError.Conflict.Locked")
    r = await http.get(_ops(cid, "ls"), headers=h)
    assert r.status_code == 200, r.text  # reading a locked dataset is fine


async def test_bad_requests(server: ServerThread, admin: User, http: httpx.AsyncClient) -> None:
    cid = (await register_collection(server, admin, new_root(server)))["collection_id"]
    h = admin.headers
    r = await http.post(_ops(cid, "mkdir"), json={"DATA_TYPE": "mkdir"}, headers=h)
    assert "path" in _refusal(r, 400, "ClientError.BadRequest")["message"]
    r = await http.post(_ops(cid, "mkdir"), content=b"{not json", headers=h)
    _refusal(r, 400, "ClientError.BadRequest")
    r = await http.post(
        _ops(cid, "rename"), json={"DATA_TYPE": "mkdir", "old_path": "/a"}, headers=h
    )
    _refusal(r, 400, "ClientError.BadRequest")
    for params in (
        {"filter": "colour:red"},
        {"filter": "size:big"},
        {"filter": "type:socket"},
        {"filter": "last_modified:yesterday,"},
        {"orderby": "name SIDEWAYS"},
        {"limit": "-1"},
        {"limit": "100001"},
    ):
        r = await http.get(_ops(cid, "ls"), params=params, headers=h)
        _refusal(r, 400, "ClientError.BadRequest")
    for params in ({"filter_scope": "everything"}, {"limit": "101"}, {"offset": "1001"}):
        r = await http.get("/v0.10/endpoint_search", params=params, headers=h)
        _refusal(r, 400, "ClientError.BadRequest")
    r = await http.get("/v0.10/endpoint_search", params={"offset": "1000"}, headers=h)
    assert r.status_code == 200 and r.json()["DATA"] == [] and not r.json()["has_next_page"]
    big = {"path": "x" * (server.settings.max_body_bytes + 1)}
    url = server.url + _ops(cid, "mkdir")
    r = await anyio.to_thread.run_sync(lambda: httpx.post(url, json=big, headers=h, timeout=60))
    _refusal(r, 413, "ClientError.RequestTooLarge")
    r = await http.post(_ops(cid, "mkdir"), json={"path": "/x"})
    _refusal(r, 401, "AuthenticationFailed")
    r = await http.get(_ops(cid, "ls"))
    _refusal(r, 401, "AuthenticationFailed")
