"""The registry's tests run against a server on each database (see tests.support.databases)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from provena_like.testing.server_thread import ServerThread


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
