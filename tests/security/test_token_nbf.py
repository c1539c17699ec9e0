"""Bearer tokens whose ``nbf`` (not before, RFC 7519 §4.1.5) lies in the future are refused."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from provena_like.testing.server_thread import ServerThread
from tests.support.tls import SHARED_TLS

pytestmark = pytest.mark.anyio


def signed(srv: ServerThread, **claims: Any) -> str:
    """A token signed with the server's own key (so only the claims can make it fail)."""
    token: str = srv.app.state.tokens.issue_access_token(
        subject="admin", client_id="tests", scope="openid", ttl=600, extra=claims
    )
    return token


async def userinfo(srv: ServerThread, token: str) -> httpx.Response:
    async with httpx.AsyncClient(verify=SHARED_TLS) as http:
        return await http.get(
            f"{srv.settings.issuer}/userinfo", headers={"Authorization": f"Bearer {token}"}
        )


@pytest.mark.parametrize("nbf", [3600, 120, "soon", True])  # the leeway is 30 s
async def test_token_not_valid_yet_is_refused(server: ServerThread, nbf: Any) -> None:
    value = int(time.time()) + nbf if isinstance(nbf, int) and nbf is not True else nbf
    r = await userinfo(server, signed(server, nbf=value))
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize("offset", [-60, 0, 10])
async def test_token_valid_now_or_within_the_leeway_is_accepted(
    server: ServerThread, offset: int
) -> None:
    r = await userinfo(server, signed(server, nbf=int(time.time()) + offset))
    assert r.status_code == 200, r.text
    assert r.json()["sub"] == "admin"
