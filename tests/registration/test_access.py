"""A lab's records are written by its members only, whatever else the item grants.

The attacker (``mallory``) is a signed-in user with a lab of her own; each test tries one way
into another lab's records and checks it is refused and that nothing changed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.registration_helpers import (
    Lab,
    create_item,
    make_lab,
    make_subject,
    post_session,
    unique,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio

DAY = "2026-12-06"
NOW = "2026-12-06T10:00:00Z"
READ = ["metadata-read"]


@pytest.fixture
async def mallory_lab(client: httpx.AsyncClient, new_user: Callable[..., User]) -> Lab:
    return await make_lab(client, new_user)


@pytest.fixture
def mallory(mallory_lab: Lab) -> User:
    return mallory_lab.member


@pytest.fixture
async def subject(client: httpx.AsyncClient, lab: Lab) -> dict[str, Any]:
    """A subject of the victim's lab that everyone signed in may read."""
    return await make_subject(client, lab, general=READ)


def assert_forbidden(r: httpx.Response, group: str | None = None) -> None:
    assert r.status_code == 403, r.text
    error = r.json()["error"]
    assert error["code"] == "forbidden"
    if group is not None:
        assert group in error["message"]


async def test_a_non_member_cannot_register_a_lab_for_someone_elses_group(
    client: httpx.AsyncClient, lab: Lab, mallory: User
) -> None:
    r = await client.post(
        "/items",
        json={"subtype": "lab", "record": {"name": unique("lab"), "group": lab.group}},
        headers=mallory.headers,
    )
    assert_forbidden(r, lab.group)


async def test_a_non_member_cannot_create_a_subject_in_the_lab(
    client: httpx.AsyncClient, lab: Lab, mallory: User
) -> None:
    r = await client.post(
        "/items",
        json={"subtype": "subject", "record": {"nickname": unique("m"), "lab": lab.id}},
        headers=mallory.headers,
    )
    assert_forbidden(r, lab.group)


async def test_a_non_member_cannot_create_sessions_or_weighings_of_the_labs_subject(
    client: httpx.AsyncClient, lab: Lab, mallory: User, mallory_lab: Lab, subject: dict[str, Any]
) -> None:
    # in the subject's lab, in her own lab, or through the items route: always refused
    for body in (
        {"subject": subject["id"], "date": DAY},
        {"subject": subject["id"], "date": DAY, "lab": mallory_lab.id},
        {"subject": subject["id"], "date": DAY, "number": 7},
    ):
        assert_forbidden(await post_session(client, mallory, body), lab.group)
    record = {"subject": subject["id"], "lab": mallory_lab.id, "date": DAY, "number": 1}
    r = await client.post(
        "/items", json={"subtype": "session", "record": record}, headers=mallory.headers
    )
    assert_forbidden(r, lab.group)
    for subtype, record in (
        ("weighing", {"subject": subject["id"], "grams": 1.0, "time": NOW}),
        ("water_administration", {"subject": subject["id"], "ml": 1.0, "time": NOW}),
    ):
        r = await client.post(
            "/items", json={"subtype": subtype, "record": record}, headers=mallory.headers
        )
        assert_forbidden(r, lab.group)
    page = await client.get(
        "/sessions", params={"subject": subject["id"]}, headers=lab.member.headers
    )
    assert page.json()["items"] == []  # nothing was created, no number was used
    first = await post_session(client, lab.member, {"subject": subject["id"], "date": DAY})
    assert first.json()["record"]["number"] == 1


async def test_a_subject_that_is_not_readable_is_not_revealed(
    client: httpx.AsyncClient, lab: Lab, mallory: User
) -> None:
    hidden = await make_subject(client, lab)  # no general read
    r = await post_session(client, mallory, {"subject": hidden["id"], "date": DAY})
    assert r.status_code == 422
    detail = r.json()["error"]["details"][0]
    assert (detail["field"], detail["type"]) == ("subject", "unreadable_item")
    assert hidden["record"]["nickname"] not in r.text
    listed = await client.get("/sessions", params={"lab": lab.id}, headers=mallory.headers)
    assert listed.status_code == 200 and listed.json()["items"] == []


async def test_a_write_grant_from_the_owner_does_not_make_a_non_member_a_writer(
    client: httpx.AsyncClient, lab: Lab, mallory: User, subject: dict[str, Any]
) -> None:
    url = f"/items/{subject['id']}"
    grant = {
        "owner": lab.member.name,
        "general": ["metadata-write"],
        "groups": {lab.group: ["metadata-write"]},
    }
    r = await client.put(url + "/access", json=grant, headers=lab.member.headers)
    assert r.status_code == 200, r.text
    record = {**subject["record"], "description": "mallory was here"}
    r = await client.put(url, json={"record": record, "reason": "x"}, headers=mallory.headers)
    assert_forbidden(r, lab.group)
    after = (await client.get(url, headers=lab.member.headers)).json()
    assert "description" not in after["record"]


async def test_a_non_member_cannot_move_a_subject_out_of_or_into_a_lab(
    client: httpx.AsyncClient,
    lab: Lab,
    mallory: User,
    mallory_lab: Lab,
    subject: dict[str, Any],
) -> None:
    # the member of one lab can't pull the subject into another lab she doesn't belong to
    record = {**subject["record"], "lab": mallory_lab.id}
    r = await client.put(
        f"/items/{subject['id']}",
        json={"record": record, "reason": "move"},
        headers=lab.member.headers,
    )
    assert_forbidden(r, mallory_lab.group)
    # and mallory can't push her own subject into the victim's lab
    own = await make_subject(client, mallory_lab)
    record = {**own["record"], "lab": lab.id}
    r = await client.put(
        f"/items/{own['id']}", json={"record": record, "reason": "move"}, headers=mallory.headers
    )
    assert_forbidden(r, lab.group)


async def test_a_non_member_cannot_change_or_revert_a_session(
    client: httpx.AsyncClient, lab: Lab, mallory: User, subject: dict[str, Any]
) -> None:
    ses = (await post_session(client, lab.member, {"subject": subject["id"], "date": DAY})).json()
    url = f"/items/{ses['id']}"
    r = await client.put(
        url, json={"record": {**ses["record"], "number": 9}, "reason": "x"}, headers=mallory.headers
    )
    assert r.status_code == 403
    r = await client.post(
        url + "/revert", json={"history_id": 1, "reason": "x"}, headers=mallory.headers
    )
    assert r.status_code == 403
    after = (await client.get(url, headers=lab.member.headers)).json()
    assert after["revision"] == ses["revision"]


async def test_a_system_admin_may_write_any_labs_records(
    client: httpx.AsyncClient, lab: Lab, new_user: Callable[..., User], subject: dict[str, Any]
) -> None:
    admin = new_user("root", system_roles=("admin",))
    r = await post_session(client, admin, {"subject": subject["id"], "date": DAY})
    assert r.status_code == 201, r.text
    await create_item(client, admin, "subject", {"nickname": unique("m"), "lab": lab.id})
