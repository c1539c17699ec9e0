"""Reviewers, review queues, "evaluate my access", a user's groups, and the 401 audit."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from provena_like.testing.server_thread import ServerThread
from tests.support.review_helpers import (
    Refs,
    User,
    error,
    item,
    mint,
    outcome,
    record,
    request_release,
    step,
)

pytestmark = pytest.mark.anyio


async def walk(api: httpx.AsyncClient, user: User, url: str, page_size: int) -> list[Any]:
    out: list[Any] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"page_size": page_size}
        if cursor:
            params["cursor"] = cursor
        r = await api.get(url, params=params, headers=user.headers)
        assert r.status_code == 200, r.text
        out += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return out


async def test_admins_manage_reviewers_and_everyone_lists_them(
    api: httpx.AsyncClient, owner: User, refs: Refs, new_user: Callable[..., User]
) -> None:
    admin = new_user("sysadmin", system_roles=("admin",))
    rob = new_user("rob")
    r = await api.post("/datastore/reviewers", json={"username": rob.name}, headers=owner.headers)
    assert outcome(r) == (403, "forbidden") and "'admin'" in error(r)["message"]
    r = await api.post("/datastore/reviewers", json={"username": rob.name}, headers=admin.headers)
    assert r.status_code == 201 and r.json()["username"] == rob.name
    r = await api.post("/datastore/reviewers", json={"username": rob.name}, headers=admin.headers)
    assert r.status_code == 200  # already one: nothing changes
    r = await api.post(
        "/datastore/reviewers", json={"username": "ghost-" + rob.name}, headers=admin.headers
    )
    assert outcome(r) == (404, "not_found")
    assert (await api.post("/datastore/reviewers", json={"username": rob.name})).status_code == 401

    names = [x["username"] for x in await walk(api, owner, "/datastore/reviewers", 1)]
    assert rob.name in names and owner.name not in names and names == sorted(names)
    r = await api.get(f"/auth/users/{rob.name}", headers=admin.headers)
    assert "reviewer" in r.json()["system_roles"]  # one source of truth: the system role

    # busy: a reviewer with a pending review keeps the role until it is decided
    dsid = (await mint(api, owner, record(refs)))["id"]
    await request_release(api, owner, dsid, rob)
    r = await api.delete(f"/datastore/reviewers/{rob.name}", headers=admin.headers)
    assert outcome(r) == (409, "reviewer_busy") and error(r)["details"] == {"datasets": [dsid]}
    assert (await step(api, rob, dsid, "reject", notes="not yet")).status_code == 200
    r = await api.delete(f"/datastore/reviewers/{rob.name}", headers=owner.headers)
    assert outcome(r) == (403, "forbidden")
    r = await api.delete(f"/datastore/reviewers/{rob.name}", headers=admin.headers)
    assert r.status_code == 204
    r = await api.delete(f"/datastore/reviewers/{rob.name}", headers=admin.headers)
    assert outcome(r) == (404, "not_found")
    names = [x["username"] for x in await walk(api, owner, "/datastore/reviewers", 100)]
    assert rob.name not in names
    r = await step(api, owner, dsid, "request", reviewer=rob.name, notes="n")
    assert r.status_code == 422 and error(r)["details"][0]["type"] == "not_a_reviewer"


async def test_a_reviewer_who_lost_the_role_cannot_decide_and_the_request_can_be_withdrawn(
    api: httpx.AsyncClient, owner: User, reviewer: User, refs: Refs, new_user: Callable[..., User]
) -> None:
    admin = new_user("sysadmin", system_roles=("admin",))
    dsid = (await mint(api, owner, record(refs)))["id"]
    await request_release(api, owner, dsid, reviewer)
    r = await api.patch(
        f"/auth/users/{reviewer.name}", json={"system_roles": []}, headers=admin.headers
    )
    assert r.status_code == 200
    r = await step(api, reviewer, dsid, "approve", notes="ok")
    assert outcome(r) == (403, "not_your_review") and "no longer" in error(r)["message"]
    r = await step(api, owner, dsid, "withdraw", notes="they left")
    assert r.status_code == 200 and r.json()["release_status"] == "NOT_RELEASED"


async def test_review_queues(
    api: httpx.AsyncClient, refs: Refs, owner: User, reviewer: User, new_user: Callable[..., User]
) -> None:
    second_owner = new_user("owner2")
    other_reviewer = new_user("other-reviewer", system_roles=("reviewer",))
    mine = [(await mint(api, owner, record(refs, name=f"Mine {i}")))["id"] for i in range(3)]
    theirs = (await mint(api, second_owner, record(refs, name="Theirs")))["id"]
    elsewhere = (await mint(api, second_owner, record(refs, name="Elsewhere")))["id"]
    for dsid in mine:
        await request_release(api, owner, dsid, reviewer)
    await request_release(api, second_owner, theirs, reviewer)
    await request_release(api, second_owner, elsewhere, other_reviewer)

    awaiting = await walk(api, reviewer, "/datastore/reviews/awaiting", 2)
    assert [d["id"] for d in awaiting] == [*mine, theirs]  # oldest request first
    assert {d["release_reviewer"] for d in awaiting} == {reviewer.name}
    assert [d["id"] for d in await walk(api, other_reviewer, "/datastore/reviews/awaiting", 5)] == [
        elsewhere
    ]
    assert [d["id"] for d in await walk(api, owner, "/datastore/reviews/mine", 1)] == mine
    assert [d["id"] for d in await walk(api, second_owner, "/datastore/reviews/mine", 10)] == [
        theirs,
        elsewhere,
    ]
    assert await walk(api, owner, "/datastore/reviews/awaiting", 10) == []

    await step(api, reviewer, mine[0], "approve", notes="ok")
    await step(api, reviewer, mine[1], "reject", notes="fix it")
    awaiting = await walk(api, reviewer, "/datastore/reviews/awaiting", 10)
    assert [d["id"] for d in awaiting] == [mine[2], theirs]
    assert [d["id"] for d in await walk(api, owner, "/datastore/reviews/mine", 10)] == [mine[2]]
    r = await api.get(
        "/datastore/reviews/awaiting", params={"cursor": "bogus"}, headers=reviewer.headers
    )
    assert outcome(r) == (400, "bad_cursor")
    assert (await api.get("/datastore/reviews/mine")).status_code == 401


async def test_my_access_says_what_and_why(
    api: httpx.AsyncClient, owner: User, reviewer: User, refs: Refs, new_user: Callable[..., User]
) -> None:
    lab = f"lab-{uuid.uuid4().hex[:8]}"
    member = new_user("member", groups=(lab,))
    stranger = new_user("stranger")
    admin = new_user("sysadmin", system_roles=("admin",))
    dataset = await mint(
        api, owner, record(refs), general=["metadata-read"], groups={lab: ["data-read"]}
    )
    dsid = dataset["id"]
    await request_release(api, owner, dsid, reviewer)

    async def mine(user: User) -> dict[str, Any]:
        r = await api.get(item(dsid, "/my-access"), headers=user.headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        assert body["item_id"] == dsid and body["username"] == user.name
        return body

    assert (await mine(owner))["roles"][-1] == "admin"
    assert (await mine(owner))["sources"] == ["owner", "general"] and (await mine(owner))["owner"]
    got = await mine(member)
    assert got["roles"] == ["metadata-read", "metadata-write", "data-read"]
    assert got["sources"] == ["general", f"group:{lab}"] and got["groups"] == [lab]
    got = await mine(reviewer)
    assert got["roles"] == ["metadata-read", "data-read"]
    assert got["sources"] == ["general", "reviewer"] and got["system_roles"] == ["reviewer"]
    assert (await mine(stranger))["roles"] == ["metadata-read"]
    got = await mine(admin)
    assert got["sources"][0] == "system-admin" and got["system_roles"] == ["admin"]

    private = (await mint(api, owner, record(refs)))["id"]
    r = await api.get(item(private, "/my-access"), headers=stranger.headers)
    assert r.status_code == 200 and r.json()["roles"] == [] and r.json()["sources"] == []
    assert (await api.get(item(private, "/my-access"))).status_code == 401
    r = await api.get(item("10378.1/999999999", "/my-access"), headers=stranger.headers)
    assert outcome(r) == (404, "not_found")
    r = await api.post(item(private, "/lock"), json={"reason": "r"}, headers=owner.headers)
    r = await api.get(item(private, "/my-access"), headers=owner.headers)
    assert r.json()["locked"] is True


async def test_a_users_groups(api: httpx.AsyncClient, new_user: Callable[..., User]) -> None:
    a, b = f"ga-{uuid.uuid4().hex[:6]}", f"gb-{uuid.uuid4().hex[:6]}"
    alice = new_user("alice", groups=(b, a))
    bob = new_user("bob", groups=(a,))
    admin = new_user("sysadmin", system_roles=("admin",))
    r = await api.get(f"/auth/users/{alice.name}/groups", headers=alice.headers)
    assert r.status_code == 200
    assert [g["name"] for g in r.json()] == sorted([a, b])
    assert sorted(r.json()[[g["name"] for g in r.json()].index(a)]["members"]) == sorted(
        [alice.name, bob.name]
    )
    r = await api.get(f"/auth/users/{alice.name}/groups", headers=bob.headers)
    assert outcome(r) == (403, "forbidden")
    r = await api.get(f"/auth/users/{bob.name}/groups", headers=admin.headers)
    assert [g["name"] for g in r.json()] == [a]
    r = await api.get("/auth/users/nobody-at-all-here/groups", headers=admin.headers)
    assert outcome(r) == (404, "not_found")
    assert (await api.get(f"/auth/users/{bob.name}/groups")).status_code == 401


_PUBLIC = {"/healthz"}
_VALUES = {"prefix": "10378.1", "suffix": "1", "id_prefix": "10378.1", "id_suffix": "1"}


def _concrete(path: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1).split(":")[0]
        return _VALUES.get(name, "x")

    return re.sub(r"\{([^}]+)\}", value, path)


async def test_every_registry_datastore_and_search_route_needs_a_token(
    api: httpx.AsyncClient, server: ServerThread
) -> None:
    """The audit: no route of these services answers anything but 401 without a token."""
    checked = 0
    for path, operations in server.app.openapi()["paths"].items():
        if not path.startswith(("/registry", "/datastore", "/search")):
            continue
        for method in operations:
            r = await api.request(method.upper(), _concrete(path), json={})
            assert outcome(r) == (401, "unauthenticated"), (method, path, r.text)
            checked += 1
    assert checked >= 38  # every operation of the three services (and any added later)
