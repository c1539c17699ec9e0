"""Terms limited to a kind of extracted name: ``column:``, ``attribute:``, ``dataset:``,
``variable:``.

Runs on SQLite (an FTS5 column per kind) and PostgreSQL (a vector per kind): the same
queries give the same datasets on both, among the datasets the caller may read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import httpx
import pytest

from provena_like import ProvenaClient
from provena_like.crawler import Extraction, FileRecord, FileResult, attach_results
from provena_like.extractors.jsonfile import JsonExtractor
from provena_like.extractors.tabular import TabularExtractor
from provena_like.testing.server_thread import ServerThread
from tests.support.l3_helpers import mint_dataset
from tests.support.search_helpers import User, search, signed_in, walk, word
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio


async def ids(client: httpx.AsyncClient, user: User, q: str) -> set[str]:
    hits, _ = await walk(client, user, q, subtype="dataset")
    return {h["item"]["id"] for h in hits}


async def attach_kinds(
    pv: ProvenaClient,
    dataset_id: str,
    path: str,
    terms: Sequence[str],
    kinds: dict[str, list[str]],
) -> None:
    """Commit an extraction run of one file with these terms and kinds."""
    client = pv.datastore_client
    run = await client.start_extraction_run(dataset_id)
    files = [{"path": path, "terms": list(terms), "kinds": kinds}]
    await client.add_extracted_files(dataset_id, run.run_id, files)
    await client.commit_extraction_run(dataset_id, run.run_id)


async def test_a_kind_matches_names_of_that_kind_only(
    server: ServerThread, client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    w, v, d, s = word(), word(), word(), word()
    async with signed_in(server, alice) as pv:
        titled = await mint_dataset(pv, f"{w} {v} {d} survey")  # the title says them all
        column = await mint_dataset(pv, "plain")
        await attach_kinds(
            pv, column.id, "a.csv", [w, "site", f"sea {s} surface"],
            {"column": [w, f"sea {s} surface"]},
        )  # fmt: skip
        attribute = await mint_dataset(pv, "plain")
        await attach_kinds(
            pv, attribute.id, "b.nc", [w, v, "units"], {"attribute": [w, "units"], "variable": [v]}
        )
        h5 = await mint_dataset(pv, "plain")
        await attach_kinds(pv, h5.id, "c.h5", [d, "raw"], {"dataset": [d]})
        untyped = await mint_dataset(pv, "plain")  # terms without kinds: extracted: only
        await attach_kinds(pv, untyped.id, "d.zip", [w, v, d], {})

    assert await ids(client, alice, w) == {titled.id, column.id, attribute.id, untyped.id}
    assert await ids(client, alice, f"extracted:{w}") == {column.id, attribute.id, untyped.id}
    # a column, not a title, not an attribute, not a term of no kind
    assert await ids(client, alice, f"column:{w}") == {column.id}
    assert await ids(client, alice, f"COLUMN:{w[:8]}*") == {column.id}
    assert await ids(client, alice, f'column:"sea {s}"') == {column.id}
    assert await ids(client, alice, f'column:"{s} sea"') == set()
    assert await ids(client, alice, f"attribute:{w}") == {attribute.id}
    assert await ids(client, alice, f"variable:{v}") == {attribute.id}
    assert await ids(client, alice, f"attribute:{v}") == set()
    assert await ids(client, alice, f"column:{v}") == set()
    assert await ids(client, alice, f"dataset:{d}") == {h5.id}
    assert await ids(client, alice, f"variable:{d}") == set()
    assert await ids(client, alice, "column:site") & {column.id} == set()  # a term, no column
    # mixed with the rest of the language
    assert await ids(client, alice, f"extracted:{w} -column:{w}") == {attribute.id, untyped.id}
    assert await ids(client, alice, f"column:{w} OR dataset:{d}") == {column.id, h5.id}
    assert await ids(client, alice, f"{w} -attribute:{w}") == {titled.id, column.id, untyped.id}
    assert await ids(client, alice, f"attribute:{w} variable:{v}") == {attribute.id}
    assert await ids(client, alice, f"column:{w} {v}") == set()

    # the match is marked in the extracted highlight, not in the title
    [hit] = await search(client, alice, f"column:{w}")
    assert hit["item"]["id"] == column.id
    assert f"<mark>{w}</mark>" in hit["highlights"]["extracted"]
    assert set(hit["highlights"]) == {"extracted"}
    [hit] = await search(client, alice, f"dataset:{d} {d}", subtype="dataset")
    assert hit["item"]["id"] == h5.id

    for bad in ["column:", f"attribute: {w}", f'{w} dataset:"*"', f"{w} -variable:-"]:
        r = await client.get("/items", params={"q": bad}, headers=alice.headers)
        assert r.status_code == 422, (bad, r.text)
        [detail] = r.json()["error"]["details"]
        assert detail["field"] == "query.q"
        assert "needs a word" in detail["message"], detail


async def test_kinds_see_only_datasets_the_caller_may_read(
    server: ServerThread, client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    w = word()
    lab = f"lab-{word()}"
    owner, member, stranger = new_user(), new_user(groups=(lab,)), new_user()
    async with signed_in(server, owner) as pv:
        ds = await mint_dataset(pv, "private")
        await attach_kinds(pv, ds.id, "t.csv", [w], {"column": [w]})
        for q in [f"column:{w}", f"column:{w[:9]}*", f"column:{w} -attribute:{w}"]:
            assert await ids(client, owner, q) == {ds.id}
            assert await ids(client, member, q) == set()
            assert await ids(client, stranger, q) == set()
        settings = await pv.registry_client.get_access(ds.id)
        await pv.registry_client.update_access(
            ds.id, {**settings.model_dump(), "groups": {lab: ["metadata-read"]}}
        )
    assert await ids(client, member, f"column:{w}") == {ds.id}
    assert await ids(client, stranger, f"column:{w}") == set()


async def test_kinds_must_be_terms(
    server: ServerThread, client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    """A kind names some of the file's terms: anything else is a 422, nothing is stored."""
    alice = new_user()
    async with signed_in(server, alice) as pv:
        ds = await mint_dataset(pv, "plain")
        run = await pv.datastore_client.start_extraction_run(ds.id)
    path = f"/datastore/datasets/{ds.id}/extracted-metadata/runs/{run.run_id}/files"
    for kinds in [{"column": ["other"]}, {"shape": ["t"]}, {"column": "t"}]:
        body = {"files": [{"path": "a.csv", "terms": ["t"], "kinds": kinds}]}
        async with httpx.AsyncClient(
            verify=SHARED_TLS, base_url=server.url, headers=alice.headers
        ) as http:
            r = await http.post(path, json=body)
        assert r.status_code == 422, (kinds, r.text)
    assert r.json()["error"]["details"][0]["type"] != "kind_not_a_term"  # a bad shape
    body = {"files": [{"path": "a.csv", "terms": ["t"], "kinds": {"column": ["other"]}}]}
    async with httpx.AsyncClient(
        verify=SHARED_TLS, base_url=server.url, headers=alice.headers
    ) as http:
        r = await http.post(path, json=body)
    [detail] = r.json()["error"]["details"]
    assert detail["type"] == "kind_not_a_term", detail
    assert "'other'" in detail["message"], detail


