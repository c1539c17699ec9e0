"""Datasets against the real server and object store: mint, validate, fetch, update, revert."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import anyio
import httpx
import pytest

from provena_like.testing.seaweed import SeaweedS3
from provena_like.testing.server_thread import ServerThread
from tests.support.datastore_helpers import (
    Refs,
    User,
    changed,
    error,
    mint,
    path,
    record,
    s3_client,
)

pytestmark = pytest.mark.anyio

ALL_ROLES = ["metadata-read", "metadata-write", "data-read", "data-write", "admin"]


def metadata_json(store: SeaweedS3, bucket: str, dataset: dict[str, object]) -> dict[str, object]:
    storage = dataset["storage"]
    assert isinstance(storage, dict)
    with s3_client(store) as s3:
        body = s3.get_object(Bucket=bucket, Key=storage["prefix"] + "metadata.json")["Body"]
        document: dict[str, object] = json.loads(body.read())
    return document


async def test_schema_needs_a_token_and_describes_the_record(
    client: httpx.AsyncClient, owner: User
) -> None:
    assert (await client.get("/schema")).status_code == 401
    r = await client.get("/schema", headers=owner.headers)
    assert r.status_code == 200
    schema = r.json()
    assert schema["title"] == "DatasetRecord"
    assert set(schema["properties"]) == {"associations", "approvals", "dataset_info"}
    assert schema["additionalProperties"] is False


async def test_mint_and_fetch(
    client: httpx.AsyncClient, owner: User, refs: Refs, store: SeaweedS3, bucket: str
) -> None:
    r = await client.post("/datasets", json={"record": record(refs)}, headers=owner.headers)
    assert r.status_code == 201, r.text
    ds = r.json()["dataset"]
    prefix, _, number = ds["id"].partition("/")
    assert prefix == "10378.1" and number.isdigit()
    assert r.headers["location"].endswith(f"/datastore/datasets/{ds['id']}")
    assert r.headers["etag"] == '"1"'
    assert ds["subtype"] == "dataset"
    assert ds["display_name"] == "Reef temperatures"
    assert ds["owner"] == owner.name
    assert ds["roles"] == ALL_ROLES
    assert ds["release_status"] == "NOT_RELEASED" and ds["locked"] is False
    assert ds["versioning"] == {"version": 1, "previous": None, "next": None}
    assert ds["storage"] == {
        "repository": "default",
        "bucket": bucket,
        "prefix": f"{prefix}-{number}/",
        "endpoint_url": store.endpoint_url,
    }
    assert ds["record"]["dataset_info"]["license"] == "https://creativecommons.org/licenses/by/4.0/"

    document = metadata_json(store, bucket, ds)
    assert document["id"] == ds["id"]
    assert document["record"]["dataset_info"]["name"] == "Reef temperatures"  # type: ignore[index]
    assert document["created_at"] and document["updated_at"]

    r = await client.get(path(ds["id"]), headers=owner.headers)
    assert r.status_code == 200 and r.headers["etag"] == '"1"'
    assert r.json() == ds
    r = await client.get(path(ds["id"]), params={"include_history": "true"}, headers=owner.headers)
    [entry] = r.json()["history"]
    assert entry["reason"] == "created" and entry["user"] == owner.name


async def test_validation_names_the_fields(
    client: httpx.AsyncClient,
    registry: httpx.AsyncClient,
    owner: User,
    refs: Refs,
    new_user: Callable[..., User],
) -> None:
    r = await client.post(
        "/datasets/validate", json={"record": record(refs)}, headers=owner.headers
    )
    assert r.status_code == 200 and r.json() == {"valid": True, "errors": []}

    not_reposited = record(refs, access_info={"reposited": False})
    reversed_dates = record(
        refs, temporal_info={"begin_date": "2024-02-01", "end_date": "2024-01-01"}
    )
    typo = record(refs, titel="x")
    cases = {
        "record.dataset_info.access_info": not_reposited,
        "record.dataset_info.temporal_info": reversed_dates,
        "record.dataset_info.titel": typo,
    }
    for field, rec in cases.items():
        r = await client.post("/datasets/validate", json={"record": rec}, headers=owner.headers)
        assert r.status_code == 422, field
        assert [d["field"] for d in error(r)["details"]] == [field], r.text
    r = await client.post(
        "/datasets/validate", json={"record": not_reposited}, headers=owner.headers
    )
    assert "needs uri and description" in error(r)["details"][0]["message"]

    # references: missing, of the wrong subtype, unreadable
    stranger = new_user("stranger")
    r = await registry.post(
        "/items",
        json={"subtype": "organisation", "record": {"name": "Hidden"}},
        headers=stranger.headers,
    )
    hidden = r.json()["id"]
    bad = record(refs, publisher_id=hidden)
    bad["associations"]["organisation_id"] = refs.person
    bad["associations"]["data_custodian_id"] = "10378.1/999999999"
    for url in ("/datasets/validate", "/datasets"):
        r = await client.post(url, json={"record": bad}, headers=owner.headers)
        assert r.status_code == 422, r.text
        details = {d["field"]: d["type"] for d in error(r)["details"]}
        assert details == {
            "record.associations.organisation_id": "wrong_subtype",
            "record.associations.data_custodian_id": "unknown_item",
            "record.dataset_info.publisher_id": "unreadable_item",
        }
    r = await client.post(
        "/datasets",
        json={"record": record(refs), "groups": {"no-such-group": ["metadata-read"]}},
        headers=owner.headers,
    )
    assert r.status_code == 422 and error(r)["details"][0]["field"] == "groups.no-such-group"
    r = await client.get("/datasets", params={"owner": owner.name}, headers=owner.headers)
    assert r.json()["items"] == []  # nothing was minted by the refused requests


async def test_registry_shows_datasets_but_refuses_to_create_them(
    client: httpx.AsyncClient, registry: httpx.AsyncClient, owner: User, refs: Refs
) -> None:
    r = await registry.post(
        "/items", json={"subtype": "dataset", "record": record(refs)}, headers=owner.headers
    )
    assert r.status_code == 422
    assert "POST /datastore/datasets" in error(r)["message"]
    assert error(r)["details"][0]["type"] == "use_datastore_mint"
    ds = await mint(client, owner, record(refs))
    r = await registry.get(f"/items/{ds['id']}", headers=owner.headers)
    assert r.status_code == 200 and r.json()["subtype"] == "dataset"
    assert r.json()["display_name"] == "Reef temperatures"
    r = await registry.get("/subtypes", headers=owner.headers)
    assert "dataset" in {s["name"] for s in r.json()}
    # a registry item that is not a dataset is not a dataset here
    r = await client.get(path(refs.person), headers=owner.headers)
    assert r.status_code == 404
    r = await client.get(path("10378.1/999999999"), headers=owner.headers)
    assert r.status_code == 404


async def test_update_rewrites_metadata_and_checks_revisions(
    client: httpx.AsyncClient,
    registry: httpx.AsyncClient,
    owner: User,
    refs: Refs,
    new_user: Callable[..., User],
    store: SeaweedS3,
    bucket: str,
) -> None:
    rec = record(refs)
    ds = await mint(client, owner, rec)
    body = {"record": changed(rec, name="Reef temperatures v2"), "reason": "better title"}
    r = await client.put(path(ds["id"]), json=body, headers={**owner.headers, "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    updated = r.json()
    assert updated["revision"] == 2 and updated["display_name"] == "Reef temperatures v2"
    assert updated["storage"] == ds["storage"]
    document = metadata_json(store, bucket, ds)
    assert document["revision"] == 2
    assert document["record"]["dataset_info"]["name"] == "Reef temperatures v2"  # type: ignore[index]

    r = await client.put(path(ds["id"]), json=body, headers={**owner.headers, "If-Match": '"1"'})
    assert r.status_code == 412 and error(r)["details"]["current_revision"] == 2
    r = await client.put(
        path(ds["id"]), json={**body, "expected_revision": 1}, headers=owner.headers
    )
    assert r.status_code == 412
    r = await client.put(path(ds["id"]), json={"record": rec}, headers=owner.headers)
    assert r.status_code == 422 and error(r)["details"][0]["field"] == "reason"

    reader = new_user("reader")
    await registry.put(
        f"/items/{ds['id']}/access",
        json={"owner": owner.name, "general": ["metadata-read"]},
        headers=owner.headers,
    )
    r = await client.put(path(ds["id"]), json=body, headers=reader.headers)
    assert r.status_code == 403
    r = await client.get(path(ds["id"]), headers=reader.headers)
    assert r.status_code == 200 and r.json()["roles"] == ["metadata-read"]

    r = await registry.post(
        f"/items/{ds['id']}/lock", json={"reason": "review"}, headers=owner.headers
    )
    assert r.status_code == 200
    r = await client.put(path(ds["id"]), json=body, headers=owner.headers)
    assert r.status_code == 409 and error(r)["code"] == "locked"
    r = await client.get(path(ds["id"]), headers=owner.headers)
    assert r.json()["locked"] is True


async def test_concurrent_updates_from_one_base_exactly_one_wins(
    client: httpx.AsyncClient, owner: User, refs: Refs, store: SeaweedS3, bucket: str
) -> None:
    rec = record(refs)
    ds = await mint(client, owner, rec)
    statuses: dict[int, int] = {}

    async def one(i: int) -> None:
        body = {"record": changed(rec, name=f"Writer {i}"), "reason": f"writer {i}"}
        r = await client.put(
            path(ds["id"]), json=body, headers={**owner.headers, "If-Match": '"1"'}
        )
        statuses[i] = r.status_code

    async with anyio.create_task_group() as group:
        for i in range(8):
            group.start_soon(one, i)
    winners = [i for i, status in statuses.items() if status == 200]
    assert len(winners) == 1, statuses
    assert sorted(statuses.values()) == [200] + [412] * 7
    r = await client.get(path(ds["id"]), headers=owner.headers)
    assert r.json()["revision"] == 2
    assert r.json()["display_name"] == f"Writer {winners[0]}"
    document = metadata_json(store, bucket, ds)
    assert document["record"]["dataset_info"]["name"] == f"Writer {winners[0]}"  # type: ignore[index]


async def test_revert_restores_the_record_only(
    client: httpx.AsyncClient, owner: User, refs: Refs, store: SeaweedS3, bucket: str
) -> None:
    rec = record(refs)
    ds = await mint(client, owner, rec)
    for name in ("Second", "Third"):
        body = {"record": changed(rec, name=name, keywords=[name.lower()]), "reason": name}
        assert (await client.put(path(ds["id"]), json=body, headers=owner.headers)).is_success
    r = await client.get(path(ds["id"]), params={"include_history": "true"}, headers=owner.headers)
    history = r.json()["history"]
    assert [h["reason"] for h in history] == ["Third", "Second", "created"]
    first = history[-1]["id"]

    r = await client.post(
        path(ds["id"], "/revert"),
        json={"history_id": first, "reason": "back to the start", "expected_revision": 2},
        headers=owner.headers,
    )
    assert r.status_code == 412
    r = await client.post(
        path(ds["id"], "/revert"),
        json={"history_id": first, "reason": "back to the start"},
        headers={**owner.headers, "If-Match": '"3"'},
    )
    assert r.status_code == 200, r.text
    reverted = r.json()
    assert reverted["revision"] == 4 and reverted["display_name"] == "Reef temperatures"
    assert reverted["record"] == ds["record"]
    assert reverted["storage"] == ds["storage"] and reverted["versioning"] == ds["versioning"]
    assert metadata_json(store, bucket, ds)["revision"] == 4
    r = await client.get(
        "/datasets", params={"owner": owner.name, "keyword": "reef"}, headers=owner.headers
    )
    assert [d["id"] for d in r.json()["items"]] == [ds["id"]]  # keywords came back too
    r = await client.get(path(ds["id"]), params={"include_history": "true"}, headers=owner.headers)
    assert r.json()["history"][0]["reason"] == f"reverted to entry {first}: back to the start"
    r = await client.post(
        path(ds["id"], "/revert"), json={"history_id": 10**9, "reason": "x"}, headers=owner.headers
    )
    assert r.status_code == 404


async def test_mint_replays_for_the_same_idempotency_key(
    client: httpx.AsyncClient, owner: User, refs: Refs, store: SeaweedS3, bucket: str
) -> None:
    key = uuid.uuid4().hex
    headers = {**owner.headers, "Idempotency-Key": key}
    body = {"record": record(refs)}
    first = await client.post("/datasets", json=body, headers=headers)
    again = await client.post("/datasets", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    other = await client.post(
        "/datasets", json={"record": record(refs, name="Other")}, headers=headers
    )
    assert other.status_code == 409 and error(other)["code"] == "idempotency_key_reused"
    r = await client.get("/datasets", params={"owner": owner.name}, headers=owner.headers)
    assert [d["id"] for d in r.json()["items"]] == [first.json()["dataset"]["id"]]


async def test_without_an_object_store_the_datastore_answers_503(
    client: httpx.AsyncClient, server: ServerThread, owner: User
) -> None:
    state = server.app.state
    store = state.object_store
    state.object_store = None
    try:
        r = await client.get("/datasets", headers=owner.headers)
    finally:
        state.object_store = store
    assert r.status_code == 503
    assert error(r)["code"] == "datastore_unavailable" and "'s3'" in error(r)["message"]
    assert (await client.get("/datasets", headers=owner.headers)).status_code == 200
