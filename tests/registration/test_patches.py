"""``POST /registry/patches``: commit staged content of registered datasets, all or nothing."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable

import anyio
import httpx
import pytest
from sqlalchemy import text

from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread
from tests.support.patch_helpers import (
    Held,
    hold,
    patch_body,
    put_object,
    s3_repository,
    stage,
    staged,
)
from tests.support.registration_db import database, failing_insert, rows_of
from tests.support.registration_helpers import (
    Lab,
    Vocabulary,
    fields,
    file,
    make_lab,
    register,
    sha,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio


@pytest.fixture
async def s3_repo(client: httpx.AsyncClient, registry_admin: User) -> tuple[str, str]:
    """An S3 repository in the server's own bucket (the server HEADs its objects)."""
    return await s3_repository(client, registry_admin)


@pytest.fixture
async def held(
    client: httpx.AsyncClient,
    localstack: LocalStack,
    lab: Lab,
    vocabulary: Vocabulary,
    s3_repo: tuple[str, str],
) -> Held:
    return await hold(client, localstack, lab, vocabulary, s3_repo)


async def patch_rows(server: ServerThread, patch_id: str) -> list[tuple[object, ...]]:
    """The server's rows of a patch (its own row and its files' history rows)."""
    async with database(server) as db:
        own = await db.execute(
            text("SELECT id FROM registration_patches WHERE id = :p"), {"p": patch_id}
        )
        history = await db.execute(
            text("SELECT dataset_id FROM registration_dataset_patches WHERE patch_id = :p"),
            {"p": patch_id},
        )
        return [tuple(r) for r in own] + [tuple(r) for r in history]


async def test_a_commit_switches_every_replica_and_answers_the_old_locations(
    client: httpx.AsyncClient, localstack: LocalStack, lab: Lab, held: Held
) -> None:
    body = patch_body(held, "new content", version="2.0")
    pid = body["patch_id"]
    await stage(localstack, held, pid, "new content")
    r = await client.post("/patches", json=body, headers=lab.member.headers)
    assert r.status_code == 201, r.text
    answer = r.json()
    (patched,) = answer["files"]
    dataset = patched["dataset"]
    assert (dataset["size"], dataset["sha256"]) == (len("new content"), sha("new content"))
    assert dataset["version"] == "2.0" and dataset["state"] == "active"
    records = {f["repository"]: f for f in dataset["files"]}
    assert records[held.s3]["relative_path"] == staged(held.s3_path, pid)
    assert records[held.posix]["relative_path"] == staged(held.posix_path, pid)
    assert all(f["exists"] for f in records.values())
    # the server saw the S3 object itself; the POSIX replica is the caller's claim
    assert records[held.s3]["verified_at"] is not None
    assert records[held.posix]["verified_at"] is None
    old = {f["repository"]: f["relative_path"] for f in patched["old_locations"]}
    assert old == {held.s3: held.s3_path, held.posix: held.posix_path}
    # the revision reads as patched, and its history has the patch
    read = await client.get(f"/registered-datasets/{held.dataset}", headers=lab.member.headers)
    assert read.json()["sha256"] == sha("new content")
    history = await client.get(
        f"/registered-datasets/{held.dataset}/patches", headers=lab.member.headers
    )
    (entry,) = history.json()["items"]
    assert entry["patch_id"] == pid and entry["old_sha256"] == sha("old")
    assert entry["new_sha256"] == sha("new content") and entry["new_version"] == "2.0"
    assert entry["paths"][held.s3] == {"old": held.s3_path, "new": staged(held.s3_path, pid)}
    # a client that lost the answer asks whether the commit happened, or simply retries
    got = await client.get(f"/patches/{pid}", headers=lab.member.headers)
    assert got.status_code == 200 and got.json() == answer
    again = await client.post("/patches", json=body, headers=lab.member.headers)
    assert again.status_code == 200 and again.json() == answer
    # the patch id can't be reused for another request
    other = patch_body(held, "newer", patch_id=pid)
    other["files"][0]["expected_sha256"] = sha("new content")
    reused = await client.post("/patches", json=other, headers=lab.member.headers)
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "patch_id_used"
    never = await client.get(f"/patches/{uuid.uuid4()}", headers=lab.member.headers)
    assert never.status_code == 404


