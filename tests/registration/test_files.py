"""Registering files (ALF datasets) of a session: results, defaults, revisions, listing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.registration_helpers import (
    Lab,
    Vocabulary,
    file,
    join,
    listed,
    make_session,
    register,
    sha,
)

pytestmark = pytest.mark.anyio


async def test_register_files_answers_per_file_in_order(
    client: httpx.AsyncClient, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    files = [
        file(f"alf/probe00/{vocabulary.name('intervals')}", "b", md5="0" * 32, version="1.2"),
        file(f"alf/{vocabulary.name()}", "a"),
    ]
    r = await register(client, lab.member, ses, files, repository=vocabulary.repository)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["session"] == ses and body["dry_run"] is False
    first, second = body["files"]
    assert (first["path"], first["status"]) == (files[0]["path"], "registered")
    assert first["dataset"]["collection"] == "alf/probe00"
    assert first["dataset"]["dataset_type"] == vocabulary.intervals_type
    assert first["dataset"]["data_format"] == vocabulary.data_format
    assert first["dataset"]["md5"] == "0" * 32 and first["dataset"]["version"] == "1.2"
    assert second["dataset"]["dataset_type"] == vocabulary.times_type
    for entry in (first, second):
        ds = entry["dataset"]
        assert (ds["revision"], ds["revision_seq"], ds["default"]) == ("", 1, True)
        assert ds["created_by"] == lab.member.name
        (record,) = ds["files"]
        assert record["repository"] == vocabulary.repository
        assert record["exists"] is True and record["verified_at"] is None
        assert record["relative_path"].endswith("/2026-12-06/001/" + entry["path"])
        assert record["relative_path"].startswith(f"{lab.name}/Subjects/")
    # the same again: unchanged, nothing new
    again = await register(client, lab.member, ses, files, repository=vocabulary.repository)
    assert [f["status"] for f in again.json()["files"]] == ["unchanged", "unchanged"]
    assert len(await listed(client, lab.member, session=ses)) == 2
    # another content on the same (unprotected) revision: updated in place
    changed = await register(client, lab.member, ses, [file(files[1]["path"], "new")])
    (entry,) = changed.json()["files"]
    assert entry["status"] == "updated"
    assert entry["dataset"]["sha256"] == sha("new") and entry["dataset"]["revision_seq"] == 1
    assert entry["dataset"]["id"] == second["dataset"]["id"]


async def test_dry_run_plans_and_writes_nothing(
    client: httpx.AsyncClient, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    path = f"alf/{vocabulary.name()}"
    await register(client, lab.member, ses, [file(path, "a")])
    plan = await register(
        client,
        lab.member,
        ses,
        [file(path, "a"), file(f"alf/#v2#/{vocabulary.name()}", "b")],
        dry_run=True,
    )
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert body["dry_run"] is True
    old, new = body["files"]
    assert old["status"] == "unchanged" and old["dataset"]["default"] is False
    assert new["status"] == "registered" and new["dataset"]["id"] is None
    assert (new["dataset"]["revision"], new["dataset"]["revision_seq"]) == ("v2", 2)
    assert new["dataset"]["default"] is True
    rows = await listed(client, lab.member, session=ses)
    assert [(d["revision"], d["default"]) for d in rows] == [("", True)]


async def test_default_flags_and_set_default(
    client: httpx.AsyncClient, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    name = vocabulary.name()
    first = (await register(client, lab.member, ses, [file(f"alf/{name}", "0")])).json()
    for rev in ("2026-12-06", "2026-12-06a"):
        r = await register(client, lab.member, ses, [file(f"alf/#{rev}#/{name}", rev)])
        assert r.status_code == 201, r.text
    rows = await listed(client, lab.member, session=ses)
    assert [(d["revision"], d["revision_seq"], d["default"]) for d in rows] == [
        ("", 1, False),
        ("2026-12-06", 2, False),
        ("2026-12-06a", 3, True),
    ]
    # not default: registered, the default stays where it is
    r = await register(client, lab.member, ses, [file(f"alf/#zz#/{name}", "z")], default=False)
    assert r.json()["files"][0]["dataset"]["default"] is False
    # re-registering an old revision as default makes it default again
    r = await register(client, lab.member, ses, [file(f"alf/#2026-12-06#/{name}", "2026-12-06")])
    assert r.json()["files"][0]["status"] == "unchanged"
    defaults = await listed(client, lab.member, session=ses, default_only=True)
    assert [d["revision"] for d in defaults] == ["2026-12-06"]
    # set_default by id, and by revision name through any revision's id
    dataset_id = first["files"][0]["dataset"]["id"]
    made = await client.post(
        f"/registered-datasets/{dataset_id}/default", json={}, headers=lab.member.headers
    )
    assert made.status_code == 200, made.text
    assert made.json()["default"] is True and made.json()["revision"] == ""
    made = await client.post(
        f"/registered-datasets/{dataset_id}/default",
        json={"revision": "zz"},
        headers=lab.member.headers,
    )
    assert made.json()["revision"] == "zz"
    defaults = await listed(client, lab.member, session=ses, default_only=True)
    assert [d["revision"] for d in defaults] == ["zz"]
    missing = await client.post(
        f"/registered-datasets/{dataset_id}/default",
        json={"revision": "nope"},
        headers=lab.member.headers,
    )
    assert missing.status_code == 404


async def test_revision_order_and_last_before(
    client: httpx.AsyncClient, lab: Lab, vocabulary: Vocabulary
) -> None:
    ses = await make_session(client, lab)
    name = vocabulary.name()
    other = vocabulary.name("intervals")
    for rev in ("", "2020-08-01", "2021-01-01", "2020-09-30"):
        folder = f"#{rev}#/" if rev else ""
        r = await register(client, lab.member, ses, [file(f"alf/{folder}{name}", rev)])
        assert r.status_code == 201, r.text
    await register(client, lab.member, ses, [file(f"alf/{other}", "o")])
    rows = await listed(client, lab.member, session=ses, name=name)
    assert [(d["revision"], d["revision_seq"]) for d in rows] == [
        ("", 1),
        ("2020-08-01", 2),
        ("2021-01-01", 3),
        ("2020-09-30", 4),
    ]

    async def last_before(revision: str) -> list[tuple[str, str]]:
        found = await listed(client, lab.member, session=ses, last_before=revision)
        return [(d["name"], d["revision"]) for d in found]

    # ONE's index_last_before: the newest revision named at or before the one asked for
    # (listed by name: the intervals dataset comes first)
    assert await last_before("2020-09-15") == [(other, ""), (name, "2020-08-01")]
    assert await last_before("2020-10-01") == [(other, ""), (name, "2020-09-30")]
    # every revision is eligible: the newest in the server's order wins (ONE's lexicographic
    # order would pick 2021-01-01, registered before 2020-09-30)
    assert await last_before("2099-01-01") == [(other, ""), (name, "2020-09-30")]
    assert await last_before("") == [(other, ""), (name, "")]
    exact = await listed(client, lab.member, session=ses, revision="2021-01-01")
    assert [d["revision_seq"] for d in exact] == [3]
    both = await listed(
        client, lab.member, session=ses, revision="2020-08-01", last_before="2020-09-15"
    )
    assert [d["revision"] for d in both] == ["2020-08-01"]
    assert await listed(client, lab.member, session=ses, revision="", last_before="2020-09-15") == [
        d for d in await listed(client, lab.member, session=ses, name=other)
    ]


async def test_listing_filters_and_pages(
    client: httpx.AsyncClient, lab: Lab, vocabulary: Vocabulary, new_user: Any
) -> None:
    early = await make_session(client, lab, "2026-11-01")
    late = await make_session(client, lab, "2026-12-24")
    for ses in (early, late):
        files = [file(f"c{i}/{vocabulary.name()}", str(i)) for i in range(3)]
        files.append(file(vocabulary.name("intervals"), "i"))
        assert (await register(client, lab.member, ses, files)).status_code == 201
    by_date = await listed(client, lab.member, date_from="2026-12-01", lab=lab.id)
    assert {d["session"] for d in by_date} == {late}
    typed = await listed(client, lab.member, dataset_type=vocabulary.intervals_type, lab=lab.id)
    assert [(d["session"], d["collection"]) for d in typed] == [(early, ""), (late, "")]
    in_c1 = await listed(client, lab.member, collection="c1", session=late)
    assert [d["collection"] for d in in_c1] == ["c1"]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"lab": lab.id, "page_size": 3}
        if cursor:
            params["cursor"] = cursor
        r = await client.get("/registered-datasets", params=params, headers=lab.member.headers)
        page = r.json()
        seen += [d["id"] for d in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 8
    # someone who can't read the sessions sees none of it
    stranger = new_user("stranger")
    assert await listed(client, stranger, lab=lab.id) == []
    member = await join(new_user, lab)
    assert len(await listed(client, member, lab=lab.id)) == 8
