"""rclone's whole-file md5 of multipart objects (``md5chksum``), both ways, with real rclone.

A multipart object's ETag is no md5 of its bytes, so rclone stores the file's md5 in the
object's metadata (``X-Amz-Meta-Md5chksum``, base64) and ``rclone copy`` checks a download
against it. The engine writes it too when it computes the md5 (``md5=True``), so that rclone
users check what they fetch from a dataset; and it checks an rclone-uploaded object against
it when no sha256 is known or stored (instead of the multipart ETag, whose part size it
would have to guess), on a download as in a sync or a verify.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from provena_like import ChecksumMismatch
from provena_like.storage import S3Credentials, TransferEngine
from tests.storage.test_etag_checks import download_corrupted
from tests.support.s3_stores import _bin
from tests.support.storage_helpers import BUCKET, FaultProxy, put_multipart

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
PART = 5 * MiB
SIZE = 2 * PART + 123  # 3 parts


def rclone(creds: S3Credentials, tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run rclone with a remote ``t:`` for ``creds`` (from the environment, no config file)."""
    assert creds.session_token is not None and creds.endpoint_url is not None
    env = {
        **os.environ,
        "RCLONE_CONFIG": str(tmp / "rclone.conf"),
        "RCLONE_CONFIG_T_TYPE": "s3",
        "RCLONE_CONFIG_T_PROVIDER": "Other",
        "RCLONE_CONFIG_T_ACCESS_KEY_ID": creds.access_key_id,
        "RCLONE_CONFIG_T_SECRET_ACCESS_KEY": creds.secret_access_key,
        "RCLONE_CONFIG_T_SESSION_TOKEN": creds.session_token,
        "RCLONE_CONFIG_T_ENDPOINT": creds.endpoint_url,
        "RCLONE_CONFIG_T_REGION": creds.region,
        "RCLONE_CONFIG_T_FORCE_PATH_STYLE": "true",
        "RCLONE_CONFIG_T_NO_CHECK_BUCKET": "true",  # scoped keys can't check the bucket
    }
    done = subprocess.run(
        [_bin("rclone"), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def remote(creds: S3Credentials, path: str) -> str:
    return f"t:{BUCKET}/{creds.prefix}{path}"


async def test_an_md5_upload_stores_rclones_md5chksum_and_rclone_checks_it(
    tmp_path: Path, creds: S3Credentials, admin: Any
) -> None:
    data = os.urandom(SIZE)
    md5 = hashlib.md5(data).hexdigest()
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "big.bin").write_bytes(data)
    (tmp_path / "src" / "plain.bin").write_bytes(data)
    options: dict[str, Any] = {"multipart_threshold": PART, "part_size": PART}
    async with TransferEngine(creds, md5=True, **options) as engine:
        (up,) = (await engine.upload([(tmp_path / "src" / "big.bin", "raw/big.bin")])).ok
    async with TransferEngine(creds, **options) as engine:  # md5 off (the default)
        await engine.upload([(tmp_path / "src" / "plain.bin", "raw/plain.bin")])
    assert up.etag is not None and up.etag.endswith("-3") and up.md5 == md5

    metadata = admin.head_object(Bucket=BUCKET, Key=creds.prefix + "raw/big.bin")["Metadata"]
    assert metadata["md5chksum"] == base64.b64encode(bytes.fromhex(md5)).decode()
    assert metadata["sha256"] == hashlib.sha256(data).hexdigest()
    plain = admin.head_object(Bucket=BUCKET, Key=creds.prefix + "raw/plain.bin")["Metadata"]
    assert "md5chksum" not in plain  # not computed: nothing stored

    # rclone reads it as the object's md5, and checks its own download against it
    listed = rclone(creds, tmp_path, "md5sum", remote(creds, "raw/big.bin"))
    assert listed.stdout.split()[0] == md5
    copied = rclone(creds, tmp_path, "copy", "-vv", remote(creds, "raw/big.bin"), str(tmp_path))
    assert f"md5 = {md5} OK" in copied.stderr
    assert (tmp_path / "big.bin").read_bytes() == data


@pytest.mark.parametrize("ranged", [False, True], ids=["streamed", "ranged"])
async def test_an_rclone_upload_is_checked_against_its_md5chksum(
    tmp_path: Path, creds: S3Credentials, admin: Any, proxy: FaultProxy, ranged: bool
) -> None:
    data = os.urandom(SIZE)
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "big.bin").write_bytes(data)
    chunks = ["--s3-chunk-size", "5M", "--s3-upload-cutoff", "5M"]
    rclone(creds, tmp_path, "copy", *chunks, str(tmp_path / "src"), remote(creds, "raw"))
    head = admin.head_object(Bucket=BUCKET, Key=creds.prefix + "raw/big.bin")
    assert head["ETag"].strip('"').endswith("-3") and "sha256" not in head["Metadata"]
    assert "md5chksum" in head["Metadata"]
    # a lying md5chksum on an object of the same bytes: the md5 decides, not the ETag
    wrong = base64.b64encode(hashlib.md5(b"other bytes").digest()).decode()
    put_multipart(admin, creds.prefix + "lie/big.bin", data, metadata={"md5chksum": wrong})
    options: dict[str, Any] = {"cache_dir": tmp_path / "cache"}
    if ranged:
        options.update(ranged_get_threshold=MiB, part_size=PART)

    async with TransferEngine(creds, **options) as engine:
        good = await engine.download("raw/", tmp_path / "good")
        lie = await engine.download("lie/", tmp_path / "lie")
    (ok,) = good.ok
    assert ok.md5 == hashlib.md5(data).hexdigest() and ok.sha256 == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "good" / "big.bin").read_bytes() == data
    (lied,) = lie.failed
    assert isinstance(lied.error, ChecksumMismatch) and "md5chksum" in (lied.reason or "")
    assert not (tmp_path / "lie" / "big.bin").exists()

    bad = await download_corrupted(proxy, creds, options, tmp_path / "bad")
    (failed,) = bad.failed
    assert isinstance(failed.error, ChecksumMismatch)
    assert "md5chksum" in (failed.reason or "") and "ETag" not in (failed.reason or "")
    assert not (tmp_path / "bad" / "big.bin").exists()


