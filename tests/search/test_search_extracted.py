"""Extracted metadata in search: terms limited to the field, and carried over by versioning.

Runs on SQLite (FTS5 column filters) and PostgreSQL (the field's own vector): the same
queries give the same datasets on both.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like.testing.server_thread import ServerThread
from tests.support.l3_helpers import mint_dataset
from tests.support.search_helpers import User, attach, search, signed_in, walk, word
from tests.support.transfer_tasks import write_tree

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


async def test_new_version_carries_the_results_of_the_files_it_carries(
    server: ServerThread,
    client: httpx.AsyncClient,
    new_user: Callable[..., User],
    tmp_path: Path,
) -> None:
    alice = new_user()
    col_a, col_b, col_c, col_gone, col_late = (word() for _ in range(5))
    a, b, c = f"x,{col_a}\n1,2\n".encode(), f"{col_b}\n3\n".encode(), b"notes"
    write_tree(tmp_path / "up", {"raw/a.csv": a, "b.csv": b, "c.txt": c})
    write_tree(tmp_path / "late", {"late.csv": b"x,y\n"})
    async with signed_in(server, alice) as pv:
        ds = await mint_dataset(pv, "versioned")
        (await ds.upload(tmp_path / "up")).raise_for_failures()
        await attach(
            pv,
            ds.id,
            {
                "raw/a.csv": (len(a), ["x", col_a]),
                "b.csv": (len(b), [col_b]),
                "c.txt": (len(c) + 1, [col_c]),  # other bytes than the file's
                "gone.csv": (1, [col_gone]),  # no such file
                "late.csv": (4, [col_late]),  # extracted before it was uploaded
            },
        )
        # registering the very bytes the results were extracted from keeps them
        (await ds.upload(tmp_path / "late")).raise_for_failures()
        assert await ids(client, alice, f"extracted:{col_late}") == {ds.id}

        new = await ds.version(reason="recalibrated", copy_files=True)
        assert await extracted_paths(pv, new.id) == {"raw/a.csv", "b.csv", "late.csv"}
        for col in (col_a, col_b, col_late):
            assert await ids(client, alice, f"extracted:{col}") == {ds.id, new.id}, col
        for col in (col_c, col_gone):
            assert await ids(client, alice, f"extracted:{col}") == {ds.id}, col
        carried = {f.path: f async for f in pv.datastore_client.iter_extracted(new.id)}
        assert carried["raw/a.csv"].terms == ["x", col_a]
        assert carried["raw/a.csv"].size == len(a)
        # the old version's results are untouched
        assert len(await extracted_paths(pv, ds.id)) == 5

        # a file replaced by other bytes, or removed, in the new version loses its results
        write_tree(tmp_path / "again", {"raw/a.csv": b"y,z\n5,6\n", "late.csv": b"x,y\n"})
        (await new.upload(tmp_path / "again")).raise_for_failures()
        await new.remove_files(["b.csv"])
        assert await extracted_paths(pv, new.id) == {"late.csv"}
        assert await ids(client, alice, f"extracted:{col_a}") == {ds.id}
        assert await ids(client, alice, f"extracted:{col_b}") == {ds.id}
        assert await ids(client, alice, f"extracted:{col_late}") == {ds.id, new.id}

        # reverting the record changes no extracted metadata
        first = (await new.history())[0]
        info = new.record.dataset_info.model_copy(update={"name": "renamed"})
        await new.update_metadata(new.record.model_copy(update={"dataset_info": info}), reason="x")
        await new.revert_metadata(first.id, reason="back")
        assert await extracted_paths(pv, new.id) == {"late.csv"}

        # a version without its files has no results; the version after it none either
        third = await new.version(reason="empty")
        assert await extracted_paths(pv, third.id) == set()
        assert await ids(client, alice, f"extracted:{col_late}") == {ds.id, new.id}
