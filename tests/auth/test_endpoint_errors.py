"""Transport failures of the token and discovery calls become the SDK's typed errors.

Both ``post_form`` (token, device, revocation) and ``get_json`` (discovery) go through one
sender; each is checked against a real loopback socket that refuses, or never answers.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable, Iterator

import httpx
import pytest

from provena_like._core.errors import APIConnectionError, APITimeoutError
from provena_like.auth._endpoint import get_json, post_form

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
    async with httpx.AsyncClient() as http:
        with pytest.raises(APIConnectionError, match="could not be reached") as caught:
            await CALLS[name](http, refused_url)
    assert caught.value.service == "auth"
    assert not isinstance(caught.value, APITimeoutError)
    assert refused_url in str(caught.value)


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_no_answer_is_an_api_timeout_error(name: str, silent_url: str) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(0.5)) as http:
        with pytest.raises(APITimeoutError, match="did not answer in time") as caught:
            await CALLS[name](http, silent_url)
    assert caught.value.service == "auth"
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)
