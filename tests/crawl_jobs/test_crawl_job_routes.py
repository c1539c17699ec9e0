"""Server-side crawl jobs over the HTTP API: start, status, flush/ack delivery, cancel, access."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import anyio
import httpx
import pytest

from provena_like.testing.server_thread import ServerThread
from tests.support.crawl_jobs import (
    TREE,
    VISIBLE,
    deep_tree,
    drain,
    finished,
    tree_collection,
    wait_job,
)
from tests.support.transfer import new_root, register_collection
from tests.support.users import User

pytestmark = pytest.mark.anyio


async def _start(http: httpx.AsyncClient, user: User, body: dict[str, object]) -> dict[str, object]:
    r = await http.post("/crawl/jobs", json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    job: dict[str, object] = r.json()
    return job


async def test_a_crawl_job_counts_groups_and_delivers_every_record_once_acked(
    server: ServerThread, http: httpx.AsyncClient, admin: User, new_user: Callable[..., User]
) -> None:
    alice = new_user("alice")
    cid, _root = await tree_collection(server, admin, TREE)
    started = await _start(http, alice, {"source": {"collection": cid}, "grouper": "alf_object"})
    assert started["state"] in ("queued", "running") and started["owner"] == alice.name
    job = await wait_job(http, alice, str(started["id"]), finished)
    assert job["state"] == "succeeded", job
    assert job["files"] == len(VISIBLE)
    assert job["bytes"] == sum(len(TREE[p]) for p in VISIBLE)
    assert job["errors"] == 0
    # the two ALF files share a group; every other file is alone
    assert job["groups"] == len(VISIBLE) - 1
    assert [e["code"] for e in job["events"]] == ["QUEUED", "STARTED", "SUCCEEDED"]
    assert job["unacked"] == job["records"] == job["files"] + job["groups"]

    url = f"/crawl/jobs/{job['id']}"
    first = (await http.post(f"{url}/flush", json={"limit": 4}, headers=alice.headers)).json()
    assert len(first["records"]) == 4 and first["cursor"] and first["state"] == "succeeded"
    # not acknowledged, but leased: the next flush gets the next records
    second = (await http.post(f"{url}/flush", json={"limit": 4}, headers=alice.headers)).json()
    seqs = [r["seq"] for r in first["records"] + second["records"]]
    assert len(set(seqs)) == 8
    acked = await http.post(f"{url}/ack", json={"cursor": first["cursor"]}, headers=alice.headers)
    assert acked.json() == {"acked": 4}
    again = await http.post(f"{url}/ack", json={"cursor": first["cursor"]}, headers=alice.headers)
    assert again.json() == {"acked": 0}

    # a lease that lapses unacknowledged: delivered again
    short = {"limit": 2, "lease_seconds": 1}
    leased = (await http.post(f"{url}/flush", json=short, headers=alice.headers)).json()
    await anyio.sleep(1.2)
    rest = await drain(http, alice, str(job["id"]), limit=5, held=4)
    by_seq = {r["seq"]: r for r in rest}
    for record in leased["records"]:
        assert by_seq[record["seq"]]["deliveries"] == 2
    # the second page was never acknowledged: its lease (300 s) still holds it
    status = (await http.get(url, headers=alice.headers)).json()
    assert status["unacked"] == 4
    # every record exactly once across the three, in sequence numbers 1..records
    delivered = first["records"] + second["records"] + rest
    assert sorted(r["seq"] for r in delivered) == list(range(1, job["records"] + 1))
    records = [r["record"] for r in delivered]
    assert sorted(r["path"] for r in records if r["kind"] == "file") == VISIBLE
    assert all(r["source"] == f"collection:{cid}/" for r in records)
    groups = {r["key"]: r["files"] for r in records if r["kind"] == "group"}
    assert sorted(groups["alf/_ibl_trials"]) == [p for p in VISIBLE if p.startswith("alf/")]


async def test_options_checksums_and_a_dataset_source_error(
    server: ServerThread, http: httpx.AsyncClient, admin: User, new_user: Callable[..., User]
) -> None:
    alice = new_user("alice")
    cid, _root = await tree_collection(server, admin, TREE)
    body = {
        "source": {"collection": cid, "path": "/raw/"},
        "max_depth": 0,
        "checksums": True,
        "hidden": True,
    }
    job = await wait_job(http, alice, str((await _start(http, alice, body))["id"]), finished)
    assert job["state"] == "succeeded" and job["files"] == 2, job
    records = [r["record"] for r in await drain(http, alice, str(job["id"]))]
    assert sorted(r["path"] for r in records) == ["r1.bin", "r2.bin"]
    assert {r["path"]: r["sha256"] for r in records} == {
        "r1.bin": hashlib.sha256(TREE["raw/r1.bin"]).hexdigest(),
        "r2.bin": hashlib.sha256(TREE["raw/r2.bin"]).hexdigest(),
    }
    # a top that is a file: one error record, and the job still succeeds
    body = {"source": {"collection": cid, "path": "/a.csv"}}
    job = await wait_job(http, alice, str((await _start(http, alice, body))["id"]), finished)
    assert job["state"] == "succeeded" and job["errors"] == 1 and job["files"] == 0
    (error,) = [r["record"] for r in await drain(http, alice, str(job["id"]))]
    assert error["kind"] == "error" and error["reason"] == "not_a_directory"


async def test_only_readers_start_and_only_the_owner_sees_a_job(
    server: ServerThread, http: httpx.AsyncClient, admin: User, new_user: Callable[..., User]
) -> None:
    alice, mallory = new_user("alice"), new_user("mallory")
    private_root = new_root(server, "private")
    (private_root / "x.txt").write_text("x")
    private = await register_collection(server, admin, private_root, "Private")
    r = await http.post(
        "/crawl/jobs",
        json={"source": {"collection": private["collection_id"]}},
        headers=alice.headers,
    )
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", r.text
    r = await http.post(
        "/crawl/jobs", json={"source": {"dataset": "10378.1/99999999"}}, headers=alice.headers
    )
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", r.text
    r = await http.post(
        "/crawl/jobs",
        json={"source": {"collection": private["collection_id"], "dataset": "x/1"}},
        headers=alice.headers,
    )
    assert r.status_code == 422, r.text

    cid, _root = await tree_collection(server, admin, TREE)
    job = await _start(http, alice, {"source": {"collection": cid}})
    url = f"/crawl/jobs/{job['id']}"
    await wait_job(http, alice, str(job["id"]), finished)
    for method, path, body in [
        ("GET", url, None),
        ("POST", f"{url}/flush", {"limit": 5}),
        ("POST", f"{url}/ack", {"cursor": "abc"}),
        ("POST", f"{url}/cancel", None),
    ]:
        r = await http.request(method, path, json=body, headers=mallory.headers)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", (path, r.text)
    mine = (await http.get("/crawl/jobs", headers=alice.headers)).json()["items"]
    assert [j["id"] for j in mine] == [job["id"]]
    assert (await http.get("/crawl/jobs", headers=mallory.headers)).json()["items"] == []
    # a system admin may read anyone's job (but lists only their own)
    assert (await http.get(url, headers=admin.headers)).status_code == 200
    # nothing was delivered to mallory: every record is still there for alice
    assert len(await drain(http, alice, str(job["id"]))) == len(VISIBLE)


async def test_cancel_stops_a_running_crawl_and_keeps_its_records(
    server: ServerThread, http: httpx.AsyncClient, admin: User, new_user: Callable[..., User]
) -> None:
    alice = new_user("alice")
    cid, _root = await tree_collection(server, admin, deep_tree(dirs=40))
    job = await _start(http, alice, {"source": {"collection": cid}, "rate_limit": 4})
    await wait_job(http, alice, str(job["id"]), lambda j: j["files"] > 0)
    url = f"/crawl/jobs/{job['id']}"
    canceled = (await http.post(f"{url}/cancel", headers=alice.headers)).json()
    assert canceled["state"] == "canceled" and canceled["finished_at"], canceled
    assert canceled["events"][-1]["code"] == "CANCELED"
    assert canceled["files"] < 40 * 3
    again = (await http.post(f"{url}/cancel", headers=alice.headers)).json()
    assert again["state"] == "canceled" and len(again["events"]) == len(canceled["events"])
    done = await wait_job(http, alice, str(job["id"]), finished)
    assert done["state"] == "canceled"
    records = await drain(http, alice, str(job["id"]), limit=100)
    assert len(records) == done["records"] >= canceled["records"] > 0
