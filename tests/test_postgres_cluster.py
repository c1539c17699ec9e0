"""The tests' throwaway PostgreSQL cluster (tests/support/postgres.py), from the wheel."""

from __future__ import annotations

import os
import pwd
import socket
from pathlib import Path

import anyio
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.postgres import UNPRIVILEGED_USER, TemporaryPostgres


def _running(pid: int) -> bool:
    """Whether the process runs (a zombie that nobody reaped does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


async def _ask(url: str, query: str) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return str((await conn.execute(text(query))).scalar_one())
    finally:
        await engine.dispose()


@pytest.mark.anyio
async def test_a_cluster_on_loopback_that_stop_removes() -> None:
    cluster = await anyio.to_thread.run_sync(TemporaryPostgres().start)
    assert cluster.dir is not None and cluster.port is not None
    data_dir, port = cluster.dir, cluster.port
    try:
        assert await _ask(cluster.url, "SHOW listen_addresses") == "127.0.0.1"
        assert await _ask(cluster.url, "SHOW fsync") == "off"
        # PostgreSQL refuses root: as root, the cluster belongs to an unprivileged user
        me = pwd.getpwuid(os.getuid()).pw_name
        expected = UNPRIVILEGED_USER if os.geteuid() == 0 else me
        assert pwd.getpwuid(data_dir.stat().st_uid).pw_name == expected
        pid = int((data_dir / "data" / "postmaster.pid").read_text().split()[0])
        assert _running(pid)
    finally:
        await anyio.to_thread.run_sync(cluster.stop)
    assert not data_dir.exists()
    assert not _running(pid)
    with socket.socket() as sock, pytest.raises(ConnectionRefusedError):
        sock.connect(("127.0.0.1", port))
