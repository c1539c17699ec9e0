"""Refusals tell a caller without the right to know nothing about other users or reviews.

For each probe, the answer about an existing user (or a pending review) and a non-existing one
(or a review that isn't pending) is the same in status, error code and body shape.
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


async def organisation(api: httpx.AsyncClient, owner: User) -> str:
    body = {"subtype": "organisation", "record": {"name": "Probe target"}}
    return await _create(api, owner, body)


async def mint(api: httpx.AsyncClient, owner: User) -> str:
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
            "name": "Probed",
            "description": "Someone probes its state.",
            "access_info": {"reposited": True},
            "publisher_id": org,
            "created_date": "2024-01-01",
            "published_date": "2024-06-30",
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "keywords": ["probe"],
        },
    }
    r = await api.post("/datastore/datasets", json={"record": record}, headers=owner.headers)
    assert r.status_code == 201, r.text
    dataset_id: str = r.json()["dataset"]["id"]
    return dataset_id


def shape(r: httpx.Response) -> tuple[int, str, Any]:
    """What a refusal tells: status, code and details (messages may quote the probe)."""
    error = r.json()["error"]
    return r.status_code, error["code"], error.get("details")


def scrub(r: httpx.Response, *names: str) -> tuple[int, str, str, Any]:
    """:func:`shape` plus the message with the probed names blanked out."""
    error = r.json()["error"]
    message = error["message"]
    details = repr(error.get("details"))
    for name in names:
        message = message.replace(name, "<name>")
        details = details.replace(name, "<name>")
    return r.status_code, error["code"], message, details


async def test_a_stale_access_change_does_not_tell_which_users_or_groups_exist(
    api: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    prober = new_user("prober")
    existing = new_user("existing").name
    missing = f"missing-{uuid.uuid4().hex[:10]}"
    group = f"grp-{uuid.uuid4().hex[:8]}"
    new_user("member", groups=(group,))
    item_id = await organisation(api, prober)
    path = f"/registry/items/{item_id}/access"
    stale = {"If-Match": '"999"', **prober.headers}

    answers = {}
    for name in (existing, missing):
        body = {"owner": name, "general": [], "groups": {}}
        answers[name] = await api.put(path, json=body, headers=stale)
    assert scrub(answers[existing], existing) == scrub(answers[missing], missing)
    assert answers[existing].status_code == 412

    for name in (group, f"nogrp-{uuid.uuid4().hex[:8]}"):
        body = {"owner": prober.name, "general": [], "groups": {name: ["metadata-read"]}}
        r = await api.put(path, json=body, headers=stale)
        assert shape(r)[:2] == (412, "stale_revision"), r.text

    # nothing was written by the probes
    r = await api.get(path, headers=prober.headers)
    assert r.json()["owner"] == prober.name and r.json()["groups"] == {}


async def test_access_changes_by_callers_without_admin_tell_nothing(
    api: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    owner = new_user("owner")
    prober = new_user("prober")
    existing = new_user("existing").name
    missing = f"missing-{uuid.uuid4().hex[:10]}"
    item_id = await organisation(api, owner)
    path = f"/registry/items/{item_id}/access"
    answers = []
    for name in (existing, missing):
        for headers in (prober.headers, {"If-Match": '"999"', **prober.headers}):
            body = {"owner": name, "general": [], "groups": {}}
            answers.append(scrub(await api.put(path, json=body, headers=headers), name))
    assert answers[0][:2] == (403, "forbidden")
    assert len(set(answers)) == 1, answers


async def test_naming_a_reviewer_does_not_tell_whether_the_user_exists(
    api: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    prober = new_user("prober")
    dataset_id = await mint(api, prober)
    plain = new_user("plain").name
    disabled = new_user("disabled", system_roles=("reviewer",))
    admin = new_user("sysadmin", system_roles=("admin",))
    r = await api.patch(
        f"/auth/users/{disabled.name}", json={"disabled": True}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    missing = f"missing-{uuid.uuid4().hex[:10]}"
    path = f"/datastore/datasets/{dataset_id}/release/request"
    answers = {}
    for name in (plain, disabled.name, missing):
        r = await api.post(path, json={"reviewer": name, "notes": "n"}, headers=prober.headers)
        assert r.status_code == 422, r.text
        answers[name] = scrub(r, name)
    assert answers[plain] == answers[missing] == answers[disabled.name]
    assert "'not_a_reviewer'" in answers[missing][3]


@pytest.mark.parametrize("verdict", ["approve", "reject"])
async def test_deciding_someone_elses_review_does_not_tell_it_is_pending(
    api: httpx.AsyncClient, new_user: Callable[..., User], verdict: str
) -> None:
    owner = new_user("owner")
    reviewer = new_user("reviewer", system_roles=("reviewer",))
    pending = await mint(api, owner)
    idle = await mint(api, owner)
    r = await api.post(
        f"/datastore/datasets/{pending}/release/request",
        json={"reviewer": reviewer.name, "notes": "n"},
        headers=owner.headers,
    )
    assert r.status_code == 200, r.text

    for prober in (new_user("stranger"), new_user("other-reviewer", system_roles=("reviewer",))):
        answers = []
        for dataset_id in (pending, idle):
            r = await api.post(
                f"/datastore/datasets/{dataset_id}/release/{verdict}",
                json={"notes": "probe"},
                headers=prober.headers,
            )
            answers.append(scrub(r, dataset_id))
        assert answers[0] == answers[1], answers
        assert answers[0][:2] == (403, "forbidden")
        assert "PENDING" not in answers[0][2] + answers[0][3]
