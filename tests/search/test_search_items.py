"""Searching registry items over HTTP: ranking, highlights, filters, pagination, bad input."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.support.search_helpers import User, create, organisation, person, search, walk, word

pytestmark = pytest.mark.anyio


async def test_unauthenticated_gets_401(client: httpx.AsyncClient) -> None:
    for method, url, params in [("GET", "/items", {"q": "ocean"}), ("POST", "/reindex", None)]:
        r = await client.request(method, url, params=params)
        assert r.status_code == 401, (method, url)
        assert r.json()["error"]["code"] == "unauthenticated"
        assert r.headers["www-authenticate"].startswith("Bearer")
    r = await client.get("/items", params={"q": "x"}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    r = await client.get("/items")  # no q, no token: still 401 first
    assert r.status_code == 401


async def test_blank_or_missing_query_is_422_naming_q(
    client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    for params in [{}, {"q": ""}, {"q": "   "}, {"q": "\t\n"}, {"q": "x" * 501}]:
        r = await client.get("/items", params=params, headers=alice.headers)
        assert r.status_code == 422, (params, r.text)
        error = r.json()["error"]
        assert error["code"] == "validation_error"
        assert "q" in error["message"]
        assert any(d["field"] == "query.q" for d in error["details"]), error


async def test_title_match_ranks_above_record_mention_and_highlights(
    client: httpx.AsyncClient, registry: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    w = word()
    mention = await create(
        registry,
        alice,
        record=organisation("Harbour Trust", website=f"https://example.org/{w}/about"),
    )
    title = await create(registry, alice, record=organisation(f"{w} Marine Institute"))
    hits = await search(client, alice, w)
    assert [h["item"]["id"] for h in hits] == [title["id"], mention["id"]]
    assert hits[0]["score"] > hits[1]["score"] > 0
    assert hits[0]["highlights"]["display_name"] == f"<mark>{w}</mark> Marine Institute"
    assert f"<mark>{w}</mark>" in hits[1]["highlights"]["record"]
    assert "display_name" not in hits[1]["highlights"]
    assert hits[0]["item"]["roles"][-1] == "admin"  # the caller's roles on the item
    assert hits[0]["item"]["record"]["name"] == f"{w} Marine Institute"


async def test_highlights_are_html_escaped(
    client: httpx.AsyncClient, registry: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    w = word()
    await create(registry, alice, record=organisation(f"<script>{w}</script> & Sons"))
    [hit] = await search(client, alice, w)
    assert hit["highlights"]["display_name"] == (
        f"&lt;script&gt;<mark>{w}</mark>&lt;/script&gt; &amp; Sons"
    )


async def test_accents_case_prefix_phrase_or_and_exclusion(
    client: httpx.AsyncClient, registry: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    w = word()
    cafe = await create(registry, alice, record=organisation(f"Café Océan {w}"))
    sea = await create(registry, alice, record=organisation(f"Southern Sea Ice Lab {w}"))

    async def ids(q: str) -> set[str]:
        return {h["item"]["id"] for h in await search(client, alice, q, owner=alice.name)}

    assert await ids(f"cafe OCEAN {w}") == {cafe["id"]}
    assert await ids(f"{w[:7]}*") == {cafe["id"], sea["id"]}
    assert await ids(f'"sea ice" {w}') == {sea["id"]}
    assert await ids(f'"ice sea" {w}') == set()
    assert await ids(f"café OR southern AND {w}") == {cafe["id"], sea["id"]}
    assert await ids(f"{w} -ocean") == {sea["id"]}
    assert await ids(f"{w} NOT ocean") == {sea["id"]}
    [hit] = await search(client, alice, f"{w} cafe")
    assert hit["highlights"]["display_name"] == f"<mark>Café</mark> Océan <mark>{w}</mark>"


async def test_subtype_owner_created_and_field_filters(
    client: httpx.AsyncClient, registry: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice, bob = new_user(), new_user()
    w = word()
    org = await create(
        registry, alice, record=organisation(f"{w} Institute"), general=["metadata-read"]
    )
    ada = await create(registry, alice, subtype="person", record=person("Ada", w))
    bobs = await create(
        registry, bob, subtype="person", record=person("Grace", w), general=["metadata-read"]
    )

    async def ids(**params: object) -> list[str]:
        return sorted(h["item"]["id"] for h in await search(client, alice, w, **params))

    assert await ids() == sorted([org["id"], ada["id"], bobs["id"]])
    assert await ids(subtype="person") == sorted([ada["id"], bobs["id"]])
    assert await ids(subtype=["person", "organisation"]) == await ids()
    assert await ids(owner=bob.name) == [bobs["id"]]
    assert await ids(owner=alice.name, subtype="person") == [ada["id"]]
    created = datetime.fromisoformat(ada["created_at"])
    after = await ids(created_after=created.isoformat())
    assert ada["id"] in after and org["id"] not in after
    before = await ids(created_before=created.isoformat())
    assert before == [org["id"]]
    future = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None).isoformat()
    assert await ids(created_after=future) == []  # naive = UTC
    assert await ids(field="record.first_name:Grace") == [bobs["id"]]
    assert await ids(field=f"record.email:Ada.{w}@example.org") == [ada["id"]]
    assert await ids(field="record.first_name:grace") == []  # exact, case-sensitive
    assert await ids(field=["record.first_name:Ada", f"record.last_name:{w}"]) == [ada["id"]]
    assert await ids(field="record.no.such.path:x") == []
    # the subtype and owner are text too
    assert await ids(owner=alice.name) == sorted([org["id"], ada["id"]])
    hits = await search(client, alice, f"{w} {bob.name}")
    assert [h["item"]["id"] for h in hits] == [bobs["id"]]
    assert hits[0]["highlights"]["owner"] == f"<mark>{bob.name}</mark>"

    for bad in [
        {"subtype": "planet"},
        {"field": "first_name:Ada"},
        {"field": "record.a b:x"},
        {"field": "record.x:"},
        {"created_after": "yesterday"},
        {"created_after": "12981"},  # not read as a Unix timestamp: the schema says ISO 8601
        {"created_before": "-1.5"},
        {"page_size": 0},
        {"page_size": 101},
    ]:
        r = await client.get("/items", params={"q": w, **bad}, headers=alice.headers)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["code"] == "validation_error"


async def test_pagination_yields_each_hit_once_for_any_page_size(
    client: httpx.AsyncClient, registry: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    w = word()
    ids = [  # equal documents: ties, ordered by handle number
        (await create(registry, alice, record=organisation(f"{w} Twin")))["id"] for _ in range(4)
    ]
    for i in range(4):
        name = f"Lab {i} {w} " + " ".join(["filler"] * (i * 3))
        ids.append((await create(registry, alice, record=organisation(name)))["id"])
    for i in range(4):
        site = f"https://example.org/{w}/{i}"
        rec = organisation(f"Unit {i}", website=site)
        ids.append((await create(registry, alice, record=rec))["id"])

    reference, sizes = await walk(client, alice, w, page_size=50)
    assert sizes == [12]
    order = [h["item"]["id"] for h in reference]
    assert sorted(order) == sorted(ids)
    scores = [h["score"] for h in reference]
    assert scores == sorted(scores, reverse=True)
    for a, b in zip(reference, reference[1:], strict=False):  # ties by handle number
        if a["score"] == b["score"]:
            assert int(a["item"]["id"].split("/")[1]) < int(b["item"]["id"].split("/")[1])
    for page_size, expected in [(1, [1] * 12), (3, [3] * 4), (5, [5, 5, 2])]:
        hits, sizes = await walk(client, alice, w, page_size=page_size)
        assert [h["item"]["id"] for h in hits] == order, page_size
        assert sizes == expected

    # a cursor fits only the search that made it
    r = await client.get("/items", params={"q": w, "page_size": 2}, headers=alice.headers)
    cursor = r.json()["next_cursor"]
    for other in [{"q": w + " twin"}, {"q": w, "owner": alice.name}]:
        r = await client.get(
            "/items", params={**other, "page_size": 2, "cursor": cursor}, headers=alice.headers
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "bad_cursor"
    r = await client.get("/items", params={"q": w, "cursor": "garbage!"}, headers=alice.headers)
    assert r.status_code == 400


NASTY = [
    '"',
    "*",
    "AND",
    "OR",
    "NOT",
    "-",
    ":",
    "^",
    "(",
    ")",
    "()",
    "{}",
    "+",
    "~",
    "\\",
    "'",
    "''",
    '""',
    '"""',
    'a"b',
    'a" OR "b',
    "x:y",
    "display_name:x",
    "{owner}:x",
    "NEAR(a b)",
    "a NEAR b",
    "a AND",
    "OR a",
    "a OR",
    "- -",
    "-*",
    "***a",
    "a***",
    "*a",
    "a*b",
    "-a b",
    "x -",
    "NOT NOT a",
    "'; DROP TABLE registry_items; --",
    "%",
    "_",
    "a%b_c",
    "\x00",
    "\x01",
    "🙂 emoji",
    "日本語",
    "ÀÉÎ",
    "a&b|c!d",
    "a <-> b",
    "a:* b",
    "<mark>",
    "&amp;",
    "0",
    "1.5e10",
    "!!",
    "@@",
    "\ue000x\ue001",
]


@pytest.mark.parametrize("q", NASTY)
async def test_special_characters_never_fail(
    q: str, client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    r = await client.get("/items", params={"q": q}, headers=alice.headers)
    assert r.status_code in (200, 422), (q, r.status_code, r.text)
    if r.status_code == 422:
        assert any(d["field"] == "query.q" for d in r.json()["error"]["details"])


async def test_punctuation_is_searchable_text(
    client: httpx.AsyncClient, registry: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    w = word()
    item = await create(registry, alice, record=organisation(f'C++ "{w}" Group: AND/OR (x)'))
    for q in [f'"{w}"', f"{w}:", f"({w})", f'C++ "{w}', f"{w} AND/OR", f"{w}*"]:
        hits = await search(client, alice, q)
        assert [h["item"]["id"] for h in hits] == [item["id"]], q
    assert len(await search(client, alice, f"a{w}")) == 0
    many = " ".join(f"t{i}" for i in range(17))
    r = await client.get("/items", params={"q": many}, headers=alice.headers)
    assert r.status_code == 422
