"""The one retry policy of every S3 request the engine sends.

Two request paths reach S3 (see :mod:`provena_like.storage._requests`): whole-object
PUT/GET/HEAD and listing pages go straight through ``aiohttp`` with our own SigV4 signer
(fast for thousands of small files), everything else (multipart, deletes, streamed
downloads) through aiobotocore, whose own retries are switched off. Both are retried here,
by :meth:`S3RetryPolicy.run`, with the same attempts, the same backoff and the same idea of
which failures are transient:

- HTTP 429, 500, 502, 503 and 504, and the S3 throttling and transient error codes
  (``SlowDown``, ``InternalError``, ``RequestTimeout``, ...), whatever the status;
- connections refused, reset or dropped, and timeouts, on either path.

Expired credentials are not this policy's business: the transport refreshes them once and
resends (see :class:`~provena_like.storage._requests.S3Requests`).

Example:
    ```python
    policy = S3RetryPolicy(attempts=3, backoff_initial=0.25)
    assert [policy.backoff_ceiling(n) for n in (1, 2)] == [0.25, 0.5]
    ```
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, TypeVar

import aiohttp
import anyio
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from provena_like._core.errors import UsageError

__all__ = ["RETRY_CODES", "RETRY_STATUSES", "S3RetryPolicy"]

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_STATUSES: Final[frozenset[int]] = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses of an S3 answer that are worth another attempt."""

RETRY_CODES: Final[frozenset[str]] = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "SlowDown",
        "RequestThrottled",
        "TooManyRequestsException",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "InternalError",
    }
)
"""S3 error codes worth another attempt whatever their status (botocore's transient and
throttling codes that S3 can answer)."""

_TRANSPORT_ERRORS: Final = (
    aiohttp.ClientConnectionError,  # direct path: refused, reset, dropped
    aiohttp.ClientPayloadError,
    TimeoutError,
    HTTPClientError,  # aiobotocore: connection closed, read timeout, proxy errors
    BotocoreConnectionError,  # aiobotocore: endpoint unreachable, connect timeout
)


def _full_jitter(ceiling: float) -> float:
    return random.uniform(0.0, ceiling)


async def _sleep(seconds: float) -> None:
    await anyio.sleep(seconds)


@dataclass(frozen=True, kw_only=True)
class S3RetryPolicy:
    """How often, how long and on what an S3 request is retried (both request paths).

    Attributes:
        attempts: Attempts per request, the first included (1: never retry).
        backoff_initial: The backoff ceiling before the first retry, in seconds.
        backoff_max: The largest backoff ceiling, in seconds.
        retry_statuses: HTTP statuses that are retried.
        retry_codes: S3 error codes that are retried whatever their status.
        sleep: The async sleep function (replace it in tests).
        jitter: Maps a backoff ceiling to the actual wait (default: uniform in
            ``[0, ceiling]``, "full jitter").

    Raises:
        UsageError: For fewer than one attempt or a negative backoff.

    Example:
        ```python
        assert S3RetryPolicy().attempts == 4
        assert S3RetryPolicy(backoff_initial=1, backoff_max=5).backoff_ceiling(10) == 5.0
        ```
    """

    attempts: int = 4
    backoff_initial: float = 0.5
    backoff_max: float = 20.0
    retry_statuses: frozenset[int] = RETRY_STATUSES
    retry_codes: frozenset[str] = RETRY_CODES
    sleep: Callable[[float], Awaitable[None]] = field(default=_sleep, repr=False, compare=False)
    jitter: Callable[[float], float] = field(default=_full_jitter, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise UsageError("S3RetryPolicy.attempts must be at least 1")
        if self.backoff_initial < 0 or self.backoff_max < 0:
            raise UsageError("S3RetryPolicy backoff must not be negative")

    def is_retryable(self, exc: BaseException) -> bool:
        """Whether a failed attempt is worth another one.

        Example:
            ```python
            from botocore.exceptions import ClientError

            slow = ClientError(
                {"Error": {"Code": "SlowDown"}, "ResponseMetadata": {"HTTPStatusCode": 503}},
                "PutObject",
            )
            assert S3RetryPolicy().is_retryable(slow)
            assert not S3RetryPolicy().is_retryable(KeyError())
            ```
        """
        if isinstance(exc, ClientError):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            code = exc.response.get("Error", {}).get("Code")
            return status in self.retry_statuses or code in self.retry_codes
        return isinstance(exc, _TRANSPORT_ERRORS)

    def backoff_ceiling(self, failed_attempt: int) -> float:
        """The backoff ceiling after attempt ``failed_attempt`` (1-based): doubling, capped.

        Example:
            ```python
            assert S3RetryPolicy(backoff_initial=0.5).backoff_ceiling(3) == 2.0
            ```
        """
        exponent = min(max(failed_attempt - 1, 0), 62)
        return float(min(self.backoff_max, self.backoff_initial * (2**exponent)))

    async def run(self, send: Callable[[], Awaitable[T]], *, label: str = "S3 request") -> T:
        """Call ``send`` until it succeeds, fails for good, or the attempts run out.

        Args:
            send: Makes one attempt (and raises on failure).
            label: How to name the request in debug logs.

        Returns:
            What the successful attempt returned.

        Raises:
            Exception: The last attempt's error (never a wrapper).

        Example:
            ```python
            response = await policy.run(lambda: client.upload_part(**args))
            ```
        """
        attempt = 1
        while True:
            try:
                return await send()
            except Exception as exc:
                if attempt >= self.attempts or not self.is_retryable(exc):
                    raise
                delay = self.jitter(self.backoff_ceiling(attempt))
                log.debug(
                    "retrying %s after attempt %d (%s) in %.2fs",
                    label,
                    attempt,
                    type(exc).__name__,
                    delay,
                )
            await self.sleep(delay)
            attempt += 1