async def test_refusals_name_the_field_and_change_nothing(
    client: httpx.AsyncClient,
    server: ServerThread,
    localstack: LocalStack,
    lab: Lab,
    held: Held,
    new_user: Callable[..., User],
) -> None:
    before = await rows_of(server, held.session)
    headers = lab.member.headers

    async def refused(body: dict[str, object], status: int) -> httpx.Response:
        r = await client.post("/patches", json=body, headers=headers)
        assert r.status_code == status, r.text
        assert await rows_of(server, held.session) == before
        assert await patch_rows(server, str(body["patch_id"])) == []
        return r

    # a location whose bytes are not the file's
    body = patch_body(held, "new")
    body["files"][0]["locations"][1]["sha256"] = sha("other")
    assert fields(await refused(body, 422)) == ["files.0.locations.1"]
    # a repository holding the revision is given no location: its replica would go stale
    body = patch_body(held, "new")
    body["files"][0]["locations"].pop(0)
    await stage(localstack, held, body["patch_id"], "new")
    r = await refused(body, 422)
    assert fields(r) == ["files.0.locations"]
    assert r.json()["error"]["details"][0]["repository"] == held.posix
    # the S3 location in the server's bucket has no object there (nothing was staged)
    r = await refused(patch_body(held, "new"), 422)
    assert fields(r) == ["files.0.locations.1"]
    assert r.json()["error"]["details"][0]["type"] == "location_not_verified"
    # ... or an object with other bytes
    body = patch_body(held, "new")
    await stage(localstack, held, body["patch_id"], "wen")
    assert fields(await refused(body, 422)) == ["files.0.locations.1"]
    # the revision changed since the client read it
    body = patch_body(held, "new")
    body["files"][0]["expected_sha256"] = sha("something else")
    await stage(localstack, held, body["patch_id"], "new")
    r = await refused(body, 409)
    assert r.json()["error"]["code"] == "patch_conflict"
    assert held.dataset in r.json()["error"]["message"]
    # a dataset that doesn't exist, after one that does: 404 naming it
    body = patch_body(held, "new")
    unknown = {**body["files"][0], "dataset": str(uuid.uuid4())}
    body["files"].append(unknown)
    r = await refused(body, 404)
    assert unknown["dataset"] in r.json()["error"]["message"]
    # another lab's member may read nothing of it
    outsider = (await make_lab(client, new_user)).member
    assert (await client.post("/patches", json=body, headers=outsider.headers)).status_code == 404


async def test_md5_is_required_where_a_repository_keeps_md5s(
    client: httpx.AsyncClient,
    server: ServerThread,
    localstack: LocalStack,
    lab: Lab,
    vocabulary: Vocabulary,
    registry_admin: User,
) -> None:
    repo = await s3_repository(client, registry_admin, hashes=["sha256", "md5"])
    session_held = await hold(client, localstack, lab, vocabulary, repo)
    body = patch_body(session_held, "new")
    await stage(localstack, session_held, body["patch_id"], "new")
    r = await client.post("/patches", json=body, headers=lab.member.headers)
    assert r.status_code == 422 and fields(r) == ["files.0.md5"], r.text
    body["files"][0]["md5"] = "0" * 32
    r = await client.post("/patches", json=body, headers=lab.member.headers)
    assert r.status_code == 201, r.text


async def test_a_protected_revision_is_refused_with_or_without_force(
    client: httpx.AsyncClient,
    server: ServerThread,
    localstack: LocalStack,
    lab: Lab,
    vocabulary: Vocabulary,
    held: Held,
) -> None:
    tagged = await client.post(
        f"/registered-datasets/{held.dataset}/tags",
        json={"tag": vocabulary.protected_tag},
        headers=lab.member.headers,
    )
    assert tagged.status_code == 200, tagged.text
    before = await rows_of(server, held.session)
    for force in (False, True):
        body = patch_body(held, "new")
        body["force"] = force
        await stage(localstack, held, body["patch_id"], "new")
        r = await client.post("/patches", json=body, headers=lab.member.headers)
        assert r.status_code == 412 and r.json()["error"]["code"] == "protected", r.text
        assert await rows_of(server, held.session) == before


async def test_a_file_with_default_becomes_its_datasets_default_in_the_commit(
    client: httpx.AsyncClient, localstack: LocalStack, lab: Lab, held: Held
) -> None:
    """How force publishes a new revision: registered not present and not default, then
    committed present and default in one transaction; the other revision is left as it is."""
    headers = lab.member.headers
    name = held.posix_path.rsplit("/", 1)[1]
    new = file(f"alf/#2026-12-06#/{name}", "new", md5=hashlib.md5(b"new").hexdigest())
    for repository in (held.posix, held.s3):
        r = await register(
            client,
            lab.member,
            held.session,
            [new],
            repository=repository,
            exists=False,
            default=False,
        )
        assert r.status_code == 201, r.text
    registered = r.json()["files"][0]["dataset"]
    assert not registered["default"] and not any(f["exists"] for f in registered["files"])
    body = patch_body(held, "new", default=True)
    body["files"][0]["dataset"] = registered["id"]
    body["files"][0]["expected_sha256"] = sha("new")
    await stage(localstack, held, body["patch_id"], "new")
    r = await client.post("/patches", json=body, headers=headers)
    assert r.status_code == 201, r.text
    (patched,) = r.json()["files"]
    assert patched["dataset"]["default"] and all(f["exists"] for f in patched["dataset"]["files"])
    old = (await client.get(f"/registered-datasets/{held.dataset}", headers=headers)).json()
    assert not old["default"] and old["sha256"] == sha(held.content)
    assert {f["relative_path"] for f in old["files"]} == {held.posix_path, held.s3_path}
    # without ``default`` a commit leaves the flags as they are
    back = await client.post(
        f"/registered-datasets/{held.dataset}/default", json={}, headers=headers
    )
    assert back.status_code in (200, 201), back.text
    again = patch_body(held, "newer")
    again["files"][0]["dataset"] = registered["id"]
    again["files"][0]["expected_sha256"] = sha("new")
    await stage(localstack, held, again["patch_id"], "newer")
    r = await client.post("/patches", json=again, headers=headers)
    assert r.status_code == 201, r.text
    assert not r.json()["files"][0]["dataset"]["default"]


