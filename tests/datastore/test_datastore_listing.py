"""Listing datasets: keyset pagination over 2,000 datasets, sorts, filters, access."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import update

from provena_like.models.datastore import DatasetRecord, MintRequest
from provena_like.server.datastore import service
from provena_like.server.datastore.tables import DatasetRow
from provena_like.server.security import Principal
from provena_like.testing.server_thread import ServerThread
from tests.support.datastore_helpers import Refs, User, error, mint, record

pytestmark = pytest.mark.anyio


async def walk(
    client: httpx.AsyncClient, user: User, **params: Any
) -> tuple[list[dict[str, Any]], int]:
    """Every dataset of a listing, following next_cursor; returns (datasets, pages)."""
    items: list[dict[str, Any]] = []
    pages = 0
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/datasets", params=query, headers=user.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        pages += 1
        assert len(page["items"]) <= params.get("page_size", 100)
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages


def bulk_mint(server: ServerThread, owner: str, refs: Refs, count: int) -> list[str]:
    """Create ``count`` datasets for ``owner`` through the service layer (no objects)."""

    async def work() -> list[str]:
        principal = Principal(username=owner)
        body = MintRequest(record=DatasetRecord.model_validate(record(refs, name="Bulk")))
        ids = []
        async with server.app.state.sessions() as session, session.begin():
            for _ in range(count):
                item, _dataset = await service.create_dataset(
                    session, principal, body, handle_prefix="10378.1", bucket="provena"
                )
                ids.append(item.id)
        return ids

    return server.call(work, timeout=600)  # ~8 statements a dataset; slow on a busy machine


def seq(dataset_id: str) -> int:
    return int(dataset_id.split("/")[1])


async def test_paging_2000_datasets_yields_each_exactly_once(
    client: httpx.AsyncClient, server: ServerThread, owner: User, refs: Refs
) -> None:
    ids = bulk_mint(server, owner.name, refs, 2000)
    assert len(set(ids)) == 2000
    expected = sorted(seq(i) for i in ids)

    async def check(page_size: int) -> None:
        items, pages = await walk(client, owner, owner=owner.name, page_size=page_size)
        got = [d["id"] for d in items]
        assert len(got) == 2000 and set(got) == set(ids), page_size
        assert [seq(i) for i in got] == expected  # created, then handle number
        assert pages == -(-2000 // page_size)

    # independent walks, side by side; pages of 3 and 13 cut ties of the same creation time
    # at every offset (pages of 1 are walked in test_sorts_filters_and_access)
    async with anyio.create_task_group() as group:
        for page_size in (3, 13, 500):
            group.start_soon(check, page_size)


async def test_sorts_filters_and_access(
    client: httpx.AsyncClient,
    server: ServerThread,
    owner: User,
    refs: Refs,
    new_user: Callable[..., User],
) -> None:
    names = ["banana", "Apple", "cherry"]
    made = [
        await mint(client, owner, record(refs, name=n, keywords=[n.lower(), "fruit"]))
        for n in names
    ]
    ids = [d["id"] for d in made]
    items, _ = await walk(client, owner, owner=owner.name, sort="name", page_size=2)
    assert [d["display_name"] for d in items] == ["Apple", "banana", "cherry"]
    items, _ = await walk(client, owner, owner=owner.name, sort="name", order="desc", page_size=1)
    assert [d["display_name"] for d in items] == ["cherry", "banana", "Apple"]
    items, _ = await walk(client, owner, owner=owner.name, order="desc")
    assert [d["id"] for d in items] == ids[::-1]

    # keyword: exact and case-sensitive
    items, _ = await walk(client, owner, owner=owner.name, keyword="apple")
    assert [d["id"] for d in items] == [ids[1]]
    items, _ = await walk(client, owner, owner=owner.name, keyword="fruit", page_size=1)
    assert [d["id"] for d in items] == ids
    items, _ = await walk(client, owner, owner=owner.name, keyword="Apple")
    assert items == []

    # release status and release time (set directly: review is a later feature)
    now = datetime.now(UTC)

    async def release() -> None:
        async with server.app.state.sessions() as session, session.begin():
            for dataset_id, when in ((ids[2], now - timedelta(days=2)), (ids[0], now)):
                await session.execute(
                    update(DatasetRow)
                    .where(DatasetRow.item_id == dataset_id)
                    .values(release_status="RELEASED", release_time=when)
                )

    server.call(release)
    items, _ = await walk(client, owner, owner=owner.name, release_status="RELEASED")
    assert [d["id"] for d in items] == [ids[0], ids[2]]
    assert items[0]["release_status"] == "RELEASED" and items[0]["release_time"]
    items, _ = await walk(client, owner, owner=owner.name, release_status="NOT_RELEASED")
    assert [d["id"] for d in items] == [ids[1]]
    items, _ = await walk(client, owner, owner=owner.name, sort="release_time", page_size=1)
    assert [d["id"] for d in items] == [ids[2], ids[0], ids[1]]  # never released: last
    items, _ = await walk(
        client, owner, owner=owner.name, sort="release_time", order="desc", page_size=2
    )
    assert [d["id"] for d in items] == [ids[1], ids[0], ids[2]]
    r = await client.post(
        f"/datasets/{ids[0]}/credentials", json={"access": "write"}, headers=owner.headers
    )
    assert r.status_code == 409 and error(r)["code"] == "released"

    # a released dataset's metadata is frozen too
    body = {"record": record(refs, name="banana", keywords=["banana"]), "reason": "touch"}
    r = await client.put(f"/datasets/{ids[0]}", json=body, headers=owner.headers)
    assert r.status_code == 409 and error(r)["code"] == "released"

    # updated: the one changed last comes last
    body = {"record": record(refs, name="Apple", keywords=["apple", "fruit"]), "reason": "touch"}
    assert (await client.put(f"/datasets/{ids[1]}", json=body, headers=owner.headers)).is_success
    items, _ = await walk(client, owner, owner=owner.name, sort="updated", page_size=1)
    assert items[-1]["id"] == ids[1]

    # access: another user sees only what is shared with them
    other = new_user("other")
    items, _ = await walk(client, other, owner=owner.name)
    assert items == []
    r = await client.get(f"/datasets/{ids[1]}", headers=other.headers)
    assert r.status_code == 403


async def test_bad_listing_parameters(client: httpx.AsyncClient, owner: User) -> None:
    r = await client.get("/datasets", params={"cursor": "%%%"}, headers=owner.headers)
    assert r.status_code == 400 and error(r)["code"] == "bad_cursor"
    r = await client.get("/datasets", params={"sort": "size"}, headers=owner.headers)
    assert r.status_code == 422 and error(r)["details"][0]["field"] == "query.sort"
    r = await client.get("/datasets", params={"page_size": 0}, headers=owner.headers)
    assert r.status_code == 422
    r = await client.get("/datasets", params={"release_status": "DONE"}, headers=owner.headers)
    assert r.status_code == 422
