"""Scoped S3 credentials, checked by the S3 server itself (boto3 with the returned keys)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx
import pytest
from botocore.exceptions import ClientError

from provena_like.models.datastore import ScopedCredentials
from provena_like.testing.localstack import LocalStack
from provena_like.testing.seaweed import SeaweedS3
from tests.support.datastore_helpers import (
    Refs,
    User,
    error,
    mint,
    path,
    record,
    s3_client,
    s3_error,
)

pytestmark = pytest.mark.anyio


async def credentials(
    client: httpx.AsyncClient, user: User, dataset_id: str, access: str, **extra: Any
) -> dict[str, Any]:
    r = await client.post(
        path(dataset_id, "/credentials"), json={"access": access, **extra}, headers=user.headers
    )
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    creds: dict[str, Any] = r.json()
    return creds


def seconds_left(creds: dict[str, Any]) -> float:
    expiration = datetime.fromisoformat(creds["expiration"])
    assert expiration.tzinfo is not None
    return (expiration - datetime.now(UTC)).total_seconds()


def denied(call: Callable[[], Any]) -> tuple[int, str]:
    with pytest.raises(ClientError) as info:
        call()
    return s3_error(info.value)


async def test_write_credentials_reach_only_their_own_prefix(
    client: httpx.AsyncClient, owner: User, refs: Refs, store: SeaweedS3, bucket: str
) -> None:
    a = await mint(client, owner, record(refs, name="A"))
    b = await mint(client, owner, record(refs, name="B"))
    pa, pb = a["storage"]["prefix"], b["storage"]["prefix"]
    with s3_client(store) as admin:
        admin.put_object(Bucket=bucket, Key=f"{pb}secret.bin", Body=b"not yours")
        original = admin.get_object(Bucket=bucket, Key=f"{pa}metadata.json")["Body"].read()

    creds = await credentials(client, owner, a["id"], "write")
    assert creds["bucket"] == bucket and creds["prefix"] == pa and creds["access"] == "write"
    assert creds["endpoint_url"] == store.endpoint_url and creds["region"] == store.region
    # write credentials are short-lived: write_credentials_max_seconds (900 s), as STS stated it
    assert 880 < seconds_left(creds) <= 905
    assert creds["access_key_id"] != store.admin_access_key

    with s3_client(store, creds) as s3:
        s3.put_object(Bucket=bucket, Key=f"{pa}data/x.csv", Body=b"1,2,3\n")
        assert s3.get_object(Bucket=bucket, Key=f"{pa}data/x.csv")["Body"].read() == b"1,2,3\n"
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=pa)
        assert {o["Key"] for o in listed["Contents"]} == {f"{pa}metadata.json", f"{pa}data/x.csv"}
        s3.list_objects_v2(Bucket=bucket, Prefix=f"{pa}data/")
        upload = s3.create_multipart_upload(Bucket=bucket, Key=f"{pa}big.bin")
        s3.upload_part(
            Bucket=bucket, Key=f"{pa}big.bin", UploadId=upload["UploadId"], PartNumber=1, Body=b"p"
        )
        s3.list_parts(Bucket=bucket, Key=f"{pa}big.bin", UploadId=upload["UploadId"])
        uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=pa)
        assert [u["Key"] for u in uploads["Uploads"]] == [f"{pa}big.bin"]
        s3.abort_multipart_upload(Bucket=bucket, Key=f"{pa}big.bin", UploadId=upload["UploadId"])
        s3.delete_object(Bucket=bucket, Key=f"{pa}data/x.csv")
        assert s3.get_object(Bucket=bucket, Key=f"{pa}metadata.json")["Body"].read() == original

        refused = {
            "put in B": lambda: s3.put_object(Bucket=bucket, Key=f"{pb}x", Body=b"no"),
            "get from B": lambda: s3.get_object(Bucket=bucket, Key=f"{pb}secret.bin"),
            "delete in B": lambda: s3.delete_object(Bucket=bucket, Key=f"{pb}secret.bin"),
            "list B": lambda: s3.list_objects_v2(Bucket=bucket, Prefix=pb),
            "list the bucket": lambda: s3.list_objects_v2(Bucket=bucket),
            "list A without its slash": lambda: s3.list_objects_v2(Bucket=bucket, Prefix=pa[:-1]),
            "list all uploads": lambda: s3.list_multipart_uploads(Bucket=bucket),
            "multipart in B": lambda: s3.create_multipart_upload(Bucket=bucket, Key=f"{pb}m"),
            "put metadata.json": lambda: s3.put_object(
                Bucket=bucket, Key=f"{pa}metadata.json", Body=b"{}"
            ),
            "delete metadata.json": lambda: s3.delete_object(
                Bucket=bucket, Key=f"{pa}metadata.json"
            ),
            "copy onto metadata.json": lambda: s3.copy_object(
                Bucket=bucket,
                Key=f"{pa}metadata.json",
                CopySource={"Bucket": bucket, "Key": f"{pa}metadata.json"},
                MetadataDirective="REPLACE",
            ),
            "multipart onto metadata.json": lambda: s3.create_multipart_upload(
                Bucket=bucket, Key=f"{pa}metadata.json"
            ),
        }
        for name, call in refused.items():
            assert denied(call) == (403, "AccessDenied"), name
        batch = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": f"{pa}metadata.json"}]}
        )
        assert [e["Code"] for e in batch["Errors"]] == ["AccessDenied"]

    with s3_client(store) as admin:  # nothing leaked through
        assert admin.get_object(Bucket=bucket, Key=f"{pb}secret.bin")["Body"].read() == (
            b"not yours"
        )
        assert admin.get_object(Bucket=bucket, Key=f"{pa}metadata.json")["Body"].read() == (
            original
        )
        assert "Contents" not in admin.list_objects_v2(Bucket=bucket, Prefix=f"{pb}x")


async def test_read_credentials_cannot_write(
    client: httpx.AsyncClient, owner: User, refs: Refs, store: SeaweedS3, bucket: str
) -> None:
    ds = await mint(client, owner, record(refs))
    prefix = ds["storage"]["prefix"]
    with s3_client(store) as admin:
        admin.put_object(Bucket=bucket, Key=f"{prefix}a.txt", Body=b"data")
    creds = await credentials(client, owner, ds["id"], "read")
    assert creds["access"] == "read"
    with s3_client(store, creds) as s3:
        assert s3.get_object(Bucket=bucket, Key=f"{prefix}a.txt")["Body"].read() == b"data"
        assert len(s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]) == 2
        refused = {
            "put": lambda: s3.put_object(Bucket=bucket, Key=f"{prefix}b.txt", Body=b"x"),
            "overwrite": lambda: s3.put_object(Bucket=bucket, Key=f"{prefix}a.txt", Body=b"x"),
            "delete": lambda: s3.delete_object(Bucket=bucket, Key=f"{prefix}a.txt"),
            "multipart": lambda: s3.create_multipart_upload(Bucket=bucket, Key=f"{prefix}m"),
            "list uploads": lambda: s3.list_multipart_uploads(Bucket=bucket, Prefix=prefix),
        }
        for name, call in refused.items():
            assert denied(call) == (403, "AccessDenied"), name


async def test_roles_locks_and_lifetimes(
    client: httpx.AsyncClient,
    registry: httpx.AsyncClient,
    owner: User,
    refs: Refs,
    new_user: Callable[..., User],
) -> None:
    ds = await mint(client, owner, record(refs))
    reader = new_user("reader")
    lab_member = new_user("member", groups=("datastore-lab",))
    r = await registry.put(
        f"/items/{ds['id']}/access",
        json={
            "owner": owner.name,
            "general": ["metadata-read"],
            "groups": {"datastore-lab": ["data-read"]},
        },
        headers=owner.headers,
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        path(ds["id"], "/credentials"), json={"access": "read"}, headers=reader.headers
    )
    assert r.status_code == 403 and "'data-read'" in error(r)["message"]
    await credentials(client, lab_member, ds["id"], "read")
    r = await client.post(
        path(ds["id"], "/credentials"), json={"access": "write"}, headers=lab_member.headers
    )
    assert r.status_code == 403 and "'data-write'" in error(r)["message"]

    creds = await credentials(client, owner, ds["id"], "write", duration_seconds=900)
    assert 880 < seconds_left(creds) <= 905
    creds = await credentials(client, owner, ds["id"], "read", duration_seconds=3600)
    assert 3580 < seconds_left(creds) <= 3605
    for bad, field in (
        ({"duration_seconds": 3601}, "duration_seconds"),
        ({"access": "x"}, "access"),
    ):
        r = await client.post(path(ds["id"], "/credentials"), json=bad, headers=owner.headers)
        assert r.status_code == 422 and error(r)["details"][0]["field"] == field

    r = await registry.post(f"/items/{ds['id']}/lock", json={"reason": "r"}, headers=owner.headers)
    assert r.status_code == 200
    r = await client.post(
        path(ds["id"], "/credentials"), json={"access": "write"}, headers=owner.headers
    )
    assert r.status_code == 409 and error(r)["code"] == "locked"
    await credentials(client, owner, ds["id"], "read")


@pytest.fixture(scope="module")
async def short_lived(anyio_backend: str) -> AsyncIterator[LocalStack]:
    """A second stack whose object store issues 3-second session credentials by default."""
    del anyio_backend
    async with LocalStack(s3_token_duration="3s") as stack:
        yield stack


def _as_dict(creds: ScopedCredentials) -> dict[str, Any]:
    return {
        "access_key_id": creds.access_key_id,
        "secret_access_key": creds.secret_access_key.get_secret_value(),
        "session_token": creds.session_token.get_secret_value(),
    }


async def test_expired_credentials_are_refused(short_lived: LocalStack) -> None:
    store = short_lived.s3
    assert store is not None
    async with short_lived.client() as pv:
        org = await pv.registry_client.create_item(
            {"subtype": "organisation", "record": {"name": "Short-lived Institute"}}
        )
        person = await pv.registry_client.create_item(
            {
                "subtype": "person",
                "record": {"first_name": "Ed", "last_name": "Expiry", "email": "ed@example.org"},
            }
        )
        minted = await pv.datastore_client.mint_dataset({"record": record(Refs(org.id, person.id))})
        api = pv.datastore_client
        # below the STS minimum the store's default (3 s here) applies, as STS states it
        before = datetime.now(UTC)
        short = await api.get_credentials(minted.id, "write", duration_seconds=60)
        after = datetime.now(UTC)
        key = minted.storage.prefix + "early.txt"
        with s3_client(store, _as_dict(short)) as s3:  # at once: they last 3 s
            s3.put_object(Bucket=minted.storage.bucket, Key=key, Body=b"in time")
        default = await api.get_credentials(minted.id, "read")
        asked = await api.get_credentials(minted.id, "read", duration_seconds=900)
    # issued between `before` and `after`, so its lifetime lies between these two values (on a
    # loaded machine more than its 3 s may pass before this line: seconds_left() would be < 0)
    assert short.seconds_left(before) > 0
    assert short.seconds_left(after) <= 3.5
    assert 880 < default.seconds_left() <= 905  # the server's default: 15 min
    assert 880 < asked.seconds_left() <= 905
    assert short.secret_access_key.get_secret_value() not in repr(short)
    assert short.session_token.get_secret_value() not in repr(short)

    with s3_client(store, _as_dict(short)) as s3:
        await anyio.sleep(max(0.0, short.seconds_left()) + 1.5)
        status, code = denied(
            lambda: s3.put_object(Bucket=minted.storage.bucket, Key=key, Body=b"too late")
        )
    assert (status, code) == (403, "InvalidAccessKeyId")
