"""Fixtures of the job runner tests: a fresh, migrated database for each test.

Each test runs on a SQLite file (``[sqlite]``) and on a new database of the session's
PostgreSQL server (``[postgres]``, see :mod:`tests.support.databases`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.databases import BACKENDS
from tests.support.job_helpers import migrate, migrated_sqlite
from tests.support.postgres import scratch_database


@pytest.fixture(params=BACKENDS)
async def job_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a fresh database with every migration applied."""
    if request.param == "sqlite":
        yield await migrated_sqlite(tmp_path / "jobs.db")
        return
    async with scratch_database(request.getfixturevalue("postgres_server"), "jobs") as url:
        yield await migrate(url)
