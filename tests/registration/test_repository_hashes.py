"""A repository's record says which hashes its files carry; the server holds files to it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from provena_like import ProvenaClient
from tests.support.registration_helpers import (
    Lab,
    User,
    Vocabulary,
    create_item,
    fields,
    file,
    make_session,
    register,
    unique,
)
from tests.support.registration_sdk import SdkVocabulary, write_file

pytestmark = pytest.mark.anyio


async def repository(client: httpx.AsyncClient, admin: User, **record: Any) -> dict[str, Any]:
    """A new repository record (readable by everyone signed in), created by ``admin``."""
    body = {"name": unique("repo"), "kind": "posix", "root": "/data", **record}
    return await create_item(client, admin, "repository", body, general=["metadata-read"])


async def test_hashes_default_to_sha256_and_are_validated(
    client: httpx.AsyncClient, registry_admin: User
) -> None:
    plain = await repository(client, registry_admin)
    assert plain["record"]["hashes"] == ["sha256"]
    both = await repository(client, registry_admin, hashes=["md5", "sha256"])
    assert both["record"]["hashes"] == ["sha256", "md5"]  # in a fixed order
    for bad in (["md5"], ["sha256", "sha256"], [], ["crc32"]):
        body = {"name": unique("repo"), "kind": "posix", "root": "/data", "hashes": bad}
        r = await client.post(
            "/items",
            json={"subtype": "repository", "record": body},
            headers=registry_admin.headers,
        )
        assert r.status_code == 422, (bad, r.text)
        assert any(f.startswith("record.hashes") for f in fields(r)), (bad, r.text)


async def test_a_repository_keeping_md5s_refuses_files_without_one(
    client: httpx.AsyncClient, registry_admin: User, lab: Lab, vocabulary: Vocabulary
) -> None:
    md5_repo = await repository(client, registry_admin, hashes=["sha256", "md5"])
    ses = await make_session(client, lab)
    files = [file(f"alf/c{i}/{vocabulary.name()}", str(i)) for i in range(3)]
    files[1]["md5"] = hashlib.md5(b"1").hexdigest()
    r = await register(client, lab.member, ses, files, repository=md5_repo["id"])
    assert r.status_code == 422, r.text
    assert fields(r) == ["files.0.md5", "files.2.md5"]
    assert {d["type"] for d in r.json()["error"]["details"]} == {"md5_required"}
    # with every md5 it registers; without the repository (no file record) md5 isn't needed
    for f in files:
        f["md5"] = hashlib.md5(f["path"].encode()).hexdigest()
    r = await register(client, lab.member, ses, files, repository=md5_repo["id"])
    assert r.status_code == 201, r.text
    other = [file(f"alf/d/{vocabulary.name()}", "no md5")]
    assert (await register(client, lab.member, ses, other)).status_code == 201
    plain = await register(client, lab.member, ses, other, repository=vocabulary.repository)
    assert plain.status_code == 201, plain.text


async def test_register_files_computes_md5_for_a_repository_that_keeps_them(
    client: httpx.AsyncClient,
    registry_admin: User,
    lab_pv: ProvenaClient,
    vocab: SdkVocabulary,
    session_dir: Path,
) -> None:
    md5_repo = await repository(client, registry_admin, hashes=["sha256", "md5"])
    plain_repo = await repository(client, registry_admin)
    md5_repo_name, md5_repo_id = str(md5_repo["record"]["name"]), str(md5_repo["id"])
    one = write_file(session_dir / "alf" / vocab.name(0), b"zero")
    two = write_file(session_dir / "alf" / vocab.name(1), b"one")
    md5s = [hashlib.md5(b"zero").hexdigest(), hashlib.md5(b"one").hexdigest()]
    by_name = await lab_pv.registration.register_files([one, two], repository=md5_repo_name)
    assert [f.status for f in by_name] == ["registered", "registered"], by_name.failed
    assert [f.md5 for f in by_name] == md5s
    assert [f.response.dataset.md5 for f in by_name] == md5s  # the server kept them
    # by handle alike: the record's hashes decide (unchanged now: the same content)
    by_handle = await lab_pv.registration.register_files([one, two], repository=md5_repo_id)
    assert [f.md5 for f in by_handle] == md5s
    assert [f.response.status for f in by_handle] == ["unchanged", "unchanged"]
    # a repository keeping sha256 only: no md5, unless asked for
    three = write_file(session_dir / "alf" / "c" / vocab.name(0), b"three")
    result = await lab_pv.registration.register_files([three], repository=str(plain_repo["id"]))
    assert result[0].status == "registered" and result[0].md5 is None
    forced = await lab_pv.registration.register_files(
        [three], repository=str(plain_repo["id"]), md5=True
    )
    assert forced[0].md5 == hashlib.md5(b"three").hexdigest()
