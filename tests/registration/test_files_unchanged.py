"""Re-registering unchanged files: every check runs, nothing is written when nothing changes."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import text

from provena_like.testing.server_thread import ServerThread
from tests.support.registration_db import database, rows_of, writer_turns
from tests.support.registration_helpers import Lab, Vocabulary, file, make_session, register

pytestmark = pytest.mark.anyio


async def test_an_unchanged_re_registration_writes_nothing(
    client: httpx.AsyncClient, server: ServerThread, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    files = [file(f"alf/{vocabulary.name()}", "a"), file(f"alf/{vocabulary.name('intervals')}")]
    first = await register(client, lab.member, ses, files, repository=vocabulary.repository)
    assert first.status_code == 201, first.text
    before, turns = await rows_of(server, ses), await writer_turns(server, ses)
    assert turns == 1
    for default in (True, False):  # False: the flags stay as they are, so nothing changes
        again = await register(
            client, lab.member, ses, files, repository=vocabulary.repository, default=default
        )
        assert again.status_code == 201, again.text
        entries = again.json()["files"]
        assert [f["status"] for f in entries] == ["unchanged", "unchanged"]
        # the answer is the revision as it is: the same as the first answer's
        assert [f["dataset"] for f in entries] == [f["dataset"] for f in first.json()["files"]]
        assert (await rows_of(server, ses)) == before
        # nothing to write: it didn't queue with the session's writers
        assert await writer_turns(server, ses) == turns


async def test_an_unchanged_file_still_gets_the_flags_and_records_asked_for(
    client: httpx.AsyncClient, server: ServerThread, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    name = vocabulary.name()
    plain, v1 = file(f"alf/{name}", "a"), file(f"alf/#v1#/{name}", "b")
    for f in (plain, v1):
        r = await register(client, lab.member, ses, [f], repository=vocabulary.repository)
        assert r.status_code == 201, r.text
    # unchanged, but the default moves back to it (and off v1)
    r = await register(client, lab.member, ses, [plain], repository=vocabulary.repository)
    (entry,) = r.json()["files"]
    assert entry["status"] == "unchanged" and entry["dataset"]["default"] is True
    rows = await rows_of(server, ses)
    assert sorted((d[4], d[12]) for d in rows["datasets"]) == [("", True), ("v1", False)]
    # unchanged, but the file record follows the request: not in the repository now
    r = await register(
        client, lab.member, ses, [plain], repository=vocabulary.repository, exists=False
    )
    (entry,) = r.json()["files"]
    assert entry["status"] == "unchanged"
    assert [f["exists"] for f in entry["dataset"]["files"]] == [False]
    # one unchanged file and one changed: the changed one is written
    r = await register(client, lab.member, ses, [plain, file(v1["path"], "b2")], default=False)
    assert [f["status"] for f in r.json()["files"]] == ["unchanged", "updated"]
    assert r.json()["files"][1]["dataset"]["sha256"] == file("", "b2")["sha256"]


async def test_an_unchanged_protected_revision_is_refused(
    client: httpx.AsyncClient, server: ServerThread, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    frozen = file(f"alf/{vocabulary.name()}", "a")
    r = await register(client, lab.member, ses, [frozen])
    dataset_id = r.json()["files"][0]["dataset"]["id"]
    tagged = await client.post(
        f"/registered-datasets/{dataset_id}/tags",
        json={"tag": vocabulary.protected_tag},
        headers=lab.member.headers,
    )
    assert tagged.status_code == 200, tagged.text
    before = await rows_of(server, ses)
    # the very same content, nothing would change: still refused, like ONE
    again = await register(client, lab.member, ses, [frozen])
    assert again.status_code == 412, again.text
    (detail,) = again.json()["error"]["details"]
    assert (detail["field"], detail["protected"]) == ("files.0.path", True)
    assert (await rows_of(server, ses)) == before


async def test_a_compact_answer_lists_unchanged_files_by_index_and_id(
    client: httpx.AsyncClient, server: ServerThread, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    names = [f"alf/c{i}/{vocabulary.name()}" for i in range(3)]
    files = [file(path, path) for path in names]
    first = await register(client, lab.member, ses, files, repository=vocabulary.repository)
    assert first.status_code == 201, first.text
    ids = [f["dataset"]["id"] for f in first.json()["files"]]
    assert [f["index"] for f in first.json()["files"]] == [0, 1, 2]
    assert first.json()["unchanged"] is None  # a full answer by default
    before, turns = await rows_of(server, ses), await writer_turns(server, ses)

    # all unchanged, nothing to write: no per-file record at all
    again = await register(
        client, lab.member, ses, files, repository=vocabulary.repository, answer="compact"
    )
    assert again.status_code == 201, again.text
    body = again.json()
    assert body["files"] == []
    assert body["unchanged"] == {"indexes": [0, 1, 2], "ids": ids}
    assert (await rows_of(server, ses)) == before and await writer_turns(server, ses) == turns

    # one changed among unchanged ones: that one in full with its index, in a write
    changed = [files[0], file(names[1], "new content"), files[2]]
    mixed = await register(client, lab.member, ses, changed, answer="compact")
    assert mixed.status_code == 201, mixed.text
    body = mixed.json()
    assert [(f["index"], f["status"]) for f in body["files"]] == [(1, "updated")]
    assert body["files"][0]["dataset"]["sha256"] == file("", "new content")["sha256"]
    assert body["unchanged"] == {"indexes": [0, 2], "ids": [ids[0], ids[2]]}

    # a dry run answers compactly too, and a new file is listed in full
    plan = await register(
        client,
        lab.member,
        ses,
        [*files, file(f"alf/c9/{vocabulary.name()}", "x")],
        answer="compact",
        dry_run=True,
    )
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert [(f["index"], f["status"]) for f in body["files"]] == [
        (1, "updated"),
        (3, "registered"),
    ]
    assert body["unchanged"] == {"indexes": [0, 2], "ids": [ids[0], ids[2]]}


async def test_an_unknown_answer_form_is_refused(
    client: httpx.AsyncClient, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    r = await register(client, lab.member, ses, [file(f"alf/{vocabulary.name()}")], answer="terse")
    assert r.status_code == 422, r.text
    assert r.json()["error"]["details"][0]["field"] == "answer"


async def keeps_record(server: ServerThread, key: str) -> bool:
    """Whether the server keeps an idempotency record for ``key``."""
    async with database(server) as db:
        found = await db.execute(
            text("SELECT count(*) FROM idempotency_records WHERE key = :key"), {"key": key}
        )
        return bool(found.scalar_one())


async def test_a_request_that_changes_nothing_keeps_no_idempotency_record(
    client: httpx.AsyncClient, server: ServerThread, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    files = [file(f"alf/{vocabulary.name()}", "a")]
    wrote, noop = f"reg-{uuid.uuid4().hex}", f"reg-{uuid.uuid4().hex}"
    first = await register(client, lab.member, ses, files, key=wrote)
    assert first.status_code == 201, first.text
    assert await keeps_record(server, wrote)
    # a retry of the request that wrote is a replay of its answer: registered once
    retried = await register(client, lab.member, ses, files, key=wrote)
    assert retried.headers.get("idempotent-replayed") == "true"
    assert retried.json() == first.json()

    again = await register(client, lab.member, ses, files, key=noop)
    assert again.status_code == 201, again.text
    assert [f["status"] for f in again.json()["files"]] == ["unchanged"]
    assert not await keeps_record(server, noop)
    # its retry runs the checks again: nothing changed, so it answers the same
    before = await rows_of(server, ses)
    retry = await register(client, lab.member, ses, files, key=noop)
    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers
    assert retry.json() == again.json()
    assert (await rows_of(server, ses)) == before
    assert not await keeps_record(server, noop)
