"""Listing registry items: keyset pagination, sorting, filters and bad parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from provena_like.models.registry import ItemCreate
from provena_like.server.registry import service
from provena_like.server.security import Principal
from provena_like.testing.server_thread import ServerThread
from tests.support.registry_helpers import User, create, path, person

pytestmark = pytest.mark.anyio


async def walk(
    client: httpx.AsyncClient, user: User, **params: Any
) -> tuple[list[dict[str, Any]], int]:
    """Every item of a listing, following next_cursor; returns (items, number of pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/items", params=query, headers=user.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        pages += 1
        assert len(page["items"]) <= params.get("page_size", 100)
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages


def bulk_create(server: ServerThread, owner: str, count: int) -> list[str]:
    """Create ``count`` items for ``owner`` through the service layer, in one transaction."""

    async def work() -> list[str]:
        sessions = server.app.state.sessions
        principal = Principal(username=owner)
        ids = []
        async with sessions() as session, session.begin():
            for i in range(count):
                body = ItemCreate(subtype="person", record=person(f"P{i:04d}", "Bulk"))
                row = await service.create_item(session, principal, body, prefix="10378.1")
                ids.append(row.id)
        return ids

    return server.call(work, timeout=120)


async def test_every_item_exactly_once(
    client: httpx.AsyncClient, server: ServerThread, new_user: Callable[..., User]
) -> None:
    owner = new_user("bulk")
    ids = bulk_create(server, owner.name, 1000)
    assert len(set(ids)) == 1000
    numbers = [int(i.split("/")[1]) for i in ids]
    for page_size in (1, 7, 100, 500):
        items, pages = await walk(client, owner, owner=owner.name, page_size=page_size)
        got = [i["id"] for i in items]
        assert len(got) == 1000 and set(got) == set(ids), page_size
        assert [int(i.split("/")[1]) for i in got] == sorted(numbers)  # created asc, then seq
        assert pages == -(-1000 // page_size)
    items, _ = await walk(client, owner, owner=owner.name, page_size=7, order="desc")
    assert [int(i["id"].split("/")[1]) for i in items] == sorted(numbers, reverse=True)
    items, _ = await walk(client, owner, owner=owner.name, page_size=93, sort="name")
    names = [i["display_name"] for i in items]
    assert names == sorted(names, key=str.casefold) and len(set(names)) == 1000


async def test_sort_by_name_and_updated(
    client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    names = ["delta", "Alpha", "charlie", "Bravo", "alpha"]
    created = [
        await create(client, alice, subtype="organisation", record={"name": n}) for n in names
    ]
    by_id = {i["id"]: i for i in created}

    items, _ = await walk(client, alice, owner=alice.name, sort="name", page_size=2)
    assert [i["display_name"] for i in items] == ["Alpha", "alpha", "Bravo", "charlie", "delta"]
    items, _ = await walk(client, alice, owner=alice.name, sort="name", order="desc", page_size=2)
    assert [i["display_name"] for i in items] == ["delta", "charlie", "Bravo", "alpha", "Alpha"]

    # touch "charlie" then "Alpha": most recently updated first
    for name in ("charlie", "Alpha"):
        item = next(i for i in created if i["display_name"] == name)
        r = await client.put(
            path(item["id"]),
            json={"record": {"name": name}, "reason": "touch"},
            headers=alice.headers,
        )
        assert r.status_code == 200
    items, _ = await walk(
        client, alice, owner=alice.name, sort="updated", order="desc", page_size=3
    )
    assert [i["display_name"] for i in items][:2] == ["Alpha", "charlie"]
    assert set(by_id) == {i["id"] for i in items}

    items, _ = await walk(client, alice, owner=alice.name, subtype="organisation")
    assert len(items) == 5
    items, _ = await walk(client, alice, owner=alice.name, subtype="person")
    assert items == []


async def test_bad_listing_parameters(
    client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    for _ in range(3):
        await create(client, alice)
    h = alice.headers
    for params, field in [
        ({"sort": "size"}, "query.sort"),
        ({"order": "sideways"}, "query.order"),
        ({"page_size": 0}, "query.page_size"),
        ({"page_size": 1001}, "query.page_size"),
    ]:
        r = await client.get("/items", params=params, headers=h)
        assert r.status_code == 422, params
        assert r.json()["error"]["details"][0]["field"] == field
    r = await client.get("/items", params={"subtype": "planet"}, headers=h)
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "query.subtype"

    for garbage in ("garbage", "!!!", "W10=", "WyJjcmVhdGVkIiwiYXNjIixudWxsLG51bGwsMSwyXQ"):
        r = await client.get("/items", params={"cursor": garbage}, headers=h)
        assert r.status_code == 400, garbage
        assert r.json()["error"]["code"] == "bad_cursor"

    # a cursor only fits the listing that made it
    r = await client.get("/items", params={"owner": alice.name, "page_size": 1}, headers=h)
    cursor = r.json()["next_cursor"]
    assert cursor
    r = await client.get(
        "/items", params={"owner": alice.name, "cursor": cursor, "sort": "name"}, headers=h
    )
    assert r.status_code == 400
    r = await client.get("/items", params={"cursor": cursor}, headers=h)
    assert r.status_code == 400
    r = await client.get(
        "/items", params={"owner": alice.name, "page_size": 1, "cursor": cursor}, headers=h
    )
    assert r.status_code == 200 and len(r.json()["items"]) == 1
