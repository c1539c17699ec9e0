"""``provena-like serve --database postgresql://…``: the server on a PostgreSQL database.

A plain ``postgresql://`` URL (no driver) is enough; the URL can come from
``PROVENA_LIKE_DATABASE_URL`` instead (kept out of the process list); an unsupported database
is a usage error and an unreachable one a clear failure, both before anything starts.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from provena_like.cli._errors import ExitCode
from provena_like.cli.main import app
from provena_like.server.settings import ServerSettings, async_database_url
from tests.support.cli_runner import CliRunner
from tests.support.postgres import scratch_database
from tests.support.processes import free_port, wait_until_serving

runner = CliRunner()


def test_urls_without_a_driver_get_the_servers_async_one() -> None:
    assert async_database_url("postgresql://u:p@db:5433/x?ssl=require") == (
        "postgresql+asyncpg://u:p@db:5433/x?ssl=require"
    )
    assert async_database_url("postgres://u@db/x") == "postgresql+asyncpg://u@db/x"
    assert async_database_url("postgresql://u:p%40ss@db/x?sslmode=verify-full&a=b") == (
        "postgresql+asyncpg://u:p%40ss@db/x?ssl=verify-full&a=b"  # libpq's name, asyncpg's
    )
    assert async_database_url("sqlite:///srv/p.db") == "sqlite+aiosqlite:///srv/p.db"
    assert async_database_url("postgresql+asyncpg://u@db/x") == "postgresql+asyncpg://u@db/x"
    settings = ServerSettings(data_dir=Path(), database_url="postgresql://u@db/x")
    assert settings.resolved_database_url == "postgresql+asyncpg://u@db/x"


def test_an_unsupported_database_is_a_usage_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = runner.invoke(
        app, ["serve", "--data-dir", str(data_dir), "--database", "mysql://u@db/x"]
    )
    assert result.exit_code == ExitCode.USAGE, result.output
    assert "unsupported database 'mysql'" in result.output
    assert not data_dir.exists()  # refused before anything started


def test_an_unreachable_database_fails_before_anything_starts(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    url = f"postgresql://provena:sekrit@127.0.0.1:{free_port()}/provena"
    result = runner.invoke(
        app,
        ["serve", "--data-dir", str(data_dir), "--port", "0", "--json"],
        env={"PROVENA_LIKE_DATABASE_URL": url},
    )
    assert result.exit_code == ExitCode.UNREACHABLE, result.output
    assert "cannot connect to the database" in result.output
    assert "sekrit" not in result.output
    assert not (data_dir / "s3").exists()  # the object store was not started


@pytest.mark.anyio
async def test_serve_runs_on_postgresql(postgres_server: str, tmp_path: Path) -> None:
    async with scratch_database(postgres_server, "serve") as database:
        plain = make_url(database).set(drivername="postgresql").render_as_string(False)
        data_dir, log, port = tmp_path / "server", tmp_path / "serve.log", free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PROVENA_", "WEED_"))}
        env["PROVENA_CACHE_DIR"] = str(tmp_path / "cache")
        argv = ["serve", "--data-dir", str(data_dir), "--port", str(port), "--database", plain]
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-c", "from provena_like.cli.main import main; main()", *argv],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            await anyio.to_thread.run_sync(
                lambda: wait_until_serving(
                    proc, f"http://127.0.0.1:{port}/openapi.json", log, timeout=180
                )
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            await anyio.to_thread.run_sync(lambda: proc.wait(timeout=60))
        assert proc.returncode == 0, log.read_text()[-3000:]
        engine = create_async_engine(database)
        try:
            async with engine.connect() as conn:
                tables = await conn.execute(text("SELECT tablename FROM pg_tables"))
                names = {row[0] for row in tables}
                admins = await conn.execute(text("SELECT username FROM users"))
                users = {row[0] for row in admins}
        finally:
            await engine.dispose()
        assert {"alembic_version", "registry_items", "jobs"} <= names  # migrated at start
        assert "admin" in users  # the first start's administrator
        assert not (data_dir / "provena.db").exists()
