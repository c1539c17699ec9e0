"""Who may do what with registry items: owners, general roles, groups, system admins."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.support.registry_helpers import User, create, path, person

pytestmark = pytest.mark.anyio

READ = ["metadata-read"]
ALL_ROLES = ["metadata-read", "metadata-write", "data-read", "data-write", "admin"]


def group_name() -> str:
    return f"lab-{uuid.uuid4().hex[:8]}"


async def test_unauthenticated_gets_401(
    client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    item = await create(client, new_user(), general=READ)
    for method, url in [
        ("GET", path(item["id"])),
        ("GET", "/items"),
        ("POST", "/items"),
        ("GET", path(item["id"], "/history")),
    ]:
        r = await client.request(method, url)
        assert r.status_code == 401, (method, url)
        assert r.json()["error"]["code"] == "unauthenticated"
        assert r.headers["www-authenticate"].startswith("Bearer")
    r = await client.get(path(item["id"]), headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401


async def test_user_without_access_gets_403(
    client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice, mallory = new_user(), new_user()
    item = await create(client, alice)
    url = path(item["id"])
    for method, tail, body in [
        ("GET", "", None),
        ("GET", "/history", None),
        ("GET", "/access", None),
        ("GET", "/lock-history", None),
        ("PUT", "", {"record": person(), "reason": "x"}),
        ("POST", "/lock", {"reason": "x"}),
    ]:
        r = await client.request(method, url + tail, json=body, headers=mallory.headers)
        assert r.status_code == 403, (method, tail, r.text)
        error = r.json()["error"]
        assert error["code"] == "forbidden"
        assert item["id"] in error["message"]
    r = await client.get("/items", params={"owner": alice.name}, headers=mallory.headers)
    assert r.json()["items"] == []


async def test_general_read(client: httpx.AsyncClient, new_user: Callable[..., User]) -> None:
    alice, bob = new_user(), new_user()
    item = await create(client, alice, general=READ)
    url = path(item["id"])
    r = await client.get(url, headers=bob.headers)
    assert r.status_code == 200
    assert r.json()["roles"] == READ
    r = await client.get(url + "/access", headers=bob.headers)
    assert r.json() == {"owner": alice.name, "general": READ, "groups": {}}
    r = await client.put(url, json={"record": person(), "reason": "x"}, headers=bob.headers)
    assert r.status_code == 403
    message = r.json()["error"]["message"]
    assert "metadata-write" in message and item["id"] in message
    listing = await client.get("/items", params={"owner": alice.name}, headers=bob.headers)
    assert [i["id"] for i in listing.json()["items"]] == [item["id"]]
    assert listing.json()["items"][0]["roles"] == READ


async def test_group_roles(client: httpx.AsyncClient, new_user: Callable[..., User]) -> None:
    lab = group_name()
    alice = new_user(groups=(lab,))
    carol = new_user(groups=(lab,))
    outsider = new_user()
    item = await create(client, alice, groups={lab: ["data-read"]}, general=READ)
    url = path(item["id"])

    r = await client.get(url, headers=carol.headers)
    assert r.status_code == 200
    assert r.json()["roles"] == ["metadata-read", "metadata-write", "data-read"]
    assert (await client.get(url, headers=outsider.headers)).json()["roles"] == READ

    # data-read implies metadata-write: carol may edit, not lock or change access
    r = await client.put(
        url, json={"record": person(), "reason": "lab edit"}, headers=carol.headers
    )
    assert r.status_code == 200, r.text
    history = (await client.get(url + "/history", headers=carol.headers)).json()["items"]
    assert history[0]["user"] == carol.name
    r = await client.post(url + "/lock", json={"reason": "x"}, headers=carol.headers)
    assert r.status_code == 403 and "'admin'" in r.json()["error"]["message"]
    r = await client.put(url + "/access", json={"owner": alice.name}, headers=carol.headers)
    assert r.status_code == 403

    # the lab's items are listed for a member, not for an outsider
    private = await create(client, alice, groups={lab: ["metadata-read"]})
    listing = await client.get("/items", params={"owner": alice.name}, headers=carol.headers)
    assert {i["id"] for i in listing.json()["items"]} == {item["id"], private["id"]}
    listing = await client.get("/items", params={"owner": alice.name}, headers=outsider.headers)
    assert [i["id"] for i in listing.json()["items"]] == [item["id"]]


async def test_system_admin_sees_and_does_everything(
    client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    root = new_user("root", system_roles=("admin",))
    item = await create(client, alice)
    r = await client.get(path(item["id"]), headers=root.headers)
    assert r.status_code == 200 and r.json()["roles"] == ALL_ROLES
    listing = await client.get("/items", params={"owner": alice.name}, headers=root.headers)
    assert [i["id"] for i in listing.json()["items"]] == [item["id"]]
    r = await client.post(path(item["id"], "/lock"), json={"reason": "audit"}, headers=root.headers)
    assert r.status_code == 200
    r = await client.put(
        path(item["id"], "/access"), json={"owner": root.name}, headers=root.headers
    )
    assert r.status_code == 200 and r.json()["owner"] == root.name


async def test_access_settings(client: httpx.AsyncClient, new_user: Callable[..., User]) -> None:
    lab, admins = group_name(), group_name()
    alice = new_user(groups=(lab, admins))
    bob = new_user(groups=(lab,))
    dave = new_user(groups=(admins,))
    item = await create(client, alice)
    url = path(item["id"])

    settings = {
        "owner": alice.name,
        "general": [],
        "groups": {lab: ["metadata-read", "metadata-read"], admins: ["admin"]},
    }
    r = await client.put(
        url + "/access", json={**settings, "reason": "share with the lab"}, headers=alice.headers
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "owner": alice.name,
        "general": [],
        "groups": {lab: ["metadata-read"], admins: ["admin"]},
    }
    assert r.headers["etag"] == '"2"'
    assert (await client.get(url, headers=bob.headers)).json()["roles"] == READ
    history = (await client.get(url + "/history", headers=alice.headers)).json()["items"]
    assert history[0]["reason"].startswith("access changed")
    assert history[0]["reason"].endswith("share with the lab")

    # dave holds admin through a group: may lock and share, may not give the item away
    r = await client.post(url + "/lock", json={"reason": "freeze"}, headers=dave.headers)
    assert r.status_code == 200
    r = await client.put(
        url + "/access", json={**settings, "owner": dave.name}, headers=dave.headers
    )
    assert r.status_code == 403
    assert "owner" in r.json()["error"]["message"]
    r = await client.put(url + "/access", json={**settings, "general": READ}, headers=dave.headers)
    assert r.status_code == 200  # allowed while locked

    # stale If-Match, unknown group, unknown owner
    r = await client.put(
        url + "/access", json=settings, headers={**alice.headers, "If-Match": '"1"'}
    )
    assert r.status_code == 412
    r = await client.put(
        url + "/access", json={**settings, "groups": {"no-such-group": READ}}, headers=alice.headers
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "groups.no-such-group"
    r = await client.put(
        url + "/access", json={**settings, "owner": "nobody-xyz"}, headers=alice.headers
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "owner"

    # the owner hands the item to bob and keeps only what the settings grant
    r = await client.put(
        url + "/access", json={**settings, "owner": bob.name}, headers=alice.headers
    )
    assert r.status_code == 200
    r = await client.get(url, headers=alice.headers)
    assert r.json()["roles"] == ALL_ROLES  # alice is in the admins group
    assert r.json()["owner"] == bob.name
    r = await client.put(
        url + "/access", json={"owner": bob.name, "groups": {}}, headers=bob.headers
    )
    assert r.status_code == 200
    r = await client.get(url, headers=alice.headers)
    assert r.status_code == 403


async def test_create_with_unknown_group(
    client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    alice = new_user()
    r = await client.post(
        "/items",
        json={"subtype": "person", "record": person(), "groups": {"ghosts": READ}},
        headers=alice.headers,
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "groups.ghosts"
    r = await client.post(
        "/items",
        json={"subtype": "person", "record": person(), "general": ["superuser"]},
        headers=alice.headers,
    )
    assert r.status_code == 422


def test_access_module_imports_first() -> None:
    """``server.access`` and the registry import each other's modules; either may come first."""
    code = "import provena_like.server.access, provena_like.server.app"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
