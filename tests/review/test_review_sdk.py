"""The SDK side: typed errors, ``pv.datastore.review``, InteractiveDataset, L2 extras."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from provena_like import (
    Conflict,
    Forbidden,
    Locked,
    NotYourReview,
    ProvenaClient,
    ReleaseStateConflict,
    Unprocessable,
    UsageError,
)
from provena_like.testing.localstack import LocalStack
from tests.support.review_helpers import User

pytestmark = pytest.mark.anyio


@pytest.fixture
def connect(localstack: LocalStack) -> Callable[[User], ProvenaClient]:
    def make(user: User) -> ProvenaClient:
        return ProvenaClient(localstack.config(access_token=user.token))

    return make


@pytest.fixture
async def pv(connect: Callable[[User], ProvenaClient], owner: User) -> AsyncIterator[ProvenaClient]:
    async with connect(owner) as client:
        yield client


@pytest.fixture
async def pv_reviewer(
    connect: Callable[[User], ProvenaClient], reviewer: User
) -> AsyncIterator[ProvenaClient]:
    async with connect(reviewer) as client:
        yield client


async def sdk_record(pv: ProvenaClient, name: str = "SDK reef") -> dict[str, Any]:
    org = await pv.registry_client.create_item(
        {
            "subtype": "organisation",
            "record": {"name": "Reef Institute"},
            "general": ["metadata-read"],
        }
    )
    person = await pv.registry_client.create_item(
        {
            "subtype": "person",
            "record": {"first_name": "Ada", "last_name": "Reef", "email": "ada@example.org"},
            "general": ["metadata-read"],
        }
    )
    return {
        "associations": {"organisation_id": org.id, "point_of_contact": person.id},
        "approvals": {
            a: {"relevant": False, "obtained": False}
            for a in (
                "ethics_registration",
                "ethics_access",
                "indigenous_knowledge",
                "export_controls",
            )
        },
        "dataset_info": {
            "name": name,
            "description": "Logger readings.",
            "access_info": {"reposited": True},
            "publisher_id": org.id,
            "created_date": "2024-01-01",
            "published_date": "2024-06-30",
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "keywords": ["reef"],
        },
    }


async def test_the_workflow_through_the_sdk_with_typed_errors(
    pv: ProvenaClient,
    pv_reviewer: ProvenaClient,
    connect: Callable[[User], ProvenaClient],
    owner: User,
    reviewer: User,
    new_user: Callable[..., User],
    tmp_path: Path,
) -> None:
    ds = await pv.datastore.mint(await sdk_record(pv))
    (tmp_path / "a.csv").write_text("t,temp\n0,21.5\n")
    result = await ds.upload(tmp_path / "a.csv")
    assert [f.path for f in result.ok] == ["a.csv"]
    assert reviewer.name in [r.username for r in await pv.datastore.review.list_reviewers()]

    with pytest.raises(Unprocessable) as bad:
        await ds.request_release(owner.name, "me, myself")
    assert bad.value.details[0]["type"] == "self_review"
    dataset = await ds.request_release(reviewer.name, "ready")
    assert ds.release_status == "PENDING" and dataset.release_reviewer == reviewer.name

    # the L3 write path surfaces the server's refusal of write credentials, typed
    with pytest.raises(ReleaseStateConflict, match="PENDING review") as refused:
        await ds.upload(tmp_path / "a.csv")
    assert refused.value.state == "PENDING" and refused.value.code == "under_review"
    assert refused.value.status_code == 409 and refused.value.service == "datastore"
    assert isinstance(refused.value, Conflict)
    with pytest.raises(ReleaseStateConflict):
        await ds.credentials("write")
    assert (await ds.credentials("read")).access == "read"

    # the server's own refusals map to the same classes
    with pytest.raises(ReleaseStateConflict) as again:
        await pv.datastore.review.request_release(ds.id, reviewer.name)
    assert again.value.state == "PENDING"
    with pytest.raises(ReleaseStateConflict) as frozen:
        await ds.update_metadata(ds.record, reason="edit while pending")
    assert frozen.value.state == "PENDING"
    with pytest.raises(ReleaseStateConflict):
        await pv.datastore_client.get_credentials(ds.id, "write")
    with pytest.raises(NotYourReview) as not_mine:
        await pv.datastore.review.approve(ds.id, "I approve of myself")
    assert isinstance(not_mine.value, Forbidden) and not_mine.value.code == "not_your_review"

    # the reviewer's queue, decisions and the history
    queue = [d.id async for d in pv_reviewer.datastore.review.awaiting_my_review()]
    assert queue == [ds.id]
    assert [d.id async for d in pv.datastore.review.my_requests()] == [ds.id]
    with pytest.raises(UsageError):
        await pv_reviewer.datastore.review.reject(ds.id, "")
    rejected = await pv_reviewer.datastore.review.reject(ds.id, "add the calibration")
    assert rejected.release_status == "NOT_RELEASED"
    with pytest.raises(ReleaseStateConflict) as nothing:
        await pv_reviewer.datastore.review.approve(ds.id)
    assert nothing.value.state == "NOT_RELEASED" and nothing.value.code == "not_under_review"

    await ds.refresh()  # the release steps changed the dataset (a new revision)
    await ds.update_metadata(ds.record, reason="added the calibration")
    await ds.request_release(reviewer.name, "calibration added")
    released = await pv_reviewer.datastore.review.approve(ds.id, "good")
    assert released.release_status == "RELEASED" and released.release_time is not None
    await ds.refresh()
    with pytest.raises(ReleaseStateConflict, match="RELEASED") as done:
        await ds.upload(tmp_path / "a.csv")
    assert done.value.state == "RELEASED"
    history = await ds.release_history()
    assert [(e.action, e.status) for e in history] == [
        ("request", "PENDING"),
        ("reject", "NOT_RELEASED"),
        ("request", "PENDING"),
        ("approve", "RELEASED"),
    ]
    assert history[1].notes == "add the calibration" and history[1].user == reviewer.name


async def test_refreshing_write_credentials_rechecks_the_dataset(
    pv: ProvenaClient,
    connect: Callable[[User], ProvenaClient],
    owner: User,
    reviewer: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds = await pv.datastore.mint(await sdk_record(pv))
    first = await pv.datastore.credentials(ds.id, "write")
    assert first.access == "write" and first.seconds_left() <= 905
    # another client (another process, say) puts the dataset into review
    async with connect(owner) as elsewhere:
        await elsewhere.datastore.review.request_release(ds.id, reviewer.name)
    assert await pv.datastore.credentials(ds.id, "write") is first  # cached: no call at all

    asked: list[str] = []
    original = pv.datastore_client.get_credentials

    async def counting(dataset_id: str, access: Any = "read", **kw: Any) -> Any:
        asked.append(access)
        return await original(dataset_id, access, **kw)

    monkeypatch.setattr(pv.datastore_client, "get_credentials", counting)
    with pytest.raises(ReleaseStateConflict, match="PENDING review") as pending:
        await pv.datastore.credentials(ds.id, "write", force=True)
    assert (pending.value.state, pending.value.code) == ("PENDING", "under_review")
    assert asked == ["write"]  # the server's own 409, not one rebuilt by the client

    await pv.datastore.review.withdraw(ds.id, "not yet")
    await pv.registry_client.lock_item(ds.id, "audit")
    with pytest.raises(Locked, match="locked") as locked:
        await pv.datastore.credentials(ds.id, "write", force=True)
    assert locked.value.code == "locked"
    assert asked == ["write", "write"]


async def test_admin_reviewers_access_and_groups_on_the_l2_clients(
    connect: Callable[[User], ProvenaClient],
    pv: ProvenaClient,
    owner: User,
    new_user: Callable[..., User],
) -> None:
    admin = new_user("sysadmin", system_roles=("admin",))
    lab = f"lab-{uuid.uuid4().hex[:8]}"
    member = new_user("member", groups=(lab,))
    candidate = new_user("candidate")
    async with connect(admin) as pv_admin:
        added = await pv_admin.datastore.review.add_reviewer(candidate.name)
        assert added.username == candidate.name
        assert candidate.name in [
            r.username for r in await pv_admin.datastore.review.list_reviewers()
        ]
        await pv_admin.datastore.review.remove_reviewer(candidate.name)
        assert candidate.name not in [
            r.username async for r in pv_admin.review_client.iter_reviewers(page_size=2)
        ]
        groups = await pv_admin.auth_client.list_user_groups(member.name)
        assert [g.name for g in groups] == [lab] and member.name in groups[0].members
    with pytest.raises(Forbidden):
        await pv.datastore.review.add_reviewer(candidate.name)
    with pytest.raises(Forbidden):
        await pv.auth_client.list_user_groups(member.name)
    assert await pv.auth_client.list_user_groups(owner.name) == []

    org = await pv.registry_client.create_item(
        {"subtype": "organisation", "record": {"name": "Lab org"}}
    )
    await pv.registry_client.update_access(
        org.id, {"owner": owner.name, "groups": {lab: ["metadata-write"]}}
    )
    assert (await pv.registry_client.get_access(org.id)).groups == {lab: ["metadata-write"]}
    mine = await pv.registry_client.my_access(org.id)
    assert mine.owner and mine.sources == ["owner"] and mine.roles[-1] == "admin"
    async with connect(member) as pv_member:
        theirs = await pv_member.registry_client.my_access(org.id)
    assert theirs.roles == ["metadata-read", "metadata-write"]
    assert theirs.sources == [f"group:{lab}"] and not theirs.owner
