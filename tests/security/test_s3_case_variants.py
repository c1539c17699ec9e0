"""Scoped credentials don't reach case variants of their dataset's prefix.

SeaweedFS matches the resources of a session policy without regard to case: credentials for
``datasets/10378.1-99/`` could write ``DATASETS/10378.1-99/...``. New datasets get a prefix
made only of characters without case variants, so there is nothing else to reach. Checked
with the real store: every refusal below is the store's own (403 ``AccessDenied``).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from sqlalchemy import update

from provena_like.server.datastore.service import dataset_prefix
from provena_like.server.datastore.tables import DatasetRow
from provena_like.testing.localstack import LocalStack
from provena_like.testing.seaweed import SeaweedS3
from provena_like.testing.server_thread import ServerThread
from tests.support.datastore_helpers import s3_client
from tests.support.tls import SHARED_TLS
from tests.support.users import User

pytestmark = pytest.mark.anyio

APPROVALS = ("ethics_registration", "ethics_access", "indigenous_knowledge", "export_controls")
SECRET = b"planted by the admin"


@pytest.fixture
def owner(make_token: Callable[..., str]) -> User:
    name = f"owner-{uuid.uuid4().hex[:10]}"
    return User(name, make_token(name))


@pytest.fixture
async def api(server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(verify=SHARED_TLS, base_url=server.url, timeout=120) as client:
        yield client


@pytest.fixture
def store(localstack: LocalStack) -> SeaweedS3:
    assert localstack.s3 is not None
    return localstack.s3


async def mint(api: httpx.AsyncClient, user: User) -> dict[str, Any]:
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
    dataset: dict[str, Any] = r.json()["dataset"]
    return dataset


async def credentials(
    api: httpx.AsyncClient, user: User, dataset_id: str, access: str
) -> dict[str, Any]:
    r = await api.post(
        f"/datastore/datasets/{dataset_id}/credentials",
        json={"access": access},
        headers=user.headers,
    )
    assert r.status_code == 200, r.status_code
    creds: dict[str, Any] = r.json()
    return creds


def variants(prefix: str) -> list[str]:
    """Prefixes a case-insensitive (or Unicode-folding) match could confuse with ``prefix``.

    Its own case variants, and those of the layout of earlier datasets
    (``datasets/<slug>/``), including the long s and the Kelvin sign that fold to s and k.
    """
    slug = prefix.rstrip("/").rsplit("/", 1)[-1]
    legacy = f"datasets/{slug}/"
    candidates = {
        prefix.upper(),
        prefix.swapcase(),
        prefix.title(),
        legacy.upper(),
        legacy.title(),
        legacy.replace("s", "S", 1),
        legacy.replace("s", "\u017f", 1),
        legacy.replace("k", "\u212a"),
    }
    return sorted(c for c in candidates if c != prefix)


def refused(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    return response["ResponseMetadata"]["HTTPStatusCode"], str(response["Error"]["Code"])


DENIED = (403, "AccessDenied")


def reaching_out(s3: Any, bucket: str, prefix: str, other: str) -> dict[str, Callable[[], Any]]:
    """Every kind of call on ``other`` (another prefix), by name."""
    return {
        "get": lambda: s3.get_object(Bucket=bucket, Key=f"{other}secret.txt"),
        "get metadata.json": lambda: s3.get_object(Bucket=bucket, Key=f"{other}metadata.json"),
        "list": lambda: s3.list_objects_v2(Bucket=bucket, Prefix=other),
        "list uploads": lambda: s3.list_multipart_uploads(Bucket=bucket, Prefix=other),
        "put": lambda: s3.put_object(Bucket=bucket, Key=f"{other}x", Body=b"x"),
        "overwrite": lambda: s3.put_object(Bucket=bucket, Key=f"{other}secret.txt", Body=b"x"),
        "put metadata.json": lambda: s3.put_object(
            Bucket=bucket, Key=f"{other}metadata.json", Body=b"{}"
        ),
        "copy into": lambda: s3.copy_object(
            Bucket=bucket,
            Key=f"{other}copy.csv",
            CopySource={"Bucket": bucket, "Key": f"{prefix}data.csv"},
        ),
        "copy out of": lambda: s3.copy_object(
            Bucket=bucket,
            Key=f"{prefix}stolen.txt",
            CopySource={"Bucket": bucket, "Key": f"{other}secret.txt"},
        ),
        "delete": lambda: s3.delete_object(Bucket=bucket, Key=f"{other}secret.txt"),
        "multipart": lambda: s3.create_multipart_upload(Bucket=bucket, Key=f"{other}big.bin"),
    }


def onto(s3: Any, bucket: str, prefix: str, key: str) -> dict[str, Callable[[], Any]]:
    """Every way to write ``key`` (a case variant of the dataset's metadata.json), by name."""
    return {
        "put": lambda: s3.put_object(Bucket=bucket, Key=key, Body=b"{}"),
        "delete": lambda: s3.delete_object(Bucket=bucket, Key=key),
        "multipart": lambda: s3.create_multipart_upload(Bucket=bucket, Key=key),
        "copy onto": lambda: s3.copy_object(
            Bucket=bucket,
            Key=key,
            CopySource={"Bucket": bucket, "Key": f"{prefix}metadata.json"},
            MetadataDirective="REPLACE",
        ),
    }


async def test_new_prefixes_have_no_case_variants(api: httpx.AsyncClient, owner: User) -> None:
    dataset = await mint(api, owner)
    prefix = dataset["storage"]["prefix"]
    assert prefix == f"{dataset['id'].replace('/', '-')}/"
    assert prefix == prefix.upper() == prefix.lower() == prefix.casefold()
    # a handle prefix with letters: they don't make it into the storage prefix
    assert dataset_prefix("Reef.Lab/7") == "____.___-7/"
    assert dataset_prefix("10378.1/42") == "10378.1-42/"


async def test_credentials_do_not_reach_case_variants_of_their_prefix(
    api: httpx.AsyncClient, store: SeaweedS3, owner: User
) -> None:
    dataset = await mint(api, owner)
    bucket, prefix = dataset["storage"]["bucket"], dataset["storage"]["prefix"]
    others = variants(prefix)
    assert len(others) >= 4
    with s3_client(store) as admin:
        for other in others:  # something to read, overwrite and delete at each variant
            admin.put_object(Bucket=bucket, Key=f"{other}secret.txt", Body=SECRET)
            admin.put_object(Bucket=bucket, Key=f"{other}metadata.json", Body=SECRET)
        admin.put_object(Bucket=bucket, Key=f"{prefix}data.csv", Body=b"1,2")

    write = await credentials(api, owner, dataset["id"], "write")
    read = await credentials(api, owner, dataset["id"], "read")
    for creds in (write, read):
        with s3_client(store, creds) as s3:
            assert s3.get_object(Bucket=bucket, Key=f"{prefix}data.csv")["Body"].read() == b"1,2"
            for other in others:
                attempts = reaching_out(s3, bucket, prefix, other)
                for name, call in attempts.items():
                    assert refused(call) == DENIED, (creds["access"], other, name)
                batch = s3.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": f"{other}secret.txt"}]}
                )
                assert [e["Code"] for e in batch.get("Errors", [])] == ["AccessDenied"]

    with s3_client(store) as admin:  # nothing changed anywhere
        for other in others:
            assert admin.get_object(Bucket=bucket, Key=f"{other}secret.txt")["Body"].read() == (
                SECRET
            )
            listed = admin.list_objects_v2(Bucket=bucket, Prefix=other).get("Contents", [])
            assert sorted(o["Key"] for o in listed) == [
                f"{other}metadata.json",
                f"{other}secret.txt",
            ]


