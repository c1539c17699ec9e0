"""One process at a time through the server's start-up work (several API workers).

``provena-like serve --workers N`` starts N processes on one data dir at once. Each runs the
app's lifespan: the schema migrations, the signing and sealing keys (files in the data dir,
created on first start) and the bootstrap of the first administrator. Run side by side on a
fresh data dir, two processes would both see no key file and each write its own key (a token
signed by one worker would then be refused by the other), and both would run the first
migration. :func:`startup_lock` makes them take turns: the first does the work, the others
then find it done. The lock is an exclusive ``flock`` on ``startup.lock`` in the data dir,
which every worker of a server shares (its keys are there); the schema upgrade also takes a
PostgreSQL advisory lock (:func:`provena_like.server.db.schema.upgrade_schema`), for servers
on several hosts that share one database.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

__all__ = ["LOCK_FILE", "file_lock", "startup_lock"]

LOCK_FILE = "startup.lock"


POLL_SECONDS = 0.05
"""How often a process waiting for a lock file tries again."""


def _try_acquire(path: Path) -> int | None:
    """An open descriptor holding the exclusive ``flock`` of ``path``, or None if taken."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    return fd


@asynccontextmanager
async def file_lock(path: Path) -> AsyncIterator[None]:
    """Hold the exclusive ``flock`` of ``path``, waiting (cancellably) while another holds it.

    Locks of the same file exclude each other across processes and within one process
    (each holder opens the file anew).

    Example:
        ```python
        async with file_lock(settings.data_dir / "freeze.lock"):
            ...
        ```
    """
    while (fd := _try_acquire(path)) is None:
        await anyio.sleep(POLL_SECONDS)
    try:
        yield
    finally:
        os.close(fd)  # releases the flock


@asynccontextmanager
async def startup_lock(data_dir: Path) -> AsyncIterator[None]:
    """Hold the data dir's start-up lock (waiting while another process holds it).

    Example:
        ```python
        async with startup_lock(settings.data_dir):
            await upgrade_schema(engine)
        ```
    """
    async with file_lock(data_dir / LOCK_FILE):
        yield
