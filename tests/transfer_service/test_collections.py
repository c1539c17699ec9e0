"""Collections of the transfer service: who may register and use them, and their backends.

Everything runs against the live session server (and its SeaweedFS): collections are
registered through the registry, opened with the principal the server builds from a token,
and their backends called on the server's loop.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

import anyio
import pytest
import sqlalchemy as sa
from alembic import command
from botocore.exceptions import ClientError

from provena_like.models.datastore import AccessLevel
from provena_like.server.datastore.storage import IssuedCredentials, put_object, read_object
from provena_like.server.db.schema import alembic_config
from provena_like.server.transfer.errors import TransferAPIError
from provena_like.server.transfer.index import collection_id
from provena_like.server.transfer.paths import normalise
from provena_like.server.transfer.posix import PosixBackend
from provena_like.server.transfer.s3 import S3Backend
from provena_like.storage.engine import TransferEngine
from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread
from tests.support.datastore_helpers import s3_client, s3_error
from tests.support.fixtures import service_client
from tests.support.transfer import (
    dataset_collection,
    in_server,
    mint_dataset,
    new_root,
    open_as,
    register_collection,
)
from tests.support.users import User

pytestmark = pytest.mark.anyio


def _refused(err: pytest.ExceptionInfo[TransferAPIError], status: int, code: str) -> None:
    assert (err.value.status, err.value.code) == (status, code), err.value.message


async def _all_refused(
    server: ServerThread, cases: list[tuple[Callable[[], Awaitable[object]], int, str]]
) -> None:
    for call, status, code in cases:
        with pytest.raises(TransferAPIError) as err:
            await in_server(server, call)
        _refused(err, status, code)


async def test_only_system_admins_register_collections(
    server: ServerThread, new_user: Callable[..., User], admin: User
) -> None:
    alice = new_user("alice")
    body = {
        "subtype": "transfer_collection",
        "record": {"name": "x", "root": str(new_root(server))},
    }
    async with service_client(server, "registry") as registry:
        r = await registry.post("/items", json=body, headers=alice.headers)
        assert r.status_code == 403, r.text
        assert "system admin" in r.json()["error"]["message"]
        bad = {**body, "record": {"name": "x", "root": "relative/path"}}
        r = await registry.post("/items", json=bad, headers=admin.headers)
        assert r.status_code == 422 and "record.root" in r.text
        r = await registry.post("/items", json=body, headers=admin.headers)
        assert r.status_code == 201, r.text


async def test_posix_access_follows_the_item_roles(
    server: ServerThread, new_user: Callable[..., User], admin: User
) -> None:
    readers, writers = f"readers-{uuid.uuid4().hex[:6]}", f"writers-{uuid.uuid4().hex[:6]}"
    reader = new_user("reader", groups=(readers,))
    writer = new_user("writer", groups=(writers,))
    other = new_user("other")
    root = new_root(server)
    col = await register_collection(
        server, admin, root, groups={readers: ["data-read"], writers: ["data-write"]}
    )
    cid = col["collection_id"]

    owned = await open_as(server, admin, cid, write=True)
    assert owned.kind == "posix" and owned.item_id == col["id"] and owned.writable
    assert isinstance(owned.backend, PosixBackend) and owned.backend.root == root.resolve()
    assert (await open_as(server, reader, cid)).roles[-1] == "data-read"
    assert (await open_as(server, writer, cid, write=True)).writable

    with pytest.raises(TransferAPIError) as err:
        await open_as(server, reader, cid, write=True)
    _refused(err, 403, "EndpointPermissionDenied")
    assert "data-write" in err.value.message
    for write in (False, True):
        with pytest.raises(TransferAPIError) as err:
            await open_as(server, other, cid, write=write)
        _refused(err, 403, "EndpointPermissionDenied")

    for missing in (str(uuid.uuid4()), "not-a-uuid"):
        with pytest.raises(TransferAPIError) as err:
            await open_as(server, admin, missing)
        _refused(err, 404, "ClientError.NotFound")


async def test_a_root_outside_the_transfer_roots_is_refused(
    server: ServerThread, admin: User, tmp_path: Path
) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "secret.txt").write_text("secret")
    col = await register_collection(server, admin, outside)
    with pytest.raises(TransferAPIError) as err:
        await open_as(server, admin, col["collection_id"])
    _refused(err, 403, "EndpointPermissionDenied")
    assert "transfer_roots" in err.value.message

    # a root under the transfer root that is a symlink to elsewhere is outside too
    link = new_root(server).parent / f"link-{uuid.uuid4().hex[:6]}"
    link.symlink_to(outside)
    col = await register_collection(server, admin, link)
    with pytest.raises(TransferAPIError) as err:
        await open_as(server, admin, col["collection_id"])
    _refused(err, 403, "EndpointPermissionDenied")

    gone = new_root(server)
    col = await register_collection(server, admin, gone)
    gone.rmdir()
    with pytest.raises(TransferAPIError) as err:
        await open_as(server, admin, col["collection_id"])
    _refused(err, 502, "ExternalError.CollectionUnavailable")


async def test_a_locked_posix_collection_refuses_writes(server: ServerThread, admin: User) -> None:
    col = await register_collection(server, admin, new_root(server))
    async with service_client(server, "registry") as registry:
        r = await registry.post(
            f"/items/{col['id']}/lock", json={"reason": "audit"}, headers=admin.headers
        )
        assert r.status_code == 200, r.text
    with pytest.raises(TransferAPIError) as err:
        await open_as(server, admin, col["collection_id"], write=True)
    _refused(err, 409, "ClientError.Conflict.Locked")
    assert not (await open_as(server, admin, col["collection_id"])).writable


async def test_every_dataset_is_an_s3_collection(
    server: ServerThread, new_user: Callable[..., User]
) -> None:
    alice, bob = new_user("alice"), new_user("bob")
    dataset = await mint_dataset(server, alice)
    cid = dataset["collection_id"]
    col = await open_as(server, alice, cid, write=True)
    assert col.kind == "s3" and col.item_id == dataset["id"]
    assert isinstance(col.backend, S3Backend)
    assert col.backend.prefix == dataset["storage"]["prefix"]
    assert col.display_name == dataset["display_name"]
    for write in (False, True):
        with pytest.raises(TransferAPIError) as err:
            await open_as(server, bob, cid, write=write)
        _refused(err, 403, "EndpointPermissionDenied")

    # the datastore's rules for data writes apply: a locked dataset is read-only
    async with service_client(server, "registry") as registry:
        r = await registry.post(
            f"/items/{dataset['id']}/lock", json={"reason": "r"}, headers=alice.headers
        )
        assert r.status_code == 200, r.text
    with pytest.raises(TransferAPIError) as err:
        await open_as(server, alice, cid, write=True)
    _refused(err, 409, "ClientError.Conflict.Locked")
    assert (await open_as(server, alice, cid)).kind == "s3"


async def test_dataset_collection_read_access_by_grant(
    server: ServerThread, new_user: Callable[..., User]
) -> None:
    alice, carol = new_user("alice"), new_user("carol")
    dataset = await mint_dataset(server, alice, general=["data-read"])
    col = await open_as(server, carol, dataset["collection_id"])
    assert "data-read" in col.roles
    with pytest.raises(TransferAPIError) as err:
        await open_as(server, carol, dataset["collection_id"], write=True)
    _refused(err, 403, "EndpointPermissionDenied")


async def test_posix_operations(server: ServerThread, admin: User) -> None:
    root = new_root(server)
    (root / "data").mkdir()
    (root / "data" / "a.bin").write_bytes(b"x" * 10)
    col = await register_collection(server, admin, root)
    opened = await open_as(server, admin, col["collection_id"], write=True)
    backend = opened.backend
    assert isinstance(backend, PosixBackend)

    info = await in_server(server, lambda: backend.stat(opened.resolve("/data/a.bin")))
    doc = info.to_globus()
    assert (doc["type"], doc["size"], doc["name"]) == ("file", 10, "a.bin")
    assert doc["last_modified"].endswith("+00:00") and " " in doc["last_modified"]
    listing = await in_server(server, lambda: backend.list_dir(opened.resolve("/~/")))
    assert [(f.name, f.type) for f in listing] == [("data", "dir")]

    await in_server(server, lambda: backend.mkdir(opened.resolve("/data/new")))
    assert (root / "data" / "new").is_dir()
    cases: list[tuple[Callable[[], Awaitable[object]], int, str]] = [
        (
            lambda: backend.mkdir(opened.resolve("/data/new")),
            502,
            "ExternalError.MkdirFailed.Exists",
        ),
        (lambda: backend.mkdir(opened.resolve("/nope/new")), 404, "ClientError.NotFound"),
        (lambda: backend.stat(opened.resolve("/nope")), 404, "NotFound"),
        (lambda: backend.list_dir(opened.resolve("/nope")), 404, "ClientError.NotFound"),
        (
            lambda: backend.list_dir(opened.resolve("/data/a.bin")),
            502,
            "ExternalError.DirListingFailed.NotDirectory",
        ),
        (
            lambda: backend.delete(opened.resolve("/data"), recursive=False),
            409,
            "ExternalError.DeleteFailed.NotEmpty",
        ),
        (
            lambda: backend.rename(opened.resolve("/data/a.bin"), opened.resolve("/data/new")),
            409,
            "ExternalError.RenameFailed.Exists",
        ),
        (
            lambda: backend.delete(opened.resolve("/"), recursive=True),
            409,
            "ExternalError.DeleteFailed.IsRoot",
        ),
    ]
    await _all_refused(server, cases)

    await in_server(
        server, lambda: backend.rename(opened.resolve("/data/a.bin"), opened.resolve("/b.bin"))
    )
    assert (root / "b.bin").read_bytes() == b"x" * 10 and not (root / "data" / "a.bin").exists()
    await in_server(server, lambda: backend.delete(opened.resolve("/data"), recursive=True))
    assert sorted(os.listdir(root)) == ["b.bin"]


async def test_s3_operations(server: ServerThread, new_user: Callable[..., User]) -> None:
    _, backend = await dataset_collection(server, new_user("alice"))
    prefix = backend.prefix

    await in_server(server, lambda: put_object(backend.store, prefix + "raw/run1/a.bin", b"abc"))
    await in_server(server, lambda: put_object(backend.store, prefix + "top.txt", b"hello"))
    names = {
        (f.name, f.type) for f in await in_server(server, lambda: backend.list_dir(normalise("/")))
    }
    assert {("raw", "dir"), ("top.txt", "file")} <= names
    info = await in_server(server, lambda: backend.stat(normalise("/raw/run1/a.bin")))
    assert (info.type, info.size) == ("file", 3)
    assert (await in_server(server, lambda: backend.stat(normalise("/raw")))).type == "dir"

    await in_server(server, lambda: backend.mkdir(normalise("/empty")))
    assert (await in_server(server, lambda: backend.stat(normalise("/empty/")))).type == "dir"
    assert await in_server(server, lambda: backend.list_dir(normalise("/empty"))) == []
    cases: list[tuple[Callable[[], Awaitable[object]], int, str]] = [
        (lambda: backend.mkdir(normalise("/empty")), 502, "ExternalError.MkdirFailed.Exists"),
        (lambda: backend.mkdir(normalise("/top.txt")), 502, "ExternalError.MkdirFailed.Exists"),
        (lambda: backend.mkdir(normalise("/nope/x")), 404, "ClientError.NotFound"),
        (lambda: backend.stat(normalise("/nope")), 404, "NotFound"),
        (lambda: backend.list_dir(normalise("/nope")), 404, "ClientError.NotFound"),
        (
            lambda: backend.list_dir(normalise("/top.txt")),
            502,
            "ExternalError.DirListingFailed.NotDirectory",
        ),
        (
            lambda: backend.delete(normalise("/raw"), recursive=False),
            409,
            "ExternalError.DeleteFailed.NotEmpty",
        ),
        (
            lambda: backend.delete(normalise("/metadata.json"), recursive=False),
            403,
            "EndpointPermissionDenied",
        ),
        (
            lambda: backend.rename(normalise("/top.txt"), normalise("/metadata.json")),
            403,
            "EndpointPermissionDenied",
        ),
        (
            lambda: backend.rename(normalise("/raw"), normalise("/raw/run1/inside")),
            400,
            "ClientError.BadRequest",
        ),
    ]
    await _all_refused(server, cases)

    await in_server(server, lambda: backend.rename(normalise("/raw"), normalise("/empty/moved")))
    data = await in_server(
        server, lambda: read_object(backend.store, prefix + "empty/moved/run1/a.bin")
    )
    assert data == b"abc"
    assert (
        await in_server(server, lambda: read_object(backend.store, prefix + "raw/run1/a.bin"))
        is None
    )
    await in_server(
        server, lambda: backend.rename(normalise("/top.txt"), normalise("/empty/top.txt"))
    )
    assert (
        await in_server(server, lambda: read_object(backend.store, prefix + "empty/top.txt"))
        == b"hello"
    )
    await in_server(server, lambda: backend.delete(normalise("/empty"), recursive=True))
    left = {f.name for f in await in_server(server, lambda: backend.list_dir(normalise("/")))}
    assert left <= {"metadata.json"}


def test_the_migration_gives_existing_datasets_their_collection_ids(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'schema.db'}"
    cfg = alembic_config(url)
    command.upgrade(cfg, "0006_registered_files")
    engine = sa.create_engine(url)
    row = {
        "seq": 1,
        "display_name": "x",
        "name_key": "x",
        "owner": "alice",
        "created_at": "2026-01-01 00:00:00",
        "updated_at": "2026-01-01 00:00:00",
        "revision": 1,
        "record": "{}",
        "general_roles": "[]",
        "group_roles": "{}",
        "locked": False,
        "version": 1,
    }
    items = sa.table("registry_items", *(sa.column(c) for c in ["id", "subtype", *row]))
    with engine.begin() as conn:
        conn.execute(items.insert().values(id="10378.1/5", subtype="dataset", **row))
        conn.execute(items.insert().values(id="10378.1/6", subtype="person", **{**row, "seq": 2}))
    command.upgrade(cfg, "heads")
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, item_id, kind FROM transfer_collections")).all()
    engine.dispose()
    assert [tuple(r) for r in rows] == [(collection_id("10378.1/5"), "10378.1/5", "s3")]


async def test_scoped_credentials_for_the_task_executor(
    server: ServerThread, new_user: Callable[..., User], localstack: LocalStack
) -> None:
    alice = new_user("alice")
    _, backend = await dataset_collection(server, alice)
    other_prefix = (await dataset_collection(server, alice))[1].prefix
    assert localstack.s3 is not None

    async def issue(level: AccessLevel) -> IssuedCredentials:
        return await in_server(server, lambda: backend.credentials(alice.name, access=level))

    for access in ("read", "write"):
        issued = await issue(access)
        creds = {
            "access_key_id": issued.access_key_id,
            "secret_access_key": issued.secret_access_key,
            "session_token": issued.session_token,
        }

        def attempt(key: str, creds: dict[str, str] = creds) -> str:
            with s3_client(localstack.s3, creds) as s3:  # type: ignore[arg-type]
                try:
                    s3.put_object(Bucket=backend.bucket, Key=key, Body=b"x")
                except ClientError as err:
                    return s3_error(err)[1]
                return "ok"

        inside = await anyio.to_thread.run_sync(attempt, backend.prefix + "raw/a.bin")
        assert inside == ("ok" if access == "write" else "AccessDenied")
        for key in (other_prefix + "a.bin", backend.prefix + "metadata.json"):
            assert await anyio.to_thread.run_sync(attempt, key) == "AccessDenied"


async def _engine_listing(
    server: ServerThread, backend: S3Backend, owner: User, key: str
) -> list[tuple[str, int, datetime | None]]:
    """Every object under the full ``key`` prefix, listed by a transfer engine with the
    owner's scoped read credentials."""
    creds = await in_server(server, lambda: backend.engine_credentials(owner.name, access="read"))
    async with TransferEngine(creds) as engine:
        return [
            (backend.prefix + o.key, o.size, o.last_modified)
            async for o in engine.list(key[len(backend.prefix) :])
        ]


