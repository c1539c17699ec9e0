"""Table-driven tests of the retry rules: Retry-After parsing and the retry decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from provena_like._core.retry import (
    RETRY_STATUSES,
    RetryPolicy,
    is_retryable_exception,
    parse_retry_after,
)

NOW = datetime(2025, 1, 15, 12, 0, 0, tzinfo=UTC)


def http_date(when: datetime) -> str:
    return format_datetime(when, usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("", None, id="empty"),
        pytest.param("   ", None, id="blank"),
        pytest.param("0", 0.0, id="zero-seconds"),
        pytest.param("5", 5.0, id="seconds"),
        pytest.param(" 7 ", 7.0, id="seconds-with-spaces"),
        pytest.param("1.5", 1.5, id="fractional-seconds"),
        pytest.param("3600", 3600.0, id="large-seconds"),
        pytest.param("-1", None, id="negative"),
        pytest.param("soon", None, id="garbage-word"),
        pytest.param("1e3", None, id="exponent"),
        pytest.param("inf", None, id="infinity"),
        pytest.param("nan", None, id="nan"),
        pytest.param("5s", None, id="seconds-with-unit"),
        pytest.param("Wed, 99 Foo 2015 07:28:00 GMT", None, id="garbage-date"),
        pytest.param(http_date(NOW + timedelta(seconds=30)), 30.0, id="date-in-30s"),
        pytest.param(http_date(NOW + timedelta(hours=2)), 7200.0, id="date-in-2h"),
        pytest.param(http_date(NOW), 0.0, id="date-now"),
        pytest.param(http_date(NOW - timedelta(minutes=5)), 0.0, id="date-in-past"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 0.0, id="rfc-example-past"),
        pytest.param("Wed, 15 Jan 2025 12:00:10 +0000", 10.0, id="numeric-zone"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == expected


def test_parse_retry_after_defaults_to_current_time() -> None:
    future = http_date(datetime.now(UTC) + timedelta(seconds=120))
    delay = parse_retry_after(future)
    assert delay is not None
    assert 110 <= delay <= 120


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", {}, True),
        ("HEAD", {}, True),
        ("OPTIONS", {}, True),
        ("PUT", {}, True),
        ("DELETE", {}, True),
        ("get", {}, True),
        ("POST", {}, False),
        ("PATCH", {}, False),
        ("POST", {"Idempotency-Key": "k1"}, True),
        ("POST", {"idempotency-key": "k1"}, True),
        ("PATCH", {"Idempotency-Key": "k1"}, True),
        ("POST", {"X-Other": "1"}, False),
    ],
)
def test_may_retry_method(method: str, headers: dict[str, str], expected: bool) -> None:
    assert RetryPolicy.may_retry_method(method, headers) is expected


@pytest.mark.parametrize(
    ("status", "retry_after", "expected"),
    [
        *[pytest.param(s, None, True, id=f"{s}-retried") for s in sorted(RETRY_STATUSES)],
        *[
            pytest.param(s, None, False, id=f"{s}-not-retried")
            for s in (200, 201, 204, 400, 401, 403, 404, 409, 412, 418, 422, 501, 505)
        ],
        pytest.param(429, "2", True, id="429-short-retry-after"),
        pytest.param(503, "60", True, id="503-retry-after-at-limit"),
        pytest.param(429, "61", False, id="429-retry-after-too-large"),
        pytest.param(503, "3600", False, id="503-retry-after-too-large"),
        pytest.param(429, "garbage", True, id="429-garbage-retry-after-uses-backoff"),
        pytest.param(404, "1", False, id="404-with-retry-after"),
    ],
)
def test_should_retry_response(status: int, retry_after: str | None, expected: bool) -> None:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    policy = RetryPolicy(max_retry_after=60)
    assert policy.should_retry_response(httpx.Response(status, headers=headers)) is expected


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 8.0), (100, 8.0), (0, 0.5)],
)
def test_backoff_ceiling_doubles_and_caps(attempt: int, ceiling: float) -> None:
    policy = RetryPolicy(backoff_initial=0.5, backoff_max=8.0)
    assert policy.backoff_ceiling(attempt) == ceiling


@pytest.mark.parametrize(
    ("response", "attempt", "expected"),
    [
        pytest.param(httpx.Response(429, headers={"Retry-After": "3"}), 1, 3.0, id="retry-after"),
        pytest.param(httpx.Response(503, headers={"Retry-After": "0"}), 4, 0.0, id="zero"),
        pytest.param(httpx.Response(503), 1, 0.5, id="backoff-1"),
        pytest.param(httpx.Response(503), 3, 2.0, id="backoff-3"),
        pytest.param(httpx.Response(503, headers={"Retry-After": "x"}), 2, 1.0, id="garbage"),
        pytest.param(None, 2, 1.0, id="transport-error"),
    ],
)
def test_wait_is_retry_after_or_backoff_never_both(
    response: httpx.Response | None, attempt: int, expected: float
) -> None:
    # jitter = identity, so a backoff wait equals its ceiling and can't hide inside Retry-After
    policy = RetryPolicy(backoff_initial=0.5, backoff_max=8.0, jitter=lambda ceiling: ceiling)
    assert policy.wait_seconds(response, attempt) == expected


def test_full_jitter_stays_within_ceiling() -> None:
    policy = RetryPolicy(backoff_initial=1.0, backoff_max=4.0)
    waits = [policy.wait_seconds(None, 3) for _ in range(200)]
    assert all(0.0 <= w <= 4.0 for w in waits)
    assert len(set(waits)) > 1


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectError("refused"), True),
        (httpx.ReadError("reset"), True),
        (httpx.WriteError("broken pipe"), True),
        (httpx.RemoteProtocolError("server disconnected"), True),
        (httpx.ConnectTimeout("slow"), True),
        (httpx.ReadTimeout("slow"), True),
        (httpx.PoolTimeout("busy"), True),
        (httpx.UnsupportedProtocol("ftp://"), False),
        (httpx.DecodingError("bad gzip"), False),
        (ValueError("not http"), False),
    ],
)
def test_is_retryable_exception(exc: BaseException, expected: bool) -> None:
    assert is_retryable_exception(exc) is expected


def test_from_config_copies_numbers() -> None:
    from provena_like import ProvenaConfig

    config = ProvenaConfig(max_retries=7, backoff_initial=0.1, backoff_max=2.0, max_retry_after=5.0)
    policy = RetryPolicy.from_config(config)
    assert (policy.max_retries, policy.backoff_initial, policy.backoff_max) == (7, 0.1, 2.0)
    assert policy.max_retry_after == 5.0
