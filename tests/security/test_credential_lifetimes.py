"""Access taken away ends soon for what was already handed out.

Scoped credentials and presigned URLs can't be called back, so their lifetimes are short by
default (15 min) and bounded (1 h); asking for longer is a 422 naming the field. A user
removed from a group gets no fresh credentials or URLs, and the SDK's credential cache does
not reuse credentials past their (short) life.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import httpx
import pytest

from provena_like.models.datastore import (
    MAX_CREDENTIALS_SECONDS,
    MAX_PRESIGN_SECONDS,
    CredentialsRequest,
    PresignRequest,
)
from provena_like.server.db.identity import GroupMemberRow
from provena_like.server.settings import S3Settings
from provena_like.testing.server_thread import ServerThread
from tests.support.tls import SHARED_TLS
from tests.support.users import User

pytestmark = pytest.mark.anyio

APPROVALS = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")
SLACK = 30  # seconds between the server's clock reading and ours


@pytest.fixture
async def api(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=SHARED_TLS, base_url=server.url, timeout=60) as client:
        yield client


async def _create(api: httpx.AsyncClient, user: User, body: dict[str, Any]) -> str:
    r = await api.post("/registry/items", json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    item_id: str = r.json()["id"]
    return item_id


async def mint(api: httpx.AsyncClient, owner: User, **access: Any) -> dict[str, Any]:
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
            "name": "Short-lived access",
            "description": "Credentials that end soon.",
            "access_info": {"reposited": True},
            "publisher_id": org,
            "created_date": "2024-01-01",
            "published_date": "2024-06-30",
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "keywords": ["access"],
        },
    }
    r = await api.post(
        "/datastore/datasets", json={"record": record, **access}, headers=owner.headers
    )
    assert r.status_code == 201, r.text
    dataset: dict[str, Any] = r.json()["dataset"]
    return dataset


async def put_file(api: httpx.AsyncClient, owner: User, dataset: dict[str, Any]) -> str:
    """Upload one object with the owner's write credentials; its relative path."""
    r = await api.post(
        f"/datastore/datasets/{dataset['id']}/credentials",
        json={"access": "write"},
        headers=owner.headers,
    )
    assert r.status_code == 200, r.text
    creds = r.json()
    s3 = boto3.client(
        "s3",
        endpoint_url=creds["endpoint_url"],
        region_name=creds["region"],
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        aws_session_token=creds["session_token"],
    )
    try:
        s3.put_object(Bucket=creds["bucket"], Key=creds["prefix"] + "a.csv", Body=b"x\n")
    finally:
        s3.close()
    return "a.csv"


def seconds_until(stamp: str) -> float:
    return (datetime.fromisoformat(stamp) - datetime.now(UTC)).total_seconds()


def test_the_bounds_and_defaults_are_short() -> None:
    assert MAX_CREDENTIALS_SECONDS == MAX_PRESIGN_SECONDS == 3600
    s3 = S3Settings(endpoint_url="http://127.0.0.1:1", access_key="a", secret_key="b")
    assert s3.credentials_default_seconds == s3.presign_default_seconds == 900
    assert s3.credentials_max_seconds == s3.presign_max_seconds == 3600
    assert s3.write_credentials_max_seconds == 900
    with pytest.raises(ValueError, match="credentials_max_seconds"):
        S3Settings(
            endpoint_url="http://127.0.0.1:1",
            access_key="a",
            secret_key="b",
            credentials_max_seconds=7200,
        )
    with pytest.raises(ValueError, match="presign_max_seconds"):
        S3Settings(
            endpoint_url="http://127.0.0.1:1",
            access_key="a",
            secret_key="b",
            presign_max_seconds=86400,
        )
    with pytest.raises(ValueError):
        CredentialsRequest(duration_seconds=3601)
    with pytest.raises(ValueError):
        PresignRequest(path="a.csv", expires_in=3601)


async def test_default_lifetimes_are_fifteen_minutes(
    api: httpx.AsyncClient, new_user: Callable[..., User]
) -> None:
    owner = new_user("owner")
    dataset = await mint(api, owner)
    name = await put_file(api, owner, dataset)
    base = f"/datastore/datasets/{dataset['id']}"
    for access in ("read", "write"):
        r = await api.post(f"{base}/credentials", json={"access": access}, headers=owner.headers)
        assert r.status_code == 200, r.text
        assert 900 - SLACK < seconds_until(r.json()["expiration"]) <= 900 + 5, access
    r = await api.post(f"{base}/presign", json={"path": name}, headers=owner.headers)
    assert r.status_code == 200, r.text
    assert 900 - SLACK < seconds_until(r.json()["expires_at"]) <= 900 + 5
    assert "X-Amz-Expires=900" in r.json()["url"]

    # under the STS minimum: never longer than the minimum (the store's default here is 1 h)
    for access in ("read", "write"):
        r = await api.post(
            f"{base}/credentials",
            json={"access": access, "duration_seconds": 60},
            headers=owner.headers,
        )
        assert r.status_code == 200, r.text
        assert seconds_until(r.json()["expiration"]) <= 900 + 5, access

    # the bound itself may be asked for
    r = await api.post(
        f"{base}/credentials",
        json={"access": "read", "duration_seconds": 3600},
        headers=owner.headers,
    )
    assert r.status_code == 200 and seconds_until(r.json()["expiration"]) <= 3600 + 5
    r = await api.post(
        f"{base}/presign", json={"path": name, "expires_in": 3600}, headers=owner.headers
    )
    assert r.status_code == 200 and "X-Amz-Expires=3600" in r.json()["url"]


@pytest.mark.parametrize(
    ("route", "field", "asked"),
    [
        ("credentials", "duration_seconds", 3601),
        ("credentials", "duration_seconds", 12 * 3600),
        ("presign", "expires_in", 3601),
        ("presign", "expires_in", 24 * 3600),
    ],
)
async def test_longer_than_the_bound_is_a_422_naming_the_field(
    api: httpx.AsyncClient, new_user: Callable[..., User], route: str, field: str, asked: int
) -> None:
    owner = new_user("owner")
    dataset = await mint(api, owner)
    body: dict[str, Any] = {field: asked}
    body.update({"access": "read"} if route == "credentials" else {"path": "a.csv"})
    r = await api.post(
        f"/datastore/datasets/{dataset['id']}/{route}", json=body, headers=owner.headers
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == field


async def test_removed_from_the_group_no_fresh_credentials_or_urls(
    api: httpx.AsyncClient, new_user: Callable[..., User], server: ServerThread
) -> None:
    lab = f"lab-{uuid.uuid4().hex[:8]}"
    owner = new_user("owner")
    member = new_user("member", groups=(lab,))
    dataset = await mint(api, owner, groups={lab: ["data-read"]})
    name = await put_file(api, owner, dataset)
    base = f"/datastore/datasets/{dataset['id']}"
    r = await api.post(f"{base}/credentials", json={"access": "read"}, headers=member.headers)
    assert r.status_code == 200, r.text
    r = await api.post(f"{base}/presign", json={"path": name}, headers=member.headers)
    assert r.status_code == 200, r.text

    async def leave() -> None:
        async with server.app.state.sessions() as session, session.begin():
            row = await session.get(GroupMemberRow, (lab, member.name))
            assert row is not None
            await session.delete(row)

    server.call(leave)
    r = await api.post(f"{base}/credentials", json={"access": "read"}, headers=member.headers)
    assert r.status_code == 403, r.text
    r = await api.post(f"{base}/presign", json={"path": name}, headers=member.headers)
    assert r.status_code == 403, r.text
