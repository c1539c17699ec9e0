"""Lock-down while PENDING / RELEASED / locked, concurrent steps, and notifiers that fail."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import anyio
import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from provena_like.server.notifications import ReleaseNotice
from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread
from tests.support.review_helpers import Refs, User, changed, ds, item, mint, outcome, record, step

pytestmark = pytest.mark.anyio

BODY = b"t,temp\n0,21.5\n"


def put_object(stack: LocalStack, creds: dict[str, Any], path: str) -> None:
    """PUT an object into the dataset with scoped credentials (as any S3 tool would)."""
    assert stack.s3 is not None
    s3 = boto3.client(
        "s3",
        endpoint_url=stack.s3.endpoint_url,
        region_name=stack.s3.region,
        aws_access_key_id=creds["access_key_id"],
        aws_secret_access_key=creds["secret_access_key"],
        aws_session_token=creds["session_token"],
        config=Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}),
    )
    try:
        s3.put_object(Bucket=creds["bucket"], Key=creds["prefix"] + path, Body=BODY)
    finally:
        s3.close()


def registration(path: str) -> dict[str, Any]:
    return {
        "files": [{"path": path, "size": len(BODY), "sha256": hashlib.sha256(BODY).hexdigest()}]
    }


async def write_credentials(api: httpx.AsyncClient, user: User, dsid: str) -> httpx.Response:
    return await api.post(ds(dsid, "/credentials"), json={"access": "write"}, headers=user.headers)


async def assert_frozen(
    api: httpx.AsyncClient, owner: User, refs: Refs, dsid: str, code: str
) -> None:
    """Data, manifest and metadata refuse to change, each with ``code``."""
    r = await write_credentials(api, owner, dsid)
    assert outcome(r) == (409, code), r.text
    r = await api.post(ds(dsid, "/files"), json=registration("late.csv"), headers=owner.headers)
    assert outcome(r) == (409, code), r.text
    r = await api.post(
        ds(dsid, "/files/remove"), json={"paths": ["late.csv"]}, headers=owner.headers
    )
    assert outcome(r) == (409, code), r.text
    body = {"record": changed(record(refs), name="Changed"), "reason": "edit"}
    r = await api.put(ds(dsid), json=body, headers=owner.headers)
    assert outcome(r) == (409, code), r.text
    r = await api.get(item(dsid, "/history"), headers=owner.headers)
    first = r.json()["items"][-1]["id"]
    r = await api.post(
        ds(dsid, "/revert"), json={"history_id": first, "reason": "undo"}, headers=owner.headers
    )
    assert outcome(r) == (409, code), r.text
    r = await api.post(ds(dsid, "/credentials"), json={"access": "read"}, headers=owner.headers)
    assert r.status_code == 200  # reading goes on


async def test_pending_and_released_freeze_data_manifest_and_metadata(
    api: httpx.AsyncClient, owner: User, reviewer: User, refs: Refs, localstack: LocalStack
) -> None:
    dsid = (await mint(api, owner, record(refs)))["id"]
    r = await write_credentials(api, owner, dsid)
    assert r.status_code == 200
    early = r.json()
    lifetime = (datetime.fromisoformat(early["expiration"]) - datetime.now(UTC)).total_seconds()
    assert 880 < lifetime <= 905  # write credentials are short-lived
    await anyio.to_thread.run_sync(put_object, localstack, early, "a.csv")
    r = await api.post(ds(dsid, "/files"), json=registration("a.csv"), headers=owner.headers)
    assert r.status_code == 200, r.text

    r = await step(api, owner, dsid, "request", reviewer=reviewer.name, notes="ready")
    assert r.status_code == 200
    # Credentials issued before the request can't be revoked, but the store's bucket policy
    # refuses their writes from now on (tests/security/test_locked_data.py has the details).
    with pytest.raises(ClientError, match="AccessDenied"):
        await anyio.to_thread.run_sync(put_object, localstack, early, "late.csv")
    await assert_frozen(api, owner, refs, dsid, "under_review")

    r = await step(api, reviewer, dsid, "approve", notes="ok")
    assert r.status_code == 200
    await assert_frozen(api, owner, refs, dsid, "released")
    r = await api.get(ds(dsid, "/files"), headers=owner.headers)
    assert [f["path"] for f in r.json()["items"]] == ["a.csv"]

    # a new version is the way to change a released dataset
    r = await api.post(
        ds(dsid, "/version"), json={"reason": "fix", "copy_files": True}, headers=owner.headers
    )
    assert r.status_code == 201, r.text
    new = r.json()["dataset"]
    assert new["release_status"] == "NOT_RELEASED"
    assert (await write_credentials(api, owner, new["id"])).status_code == 200


async def test_a_lock_freezes_data_and_metadata(
    api: httpx.AsyncClient, owner: User, refs: Refs
) -> None:
    dsid = (await mint(api, owner, record(refs)))["id"]
    r = await api.post(item(dsid, "/lock"), json={"reason": "audit"}, headers=owner.headers)
    assert r.status_code == 200
    await assert_frozen(api, owner, refs, dsid, "locked")
    r = await api.post(item(dsid, "/unlock"), json={"reason": "done"}, headers=owner.headers)
    assert r.status_code == 200
    assert (await write_credentials(api, owner, dsid)).status_code == 200
    r = await api.get(item(dsid, "/lock-history"), headers=owner.headers)
    assert [e["action"] for e in r.json()] == ["lock", "unlock"]


async def concurrently(n: int, call: Callable[[], Any]) -> list[httpx.Response]:
    responses: list[httpx.Response] = []

    async def one() -> None:
        responses.append(await call())

    async with anyio.create_task_group() as group:
        for _ in range(n):
            group.start_soon(one)
    return responses


async def test_concurrent_steps_exactly_one_wins(
    api: httpx.AsyncClient, owner: User, reviewer: User, refs: Refs
) -> None:
    dsid = (await mint(api, owner, record(refs)))["id"]
    requests = await concurrently(
        6, lambda: step(api, owner, dsid, "request", reviewer=reviewer.name, notes="go")
    )
    assert sorted(outcome(r) for r in requests) == [(200, None)] + [(409, "under_review")] * 5

    approvals = await concurrently(8, lambda: step(api, reviewer, dsid, "approve", notes="ok"))
    assert sorted(outcome(r) for r in approvals) == [(200, None)] + [(409, "released")] * 7
    r = await api.get(ds(dsid, "/release/history"), headers=owner.headers)
    assert [e["action"] for e in r.json()["items"]] == ["request", "approve"]

    # approve against reject: one decision stands
    dsid = (await mint(api, owner, record(refs)))["id"]
    await step(api, owner, dsid, "request", reviewer=reviewer.name, notes="go")
    results: dict[str, httpx.Response] = {}

    async def decide(action: str) -> None:
        results[action] = await step(api, reviewer, dsid, action, notes="decided")

    async with anyio.create_task_group() as group:
        group.start_soon(decide, "approve")
        group.start_soon(decide, "reject")
    wins = [a for a, r in results.items() if r.status_code == 200]
    assert len(wins) == 1
    loser = results["reject" if wins == ["approve"] else "approve"]
    assert outcome(loser) in {(409, "released"), (409, "not_under_review")}


class Recording:
    def __init__(self) -> None:
        self.notices: list[ReleaseNotice] = []

    async def notify(self, notice: ReleaseNotice) -> None:
        self.notices.append(notice)


class Failing:
    def __init__(self) -> None:
        self.calls = 0

    async def notify(self, notice: ReleaseNotice) -> None:
        del notice
        self.calls += 1
        raise RuntimeError("the mail server is down")


@contextmanager
def notifier(server: ServerThread, replacement: Any) -> Iterator[None]:
    """Swap the app's notifier (on the server's own loop) for the duration."""

    async def swap(new: Any) -> Any:
        old = server.app.state.notifier
        server.app.state.notifier = new
        return old

    previous = server.call(lambda: swap(replacement))
    try:
        yield
    finally:
        server.call(lambda: swap(previous))


async def eventually(check: Callable[[], bool]) -> None:
    with anyio.fail_after(5):
        while not check():
            await anyio.sleep(0.01)


async def test_every_step_is_notified_after_its_commit(
    api: httpx.AsyncClient, server: ServerThread, owner: User, reviewer: User, refs: Refs
) -> None:
    recording = Recording()
    dsid = (await mint(api, owner, record(refs, name="Notified")))["id"]
    with notifier(server, recording):
        await step(api, owner, dsid, "request", reviewer=reviewer.name, notes="please")
        await step(api, reviewer, dsid, "reject", notes="licence?")
        await step(api, owner, dsid, "request", reviewer=reviewer.name, notes="again")
        await step(api, owner, dsid, "withdraw", notes="oops")
        await step(api, owner, dsid, "request", reviewer=reviewer.name, notes="third")
        key = {"Idempotency-Key": "approve-once"}
        first = await api.post(
            ds(dsid, "/release/approve"), json={"notes": "ok"}, headers={**reviewer.headers, **key}
        )
        again = await api.post(
            ds(dsid, "/release/approve"), json={"notes": "ok"}, headers={**reviewer.headers, **key}
        )
        assert first.status_code == again.status_code == 200
        assert again.headers["idempotent-replayed"] == "true"
        await eventually(lambda: len(recording.notices) >= 6)
        await anyio.sleep(0.1)  # a replayed step must not notify again
    assert [(n.action, n.status) for n in recording.notices] == [
        ("request", "PENDING"),
        ("reject", "NOT_RELEASED"),
        ("request", "PENDING"),
        ("withdraw", "NOT_RELEASED"),
        ("request", "PENDING"),
        ("approve", "RELEASED"),
    ]
    last = recording.notices[-1]
    assert (last.dataset_id, last.dataset_name) == (dsid, "Notified")
    assert (last.actor, last.reviewer, last.requester) == (reviewer.name, reviewer.name, owner.name)
    assert last.notes == "ok" and last.time.tzinfo is not None


async def test_a_failing_notifier_changes_nothing(
    api: httpx.AsyncClient,
    server: ServerThread,
    owner: User,
    reviewer: User,
    refs: Refs,
    caplog: pytest.LogCaptureFixture,
) -> None:
    failing = Failing()
    dsid = (await mint(api, owner, record(refs)))["id"]
    caplog.set_level(logging.ERROR, logger="provena_like.server.notifications")
    with notifier(server, failing):
        r = await step(api, owner, dsid, "request", reviewer=reviewer.name, notes="please")
        assert r.status_code == 200 and r.json()["release_status"] == "PENDING"
        r = await step(api, reviewer, dsid, "approve", notes="ok")
        assert r.status_code == 200 and r.json()["release_status"] == "RELEASED"
        await eventually(lambda: failing.calls == 2)
    r = await api.get(ds(dsid), headers=owner.headers)
    assert r.json()["release_status"] == "RELEASED"
    r = await api.get(ds(dsid, "/release/history"), headers=owner.headers)
    assert [e["action"] for e in r.json()["items"]] == ["request", "approve"]
    await eventually(lambda: sum("the notifier" in rec.getMessage() for rec in caplog.records) == 2)
    assert any(
        "the mail server is down" in (rec.exc_text or "") or rec.exc_info for rec in caplog.records
    )


async def test_write_credentials_never_outlive_the_cap(
    api: httpx.AsyncClient, owner: User, refs: Refs
) -> None:
    dsid = (await mint(api, owner, record(refs)))["id"]
    for asked in (None, 60, 899, 900, 3600):
        body = {"access": "write", **({"duration_seconds": asked} if asked else {})}
        r = await api.post(ds(dsid, "/credentials"), json=body, headers=owner.headers)
        assert r.status_code == 200, r.text
        expiration = datetime.fromisoformat(r.json()["expiration"])
        assert (expiration - datetime.now(UTC)).total_seconds() <= 905, asked
    body = {"access": "read", "duration_seconds": 3600}
    r = await api.post(ds(dsid, "/credentials"), json=body, headers=owner.headers)
    expiration = datetime.fromisoformat(r.json()["expiration"])
    assert (expiration - datetime.now(UTC)).total_seconds() > 3500  # reading: up to 1 h
