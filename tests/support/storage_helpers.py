"""Helpers of the storage tests: scoped credentials minted with STS, admin clients, and a
fault-injecting proxy in front of the store (a real aiohttp server forwarding to SeaweedFS,
byte for byte, Host header included so signatures hold)."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
import boto3
from aiohttp import web
from botocore.config import Config

from provena_like.storage import S3Credentials
from provena_like.testing.seaweed import SeaweedS3

BUCKET = "storage-tests"


def session_policy(bucket: str, prefix: str) -> str:
    """What the datastore will grant: objects and listing under ``prefix`` only."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetObject",
                        "s3:PutObject",
                        "s3:DeleteObject",
                        "s3:AbortMultipartUpload",
                        "s3:ListMultipartUploadParts",
                    ],
                    "Resource": [f"arn:aws:s3:::{bucket}/{prefix}*"],
                },
                {
                    "Effect": "Allow",
                    "Action": ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
                    "Resource": [f"arn:aws:s3:::{bucket}"],
                    "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
                },
            ],
        }
    )


def admin_client(store: SeaweedS3, service: str = "s3") -> Any:
    return boto3.client(
        service,
        endpoint_url=store.endpoint_url,
        region_name=store.region,
        aws_access_key_id=store.admin_access_key,
        aws_secret_access_key=store.admin_secret_key,
        config=Config(
            s3={"addressing_style": "path"},
            retries={"total_max_attempts": 1},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        ),
    )


def mint(
    store: SeaweedS3,
    prefix: str,
    *,
    allowed: str | None = None,
    access: str = "write",
    duration: int | None = 900,
) -> S3Credentials:
    """AssumeRole with a session policy on ``allowed`` (default: ``prefix``).

    ``duration=None`` leaves DurationSeconds out: the store's ``token_duration`` applies.
    """
    sts = admin_client(store, "sts")
    try:
        extra: dict[str, Any] = {} if duration is None else {"DurationSeconds": duration}
        response = sts.assume_role(
            RoleArn=store.role_arn,
            RoleSessionName="storage-tests",
            Policy=session_policy(BUCKET, allowed or prefix),
            **extra,
        )
    finally:
        sts.close()
    return S3Credentials.from_sts(
        response["Credentials"],
        endpoint_url=store.endpoint_url,
        region=store.region,
        bucket=BUCKET,
        prefix=prefix,
        access="write" if access == "write" else "read",
    )


class FaultProxy:
    """Forwards every request to ``upstream``; ``fault`` may answer (or drop) one instead, and
    ``rewrite`` change the bytes of an answer (bytes corrupted on the way)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.fault: Callable[[web.Request], str | None] = lambda _request: None
        self.rewrite: Callable[[web.Request, bytes], bytes] = lambda _request, body: body
        """Changes the body of an answer (headers, ETag included, stay the store's)."""
        self.seen: Counter[tuple[str, str]] = Counter()
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        self._client = aiohttp.ClientSession(auto_decompress=False)

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen[(request.method, request.path)] += 1
        body = await request.read()
        action = self.fault(request)
        if action == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=500)  # never reaches the client
        if action is not None:
            status, code = action.split(" ", 1)
            xml = f"<Error><Code>{code}</Code><Message>injected</Message></Error>"
            return web.Response(status=int(status), body=xml.encode())
        assert self._client is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() != "content-length"}
        async with self._client.request(
            request.method,
            self.upstream + request.raw_path,
            headers=headers,
            data=io.BytesIO(body) if body else None,  # aiohttp warns on large raw bytes
            allow_redirects=False,
            skip_auto_headers=("Content-Type", "User-Agent", "Accept", "Accept-Encoding"),
        ) as upstream:
            data = self.rewrite(request, await upstream.read())
            passed = {
                k: v
                for k, v in upstream.headers.items()
                if k.lower() not in {"content-length", "transfer-encoding", "connection"}
            }
            return web.Response(status=upstream.status, headers=passed, body=data)


def put_plain(admin: Any, key: str, data: bytes) -> str:
    """Put an object with plain boto3 (no ``x-amz-meta-sha256``); its ETag, unquoted."""
    response = admin.put_object(Bucket=BUCKET, Key=key, Body=data)
    return str(response["ETag"]).strip('"')


def put_multipart(
    admin: Any,
    key: str,
    data: bytes,
    part: int | Sequence[int] = 5 * 1024 * 1024,
    metadata: dict[str, str] | None = None,
) -> str:
    """A multipart object put with plain boto3 (no sha256 stored); its ETag, unquoted.

    ``part``: the size of every part but the last, or the sizes of the parts before the last
    (uneven parts, which no one part size reproduces).
    """
    upload = admin.create_multipart_upload(Bucket=BUCKET, Key=key, Metadata=metadata or {})[
        "UploadId"
    ]
    if isinstance(part, int):
        starts = list(range(0, len(data), part))
    else:
        starts = [sum(part[:n]) for n in range(len(part) + 1)]
    parts = []
    for number, (start, end) in enumerate(zip(starts, [*starts[1:], len(data)], strict=True), 1):
        done = admin.upload_part(
            Bucket=BUCKET,
            Key=key,
            UploadId=upload,
            PartNumber=number,
            Body=data[start:end],
        )
        parts.append({"PartNumber": number, "ETag": done["ETag"]})
    response = admin.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
    )
    return str(response["ETag"]).strip('"')


def strip_metadata(admin: Any, key: str, bucket: str = BUCKET) -> None:
    """Drop an object's user metadata (``x-amz-meta-*``) in place, as some stores do."""
    admin.copy_object(
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": bucket, "Key": key},
        MetadataDirective="REPLACE",
        Metadata={},
    )
    assert admin.head_object(Bucket=bucket, Key=key)["Metadata"] == {}


_DIRECT_METHODS = {"PutObject": "put", "UploadPart": "upload_part"}


def count_requests(engine: Any, operations: tuple[str, ...]) -> list[str]:
    """Record the engine's requests of ``operations`` (S3 names), on both request paths.

    aiobotocore's through a ``before-call`` hook; the direct path's (``PutObject``,
    ``UploadPart``) by wrapping its methods. Returns the list the names are appended to.
    """
    calls: list[str] = []
    requests = engine._requests
    client = requests.client
    for op in operations:
        client.meta.events.register(f"before-call.s3.{op}", lambda op=op, **_: calls.append(op))
        name = _DIRECT_METHODS.get(op)
        if name is not None:
            real = getattr(requests.direct, name)

            async def counted(*args: Any, op: str = op, real: Any = real, **kwargs: Any) -> Any:
                calls.append(op)
                return await real(*args, **kwargs)

            setattr(requests.direct, name, counted)
    return calls
