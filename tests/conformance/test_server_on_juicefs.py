"""The reference server on the JuiceFS S3 gateway (MinIO rules): STS through an IAM user,
and each dataset's prefix enforced by the gateway itself."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

from provena_like import Locked, ProvenaClient
from provena_like.modules.credentials import to_s3_credentials
from provena_like.storage import BytesTransferred, TransferEngine, TransferEvent
from tests.conformance.conftest import BUCKET
from tests.support.l3_helpers import mint_dataset
from tests.support.s3_stores import StoreInfo, admin_s3, refused, scoped_s3
from tests.support.storage_helpers import count_requests

pytestmark = pytest.mark.anyio

PART = 5 * 1024 * 1024


async def test_write_credentials_from_the_gateway_reach_only_their_dataset(
    juicefs_pv: ProvenaClient, juicefs_store: StoreInfo, tmp_path: Path
) -> None:
    a = await mint_dataset(juicefs_pv, "A")
    b = await mint_dataset(juicefs_pv, "B")
    # the SDK's own path: upload through the engine with write credentials, then register
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.csv").write_bytes(os.urandom(1000))
    (src / "b.csv").write_bytes(b"in B")
    up = await a.sync_up(src, prefix="raw/")
    assert sorted(f.path for f in up.ok) == ["raw/a.csv", "raw/b.csv"]
    await b.sync_up(src, prefix="raw/")

    creds = await a.credentials("write")
    # the public endpoint, not the one the server calls (the SDK's uploads went there too)
    assert creds.endpoint_url == juicefs_store.endpoint_url.replace("127.0.0.1", "localhost")
    pa = creds.prefix
    pb = (await b.credentials("read")).prefix
    assert pa != pb
    s3 = scoped_s3(to_s3_credentials(creds))
    s3.put_object(Bucket=BUCKET, Key=f"{pa}extra.bin", Body=b"x")
    assert (
        s3.get_object(Bucket=BUCKET, Key=f"{pa}raw/a.csv")["Body"].read()
        == (src / "a.csv").read_bytes()
    )
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=pa)
    assert f"{pa}raw/a.csv" in {o["Key"] for o in listed["Contents"]}
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key=f"{pa}big.bin")
    s3.list_parts(Bucket=BUCKET, Key=f"{pa}big.bin", UploadId=upload["UploadId"])
    s3.abort_multipart_upload(Bucket=BUCKET, Key=f"{pa}big.bin", UploadId=upload["UploadId"])

    cases = {
        "get from B": lambda: s3.get_object(Bucket=BUCKET, Key=f"{pb}raw/b.csv"),
        "head in B": lambda: s3.head_object(Bucket=BUCKET, Key=f"{pb}raw/b.csv"),
        "put in B": lambda: s3.put_object(Bucket=BUCKET, Key=f"{pb}x", Body=b"no"),
        "delete in B": lambda: s3.delete_object(Bucket=BUCKET, Key=f"{pb}raw/b.csv"),
        "list B": lambda: s3.list_objects_v2(Bucket=BUCKET, Prefix=pb),
        "list the bucket": lambda: s3.list_objects_v2(Bucket=BUCKET),
        "list A without its slash": lambda: s3.list_objects_v2(Bucket=BUCKET, Prefix=pa[:-1]),
        "multipart in B": lambda: s3.create_multipart_upload(Bucket=BUCKET, Key=f"{pb}m"),
        "copy B into A": lambda: s3.copy_object(
            Bucket=BUCKET, Key=f"{pa}stolen", CopySource={"Bucket": BUCKET, "Key": f"{pb}raw/b.csv"}
        ),
        # MinIO rules can't limit multipart listing to a prefix: not granted at all
        "list every upload": lambda: s3.list_multipart_uploads(Bucket=BUCKET),
        "list uploads of B": lambda: s3.list_multipart_uploads(Bucket=BUCKET, Prefix=pb),
        "put metadata.json": lambda: s3.put_object(
            Bucket=BUCKET, Key=f"{pa}metadata.json", Body=b"{}"
        ),
        "delete metadata.json": lambda: s3.delete_object(Bucket=BUCKET, Key=f"{pa}metadata.json"),
    }
    for name, call in cases.items():
        assert refused(call) in {"AccessDenied", "403"}, name
    batch = s3.delete_objects(
        Bucket=BUCKET,
        Delete={"Objects": [{"Key": f"{pb}raw/b.csv"}, {"Key": f"{pa}metadata.json"}]},
    )
    assert {e["Key"] for e in batch.get("Errors", [])} == {f"{pb}raw/b.csv", f"{pa}metadata.json"}

    admin = admin_s3(juicefs_store)  # nothing of B changed, and A's metadata.json is intact
    assert admin.get_object(Bucket=BUCKET, Key=f"{pb}raw/b.csv")["Body"].read() == b"in B"
    assert "Contents" not in admin.list_objects_v2(Bucket=BUCKET, Prefix=f"{pb}x")
    assert "Contents" not in admin.list_objects_v2(Bucket=BUCKET, Prefix=f"{pa}stolen")
    admin.head_object(Bucket=BUCKET, Key=f"{pa}metadata.json")

    read = scoped_s3(to_s3_credentials(await a.credentials("read")))
    assert read.get_object(Bucket=BUCKET, Key=f"{pa}extra.bin")["Body"].read() == b"x"
    assert refused(lambda: read.put_object(Bucket=BUCKET, Key=f"{pa}y", Body=b"y")) in {
        "AccessDenied",
        "403",
    }
    assert refused(lambda: read.get_object(Bucket=BUCKET, Key=f"{pb}raw/b.csv")) in {
        "AccessDenied",
        "403",
    }


async def test_files_round_trip_through_the_server_on_the_gateway(
    juicefs_pv: ProvenaClient,
    juicefs_store: StoreInfo,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ds = await mint_dataset(juicefs_pv, "Round trip")
    src = tmp_path / "src"
    (src / "sub dir").mkdir(parents=True)
    (src / "sub dir" / "ünï cödé #1.txt").write_bytes(b"awkward")
    (src / "big.bin").write_bytes(os.urandom(6 * 1024 * 1024))
    await ds.sync_up(src)
    assert sorted(f.path for f in await ds.list_files()) == ["big.bin", "sub dir/ünï cödé #1.txt"]
    dest = tmp_path / "dest"
    down = await ds.sync_down(dest)
    assert len(down.ok) == 2
    assert (dest / "big.bin").read_bytes() == (src / "big.bin").read_bytes()
    prefix = (await ds.credentials("read")).prefix
    caplog.set_level(logging.WARNING, logger="provena_like.server")
    removed = await ds.remove_files(["big.bin"])
    assert removed.removed == ["big.bin"]
    assert [f.path for f in await ds.list_files()] == ["sub dir/ünï cödé #1.txt"]
    # the object went too, and the server knew it (the gateway's DeleteObjects answer names
    # no key: the server checks with HEAD rather than logging the object as orphaned)
    listed = admin_s3(juicefs_store).list_objects_v2(Bucket=BUCKET, Prefix=f"{prefix}big")
    assert "Contents" not in listed
    assert [r.getMessage() for r in caplog.records if "orphan" in r.getMessage()] == []


async def test_an_interrupted_upload_resumes_without_listing_uploads(
    juicefs_pv: ProvenaClient, tmp_path: Path
) -> None:
    """The gateway's write credentials may not list uploads (MinIO rules can't scope that to
    a prefix); resuming asks ListParts of the recorded upload instead, and sends only what is
    missing."""
    ds = await mint_dataset(juicefs_pv, "Resume")
    data = os.urandom(3 * PART)
    (tmp_path / "big.bin").write_bytes(data)
    creds = to_s3_credentials(await ds.credentials("write"))
    settings: dict[str, Any] = {"multipart_threshold": PART, "part_size": PART}
    async with TransferEngine(creds, max_concurrency=1, **settings) as engine:
        with anyio.CancelScope() as scope:

            def progress(event: TransferEvent) -> None:
                if isinstance(event, BytesTransferred) and event.total_done >= PART:
                    scope.cancel()  # once the first part is up

            await engine.upload(tmp_path, progress=progress)
        assert scope.cancel_called
    async with TransferEngine(creds, max_concurrency=1, **settings) as engine:
        parts = count_requests(engine, ("UploadPart",))
        result = await engine.upload(tmp_path)
    assert [f.sha256 for f in result.ok] == [hashlib.sha256(data).hexdigest()]
    assert len(parts) <= 2  # the first part was not sent again
    s3 = scoped_s3(to_s3_credentials(await ds.credentials("read")))
    assert s3.get_object(Bucket=BUCKET, Key=f"{creds.prefix}big.bin")["Body"].read() == data


async def test_a_lock_stops_new_write_credentials_but_not_earlier_ones(
    juicefs_pv: ProvenaClient,
) -> None:
    """The documented exception of MinIO-family stores: their bucket policies don't govern
    STS sessions (the freeze policy is refused as malformed), so the stack runs with
    ``freeze_writes=False``: a lock refuses new write credentials, while ones minted before
    it keep writing until they expire (at most ``write_credentials_max_seconds``)."""
    ds = await mint_dataset(juicefs_pv, "Locked")
    before = await ds.credentials("write")
    await juicefs_pv.registry_client.lock_item(ds.id, "frozen for review")
    with pytest.raises(Locked):  # asked of the server (the module caches credentials)
        await juicefs_pv.datastore_client.get_credentials(ds.id, "write")
    earlier = scoped_s3(to_s3_credentials(before))
    earlier.put_object(Bucket=BUCKET, Key=f"{before.prefix}late.bin", Body=b"late")
