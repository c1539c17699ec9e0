"""Search never shows an item the caller may not read, and follows every write at once."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.errors import Forbidden, Unprocessable
from provena_like.models.search import SearchHit
from provena_like.testing.server_thread import ServerThread
from tests.support.l3_helpers import mint_dataset
from tests.support.search_helpers import (
    User,
    attach,
    create,
    organisation,
    search,
    signed_in,
    walk,
    word,
)

pytestmark = pytest.mark.anyio

READ = ["metadata-read"]


async def ids(client: httpx.AsyncClient, user: User, q: str, **params: object) -> set[str]:
    hits, _ = await walk(client, user, q, **params)
    return {h["item"]["id"] for h in hits}


async def test_owner_only_items_are_invisible_until_granted(
    client: httpx.AsyncClient,
    registry: httpx.AsyncClient,
    new_user: Callable[..., User],
    admin: User,
) -> None:
    lab = f"lab-{uuid.uuid4().hex[:8]}"
    alice = new_user(groups=(lab,))
    bob, carol = new_user(groups=(lab,)), new_user()
    w = word()
    private = await create(registry, alice, record=organisation(f"{w} Private"))
    shared = await create(registry, alice, record=organisation(f"{w} Lab"), groups={lab: READ})
    public = await create(registry, alice, record=organisation(f"{w} Public"), general=READ)

    assert await ids(client, alice, w) == {private["id"], shared["id"], public["id"]}
    assert await ids(client, bob, w) == {shared["id"], public["id"]}
    assert await ids(client, carol, w) == {public["id"]}
    assert await ids(client, admin, w) == {private["id"], shared["id"], public["id"]}
    # the roles reported are the caller's own
    [hit] = await search(client, carol, w)
    assert hit["item"]["roles"] == ["metadata-read"]

    # a general read grant makes the private item visible to everyone signed in
    url = f"/items/{private['id']}/access"
    body = {"owner": alice.name, "general": READ, "groups": {}}
    r = await registry.put(url, json=body, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert await ids(client, carol, w) == {private["id"], public["id"]}
    # ... and taking it away hides it again
    body = {"owner": alice.name, "general": [], "groups": {}}
    r = await registry.put(url, json=body, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert await ids(client, carol, w) == {public["id"]}
    assert await ids(client, bob, w, owner=alice.name) == {shared["id"], public["id"]}


async def test_pages_are_full_whatever_the_caller_cannot_see(
    client: httpx.AsyncClient, registry: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice, bob = new_user(), new_user()
    w = word()
    visible = set()
    for i in range(9):
        general = READ if i % 3 == 0 else []
        item = await create(registry, alice, record=organisation(f"{w} {i}"), general=general)
        if general:
            visible.add(item["id"])
    hits, sizes = await walk(client, bob, w, page_size=2)
    assert {h["item"]["id"] for h in hits} == visible
    assert sizes == [2, 1]
    hits, sizes = await walk(client, alice, w, page_size=4)
    assert len(hits) == 9 and sizes == [4, 4, 1]


async def test_updates_and_reverts_are_searchable_at_once(
    client: httpx.AsyncClient, registry: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    old, new = word(), word()
    item = await create(registry, alice, record=organisation(f"{old} Observatory"))
    url = f"/items/{item['id']}"
    assert await ids(client, alice, old) == {item["id"]}

    body = {"record": organisation(f"{new} Observatory"), "reason": "renamed"}
    r = await registry.put(url, json=body, headers=alice.headers)
    assert r.status_code == 200, r.text
    assert await ids(client, alice, old) == set()
    [hit] = await search(client, alice, new)
    assert hit["item"]["id"] == item["id"] and hit["item"]["revision"] == 2
    assert hit["highlights"]["display_name"] == f"<mark>{new}</mark> Observatory"

    # an explicit display name is indexed too
    body = {"record": organisation(f"{new} Observatory"), "reason": "x", "display_name": "Obs"}
    r = await registry.put(url, json=body, headers=alice.headers)
    assert r.status_code == 200, r.text
    [hit] = await search(client, alice, new)
    assert hit["item"]["display_name"] == "Obs" and "display_name" not in hit["highlights"]

    r = await registry.get(url + "/history", headers=alice.headers)
    first = r.json()["items"][-1]["id"]
    r = await registry.post(
        url + "/revert", json={"history_id": first, "reason": "undo"}, headers=alice.headers
    )
    assert r.status_code == 200, r.text
    assert await ids(client, alice, new) == set()
    [hit] = await search(client, alice, old)
    assert hit["item"]["display_name"] == f"{old} Observatory"


async def test_failed_write_leaves_the_index_alone(
    client: httpx.AsyncClient, registry: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    old, new = word(), word()
    item = await create(registry, alice, record=organisation(f"{old} Station"))
    url = f"/items/{item['id']}"
    body = {"record": organisation(f"{new} Station"), "reason": "stale"}
    r = await registry.put(url, json=body, headers={**alice.headers, "If-Match": '"7"'})
    assert r.status_code == 412
    assert await ids(client, alice, new) == set()
    assert await ids(client, alice, old) == {item["id"]}


async def test_reindex_is_for_system_admins(
    client: httpx.AsyncClient,
    registry: httpx.AsyncClient,
    new_user: Callable[..., User],
    admin: User,
) -> None:
    alice = new_user()
    w = word()
    item = await create(registry, alice, record=organisation(f"{w} Reindexed"))
    r = await client.post("/reindex", headers=alice.headers)
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    r = await client.post("/reindex", headers=admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["indexed"] >= 1 and r.json()["seconds"] >= 0
    assert await ids(client, alice, w) == {item["id"]}


async def test_sdk_search_client(
    server: ServerThread, registry: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    w = word()
    created = [
        (await create(registry, alice, record=organisation(f"{w} Node {i}")))["id"]
        for i in range(5)
    ]
    async with ProvenaClient(base_url=server.url, access_token=alice.token) as pv:
        page = await pv.search_client.search_items(w, subtype="organisation", page_size=2)
        assert len(page.items) == 2 and page.next_cursor is not None
        assert isinstance(page.items[0], SearchHit)
        assert "<mark>" in page.items[0].highlights["display_name"]
        hits = [
            h async for h in pv.search_client.iter_search_items(w, owner=alice.name, page_size=2)
        ]
        assert sorted(h.item.id for h in hits) == sorted(created)
        first = await pv.search_client.iter_search_items(w, max_items=3)
        assert len(first.items) == 3  # the page asked for is shrunk to max_items
        page = await pv.search_client.search_items(
            w, fields={"name": f"{w} Node 3", "record.name": f"{w} Node 3"}
        )
        assert [h.item.id for h in page.items] == [created[3]]
        with pytest.raises(Unprocessable):
            await pv.search_client.search_items("  ")
        with pytest.raises(Forbidden):
            await pv.search_client.reindex()


async def test_private_columns_are_found_only_by_readers(
    server: ServerThread, client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    """``extracted:`` terms (and their exclusions) see only datasets the caller may read."""
    w = word()
    lab = f"lab-{word()}"
    owner, member, stranger = new_user(), new_user(groups=(lab,)), new_user()
    async with signed_in(server, owner) as pv:
        ds = await mint_dataset(pv, "private")
        await attach(pv, ds.id, {"t.csv": (1, [w])})
        for q in [f"extracted:{w}", f"extracted:{w[:9]}*", f'extracted:"{w}" -extracted:zz']:
            assert await ids(client, owner, q, subtype="dataset") == {ds.id}
            assert await ids(client, member, q, subtype="dataset") == set()
            assert await ids(client, stranger, q, subtype="dataset") == set()
        settings = await pv.registry_client.get_access(ds.id)
        await pv.registry_client.update_access(
            ds.id, {**settings.model_dump(), "groups": {lab: ["metadata-read"]}}
        )
    assert await ids(client, member, f"extracted:{w}", subtype="dataset") == {ds.id}
    assert await ids(client, stranger, f"extracted:{w}", subtype="dataset") == set()
