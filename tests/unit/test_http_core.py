"""HTTPCore: retries, idempotency keys, error mapping, validation and lifecycle.

These use ``httpx.MockTransport`` because a real server can't produce a 503 storm or a dropped
connection on demand. Sleeps are recorded, not slept.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Generator, Iterable
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from provena_like import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    Conflict,
    ProvenaConfig,
    RateLimited,
    ResponseValidationError,
    ServerError,
    UsageError,
)
from provena_like._core.http import USER_AGENT, ClientState, HTTPCore
from provena_like._core.retry import RetryPolicy

pytestmark = pytest.mark.anyio

Reply = httpx.Response | Exception


class Script:
    """A mock server that answers with a scripted sequence and records every request."""

    def __init__(self, replies: Iterable[Reply]) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def keys(self) -> list[str | None]:
        return [r.headers.get("Idempotency-Key") for r in self.requests]


class Sleeps(list[float]):
    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def make_core(sleeps: Sleeps) -> Callable[..., HTTPCore]:
    def make(script: Script, *, auth: httpx.Auth | None = None, **config: Any) -> HTTPCore:
        cfg = ProvenaConfig(base_url="http://provena.test", **config)
        # jitter = ceiling, so a backoff is recognisable and never confused with Retry-After
        policy = dataclasses.replace(
            RetryPolicy.from_config(cfg), sleep=sleeps, jitter=lambda ceiling: ceiling
        )
        return HTTPCore(cfg, auth=auth, transport=httpx.MockTransport(script), retry_policy=policy)

    return make


def _headers(headers: dict[str, str]) -> dict[str, str]:
    return {name.replace("_", "-"): value for name, value in headers.items()}


def ok(body: Any = None, status: int = 200, **headers: str) -> httpx.Response:
    json = body if body is not None else {"ok": True}
    return httpx.Response(status, json=json, headers=_headers(headers))


def status(code: int, **headers: str) -> httpx.Response:
    body = {"error": {"code": "x", "message": f"status {code}", "details": None}}
    return httpx.Response(code, json=body, headers=_headers(headers))


# -- retries -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", [408, 429, 500, 502, 503, 504])
async def test_retryable_status_storm_then_success(
    make_core: Callable[..., HTTPCore], sleeps: Sleeps, code: int
) -> None:
    script = Script([status(code), status(code), status(code), ok({"n": 1})])
    async with make_core(script, max_retries=3) as core:
        response = await core.request("GET", "registry", "/items")
    assert response.json() == {"n": 1}
    assert len(script.requests) == 4
    assert sleeps == [0.5, 1.0, 2.0]  # backoff ceilings: doubling


@pytest.mark.parametrize(
    ("code", "cls"), [(503, ServerError), (429, RateLimited), (500, ServerError)]
)
async def test_storm_longer_than_retries_raises_last_error(
    make_core: Callable[..., HTTPCore], sleeps: Sleeps, code: int, cls: type[APIStatusError]
) -> None:
    script = Script([status(code, x_request_id="rid-last")])
    async with make_core(script, max_retries=2) as core:
        with pytest.raises(cls) as info:
            await core.request("GET", "registry", "/items")
    assert len(script.requests) == 3
    assert len(sleeps) == 2
    assert info.value.request_id == "rid-last"


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 412, 422, 501])
async def test_other_statuses_are_not_retried(
    make_core: Callable[..., HTTPCore], sleeps: Sleeps, code: int
) -> None:
    script = Script([status(code), ok()])
    async with make_core(script) as core:
        with pytest.raises(APIStatusError) as info:
            await core.request("GET", "registry", "/items")
    assert info.value.status_code == code
    assert len(script.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("retry_after", "slept"),
    [("2", 2.0), ("0", 0.0), ("60", 60.0), ("Thu, 01 Jan 1970 00:00:00 GMT", 0.0)],
)
async def test_retry_after_is_honoured_without_extra_backoff(
    make_core: Callable[..., HTTPCore], sleeps: Sleeps, retry_after: str, slept: float
) -> None:
    script = Script([status(429, retry_after=retry_after), ok()])
    async with make_core(script, backoff_initial=5.0) as core:
        await core.request("GET", "registry", "/items")
    assert sleeps == [slept]  # exactly Retry-After: no backoff added on top


async def test_retry_after_too_large_is_raised_at_once(
    make_core: Callable[..., HTTPCore], sleeps: Sleeps
) -> None:
    script = Script([status(429, retry_after="3600"), ok()])
    async with make_core(script, max_retry_after=60) as core:
        with pytest.raises(RateLimited):
            await core.request("GET", "registry", "/items")
    assert len(script.requests) == 1
    assert sleeps == []


async def test_max_retries_zero_disables_retries(
    make_core: Callable[..., HTTPCore], sleeps: Sleeps
) -> None:
    script = Script([status(503), ok()])
    async with make_core(script, max_retries=0) as core:
        with pytest.raises(ServerError):
            await core.request("GET", "registry", "/items")
    assert len(script.requests) == 1


# -- idempotency -------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_auto_idempotency_key_is_the_same_on_every_attempt(
    make_core: Callable[..., HTTPCore], method: str
) -> None:
    script = Script([status(503), status(502), ok(status=201)])
    async with make_core(script) as core:
        await core.request(method, "registry", "/items", json={"a": 1})
        first_call = script.keys()
        script.replies = [ok()]
        await core.request(method, "registry", "/items", json={"a": 1})
    assert len(first_call) == 3
    assert len(set(first_call)) == 1
    key = first_call[0]
    assert key is not None and uuid.UUID(key)
    assert script.keys()[-1] != key  # a new call gets a new key


async def test_explicit_idempotency_key_is_reused(make_core: Callable[..., HTTPCore]) -> None:
    script = Script([httpx.ConnectError("reset"), status(503), ok()])
    async with make_core(script) as core:
        await core.request("POST", "registry", "/items", json={}, idempotency_key="my-key-1")
    assert script.keys() == ["my-key-1"] * 3


@pytest.mark.parametrize(
    "reply", [status(503), httpx.ConnectError("refused"), httpx.ReadError("dropped")]
)
async def test_post_without_key_is_not_retried(
    make_core: Callable[..., HTTPCore], sleeps: Sleeps, reply: Reply
) -> None:
    script = Script([reply, ok()])
    async with make_core(script) as core:
        with pytest.raises((ServerError, APIConnectionError)):
            await core.request("POST", "registry", "/items", json={}, idempotency_key=None)
    assert len(script.requests) == 1
    assert script.keys() == [None]
    assert sleeps == []


async def test_post_with_key_in_headers_is_retried(make_core: Callable[..., HTTPCore]) -> None:
    script = Script([status(503), ok()])
    async with make_core(script) as core:
        await core.request(
            "POST", "registry", "/x", headers={"Idempotency-Key": "hdr-key"}, idempotency_key=None
        )
    assert script.keys() == ["hdr-key", "hdr-key"]


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "HEAD", "OPTIONS"])
async def test_idempotent_methods_get_no_key_and_are_retried(
    make_core: Callable[..., HTTPCore], method: str
) -> None:
    script = Script([status(503), httpx.ConnectError("refused"), ok()])
    async with make_core(script) as core:
        await core.request(method, "registry", "/items/1/2")
    assert script.keys() == [None, None, None]


# -- transport errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (httpx.ConnectError("connection refused"), APIConnectionError),
        (httpx.ReadError("connection reset"), APIConnectionError),
        (httpx.RemoteProtocolError("server disconnected without response"), APIConnectionError),
        (httpx.ConnectTimeout("connect timed out"), APITimeoutError),
        (httpx.ReadTimeout("read timed out"), APITimeoutError),
        (httpx.PoolTimeout("pool exhausted"), APITimeoutError),
    ],
)
async def test_transport_errors_are_retried_then_wrapped(
    make_core: Callable[..., HTTPCore],
    sleeps: Sleeps,
    exc: Exception,
    cls: type[APIConnectionError],
) -> None:
    script = Script([exc])
    async with make_core(script, max_retries=2) as core:
        with pytest.raises(cls) as info:
            await core.request("GET", "search", "/items")
    assert type(info.value) is cls
    assert info.value.__cause__ is exc
    assert info.value.service == "search"
    assert len(script.requests) == 3
    assert sleeps == [0.5, 1.0]
    assert "http://provena.test/search/items" in str(info.value)


@pytest.mark.parametrize(
    "exc", [httpx.DecodingError("bad gzip"), httpx.UnsupportedProtocol("no such scheme")]
)
async def test_unretryable_request_errors_are_wrapped(
    make_core: Callable[..., HTTPCore], sleeps: Sleeps, exc: Exception
) -> None:
    script = Script([exc])
    async with make_core(script) as core:
        with pytest.raises(APIConnectionError) as info:
            await core.request("GET", "registry", "/x")
    assert info.value.__cause__ is exc
    assert len(script.requests) == 1 and sleeps == []


async def test_explicit_key_replaces_header_key(make_core: Callable[..., HTTPCore]) -> None:
    script = Script([ok()])
    async with make_core(script) as core:
        await core.request(
            "POST", "registry", "/x", headers={"idempotency-key": "old"}, idempotency_key="new"
        )
    assert script.requests[0].headers.get_list("Idempotency-Key") == ["new"]


async def test_connection_error_then_success(make_core: Callable[..., HTTPCore]) -> None:
    script = Script([httpx.ConnectError("refused"), ok({"v": 2})])
    async with make_core(script) as core:
        response = await core.request("GET", "registry", "/items")
    assert response.json() == {"v": 2}


# -- responses ---------------------------------------------------------------------------


class Thing(BaseModel):
    id: str
    size: int


async def test_cast_to_validates_body(make_core: Callable[..., HTTPCore]) -> None:
    script = Script([ok({"id": "a/1", "size": 3})])
    async with make_core(script) as core:
        thing = await core.request("GET", "registry", "/things/a/1", cast_to=Thing)
    assert thing == Thing(id="a/1", size=3)


@pytest.mark.parametrize(
    "body",
    [
        httpx.Response(200, json={"id": "a/1", "size": "super-secret-value"}),
        httpx.Response(200, json={"id": "super-secret-value"}),
        httpx.Response(200, text="super-secret-value not json"),
    ],
)
async def test_bad_body_is_response_validation_error(
    make_core: Callable[..., HTTPCore], body: httpx.Response
) -> None:
    body.headers["x-request-id"] = "rid-bad-body"
    async with make_core(Script([body])) as core:
        with pytest.raises(ResponseValidationError) as info:
            await core.request("GET", "registry", "/things/a/1", cast_to=Thing)
    assert info.value.request_id == "rid-bad-body"
    assert "Thing" in str(info.value)
    assert "super-secret-value" not in str(info.value)
    assert info.value.__cause__ is None


async def test_error_envelope_becomes_typed_error(make_core: Callable[..., HTTPCore]) -> None:
    body = {"error": {"code": "locked", "message": "Item is locked.", "details": {"by": "bob"}}}
    reply = httpx.Response(409, json=body, headers={"x-request-id": "rid-409"})
    async with make_core(Script([reply])) as core:
        with pytest.raises(Conflict) as info:
            await core.request("PUT", "registry", "/items/a/1", json={})
    err = info.value
    assert (err.status_code, err.code, err.details) == (409, "locked", {"by": "bob"})
    assert (err.request_id, err.service, err.message) == ("rid-409", "registry", "Item is locked.")


@pytest.mark.parametrize(
    ("reply_status", "expected", "outcome"),
    [
        (200, None, "ok"),
        (204, None, "ok"),
        (201, (201,), "ok"),
        (200, (200, 201), "ok"),
        (200, (201,), "error"),
        (302, None, "error"),
        (404, (200,), "error"),
    ],
)
async def test_expected_statuses(
    make_core: Callable[..., HTTPCore],
    reply_status: int,
    expected: tuple[int, ...] | None,
    outcome: str,
) -> None:
    async with make_core(Script([httpx.Response(reply_status)])) as core:
        if outcome == "ok":
            response = await core.request("GET", "registry", "/x", expected=expected)
            assert response.status_code == reply_status
        else:
            with pytest.raises(APIStatusError) as info:
                await core.request("GET", "registry", "/x", expected=expected)
            assert info.value.status_code == reply_status


async def test_request_shape(make_core: Callable[..., HTTPCore]) -> None:
    script = Script([ok()])
    async with make_core(script, registry_url="http://reg.test/r/") as core:
        await core.request(
            "get",
            "registry",
            "/items",
            params={"subtype": "person", "cursor": None, "include_history": True},
            headers={"X-Extra": "1"},
        )
    request = script.requests[0]
    assert request.method == "GET"
    assert str(request.url) == "http://reg.test/r/items?subtype=person&include_history=true"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["Accept"] == "application/json"
    assert request.headers["X-Extra"] == "1"


async def test_path_must_start_with_slash(make_core: Callable[..., HTTPCore]) -> None:
    async with make_core(Script([ok()])) as core:
        with pytest.raises(UsageError, match="path"):
            await core.request("GET", "registry", "items")


class BearerAuth(httpx.Auth):
    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = "Bearer tok-SECRET-123"
        yield request


async def test_auth_is_applied_and_never_logged(
    make_core: Callable[..., HTTPCore], caplog: pytest.LogCaptureFixture
) -> None:
    script = Script([status(503, x_request_id="rid-a"), ok(x_request_id="rid-b")])
    caplog.set_level(logging.DEBUG, logger="provena_like")
    async with make_core(script, auth=BearerAuth()) as core:
        await core.request("POST", "registry", "/items", json={"password": "pw-SECRET-456"})
    assert all(r.headers["Authorization"] == "Bearer tok-SECRET-123" for r in script.requests)
    assert "rid-a" in caplog.text and "rid-b" in caplog.text
    assert "attempt 2" in caplog.text
    assert "SECRET" not in caplog.text
    assert "Idempotency-Key" not in caplog.text


# -- lifecycle ---------------------------------------------------------------------------


async def test_state_machine(make_core: Callable[..., HTTPCore]) -> None:
    core = make_core(Script([ok()]))
    states = [core.state]
    async with core:
        states.append(core.state)
        await core.request("GET", "registry", "/x")
    states.append(core.state)
    assert states == [ClientState.UNOPENED, ClientState.OPEN, ClientState.CLOSED]
    assert core.http_client.is_closed
    with pytest.raises(UsageError, match="closed"):
        await core.request("GET", "registry", "/x")
    with pytest.raises(UsageError, match="closed"):
        async with core:
            pass
    await core.aclose()  # closing twice is harmless


async def test_first_request_opens(make_core: Callable[..., HTTPCore]) -> None:
    core = make_core(Script([ok()]))
    await core.request("GET", "registry", "/x")
    states = [core.state]
    await core.aclose()
    states.append(core.state)
    assert states == [ClientState.OPEN, ClientState.CLOSED]


async def test_with_config_shares_pool(make_core: Callable[..., HTTPCore], sleeps: Sleeps) -> None:
    script = Script([status(503)])
    core = make_core(script, max_retries=3)
    copy = core.with_config(core.config.replace(max_retries=0, timeout=99))
    assert copy.http_client is core.http_client
    assert copy.retry_policy.max_retries == 0
    assert copy.retry_policy.sleep is sleeps  # the fake sleep survives
    with pytest.raises(ServerError):
        await copy.request("GET", "registry", "/x")
    assert len(script.requests) == 1
    assert script.requests[0].extensions["timeout"]["read"] == 99
    async with copy:
        pass
    assert copy.is_closed and not core.is_closed  # closing a copy leaves the pool open
    script.replies = [ok()]
    await core.request("GET", "registry", "/x")
    await core.aclose()
    other = core.with_config(core.config)
    with pytest.raises(UsageError, match="closed"):
        await other.request("GET", "registry", "/x")


def test_repr_has_no_secrets() -> None:
    core = HTTPCore(ProvenaConfig(access_token="tok-SECRET"))
    assert "SECRET" not in repr(core)
    assert "127.0.0.1" in repr(core)
