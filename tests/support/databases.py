"""Run a test folder against another database: ``PROVENA_TEST_DATABASE_URL``.

Set it (e.g. ``postgresql+asyncpg://postgres@127.0.0.1:5432/db``) and run one folder alone
(``pytest tests/search``, ``pytest tests/registration``): a folder whose ``conftest.py``
imports :func:`localstack_on_test_database` when :data:`TEST_DATABASE_URL` is set runs on a
stack using that database (no object store) instead of the session's SQLite stack.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

from provena_like.testing.localstack import LocalStack

TEST_DATABASE_URL = os.environ.get("PROVENA_TEST_DATABASE_URL")


@pytest.fixture(scope="session", name="localstack")
async def localstack_on_test_database(anyio_backend: str) -> AsyncIterator[LocalStack]:
    """A stack on the database of ``PROVENA_TEST_DATABASE_URL`` (no object store)."""
    del anyio_backend
    async with LocalStack(s3=False, database_url=TEST_DATABASE_URL) as stack:
        yield stack
