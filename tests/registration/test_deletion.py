"""Deleting a registered dataset: mark it deleting, mark each replica absent, then the rows."""

from __future__ import annotations

import httpx
import pytest

from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread
from tests.support.patch_helpers import Held, delete_object, hold, keys, patch_body, s3_repository
from tests.support.registration_db import rows_of
from tests.support.registration_helpers import Lab, Vocabulary, fields, file, register, sha
from tests.support.users import User

pytestmark = pytest.mark.anyio


@pytest.fixture
async def held(
    client: httpx.AsyncClient,
    localstack: LocalStack,
    lab: Lab,
    vocabulary: Vocabulary,
    registry_admin: User,
) -> Held:
    return await hold(
        client, localstack, lab, vocabulary, await s3_repository(client, registry_admin)
    )


async def test_a_deletion_removes_the_records_last_once_no_replica_is_left(
    client: httpx.AsyncClient,
    server: ServerThread,
    localstack: LocalStack,
    lab: Lab,
    vocabulary: Vocabulary,
    held: Held,
) -> None:
    h = lab.member.headers
    url = f"/registered-datasets/{held.dataset}"
    # not marked yet: its records can't go
    early = await client.delete(url, headers=h)
    assert early.status_code == 409 and early.json()["error"]["code"] == "not_deleting"
    marked = await client.post(f"{url}/deletion", headers=h)
    assert marked.status_code == 200 and marked.json()["state"] == "deleting", marked.text
    again = await client.post(f"{url}/deletion", headers=h)
    assert again.status_code == 200 and again.json() == marked.json()
    read = await client.get(url, headers=h)
    assert read.status_code == 200 and read.json()["state"] == "deleting"
    # its content is final now: register, patch, tag and set-default are refused
    before = await rows_of(server, held.session)
    refusals = [
        await register(client, lab.member, held.session, [file(f"alf/{vocabulary.name()}", "x")]),
        await client.post("/patches", json=patch_body(held, "x"), headers=h),
        await client.post(f"{url}/tags", json={"tag": vocabulary.plain_tag}, headers=h),
        await client.post(f"{url}/default", json={}, headers=h),
    ]
    for r in refusals:
        assert r.status_code == 409 and r.json()["error"]["code"] == "dataset_deleting", r.text
    assert await rows_of(server, held.session) == before
    # both replicas are still there
    r = await client.delete(url, headers=h)
    assert r.status_code == 409 and r.json()["error"]["code"] == "replicas_remain", r.text
    assert {d["repository"] for d in r.json()["error"]["details"]} == {held.posix, held.s3}
    # the S3 object is still in the server's bucket: it can't be marked absent
    s3_url = f"{url}/files/{held.s3}"
    present = await client.put(s3_url, json={"exists": False}, headers=h)
    assert present.status_code == 409 and present.json()["error"]["code"] == "object_present"
    await delete_object(localstack, held.s3_prefix + held.s3_path)
    assert (await client.put(s3_url, json={"exists": False}, headers=h)).status_code == 200
    # the POSIX replica is the caller's word
    r = await client.delete(url, headers=h)
    assert r.status_code == 409 and [d["repository"] for d in r.json()["error"]["details"]] == [
        held.posix
    ]
    gone = await client.put(f"{url}/files/{held.posix}", json={"exists": False}, headers=h)
    assert gone.status_code == 200, gone.text
    assert all(not f["exists"] for f in gone.json()["files"])
    assert (await client.delete(url, headers=h)).status_code == 204
    assert (await client.get(url, headers=h)).status_code == 404
    assert await rows_of(server, held.session) == {"datasets": [], "file_records": [], "tags": []}
    assert await keys(localstack, held.s3_prefix) == []


async def test_a_protected_revision_is_not_marked_for_deletion(
    client: httpx.AsyncClient, server: ServerThread, lab: Lab, vocabulary: Vocabulary, held: Held
) -> None:
    h = lab.member.headers
    url = f"/registered-datasets/{held.dataset}"
    tagged = await client.post(f"{url}/tags", json={"tag": vocabulary.protected_tag}, headers=h)
    assert tagged.status_code == 200
    before = await rows_of(server, held.session)
    r = await client.post(f"{url}/deletion", headers=h)
    assert r.status_code == 412 and r.json()["error"]["code"] == "protected", r.text
    assert await rows_of(server, held.session) == before


async def test_a_replica_is_marked_present_only_with_the_revisions_bytes(
    client: httpx.AsyncClient, localstack: LocalStack, lab: Lab, held: Held
) -> None:
    h = lab.member.headers
    s3_url = f"/registered-datasets/{held.dataset}/files/{held.s3}"
    wrong = await client.put(
        s3_url, json={"exists": True, "size": 9, "sha256": sha(held.content)}, headers=h
    )
    assert wrong.status_code == 422 and fields(wrong) == ["size"], wrong.text
    ok = await client.put(
        s3_url,
        json={"exists": True, "size": len(held.content), "sha256": sha(held.content)},
        headers=h,
    )
    assert ok.status_code == 200, ok.text
    record = next(f for f in ok.json()["files"] if f["repository"] == held.s3)
    assert record["exists"] and record["verified_at"] is not None  # the server HEADed it
    # the object gone, the server won't record it present
    await delete_object(localstack, held.s3_prefix + held.s3_path)
    missing = await client.put(
        s3_url,
        json={"exists": True, "size": len(held.content), "sha256": sha(held.content)},
        headers=h,
    )
    assert missing.status_code == 422, missing.text
    unknown = await client.put(
        f"/registered-datasets/{held.dataset}/files/10378.1/999999",
        json={"exists": False},
        headers=h,
    )
    assert unknown.status_code == 404
