"""Helpers shared by the search tests (importable: not a conftest)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import httpx

from provena_like import ProvenaClient
from provena_like._core.config import ProvenaConfig
from provena_like.testing.server_thread import ServerThread
from tests.support.users import User  # noqa: F401 (re-exported)


def word() -> str:
    """A word no other test uses (one token for every tokenizer)."""
    return "w" + uuid.uuid4().hex[:12]


def organisation(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, **extra}


def person(first: str, last: str = "Lovelace", **extra: Any) -> dict[str, Any]:
    return {"first_name": first, "last_name": last, "email": f"{first}.{last}@example.org", **extra}


async def create(
    registry: httpx.AsyncClient,
    user: User,
    *,
    subtype: str = "organisation",
    record: dict[str, Any],
    **fields: Any,
) -> dict[str, Any]:
    """Create an item as ``user`` and return its JSON (asserting 201)."""
    r = await registry.post(
        "/items", json={"subtype": subtype, "record": record, **fields}, headers=user.headers
    )
    assert r.status_code == 201, r.text
    item: dict[str, Any] = r.json()
    return item


async def search(
    client: httpx.AsyncClient, user: User, q: str, **params: Any
) -> list[dict[str, Any]]:
    """The hits of the first page (asserting 200)."""
    r = await client.get("/items", params={"q": q, **params}, headers=user.headers)
    assert r.status_code == 200, r.text
    hits: list[dict[str, Any]] = r.json()["items"]
    return hits


async def walk(
    client: httpx.AsyncClient, user: User, q: str, **params: Any
) -> tuple[list[dict[str, Any]], list[int]]:
    """Every hit, following next_cursor; returns (hits, size of each page)."""
    hits: list[dict[str, Any]] = []
    sizes: list[int] = []
    cursor: str | None = None
    while True:
        query = {"q": q, **params, **({"cursor": cursor} if cursor else {})}
        r = await client.get("/items", params=query, headers=user.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        sizes.append(len(page["items"]))
        hits += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return hits, sizes


@asynccontextmanager
async def signed_in(server: ServerThread, user: User) -> AsyncIterator[ProvenaClient]:
    """An SDK client of ``server`` signed in as ``user`` (no retries)."""
    config = ProvenaConfig(base_url=server.url, access_token=user.token, max_retries=0)
    async with ProvenaClient(config) as pv:
        yield pv


async def attach(
    pv: ProvenaClient, dataset_id: str, files: dict[str, tuple[int | None, Sequence[str]]]
) -> None:
    """Commit an extraction run of ``files`` (path → size, search terms) to the dataset."""
    client = pv.datastore_client
    run = await client.start_extraction_run(dataset_id)
    batch = [{"path": p, "size": size, "terms": list(t)} for p, (size, t) in files.items()]
    await client.add_extracted_files(dataset_id, run.run_id, batch)
    await client.commit_extraction_run(dataset_id, run.run_id)
