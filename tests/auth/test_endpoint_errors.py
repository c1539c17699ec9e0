"""Failures of the token, device and discovery calls become the SDK's typed errors.

Both ``post_form`` (token, device, revocation) and ``get_json`` (discovery) go through one
sender; each is checked against a real loopback socket that refuses, or never answers. The
answers of the token and device authorization endpoints go through one parser.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

from provena_like._core.errors import (
    APIConnectionError,
    APITimeoutError,
    ResponseValidationError,
    ServerError,
)
from provena_like.auth._endpoint import (
    get_json,
    parse_oauth_response,
    parse_token_response,
    post_form,
)
from provena_like.models.auth import DeviceAuthorization, OAuthError, TokenResponse
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio

Call = Callable[[httpx.AsyncClient, str], Awaitable[object]]

CALLS: dict[str, Call] = {
    "post_form": lambda http, url: post_form(http, url, {"grant_type": "refresh_token"}),
    "get_json": get_json,
}


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A loopback port that accepts connections and never answers."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        host, port = sock.getsockname()[:2]
        yield f"http://{host}:{port}/token"


@pytest.fixture
def refused_url() -> str:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}/token"


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_a_refused_connection_is_an_api_connection_error(name: str, refused_url: str) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        with pytest.raises(APIConnectionError, match="could not be reached") as caught:
            await CALLS[name](http, refused_url)
    assert caught.value.service == "auth"
    assert not isinstance(caught.value, APITimeoutError)
    assert refused_url in str(caught.value)


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_no_answer_is_an_api_timeout_error(name: str, silent_url: str) -> None:
    async with httpx.AsyncClient(verify=SHARED_TLS, timeout=httpx.Timeout(0.5)) as http:
        with pytest.raises(APITimeoutError, match="did not answer in time") as caught:
            await CALLS[name](http, silent_url)
    assert caught.value.service == "auth"
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


_TOKEN_URL = "https://idp.example.org/token"


def _answer(status: int, body: bytes, **headers: str) -> httpx.Response:
    return httpx.Response(
        status, content=body, headers=headers, request=httpx.Request("POST", _TOKEN_URL)
    )


def test_a_2xx_body_is_parsed_as_the_model() -> None:
    body = b'{"access_token": "at", "token_type": "Bearer", "expires_in": 60}'
    token = parse_token_response(_answer(200, body))
    assert isinstance(token, TokenResponse)
    assert token.expires_in == 60


def test_an_oauth_error_is_returned_not_raised() -> None:
    body = b'{"error": "authorization_pending"}'
    outcome = parse_oauth_response(_answer(400, body), DeviceAuthorization, "unexpected")
    assert isinstance(outcome, OAuthError)
    assert outcome.error == "authorization_pending"


def test_a_non_oauth_error_status_raises_the_status_error() -> None:
    with pytest.raises(ServerError) as caught:
        parse_token_response(_answer(502, b"<html>bad gateway</html>"))
    assert caught.value.status_code == 502
    assert caught.value.service == "auth"


@pytest.mark.parametrize("body", [b"not json", b'{"refresh_token": "s3cret-value"}'])
def test_an_unexpected_2xx_body_is_not_echoed(body: bytes) -> None:
    answer = _answer(200, body, **{"x-request-id": "req-7"})
    with pytest.raises(ResponseValidationError, match="device says no") as caught:
        parse_oauth_response(answer, DeviceAuthorization, "device says no")
    assert caught.value.request_id == "req-7"
    assert "s3cret" not in str(caught.value)
    assert caught.value.__cause__ is None
