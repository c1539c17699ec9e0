"""The whole-object request path (PUT/GET/HEAD without botocore's pipeline), end to end.

Against the real SeaweedFS, directly and through a fault-injecting HTTP proxy (a real aiohttp
server forwarding to SeaweedFS, byte for byte, Host header included so signatures hold) that
answers chosen requests with S3 errors or drops their connection.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from botocore.exceptions import ClientError

from provena_like.storage import S3Credentials, TransferEngine
from provena_like.storage._direct import bucket_base_url
from provena_like.storage.listing import iter_objects
from tests.support.storage_helpers import BUCKET, FaultProxy

pytestmark = pytest.mark.anyio


def _via(creds: S3Credentials, proxy: FaultProxy) -> S3Credentials:
    return dataclasses.replace(creds, endpoint_url=proxy.url)


def test_bucket_base_url_keeps_the_addressing_style() -> None:
    assert bucket_base_url("http://h:1/b/k?X=1", "k") == "http://h:1/b/"
    assert bucket_base_url("https://b.s3.amazonaws.com/k?X=1", "k") == "https://b.s3.amazonaws.com/"
    with pytest.raises(ValueError, match="unexpected presigned URL path"):
        bucket_base_url("http://h:1/b/other?X=1", "k")


async def test_awkward_keys_round_trip_exactly(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str
) -> None:
    names = [
        "with space.txt",
        "plus+sign.txt",
        "percent%41.txt",
        "unicodé/naïve ☃.txt",
        "tilde~and=equals&amp.txt",
        "question?hash#.txt",
        "semi;colon,comma'quote\".txt",
        "brackets[1](2){3}.txt",
    ]
    src = tmp_path / "src"
    for i, name in enumerate(names):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        (src / name).write_bytes(f"{i}:{name}".encode())
    async with TransferEngine(creds) as engine:
        up = await engine.upload(src)
        assert not up.failed, [f.reason for f in up.failed]
        down = await engine.download("", tmp_path / "dest")
        assert not down.failed, [f.reason for f in down.failed]
    listed = admin.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]
    assert sorted(o["Key"] for o in listed) == sorted(prefix + n for n in names)
    for name in names:
        assert (tmp_path / "dest" / name).read_bytes() == (src / name).read_bytes()
        stored = admin.head_object(Bucket=BUCKET, Key=prefix + name)
        assert stored["Metadata"]["sha256"] == hashlib.sha256((src / name).read_bytes()).hexdigest()


async def test_errors_carry_the_s3_code_status_and_operation(
    tmp_path: Path, creds: S3Credentials, prefix: str
) -> None:
    async with TransferEngine(creds) as engine:
        requests, _ = engine._open_requests()
        with pytest.raises(ClientError) as missing:
            await requests.get(prefix + "nope.bin")
        assert missing.value.response["Error"]["Code"] == "NoSuchKey"
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
        assert missing.value.operation_name == "GetObject"
        with pytest.raises(ClientError) as head:
            await requests.head(prefix + "nope.bin")
        assert head.value.response["Error"]["Code"] == "404"  # HEAD errors have no body
        with pytest.raises(ClientError) as denied:
            await requests.put("elsewhere/x.bin", b"x", {})
        assert denied.value.response["Error"]["Code"] == "AccessDenied"
        assert denied.value.operation_name == "PutObject"


async def test_throttling_and_dropped_connections_are_retried(
    tmp_path: Path, creds: S3Credentials, proxy: FaultProxy, prefix: str
) -> None:
    files = {f"f{i}.bin": os.urandom(1000 + i) for i in range(6)}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    plan = {"f0.bin": ["503 SlowDown", "503 SlowDown"], "f1.bin": ["drop"], "f2.bin": ["500 X"]}
    left = {name: list(actions) for name, actions in plan.items()}

    def fault(request: web.Request) -> str | None:
        name = request.path.rsplit("/", 1)[-1]
        return left[name].pop(0) if left.get(name) else None

    proxy.fault = fault
    async with TransferEngine(_via(creds, proxy)) as engine:
        up = await engine.upload(tmp_path)
        assert not up.failed, [f.reason for f in up.failed]
        plan_down = {"f3.bin": ["503 SlowDown"], "f4.bin": ["drop"]}
        left.update({name: list(actions) for name, actions in plan_down.items()})
        down = await engine.download("", tmp_path / "dest", include=["*.bin"])
        assert not down.failed, [f.reason for f in down.failed]
    for name, data in files.items():
        assert (tmp_path / "dest" / name).read_bytes() == data
    puts = {name: proxy.seen[("PUT", f"/{BUCKET}/{prefix}{name}")] for name in files}
    assert puts == {"f0.bin": 3, "f1.bin": 2, "f2.bin": 2, "f3.bin": 1, "f4.bin": 1, "f5.bin": 1}
    gets = {name: proxy.seen[("GET", f"/{BUCKET}/{prefix}{name}")] for name in files}
    assert gets == {"f0.bin": 1, "f1.bin": 1, "f2.bin": 1, "f3.bin": 2, "f4.bin": 2, "f5.bin": 1}


async def test_a_persistent_server_error_fails_that_file_after_four_attempts(
    tmp_path: Path, creds: S3Credentials, proxy: FaultProxy, prefix: str
) -> None:
    for name in ("ok.bin", "bad.bin"):
        (tmp_path / name).write_bytes(os.urandom(2000))
    proxy.fault = lambda request: "500 InternalError" if request.path.endswith("/bad.bin") else None
    async with TransferEngine(_via(creds, proxy)) as engine:
        result = await engine.upload(tmp_path)
    assert [f.path for f in result.ok] == ["ok.bin"]
    (bad,) = result.failed
    assert (bad.reason or "").startswith("InternalError (HTTP 500) on PutObject: injected")
    assert proxy.seen[("PUT", f"/{BUCKET}/{prefix}bad.bin")] == 4


async def test_listing_pages_through_every_key_once(
    tmp_path: Path, creds: S3Credentials, admin: Any, prefix: str
) -> None:
    names = [f"p{i:02d}/{'a b+c%' if i % 3 == 0 else 'plain'}{i}.bin" for i in range(23)]
    for name in names:
        admin.put_object(Bucket=BUCKET, Key=prefix + name, Body=name.encode())
    admin.put_object(Bucket=BUCKET, Key=prefix.rstrip("/") + "-sibling/x.bin", Body=b"x")
    async with TransferEngine(creds) as engine:
        requests, _ = engine._open_requests()
        listed = [o async for o in iter_objects(requests, prefix, "", page_size=7)]
        under = [o.key async for o in engine.list("p1")]
        # after a key (S3's StartAfter: itself excluded), on every page
        after = [o.key for o in listed][4]
        later = [
            o.key async for o in iter_objects(requests, prefix, "", page_size=7, start_after=after)
        ]
        from_p1 = [o.key async for o in engine.list("p1", start_after="p1")]
    assert [o.key for o in listed] == sorted(names)
    assert later == sorted(names)[5:]
    assert from_p1 == sorted(n for n in names if n.startswith("p1"))
    assert all(o.size == len(o.key.encode()) and o.etag and o.last_modified for o in listed)
    assert all(o.last_modified.tzinfo is not None for o in listed)
    assert under == sorted(n for n in names if n.startswith("p1"))
