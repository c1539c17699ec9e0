"""``POST .../files/check-unchanged``: a digest of a registration's files, not the files.

``unchanged`` only when the files are exactly the session's registered revisions and their
registration would pass every check and write nothing; every change is seen.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from provena_like.models.registration import files_digest
from provena_like.testing.server_thread import ServerThread
from tests.support.registration_db import rows_of, writer_turns
from tests.support.registration_helpers import (
    Lab,
    Vocabulary,
    create_item,
    file,
    make_session,
    register,
    unique,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio


async def check(
    client: httpx.AsyncClient,
    user: User,
    session: str,
    files: list[dict[str, Any]],
    **options: Any,
) -> httpx.Response:
    """The unchanged check of registering ``files`` (``register``'s bodies) with ``options``."""
    body = {
        "count": len(files),
        "digest": files_digest((f["path"], f["sha256"]) for f in files),
        **options,
    }
    return await client.post(
        f"/sessions/{session}/files/check-unchanged", json=body, headers=user.headers
    )


async def unchanged(
    client: httpx.AsyncClient, user: User, session: str, files: list[dict[str, Any]], **options: Any
) -> bool:
    r = await check(client, user, session, files, **options)
    assert r.status_code == 200, r.text
    found: bool = r.json()["unchanged"]
    assert found == (r.json()["reason"] is None)
    return found


async def test_the_registered_files_are_unchanged_and_nothing_is_written(
    client: httpx.AsyncClient, server: ServerThread, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    files = [
        file(f"alf/c{i}/{vocabulary.name()}", f"content {i}", version="1.0") for i in (2, 0, 1)
    ]
    first = await register(client, lab.member, ses, files, repository=vocabulary.repository)
    assert first.status_code == 201, first.text
    by_path = {f["path"]: f["dataset"]["id"] for f in first.json()["files"]}
    before, turns = await rows_of(server, ses), await writer_turns(server, ses)

    r = await check(client, lab.member, ses, files, repository=vocabulary.repository)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "session": ses,
        "unchanged": True,
        "ids": [by_path[path] for path in sorted(by_path)],  # by sorted path
        "reason": None,
    }
    # the files in another order, and another version: the same registration (the version
    # of an unchanged file stays as registered)
    assert await unchanged(
        client, lab.member, ses, files[::-1], repository=vocabulary.repository, versions=["2.0"]
    )
    assert (await rows_of(server, ses)) == before and await writer_turns(server, ses) == turns
    # and the registration itself agrees: every file unchanged, nothing written
    again = await register(
        client, lab.member, ses, files, repository=vocabulary.repository, answer="compact"
    )
    assert again.json()["files"] == [] and (await rows_of(server, ses)) == before


async def test_every_change_of_the_files_is_seen(
    client: httpx.AsyncClient, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    name = vocabulary.name()
    files = [file(f"alf/{name}", "a"), file(f"alf/probe/{name}", "b")]
    r = await register(client, lab.member, ses, files)
    assert r.status_code == 201, r.text
    assert await unchanged(client, lab.member, ses, files)

    changed_byte = [files[0], file(files[1]["path"], "B")]
    added = [*files, file(f"alf/other/{name}", "c")]
    removed = files[:1]
    other_revision = [files[0], file(f"alf/probe/#v2#/{name}", "b")]
    other_type = [files[0], file(f"alf/probe/{vocabulary.name('intervals')}", "b")]
    for changed in (changed_byte, added, removed, other_revision, other_type):
        assert not await unchanged(client, lab.member, ses, changed)
    # and their registrations do write
    r = await register(client, lab.member, ses, changed_byte)
    assert [f["status"] for f in r.json()["files"]] == ["unchanged", "updated"]
    assert await unchanged(client, lab.member, ses, changed_byte)


async def test_flags_and_file_records_the_registration_would_change_are_seen(
    client: httpx.AsyncClient, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    name = vocabulary.name()
    plain, v1 = file(f"alf/{name}", "a"), file(f"alf/#v1#/{name}", "b")
    repository = vocabulary.repository
    for f in (plain, v1):  # v1, registered last, is the default
        r = await register(client, lab.member, ses, [f], repository=repository)
        assert r.status_code == 201, r.text
    both = [plain, v1]
    # two revisions of one dataset: which one a registration makes the default depends on
    # their order, which a digest doesn't have
    assert not await unchanged(client, lab.member, ses, both, repository=repository)
    # without ``default`` the flags stay as they are: unchanged
    assert await unchanged(client, lab.member, ses, both, repository=repository, default=False)
    # no repository, no file record to write
    assert await unchanged(client, lab.member, ses, both, default=False, exists=False)
    # the file records would change: not in the repository any more
    assert not await unchanged(
        client, lab.member, ses, both, repository=repository, default=False, exists=False
    )


async def test_a_refused_registration_is_not_unchanged(
    client: httpx.AsyncClient,
    lab: Lab,
    vocabulary: Vocabulary,
    registry_admin: User,
) -> None:
    ses = await make_session(client, lab)
    files = [file(f"alf/{vocabulary.name()}", "a")]
    r = await register(client, lab.member, ses, files)
    dataset_id = r.json()["files"][0]["dataset"]["id"]
    # a repository that keeps md5s: the registration needs them
    md5s = await create_item(
        client,
        registry_admin,
        "repository",
        {"name": unique("md5repo"), "kind": "posix", "root": "/data", "hashes": ["sha256", "md5"]},
    )
    assert not await unchanged(client, lab.member, ses, files, repository=md5s["id"])
    # protected: the registration is refused with 412 (even for the same content)
    tagged = await client.post(
        f"/registered-datasets/{dataset_id}/tags",
        json={"tag": vocabulary.protected_tag},
        headers=lab.member.headers,
    )
    assert tagged.status_code == 200, tagged.text
    r = await check(client, lab.member, ses, files)
    assert (r.json()["unchanged"], r.json()["ids"]) == (False, [])
    assert "protected" in r.json()["reason"]
    assert (await register(client, lab.member, ses, files)).status_code == 412


async def test_it_refuses_like_a_registration(
    client: httpx.AsyncClient,
    lab: Lab,
    vocabulary: Vocabulary,
    new_user: Callable[..., User],
) -> None:
    ses = await make_session(client, lab)
    files = [file(f"alf/{vocabulary.name()}", "a")]
    assert (await register(client, lab.member, ses, files)).status_code == 201
    outsider = new_user("outsider")
    assert (await check(client, outsider, ses, files)).status_code in (403, 404)
    r = await check(client, lab.member, ses, files, session_path="someone/2026-12-06/001")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["type"] == "session_mismatch"
    r = await check(client, lab.member, ses, files, versions=["x" * 65])
    assert r.status_code == 422, r.text
    r = await check(client, lab.member, ses, files, repository="10378.1/999999999")
    assert r.status_code in (404, 422), r.text


async def test_a_file_whose_dataset_type_no_longer_matches_is_not_unchanged(
    client: httpx.AsyncClient, lab: Lab, vocabulary: Vocabulary, registry_admin: User
) -> None:
    ses = await make_session(client, lab)
    files = [file(f"alf/{vocabulary.name()}", "a")]
    assert (await register(client, lab.member, ses, files)).status_code == 201
    assert await unchanged(client, lab.member, ses, files)
    # a second dataset type matching the file's name: the registration would refuse it
    await create_item(
        client,
        registry_admin,
        "dataset_type",
        {"name": f"{vocabulary.obj}.timesagain", "filename_pattern": f"*{vocabulary.obj}.times.*"},
    )
    r = await check(client, lab.member, ses, files)
    assert r.json()["unchanged"] is False and "refused" in r.json()["reason"]
    refused = await register(client, lab.member, ses, files)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"][0]["type"] == "ambiguous_dataset_type"