async def test_case_variants_of_metadata_json_are_refused(
    api: httpx.AsyncClient, store: SeaweedS3, owner: User
) -> None:
    dataset = await mint(api, owner)
    bucket, prefix = dataset["storage"]["bucket"], dataset["storage"]["prefix"]
    write = await credentials(api, owner, dataset["id"], "write")
    with s3_client(store, write) as s3:
        for name in ("METADATA.JSON", "Metadata.json", "metadata.JSON", "metadata.json"):
            key = prefix + name
            attempts = onto(s3, bucket, prefix, key)
            for what, call in attempts.items():
                assert refused(call) == DENIED, (name, what)
            if name != "metadata.json":  # nobody could write one: nothing to read
                assert refused(partial(s3.get_object, Bucket=bucket, Key=key))[0] == 404


async def test_existing_datasets_keep_their_recorded_prefix(
    api: httpx.AsyncClient, server: ServerThread, owner: User
) -> None:
    dataset = await mint(api, owner)
    legacy = f"datasets/{dataset['id'].replace('/', '-')}/"

    async def move() -> None:
        async with server.app.state.sessions() as session, session.begin():
            await session.execute(
                update(DatasetRow).where(DatasetRow.item_id == dataset["id"]).values(prefix=legacy)
            )

    server.call(move)
    r = await api.get(f"/datastore/datasets/{dataset['id']}", headers=owner.headers)
    assert r.json()["storage"]["prefix"] == legacy
    assert (await credentials(api, owner, dataset["id"], "read"))["prefix"] == legacy
