"""The storage transport: every S3 request of the engine goes through :class:`S3Requests`.

Two request paths sit behind it, chosen per operation, never by the caller:

- the direct path (:mod:`._direct` + :mod:`._sigv4`): PUT (whole objects and the parts of
  multipart uploads), GET (whole, ranged or streamed) and HEAD of objects and listing
  pages, through one pooled ``aiohttp`` session with our own SigV4 signer (a batch of small
  files runs about twice as fast as through botocore's pipeline; a streamed body's pieces
  are never joined, a part's bytes are never copied);
- aiobotocore: creating, completing and listing multipart uploads, deletes, everything
  else. Its own retries are off (``total_max_attempts=1``).

Both are wrapped the same way, so they behave identically:

1. a limit on requests in flight (``limiter``);
2. the one retry policy (:class:`~provena_like.storage.retry.S3RetryPolicy`): attempts,
   backoff and which failures are transient;
3. inside each attempt, the credential policy: both paths sign with snapshots of the same
   :class:`~provena_like.storage.credentials.RefreshingCredentials`; when S3 answers that the
   keys expired (``ExpiredToken`` on AWS, ``InvalidAccessKeyId`` on SeaweedFS, sometimes
   ``AccessDenied``), credentials are refreshed once (shared by every request that failed
   with the same generation) and the request is resent once.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, ParamSpec, TypeVar

import anyio
from botocore.exceptions import ClientError

from provena_like._core.errors import ProvenaError, TransferError
from provena_like.storage._direct import DirectResponse, DirectS3, ListPage
from provena_like.storage.credentials import RefreshingCredentials
from provena_like.storage.retry import S3RetryPolicy

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client

__all__ = [
    "EXPIRED_CODES",
    "GetHeaders",
    "GetResult",
    "S3Requests",
    "describe",
    "error_code",
    "to_transfer_error",
]

log = logging.getLogger(__name__)

EXPIRED_CODES: frozenset[str] = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "InvalidAccessKeyId", "TokenRefreshRequired"}
)
"""S3 error codes that mean "these credentials no longer work"."""

P = ParamSpec("P")
T = TypeVar("T")


def error_code(exc: BaseException) -> str | None:
    """The S3 error code of a botocore ``ClientError`` (``None`` for anything else)."""
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None


def _status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def describe(exc: BaseException) -> str:
    """A one-line reason for a failed file, without secrets.

    Example:
        ```python
        missing = FileNotFoundError(2, "No such file or directory", "/x")
        assert describe(missing) == "No such file or directory: '/x'"
        ```
    """
    if isinstance(exc, ClientError):
        code = error_code(exc) or "error"
        status = _status(exc)
        message = exc.response.get("Error", {}).get("Message") or ""
        operation = getattr(exc, "operation_name", "request")
        where = f" (HTTP {status})" if status else ""
        return f"{code}{where} on {operation}" + (f": {message}" if message else "")
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {str(exc.filename)!r}" if exc.filename else exc.strerror
    if isinstance(exc, ProvenaError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def to_transfer_error(exc: Exception, what: str) -> ProvenaError:
    """Wrap a foreign error (botocore, OS) in a :class:`TransferError`; keep SDK errors."""
    if isinstance(exc, ProvenaError):
        return exc
    error = TransferError(f"{what}: {describe(exc)}")
    error.__cause__ = exc
    return error


@dataclass(frozen=True, slots=True)
class GetHeaders:
    """What the engine needs from a GET response's headers.

    Attributes:
        total_size: The object's size (from ``Content-Range``, else ``Content-Length``).
        etag: The ETag, quotes included (as ``If-Match`` wants it).
        metadata: The user metadata (``x-amz-meta-*``).
        last_modified: The ``Last-Modified`` header, as sent (``None`` if absent).
        encrypted: Encrypted with KMS or a customer's key (its ETag is then no md5).
    """

    total_size: int
    etag: str
    metadata: Mapping[str, str]
    last_modified: str | None = None
    encrypted: bool = False


@dataclass(frozen=True, slots=True)
class GetResult:
    """The headers and the whole body of one GET."""

    headers: GetHeaders
    data: bytes


def _total_size(length: object, content_range: str | None) -> int:
    """The object's size: from ``Content-Range`` (``bytes a-b/total``), else the length."""
    if content_range and "/" in content_range:
        declared = content_range.rsplit("/", 1)[1]
        if declared.isdigit():
            return int(declared)
    return int(str(length or 0))


