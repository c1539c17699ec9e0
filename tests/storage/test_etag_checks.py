"""Downloads of objects without a known or stored sha256 are checked against their ETag.

Objects another tool uploaded (or whose ``x-amz-meta-sha256`` a store dropped) used to be
checked by size only. Their ETag is the md5 of their bytes (single-part) or the md5 of their
parts' md5s (multipart): a byte corrupted on the way (a proxy flips one in every object
body) must fail the file, through each download path (whole, streamed, ranged).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from provena_like import ChecksumMismatch
from provena_like.storage import S3Credentials, TransferEngine, TransferResult
from tests.support.storage_helpers import FaultProxy, put_multipart, put_plain

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


def flip_last_byte(request: web.Request, body: bytes) -> bytes:
    """Corrupt object bodies (GETs but listings) by one byte."""
    if request.method != "GET" or "list-type" in request.query or not body:
        return body
    return body[:-1] + bytes([body[-1] ^ 1])


async def download_corrupted(
    proxy: FaultProxy, creds: S3Credentials, options: dict[str, Any], dest: Path
) -> TransferResult:
    """Download ``raw/`` into ``dest`` through ``proxy``, which flips a byte of every body."""
    proxy.rewrite = flip_last_byte
    via = dataclasses.replace(creds, endpoint_url=proxy.url)
    async with TransferEngine(via, **options) as engine:
        return await engine.download("raw/", dest)


@pytest.mark.parametrize("ranged", [False, True], ids=["streamed", "ranged"])
async def test_a_download_without_sha256_is_checked_against_the_etag(
    tmp_path: Path, creds: S3Credentials, admin: Any, proxy: FaultProxy, ranged: bool
) -> None:
    small, big = os.urandom(4096), os.urandom(6 * MiB + 10)
    put_plain(admin, creds.prefix + "raw/small.bin", small)
    put_multipart(admin, creds.prefix + "raw/big.bin", big, part=6 * MiB)  # no common size
    options: dict[str, Any] = {"cache_dir": tmp_path / "cache"}
    if ranged:
        options.update(ranged_get_threshold=MiB, part_size=5 * MiB)

    async with TransferEngine(creds, **options) as engine:
        good = await engine.download("raw/", tmp_path / "good")
    good.raise_for_failures()
    by_path = {f.path: f for f in good.ok}
    assert by_path["raw/small.bin"].md5 == hashlib.md5(small).hexdigest()
    assert by_path["raw/big.bin"].sha256 == hashlib.sha256(big).hexdigest()
    assert (tmp_path / "good" / "big.bin").read_bytes() == big

    bad = await download_corrupted(proxy, creds, options, tmp_path / "bad")
    assert sorted(f.path for f in bad.failed) == ["raw/big.bin", "raw/small.bin"]
    assert all(isinstance(f.error, ChecksumMismatch) for f in bad.failed), bad.failed
    assert all("ETag" in (f.reason or "") for f in bad.failed)
    assert not (tmp_path / "bad").exists() or list((tmp_path / "bad").rglob("*.bin")) == []
