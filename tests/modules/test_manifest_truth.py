"""The manifest's sha256 is the truth: a store that keeps no ``x-amz-meta-sha256`` changes nothing.

Some stores drop user metadata (rclone keeps it in memory only, the JuiceFS gateway only with
``--object-meta``). Reproduced on SeaweedFS by stripping it (CopyObject with
``MetadataDirective=REPLACE``) after the upload: syncs must still send and fetch nothing, and
downloads must still be checked against the manifest's sha256, single-part and multipart alike.
"""

from __future__ import annotations

import dataclasses
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provena_like import ChecksumMismatch, ProvenaClient
from provena_like.testing.localstack import BUCKET, LocalStack
from tests.support.datastore_helpers import s3_client
from tests.support.l3_helpers import make_record
from tests.support.storage_helpers import strip_metadata

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


@pytest.fixture
def admin(localstack: LocalStack) -> Iterator[Any]:
    assert localstack.s3 is not None
    with s3_client(localstack.s3) as client:
        yield client


async def test_syncs_and_downloads_go_by_the_manifest_without_object_metadata(
    tmp_path: Path, pv: ProvenaClient, refs: dict[str, str], admin: Any
) -> None:
    # a 6 MiB file goes up in two parts of 5 MiB
    pv.datastore.transfers = dataclasses.replace(
        pv.datastore.transfers, multipart_threshold=6 * MiB, part_size=5 * MiB
    )
    ds = await pv.datastore.mint(make_record(refs, name=f"No metadata {uuid.uuid4().hex[:6]}"))
    src = tmp_path / "src"
    src.mkdir()
    files = {"small.csv": os.urandom(100), "big.bin": os.urandom(6 * MiB + 10)}
    for name, data in files.items():
        (src / name).write_bytes(data)
    (await ds.upload(src)).raise_for_failures()
    manifest = {e.path: e for e in await ds.list_files()}
    assert manifest["big.bin"].etag.endswith("-2")
    for name in files:
        strip_metadata(admin, ds.dataset.storage.prefix + name, BUCKET)

    again = await ds.sync_up(src)
    assert {f.path: f.reason for f in again} == {"big.bin": "unchanged", "small.csv": "unchanged"}
    assert {f.path: f.sha256 for f in again} == {p: e.sha256 for p, e in manifest.items()}

    dest = tmp_path / "copy"
    down = await ds.download(dest)
    down.raise_for_failures()
    assert {f.path: f.sha256 for f in down.ok} == {p: e.sha256 for p, e in manifest.items()}
    first = await ds.sync_down(dest)
    assert first.ok == [] and first.bytes == 0 and len(first.skipped) == 2
    assert (await ds.verify(dest)).matches

    # other bytes of the same size behind the manifest's back (no metadata either): the
    # manifest's sha256 refuses them
    other = os.urandom(len(files["small.csv"]))
    admin.put_object(Bucket=BUCKET, Key=ds.dataset.storage.prefix + "small.csv", Body=other)
    refused = await ds.download(tmp_path / "second")
    assert [f.path for f in refused.failed] == ["small.csv"]
    assert isinstance(refused.failed[0].error, ChecksumMismatch)
    assert not (tmp_path / "second" / "small.csv").exists()
