"""A request's bearer token is verified (its signature checked) once, not per layer.

The body-limit middleware authenticates a request with a body before reading it; the
route's principal dependency then takes the claims it verified, checking only that the
token has not expired since.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from provena_like.server.errors import ServiceError
from provena_like.server.security import verified_claims
from provena_like.testing.server_thread import ServerThread
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio


class CountingVerifier:
    """The server's authenticator, counting the tokens it verifies."""

    def __init__(self, tokens: Any) -> None:
        self.tokens = tokens
        self.calls = 0

    async def verify_access_token(self, token: str) -> dict[str, Any]:
        self.calls += 1
        claims: dict[str, Any] = await self.tokens.verify_access_token(token)
        return claims

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tokens, name)


@pytest.fixture
def counting(server: ServerThread) -> Iterator[CountingVerifier]:
    tokens = server.app.state.authenticator
    server.app.state.authenticator = counter = CountingVerifier(tokens)
    try:
        yield counter
    finally:
        server.app.state.authenticator = tokens


async def test_a_request_with_a_body_verifies_its_token_once(
    server: ServerThread, make_token: Callable[..., str], counting: CountingVerifier
) -> None:
    token = make_token("verified-once")
    async with httpx.AsyncClient(verify=SHARED_TLS, base_url=server.url) as http:
        r = await http.post(
            "/registry/items",
            json={"subtype": "no-such-subtype", "record": {}},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code == 422, r.text  # authenticated (not 401), then refused
    assert counting.calls == 1


async def test_a_token_expired_since_it_was_verified_is_refused(
    server: ServerThread, make_token: Callable[..., str]
) -> None:
    tokens = server.app.state.authenticator
    token = make_token("expires-soon", ttl=1)
    scope: dict[str, Any] = {}
    assert (await verified_claims(scope, tokens, token))["sub"] == "expires-soon"
    time.sleep(1.5)
    with pytest.raises(ServiceError) as refused:
        await verified_claims(scope, tokens, token)
    assert refused.value.status == 401


async def test_another_token_in_the_same_request_is_verified_afresh(
    server: ServerThread, make_token: Callable[..., str]
) -> None:
    tokens = server.app.state.authenticator
    scope: dict[str, Any] = {}
    good = make_token("first-token")
    await verified_claims(scope, tokens, good)
    head, payload, _ = good.split(".")
    with pytest.raises(ServiceError) as refused:
        await verified_claims(scope, tokens, f"{head}.{payload}.AAAA")
    assert refused.value.status == 401
