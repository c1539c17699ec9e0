"""The release state machine over HTTP: every legal step, every illegal one, the history."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import httpx
import pytest

from tests.support.review_helpers import (
    Refs,
    User,
    changed,
    ds,
    error,
    item,
    mint,
    outcome,
    record,
    request_release,
    step,
)

pytestmark = pytest.mark.anyio


def assert_state_conflict(r: httpx.Response, code: str, state: str) -> None:
    assert (r.status_code, error(r)["code"]) == (409, code), r.text
    assert error(r)["details"] == {"state": state}
    assert state in error(r)["message"]


async def test_every_step_and_every_illegal_transition(
    api: httpx.AsyncClient,
    owner: User,
    reviewer: User,
    refs: Refs,
    new_user: Callable[..., User],
) -> None:
    other_reviewer = new_user("other-reviewer", system_roles=("reviewer",))
    dataset = await mint(api, owner, record(refs))
    dsid = dataset["id"]
    assert dataset["release_status"] == "NOT_RELEASED"
    assert dataset["release_reviewer"] is None and dataset["release_time"] is None

    # NOT_RELEASED: nothing to decide or withdraw; a reviewer never named on the dataset
    # (who may not read it) isn't told its state
    for action, who in (("approve", owner), ("reject", owner), ("withdraw", owner)):
        r = await step(api, who, dsid, action, notes="n")
        assert_state_conflict(r, "not_under_review", "NOT_RELEASED")
    for action in ("approve", "reject"):
        r = await step(api, reviewer, dsid, action, notes="n")
        assert outcome(r) == (403, "forbidden"), r.text

    # the reviewer must be a reviewer, and not the requester (an unknown user gets the same
    # answer as a non-reviewer: the request doesn't tell which usernames exist)
    plain = new_user("plain")
    for name, kind in (
        ("nobody-" + plain.name, "not_a_reviewer"),
        (plain.name, "not_a_reviewer"),
        (owner.name, "self_review"),
    ):
        r = await step(api, owner, dsid, "request", reviewer=name, notes="n")
        assert r.status_code == 422, r.text
        (detail,) = error(r)["details"]
        assert (detail["field"], detail["type"]) == ("reviewer", kind)
    r = await step(api, owner, dsid, "request", notes="no reviewer")
    assert r.status_code == 422 and error(r)["details"][0]["field"] == "reviewer"

    # NOT_RELEASED → PENDING
    pending = await request_release(api, owner, dsid, reviewer, notes="first try")
    assert pending["release_status"] == "PENDING"
    assert pending["release_reviewer"] == reviewer.name
    assert pending["release_requester"] == owner.name
    assert datetime.fromisoformat(pending["release_requested_at"]).tzinfo is not None
    assert pending["revision"] == dataset["revision"] + 1  # a step is a change of the dataset

    # PENDING: no second request; only the named reviewer decides; reject needs notes
    r = await step(api, owner, dsid, "request", reviewer=reviewer.name, notes="again")
    assert_state_conflict(r, "under_review", "PENDING")
    for action in ("approve", "reject"):
        r = await step(api, owner, dsid, action, notes="mine?")
        assert outcome(r) == (403, "not_your_review"), action
        assert "Only the reviewer named" in error(r)["message"]
        r = await step(api, other_reviewer, dsid, action, notes="mine?")
        assert outcome(r) == (403, "forbidden"), action  # may not read it: not told it's PENDING
    r = await step(api, reviewer, dsid, "reject", notes="")
    assert r.status_code == 422 and error(r)["details"][0]["field"] == "notes"
    r = await step(api, reviewer, dsid, "reject")
    assert r.status_code == 422

    # PENDING → NOT_RELEASED (rejected)
    r = await step(api, reviewer, dsid, "reject", notes="add the instrument calibration")
    assert r.status_code == 200, r.text
    assert r.json()["release_status"] == "NOT_RELEASED"
    assert r.json()["release_reviewer"] is None and r.json()["release_time"] is None
    r = await step(api, reviewer, dsid, "approve", notes="too late")
    assert_state_conflict(r, "not_under_review", "NOT_RELEASED")

    # PENDING → NOT_RELEASED (withdrawn by the requester)
    await request_release(api, owner, dsid, reviewer, notes="second try")
    r = await step(api, owner, dsid, "withdraw", notes="forgot a file")
    assert outcome(r) == (200, None) and r.json()["release_status"] == "NOT_RELEASED"

    # PENDING → RELEASED
    await request_release(api, owner, dsid, reviewer, notes="third try")
    r = await step(api, reviewer, dsid, "approve", notes="all good")
    assert r.status_code == 200, r.text
    released = r.json()
    assert released["release_status"] == "RELEASED"
    assert released["release_approver"] == reviewer.name
    assert datetime.fromisoformat(released["release_time"]).tzinfo is not None
    assert released["roles"] == []  # the reviewer's read access ended with the decision

    # RELEASED is final
    r = await step(api, owner, dsid, "request", reviewer=reviewer.name, notes="again")
    assert_state_conflict(r, "released", "RELEASED")
    for action, who in (("approve", reviewer), ("reject", reviewer), ("withdraw", owner)):
        r = await step(api, who, dsid, action, notes="n")
        assert_state_conflict(r, "released", "RELEASED")
    r = await api.get(ds(dsid), headers=reviewer.headers)
    assert r.status_code == 403

    # every step is in the history, oldest first
    r = await api.get(ds(dsid, "/release/history"), headers=owner.headers)
    assert r.status_code == 200
    events = r.json()["items"]
    assert [(e["action"], e["status"], e["user"]) for e in events] == [
        ("request", "PENDING", owner.name),
        ("reject", "NOT_RELEASED", reviewer.name),
        ("request", "PENDING", owner.name),
        ("withdraw", "NOT_RELEASED", owner.name),
        ("request", "PENDING", owner.name),
        ("approve", "RELEASED", reviewer.name),
    ]
    assert {e["reviewer"] for e in events} == {reviewer.name}
    assert [e["notes"] for e in events][:2] == ["first try", "add the instrument calibration"]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)

    # paged
    seen, cursor = [], None
    while True:
        params = {"page_size": 4, **({"cursor": cursor} if cursor else {})}
        r = await api.get(ds(dsid, "/release/history"), params=params, headers=owner.headers)
        seen += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == events
    r = await api.get(ds(dsid, "/release/history"), headers=new_user("nosy").headers)
    assert outcome(r) == (403, "forbidden")


async def test_request_refused_while_locked(
    api: httpx.AsyncClient, owner: User, reviewer: User, refs: Refs
) -> None:
    dsid = (await mint(api, owner, record(refs)))["id"]
    r = await api.post(item(dsid, "/lock"), json={"reason": "audit"}, headers=owner.headers)
    assert r.status_code == 200
    r = await step(api, owner, dsid, "request", reviewer=reviewer.name, notes="n")
    assert outcome(r) == (409, "locked")
    r = await api.post(item(dsid, "/unlock"), json={"reason": "done"}, headers=owner.headers)
    assert r.status_code == 200
    await request_release(api, owner, dsid, reviewer)

    # locked while pending: it can't be approved, but it can be rejected
    r = await api.post(item(dsid, "/lock"), json={"reason": "audit"}, headers=owner.headers)
    assert r.status_code == 200
    r = await step(api, reviewer, dsid, "approve", notes="ok")
    assert outcome(r) == (409, "locked") and "rejecting" in error(r)["message"]
    r = await step(api, reviewer, dsid, "reject", notes="fix what the audit finds")
    assert r.status_code == 200 and r.json()["release_status"] == "NOT_RELEASED"


async def test_the_reviewer_reads_while_reviewing_and_lists_it(
    api: httpx.AsyncClient, owner: User, reviewer: User, refs: Refs
) -> None:
    dsid = (await mint(api, owner, record(refs, name="Listed while pending")))["id"]
    params = {"owner": owner.name}
    r = await api.get("/datastore/datasets", params=params, headers=reviewer.headers)
    assert r.json()["items"] == []
    await request_release(api, owner, dsid, reviewer)

    r = await api.get(ds(dsid), headers=reviewer.headers)
    assert r.status_code == 200
    assert r.json()["roles"] == ["metadata-read", "data-read"]  # reading, never writing
    r = await api.get("/datastore/datasets", params=params, headers=reviewer.headers)
    assert [d["id"] for d in r.json()["items"]] == [dsid]
    r = await api.get(
        "/registry/items", params={**params, "subtype": "dataset"}, headers=reviewer.headers
    )
    assert [i["id"] for i in r.json()["items"]] == [dsid]
    r = await api.get(
        "/search/items", params={"q": "listed pending", **params}, headers=reviewer.headers
    )
    assert [h["item"]["id"] for h in r.json()["items"]] == [dsid]
    r = await api.get(ds(dsid, "/files"), headers=reviewer.headers)
    assert r.status_code == 200
    r = await api.get(item(dsid, "/history"), headers=reviewer.headers)
    assert r.status_code == 200
    body = {"record": changed(record(refs), name="Edited by the reviewer"), "reason": "no"}
    r = await api.put(ds(dsid), json=body, headers=reviewer.headers)
    assert outcome(r) == (403, "forbidden")
    r = await api.post(ds(dsid, "/credentials"), json={"access": "read"}, headers=reviewer.headers)
    assert r.status_code == 200
    r = await api.post(ds(dsid, "/credentials"), json={"access": "write"}, headers=reviewer.headers)
    assert outcome(r) == (403, "forbidden")

    r = await step(api, reviewer, dsid, "approve", notes="fine")
    assert r.status_code == 200
    for url in (ds(dsid), item(dsid)):
        assert (await api.get(url, headers=reviewer.headers)).status_code == 403
    r = await api.get("/datastore/datasets", params=params, headers=reviewer.headers)
    assert r.json()["items"] == []
