"""cloudpathlib paths bound to scoped credentials (blocking: called through threads)."""

from __future__ import annotations

import anyio
import pytest

from provena_like import UnsafePath
from provena_like.storage import S3Credentials, dataset_path
from provena_like.testing.seaweed import SeaweedS3
from tests.support.storage_helpers import BUCKET, mint


@pytest.mark.anyio
async def test_dataset_path_reads_and_writes_inside_the_prefix(creds: S3Credentials) -> None:
    path = dataset_path(creds, "notes/hello.txt")
    assert str(path) == f"s3://{BUCKET}/{creds.prefix}notes/hello.txt"
    await anyio.to_thread.run_sync(path.write_text, "hello")
    assert await anyio.to_thread.run_sync(path.read_text) == "hello"
    root = dataset_path(creds)
    names = await anyio.to_thread.run_sync(lambda: sorted(p.name for p in root.iterdir()))
    assert names == ["notes"]


def test_dataset_path_is_scoped(store: SeaweedS3, prefix: str) -> None:
    creds = mint(store, prefix)
    other = S3Credentials(
        access_key_id=creds.access_key_id,
        secret_access_key=creds.secret_access_key,
        session_token=creds.session_token,
        expiration=creds.expiration,
        endpoint_url=creds.endpoint_url,
        region=creds.region,
        bucket=creds.bucket,
        prefix="datasets/someone-else/",
    )
    with pytest.raises(Exception, match="403|AccessDenied|Forbidden"):
        dataset_path(other, "x.txt").write_text("no")
    with pytest.raises(UnsafePath):
        dataset_path(creds, "../x")
