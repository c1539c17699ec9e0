"""L3 ``sync_up(delete=True)`` and ``remove_files``: the manifest entry and the object go."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from provena_like import ProvenaClient
from provena_like.models.registry import Item
from provena_like.modules.interactive import InteractiveDataset
from provena_like.testing.localstack import BUCKET, LocalStack
from tests.support.l3_helpers import make_record

pytestmark = pytest.mark.anyio


def stored_keys(localstack: LocalStack, ds: InteractiveDataset) -> list[str]:
    """The object paths under the dataset's prefix, listed with the admin's S3 client."""
    s3_store = localstack.s3
    assert s3_store is not None
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_store.endpoint_url,
        region_name=s3_store.region,
        aws_access_key_id=s3_store.admin_access_key,
        aws_secret_access_key=s3_store.admin_secret_key,
        config=Config(s3={"addressing_style": "path"}),
    )
    prefix = ds.dataset.storage.prefix
    try:
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    finally:
        s3.close()
    return sorted(o["Key"][len(prefix) :] for o in listed.get("Contents", []))


async def test_sync_up_delete_removes_manifest_entries_and_objects(
    tmp_path: Path, pv: ProvenaClient, refs: dict[str, str], localstack: LocalStack
) -> None:
    ds = await pv.datastore.mint(make_record(refs, name=f"Pruned {uuid.uuid4().hex[:6]}"))
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    for name in ("a.csv", "b.csv", "keep.tmp", "sub/c.csv"):
        (src / name).write_text(name)
    first = await ds.sync_up(src, prefix="raw")
    assert len(first.ok) == 4
    other = tmp_path / "other.csv"
    other.write_text("outside the synced prefix")
    assert len((await ds.upload(other)).ok) == 1

    for name in ("b.csv", "keep.tmp", "sub/c.csv"):
        (src / name).unlink()
    plan = await ds.sync_up(src, prefix="raw", delete=True, dry_run=True, exclude=["*.tmp"])
    assert {f.path: (f.status, f.reason) for f in plan} == {
        "raw/a.csv": ("skipped", "unchanged"),
        "raw/b.csv": ("skipped", "would delete"),
        "raw/sub/c.csv": ("skipped", "would delete"),
    }
    everything = ["other.csv", "raw/a.csv", "raw/b.csv", "raw/keep.tmp", "raw/sub/c.csv"]
    assert [f.path for f in await ds.list_files()] == everything  # a dry run removes nothing
    assert stored_keys(localstack, ds) == sorted([*everything, "metadata.json"])

    done = await ds.sync_up(src, prefix="raw", delete=True, exclude=["*.tmp"])
    assert {f.path: (f.status, f.reason) for f in done} == {
        "raw/a.csv": ("skipped", "unchanged"),
        "raw/b.csv": ("ok", "deleted"),
        "raw/sub/c.csv": ("ok", "deleted"),
    }
    left = ["other.csv", "raw/a.csv", "raw/keep.tmp"]  # excluded and outside: untouched
    assert [f.path for f in await ds.list_files()] == left
    assert stored_keys(localstack, ds) == sorted([*left, "metadata.json"])

    removed = await ds.remove_files(["raw/keep.tmp", "raw/keep.tmp", "raw/gone.csv"])
    assert removed.removed == ["raw/keep.tmp"] and removed.not_registered == ["raw/gone.csv"]
    assert stored_keys(localstack, ds) == ["metadata.json", "other.csv", "raw/a.csv"]


async def test_sync_up_delete_reports_a_refused_batch_as_failed(
    tmp_path: Path, pv: ProvenaClient, refs: dict[str, str], localstack: LocalStack
) -> None:
    ds = await pv.datastore.mint(make_record(refs, name=f"Locked {uuid.uuid4().hex[:6]}"))
    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.csv", "b.csv"):
        (src / name).write_text(name)
    assert len((await ds.sync_up(src)).ok) == 2
    (src / "a.csv").write_text("a, edited")
    (src / "b.csv").unlink()
    locked: list[Item] = []

    async def lock_once(_event: object) -> None:
        # locked once the sync is under way (with write credentials): the writes after fail
        if not locked:
            locked.append(await pv.registry_client.lock_item(ds.id, reason="frozen for the test"))

    result = await ds.sync_up(src, delete=True, progress=lock_once)
    assert locked
    failed = {f.path: f.reason or "" for f in result.failed}
    assert failed.keys() == {"a.csv", "b.csv"}
    # the store itself refuses the write once the lock froze the prefix (AccessDenied: the
    # engine asks for fresh credentials once, which the datastore refuses, saying why); if
    # the object went up before the lock, its registration is refused instead
    reason = failed["a.csv"]
    assert reason.startswith(("uploaded but not registered", "AccessDenied")) or (
        "is locked" in reason
    ), reason
    assert "locked" in failed["b.csv"]
    assert [f.path for f in await ds.list_files()] == ["a.csv", "b.csv"]
    assert "b.csv" in stored_keys(localstack, ds)
