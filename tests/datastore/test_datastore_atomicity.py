"""All or nothing: a failure at any step of a write leaves no item, rows or objects behind.

The server runs in this process (in a thread), so a test replaces one step - a function of
``storage`` or of the registry service - with one that fails, or makes the commit itself fail
with a ``before_commit`` hook, and then looks at the database and the object store directly.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx
import pytest
from botocore.exceptions import ClientError
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from provena_like.server.datastore import storage
from provena_like.server.datastore.tables import DatasetKeywordRow, DatasetRow, ManifestRow
from provena_like.server.registry import service as registry_service
from provena_like.server.registry.tables import HistoryRow, ItemRow
from provena_like.testing.seaweed import SeaweedS3
from provena_like.testing.server_thread import ServerThread
from tests.support.datastore_helpers import (
    Refs,
    User,
    changed,
    keys_under,
    mint,
    path,
    record,
    s3_client,
)

pytestmark = pytest.mark.anyio


class Injected(RuntimeError):
    """The failure a test injects."""


@contextmanager
def failing_commit(marker: str) -> Iterator[None]:
    """Make the commit of any transaction touching an item named ``marker`` fail."""

    def before_commit(session: Session) -> None:
        query = select(func.count()).select_from(ItemRow).where(ItemRow.display_name == marker)
        if session.scalar(query):
            raise Injected("commit failed")

    event.listen(Session, "before_commit", before_commit)
    try:
        yield
    finally:
        event.remove(Session, "before_commit", before_commit)


def rows_of(server: ServerThread, item_id: str) -> dict[str, int]:
    """How many rows of each table refer to ``item_id``."""

    async def count() -> dict[str, int]:
        out = {}
        async with server.app.state.sessions() as session:
            for name, column in (
                ("items", ItemRow.id),
                ("history", HistoryRow.item_id),
                ("datasets", DatasetRow.item_id),
                ("keywords", DatasetKeywordRow.item_id),
                ("files", ManifestRow.item_id),
            ):
                out[name] = (
                    await session.scalar(
                        select(func.count()).select_from(column.table).where(column == item_id)
                    )
                    or 0
                )
        return out

    return server.call(count)


NOTHING = {"items": 0, "history": 0, "datasets": 0, "keywords": 0, "files": 0}


def wrap(original: Callable[..., Awaitable[Any]], *, before: bool = False, seen: list[Any]) -> Any:
    """``original`` that records its arguments and then fails (before or after running)."""

    async def replacement(*args: Any, **kwargs: Any) -> Any:
        seen.append((args, kwargs))
        if before:
            raise Injected("failed before the call")
        await original(*args, **kwargs)
        raise Injected("failed after the call")

    return replacement


@pytest.mark.parametrize("step", ["after_handle", "write_refused", "write_reply_lost", "commit"])
async def test_a_failed_mint_leaves_nothing(
    step: str,
    client: httpx.AsyncClient,
    owner: User,
    refs: Refs,
    server: ServerThread,
    store: SeaweedS3,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[Any] = []
    handles: list[str] = []
    real_create = registry_service.create_item

    async def create_then_fail(*args: Any, **kwargs: Any) -> Any:
        row = await real_create(*args, **kwargs)
        handles.append(row.id)
        raise Injected("failed after the handle was allocated")

    async def create_and_remember(*args: Any, **kwargs: Any) -> Any:
        row = await real_create(*args, **kwargs)
        handles.append(row.id)
        return row

    marker = f"Atomic {step}"
    if step == "after_handle":
        monkeypatch.setattr(registry_service, "create_item", create_then_fail)
    else:
        monkeypatch.setattr(registry_service, "create_item", create_and_remember)
    if step == "write_refused":
        monkeypatch.setattr(storage, "put_object", wrap(storage.put_object, before=True, seen=seen))
    elif step == "write_reply_lost":
        monkeypatch.setattr(storage, "put_object", wrap(storage.put_object, seen=seen))

    with failing_commit(marker):
        r = await client.post(
            "/datasets", json={"record": record(refs, name=marker)}, headers=owner.headers
        )
    assert r.status_code == 500, r.text
    assert r.json()["error"]["code"] == "internal"
    [handle] = handles
    assert rows_of(server, handle) == NOTHING
    prefix = f"{handle.replace('/', '-')}/"
    assert keys_under(store, bucket, prefix) == []
    if step.startswith("write"):
        [(_, kwargs)] = seen if step == "write_refused" else seen[:1]
        assert kwargs["metadata"]["write-id"]
    monkeypatch.undo()

    # the next mint works and may reuse the number that was given back
    ds = await mint(client, owner, record(refs, name="After the failure"))
    assert keys_under(store, bucket, ds["storage"]["prefix"]) == [
        ds["storage"]["prefix"] + "metadata.json"
    ]


async def test_an_object_store_failure_is_a_502(
    client: httpx.AsyncClient,
    owner: User,
    refs: Refs,
    server: ServerThread,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def refuse(**_: Any) -> Any:
        error = {"Error": {"Code": "SlowDown", "Message": "try later"}}
        raise ClientError(error, "PutObject")  # type: ignore[arg-type]

    monkeypatch.setattr(server.app.state.object_store.s3, "put_object", refuse)
    r = await client.post("/datasets", json={"record": record(refs)}, headers=owner.headers)
    assert r.status_code == 502, r.text
    assert r.json()["error"]["code"] == "object_store_error"
    assert "SlowDown" in r.json()["error"]["message"]
    r = await client.get("/datasets", params={"owner": owner.name}, headers=owner.headers)
    assert r.json()["items"] == []


@pytest.mark.parametrize("step", ["write_reply_lost", "commit"])
async def test_a_failed_update_keeps_the_old_metadata(
    step: str,
    client: httpx.AsyncClient,
    owner: User,
    refs: Refs,
    server: ServerThread,
    store: SeaweedS3,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec = record(refs)
    ds = await mint(client, owner, rec)
    key = ds["storage"]["prefix"] + "metadata.json"
    with s3_client(store) as admin:
        original = admin.get_object(Bucket=bucket, Key=key)["Body"].read()
    marker = f"Update {step}"
    if step == "write_reply_lost":
        monkeypatch.setattr(storage, "put_object", wrap(storage.put_object, seen=[]))
    with failing_commit(marker):
        try:
            r = await client.put(
                path(ds["id"]),
                json={"record": changed(rec, name=marker), "reason": "doomed"},
                headers=owner.headers,
            )
            assert r.status_code == 500
            assert r.headers["connection"] == "close"  # the server drops it after a 500
        except httpx.ReadError:
            pass  # the server may drop the connection after an unexpected error: also a failure
    monkeypatch.undo()
    with s3_client(store) as admin:
        assert admin.get_object(Bucket=bucket, Key=key)["Body"].read() == original
    r = await client.get(path(ds["id"]), headers=owner.headers)
    assert r.json()["revision"] == 1 and r.json()["display_name"] == "Reef temperatures"
    assert json.loads(original)["revision"] == 1


async def test_a_failed_version_leaves_nothing(
    client: httpx.AsyncClient,
    owner: User,
    refs: Refs,
    server: ServerThread,
    store: SeaweedS3,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ds = await mint(client, owner, record(refs))
    prefix = ds["storage"]["prefix"]
    with s3_client(store) as admin:
        for i in range(5):
            admin.put_object(Bucket=bucket, Key=f"{prefix}f{i}.txt", Body=b"x" * (i + 1))
    before = keys_under(store, bucket, prefix)
    handles: list[str] = []
    real_create = registry_service.create_item

    async def create_and_remember(*args: Any, **kwargs: Any) -> Any:
        row = await real_create(*args, **kwargs)
        handles.append(row.id)
        return row

    calls: list[str] = []
    real_copy = storage.copy_object

    async def copy_some(store_: Any, source: str, dest: str, *, size: int) -> str:
        calls.append(dest)
        if len(calls) == 4:
            raise Injected("copy failed")
        return await real_copy(store_, source, dest, size=size)

    monkeypatch.setattr(registry_service, "create_item", create_and_remember)
    monkeypatch.setattr(storage, "copy_object", copy_some)
    r = await client.post(
        path(ds["id"], "/version"),
        json={"reason": "doomed", "copy_files": True},
        headers=owner.headers,
    )
    assert r.status_code == 500
    monkeypatch.undo()
    [handle] = handles
    assert rows_of(server, handle) == NOTHING
    assert keys_under(store, bucket, f"{handle.replace('/', '-')}/") == []
    assert keys_under(store, bucket, prefix) == before
    r = await client.get(path(ds["id"]), headers=owner.headers)
    assert r.json()["versioning"]["next"] is None and r.json()["revision"] == 1


async def test_a_copy_still_in_flight_when_a_version_fails_is_taken_back(
    client: httpx.AsyncClient,
    owner: User,
    refs: Refs,
    server: ServerThread,
    store: SeaweedS3,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A copy whose request was sent lands after the failure: undo must still see it go.

    The other copies stand for requests the store is still working on when the failed one
    cancels them (their reply is lost, the object appears a moment later).
    """
    ds = await mint(client, owner, record(refs))
    prefix = ds["storage"]["prefix"]
    with s3_client(store) as admin:
        for i in range(3):
            admin.put_object(Bucket=bucket, Key=f"{prefix}f{i}.txt", Body=b"x" * (i + 1))
    handles: list[str] = []
    real_create = registry_service.create_item

    async def create_and_remember(*args: Any, **kwargs: Any) -> Any:
        row = await real_create(*args, **kwargs)
        handles.append(row.id)
        return row

    calls: list[str] = []

    def late_copy(source: str, dest: str) -> None:
        time.sleep(0.5)  # the store is still copying when the request gets cancelled
        with s3_client(store) as admin:
            admin.copy_object(Bucket=bucket, Key=dest, CopySource={"Bucket": bucket, "Key": source})

    async def copy_some(store_: Any, source: str, dest: str, *, size: int) -> str:
        del store_, size
        calls.append(dest)
        if source.endswith("f0.txt"):
            await anyio.sleep(0.1)
            raise Injected("copy failed")
        await anyio.to_thread.run_sync(late_copy, source, dest, abandon_on_cancel=True)
        return "etag"

    monkeypatch.setattr(registry_service, "create_item", create_and_remember)
    monkeypatch.setattr(storage, "copy_object", copy_some)
    r = await client.post(
        path(ds["id"], "/version"),
        json={"reason": "doomed", "copy_files": True},
        headers=owner.headers,
    )
    assert r.status_code == 500
    monkeypatch.undo()
    assert len(calls) == 3
    [handle] = handles
    await anyio.sleep(1.0)  # long after any copy could still land
    assert keys_under(store, bucket, f"{handle.replace('/', '-')}/") == []
    assert rows_of(server, handle) == NOTHING


