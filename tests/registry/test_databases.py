"""The registry's tests run against a server on each database (see tests.support.databases)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from provena_like.testing.server_thread import ServerThread
from tests.support.registry_helpers import User, person


async def _server_version(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SHOW server_version_num"))).scalar_one())


def test_the_server_runs_on_the_tests_database(
    server: ServerThread, request: pytest.FixtureRequest
) -> None:
    backend = request.node.callspec.params["localstack"]
    engine: AsyncEngine = server.app.state.engine
    assert engine.dialect.name == {"sqlite": "sqlite", "postgres": "postgresql"}[backend]
    if backend == "postgres":  # the full-text search needs websearch_to_tsquery (11+)
        assert server.call(lambda: _server_version(engine)) >= 150000


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/items/10378.1/1%00", None),
        ("POST", "/items", {"subtype": "person", "record": person(), "display_name": "a\x00b"}),
        ("POST", "/items", {"subtype": "person", "record": person(first="A\x00da")}),
    ],
    ids=["lookup", "text-column", "json-column"],
)
async def test_a_nul_character_is_never_a_server_error(
    client: httpx.AsyncClient,
    new_user: Callable[..., User],
    request: pytest.FixtureRequest,
    method: str,
    url: str,
    body: dict[str, Any] | None,
) -> None:
    """SQLite stores NUL; PostgreSQL can't: there it is the caller's error (400), not a 500."""
    user = new_user("nul")
    r = await client.request(method, url, json=body, headers=user.headers)
    assert r.status_code < 500, r.text
    if request.node.callspec.params["localstack"] == "postgres" and method == "POST":
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "unrepresentable_text", r.text
