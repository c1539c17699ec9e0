"""Presigned URLs, the file manifest, and versions that copy their files."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from provena_like.testing.seaweed import SeaweedS3
from provena_like.testing.server_thread import ServerThread
from tests.support.datastore_helpers import (
    Refs,
    User,
    error,
    keys_under,
    mint,
    path,
    record,
    s3_client,
)
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio

BAD_PATHS = ["", "../x", "a/../b", "a//b", "/abs", "a\\b", "./a", "dir/", "a\x00b"]


def upload(store: SeaweedS3, bucket: str, prefix: str, files: dict[str, bytes]) -> None:
    with s3_client(store) as admin:
        for name, body in files.items():
            admin.put_object(Bucket=bucket, Key=prefix + name, Body=body)


def entry(name: str, body: bytes, **extra: Any) -> dict[str, Any]:
    return {"path": name, "size": len(body), "sha256": hashlib.sha256(body).hexdigest(), **extra}


async def test_presign(
    client: httpx.AsyncClient,
    registry: httpx.AsyncClient,
    owner: User,
    refs: Refs,
    new_user: Callable[..., User],
    store: SeaweedS3,
    bucket: str,
) -> None:
    ds = await mint(client, owner, record(refs))
    upload(store, bucket, ds["storage"]["prefix"], {"raw/a b.csv": b"x,y\n1,2\n"})
    url = path(ds["id"], "/presign")
    for bad in BAD_PATHS:
        r = await client.post(url, json={"path": bad}, headers=owner.headers)
        assert r.status_code == 422, bad
        assert error(r)["details"][0]["field"] == "path", bad
    for expires_in in (0, 3601):
        r = await client.post(
            url, json={"path": "raw/a b.csv", "expires_in": expires_in}, headers=owner.headers
        )
        assert r.status_code == 422 and error(r)["details"][0]["field"] == "expires_in"
    r = await client.post(url, json={"path": "raw/missing.csv"}, headers=owner.headers)
    assert r.status_code == 404

    r = await client.post(
        url, json={"path": "raw/a b.csv", "expires_in": 60}, headers=owner.headers
    )
    assert r.status_code == 200, r.text
    presigned = r.json()
    assert presigned["path"] == "raw/a b.csv" and presigned["method"] == "GET"
    async with httpx.AsyncClient(verify=SHARED_TLS) as anyone:
        got = await anyone.get(presigned["url"])
        assert got.status_code == 200 and got.content == b"x,y\n1,2\n"
        tampered = await anyone.get(presigned["url"].replace("a%20b.csv", "metadata.json"))
        assert tampered.status_code == 403

    reader = new_user("reader")
    await registry.put(
        f"/items/{ds['id']}/access",
        json={"owner": owner.name, "general": ["metadata-write"]},
        headers=owner.headers,
    )
    r = await client.post(url, json={"path": "raw/a b.csv"}, headers=reader.headers)
    assert r.status_code == 403


async def test_manifest_registration_and_listing(
    client: httpx.AsyncClient,
    registry: httpx.AsyncClient,
    owner: User,
    refs: Refs,
    store: SeaweedS3,
    bucket: str,
) -> None:
    ds = await mint(client, owner, record(refs))
    prefix = ds["storage"]["prefix"]
    files = {"raw/a.csv": b"a" * 10, "raw/b.csv": b"b" * 20, "notes.txt": b"hello"}
    upload(store, bucket, prefix, files)
    url = path(ds["id"], "/files")

    bad = [
        entry("raw/a.csv", files["raw/a.csv"]) | {"size": 11},
        entry("raw/missing.csv", b"zz"),
        entry("metadata.json", b"{}"),
        entry("notes.txt", files["notes.txt"]),
    ]
    r = await client.post(url, json={"files": bad}, headers=owner.headers)
    assert r.status_code == 422, r.text
    details = {d["field"]: d["type"] for d in error(r)["details"]}
    assert details == {
        "files.0.path": "size_mismatch",
        "files.1.path": "missing_object",
        "files.2.path": "reserved_path",
    }
    assert "raw/a.csv" in error(r)["details"][0]["message"]
    r = await client.get(url, headers=owner.headers)
    assert r.json()["items"] == []  # all or nothing

    for body in (
        {"files": [entry("../a", b"")]},
        {"files": [entry("a", b"") | {"sha256": "xyz"}]},
        {"files": [entry("a", b"") | {"md5": "12"}]},
        {"files": []},
        {"files": [entry("a", b""), entry("a", b"")]},
    ):
        r = await client.post(url, json=body, headers=owner.headers)
        assert r.status_code == 422, body

    good = [entry(name, body) for name, body in files.items()]
    good[0]["md5"] = hashlib.md5(files["raw/a.csv"]).hexdigest().upper()
    r = await client.post(url, json={"files": good}, headers=owner.headers)
    assert r.status_code == 200, r.text
    result = r.json()
    assert result["unchanged"] == []
    registered = {e["path"]: e for e in result["registered"]}
    assert set(registered) == set(files)
    a = registered["raw/a.csv"]
    assert a["md5"] == hashlib.md5(files["raw/a.csv"]).hexdigest()
    assert a["etag"] and a["registered_by"] == owner.name and a["size"] == 10

    r = await client.post(url, json={"files": good}, headers=owner.headers)
    assert r.json() == {"registered": [], "unchanged": sorted(files, key=list(files).index)}

    upload(store, bucket, prefix, {"raw/b.csv": b"B" * 20})
    changed = [entry("raw/a.csv", files["raw/a.csv"]), entry("raw/b.csv", b"B" * 20)]
    r = await client.post(url, json={"files": changed}, headers=owner.headers)
    result = r.json()
    assert result["unchanged"] == ["raw/a.csv"]
    [b] = result["registered"]
    assert b["path"] == "raw/b.csv" and b["sha256"] == hashlib.sha256(b"B" * 20).hexdigest()

    # a store-side SHA-256 that disagrees is refused
    with s3_client(store) as admin:
        admin.put_object(
            Bucket=bucket, Key=prefix + "checked.bin", Body=b"abc", ChecksumAlgorithm="SHA256"
        )
    r = await client.post(
        url,
        json={"files": [entry("checked.bin", b"abc") | {"sha256": "0" * 64}]},
        headers=owner.headers,
    )
    assert r.status_code == 422 and error(r)["details"][0]["type"] == "checksum_mismatch"

    # listing: path order, pages, prefix
    pages: list[list[str]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"page_size": 1, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(url, params=params, headers=owner.headers)).json()
        pages.append([e["path"] for e in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == [["notes.txt"], ["raw/a.csv"], ["raw/b.csv"]]
    r = await client.get(url, params={"prefix": "raw/"}, headers=owner.headers)
    assert [e["path"] for e in r.json()["items"]] == ["raw/a.csv", "raw/b.csv"]
    r = await client.get(url, params={"prefix": "RAW/"}, headers=owner.headers)
    assert r.json()["items"] == []  # case-sensitive
    r = await client.get(
        url, params={"prefix": "raw/", "cursor": cursor or "x"}, headers=owner.headers
    )
    assert r.status_code == 400

    r = await client.get(path(ds["id"], "/files/raw/a.csv"), headers=owner.headers)
    assert r.status_code == 200 and r.json()["sha256"] == a["sha256"]
    r = await client.get(path(ds["id"], "/files/raw/nope.csv"), headers=owner.headers)
    assert r.status_code == 404
    r = await client.get(path(ds["id"], "/files/raw%5Ca.csv"), headers=owner.headers)
    assert r.status_code == 422 and error(r)["details"][0]["field"] == "path.path"

    r = await registry.post(f"/items/{ds['id']}/lock", json={"reason": "r"}, headers=owner.headers)
    assert r.status_code == 200
    r = await client.post(url, json={"files": good}, headers=owner.headers)
    assert r.status_code == 409 and error(r)["code"] == "locked"


async def test_version_with_copied_files(
    client: httpx.AsyncClient,
    server: ServerThread,
    owner: User,
    refs: Refs,
    new_user: Callable[..., User],
    registry: httpx.AsyncClient,
    store: SeaweedS3,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds = await mint(client, owner, record(refs))
    old_prefix = ds["storage"]["prefix"]
    big = bytes(range(256)) * (6 * 1024 * 4)  # 6 MiB: copied part by part below
    files = {"a.csv": b"1,2\n", "deep/b.bin": b"\x00" * 100, "big.bin": big}
    upload(store, bucket, old_prefix, files)
    r = await client.post(
        path(ds["id"], "/files"),
        json={"files": [entry(n, b) for n, b in files.items() if n != "deep/b.bin"]},
        headers=owner.headers,
    )
    assert r.status_code == 200
    with s3_client(store) as admin:
        before = {
            o["Key"]: o["ETag"]
            for o in admin.list_objects_v2(Bucket=bucket, Prefix=old_prefix)["Contents"]
        }
    object_store = server.app.state.object_store
    monkeypatch.setattr(object_store, "copy_limit", 5 * 1024**2)
    monkeypatch.setattr(object_store, "copy_part_size", 5 * 1024**2)

    admin_of_item = new_user("stranger")
    r = await client.post(
        path(ds["id"], "/version"), json={"reason": "x"}, headers=admin_of_item.headers
    )
    assert r.status_code == 403

    r = await client.post(
        path(ds["id"], "/version"),
        json={"reason": "recalibrated", "copy_files": True},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    version = r.json()
    new = version["dataset"]
    assert version["previous"] == ds["id"] and version["version"] == 2
    assert version["id"] == new["id"] != ds["id"] and version["copied_files"] == 3
    assert r.headers["location"].endswith(f"/datastore/datasets/{new['id']}")
    assert new["versioning"] == {"version": 2, "previous": ds["id"], "next": None}
    assert new["record"] == ds["record"] and new["display_name"] == ds["display_name"]
    new_prefix = new["storage"]["prefix"]
    assert new_prefix == f"{new['id'].replace('/', '-')}/" != old_prefix

    with s3_client(store) as admin:
        after = {
            o["Key"]: o["ETag"]
            for o in admin.list_objects_v2(Bucket=bucket, Prefix=old_prefix)["Contents"]
        }
        assert after == before  # the old version's objects are untouched
        for name, body in files.items():
            copy = admin.get_object(Bucket=bucket, Key=new_prefix + name)["Body"].read()
            assert copy == body, name
        document = admin.get_object(Bucket=bucket, Key=new_prefix + "metadata.json")["Body"]
        assert b'"id": "' + new["id"].encode() + b'"' in document.read()
    assert keys_under(store, bucket, new_prefix) == sorted(
        [new_prefix + n for n in files] + [new_prefix + "metadata.json"]
    )

    r = await client.get(path(new["id"], "/files"), headers=owner.headers)
    copied = {e["path"]: e for e in r.json()["items"]}
    assert set(copied) == {"a.csv", "big.bin"}  # only what was registered
    assert copied["big.bin"]["sha256"] == hashlib.sha256(big).hexdigest()

    r = await client.get(path(ds["id"]), params={"include_history": "true"}, headers=owner.headers)
    old = r.json()
    assert old["versioning"] == {"version": 1, "previous": None, "next": new["id"]}
    assert old["revision"] == 2
    assert old["history"][0]["reason"] == f"new version {new['id']} (version 2): recalibrated"
    r = await client.get(path(new["id"]), params={"include_history": "true"}, headers=owner.headers)
    assert r.json()["history"][-1]["reason"] == f"created as version 2 of {ds['id']}: recalibrated"

    r = await client.post(path(ds["id"], "/version"), json={"reason": "x"}, headers=owner.headers)
    assert r.status_code == 409 and error(r)["code"] == "already_versioned"
    r = await client.post(
        path(new["id"], "/version"), json={"reason": "again"}, headers=owner.headers
    )
    assert r.status_code == 201
    third = r.json()
    assert third["version"] == 3 and third["copied_files"] == 0
    assert keys_under(store, bucket, third["dataset"]["storage"]["prefix"]) == [
        third["dataset"]["storage"]["prefix"] + "metadata.json"
    ]
