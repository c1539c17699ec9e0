"""The server's access to the object store: admin S3 calls and STS, with aioboto3.

One :class:`ObjectStore` (an S3 client and an STS client signed with the admin keys of
:class:`~provena_like.server.settings.S3Settings`) is opened in the app's lifespan and kept in
``app.state.object_store``. Everything else calls the module-level functions here
(:func:`put_object`, :func:`head_object`, ...) with it, never the clients directly: that keeps
the S3 vocabulary in one module and lets a test replace one step (``monkeypatch.setattr(
storage, "put_object", failing)``) to check that a failure there leaves nothing behind.

HEADs, the one call a request may make thousands of (a patch's commit HEADs every staged
object, a manifest every file), skip botocore's per-request pipeline (~2-3 ms of CPU each):
they go through the storage engine's direct path (:mod:`provena_like.storage.direct`, a
pooled ``aiohttp`` session and our own SigV4 signer, ~0.4 ms), with the admin keys and the
engine's retry policy (:attr:`ObjectStore.requests`). Everything else stays on aioboto3.

Failures of the store are :class:`ObjectStoreError` (answered 502 ``object_store_error``).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import aioboto3
import aiohttp
import anyio
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import BotoCoreError, ClientError

from provena_like._redaction import install_log_redaction
from provena_like.models.datastore import AccessLevel
from provena_like.server.datastore import policy
from provena_like.server.errors import ServiceError, task_group
from provena_like.server.settings import S3Settings
from provena_like.storage.direct import (
    DirectS3,
    S3Requests,
    bucket_base_url,
    register_content_md5,
)
from provena_like.storage.retry import S3RetryPolicy

if TYPE_CHECKING:
    from types_aiobotocore_s3.client import S3Client
    from types_aiobotocore_sts.client import STSClient

__all__ = [
    "COPY_OBJECT_LIMIT",
    "IssuedCredentials",
    "ObjectHead",
    "ObjectStore",
    "ObjectStoreError",
    "StoreSettingError",
    "assume_role",
    "check_object_store",
    "copy_object",
    "delete_objects",
    "head_object",
    "list_objects",
    "open_object_store",
    "presign_get",
    "put_bucket_policy",
    "put_object",
    "read_object",
]

log = logging.getLogger(__name__)

COPY_OBJECT_LIMIT = 5 * 1024**3
"""The largest object one CopyObject may copy (S3's limit); bigger ones go part by part."""

COPY_PART_SIZE = 512 * 1024**2
DELETE_BATCH = 1000
_POOL = 32
"""Connections of each client (and requests of the direct path in flight at once)."""
_DIRECT_ERRORS = (ClientError, aiohttp.ClientError, TimeoutError)
_POLICY_REFUSED = {"InvalidParameterValue", "MalformedPolicyDocument"}
"""What STS answers when a store does not accept a session policy's condition."""
"""What a request of the direct path raises when the store refuses or can't be reached."""


class ObjectStoreError(ServiceError):
    """The object store refused or failed a call (502 ``object_store_error``)."""

    def __init__(self, action: str, err: Exception) -> None:
        detail = _error_code(err) or type(err).__name__
        super().__init__(
            502,
            "object_store_error",
            f"The object store failed to {action} ({detail}); nothing was changed, retry later.",
        )


@dataclass
class ObjectStore:
    """Admin clients of the object store, open for the lifetime of the app.

    Attributes:
        settings: where the store is and which bucket and role the datastore uses.
        s3: the admin S3 client.
        sts: the admin STS client (``sts_endpoint_url``, else the S3 endpoint), for AssumeRole.
        requests: HEADs through the direct path, signed with the same admin keys.
        copy_limit: objects above this size are copied part by part (tests may lower it).
        concurrency: how many object calls one request runs at a time (copies, HEADs).
    """

    settings: S3Settings
    s3: S3Client
    sts: STSClient
    requests: S3Requests
    copy_limit: int = COPY_OBJECT_LIMIT
    copy_part_size: int = COPY_PART_SIZE
    concurrency: int = 16
    upload_listing_refused: bool = False
    """Set when the store refused the policy statement that lists a prefix's uploads."""

    @property
    def endpoint_url(self) -> str | None:
        """The S3 endpoint clients should use (the public one; None: AWS)."""
        return self.settings.client_endpoint_url

    @property
    def internal_endpoint_url(self) -> str | None:
        """The S3 endpoint the server itself calls (None: AWS)."""
        return self.settings.endpoint_url

    @property
    def bucket(self) -> str:
        """The bucket that holds every dataset."""
        return self.settings.bucket


@dataclass(frozen=True)
class ObjectHead:
    """What HEAD (or a listing) says about an object."""

    key: str
    size: int
    etag: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    sha256: str | None = None
    """hex sha256 of the whole object, when the store holds a full-object checksum."""


@dataclass(frozen=True)
class IssuedCredentials:
    """Session credentials from STS AssumeRole, with the expiration the store stated."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime


def _error_code(err: Exception) -> str | None:
    if isinstance(err, ClientError):
        code = err.response.get("Error", {}).get("Code")
        return str(code) if code else None
    return None


def is_missing(err: Exception) -> bool:
    """Whether ``err`` says the object asked for does not exist (a 404 answer)."""
    if not isinstance(err, ClientError):
        return False
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status == 404 or _error_code(err) in {"404", "NoSuchKey", "NotFound"}


def _etag(value: str | None) -> str:
    return (value or "").strip('"')


@asynccontextmanager
async def open_object_store(settings: S3Settings) -> AsyncIterator[ObjectStore]:
    """Open the admin S3 and STS clients for ``settings``; they close when the block ends.

    Example:
        ```python
        async with open_object_store(settings.s3) as store:
            await put_object(store, "10378.1-1/metadata.json", b"{}")
        ```
    """
    install_log_redaction()
    session = aioboto3.Session()
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": settings.addressing_style},
        retries={"mode": "standard", "total_max_attempts": 3},
        connect_timeout=5,
        read_timeout=60,
        max_pool_connections=_POOL,
    )
    keys: dict[str, Any] = {
        "region_name": settings.region,
        "aws_access_key_id": settings.access_key,
        "aws_secret_access_key": settings.secret_key.get_secret_value(),
        "config": config,
    }
    sts_url = settings.resolved_sts_endpoint_url
    async with AsyncExitStack() as stack:
        s3: S3Client = await stack.enter_async_context(
            session.client("s3", endpoint_url=settings.endpoint_url, **keys)
        )
        register_content_md5(s3)
        sts: STSClient = await stack.enter_async_context(
            session.client("sts", endpoint_url=sts_url, **keys)
        )
        install_log_redaction()  # STS answers (secret keys, tokens) are logged at DEBUG
        admin = ReadOnlyCredentials(
            settings.access_key, settings.secret_key.get_secret_value(), None
        )

        async def credentials() -> ReadOnlyCredentials:
            return admin

        probe = "provena-like-probe"
        presigned = await s3.generate_presigned_url(
            "get_object", Params={"Bucket": settings.bucket, "Key": probe}, ExpiresIn=60
        )
        direct = DirectS3(
            bucket_base_url(presigned, probe),
            settings.region,
            credentials,
            max_connections=_POOL,
            connect_timeout=5,
            read_timeout=60,
        )
        stack.push_async_callback(direct.aclose)
        # the aioboto3 client's retries: 3 attempts in all, on the same transient failures
        retry = S3RetryPolicy(attempts=3, backoff_initial=0.25)
        requests = S3Requests(s3, direct, anyio.CapacityLimiter(_POOL), None, retry)
        yield ObjectStore(settings=settings, s3=s3, sts=sts, requests=requests)


class StoreSettingError(Exception):
    """An external object store's settings don't work; ``setting`` names the likely culprit.

    Attributes:
        setting: the :class:`~provena_like.server.settings.S3Settings` field to look at.
    """

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(message)
        self.setting = setting


_SETTING_OF_CODE = {
    "NoSuchBucket": "bucket",
    "InvalidAccessKeyId": "access_key",
    "SignatureDoesNotMatch": "secret_key",
    "InvalidClientTokenId": "access_key",
}


async def check_object_store(settings: S3Settings) -> None:
    """Check, before serving, that the bucket is there and STS mints scoped credentials.

    One ListObjectsV2 of the bucket with the server's keys, and one AssumeRole (read access
    to a prefix that holds nothing) with the session policy the datastore uses.

    Raises:
        StoreSettingError: the setting that is probably wrong, and what the store said.
    """
    async with open_object_store(settings) as store:
        where = store.internal_endpoint_url or f"AWS S3 ({settings.region})"
        try:
            # a GET (a HEAD's error has no body to tell a wrong secret from a missing bucket)
            await store.s3.list_objects_v2(Bucket=settings.bucket, MaxKeys=1)
        except (ClientError, BotoCoreError, aiohttp.ClientError, OSError) as err:
            code = _error_code(err) or type(err).__name__
            if code in {"404", "NoSuchBucket"}:
                code = "NoSuchBucket"
            setting = _SETTING_OF_CODE.get(code, "endpoint_url")
            if code in {"403", "AccessDenied"}:  # some stores don't say if the bucket exists
                code = f"{code}: no such bucket, or the access key may not list it"
                setting = "bucket"
            raise StoreSettingError(
                setting, f"the object store at {where} refused bucket {settings.bucket!r}: {code}"
            ) from err
        try:
            await assume_role(
                store,
                session_name="provena-like-startup-check",
                bucket=settings.bucket,
                prefix="provena-like-startup-check/",
                access="read",
                duration_seconds=900,
            )
        except ObjectStoreError as err:
            cause = err.__cause__
            code = (_error_code(cause) if isinstance(cause, Exception) else None) or str(cause)
            setting = "role_arn" if code in {"AccessDenied", "NoSuchEntity"} else "sts_endpoint_url"
            sts = settings.resolved_sts_endpoint_url or "AWS STS"
            raise StoreSettingError(
                setting, f"STS at {sts} did not issue scoped credentials: {code}"
            ) from err


async def put_object(
    store: ObjectStore,
    key: str,
    body: bytes,
    *,
    content_type: str = "application/octet-stream",
    metadata: Mapping[str, str] | None = None,
) -> str:
    """Write ``body`` at ``key`` in the dataset bucket; returns the new ETag."""
    try:
        response = await store.s3.put_object(
            Bucket=store.bucket,
            Key=key,
            Body=body,
            ContentType=content_type,
            Metadata=dict(metadata or {}),
        )
    except (ClientError, BotoCoreError) as err:
        raise ObjectStoreError(f"write {key}", err) from err
    return _etag(response.get("ETag"))


async def head_object(store: ObjectStore, key: str) -> ObjectHead | None:
    """What the store knows about ``key``, or None when there is no such object."""
    try:
        response = await store.requests.head(key, {"x-amz-checksum-mode": "ENABLED"})
    except _DIRECT_ERRORS as err:
        if is_missing(err):
            return None
        raise ObjectStoreError(f"read {key}", err) from err
    headers = response.headers
    sha256 = None
    checksum = headers.get("x-amz-checksum-sha256")
    if checksum and "-" not in checksum and headers.get("x-amz-checksum-type") != "COMPOSITE":
        sha256 = base64.b64decode(checksum).hex()
    return ObjectHead(
        key=key,
        size=int(headers.get("Content-Length", 0)),
        etag=_etag(response.etag),
        metadata=response.metadata,
        sha256=sha256,
    )


async def read_object(store: ObjectStore, key: str) -> bytes | None:
    """The content of ``key`` (a small object such as ``metadata.json``), or None if missing."""
    try:
        response = await store.s3.get_object(Bucket=store.bucket, Key=key)
        async with response["Body"] as stream:
            data: bytes = await stream.read()
    except (ClientError, BotoCoreError) as err:
        if is_missing(err):
            return None
        raise ObjectStoreError(f"read {key}", err) from err
    return data


async def list_objects(store: ObjectStore, prefix: str) -> list[ObjectHead]:
    """Every object whose key starts with ``prefix``, in key order."""
    found: list[ObjectHead] = []
    token: str | None = None
    try:
        while True:
            extra: dict[str, Any] = {"ContinuationToken": token} if token else {}
            page = await store.s3.list_objects_v2(Bucket=store.bucket, Prefix=prefix, **extra)
            found.extend(
                ObjectHead(key=o["Key"], size=int(o.get("Size", 0)), etag=_etag(o.get("ETag")))
                for o in page.get("Contents", [])
            )
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return found
    except (ClientError, BotoCoreError) as err:
        raise ObjectStoreError(f"list {prefix}", err) from err


async def _copy_in_parts(store: ObjectStore, source: str, dest: str, size: int) -> str:
    s3 = store.s3
    upload = await s3.create_multipart_upload(Bucket=store.bucket, Key=dest)
    upload_id = upload["UploadId"]
    part_size = store.copy_part_size
    count = max(1, -(-size // part_size))
    etags: dict[int, str] = {}
    limiter = anyio.CapacityLimiter(store.concurrency)

    async def copy_part(number: int) -> None:
        first = (number - 1) * part_size
        last = min(size, first + part_size) - 1
        async with limiter:
            part = await s3.upload_part_copy(
                Bucket=store.bucket,
                Key=dest,
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": store.bucket, "Key": source},
                CopySourceRange=f"bytes={first}-{last}",
            )
        etags[number] = part["CopyPartResult"].get("ETag", "")

    try:
        async with task_group() as group:
            for number in range(1, count + 1):
                group.start_soon(copy_part, number)
        done = await s3.complete_multipart_upload(
            Bucket=store.bucket,
            Key=dest,
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [{"PartNumber": n, "ETag": etags[n]} for n in range(1, count + 1)]
            },
        )
    except BaseException:
        with anyio.CancelScope(shield=True):
            try:
                await s3.abort_multipart_upload(Bucket=store.bucket, Key=dest, UploadId=upload_id)
            except (ClientError, BotoCoreError):
                log.warning("could not abort the multipart copy to %s", dest, exc_info=True)
        raise
    return _etag(done.get("ETag"))


async def copy_object(store: ObjectStore, source: str, dest: str, *, size: int) -> str:
    """Copy ``source`` to ``dest`` inside the store (no bytes through the server).

    Objects up to :attr:`ObjectStore.copy_limit` take one CopyObject; bigger ones are copied
    part by part (UploadPartCopy). Returns the new object's ETag.
    """
    try:
        if size > store.copy_limit:
            return await _copy_in_parts(store, source, dest, size)
        response = await store.s3.copy_object(
            Bucket=store.bucket,
            Key=dest,
            CopySource={"Bucket": store.bucket, "Key": source},
            MetadataDirective="COPY",
        )
    except (ClientError, BotoCoreError) as err:
        raise ObjectStoreError(f"copy {source} to {dest}", err) from err
    return _etag(response.get("CopyObjectResult", {}).get("ETag"))


async def delete_objects(store: ObjectStore, keys: list[str]) -> None:
    """Delete ``keys`` (missing ones are fine); raises if the store refused any."""
    for start in range(0, len(keys), DELETE_BATCH):
        batch = keys[start : start + DELETE_BATCH]
        try:
            response = await store.s3.delete_objects(
                Bucket=store.bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": False},
            )
        except (ClientError, BotoCoreError) as err:
            raise ObjectStoreError(f"delete {len(batch)} objects", err) from err
        errors = response.get("Errors", [])
        deleted = {d.get("Key") for d in response.get("Deleted", [])}
        missing = [k for k in batch if k not in deleted]
        if missing and not errors:
            # some stores (the JuiceFS gateway) answer <Deleted/> without the key: a key
            # not reported counts as deleted only if HEAD finds nothing there now
            await _confirm_gone(store, missing)
        if errors:
            first = errors[0]
            raise ServiceError(
                502,
                "object_store_error",
                f"The object store refused to delete {first.get('Key')} ({first.get('Code')}).",
            )


async def _confirm_gone(store: ObjectStore, keys: list[str]) -> None:
    """Raise (502) unless HEAD finds none of ``keys`` (deletes the store did not report)."""
    limiter = anyio.CapacityLimiter(store.concurrency)
    present: list[str] = []

    async def check(key: str) -> None:
        async with limiter:
            if await head_object(store, key) is not None:
                present.append(key)

    async with task_group() as group:
        for key in keys:
            group.start_soon(check, key)
    if present:
        raise ServiceError(
            502,
            "object_store_error",
            f"The object store did not report {sorted(present)[0]} deleted, and it is still there.",
        )


async def assume_role(
    store: ObjectStore,
    *,
    session_name: str,
    bucket: str,
    prefix: str,
    access: AccessLevel,
    duration_seconds: int | None,
) -> IssuedCredentials:
    """STS AssumeRole of the datastore role, limited to ``s3://bucket/prefix`` for ``access``.

    The inline session policy is :func:`~provena_like.server.datastore.policy.session_policy`.
    Write credentials may list the prefix's unfinished multipart uploads unless
    ``upload_listing`` is ``none``; with ``auto`` a store that refuses the policy for that
    statement (MinIO-family stores: ``InvalidParameterValue``) gets the policy without it,
    from then on. ``duration_seconds`` is passed only when it is at least 900 (the STS
    minimum); otherwise the store's default session lifetime applies. The expiration is the
    one STS states.
    """
    extra: dict[str, Any] = {}
    if duration_seconds is not None and duration_seconds >= 900:
        extra["DurationSeconds"] = duration_seconds
    mode = store.settings.upload_listing
    uploads = access == "write" and mode != "none" and not store.upload_listing_refused

    async def call(with_uploads: bool) -> Any:
        return await store.sts.assume_role(
            RoleArn=store.settings.role_arn,
            RoleSessionName=session_name,
            Policy=policy.policy_json(bucket, prefix, access, uploads=with_uploads),
            **extra,
        )

    try:
        try:
            response = await call(uploads)
        except ClientError as err:
            if not (uploads and mode == "auto" and _error_code(err) in _POLICY_REFUSED):
                raise
            response = await call(False)
            store.upload_listing_refused = True
            log.warning(
                "the object store refused a session policy that lists a prefix's multipart "
                "uploads (%s); write credentials are minted without that permission from now "
                "on (set upload_listing='none' to skip the attempt)",
                _error_code(err),
            )
    except (ClientError, BotoCoreError) as err:
        raise ObjectStoreError("issue scoped credentials", err) from err
    creds = response["Credentials"]
    expiration = creds["Expiration"]
    if expiration.tzinfo is None:
        expiration = expiration.replace(tzinfo=UTC)
    return IssuedCredentials(
        access_key_id=creds["AccessKeyId"],
        secret_access_key=creds["SecretAccessKey"],
        session_token=creds["SessionToken"],
        expiration=expiration.astimezone(UTC),
    )


async def presign_get(store: ObjectStore, key: str, *, expires_in: int) -> str:
    """A presigned GET URL of ``key`` valid for ``expires_in`` seconds (signed locally)."""
    try:
        url: str = await store.s3.generate_presigned_url(
            "get_object", Params={"Bucket": store.bucket, "Key": key}, ExpiresIn=expires_in
        )
    except (ClientError, BotoCoreError) as err:
        raise ObjectStoreError(f"presign {key}", err) from err
    return url


async def put_bucket_policy(store: ObjectStore, document: str | None) -> None:
    """Replace the dataset bucket's policy with ``document``, or delete it when None.

    The store evaluates the bucket policy on every request, including those signed with
    session credentials minted earlier (see :mod:`~provena_like.server.datastore.policy`).
    """
    try:
        if document is None:
            await store.s3.delete_bucket_policy(Bucket=store.bucket)
        else:
            await store.s3.put_bucket_policy(Bucket=store.bucket, Policy=document)
    except (ClientError, BotoCoreError) as err:
        if document is None and _error_code(err) == "NoSuchBucketPolicy":
            return
        raise ObjectStoreError("update the bucket policy", err) from err
