"""When and how long to retry a request: the one retry policy of the SDK.

The rules (DESIGN.md §2, STYLE.md):

- retry the statuses 408, 429, 500, 502, 503 and 504, and transport failures (connection
  refused or reset, a dropped response, a timeout);
- retry only idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE), or any method whose request
  carries an ``Idempotency-Key`` header;
- wait for ``Retry-After`` when the response has one, *or* for a full-jitter exponential backoff
  otherwise, never both; a ``Retry-After`` longer than ``max_retry_after`` is not slept: the
  error is raised at once;
- give up after ``max_retries`` retries and return the last response (or raise the last error).

The loop itself is tenacity's :class:`~tenacity.asyncio.AsyncRetrying`, driven by the
callables of :class:`RetryPolicy`.
"""

from __future__ import annotations

import logging
import math
import random
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, TypeVar, cast

import anyio
import httpx
from tenacity import AsyncRetrying, RetryCallState

if TYPE_CHECKING:
    from provena_like._core.config import ProvenaConfig

__all__ = [
    "IDEMPOTENT_METHODS",
    "RETRY_STATUSES",
    "RetryPolicy",
    "is_retryable_exception",
    "parse_retry_after",
]

log = logging.getLogger(__name__)

RETRY_STATUSES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses that are worth another attempt."""

IDEMPOTENT_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
"""Methods that may be repeated without an ``Idempotency-Key``."""

_DELTA_SECONDS = re.compile(r"^\d+(\.\d+)?$")

R = TypeVar("R")


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Read a ``Retry-After`` header value (RFC 9110 §10.2.3) as seconds to wait.

    Args:
        value: the header value: delta-seconds (``"120"``) or an HTTP-date
            (``"Wed, 21 Oct 2015 07:28:00 GMT"``), or ``None`` when absent.
        now: the current time, for HTTP-dates (default: the current UTC time).

    Returns:
        Seconds to wait; ``0.0`` for a date in the past; ``None`` when the header is absent,
        negative or unparseable.

    Example:
        ```python
        assert parse_retry_after("3") == 3.0
        assert parse_retry_after("soon") is None
        ```
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELTA_SECONDS.match(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC)
    if current.tzinfo is None:
        current = current.replace(tzinfo=UTC)
    return max(0.0, (when - current).total_seconds())


def is_retryable_exception(exc: BaseException) -> bool:
    """Whether a failure to get a response is worth another attempt.

    Every :class:`httpx.TransportError` is (connect and read errors, dropped responses,
    timeouts), except :class:`httpx.UnsupportedProtocol`, which no retry can fix.

    Example:
        ```python
        import httpx
        assert is_retryable_exception(httpx.ConnectError("refused"))
        ```
    """
    return isinstance(exc, httpx.TransportError) and not isinstance(exc, httpx.UnsupportedProtocol)


def _full_jitter(ceiling: float) -> float:
    return random.uniform(0.0, ceiling)


async def _default_sleep(seconds: float) -> None:
    await anyio.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; see the module docstring for the rules.

    Attributes:
        max_retries: retries after the first attempt (0: never retry).
        backoff_initial: the backoff ceiling before the first retry, in seconds.
        backoff_max: the largest backoff ceiling, in seconds.
        max_retry_after: the longest ``Retry-After`` honoured; a longer one ends the retries.
        sleep: the async sleep function (replace it in tests).
        jitter: maps a backoff ceiling to the actual wait (default: uniform in [0, ceiling]).

    Example:
        ```python
        policy = RetryPolicy(max_retries=5, backoff_initial=0.1)
        assert policy.backoff_ceiling(3) == 0.4
        ```
    """

    max_retries: int = 3
    backoff_initial: float = 0.5
    backoff_max: float = 8.0
    max_retry_after: float = 60.0
    sleep: Callable[[float], Awaitable[None]] = field(
        default=_default_sleep, repr=False, compare=False
    )
    jitter: Callable[[float], float] = field(default=_full_jitter, repr=False, compare=False)

    @classmethod
    def from_config(cls, config: ProvenaConfig) -> RetryPolicy:
        """Build a policy from a config's ``max_retries``, backoff and ``max_retry_after``.

        Example:
            ```python
            from provena_like import ProvenaConfig
            assert RetryPolicy.from_config(ProvenaConfig(max_retries=1)).max_retries == 1
            ```
        """
        return cls().with_config(config)

    def with_config(self, config: ProvenaConfig) -> RetryPolicy:
        """Return a copy with the numbers of ``config``, keeping ``sleep`` and ``jitter``.

        Example:
            ```python
            from provena_like import ProvenaConfig
            assert RetryPolicy().with_config(ProvenaConfig(max_retries=0)).max_retries == 0
            ```
        """
        return replace(
            self,
            max_retries=config.max_retries,
            backoff_initial=config.backoff_initial,
            backoff_max=config.backoff_max,
            max_retry_after=config.max_retry_after,
        )

    @staticmethod
    def may_retry_method(method: str, headers: Mapping[str, str] | httpx.Headers) -> bool:
        """Whether a request may be sent more than once.

        Args:
            method: the HTTP method.
            headers: the request headers (an ``Idempotency-Key`` makes any method repeatable).

        Example:
            ```python
            assert RetryPolicy.may_retry_method("POST", {"Idempotency-Key": "k1"})
            assert not RetryPolicy.may_retry_method("POST", {})
            ```
        """
        if method.upper() in IDEMPOTENT_METHODS:
            return True
        return "idempotency-key" in {name.lower() for name in headers}

    def backoff_ceiling(self, attempt_number: int) -> float:
        """The backoff ceiling after attempt ``attempt_number`` (1-based): doubling, capped.

        Example:
            ```python
            assert RetryPolicy(backoff_initial=1, backoff_max=5).backoff_ceiling(10) == 5.0
            ```
        """
        exponent = min(max(attempt_number - 1, 0), 62)
        return float(min(self.backoff_max, self.backoff_initial * (2**exponent)))

    def should_retry_response(self, response: httpx.Response) -> bool:
        """Whether a response's status is retryable and its ``Retry-After`` is acceptable.

        Example:
            ```python
            import httpx
            policy = RetryPolicy(max_retry_after=60)
            assert policy.should_retry_response(httpx.Response(503))
            too_long = httpx.Response(429, headers={"Retry-After": "600"})
            assert not policy.should_retry_response(too_long)
            ```
        """
        if response.status_code not in RETRY_STATUSES:
            return False
        delay = parse_retry_after(response.headers.get("retry-after"))
        return delay is None or delay <= self.max_retry_after

    def wait_seconds(self, response: httpx.Response | None, attempt_number: int) -> float:
        """How long to wait before the next attempt: ``Retry-After`` *or* jittered backoff.

        Args:
            response: the response that will be retried, or ``None`` after a transport error.
            attempt_number: the number of the attempt that just failed (1-based).

        Example:
            ```python
            import httpx
            response = httpx.Response(429, headers={"Retry-After": "2"})
            assert RetryPolicy().wait_seconds(response, 1) == 2.0
            ```
        """
        if response is not None:
            delay = parse_retry_after(response.headers.get("retry-after"))
            if delay is not None:
                return delay
        return self.jitter(self.backoff_ceiling(attempt_number))

    def retrying(self, *, retryable_method: bool, label: str = "request") -> AsyncRetrying:
        """Build the tenacity loop for one call.

        The wrapped function returns an :class:`httpx.Response` or raises. When the retries
        run out, the loop returns the last response or raises the last exception (never a
        :class:`tenacity.RetryError`).

        Args:
            retryable_method: whether the request may be repeated (see
                :meth:`may_retry_method`); when ``False`` nothing is retried.
            label: how to name the request in debug logs (e.g. ``"GET https://..."``).

        Example:
            ```python
            retrying = RetryPolicy().retrying(retryable_method=True)
            # response = await retrying(send_once)
            ```
        """

        def retry(state: RetryCallState) -> bool:
            outcome = state.outcome
            if not retryable_method or outcome is None:
                return False
            if outcome.failed:
                exc = outcome.exception()
                return exc is not None and is_retryable_exception(exc)
            result = outcome.result()
            return isinstance(result, httpx.Response) and self.should_retry_response(result)

        def wait(state: RetryCallState) -> float:
            outcome = state.outcome
            response = None
            if outcome is not None and not outcome.failed:
                result = outcome.result()
                response = result if isinstance(result, httpx.Response) else None
            return self.wait_seconds(response, state.attempt_number)

        def stop(state: RetryCallState) -> bool:
            return state.attempt_number > self.max_retries

        def before_sleep(state: RetryCallState) -> None:
            outcome = state.outcome
            reason: object = "?"
            if outcome is not None:
                if outcome.failed:
                    reason = type(outcome.exception()).__name__
                else:
                    result = outcome.result()
                    reason = getattr(result, "status_code", "?")
            delay = state.upcoming_sleep
            log.debug(
                "retrying %s after attempt %d (%s) in %.2fs",
                label,
                state.attempt_number,
                reason,
                delay,
            )

        def give_up(state: RetryCallState) -> object:
            outcome = state.outcome
            assert outcome is not None  # tenacity only stops after an attempt
            return outcome.result()  # the last response, or raise the last error

        return AsyncRetrying(
            sleep=self.sleep,
            retry=retry,
            wait=wait,
            stop=stop,
            before_sleep=before_sleep,
            retry_error_callback=give_up,
        )

    async def call(
        self,
        send: Callable[[], Awaitable[R]],
        *,
        retryable_method: bool,
        label: str = "request",
    ) -> R:
        """Run ``send`` under this policy and return its last result.

        Args:
            send: makes one attempt; returns an :class:`httpx.Response` or raises.
            retryable_method: whether the request may be repeated at all.
            label: how to name the request in debug logs.

        Example:
            ```python
            response = await policy.call(lambda: client.send(request), retryable_method=True)
            ```
        """
        retrying = self.retrying(retryable_method=retryable_method, label=label)
        return cast(R, await retrying(send))
