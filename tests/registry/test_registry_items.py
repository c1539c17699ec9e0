"""Registry items against the real server: create, fetch, update, history, revert, locks."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from provena_like.models.registry import ItemCreate, ItemUpdate
from provena_like.server.errors import ServiceError
from provena_like.server.registry import service
from provena_like.server.security import Principal
from provena_like.testing.server_thread import ServerThread
from tests.support.registry_helpers import User, create, path, person

pytestmark = pytest.mark.anyio

ALL_ROLES = ["metadata-read", "metadata-write", "data-read", "data-write", "admin"]


async def test_create_and_fetch(client: httpx.AsyncClient, new_user: Callable[..., User]) -> None:
    alice = new_user()
    r = await client.post(
        "/items", json={"subtype": "person", "record": person()}, headers=alice.headers
    )
    assert r.status_code == 201, r.text
    item = r.json()
    prefix, _, number = item["id"].partition("/")
    assert prefix == "10378.1" and number.isdigit()
    assert item["subtype"] == "person"
    assert item["display_name"] == "Ada Lovelace"
    assert item["owner"] == alice.name
    assert item["revision"] == 1
    assert item["roles"] == ALL_ROLES
    assert item["locked"] is False
    assert item["versioning"] == {"version": 1, "previous": None, "next": None}
    assert item["access"] == {"owner": alice.name, "general": [], "groups": {}}
    assert r.headers["etag"] == '"1"'
    assert r.headers["location"].endswith(f"/registry/items/{item['id']}")

    r = await client.get(path(item["id"]), headers=alice.headers)
    assert r.status_code == 200
    assert r.headers["etag"] == '"1"'
    fetched = r.json()
    assert fetched["history"] is None
    assert {k: v for k, v in fetched.items() if k != "history"} == {
        k: v for k, v in item.items() if k != "history"
    }

    r = await client.get(
        path(item["id"]), params={"include_history": "true"}, headers=alice.headers
    )
    [entry] = r.json()["history"]
    assert entry["reason"] == "created"
    assert entry["user"] == alice.name
    assert entry["revision"] == 1
    assert entry["snapshot"] == {"display_name": "Ada Lovelace", "record": item["record"]}


async def test_display_names(client: httpx.AsyncClient, new_user: Callable[..., User]) -> None:
    alice = new_user()
    org = await create(client, alice, subtype="organisation", record={"name": " CSIRO "})
    assert org["display_name"] == "CSIRO"
    assert org["record"] == {"name": "CSIRO"}
    named = await create(client, alice, display_name="Countess of Lovelace")
    assert named["display_name"] == "Countess of Lovelace"


async def test_concurrent_creates_get_distinct_handles(
    client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    ids: list[str] = []

    async def one(i: int) -> None:
        ids.append((await create(client, alice, record=person(f"P{i}")))["id"])

    async with anyio.create_task_group() as tg:
        for i in range(20):
            tg.start_soon(one, i)
    assert len(set(ids)) == 20


async def test_unknown_subtype_and_invalid_record(
    client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    r = await client.post("/items", json={"subtype": "planet", "record": {}}, headers=alice.headers)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert "organisation" in error["message"] and "person" in error["message"]
    assert error["details"][0]["field"] == "subtype"
    assert "person" in error["details"][0]["valid"]

    bad = {"first_name": "Ada", "email": "not-an-email", "shoe_size": 38}
    r = await client.post(
        "/items", json={"subtype": "person", "record": bad}, headers=alice.headers
    )
    assert r.status_code == 422
    error = r.json()["error"]
    fields = {d["field"] for d in error["details"]}
    assert fields == {"record.last_name", "record.email", "record.shoe_size"}
    assert "record.email" in error["message"]
    assert all(d["message"] for d in error["details"])

    r = await client.post(
        "/items",
        json={"subtype": "person", "record": person(), "display_name": "   "},
        headers=alice.headers,
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "display_name"


async def test_update_history_and_preconditions(
    client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    item = await create(client, alice)
    url = path(item["id"])

    body = {"record": person("Ada", "King"), "reason": "married name"}
    r = await client.put(url, json=body, headers={**alice.headers, "If-Match": '"1"'})
    assert r.status_code == 200, r.text
    assert r.headers["etag"] == '"2"'
    updated = r.json()
    assert updated["revision"] == 2
    assert updated["display_name"] == "Ada King"
    assert updated["updated_at"] >= updated["created_at"] == item["created_at"]

    # stale If-Match → 412 with the current revision
    r = await client.put(url, json=body, headers={**alice.headers, "If-Match": '"1"'})
    assert r.status_code == 412
    error = r.json()["error"]
    assert error["code"] == "stale_revision"
    assert error["details"] == {"expected_revision": 1, "current_revision": 2}
    # ... and with expected_revision in the body
    r = await client.put(url, json={**body, "expected_revision": 1}, headers=alice.headers)
    assert r.status_code == 412
    # header and body disagreeing is a client bug
    r = await client.put(
        url, json={**body, "expected_revision": 1}, headers={**alice.headers, "If-Match": '"2"'}
    )
    assert r.status_code == 400
    r = await client.put(url, json=body, headers={**alice.headers, "If-Match": "yesterday"})
    assert r.status_code == 400

    # expected_revision matching → 200; no precondition at all → last writer wins
    r = await client.put(
        url, json={**body, "expected_revision": 2, "reason": "r3"}, headers=alice.headers
    )
    assert r.status_code == 200 and r.json()["revision"] == 3
    r = await client.put(
        url, json={**body, "reason": "r4", "display_name": "A. K."}, headers=alice.headers
    )
    assert r.status_code == 200 and r.json()["revision"] == 4
    assert r.json()["display_name"] == "A. K."

    # invalid record on update names the field
    r = await client.put(
        url, json={"record": {"first_name": "Ada"}, "reason": "x"}, headers=alice.headers
    )
    assert r.status_code == 422
    assert {d["field"] for d in r.json()["error"]["details"]} == {
        "record.last_name",
        "record.email",
    }

    r = await client.get(url + "/history", headers=alice.headers)
    assert r.status_code == 200
    page = r.json()
    assert page["next_cursor"] is None
    assert [e["reason"] for e in page["items"]] == ["r4", "r3", "married name", "created"]
    assert [e["revision"] for e in page["items"]] == [4, 3, 2, 1]


async def test_history_pagination(client: httpx.AsyncClient, new_user: Callable[..., User]) -> None:
    alice = new_user()
    item = await create(client, alice)
    url = path(item["id"])
    for i in range(6):
        r = await client.put(
            url, json={"record": person(), "reason": f"edit {i}"}, headers=alice.headers
        )
        assert r.status_code == 200
    reasons: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"page_size": 3}
        if cursor:
            params["cursor"] = cursor
        r = await client.get(url + "/history", params=params, headers=alice.headers)
        assert r.status_code == 200
        page = r.json()
        pages += 1
        reasons += [e["reason"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == 3  # 7 entries in pages of 3
    assert reasons == [f"edit {i}" for i in reversed(range(6))] + ["created"]

    r = await client.get(url + "/history", params={"cursor": "garbage!"}, headers=alice.headers)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_cursor"
    other = await create(client, alice)
    r = await client.get(url + "/history", params={"page_size": 1}, headers=alice.headers)
    foreign = r.json()["next_cursor"]
    r = await client.get(
        path(other["id"], "/history"), params={"cursor": foreign}, headers=alice.headers
    )
    assert r.status_code == 400


async def test_revert(client: httpx.AsyncClient, new_user: Callable[..., User]) -> None:
    alice = new_user()
    item = await create(client, alice)
    url = path(item["id"])
    r = await client.put(
        url,
        json={"record": person("Grace", "Hopper"), "reason": "wrong person"},
        headers=alice.headers,
    )
    assert r.status_code == 200
    history = (await client.get(url + "/history", headers=alice.headers)).json()["items"]
    first = history[-1]
    assert first["reason"] == "created"

    r = await client.post(
        url + "/revert",
        json={"history_id": first["id"], "reason": "undo", "expected_revision": 1},
        headers=alice.headers,
    )
    assert r.status_code == 412

    r = await client.post(
        url + "/revert",
        json={"history_id": first["id"], "reason": "undo"},
        headers={**alice.headers, "If-Match": '"2"'},
    )
    assert r.status_code == 200, r.text
    reverted = r.json()
    assert reverted["revision"] == 3
    assert reverted["record"] == item["record"]
    assert reverted["display_name"] == "Ada Lovelace"
    assert r.headers["etag"] == '"3"'
    history = (await client.get(url + "/history", headers=alice.headers)).json()["items"]
    assert history[0]["reason"] == f"reverted to entry {first['id']}: undo"
    assert history[0]["snapshot"] == first["snapshot"]
    assert len(history) == 3

    # an entry of another item is not found here
    other = await create(client, alice)
    other_entry = (await client.get(path(other["id"], "/history"), headers=alice.headers)).json()
    r = await client.post(
        url + "/revert",
        json={"history_id": other_entry["items"][0]["id"], "reason": "nope"},
        headers=alice.headers,
    )
    assert r.status_code == 404
    r = await client.post(
        url + "/revert", json={"history_id": 10**9, "reason": "nope"}, headers=alice.headers
    )
    assert r.status_code == 404


async def test_lock_unlock(client: httpx.AsyncClient, new_user: Callable[..., User]) -> None:
    alice = new_user()
    item = await create(client, alice)
    url = path(item["id"])

    r = await client.post(url + "/lock", json={"reason": "under review"}, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert r.json()["locked"] is True
    assert r.json()["revision"] == 2

    r = await client.post(url + "/lock", json={"reason": "again"}, headers=alice.headers)
    assert r.status_code == 409
    assert "already locked" in r.json()["error"]["message"]

    r = await client.put(url, json={"record": person(), "reason": "edit"}, headers=alice.headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "locked"
    history = (await client.get(url + "/history", headers=alice.headers)).json()["items"]
    r = await client.post(
        url + "/revert",
        json={"history_id": history[-1]["id"], "reason": "x"},
        headers=alice.headers,
    )
    assert r.status_code == 409

    r = await client.post(url + "/unlock", json={"reason": "review done"}, headers=alice.headers)
    assert r.status_code == 200
    assert r.json()["locked"] is False
    r = await client.post(url + "/unlock", json={"reason": "again"}, headers=alice.headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "not_locked"

    r = await client.put(url, json={"record": person(), "reason": "edit"}, headers=alice.headers)
    assert r.status_code == 200
    assert r.json()["revision"] == 4

    r = await client.get(url + "/lock-history", headers=alice.headers)
    assert r.status_code == 200
    events = r.json()
    assert [(e["action"], e["reason"], e["user"]) for e in events] == [
        ("lock", "under review", alice.name),
        ("unlock", "review done", alice.name),
    ]
    r = await client.post(url + "/lock", json={"reason": ""}, headers=alice.headers)
    assert r.status_code == 422


async def test_concurrent_updates_same_base_revision(
    client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    item = await create(client, alice)
    url = path(item["id"])
    statuses: list[int] = []

    async def writer(i: int) -> None:
        r = await client.put(
            url,
            json={"record": person(f"W{i}"), "reason": f"writer {i}"},
            headers={**alice.headers, "If-Match": '"1"'},
        )
        statuses.append(r.status_code)

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(writer, i)
    assert sorted(statuses) == [200] + [412] * 9
    final = (await client.get(url, headers=alice.headers)).json()
    assert final["revision"] == 2
    history = (await client.get(url + "/history", headers=alice.headers)).json()["items"]
    assert len(history) == 2


async def test_concurrent_updates_without_precondition_all_land(
    client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    item = await create(client, alice)
    url = path(item["id"])
    statuses: list[int] = []

    async def writer(i: int) -> None:
        r = await client.put(
            url, json={"record": person(f"W{i}"), "reason": f"writer {i}"}, headers=alice.headers
        )
        statuses.append(r.status_code)

    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(writer, i)
    assert statuses == [200] * 10
    final = (await client.get(url, headers=alice.headers)).json()
    assert final["revision"] == 11
    history = (await client.get(url + "/history", headers=alice.headers)).json()["items"]
    assert [e["revision"] for e in history] == list(range(11, 0, -1))


async def test_idempotent_create(client: httpx.AsyncClient, new_user: Callable[..., User]) -> None:
    alice = new_user()
    key = uuid.uuid4().hex
    body = {"subtype": "person", "record": person()}
    headers = {**alice.headers, "Idempotency-Key": key}
    first = await client.post("/items", json=body, headers=headers)
    again = await client.post("/items", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    assert again.headers["etag"] == first.headers["etag"]

    # concurrent duplicates replay too
    results: list[httpx.Response] = []

    async def dup() -> None:
        results.append(await client.post("/items", json=body, headers=headers))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(dup)
    assert {r.json()["id"] for r in results} == {first.json()["id"]}

    listing = await client.get("/items", params={"owner": alice.name}, headers=alice.headers)
    assert [i["id"] for i in listing.json()["items"]] == [first.json()["id"]]

    r = await client.post("/items", json={**body, "record": person("Other")}, headers=headers)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "idempotency_key_reused"

    # another user's same key is their own
    bob = new_user()
    r = await client.post("/items", json=body, headers={**bob.headers, "Idempotency-Key": key})
    assert r.status_code == 201 and r.json()["id"] != first.json()["id"]


async def test_subtypes(client: httpx.AsyncClient, new_user: Callable[..., User]) -> None:
    alice = new_user()
    r = await client.get("/subtypes", headers=alice.headers)
    assert r.status_code == 200
    by_name = {s["name"]: s["record_schema"] for s in r.json()}
    assert {"organisation", "person"} <= set(by_name)
    assert "email" in by_name["person"]["properties"]
    assert (await client.get("/subtypes")).status_code == 401


async def test_unknown_item(client: httpx.AsyncClient, new_user: Callable[..., User]) -> None:
    alice = new_user()
    r = await client.get(path("10378.1/999999999"), headers=alice.headers)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert r.json()["error"]["request_id"] == r.headers["x-request-id"]


def test_write_race_is_decided_by_the_conditional_update(
    server: ServerThread, new_user: Callable[..., User]
) -> None:
    """A writer that commits between another's read and UPDATE: 412, or a retry without one."""
    alice = Principal(username=new_user().name)
    sessions = server.app.state.sessions

    async def sneak_in(item_id: str) -> None:
        async with sessions() as other, other.begin():
            body = ItemUpdate(record=person("Sneaky"), reason="got in first")
            await service.update_item(other, alice, item_id, body, expected=None)

    async def race(expected: int | None) -> tuple[int, list[int], int]:
        async with sessions() as session, session.begin():
            body = ItemCreate(subtype="person", record=person())
            item_id = (await service.create_item(session, alice, body, prefix="10378.1")).id
        seen: list[int] = []

        async def prepare(row: Any) -> dict[str, Any]:
            seen.append(row.revision)
            if len(seen) == 1:
                await sneak_in(item_id)
            return {"display_name": "Racer", "name_key": "racer"}

        try:
            async with sessions() as session, session.begin():
                row = await service._write(
                    session, alice, item_id, "metadata-write", expected=expected, prepare=prepare
                )
                return 200, seen, row.revision
        except ServiceError as err:
            return err.status, seen, -1

    assert server.call(lambda: race(1)) == (412, [1, 2], -1)
    assert server.call(lambda: race(None)) == (200, [1, 2], 3)
