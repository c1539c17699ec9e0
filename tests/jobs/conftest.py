"""Fixtures of the job runner tests: a fresh, migrated database for each test.

A SQLite file by default; with ``PROVENA_TEST_DATABASE_URL`` set to a PostgreSQL server
(``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``), a new database on it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.databases import TEST_DATABASE_URL
from tests.support.job_helpers import migrated_sqlite, scratch_postgres_database


@pytest.fixture
async def job_db(tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a fresh database with every migration applied."""
    if TEST_DATABASE_URL is None:
        yield await migrated_sqlite(tmp_path / "jobs.db")
        return
    async with scratch_postgres_database(TEST_DATABASE_URL) as url:
        yield url