async def test_s3_walk_shows_what_list_dir_shows(
    server: ServerThread, new_user: Callable[..., User]
) -> None:
    """The expansion's one flat listing gives every directory what ``ls`` would show, made
    by botocore or (as the task executor makes it) by a transfer engine's own listing."""
    walker = new_user("walker")
    _, backend = await dataset_collection(server, walker)
    prefix = backend.prefix
    keys = [
        "raw/run1/a.bin",
        "raw/run1/b.bin",
        "raw/run2/deep/c.bin",
        "raw/x",  # a file and a directory of the same name: the directory is shown
        "raw/x/inside.bin",
        "raw/empty/",  # a directory marker only
        "raw/marked/",  # a marker beside objects
        "raw/marked/m.bin",
        "raw/odd//twice.bin",  # an empty segment: ls shows no such directory
        "raw/%2E%2E/up.bin",  # encoded dots: no usable name
        "raw/enc%2Fslash/e.bin",  # an encoded separator neither
        "raw/z.bin",
        "top.txt",
    ]
    for key in keys:
        await in_server(server, lambda key=key: put_object(backend.store, prefix + key, b"k"))
    for start in ("/", "/raw/"):
        root = normalise(start)
        tree = await in_server(server, lambda root=root: backend.walk(root))
        queue = [root]
        seen = []
        while queue:
            here = queue.pop(0)
            shown = await in_server(server, lambda here=here: backend.list_dir(here))
            relative = here.parts[len(root.parts) :]
            assert tree[relative] == shown, here.display
            seen.append(relative)
            queue.extend(here.child(f.name) for f in shown if f.is_dir)
        assert sorted(seen) == sorted(tree), "walk has a directory ls can't reach"
        listed = await _engine_listing(server, backend, walker, backend.dir_key(root))
        assert await in_server(server, lambda r=root, x=listed: backend.walk(r, x)) == tree
    raw = {f.name: f.type for f in tree[()]}
    assert (raw["x"], raw["z.bin"], raw["empty"]) == ("dir", "file", "dir")
    assert "%2E%2E" not in raw and "enc%2Fslash" not in raw
    assert tree[("empty",)] == []