async def test_concurrent_mints_with_one_key_leave_one_dataset(
    client: httpx.AsyncClient,
    owner: User,
    refs: Refs,
    server: ServerThread,
    store: SeaweedS3,
    bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handles: list[str] = []
    real_create = registry_service.create_item

    async def create_and_remember(*args: Any, **kwargs: Any) -> Any:
        row = await real_create(*args, **kwargs)
        handles.append(row.id)
        return row

    monkeypatch.setattr(registry_service, "create_item", create_and_remember)
    headers = {**owner.headers, "Idempotency-Key": "one-key-for-all"}
    answers: list[httpx.Response] = []

    async def one() -> None:
        answers.append(
            await client.post("/datasets", json={"record": record(refs)}, headers=headers)
        )

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(one)
    assert {r.status_code for r in answers} == {201}
    [winner] = {r.json()["dataset"]["id"] for r in answers}
    assert winner in handles
    for handle in set(handles) - {winner}:  # minted, written, then rolled back: undone
        assert rows_of(server, handle) == NOTHING
        assert keys_under(store, bucket, f"{handle.replace('/', '-')}/") == []
    prefix = f"{winner.replace('/', '-')}/"
    assert keys_under(store, bucket, prefix) == [prefix + "metadata.json"]


async def test_concurrent_versions_link_exactly_one(
    client: httpx.AsyncClient, owner: User, refs: Refs
) -> None:
    ds = await mint(client, owner, record(refs))
    answers: list[httpx.Response] = []

    async def one() -> None:
        answers.append(
            await client.post(
                path(ds["id"], "/version"), json={"reason": "race"}, headers=owner.headers
            )
        )

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(one)
    assert sorted(r.status_code for r in answers) == [201, 409, 409, 409], [r.text for r in answers]
    [won] = [r.json() for r in answers if r.status_code == 201]
    r = await client.get(path(ds["id"]), headers=owner.headers)
    assert r.json()["versioning"]["next"] == won["id"]
    r = await client.get("/datasets", params={"owner": owner.name}, headers=owner.headers)
    assert sorted(d["id"] for d in r.json()["items"]) == sorted([ds["id"], won["id"]])