def _direct_headers(response: DirectResponse) -> GetHeaders:
    return GetHeaders(
        total_size=_total_size(
            response.headers.get("Content-Length"), response.headers.get("Content-Range")
        ),
        etag=response.etag,
        metadata=response.metadata,
        last_modified=response.headers.get("Last-Modified"),
        encrypted=_encrypted(response.headers),
    )


def _encrypted(headers: Mapping[str, str]) -> bool:
    """Whether the object is encrypted so that its ETag is no md5 of its bytes (SSE-KMS/-C)."""
    kind = headers.get("x-amz-server-side-encryption", "")
    return kind.startswith("aws:kms") or (
        "x-amz-server-side-encryption-customer-algorithm" in headers
    )


def _label(fn: Callable[..., object]) -> str:
    return getattr(fn, "__name__", "S3 request")


class S3Requests:
    """Send requests, at most ``limiter`` of them at once, under one retry policy.

    Object PUT (parts included), GET and HEAD and listing pages go through ``direct``;
    everything else through the aiobotocore ``client`` (via :meth:`call`). Both sign with the same
    credentials and are retried by ``policy``.

    Args:
        client: The S3 client (its own retries off).
        direct: Whole-object requests against the same bucket (see :mod:`._direct`).
        limiter: Bounds requests in flight (bodies included).
        refresher: Refreshes credentials after an expiry error; ``None`` for static keys.
        policy: Retries transient failures of both paths.
    """

    def __init__(
        self,
        client: S3Client,
        direct: DirectS3,
        limiter: anyio.CapacityLimiter,
        refresher: RefreshingCredentials | None,
        policy: S3RetryPolicy | None = None,
    ) -> None:
        self.client = client
        self.direct = direct
        self._limiter = limiter
        self._refresher = refresher
        self.policy = policy if policy is not None else S3RetryPolicy()
        # the generation of keys fetched because of an AccessDenied, until a request resent
        # with them goes through: an AccessDenied for these keys is a real denial, so it
        # refreshes nothing (the cost of real denials: one refresh, however many requests)
        self._denial_keys = -1

    def _expired(self, exc: ClientError, generation: int) -> bool:
        code = error_code(exc)
        if code in EXPIRED_CODES:
            return True
        if code == "AccessDenied" and self._refresher is not None:
            # SeaweedFS answers AccessDenied, not InvalidAccessKeyId, to some requests signed
            # just before their keys expired, and a provider's expiry can be wrong (clock
            # skew): a denial counts as an expiry, except for keys fetched because of one
            return self._refresher.generation > generation or generation > self._denial_keys
        return False

    async def _retrying(self, send: Callable[[], Awaitable[T]], label: str) -> T:
        return await self.policy.run(lambda: self._refreshing(send), label=label)

    async def _refreshing(self, send: Callable[[], Awaitable[T]]) -> T:
        refresher = self._refresher
        generation = refresher.generation if refresher is not None else 0
        try:
            return await send()
        except ClientError as exc:
            if refresher is None or not self._expired(exc, generation):
                raise
            denied = error_code(exc) == "AccessDenied"
            log.info("S3 credentials expired (%s); refreshing and retrying once", error_code(exc))
        assert refresher is not None
        await refresher.force_refresh(seen_generation=generation)
        if not denied:
            return await send()
        renewed = self._denial_keys = max(self._denial_keys, refresher.generation)
        result = await send()
        if self._denial_keys == renewed:  # the denial was the keys' expiry after all
            self._denial_keys = -1
        return result

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T:
        """Call one client method (e.g. ``client.put_object``) under the request limit.

        Example:
            ```python
            await requests.call(client.head_object, Bucket=b, Key=k)
            ```
        """
        async with self._limiter:
            return await self._retrying(lambda: fn(*args, **kwargs), _label(fn))

    async def call_holding(
        self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """As :meth:`call`, for the task that holds a request slot already (an open GET).

        Not limited again: waiting for a second slot could wait forever (``max_concurrency``
        of 1, or every slot held by such tasks).
        """
        return await self._retrying(lambda: fn(*args, **kwargs), _label(fn))

    async def put(self, key: str, body: bytes, headers: Mapping[str, str]) -> DirectResponse:
        """PUT a whole object in one request (``key`` is the full key).

        Example:
            ```python
            await requests.put(key, b"data", {"x-amz-meta-sha256": digest})
            ```
        """
        return await self.call(self.direct.put, key, body, headers)

    async def upload_part(
        self, key: str, upload_id: str, number: int, body: bytes, headers: Mapping[str, str]
    ) -> DirectResponse:
        """PUT one part of a multipart upload through the direct path (``key``: the full key).

        Example:
            ```python
            await requests.upload_part(key, upload_id, 1, data, {"x-amz-checksum-crc32": crc})
            ```
        """
        return await self.call(self.direct.upload_part, key, upload_id, number, body, headers)

    async def head(self, key: str, headers: Mapping[str, str] | None = None) -> DirectResponse:
        """HEAD an object (``key`` is the full key; ``headers`` are sent and signed).

        Example:
            ```python
            (await requests.head(key)).metadata.get("sha256")
            ```
        """
        return await self.call(self.direct.head, key, headers)

    async def list_page(
        self,
        prefix: str,
        *,
        token: str | None = None,
        max_keys: int = 1000,
        start_after: str | None = None,
    ) -> ListPage:
        """One ``ListObjectsV2`` page of the keys starting with ``prefix`` (a full prefix).

        ``start_after`` (a full key) skips the keys up to it, itself included.

        Example:
            ```python
            page = await requests.list_page("datasets/x/raw/")
            ```
        """
        return await self.call(
            self.direct.list_page, prefix, token=token, max_keys=max_keys, start_after=start_after
        )

    @asynccontextmanager
    async def open_get(
        self,
        key: str,
        *,
        byte_range: tuple[int, int] | None = None,
        if_match: str | None = None,
        read_bufsize: int = 2**16,
    ) -> AsyncIterator[tuple[GetHeaders, AsyncIterator[bytes]]]:
        """GET an object (or an inclusive byte range) and hold the body open to stream it.

        Through the direct path: the body's pieces come as the socket delivers them, never
        joined (no copy), with at most about ``2 * read_bufsize`` bytes buffered unread.
        The request slot is held until the context exits (the connection is busy until the
        body is consumed, or the response is closed on exit). Opening is retried by the
        policy; a body that breaks off midway is not (the caller fails or resumes the file).

        Args:
            key: The full key.
            byte_range: ``(first, last)`` byte offsets, inclusive.
            if_match: An ETag the object must still have (412 otherwise).
            read_bufsize: aiohttp's read buffer for this response.

        Yields:
            The headers, and the body's pieces.

        Example:
            ```python
            async with requests.open_get(key, byte_range=(0, 1023)) as (headers, pieces):
                data = b"".join([piece async for piece in pieces])
            ```
        """
        direct = self.direct
        async with self._limiter:
            async with contextlib.AsyncExitStack() as stack:

                async def send() -> tuple[DirectResponse, AsyncIterator[bytes]]:
                    return await stack.enter_async_context(
                        direct.open_get(
                            key, byte_range=byte_range, if_match=if_match, read_bufsize=read_bufsize
                        )
                    )

                response, pieces = await self._retrying(send, "get_object")
                yield _direct_headers(response), pieces

    @property
    def splices(self) -> bool:
        """Whether :meth:`get_range_into` can be used (Linux, plain HTTP)."""
        return self.direct.splices

    async def get_range_into(
        self,
        key: str,
        fd: int,
        byte_range: tuple[int, int],
        *,
        if_match: str | None,
        lock: threading.Lock,
    ) -> GetHeaders:
        """GET the inclusive ``byte_range`` into ``fd`` at its offset (see :mod:`._splice`).

        Under the request limit, retried by the policy: a retry writes the range again from
        its start. ``lock`` is taken for each write into ``fd``.

        Example:
            ```python
            headers = await requests.get_range_into(key, fd, (0, 8191), if_match=etag, lock=lock)
            ```
        """
        async with self._limiter:

            async def send() -> DirectResponse:
                return await self.direct.get_range_into(
                    key, fd, byte_range, if_match=if_match, lock=lock
                )

            response = await self._retrying(send, "get_object")
        return _direct_headers(response)

    async def get(
        self,
        key: str,
        *,
        byte_range: tuple[int, int] | None = None,
        if_match: str | None = None,
    ) -> GetResult:
        """GET a whole object (or an inclusive byte range of it) into memory, in one request.

        Example:
            ```python
            got = await requests.get(key, byte_range=(0, 1023))
            ```
        """
        response = await self.call(self.direct.get, key, byte_range=byte_range, if_match=if_match)
        return GetResult(headers=_direct_headers(response), data=response.body)
