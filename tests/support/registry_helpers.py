"""Helpers shared by the registry tests (importable: not a conftest)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.users import User  # noqa: F401 (re-exported)


def person(first: str = "Ada", last: str = "Lovelace", **extra: Any) -> dict[str, Any]:
    return {"first_name": first, "last_name": last, "email": f"{first}.{last}@example.org", **extra}


async def create(
    client: httpx.AsyncClient,
    user: User,
    *,
    subtype: str = "person",
    record: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """Create an item as ``user`` and return its JSON (asserting 201)."""
    body = {"subtype": subtype, "record": record if record is not None else person(), **fields}
    r = await client.post("/items", json=body, headers={**user.headers, **(headers or {})})
    assert r.status_code == 201, r.text
    item: dict[str, Any] = r.json()
    return item


def path(item_id: str, tail: str = "") -> str:
    return f"/items/{item_id}{tail}"
