"""L3 sync (manifest as the remote truth) and orphaned uploads, against the real stack."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from provena_like import ProvenaClient
from provena_like.testing.localstack import BUCKET, LocalStack
from tests.support.l3_helpers import make_record

pytestmark = pytest.mark.anyio


async def test_sync_up_registers_and_sync_down_verifies(
    tmp_path: Path, pv: ProvenaClient, refs: dict[str, str]
) -> None:
    ds = await pv.datastore.mint(make_record(refs, name=f"Synced {uuid.uuid4().hex[:6]}"))
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.csv", "b.csv", "c.csv"):
        (src / name).write_bytes(os.urandom(100))
    first = await ds.sync_up(src, prefix="raw/")
    assert sorted(f.path for f in first.ok) == ["raw/a.csv", "raw/b.csv", "raw/c.csv"]
    assert sorted(f.path for f in await ds.list_files()) == [f.path for f in first.ok]

    (src / "c.csv").unlink()
    edited = bytearray((src / "a.csv").read_bytes())
    edited[0] ^= 1
    (src / "a.csv").write_bytes(bytes(edited))
    plan = await ds.sync_up(src, prefix="raw/", delete=True, dry_run=True)
    assert {f.path: f.reason for f in plan} == {
        "raw/a.csv": "would upload",
        "raw/b.csv": "unchanged",
        "raw/c.csv": "would delete",
    }
    second = await ds.sync_up(src, prefix="raw/", delete=True)
    assert {f.path: f.reason for f in second.ok} == {"raw/a.csv": None, "raw/c.csv": "deleted"}
    manifest = {f.path: f.sha256 for f in await ds.list_files()}
    assert sorted(manifest) == ["raw/a.csv", "raw/b.csv"]
    assert manifest["raw/a.csv"] == second.ok[0].sha256

    dest = tmp_path / "dest"
    down = await ds.sync_down(dest, paths="raw/")
    assert len(down.ok) == 2
    again = await ds.sync_down(dest, paths="raw/")
    assert again.ok == [] and {f.reason for f in again.skipped} == {"unchanged"}
    assert (dest / "a.csv").read_bytes() == bytes(edited)


async def test_incomplete_uploads_are_listed_and_aborted(
    pv: ProvenaClient, refs: dict[str, str]
) -> None:
    ds = await pv.datastore.mint(make_record(refs, name=f"Orphans {uuid.uuid4().hex[:6]}"))
    assert await ds.incomplete_uploads() == []
    creds = await ds.credentials("write")
    from provena_like.modules.credentials import to_s3_credentials
    from provena_like.storage import TransferEngine

    async with TransferEngine(to_s3_credentials(creds)) as engine:
        client = engine._requests.client  # type: ignore[union-attr]
        location = to_s3_credentials(creds)
        await client.create_multipart_upload(
            Bucket=location.bucket, Key=location.prefix + "raw/big.bin"
        )
    assert [u.key for u in await ds.incomplete_uploads()] == ["raw/big.bin"]
    assert [u.key for u in await ds.abort_incomplete_uploads()] == ["raw/big.bin"]
    assert await ds.incomplete_uploads() == []


async def test_sync_up_resends_an_object_replaced_behind_the_manifest(
    tmp_path: Path, pv: ProvenaClient, refs: dict[str, str], localstack: LocalStack
) -> None:
    ds = await pv.datastore.mint(make_record(refs, name=f"Replaced {uuid.uuid4().hex[:6]}"))
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.csv", "b.csv"):
        (src / name).write_bytes(os.urandom(100))
    assert len((await ds.sync_up(src, prefix="raw/")).ok) == 2
    registered = {e.path: e.etag for e in await ds.list_files()}

    # same size, other bytes, put with the store's admin credentials: the manifest still
    # records the old sha256, but the listed ETag is no longer the one it recorded
    store = localstack.s3
    assert store is not None
    s3 = boto3.client(
        "s3",
        endpoint_url=store.endpoint_url,
        region_name=store.region,
        aws_access_key_id=store.admin_access_key,
        aws_secret_access_key=store.admin_secret_key,
        config=Config(s3={"addressing_style": "path"}),
    )
    key = ds.dataset.storage.prefix + "raw/a.csv"
    try:
        s3.put_object(Bucket=BUCKET, Key=key, Body=os.urandom(100))
        result = await ds.sync_up(src, prefix="raw/")
        assert {f.path: f.status for f in result} == {"raw/a.csv": "ok", "raw/b.csv": "skipped"}
        assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == (src / "a.csv").read_bytes()
    finally:
        s3.close()
    # the registered bytes are back (so is their ETag), and the next sync has nothing to do
    assert {e.path: e.etag for e in await ds.list_files()} == registered
    again = await ds.sync_up(src, prefix="raw/")
    assert {f.reason for f in again} == {"unchanged"}
