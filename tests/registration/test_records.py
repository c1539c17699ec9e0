"""Registration records as registry subtypes: validation names the field, names are unique."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from tests.support.registration_helpers import (
    Lab,
    create_item,
    fields,
    make_lab,
    make_subject,
    unique,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio

NOW = "2026-12-06T10:00:00+00:00"


async def post(client: httpx.AsyncClient, user: User, subtype: str, record: Any) -> httpx.Response:
    return await client.post(
        "/items", json={"subtype": subtype, "record": record}, headers=user.headers
    )


@pytest.mark.parametrize(
    ("subtype", "record", "field"),
    [
        ("subject", {"nickname": "bad name", "lab": "LAB"}, "record.nickname"),
        ("subject", {"nickname": "m1", "lab": "not-a-handle"}, "record.lab"),
        ("subject", {"nickname": "m1", "lab": "LAB", "sex": "X"}, "record.sex"),
        (
            "subject",
            {
                "nickname": "m1",
                "lab": "LAB",
                "birth_date": "2026-02-01",
                "death_date": "2026-01-01",
            },
            "record.death_date",
        ),
        ("lab", {"name": "has space", "group": "g"}, "record.name"),
        ("lab", {"name": "ok", "group": "g", "timezone": "Mars/Olympus"}, "record.timezone"),
        ("data_format", {"name": "tgz", "file_extension": ".tar.gz"}, "record.file_extension"),
        ("data_format", {"name": "npy", "file_extension": "npy"}, "record.file_extension"),
        ("repository", {"name": "r", "kind": "s3", "root": "/data"}, "record.root"),
        ("repository", {"name": "r", "kind": "posix", "root": "data"}, "record.root"),
        ("repository", {"name": "r", "kind": "globus", "root": "/data"}, "record.root"),
        ("repository", {"name": "r", "kind": "ftp", "root": "/data"}, "record.kind"),
        (
            "repository",
            {"name": "r", "kind": "s3", "root": "s3://bucket", "role": "x"},
            "record.role",
        ),
        ("weighing", {"subject": "SUBJECT", "grams": 0, "time": NOW}, "record.grams"),
        (
            "weighing",
            {"subject": "SUBJECT", "grams": 20, "time": "2026-12-06T10:00"},
            "record.time",
        ),
        ("water_administration", {"subject": "SUBJECT", "ml": -1, "time": NOW}, "record.ml"),
        # numbers are not times or dates (pydantic alone would read them as Unix seconds)
        ("weighing", {"subject": "SUBJECT", "grams": 20, "time": 1700000000}, "record.time"),
        ("weighing", {"subject": "SUBJECT", "grams": 20, "time": "1700000000"}, "record.time"),
        ("subject", {"nickname": "m1", "lab": "LAB", "birth_date": 0}, "record.birth_date"),
        (
            "session",
            {"subject": "SUBJECT", "lab": "LAB", "date": "2026-12-06", "number": 1000},
            "record.number",
        ),
        (
            "session",
            {
                "subject": "SUBJECT",
                "lab": "LAB",
                "date": "2026-12-06",
                "number": 1,
                "start_time": "2026-12-06T10:00:00Z",
                "end_time": "2026-12-06T09:00:00Z",
            },
            "record.end_time",
        ),
        ("tag", {"name": ""}, "record.name"),
    ],
)
async def test_validation_errors_name_the_field(
    client: httpx.AsyncClient,
    lab: Lab,
    subtype: str,
    record: dict[str, Any],
    field: str,
) -> None:
    subject = await make_subject(client, lab)
    filled = {
        k: {"LAB": lab.id, "SUBJECT": subject["id"]}.get(v, v) if isinstance(v, str) else v
        for k, v in record.items()
    }
    r = await post(client, lab.member, subtype, filled)
    assert r.status_code == 422, r.text
    assert fields(r) == [field], r.text


async def test_references_must_exist_and_be_of_the_right_subtype(
    client: httpx.AsyncClient, lab: Lab
) -> None:
    person = await create_item(
        client,
        lab.member,
        "person",
        {"first_name": "A", "last_name": "B", "email": "a@example.org"},
    )
    for handle, kind in [("10378.1/999999999", "unknown_item"), (person["id"], "wrong_subtype")]:
        r = await post(client, lab.member, "subject", {"nickname": unique("m"), "lab": handle})
        assert r.status_code == 422, r.text
        detail = r.json()["error"]["details"][0]
        assert (detail["field"], detail["type"]) == ("record.lab", kind)
        assert handle in detail["message"]
    r = await post(
        client,
        lab.member,
        "weighing",
        {"subject": person["id"], "grams": 21.5, "time": NOW},
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "record.subject"


async def test_unknown_group_user_and_users_are_named(client: httpx.AsyncClient, lab: Lab) -> None:
    r = await post(client, lab.member, "lab", {"name": unique("lab"), "group": unique("nogroup")})
    assert r.status_code == 422
    detail = r.json()["error"]["details"][0]
    assert (detail["field"], detail["type"]) == ("record.group", "unknown_group")

    subject = await make_subject(client, lab)
    r = await post(
        client,
        lab.member,
        "weighing",
        {"subject": subject["id"], "grams": 21.5, "time": NOW, "user": "nobody-at-all"},
    )
    assert r.status_code == 422
    assert r.json()["error"]["details"][0]["field"] == "record.user"

    record = {
        "subject": subject["id"],
        "lab": lab.id,
        "date": "2026-12-06",
        "number": 1,
        "users": [lab.member.name, "nobody-at-all"],
    }
    r = await post(client, lab.member, "session", record)
    assert r.status_code == 422
    detail = r.json()["error"]["details"][0]
    assert (detail["field"], detail["type"]) == ("record.users.1", "unknown_user")


async def test_start_time_falls_on_the_date_in_the_labs_time_zone(
    client: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    sydney = await make_lab(client, new_user, timezone="Australia/Sydney")
    subject = await make_subject(client, sydney)
    base = {"subject": subject["id"], "lab": sydney.id, "date": "2026-12-06"}
    # 20:00 UTC on the 5th is 07:00 on the 6th in Sydney (UTC+11 in December)
    ok = await post(
        client, sydney.member, "session", {**base, "number": 1, "start_time": "2026-12-05T20:00Z"}
    )
    assert ok.status_code == 201, ok.text
    late = await post(
        client, sydney.member, "session", {**base, "number": 2, "start_time": "2026-12-06T20:00Z"}
    )
    assert late.status_code == 422
    detail = late.json()["error"]["details"][0]
    assert (detail["field"], detail["type"]) == ("record.start_time", "date_mismatch")
    assert "Australia/Sydney" in detail["message"]


async def test_lab_names_are_unique_whatever_the_case(
    client: httpx.AsyncClient, lab: Lab, new_user: Callable[..., User]
) -> None:
    other = await make_lab(client, new_user)
    r = await post(client, other.member, "lab", {"name": lab.name.upper(), "group": other.group})
    assert r.status_code == 409, r.text
    error = r.json()["error"]
    assert error["code"] == "name_taken"
    assert error["details"][0]["field"] == "record.name"
    assert error["details"][0]["item_id"] == lab.id


async def test_nicknames_are_unique_within_a_lab_only(
    client: httpx.AsyncClient, lab: Lab, new_user: Callable[..., User]
) -> None:
    nickname = unique("KS")
    first = await make_subject(client, lab, nickname)
    assert first["display_name"] == nickname
    again = await post(client, lab.member, "subject", {"nickname": nickname.lower(), "lab": lab.id})
    assert again.status_code == 409, again.text
    detail = again.json()["error"]["details"][0]
    assert (detail["field"], detail["item_id"]) == ("record.nickname", first["id"])
    other = await make_lab(client, new_user)
    await make_subject(client, other, nickname)  # another lab may use it


@pytest.mark.parametrize(
    ("subtype", "record"),
    [
        # (the vocabulary is global: a test's pattern must match no other test's files)
        ("dataset_type", {"name": "NAME", "filename_pattern": "*unique_names_test.table*"}),
        ("data_format", {"name": "NAME", "file_extension": ".npy"}),
        ("repository", {"name": "NAME", "kind": "s3", "root": "s3://bucket/prefix"}),
        ("tag", {"name": "NAME", "protected": True}),
    ],
)
async def test_vocabulary_names_are_unique(
    client: httpx.AsyncClient, registry_admin: User, subtype: str, record: dict[str, Any]
) -> None:
    name = unique("n")
    first = await post(client, registry_admin, subtype, {**record, "name": name})
    assert first.status_code == 201, first.text
    assert first.json()["display_name"] == name
    second = await post(client, registry_admin, subtype, {**record, "name": name.upper()})
    assert second.status_code == 409, second.text
    assert second.json()["error"]["details"][0]["item_id"] == first.json()["id"]


async def test_a_rename_frees_the_old_name_and_cannot_take_a_held_one(
    client: httpx.AsyncClient, registry_admin: User
) -> None:
    a, b = unique("tag"), unique("tag")
    first = (await post(client, registry_admin, "tag", {"name": a})).json()
    second = (await post(client, registry_admin, "tag", {"name": b})).json()
    url = f"/items/{second['id']}"
    taken = await client.put(
        url, json={"record": {"name": a}, "reason": "rename"}, headers=registry_admin.headers
    )
    assert taken.status_code == 409
    assert taken.json()["error"]["details"][0]["item_id"] == first["id"]
    c = unique("tag")
    moved = await client.put(
        f"/items/{first['id']}",
        json={"record": {"name": c}, "reason": "x"},
        headers=registry_admin.headers,
    )
    assert moved.status_code == 200, moved.text
    freed = await client.put(
        url, json={"record": {"name": a}, "reason": "rename"}, headers=registry_admin.headers
    )
    assert freed.status_code == 200, freed.text


async def test_dataset_type_pattern_is_stored_lower_case(
    client: httpx.AsyncClient, registry_admin: User
) -> None:
    r = await post(
        client,
        registry_admin,
        "dataset_type",
        {"name": unique("t"), "filename_pattern": "*Trials.LOWER_CASE_TEST*"},
    )
    assert r.status_code == 201
    assert r.json()["record"]["filename_pattern"] == "*trials.lower_case_test*"


async def test_weighings_and_water_belong_to_the_subjects_lab(
    client: httpx.AsyncClient, lab: Lab
) -> None:
    subject = await make_subject(client, lab)
    weighing = await create_item(
        client,
        lab.member,
        "weighing",
        {"subject": subject["id"], "grams": 21.5, "time": NOW, "user": lab.member.name},
    )
    water = await create_item(
        client,
        lab.member,
        "water_administration",
        {"subject": subject["id"], "ml": 0.8, "time": NOW},
    )
    for item in (weighing, water):
        assert item["access"]["groups"] == {lab.group: ["metadata-write"]}
        assert item["display_name"].startswith(subject["record"]["nickname"])


async def test_concurrent_creates_of_one_name_give_one_item_and_409s(
    client: httpx.AsyncClient, registry_admin: User
) -> None:
    name = unique("tag")
    answers: list[httpx.Response] = []

    async def create_one() -> None:
        answers.append(await post(client, registry_admin, "tag", {"name": name}))

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(create_one)
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [201] + [409] * 9, [
        r.text for r in answers if r.status_code not in (201, 409)
    ]
    winner = next(r.json()["id"] for r in answers if r.status_code == 201)
    for r in answers:
        if r.status_code == 409:
            assert r.json()["error"]["details"][0]["item_id"] in (winner, None)


@pytest.mark.parametrize(
    ("subtype", "record"),
    [
        ("dataset_type", {"name": "NAME", "filename_pattern": "*.*"}),
        ("data_format", {"name": "NAME", "file_extension": ".npy"}),
        ("repository", {"name": "NAME", "kind": "posix", "root": "/data"}),
        ("tag", {"name": "NAME", "protected": True}),
    ],
)
async def test_only_registry_admins_write_the_vocabulary(
    client: httpx.AsyncClient,
    lab: Lab,
    registry_admin: User,
    subtype: str,
    record: dict[str, Any],
) -> None:
    name = unique("v")
    if "filename_pattern" in record:  # readable by all: it must match no other test's files
        record = {**record, "filename_pattern": f"*{name}.*"}
    refused = await post(client, lab.member, subtype, {**record, "name": name})
    assert refused.status_code == 403, refused.text
    assert "registry admin" in refused.json()["error"]["message"]
    # the admin's record must not match other tests' files: the vocabulary is global
    harmless = {"filename_pattern": f"*{name}*"} if subtype == "dataset_type" else {}
    made = await post(client, registry_admin, subtype, {**record, "name": name, **harmless})
    assert made.status_code == 201, made.text
    item = made.json()
    # a member may not change it either, even when granted metadata-write on the item
    grant = await client.put(
        f"/items/{item['id']}/access",
        json={"owner": registry_admin.name, "general": ["metadata-read", "metadata-write"]},
        headers=registry_admin.headers,
    )
    assert grant.status_code == 200, grant.text
    changed = await client.put(
        f"/items/{item['id']}",
        json={"record": {**record, "name": unique("v")}, "reason": "x"},
        headers=lab.member.headers,
    )
    assert changed.status_code == 403, changed.text
    assert "registry admin" in changed.json()["error"]["message"]
