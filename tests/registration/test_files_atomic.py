"""Registering files is all or nothing: injected failures, protection, bad input, retries."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable

import anyio
import httpx
import pytest

from provena_like import ProvenaClient
from provena_like._core.errors import Forbidden, PreconditionFailed
from provena_like.alf import AlfError, parse_rel_path, resolve_revision
from provena_like.models.registration import MAX_FILES_PER_REQUEST
from provena_like.testing.server_thread import ServerThread
from tests.support.registration_db import failing_insert, rows_of
from tests.support.registration_helpers import (
    Lab,
    Vocabulary,
    create_item,
    file,
    join,
    make_lab,
    make_session,
    register,
    sha,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio


async def test_a_failure_after_half_the_files_changes_nothing(
    client: httpx.AsyncClient, server: ServerThread, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    names = [f"c{i}/{vocabulary.name()}" for i in range(6)]
    first = await register(
        client, lab.member, ses, [file(n, "old") for n in names], repository=vocabulary.repository
    )
    assert first.status_code == 201, first.text
    before = await rows_of(server, ses)
    assert len(before["datasets"]) == 6 and len(before["file_records"]) == 6
    # new revisions of every dataset (each would take the default) and an update of c0;
    # the file record of the fourth new revision is refused by the database
    batch = [file(f"c{i}/#v2#/{vocabulary.name()}", "new") for i in range(6)]
    batch.append(file(names[0], "changed"))
    async with failing_insert(
        server, "registration_file_records", "NEW.relative_path LIKE '%/c3/#v2#/%'"
    ):
        failed = await register(client, lab.member, ses, batch, repository=vocabulary.repository)
    assert failed.status_code >= 400, failed.text
    assert (await rows_of(server, ses)) == before
    # and without the failure the same request goes through
    ok = await register(client, lab.member, ses, batch, repository=vocabulary.repository)
    assert ok.status_code == 201, ok.text
    after = await rows_of(server, ses)
    assert len(after["datasets"]) == 12 and len(after["file_records"]) == 12


async def test_a_protected_revision_refuses_with_412_and_changes_nothing(
    client: httpx.AsyncClient,
    server: ServerThread,
    lab: Lab,
    vocabulary: Vocabulary,
    new_user: Callable[..., User],
    registry_admin: User,
) -> None:
    ses = await make_session(client, lab)
    path, other = f"alf/{vocabulary.name()}", f"alf/{vocabulary.name('intervals')}"
    r = await register(client, lab.member, ses, [file(path, "a"), file(other, "b")])
    protected_id = r.json()["files"][0]["dataset"]["id"]
    v1 = await register(client, lab.member, ses, [file(f"alf/#v1#/{vocabulary.name()}", "c")])
    assert v1.status_code == 201
    await register(client, lab.member, ses, [file(path, "a")])  # '' is the default again
    # only the session lab's members tag its datasets
    outsider = (await make_lab(client, new_user)).member
    refused = await client.post(
        f"/registered-datasets/{protected_id}/tags",
        json={"tag": vocabulary.protected_tag},
        headers=outsider.headers,
    )
    assert refused.status_code in (403, 404), refused.text
    member = await join(new_user, lab)
    tagged = await client.post(
        f"/registered-datasets/{protected_id}/tags",
        json={"tag": vocabulary.protected_tag},
        headers=member.headers,
    )
    assert tagged.status_code == 200, tagged.text
    assert tagged.json()["protected"] is True
    assert tagged.json()["tags"] == [vocabulary.protected_tag]
    before = await rows_of(server, ses)

    # a new file, an update of an unprotected one and the protected one: all refused
    batch = [
        file(f"alf/{vocabulary.obj}.times.{vocabulary.ext}", "changed"),
        file(other, "b2"),
    ]
    answer = await register(client, lab.member, ses, batch)
    assert answer.status_code == 412, answer.text
    error = answer.json()["error"]
    assert error["code"] == "protected"
    first, second = error["details"]
    assert (first["field"], first["protected"]) == ("files.0.path", True)
    assert [(r["revision"], r["protected"], r["default"]) for r in first["revisions"]] == [
        ("v1", False, False),
        ("", True, True),
    ]
    assert second["protected"] is False
    assert (await rows_of(server, ses)) == before
    # a dry run checks protection too (read-only)
    dry = await register(client, lab.member, ses, batch, dry_run=True)
    assert dry.status_code == 412
    # the check route says the same, and resolve_revision picks a free revision from it
    check = await client.post(
        f"/sessions/{ses}/files/check-protected",
        json={"paths": [path, other]},
        headers=lab.member.headers,
    )
    assert check.status_code == 200, check.text
    assert check.json()["protected"] is True
    assert [f["protected"] for f in check.json()["files"]] == [True, False]
    bad = await client.post(
        f"/sessions/{ses}/files/check-protected",
        json={"paths": [path, "alf/#v1#/sub/x.y.z"]},
        headers=lab.member.headers,
    )
    assert bad.status_code == 422
    assert [d["field"] for d in bad.json()["error"]["details"]] == ["paths.1"]
    existing = [(r["revision"], r["protected"]) for r in check.json()["files"][0]["revisions"]]
    new_revision = resolve_revision("", existing, today=datetime.date(2026, 12, 6))
    assert new_revision == "2026-12-06"
    moved = await register(
        client, lab.member, ses, [file(f"alf/#{new_revision}#/{vocabulary.name()}", "changed")]
    )
    assert moved.status_code == 201, moved.text
    assert moved.json()["files"][0]["dataset"]["revision_seq"] == 3
    # a lab member can freeze but not unfreeze: only a registry admin takes the tag off
    frozen = await rows_of(server, ses)
    kept = await client.delete(
        f"/registered-datasets/{protected_id}/tags/{vocabulary.protected_tag}",
        headers=member.headers,
    )
    assert kept.status_code == 403, kept.text
    assert "only a registry admin" in kept.json()["error"]["message"]
    assert (await rows_of(server, ses)) == frozen
    untagged = await client.delete(
        f"/registered-datasets/{protected_id}/tags/{vocabulary.protected_tag}",
        headers=registry_admin.headers,
    )
    assert untagged.status_code == 200 and untagged.json()["protected"] is False
    again = await register(client, lab.member, ses, [file(path, "changed")], default=False)
    assert again.json()["files"][0]["status"] == "updated"


async def test_bad_files_are_refused_naming_the_file_and_the_part(
    client: httpx.AsyncClient,
    server: ServerThread,
    lab: Lab,
    vocabulary: Vocabulary,
    registry_admin: User,
) -> None:
    ses = await make_session(client, lab)
    ambiguous = f"{vocabulary.obj}.amb.{vocabulary.ext}"
    for i in range(2):
        await create_item(
            client,
            registry_admin,
            "dataset_type",
            {"name": f"{vocabulary.obj}.amb{i}", "filename_pattern": f"*{vocabulary.obj}.amb*"},
        )
    not_alf = "alf/#v1#/sub/" + vocabulary.name()
    try:
        parse_rel_path(not_alf)
    except AlfError as err:
        expected_part = err.part
    files = [
        file(f"alf/{vocabulary.name()}"),  # fine
        file(not_alf),
        file(f"alf/{vocabulary.obj}.times.unknownext"),
        file(f"alf/{ambiguous}"),
        file(f"alf/{vocabulary.obj}.nothing.{vocabulary.ext}"),
        file(f"alf/{vocabulary.name()}"),  # twice
    ]
    r = await register(client, lab.member, ses, files)
    assert r.status_code == 422, r.text
    details = r.json()["error"]["details"]
    found = {d["field"]: d for d in details}
    assert sorted(found) == [f"files.{i}.path" for i in range(1, 6)]
    assert found["files.1.path"]["type"] == "invalid_alf_path"
    assert found["files.1.path"]["part"] == expected_part
    assert found["files.2.path"]["type"] == "unknown_data_format"
    assert found["files.2.path"]["part"] == "extension"
    assert found["files.3.path"]["type"] == "ambiguous_dataset_type"
    assert sorted(found["files.3.path"]["candidates"]) == [
        f"{vocabulary.obj}.amb0",
        f"{vocabulary.obj}.amb1",
    ]
    assert found["files.4.path"]["type"] == "no_dataset_type"
    assert found["files.5.path"]["type"] == "duplicate_path"
    assert (await rows_of(server, ses))["datasets"] == []  # not even the good file

    too_many = [file(f"c{i}/{vocabulary.name()}") for i in range(MAX_FILES_PER_REQUEST + 1)]
    r = await register(client, lab.member, ses, too_many)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "files"

    unknown_repo = await register(
        client, lab.member, ses, [file(f"alf/{vocabulary.name()}")], repository="10378.1/999999999"
    )
    assert unknown_repo.status_code == 422
    assert unknown_repo.json()["error"]["details"][0]["field"] == "repository"


async def test_only_the_sessions_lab_registers_its_files(
    client: httpx.AsyncClient,
    lab: Lab,
    vocabulary: Vocabulary,
    new_user: Callable[..., User],
) -> None:
    ses = await make_session(client, lab)
    other = await make_lab(client, new_user)
    # a member of another lab who can read the session is still refused
    share = await client.put(
        f"/items/{ses}/access",
        json={"owner": lab.member.name, "general": ["metadata-read"]},
        headers=lab.member.headers,
    )
    assert share.status_code == 200, share.text
    r = await register(client, other.member, ses, [file(f"alf/{vocabulary.name()}")])
    assert r.status_code == 403, r.text
    assert lab.group in r.json()["error"]["message"]
    nobody = await register(client, lab.member, "10378.1/999999999", [file("a.b.c")])
    assert nobody.status_code == 404


async def test_ten_concurrent_retries_with_one_key_register_once(
    pv: ProvenaClient, client: httpx.AsyncClient, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    files = [file(f"c{i}/{vocabulary.name()}", str(i)) for i in range(20)]
    key = f"reg-{uuid.uuid4().hex}"
    results = []

    async def one() -> None:
        results.append(await pv.registry_client.register_files(ses, files, idempotency_key=key))

    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(one)
    assert len(results) == 10
    assert all(r == results[0] for r in results)
    assert {f.status for f in results[0].files} == {"registered"}
    datasets = [d async for d in pv.registry_client.iter_registered_datasets(session=ses)]
    assert len(datasets) == 20
    assert {d.revision_seq for d in datasets} == {1}
    assert {d.id for d in datasets} == {f.dataset.id for f in results[0].files}


async def test_concurrent_registrations_without_a_shared_key_register_each_file_once(
    pv: ProvenaClient, client: httpx.AsyncClient, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    files = [file(f"c{i}/#v{i % 2}#/{vocabulary.name()}", str(i)) for i in range(10)]
    statuses: list[list[str]] = []

    async def one() -> None:
        result = await pv.registry_client.register_files(ses, files)
        statuses.append([f.status for f in result.files])

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(one)
    assert sorted(statuses) == [["registered"] * 10] + [["unchanged"] * 10] * 4
    datasets = [d async for d in pv.registry_client.iter_registered_datasets(session=ses)]
    assert len(datasets) == 10


async def test_the_client_methods(
    pv: ProvenaClient,
    client: httpx.AsyncClient,
    lab: Lab,
    vocabulary: Vocabulary,
    connect: Callable[[User], ProvenaClient],
    registry_admin: User,
) -> None:
    ses = await make_session(client, lab)
    path = f"alf/{vocabulary.name()}"
    plan = await pv.registry_client.register_files(ses, [file(path, "a")], dry_run=True)
    assert plan.dry_run and plan.files[0].dataset.id is None
    result = await pv.registry_client.register_files(
        ses, [file(path, "a")], repository=vocabulary.repository, exists=False
    )
    dataset = result.files[0].dataset
    assert dataset.rel_path == path and dataset.files[0].exists is False
    newer = await pv.registry_client.register_files(
        ses, [file(f"alf/#v2#/{vocabulary.name()}", "b")]
    )
    assert newer.files[0].dataset.default
    assert dataset.id is not None
    back = await pv.registry_client.set_default(dataset.id)
    assert back.default and back.revision == ""
    assert (await pv.registry_client.get_registered_dataset(dataset.id)).default
    tagged = await pv.registry_client.tag_dataset(dataset.id, vocabulary.protected_tag)
    assert tagged.protected
    check = await pv.registry_client.check_protected(ses, [path])
    assert check.protected and check.files[0].revisions[0].revision == "v2"
    with pytest.raises(PreconditionFailed) as refused:
        await pv.registry_client.register_files(ses, [file(path, "c")])
    assert refused.value.code == "protected"
    with pytest.raises(Forbidden):
        await pv.registry_client.untag_dataset(dataset.id, vocabulary.protected_tag)
    async with connect(registry_admin) as admin:
        untagged = await admin.registry_client.untag_dataset(dataset.id, vocabulary.protected_tag)
    assert not untagged.protected and untagged.tags == []
    page = await pv.registry_client.list_registered_datasets(session=ses, last_before="v1")
    assert [d.revision for d in page.items] == [""]
    assert sha("a") == dataset.sha256


async def test_the_most_files_a_request_may_carry_are_registered(
    client: httpx.AsyncClient, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    deep = "/".join(["collection_folder"] * 8)
    files = [file(f"{deep}/c{i}/{vocabulary.name()}", str(i)) for i in range(MAX_FILES_PER_REQUEST)]
    assert len(json.dumps({"files": files})) > 1024 * 1024  # over the default body limit
    r = await register(client, lab.member, ses, files, repository=vocabulary.repository)
    assert r.status_code == 201, r.text
    assert [f["status"] for f in r.json()["files"]] == ["registered"] * MAX_FILES_PER_REQUEST
    again = await register(client, lab.member, ses, files, dry_run=True)
    assert {f["status"] for f in again.json()["files"]} == {"unchanged"}
