"""Frozen data stays frozen: write credentials minted before a lock or a release request are
refused by the object store itself, and a release checks the stored bytes against the manifest.

Everything runs against the session's LocalStack (real server, real SeaweedFS): the S3 calls
are made with boto3 and the credentials the server handed out, so the refusals come from the
store's own policy evaluation.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio
import httpx
import pytest
from botocore.exceptions import ClientError
from sqlalchemy import update

from provena_like.server.datastore import policy, storage
from provena_like.server.datastore.freeze import DataFreeze
from provena_like.server.datastore.tables import DatasetRow
from provena_like.server.db.base import utcnow
from provena_like.server.registry.tables import ItemRow
from provena_like.testing.localstack import LocalStack
from provena_like.testing.seaweed import SeaweedS3
from provena_like.testing.server_thread import ServerThread
from tests.support.datastore_helpers import s3_client
from tests.support.tls import SHARED_TLS
from tests.support.users import User

pytestmark = pytest.mark.anyio

APPROVALS = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")
PART = 5 * 1024 * 1024


# -- helpers -------------------------------------------------------------------------------


@dataclass
class Dataset:
    id: str
    prefix: str
    bucket: str


@pytest.fixture
async def api(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=SHARED_TLS, base_url=server.url, timeout=120) as client:
        yield client


@pytest.fixture
def store(localstack: LocalStack) -> SeaweedS3:
    assert localstack.s3 is not None
    return localstack.s3


@pytest.fixture
def owner(new_user: Callable[..., User]) -> User:
    return new_user("owner")


@pytest.fixture
def reviewer(new_user: Callable[..., User]) -> User:
    return new_user("reviewer", system_roles=("reviewer",))


def ds(dataset_id: str, tail: str = "") -> str:
    return f"/datastore/datasets/{dataset_id}{tail}"


async def mint(api: httpx.AsyncClient, user: User) -> Dataset:
    r = await api.post(
        "/registry/items",
        json={"subtype": "organisation", "record": {"name": "Marine Institute"}},
        headers=user.headers,
    )
    assert r.status_code == 201, r.text
    org = r.json()["id"]
    record = {
        "associations": {"organisation_id": org},
        "approvals": {a: {"relevant": False, "obtained": False} for a in APPROVALS},
        "dataset_info": {
            "name": "Reef temperatures",
            "description": "Hourly logger readings.",
            "access_info": {"reposited": True},
            "publisher_id": org,
            "created_date": "2024-01-01",
            "published_date": "2024-06-30",
            "license": "https://creativecommons.org/licenses/by/4.0/",
        },
    }
    r = await api.post("/datastore/datasets", json={"record": record}, headers=user.headers)
    assert r.status_code == 201, r.text
    body = r.json()["dataset"]
    return Dataset(body["id"], body["storage"]["prefix"], body["storage"]["bucket"])


async def write_credentials(api: httpx.AsyncClient, user: User, d: Dataset) -> dict[str, Any]:
    r = await api.post(ds(d.id, "/credentials"), json={"access": "write"}, headers=user.headers)
    assert r.status_code == 200, r.text
    creds: dict[str, Any] = r.json()
    return creds


async def upload_and_register(
    api: httpx.AsyncClient, store: SeaweedS3, user: User, d: Dataset, files: dict[str, bytes]
) -> None:
    """Upload ``files`` with fresh write credentials and register them."""
    creds = await write_credentials(api, user, d)
    with s3_client(store, creds) as s3:
        for name, body in files.items():
            s3.put_object(Bucket=d.bucket, Key=d.prefix + name, Body=body)
    entries = [
        {"path": name, "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        for name, body in files.items()
    ]
    r = await api.post(ds(d.id, "/files"), json={"files": entries}, headers=user.headers)
    assert r.status_code == 200, r.text


async def step(
    api: httpx.AsyncClient, user: User, d: Dataset, action: str, **body: Any
) -> httpx.Response:
    return await api.post(ds(d.id, f"/release/{action}"), json=body, headers=user.headers)


async def request_release(
    api: httpx.AsyncClient, owner: User, reviewer: User, d: Dataset
) -> httpx.Response:
    return await step(api, owner, d, "request", reviewer=reviewer.name, notes="ready")


def denied(call: Callable[[], Any]) -> str:
    """The S3 error code of ``call``, which must fail with 403."""
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 403, response
    return str(response["Error"]["Code"])


def assert_writes_refused(s3: Any, d: Dataset, upload_id: str) -> None:
    """Every way to change the dataset's objects fails for these (old) credentials."""
    b, p = d.bucket, d.prefix
    attempts: dict[str, Callable[[], Any]] = {
        "PutObject (new key)": lambda: s3.put_object(Bucket=b, Key=p + "new.txt", Body=b"n"),
        "PutObject (overwrite)": lambda: s3.put_object(Bucket=b, Key=p + "a.txt", Body=b"X"),
        "CopyObject onto a file": lambda: s3.copy_object(
            Bucket=b, Key=p + "a.txt", CopySource={"Bucket": b, "Key": p + "b.txt"}
        ),
        "DeleteObject": lambda: s3.delete_object(Bucket=b, Key=p + "b.txt"),
        "CreateMultipartUpload": lambda: s3.create_multipart_upload(Bucket=b, Key=p + "a.txt"),
        "UploadPart (upload begun before)": lambda: s3.upload_part(
            Bucket=b, Key=p + "a.txt", UploadId=upload_id, PartNumber=2, Body=b"y"
        ),
        "CompleteMultipartUpload (begun before)": lambda: s3.complete_multipart_upload(
            Bucket=b,
            Key=p + "a.txt",
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"x"'}]},
        ),
        "AbortMultipartUpload": lambda: s3.abort_multipart_upload(
            Bucket=b, Key=p + "a.txt", UploadId=upload_id
        ),
    }
    for name, call in attempts.items():
        assert denied(call) == "AccessDenied", name
    batch = s3.delete_objects(
        Bucket=b, Delete={"Objects": [{"Key": p + "a.txt"}, {"Key": p + "b.txt"}]}
    )
    assert sorted(e["Code"] for e in batch.get("Errors", [])) == ["AccessDenied"] * 2
    # reading still works
    assert s3.get_object(Bucket=b, Key=p + "a.txt")["Body"].read() == b"alpha"


