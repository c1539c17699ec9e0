"""Fixtures of the job runner tests: a real SQLite database file with the migrations applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.job_helpers import migrated_sqlite


@pytest.fixture
async def job_db(tmp_path: Path) -> str:
    """The URL of a fresh, migrated SQLite database file."""
    return await migrated_sqlite(tmp_path / "jobs.db")
