"""Extracted metadata in search: terms limited to the field.

Runs on SQLite (FTS5 column filters) and PostgreSQL (the field's own vector): the same
queries give the same datasets on both.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like.testing.server_thread import ServerThread
from tests.support.l3_helpers import mint_dataset
from tests.support.search_helpers import User, attach, search, signed_in, walk, word

pytestmark = pytest.mark.anyio


async def ids(client: httpx.AsyncClient, user: User, q: str) -> set[str]:
    hits, _ = await walk(client, user, q, subtype="dataset")
    return {h["item"]["id"] for h in hits}


async def extracted_paths(pv: ProvenaClient, dataset_id: str) -> set[str]:
    return {f.path async for f in pv.datastore_client.iter_extracted(dataset_id)}


async def test_terms_limited_to_extracted_metadata(
    server: ServerThread, client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    w, k, s = word(), word(), word()
    async with signed_in(server, alice) as pv:
        titled = await mint_dataset(pv, f"{w} survey")  # the title says it, no column does
        column = await mint_dataset(pv, "plain")
        await attach(pv, column.id, {"a.csv": (3, [w, f"sea {s} surface"])})
        both = await mint_dataset(pv, f"{w} and {k}")  # title and column; k in the title only
        await attach(pv, both.id, {"b.csv": (None, [f"{w}_max"])})
        excluded = await mint_dataset(pv, "excluded")
        await attach(pv, excluded.id, {"c.nc": (1, [w, k])})

    assert await ids(client, alice, w) == {titled.id, column.id, both.id, excluded.id}
    assert await ids(client, alice, f"extracted:{w}") == {column.id, both.id, excluded.id}
    assert await ids(client, alice, f"EXTRACTED:{w[:8]}*") == {column.id, both.id, excluded.id}
    # excluded from the field only vs. excluded anywhere (both has k in its title)
    assert await ids(client, alice, f"extracted:{w} -extracted:{k}") == {column.id, both.id}
    assert await ids(client, alice, f"extracted:{w} NOT extracted:{k}") == {column.id, both.id}
    assert await ids(client, alice, f"extracted:{w} -{k}") == {column.id}
    assert await ids(client, alice, f'extracted:"sea {s}"') == {column.id}
    assert await ids(client, alice, f'extracted:"{s} sea"') == set()
    assert await ids(client, alice, f"extracted:{k}") == {excluded.id}
    assert await ids(client, alice, f"{k} -extracted:{k}") == {both.id}
    assert await ids(client, alice, f"extracted:{k} OR {k} survey") == {excluded.id}
    assert await ids(client, alice, f"extracted:{k} OR {w} survey") == {excluded.id, titled.id}
    assert await ids(client, alice, f"extracted:{w} {k}") == {both.id, excluded.id}

    # a scoped term is marked in its field only
    [hit] = await search(client, alice, f"extracted:{w}_max")
    assert hit["item"]["id"] == both.id
    assert f"<mark>{w}" in hit["highlights"]["extracted"]
    assert "display_name" not in hit["highlights"]
    [hit] = await search(client, alice, f"extracted:{w}_max {k}")
    assert f"<mark>{k}</mark>" in hit["highlights"]["display_name"]
    assert f"<mark>{w}" not in hit["highlights"]["display_name"]

    for bad in ["extracted:", f"extracted: {w}", f'{w} extracted:"*"', f"{w} -extracted:-"]:
        r = await client.get("/items", params={"q": bad}, headers=alice.headers)
        assert r.status_code == 422, (bad, r.text)
        [detail] = r.json()["error"]["details"]
        assert detail["field"] == "query.q"
        assert "'extracted:' needs a word" in detail["message"], detail