def begin_upload(s3: Any, d: Dataset) -> str:
    """A multipart upload onto a.txt with one part sent, begun while writes are allowed."""
    upload_id: str = s3.create_multipart_upload(Bucket=d.bucket, Key=d.prefix + "a.txt")["UploadId"]
    s3.upload_part(
        Bucket=d.bucket, Key=d.prefix + "a.txt", UploadId=upload_id, PartNumber=1, Body=b"z" * PART
    )
    return upload_id


def stored(store: SeaweedS3, d: Dataset) -> dict[str, bytes]:
    with s3_client(store) as s3:
        listed = s3.list_objects_v2(Bucket=d.bucket, Prefix=d.prefix).get("Contents", [])
        return {
            o["Key"][len(d.prefix) :]: s3.get_object(Bucket=d.bucket, Key=o["Key"])["Body"].read()
            for o in listed
            if not o["Key"].endswith("metadata.json")
        }


FILES = {"a.txt": b"alpha", "b.txt": b"bravo"}


# -- the store refuses old credentials once the data is frozen ----------------------------


async def test_release_request_and_approval_stop_earlier_write_credentials(
    api: httpx.AsyncClient, store: SeaweedS3, owner: User, reviewer: User
) -> None:
    d = await mint(api, owner)
    await upload_and_register(api, store, owner, d, FILES)
    old = await write_credentials(api, owner, d)
    with s3_client(store, old) as s3:
        upload_id = begin_upload(s3, d)

        r = await request_release(api, owner, reviewer, d)
        assert r.status_code == 200, r.text
        assert r.json()["release_status"] == "PENDING"
        assert_writes_refused(s3, d, upload_id)

        r = await step(api, reviewer, d, "approve", notes="fine")
        assert r.status_code == 200, r.text
        assert r.json()["release_status"] == "RELEASED"
        assert_writes_refused(s3, d, upload_id)

    assert stored(store, d) == FILES
    r = await api.post(ds(d.id, "/presign"), json={"path": "a.txt"}, headers=owner.headers)
    assert r.status_code == 200, r.text
    assert httpx.get(r.json()["url"]).content == b"alpha"