async def test_two_commits_of_the_same_revision_one_wins(
    client: httpx.AsyncClient, server: ServerThread, localstack: LocalStack, lab: Lab, held: Held
) -> None:
    bodies = [patch_body(held, text) for text in ("first", "second")]
    for body, text_ in zip(bodies, ("first", "second"), strict=True):
        await stage(localstack, held, body["patch_id"], text_)
    statuses: list[int] = []

    async def commit(body: dict[str, object]) -> None:
        r = await client.post("/patches", json=body, headers=lab.member.headers)
        statuses.append(r.status_code)
        if r.status_code == 409:
            assert r.json()["error"]["code"] == "patch_conflict", r.text

    async with anyio.create_task_group() as tg:
        for body in bodies:
            tg.start_soon(commit, body)
    assert sorted(statuses) == [201, 409]
    read = await client.get(f"/registered-datasets/{held.dataset}", headers=lab.member.headers)
    assert read.json()["sha256"] in {sha("first"), sha("second")}
    history = await client.get(
        f"/registered-datasets/{held.dataset}/patches", headers=lab.member.headers
    )
    assert len(history.json()["items"]) == 1


async def test_a_failure_in_the_middle_of_a_commit_changes_nothing(
    client: httpx.AsyncClient,
    server: ServerThread,
    localstack: LocalStack,
    lab: Lab,
    vocabulary: Vocabulary,
    s3_repo: tuple[str, str],
) -> None:
    one = await hold(client, localstack, lab, vocabulary, s3_repo)
    two = await hold(client, localstack, lab, vocabulary, s3_repo)
    body = patch_body(one, "new")
    pid = body["patch_id"]
    body["files"] += patch_body(two, "new", patch_id=pid)["files"]
    for h in (one, two):
        await stage(localstack, h, pid, "new")
    before = [await rows_of(server, h.session) for h in (one, two)]
    # the history row of the second file is refused by the database: the first file's
    # dataset row, file records and history were written already in the transaction
    async with failing_insert(
        server, "registration_dataset_patches", f"NEW.dataset_id = '{two.dataset}'"
    ):
        r = await client.post("/patches", json=body, headers=lab.member.headers)
    assert r.status_code >= 400, r.text
    assert [await rows_of(server, h.session) for h in (one, two)] == before
    assert await patch_rows(server, pid) == []
    ok = await client.post("/patches", json=body, headers=lab.member.headers)
    assert ok.status_code == 201, ok.text
    assert len(await patch_rows(server, pid)) == 3


async def test_a_path_another_record_has_is_a_conflict(
    client: httpx.AsyncClient,
    server: ServerThread,
    localstack: LocalStack,
    lab: Lab,
    vocabulary: Vocabulary,
    s3_repo: tuple[str, str],
) -> None:
    one = await hold(client, localstack, lab, vocabulary, s3_repo)
    two = await hold(client, localstack, lab, vocabulary, s3_repo)
    body = patch_body(one, "new")
    await stage(localstack, one, body["patch_id"], "new")
    body["files"][0]["locations"][0]["relative_path"] = two.posix_path  # two's replica
    before = await rows_of(server, one.session)
    r = await client.post("/patches", json=body, headers=lab.member.headers)
    assert r.status_code == 409 and r.json()["error"]["code"] == "patch_conflict", r.text
    assert await rows_of(server, one.session) == before
    assert await patch_rows(server, body["patch_id"]) == []


async def test_a_location_in_a_repository_without_a_record_adds_one(
    client: httpx.AsyncClient,
    localstack: LocalStack,
    lab: Lab,
    registry_admin: User,
    held: Held,
) -> None:
    """A patch may also place the file in a repository that had no record of it: the
    commit adds the record (verified where the server HEADed it), and nothing to clean up."""
    other, prefix = await s3_repository(client, registry_admin)
    body = patch_body(held, "new")
    pid = body["patch_id"]
    path = staged(held.s3_path, pid)
    (entry,) = body["files"]
    entry["locations"].append(
        {"repository": other, "relative_path": path, "size": 3, "sha256": sha("new")}
    )
    await stage(localstack, held, pid, "new")
    await put_object(localstack, prefix + path, b"new")
    r = await client.post("/patches", json=body, headers=lab.member.headers)
    assert r.status_code == 201, r.text
    (patched,) = r.json()["files"]
    records = {f["repository"]: f for f in patched["dataset"]["files"]}
    assert set(records) == {held.posix, held.s3, other}
    assert records[other]["relative_path"] == path and records[other]["exists"]
    assert records[other]["verified_at"] is not None
    assert {f["repository"] for f in patched["old_locations"]} == {held.posix, held.s3}
    history = await client.get(
        f"/registered-datasets/{held.dataset}/patches", headers=lab.member.headers
    )
    (step,) = history.json()["items"]
    assert step["paths"][other] == {"old": None, "new": path}
