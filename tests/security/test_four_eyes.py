"""The four-eyes rule of release: nobody with ``admin`` on a dataset approves its release.

Not the requester, not the owner when a co-admin asked, not a system admin, and not a
reviewer who gains ``admin`` while the request waits; a reviewer without ``admin`` may.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from provena_like.testing.server_thread import ServerThread
from tests.support.tls import SHARED_TLS
from tests.support.users import User

pytestmark = pytest.mark.anyio

APPROVALS = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")


@pytest.fixture
async def api(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=SHARED_TLS, base_url=server.url, timeout=60) as client:
        yield client


async def _create(api: httpx.AsyncClient, user: User, body: dict[str, Any]) -> str:
    r = await api.post("/registry/items", json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    item_id: str = r.json()["id"]
    return item_id


async def mint(api: httpx.AsyncClient, owner: User, **access: Any) -> str:
    """A dataset owned by ``owner`` with the access settings ``access``; its id."""
    general = {"general": ["metadata-read"]}
    org = await _create(
        api, owner, {"subtype": "organisation", "record": {"name": "Reef Institute"}, **general}
    )
    person = {"first_name": "Ada", "last_name": "Reef", "email": "ada@example.org"}
    person_id = await _create(api, owner, {"subtype": "person", "record": person, **general})
    record = {
        "associations": {"organisation_id": org, "point_of_contact": person_id},
        "approvals": {a: {"relevant": False, "obtained": False} for a in APPROVALS},
        "dataset_info": {
            "name": "Four eyes",
            "description": "Checked by someone else.",
            "access_info": {"reposited": True},
            "publisher_id": org,
            "created_date": "2024-01-01",
            "published_date": "2024-06-30",
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "keywords": ["review"],
        },
    }
    r = await api.post(
        "/datastore/datasets", json={"record": record, **access}, headers=owner.headers
    )
    assert r.status_code == 201, r.text
    dataset_id: str = r.json()["dataset"]["id"]
    return dataset_id


async def step(
    api: httpx.AsyncClient, user: User, dataset_id: str, action: str, **body: Any
) -> httpx.Response:
    path = f"/datastore/datasets/{dataset_id}/release/{action}"
    return await api.post(path, json={"notes": "n", **body}, headers=user.headers)


def reviewer_problem(r: httpx.Response) -> str:
    assert r.status_code == 422, r.text
    (detail,) = r.json()["error"]["details"]
    assert detail["field"] == "reviewer"
    kind: str = detail["type"]
    return kind


def code(r: httpx.Response) -> tuple[int, str | None]:
    return r.status_code, None if r.is_success else r.json()["error"]["code"]


async def test_the_owner_cannot_review_a_release_a_co_admin_asked_for(
    api: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    lab = f"lab-{uuid.uuid4().hex[:8]}"
    owner = new_user("owner", system_roles=("reviewer",))
    co_admin = new_user("co-admin", groups=(lab,))
    independent = new_user("independent", system_roles=("reviewer",))
    dataset_id = await mint(api, owner, groups={lab: ["admin"]})

    r = await step(api, co_admin, dataset_id, "request", reviewer=owner.name)
    assert reviewer_problem(r) == "dataset_admin"
    assert "four-eyes" in r.json()["error"]["message"]
    r = await step(api, owner, dataset_id, "approve")  # nothing pending: still not theirs
    assert code(r) == (409, "not_under_review")

    # a reviewer with no admin role on the dataset may approve what the co-admin asked for
    r = await step(api, co_admin, dataset_id, "request", reviewer=independent.name)
    assert r.status_code == 200, r.text
    r = await step(api, owner, dataset_id, "approve")
    assert code(r) == (403, "not_your_review")
    r = await step(api, independent, dataset_id, "approve")
    assert r.status_code == 200, r.text
    assert r.json()["release_status"] == "RELEASED"
    assert r.json()["release_approver"] == independent.name


async def test_admins_through_a_grant_or_the_system_role_are_not_reviewers_of_it(
    api: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    lab = f"lab-{uuid.uuid4().hex[:8]}"
    owner = new_user("owner")
    group_admin = new_user("group-admin", system_roles=("reviewer",), groups=(lab,))
    everyone_admin = new_user("everyone-admin", system_roles=("reviewer",))
    sysadmin = new_user("sysadmin", system_roles=("admin", "reviewer"))
    dataset_id = await mint(api, owner, groups={lab: ["admin"]})
    for name in (group_admin.name, sysadmin.name):
        r = await step(api, owner, dataset_id, "request", reviewer=name)
        assert reviewer_problem(r) == "dataset_admin", name
    other_id = await mint(api, owner, general=["admin"])
    r = await step(api, owner, other_id, "request", reviewer=everyone_admin.name)
    assert reviewer_problem(r) == "dataset_admin"
    # a group grant below admin does not count
    lesser_id = await mint(api, owner, groups={lab: ["data-write"]})
    r = await step(api, owner, lesser_id, "request", reviewer=group_admin.name)
    assert r.status_code == 200, r.text


async def test_a_reviewer_who_gains_admin_while_pending_cannot_approve(
    api: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    lab = f"lab-{uuid.uuid4().hex[:8]}"
    owner = new_user("owner")
    reviewer = new_user("reviewer", system_roles=("reviewer",), groups=(lab,))
    dataset_id = await mint(api, owner)
    r = await step(api, owner, dataset_id, "request", reviewer=reviewer.name)
    assert r.status_code == 200, r.text

    access_path = f"/registry/items/{dataset_id}/access"
    grant = {"owner": owner.name, "general": [], "groups": {lab: ["admin"]}}
    r = await api.put(access_path, json=grant, headers=owner.headers)
    assert r.status_code == 200, r.text
    r = await step(api, reviewer, dataset_id, "approve")
    assert code(r) == (403, "four_eyes"), r.text
    assert r.json()["error"]["details"] == {"state": "PENDING"}

    # once the grant is gone, the same reviewer approves
    r = await api.put(access_path, json={**grant, "groups": {}}, headers=owner.headers)
    assert r.status_code == 200, r.text
    r = await step(api, reviewer, dataset_id, "approve")
    assert r.status_code == 200, r.text
    assert r.json()["release_status"] == "RELEASED"


async def test_a_reviewer_who_gains_admin_may_still_reject(
    api: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    owner = new_user("owner")
    reviewer = new_user("reviewer", system_roles=("reviewer",))
    dataset_id = await mint(api, owner)
    r = await step(api, owner, dataset_id, "request", reviewer=reviewer.name)
    assert r.status_code == 200, r.text
    r = await api.put(
        f"/registry/items/{dataset_id}/access",
        json={"owner": reviewer.name, "general": [], "groups": {}},
        headers=owner.headers,
    )
    assert r.status_code == 200, r.text
    assert code(await step(api, reviewer, dataset_id, "approve")) == (403, "four_eyes")
    r = await step(api, reviewer, dataset_id, "reject", notes="I own it now; someone else")
    assert r.status_code == 200, r.text
    assert r.json()["release_status"] == "NOT_RELEASED"