async def test_a_lock_stops_earlier_write_credentials_and_an_unlock_lets_fresh_ones_write(
    api: httpx.AsyncClient, store: SeaweedS3, owner: User
) -> None:
    d = await mint(api, owner)
    await upload_and_register(api, store, owner, d, FILES)
    old = await write_credentials(api, owner, d)
    with s3_client(store, old) as s3:
        upload_id = begin_upload(s3, d)
        r = await api.post(
            f"/registry/items/{d.id}/lock", json={"reason": "audit"}, headers=owner.headers
        )
        assert r.status_code == 200, r.text
        assert_writes_refused(s3, d, upload_id)
    assert stored(store, d) == FILES

    r = await api.post(
        f"/registry/items/{d.id}/unlock", json={"reason": "done"}, headers=owner.headers
    )
    assert r.status_code == 200, r.text
    fresh = await write_credentials(api, owner, d)
    with s3_client(store, fresh) as s3:
        s3.put_object(Bucket=d.bucket, Key=d.prefix + "c.txt", Body=b"charlie")
        s3.delete_object(Bucket=d.bucket, Key=d.prefix + "c.txt")


@pytest.mark.parametrize("way_back", ["reject", "withdraw"])
async def test_writes_work_again_after_a_rejection_or_withdrawal(
    api: httpx.AsyncClient, store: SeaweedS3, owner: User, reviewer: User, way_back: str
) -> None:
    d = await mint(api, owner)
    await upload_and_register(api, store, owner, d, FILES)
    r = await request_release(api, owner, reviewer, d)
    assert r.status_code == 200, r.text
    who = reviewer if way_back == "reject" else owner
    r = await step(api, who, d, way_back, notes="add the calibration file")
    assert r.status_code == 200, r.text
    assert r.json()["release_status"] == "NOT_RELEASED"
    fresh = await write_credentials(api, owner, d)
    with s3_client(store, fresh) as s3:
        s3.put_object(Bucket=d.bucket, Key=d.prefix + "calibration.csv", Body=b"1,2")


