"""Sessions: server-allocated numbers, explicit numbers, idempotent replay, listing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.errors import Conflict, Unprocessable
from tests.support.registration_helpers import (
    Lab,
    create_item,
    fields,
    join,
    make_subject,
    post_session,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio

DAY = "2026-12-06"


@pytest.fixture
async def subject(client: httpx.AsyncClient, lab: Lab) -> dict[str, Any]:
    return await make_subject(client, lab)


async def test_numbers_are_allocated_in_order_and_the_lab_defaults_to_the_subjects(
    client: httpx.AsyncClient, lab: Lab, subject: dict[str, Any]
) -> None:
    numbers = []
    for _ in range(3):
        r = await post_session(client, lab.member, {"subject": subject["id"], "date": DAY})
        assert r.status_code == 201, r.text
        item = r.json()
        numbers.append(item["record"]["number"])
        assert item["subtype"] == "session"
        assert item["record"]["lab"] == lab.id
        assert item["owner"] == lab.member.name
        assert item["access"]["groups"] == {lab.group: ["metadata-write"]}
        number = item["record"]["number"]
        assert item["display_name"] == f"{subject['record']['nickname']}/{DAY}/{number:03d}"
        assert r.headers["location"].endswith(f"/registry/items/{item['id']}")
        assert r.headers["etag"] == '"1"'
    assert numbers == [1, 2, 3]
    other_day = await post_session(
        client, lab.member, {"subject": subject["id"], "date": "2026-12-07"}
    )
    assert other_day.json()["record"]["number"] == 1


async def test_twenty_concurrent_creates_get_numbers_1_to_20_exactly_once(
    pv: ProvenaClient, subject: dict[str, Any]
) -> None:
    numbers: list[int] = []

    async def create_one() -> None:
        item = await pv.registry_client.create_session({"subject": subject["id"], "date": DAY})
        numbers.append(item.record["number"])

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(create_one)
    assert sorted(numbers) == list(range(1, 21))
    listed = [
        s.record["number"]
        async for s in pv.registry_client.iter_sessions(subject=subject["id"], page_size=7)
    ]
    assert listed == list(range(1, 21))


async def test_an_explicit_number_is_used_and_a_taken_one_is_409(
    client: httpx.AsyncClient, lab: Lab, subject: dict[str, Any]
) -> None:
    r = await post_session(client, lab.member, {"subject": subject["id"], "date": DAY, "number": 5})
    assert r.status_code == 201, r.text
    assert r.json()["record"]["number"] == 5
    taken = await post_session(
        client, lab.member, {"subject": subject["id"], "date": DAY, "number": 5}
    )
    assert taken.status_code == 409
    error = taken.json()["error"]
    assert error["code"] == "session_number_taken"
    assert error["details"][0]["field"] == "number"
    assert error["details"][0]["item_id"] == r.json()["id"]
    nxt = await post_session(client, lab.member, {"subject": subject["id"], "date": DAY})
    assert nxt.json()["record"]["number"] == 6  # one more than the highest taken
    # through the items route, the session record names its number
    record = {"subject": subject["id"], "lab": lab.id, "date": DAY, "number": 6}
    r = await client.post(
        "/items", json={"subtype": "session", "record": record}, headers=lab.member.headers
    )
    assert r.status_code == 409
    assert fields(r) == ["record.number"]


async def test_changing_a_sessions_number_to_a_taken_one_is_409(
    client: httpx.AsyncClient, lab: Lab, subject: dict[str, Any]
) -> None:
    first = (await post_session(client, lab.member, {"subject": subject["id"], "date": DAY})).json()
    second = (
        await post_session(client, lab.member, {"subject": subject["id"], "date": DAY})
    ).json()
    record = {**second["record"], "number": first["record"]["number"]}
    r = await client.put(
        f"/items/{second['id']}",
        json={"record": record, "reason": "renumber"},
        headers=lab.member.headers,
    )
    assert r.status_code == 409
    assert fields(r) == ["record.number"]
    record["number"] = 42
    r = await client.put(
        f"/items/{second['id']}",
        json={"record": record, "reason": "renumber"},
        headers=lab.member.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["display_name"].endswith("/042")
    # the old number is free again
    again = await post_session(
        client, lab.member, {"subject": subject["id"], "date": DAY, "number": 2}
    )
    assert again.status_code == 201, again.text


async def test_the_same_idempotency_key_replays_the_same_session(
    pv: ProvenaClient, subject: dict[str, Any]
) -> None:
    key = f"ses-{uuid.uuid4().hex}"
    body = {"subject": subject["id"], "date": DAY, "procedures": ["Behavior training/tasks"]}
    results = []

    async def create_one() -> None:
        results.append(await pv.registry_client.create_session(body, idempotency_key=key))

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(create_one)
    assert {r.id for r in results} == {results[0].id}
    assert results[0].record["number"] == 1
    page = await pv.registry_client.list_sessions(subject=subject["id"])
    assert [s.id for s in page.items] == [results[0].id]
    with pytest.raises(Conflict) as refused:
        await pv.registry_client.create_session({**body, "date": "2026-12-07"}, idempotency_key=key)
    assert refused.value.code == "idempotency_key_reused"


async def test_bad_requests_name_the_field(
    client: httpx.AsyncClient, lab: Lab, subject: dict[str, Any], pv: ProvenaClient
) -> None:
    cases: list[tuple[dict[str, Any], str, str | None]] = [
        ({"subject": "10378.1/999999999", "date": DAY}, "subject", "unknown_item"),
        ({"subject": lab.id, "date": DAY}, "subject", "wrong_subtype"),
        ({"subject": subject["id"], "date": DAY, "lab": subject["id"]}, "lab", "wrong_subtype"),
        ({"subject": subject["id"], "date": "2026-13-01"}, "date", None),
        ({"subject": subject["id"], "date": 0}, "date", None),
        ({"subject": subject["id"], "date": DAY, "number": 0}, "number", None),
        (
            {"subject": subject["id"], "date": DAY, "users": ["nobody-xyz"]},
            "users.0",
            "unknown_user",
        ),
        (
            {"subject": subject["id"], "date": DAY, "start_time": "2026-12-07T10:00:00Z"},
            "start_time",
            "date_mismatch",
        ),
    ]
    for body, field, kind in cases:
        r = await post_session(client, lab.member, body)
        assert r.status_code == 422, (body, r.text)
        assert fields(r) == [field], r.text
        if kind is not None:
            assert r.json()["error"]["details"][0]["type"] == kind
    with pytest.raises(Unprocessable) as err:
        await pv.registry_client.create_session({"subject": "10378.1/999999999", "date": DAY})
    assert err.value.status_code == 422


async def test_listing_filters_and_pages(
    client: httpx.AsyncClient, lab: Lab, subject: dict[str, Any], pv: ProvenaClient
) -> None:
    other = await make_subject(client, lab)
    for day in ("2026-11-30", "2026-12-01", "2026-12-02"):
        for _ in range(2):
            await post_session(client, lab.member, {"subject": subject["id"], "date": day})
    await post_session(client, lab.member, {"subject": other["id"], "date": "2026-12-01"})

    async def numbers(**filters: Any) -> list[tuple[str, int]]:
        return [
            (s.record["date"], s.record["number"])
            async for s in pv.registry_client.iter_sessions(page_size=1, **filters)
        ]

    assert await numbers(subject=subject["id"]) == [
        ("2026-11-30", 1),
        ("2026-11-30", 2),
        ("2026-12-01", 1),
        ("2026-12-01", 2),
        ("2026-12-02", 1),
        ("2026-12-02", 2),
    ]
    assert await numbers(subject=subject["id"], date_from="2026-12-01", date_to="2026-12-01") == [
        ("2026-12-01", 1),
        ("2026-12-01", 2),
    ]
    assert await numbers(subject=subject["id"], number=2, order="desc") == [
        ("2026-12-02", 2),
        ("2026-12-01", 2),
        ("2026-11-30", 2),
    ]
    assert await numbers(lab=lab.id, date_from="2026-12-01", date_to="2026-12-01", number=1) == [
        ("2026-12-01", 1),
        ("2026-12-01", 1),
    ]
    for bad in ("0", "2026-12-01T00:00:00Z", "yesterday"):
        r = await client.get("/sessions", params={"date_to": bad}, headers=lab.member.headers)
        assert r.status_code == 422, (bad, r.text)
        assert fields(r) == ["query.date_to"]
    # a cursor only fits the listing that made it
    page = await pv.registry_client.list_sessions(subject=subject["id"], page_size=2)
    assert page.next_cursor is not None
    r = await client.get(
        "/sessions",
        params={"subject": other["id"], "cursor": page.next_cursor},
        headers=lab.member.headers,
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "bad_cursor"


async def test_another_member_may_create_and_change_sessions(
    client: httpx.AsyncClient, lab: Lab, subject: dict[str, Any], new_user: Callable[..., User]
) -> None:
    colleague = await join(new_user, lab)
    r = await post_session(client, colleague, {"subject": subject["id"], "date": DAY})
    assert r.status_code == 201, r.text
    first = r.json()
    mine = await post_session(client, lab.member, {"subject": subject["id"], "date": DAY})
    record = {**mine.json()["record"], "task_protocol": "_iblrig_tasks_trainingChoiceWorld"}
    changed = await client.put(
        f"/items/{mine.json()['id']}",
        json={"record": record, "reason": "protocol"},
        headers=colleague.headers,
    )
    assert changed.status_code == 200, changed.text
    assert first["record"]["number"] == 1
    weighing = await create_item(
        client,
        colleague,
        "weighing",
        {"subject": subject["id"], "grams": 22.1, "time": "2026-12-06T08:00:00Z"},
    )
    assert weighing["owner"] == colleague.name
