"""Several server processes starting at once on one fresh data dir (``serve --workers N``).

Each runs the migrations, loads (or creates) the signing key and bootstraps the first
administrator; they must all come up, and with one and the same key. With
``PROVENA_TEST_DATABASE_URL`` set (a PostgreSQL server) they share a new, empty database there.
"""

from __future__ import annotations

import multiprocessing
import queue
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from provena_like.server.settings import ServerSettings
from tests.support.auth_helpers import CHEAP_PASSWORD_HASHING
from tests.support.databases import TEST_DATABASE_URL
from tests.support.startup_child import start_once

PROCESSES = 4


async def _run_sql(server_url: str, statement: str) -> None:
    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(statement))
    finally:
        await engine.dispose()


@pytest.fixture
def database_url() -> Iterator[str | None]:
    """None (SQLite in the data dir), or a new empty database on the test PostgreSQL."""
    if TEST_DATABASE_URL is None:
        yield None
        return
    name = f"startup_{uuid.uuid4().hex[:12]}"
    anyio.run(_run_sql, TEST_DATABASE_URL, f'CREATE DATABASE "{name}"')
    try:
        yield make_url(TEST_DATABASE_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        anyio.run(_run_sql, TEST_DATABASE_URL, f'DROP DATABASE "{name}" WITH (FORCE)')


def test_processes_starting_at_once_share_one_schema_key_and_admin(
    tmp_path: Path, database_url: str | None
) -> None:
    settings = ServerSettings.model_validate(
        {
            "data_dir": tmp_path / "server",
            "public_url": "http://127.0.0.1:9",
            "password_hashing": CHEAP_PASSWORD_HASHING,
            "database_url": database_url,
        }
    )
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(PROCESSES, timeout=240)
    results = context.Queue()
    processes = [
        context.Process(target=start_once, args=(settings, barrier, results), daemon=True)
        for _ in range(PROCESSES)
    ]
    for p in processes:
        p.start()
    try:
        answers = [results.get(timeout=240) for _ in range(PROCESSES)]
    except queue.Empty:
        raise AssertionError(f"exit codes {[p.exitcode for p in processes]}") from None
    finally:
        for p in processes:
            p.join(60)
            if p.is_alive():
                p.kill()
    assert [a for a in answers if a[0] != "ok"] == []
    assert len({jwks for _, jwks in answers}) == 1, "each process made its own signing key"
