"""Removing registered files: the manifest row first, then the object."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from provena_like.server.datastore.tables import DatasetRow
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

pytestmark = pytest.mark.anyio

FILES = {"raw/a.csv": b"a" * 10, "raw/b.csv": b"b" * 20, "notes.txt": b"hello"}


async def registered_dataset(
    client: httpx.AsyncClient, owner: User, refs: Refs, store: SeaweedS3, bucket: str
) -> dict[str, Any]:
    """A dataset with ``FILES`` uploaded (by the admin client) and registered."""
    ds = await mint(client, owner, record(refs))
    with s3_client(store) as admin:
        for name, body in FILES.items():
            admin.put_object(Bucket=bucket, Key=ds["storage"]["prefix"] + name, Body=body)
    files = [
        {"path": name, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        for name, body in FILES.items()
    ]
    r = await client.post(path(ds["id"], "/files"), json={"files": files}, headers=owner.headers)
    assert r.status_code == 200, r.text
    return ds


async def manifest_paths(client: httpx.AsyncClient, owner: User, dataset_id: str) -> list[str]:
    r = await client.get(path(dataset_id, "/files"), headers=owner.headers)
    return [e["path"] for e in r.json()["items"]]


async def test_removal_deletes_manifest_rows_then_objects(
    client: httpx.AsyncClient, owner: User, refs: Refs, store: SeaweedS3, bucket: str
) -> None:
    ds = await registered_dataset(client, owner, refs, store, bucket)
    prefix = ds["storage"]["prefix"]
    url = path(ds["id"], "/files/remove")

    r = await client.post(
        url, json={"paths": ["raw/a.csv", "raw/nope.csv", "notes.txt"]}, headers=owner.headers
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"removed": ["raw/a.csv", "notes.txt"], "not_registered": ["raw/nope.csv"]}
    assert await manifest_paths(client, owner, ds["id"]) == ["raw/b.csv"]
    assert keys_under(store, bucket, prefix) == [prefix + "metadata.json", prefix + "raw/b.csv"]
    r = await client.get(path(ds["id"], "/files/raw/a.csv"), headers=owner.headers)
    assert r.status_code == 404

    # idempotent: removing again reports the paths as not registered
    r = await client.post(url, json={"paths": ["raw/a.csv"]}, headers=owner.headers)
    assert r.json() == {"removed": [], "not_registered": ["raw/a.csv"]}

    # an object uploaded again since its registration is new content: only the row goes
    with s3_client(store) as admin:
        admin.put_object(Bucket=bucket, Key=prefix + "raw/b.csv", Body=b"B" * 20)
    r = await client.post(url, json={"paths": ["raw/b.csv"]}, headers=owner.headers)
    assert r.json()["removed"] == ["raw/b.csv"]
    assert await manifest_paths(client, owner, ds["id"]) == []
    assert prefix + "raw/b.csv" in keys_under(store, bucket, prefix)

    r = await client.post(path("10378.1/999999999", "/files/remove"), json={"paths": ["a"]})
    assert r.status_code == 401
    r = await client.post(
        path("10378.1/999999999", "/files/remove"), json={"paths": ["a"]}, headers=owner.headers
    )
    assert r.status_code == 404


async def test_removal_validation(
    client: httpx.AsyncClient, owner: User, refs: Refs, store: SeaweedS3, bucket: str
) -> None:
    ds = await registered_dataset(client, owner, refs, store, bucket)
    url = path(ds["id"], "/files/remove")
    for paths, field in (
        (["raw/a.csv", "../x"], "paths.1"),
        (["a//b"], "paths.0"),
        (["metadata.json"], "paths.0"),
        ([], "paths"),
        (["a", "a"], "paths"),
    ):
        r = await client.post(url, json={"paths": paths}, headers=owner.headers)
        assert r.status_code == 422, paths
        details = error(r)["details"]
        assert details[0]["field"] == field, (paths, details)
    r = await client.post(url, json={"paths": ["../x"]}, headers=owner.headers)
    assert "'../x'" in error(r)["details"][0]["message"]
    r = await client.post(url, json={"paths": ["metadata.json"]}, headers=owner.headers)
    assert error(r)["details"][0]["type"] == "reserved_path"
    r = await client.post(
        url, json={"paths": [f"f{i}" for i in range(1001)]}, headers=owner.headers
    )
    assert r.status_code == 422
    assert sorted(await manifest_paths(client, owner, ds["id"])) == sorted(FILES)
    assert ds["storage"]["prefix"] + "metadata.json" in keys_under(
        store, bucket, ds["storage"]["prefix"]
    )


async def test_removal_needs_data_write_and_an_open_dataset(
    client: httpx.AsyncClient,
    registry: httpx.AsyncClient,
    server: ServerThread,
    owner: User,
    refs: Refs,
    new_user: Callable[..., User],
    store: SeaweedS3,
    bucket: str,
) -> None:
    ds = await registered_dataset(client, owner, refs, store, bucket)
    url = path(ds["id"], "/files/remove")
    body = {"paths": ["raw/a.csv"]}

    reader = new_user("reader")
    r = await registry.put(
        f"/items/{ds['id']}/access",
        json={"owner": owner.name, "general": ["metadata-read", "data-read"]},
        headers=owner.headers,
    )
    assert r.status_code == 200, r.text
    r = await client.post(url, json=body, headers=reader.headers)
    assert r.status_code == 403 and "data-write" in error(r)["message"]

    r = await registry.post(f"/items/{ds['id']}/lock", json={"reason": "r"}, headers=owner.headers)
    assert r.status_code == 200
    r = await client.post(url, json=body, headers=owner.headers)
    assert r.status_code == 409 and error(r)["code"] == "locked"
    r = await registry.post(
        f"/items/{ds['id']}/unlock", json={"reason": "r"}, headers=owner.headers
    )
    assert r.status_code == 200, r.text

    for status, code in (("PENDING", "under_review"), ("RELEASED", "released")):

        async def set_status(status: str = status) -> None:
            async with server.app.state.sessions() as session, session.begin():
                await session.execute(
                    update(DatasetRow)
                    .where(DatasetRow.item_id == ds["id"])
                    .values(release_status=status)
                )

        server.call(set_status)
        r = await client.post(url, json=body, headers=owner.headers)
        assert r.status_code == 409 and error(r)["code"] == code, r.text

    assert sorted(await manifest_paths(client, owner, ds["id"])) == sorted(FILES)
    prefix = ds["storage"]["prefix"]
    assert prefix + "raw/a.csv" in keys_under(store, bucket, prefix)
