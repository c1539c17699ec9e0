"""The transfer engine on every store of the suite: upload (single and multipart), download,
sync, delete, verify and awkward keys, with credentials scoped by STS where the store has it
(SeaweedFS, JuiceFS) and static keys where it hasn't (rclone, moto).

What each store can't do is in the guide "Running on another S3 store"; every test here runs
on every store it names, so a claim there that a store supports something is checked here.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from provena_like.storage import TransferEngine
from tests.conformance.conftest import BUCKET, local_tree
from tests.support.s3_stores import StoreInfo, admin_s3, mint_scoped, scoped_s3

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
PART = 5 * MiB
AWKWARD = [
    "ünï cödé/naïve résumé.txt",
    "spaces and (parens) [brackets]/a b.csv",
    "signs/+plus=equals&amp;%25percent#hash?q!*'.txt",
    'quotes/"quoted" ~tilde`{braces}^caret.txt',
    "deep/" + "/".join(f"level{i}" for i in range(12)) + "/leaf.bin",
    "emoji/🐟 reef.dat",
    "dots/..hidden..name.",
]
ENGINE = {"multipart_threshold": PART, "part_size": PART, "ranged_get_threshold": PART}


@pytest.fixture
def prefix() -> str:
    return f"ds-{uuid.uuid4().hex[:12]}/"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def keys_under(store: StoreInfo, prefix: str) -> list[str]:
    """The objects under ``prefix`` as the store's admin lists them, directory markers left
    out: JuiceFS (a file system underneath) lists the directories its deletes leave behind as
    ``sub/``, and the engine skips such keys too."""
    page = admin_s3(store).list_objects_v2(Bucket=BUCKET, Prefix=prefix)
    keys = (o["Key"][len(prefix) :] for o in page.get("Contents", []))
    return sorted(k for k in keys if not k.endswith("/"))


async def test_upload_download_and_verify(s3_store: StoreInfo, tmp_path: Path, prefix: str) -> None:
    files = {name: os.urandom(100 + i) for i, name in enumerate(AWKWARD)}
    files["big.bin"] = os.urandom(PART + MiB)  # two parts up, two ranges down
    files["empty.txt"] = b""
    src = local_tree(tmp_path / "src", files)
    async with TransferEngine(mint_scoped(s3_store, BUCKET, prefix, "write"), **ENGINE) as engine:
        up = await engine.upload(src)
        assert up.failed == [], [(f.path, f.reason) for f in up.failed]
        assert {f.path: f.sha256 for f in up.ok} == {k: sha(v) for k, v in files.items()}
        assert sorted([o.key async for o in engine.list()]) == sorted(files)
        assert keys_under(s3_store, prefix) == sorted(files)
        head = await engine.stat("big.bin")
        assert head is not None and head.size == len(files["big.bin"])

        # the manifest's view (what the datastore records): key, local path, sha256, size
        manifest = [(f.path, f.path, f.sha256, f.size) for f in up.ok]
        dest = tmp_path / "dest"
        down = await engine.download(manifest, dest)
        assert down.failed == [], [(f.path, f.reason) for f in down.failed]
        for name, data in files.items():
            assert (dest / name).read_bytes() == data, name
        assert (await engine.verify(dest, manifest)).matches

        changed = bytearray(files[AWKWARD[0]])
        changed[0] ^= 1
        (dest / AWKWARD[0]).write_bytes(bytes(changed))
        (dest / "big.bin").unlink()
        check = await engine.verify(dest, manifest)
        assert [c.path for c in check.mismatched] == [AWKWARD[0]]
        assert [c.path for c in check.missing_local] == ["big.bin"]


async def test_sync_both_ways_and_delete(s3_store: StoreInfo, tmp_path: Path, prefix: str) -> None:
    files = {"a.csv": b"1,2\n", "sub/b.csv": b"3,4\n", AWKWARD[2]: b"signs", "c.bin": b"c"}
    src = local_tree(tmp_path / "src", files)
    async with TransferEngine(mint_scoped(s3_store, BUCKET, prefix, "write"), **ENGINE) as engine:
        first = await engine.sync_up(src)
        assert sorted(f.path for f in first.ok) == sorted(files)
        again = await engine.sync_up(src)
        assert again.ok == [] and {f.reason for f in again.skipped} == {"unchanged"}

        (src / "c.bin").unlink()
        (src / "a.csv").write_bytes(b"1,2\n5,6\n")
        second = await engine.sync_up(src, delete=True)
        assert {f.path: f.reason for f in second.ok} == {"a.csv": None, "c.bin": "deleted"}
        assert "c.bin" not in keys_under(s3_store, prefix)

        dest = tmp_path / "dest"
        down = await engine.sync_down(dest)
        assert sorted(f.path for f in down.ok) == sorted(["a.csv", "sub/b.csv", AWKWARD[2]])
        assert (dest / "a.csv").read_bytes() == b"1,2\n5,6\n"
        unchanged = await engine.sync_down(dest)
        assert unchanged.ok == [] and {f.reason for f in unchanged.skipped} == {"unchanged"}

        # DeleteObjects (with Content-MD5, which MinIO-family stores and rclone require)
        results = await engine.delete(["a.csv", "sub/b.csv", AWKWARD[2], "never-there.txt"])
        assert [r.path for r in results if not r.ok] == []
        assert keys_under(s3_store, prefix) == []
        assert (await engine.sync_down(tmp_path / "again")).files == []


def denied(call: Any) -> bool:
    try:
        call()
    except ClientError as err:
        return err.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return False


@pytest.mark.parametrize("name", ["seaweedfs", "juicefs"])  # the stores with STS
async def test_scoped_credentials_keep_to_their_prefix(
    name: str, request: pytest.FixtureRequest
) -> None:
    store: StoreInfo = request.getfixturevalue(f"{name}_store")
    pa, pb = f"ds-{uuid.uuid4().hex[:12]}/", f"ds-{uuid.uuid4().hex[:12]}/"
    admin = admin_s3(store)
    admin.put_object(Bucket=BUCKET, Key=f"{pb}secret.bin", Body=b"B's")
    admin.put_object(Bucket=BUCKET, Key=f"{pa}kept.bin", Body=b"A's")
    write = mint_scoped(store, BUCKET, pa, "write")
    s3 = scoped_s3(write)
    s3.put_object(Bucket=BUCKET, Key=f"{pa}mine.bin", Body=b"ok")
    cases = {
        "get from B": lambda: s3.get_object(Bucket=BUCKET, Key=f"{pb}secret.bin"),
        "put in B": lambda: s3.put_object(Bucket=BUCKET, Key=f"{pb}x", Body=b"x"),
        "delete in B": lambda: s3.delete_object(Bucket=BUCKET, Key=f"{pb}secret.bin"),
        "list B": lambda: s3.list_objects_v2(Bucket=BUCKET, Prefix=pb),
        "list the bucket": lambda: s3.list_objects_v2(Bucket=BUCKET),
        "list every upload": lambda: s3.list_multipart_uploads(Bucket=BUCKET),
        "multipart in B": lambda: s3.create_multipart_upload(Bucket=BUCKET, Key=f"{pb}m"),
    }
    assert [case for case, call in cases.items() if not denied(call)] == []

    read = mint_scoped(store, BUCKET, pa, "read")
    assert denied(lambda: scoped_s3(read).put_object(Bucket=BUCKET, Key=f"{pa}n", Body=b"n"))
    async with TransferEngine(read, **ENGINE) as engine:
        assert [o.key async for o in engine.list()] == ["kept.bin", "mine.bin"]
        # a delete the store refuses is never reported done, and the object stays
        results = await engine.delete(["kept.bin"])
        assert [r.status for r in results] == ["failed"]
    assert admin.get_object(Bucket=BUCKET, Key=f"{pa}kept.bin")["Body"].read() == b"A's"
    assert admin.get_object(Bucket=BUCKET, Key=f"{pb}secret.bin")["Body"].read() == b"B's"
    assert keys_under(store, pb) == ["secret.bin"]