async def test_sync_and_verify_take_the_md5chksum_as_the_stored_hash(
    tmp_path: Path, creds: S3Credentials, admin: Any, proxy: FaultProxy
) -> None:
    """An object with no sha256 but rclone's ``md5chksum`` is unchanged when the local md5 is
    that md5: in uneven parts, whose multipart ETag no one part size reproduces, only the
    ``md5chksum`` can show it (the bare object, the control, can't be shown equal)."""
    data = os.urandom(SIZE + MiB)  # parts of 6 MiB, 5 MiB and the rest
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    wrong = base64.b64encode(hashlib.md5(b"other bytes").digest()).decode()
    for name, metadata in (("good", {"md5chksum": md5}), ("lie", {"md5chksum": wrong})):
        put_multipart(admin, f"{creds.prefix}{name}/big.bin", data, (6 * MiB, PART), metadata)
    put_multipart(admin, f"{creds.prefix}bare/big.bin", data, (6 * MiB, PART))
    local = tmp_path / "local"
    for name in ("good", "lie", "bare"):
        (local / name).mkdir(parents=True)
        (local / name / "big.bin").write_bytes(data)

    async with TransferEngine(creds, cache_dir=tmp_path / "cache") as engine:
        checks = {}
        for name in ("good", "lie", "bare"):
            (check,) = (await engine.verify(local / name, f"{name}/")).files
            checks[name] = check
        good = await engine.sync_up(local / "good", prefix="good/", dry_run=True)
        lie = await engine.sync_up(local / "lie", prefix="lie/", dry_run=True)
        down = await engine.sync_down(local / "good", "good/")
    assert checks["good"].ok and checks["good"].sha256 == hashlib.sha256(data).hexdigest()
    assert checks["lie"].status == "mismatch"
    assert f"expected {hashlib.md5(b'other bytes').hexdigest()} (the object's md5chksum)" in (
        checks["lie"].reason or ""
    )
    assert checks["bare"].status == "mismatch" and "no part size" in (checks["bare"].reason or "")
    assert [(f.path, f.reason) for f in good.skipped] == [("good/big.bin", "unchanged")]
    assert [(f.path, f.reason) for f in lie.skipped] == [("lie/big.bin", "would upload")]
    assert [(f.path, f.reason) for f in down.skipped] == [("good/big.bin", "unchanged")]

    # one HEAD reads both stored hashes (the md5 is asked only after no sha256 was found)
    via = dataclasses.replace(creds, endpoint_url=proxy.url)
    async with TransferEngine(via, cache_dir=tmp_path / "cache") as engine:
        assert (await engine.verify(local / "good", "good/")).matches
    heads = {path: n for (method, path), n in proxy.seen.items() if method == "HEAD"}
    assert heads == {f"/{BUCKET}/{creds.prefix}good/big.bin": 1}, proxy.seen
