"""The seams between the server's services: one rule for the fields of validation errors, and
imports that run one way (the registry never imports search).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from provena_like.server.pagination import encode_cursor
from provena_like.testing.server_thread import ServerThread

PERSON = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}

# The same mistake in the body of a registry item and of a dataset mint, and the field both
# must name: a body field from the body's root (see docs/guides/errors.md).
MISTAKES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("record not an object", {"record": "oops"}, {"record": "oops"}, "record"),
    (
        "display_name a number",
        {"record": PERSON, "display_name": 5},
        {"display_name": 5},
        "display_name",
    ),
    (
        "unknown role",
        {"record": PERSON, "general": ["emperor"]},
        {"general": ["emperor"]},
        "general.0",
    ),
    (
        "unknown role of a group",
        {"record": PERSON, "groups": {"staff": ["emperor"]}},
        {"groups": {"staff": ["emperor"]}},
        "groups.staff.0",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("registry_body", "datastore_body", "field"),
    [m[1:] for m in MISTAKES],
    ids=[m[0] for m in MISTAKES],
)
async def test_the_same_mistake_names_the_same_field_in_registry_and_datastore(
    server: ServerThread,
    make_token: Callable[..., str],
    registry_body: dict[str, Any],
    datastore_body: dict[str, Any],
    field: str,
) -> None:
    headers = {"Authorization": f"Bearer {make_token('seams-user')}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=60, headers=headers) as client:
        registry = await client.post("/registry/items", json={"subtype": "person", **registry_body})
        datastore = await client.post("/datastore/datasets", json={"record": {}, **datastore_body})
    answers = {"registry": registry, "datastore": datastore}
    for service, r in answers.items():
        assert r.status_code == 422, (service, r.text)
        error = r.json()["error"]
        assert error["code"] == "validation_error"
        fields = [d["field"] for d in error["details"]]
        assert field in fields, (service, fields)
        assert not any(f.startswith("body.") for f in fields), (service, fields)


# A cursor of the right length that no listing made: the scope is wrong, or a key of the
# wrong kind (a number where a name goes). Every listing pages through one helper, so every
# one answers 400 bad_cursor naming query.cursor.
FORGED: list[tuple[str, dict[str, Any], list[Any]]] = [
    ("/registry/items", {}, ["name", "asc", None, None, "x", 1]),
    ("/registry/items", {"sort": "name"}, ["name", "asc", None, None, 5, 1]),
    ("/datastore/datasets", {}, ["created", "asc", None, None, None, "x", 1]),
    ("/search/items", {"q": "reef"}, ["0123456789abcdef", 1.0, 1]),
    ("/datastore/reviewers", {}, [5]),
    ("/datastore/reviews/awaiting", {}, ["mine", "2024-01-01T00:00:00+00:00", 1]),
    ("/auth/users", {}, [5]),
    ("/auth/groups", {}, [5]),
    ("/auth/clients", {}, [5]),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("url", "params", "values"), FORGED, ids=[f[0] for f in FORGED])
async def test_every_listing_refuses_a_cursor_it_did_not_make_alike(
    server: ServerThread,
    make_token: Callable[..., str],
    url: str,
    params: dict[str, Any],
    values: list[Any],
) -> None:
    token = make_token("seams-admin", system_roles=("admin",))
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=60, headers=headers) as client:
        r = await client.get(url, params={**params, "cursor": encode_cursor(values)})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "bad_cursor"
    assert [d["field"] for d in error["details"]] == ["query.cursor"], error