async def test_credentials_minted_while_a_lock_commits_are_not_handed_out(
    api: httpx.AsyncClient,
    server: ServerThread,
    owner: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The state is checked again once STS has answered: a lock that committed meanwhile
    wins, since its freeze need not outlast credentials minted after it."""
    d = await mint(api, owner)
    real = storage.assume_role

    async def lock_meanwhile(*args: Any, **kwargs: Any) -> storage.IssuedCredentials:
        issued = await real(*args, **kwargs)  # runs in the server's event loop
        async with server.app.state.sessions() as session, session.begin():
            await session.execute(update(ItemRow).where(ItemRow.id == d.id).values(locked=True))
        return issued

    monkeypatch.setattr(storage, "assume_role", lock_meanwhile)
    r = await api.post(ds(d.id, "/credentials"), json={"access": "write"}, headers=owner.headers)
    assert r.status_code == 409, r.status_code  # (the body would hold the credentials)
    assert r.json()["error"]["code"] == "locked"
    assert "session_token" not in r.text


# -- the bucket policy follows the database ------------------------------------------------


def _freeze(server: ServerThread) -> Any:
    """The app's DataFreeze (looked up at run time: the test must fail, not error, without)."""
    return server.app.state.data_freeze


async def test_the_policy_is_rebuilt_from_the_database(
    api: httpx.AsyncClient, server: ServerThread, store: SeaweedS3, owner: User, reviewer: User
) -> None:
    """A stale policy (as a crash mid-step leaves it) is replaced by the startup rebuild;
    freezes older than the credentials' lifetime drop out of it."""
    writable = await mint(api, owner)
    pending = await mint(api, owner)
    r = await request_release(api, owner, reviewer, pending)
    assert r.status_code == 200, r.text
    freeze = _freeze(server)
    with s3_client(store) as admin:  # a freeze whose step never committed
        admin.put_bucket_policy(
            Bucket=writable.bucket,
            Policy=admin.get_bucket_policy(Bucket=writable.bucket)["Policy"].replace(
                pending.prefix, writable.prefix
            ),
        )
    creds = await write_credentials(api, owner, writable)
    with s3_client(store, creds) as s3:
        assert denied(lambda: s3.put_object(Bucket=writable.bucket, Key=writable.prefix + "x"))
        assert server.call(lambda: _freeze(server).settle(force=True))
        s3.put_object(Bucket=writable.bucket, Key=writable.prefix + "x", Body=b"x")
    assert pending.prefix in freeze.frozen and writable.prefix not in freeze.frozen

    async def age(session_maker: Any) -> None:
        long_ago = utcnow() - freeze.window - timedelta(seconds=1)
        async with session_maker() as session, session.begin():
            await session.execute(
                update(DatasetRow)
                .where(DatasetRow.item_id == pending.id)
                .values(release_requested_at=long_ago)
            )

    server.call(lambda: age(server.app.state.sessions))
    assert server.call(lambda: _freeze(server).settle())
    assert pending.prefix not in freeze.frozen


async def test_another_process_can_not_drop_a_freeze_under_way(
    api: httpx.AsyncClient, server: ServerThread, store: SeaweedS3, owner: User
) -> None:
    """Two DataFreezes on the server's database, store and data dir stand for two workers.

    While one runs a freezing step (a lock), the other rebuilds the policy (after a thaw,
    say). Its rebuild must wait for the step: run at once, it reads the database before the
    lock commits, puts a policy without the dataset, and the first worker (which had put that
    same document itself before the step) must not then leave it out.
    """
    dataset = await mint(api, owner)
    state = server.app.state

    def worker() -> DataFreeze:
        return DataFreeze.for_store(state.object_store, state.sessions, state.settings.data_dir)

    async def scenario() -> None:
        first, second = worker(), worker()
        rebuilt = anyio.Event()

        async def rebuild_elsewhere() -> None:
            await second.sync()
            rebuilt.set()

        async with anyio.create_task_group() as group, first.freezing(dataset.id):
            group.start_soon(rebuild_elsewhere)
            with anyio.move_on_after(5):  # ends at once without the turns
                await rebuilt.wait()
            async with state.sessions() as session, session.begin():  # the step commits
                await session.execute(
                    update(ItemRow).where(ItemRow.id == dataset.id).values(locked=True)
                )
        assert rebuilt.is_set()

    try:
        server.call(scenario, timeout=120)
        with s3_client(store) as admin:
            try:
                document = admin.get_bucket_policy(Bucket=dataset.bucket)["Policy"]
            except ClientError:  # NoSuchBucketPolicy: nothing is frozen
                document = ""
        assert dataset.prefix in document
    finally:
        assert server.call(lambda: _freeze(server).settle())


# -- the release checks the stored bytes against the manifest -----------------------------


async def test_a_release_request_is_refused_when_stored_files_changed(
    api: httpx.AsyncClient, store: SeaweedS3, owner: User, reviewer: User
) -> None:
    d = await mint(api, owner)
    await upload_and_register(api, store, owner, d, {**FILES, "c.txt": b"charlie"})
    with s3_client(store) as admin:  # raw S3, bypassing the server
        admin.put_object(Bucket=d.bucket, Key=d.prefix + "a.txt", Body=b"ALPHA")  # same size
        admin.put_object(Bucket=d.bucket, Key=d.prefix + "c.txt", Body=b"charlie!")
        admin.delete_object(Bucket=d.bucket, Key=d.prefix + "b.txt")

    r = await request_release(api, owner, reviewer, d)
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "data_changed"
    assert "a.txt (other content)" in err["message"]
    assert "b.txt (missing)" in err["message"]
    assert "c.txt (another size)" in err["message"]
    assert [(f["path"], f["problem"]) for f in err["details"]["files"]] == [
        ("a.txt", "content"),
        ("b.txt", "missing"),
        ("c.txt", "size"),
    ]
    r = await api.get(ds(d.id), headers=owner.headers)
    assert r.json()["release_status"] == "NOT_RELEASED"

    # fixed: a.txt registered as it now is, b.txt and c.txt removed from the manifest
    r = await api.post(
        ds(d.id, "/files/remove"), json={"paths": ["b.txt", "c.txt"]}, headers=owner.headers
    )
    assert r.status_code == 200, r.text
    entry = {"path": "a.txt", "size": 5, "sha256": hashlib.sha256(b"ALPHA").hexdigest()}
    r = await api.post(ds(d.id, "/files"), json={"files": [entry]}, headers=owner.headers)
    assert r.status_code == 200, r.text
    r = await request_release(api, owner, reviewer, d)
    assert r.status_code == 200, r.text


async def test_an_approval_is_refused_when_stored_files_changed(
    api: httpx.AsyncClient, store: SeaweedS3, owner: User, reviewer: User
) -> None:
    d = await mint(api, owner)
    await upload_and_register(api, store, owner, d, FILES)
    r = await request_release(api, owner, reviewer, d)
    assert r.status_code == 200, r.text
    with s3_client(store) as admin:  # the admin identity isn't frozen: raw S3 tampering
        admin.put_object(Bucket=d.bucket, Key=d.prefix + "b.txt", Body=b"BRAVO")

    r = await step(api, reviewer, d, "approve", notes="fine")
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "data_changed" and "b.txt (other content)" in err["message"]
    assert err["details"]["state"] == "PENDING"
    assert [f["path"] for f in err["details"]["files"]] == ["b.txt"]
    r = await api.get(ds(d.id), headers=owner.headers)
    assert r.json()["release_status"] == "PENDING"
    r = await step(api, reviewer, d, "reject", notes="b.txt changed")
    assert r.status_code == 200, r.text


async def test_a_freeze_that_does_not_fit_the_bucket_policy_is_refused(
    api: httpx.AsyncClient,
    server: ServerThread,
    store: SeaweedS3,
    owner: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The largest policy the server writes is one the store accepts; a freeze that would
    need more is refused (503) rather than taken without being enforced."""
    role = server.settings.s3.role_arn
    prefixes = [f"10378.1-{100000 + i}/" for i in range(600)]
    bucket = store_bucket(server)
    fitting = next(n for n in range(600, 0, -1) if _fits(bucket, role, prefixes[:n]))
    document = policy.freeze_policy(bucket, role, prefixes[:fitting])
    assert document is not None and len(document) > policy.MAX_BUCKET_POLICY_BYTES - 100
    with s3_client(store) as admin:
        admin.put_bucket_policy(Bucket=bucket, Policy=document)
    assert server.call(lambda: _freeze(server).settle(force=True))  # the server's own again

    d = await mint(api, owner)
    monkeypatch.setattr(policy, "MAX_BUCKET_POLICY_BYTES", 300)
    r = await api.post(f"/registry/items/{d.id}/lock", json={"reason": "x"}, headers=owner.headers)
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "too_many_frozen"
    r = await api.get(ds(d.id), headers=owner.headers)
    assert r.json()["locked"] is False


def store_bucket(server: ServerThread) -> str:
    name: str = server.settings.s3.bucket
    return name


def _fits(bucket: str, role: str, prefixes: list[str]) -> bool:
    try:
        policy.freeze_policy(bucket, role, prefixes)
    except policy.PolicyTooLargeError:
        return False
    return True
