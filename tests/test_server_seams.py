"""The seams between the server's services: one rule for the fields of validation errors, and
imports that run one way (the registry never imports search).
"""

from __future__ import annotations

import ast
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

import provena_like.server
from provena_like.models.registry import AccessUpdate, ItemCreate, ItemUpdate
from provena_like.server.pagination import encode_cursor
from provena_like.server.registry import service as registry
from provena_like.server.registry.events import ItemHooks, ItemWritten, session_info
from provena_like.server.search import index as search_index
from provena_like.server.security import Principal
from provena_like.testing.server_thread import ServerThread
from tests.support.tls import SHARED_TLS

SERVER = Path(provena_like.server.__file__).parent

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
    async with httpx.AsyncClient(
        verify=SHARED_TLS, base_url=server.url, timeout=60, headers=headers
    ) as client:
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
    async with httpx.AsyncClient(
        verify=SHARED_TLS, base_url=server.url, timeout=60, headers=headers
    ) as client:
        r = await client.get(url, params={**params, "cursor": encode_cursor(values)})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["code"] == "bad_cursor"
    assert [d["field"] for d in error["details"]] == ["query.cursor"], error


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (``from x import y`` counts as ``x`` and ``x.y``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_the_registry_never_imports_search() -> None:
    """Search follows the registry through its post-write hooks; the registry knows nothing of
    search, so imports between the two run one way."""
    registry_files = sorted((SERVER / "registry").rglob("*.py"))
    assert registry_files
    offenders = {
        f"{path.relative_to(SERVER)}: {name}"
        for path in registry_files
        for name in _imports(path)
        if name == "provena_like.server.search" or name.startswith("provena_like.server.search.")
    }
    assert not offenders, sorted(offenders)


def test_every_item_write_fires_one_typed_event_in_its_transaction(
    server: ServerThread, make_token: Callable[..., str]
) -> None:
    """Create, update, access change and lock each fire one event, inside the transaction:
    the index (subscribed as the app does it) follows committed writes, not rolled-back ones."""
    owner = f"hooks-{uuid.uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {make_token(owner)}"}
    principal = Principal(username=owner)
    word = f"zq{uuid.uuid4().hex[:10]}"
    seen: list[tuple[str, str, int]] = []

    async def record(_session: AsyncSession, event: ItemWritten) -> None:
        seen.append((event.change, event.item.id, event.item.revision))

    hooks = ItemHooks()
    search_index.subscribe(hooks)
    hooks.subscribe(record)
    hooks.subscribe(record)  # once is enough
    sessions = server.app.state.sessions

    async def found() -> list[str]:
        async with httpx.AsyncClient(
            verify=SHARED_TLS, base_url=server.url, timeout=60, headers=headers
        ) as c:
            r = await c.get("/search/items", params={"q": word})
        assert r.status_code == 200, r.text
        return [hit["item"]["id"] for hit in r.json()["items"]]

    async def work() -> tuple[str, list[str], list[str]]:
        body = ItemCreate(subtype="person", record={**PERSON, "first_name": word})
        with pytest.raises(RuntimeError):
            async with sessions(info=session_info(hooks)) as session, session.begin():
                await registry.create_item(session, principal, body, prefix="10378.1")
                raise RuntimeError("roll back")
        after_rollback = await found()
        async with sessions(info=session_info(hooks)) as session, session.begin():
            item_id = (await registry.create_item(session, principal, body, prefix="10378.1")).id
            update = ItemUpdate(record={**PERSON, "first_name": word}, reason="again")
            await registry.update_item(session, principal, item_id, update, expected=None)
            access = AccessUpdate(owner=owner, general=["metadata-read"])
            await registry.set_access(session, principal, item_id, access, expected=None)
            await registry.set_lock(session, principal, item_id, "done", lock=True)
        return item_id, after_rollback, await found()

    item_id, after_rollback, after_commit = server.call(work, timeout=120)
    assert after_rollback == []
    assert after_commit == [item_id]
    assert seen[0][0] == "created"  # the rolled-back create
    changes = [(change, revision) for change, _, revision in seen[1:]]
    assert changes == [("created", 1), ("updated", 2), ("access_changed", 3), ("updated", 4)]
    assert {i for _, i, _ in seen[1:]} == {item_id}