async def test_attached_extractor_results_are_found_by_kind(
    server: ServerThread,
    client: httpx.AsyncClient,
    new_user: Callable[..., User],
    tmp_path: Path,
) -> None:
    """Through the SDK: the kinds come from the extractors' metadata (a CSV and a JSON)."""
    alice = new_user()
    name = word()
    (tmp_path / "t.csv").write_text(f"site,{name}\nA,1\n")
    (tmp_path / "t.json").write_text(f'{{"meta": {{"{name}": 1}}}}')

    def result(file: str, extractor: str, metadata: dict[str, object]) -> FileResult:
        record = FileRecord(source=f"local:{tmp_path}", path=file)
        return FileResult(
            record=record,
            extractions=[Extraction(extractor=extractor, status="ok", metadata=metadata)],
        )

    table = TabularExtractor().extract(tmp_path / "t.csv")
    keys = JsonExtractor().extract(tmp_path / "t.json")
    async with signed_in(server, alice) as pv:
        with_column = await mint_dataset(pv, "a table")
        await attach_results(
            pv.datastore_client, with_column.id, [result("t.csv", "tabular", table)]
        )
        with_key = await mint_dataset(pv, "a document")
        await attach_results(pv.datastore_client, with_key.id, [result("t.json", "json", keys)])
        [stored] = [f async for f in pv.datastore_client.iter_extracted(with_column.id)]
        assert stored.kinds == {"column": ["site", name]}
        [stored] = [f async for f in pv.datastore_client.iter_extracted(with_key.id)]
        assert stored.kinds == {"attribute": ["meta", name]}

    assert await ids(client, alice, f"extracted:{name}") == {with_column.id, with_key.id}
    assert await ids(client, alice, f"column:{name}") == {with_column.id}
    assert await ids(client, alice, f"attribute:{name}") == {with_key.id}
