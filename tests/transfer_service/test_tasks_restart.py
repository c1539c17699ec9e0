"""A transfer task survives a server killed with SIGKILL in its middle (issue 12).

A real server process (uvicorn, SQLite in its data dir, a short job lease) copies 500 files
between two local collections; it is killed with SIGKILL once some files are done, and started
again on the same data dir. The task must end SUCCEEDED with every file in place and
identical to its source, and no temporary file left.

SQLite only: the test is about the task's files surviving a killed process (over a minute of
copying and restarting on a busy machine); taking over a killed worker's job through its
lapsed lease is tested on both databases in tests/jobs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import anyio.to_thread
import httpx
import pytest

from provena_like.server.auth.tokens import TokenService
from provena_like.server.db.base import create_engine, create_sessionmaker
from provena_like.server.db.identity import UserRow
from provena_like.server.settings import ServerSettings
from provena_like.server.transfer.index import collection_id
from tests.support.processes import free_port, wait_until_serving
from tests.support.transfer import transfer_client
from tests.support.transfer_tasks import transfer_doc, tree, write_tree
from tests.support.users import User

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL on Linux"),
]

START_TIMEOUT = 180.0
FILES = 500

_SERVE = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import uvicorn
    from provena_like.server.app import create_app
    from provena_like.server.settings import ServerSettings

    settings = ServerSettings(
        data_dir=Path(sys.argv[1]),
        public_url=sys.argv[3],
        job_lease_seconds=3,
        job_poll_seconds=0.5,
    )
    uvicorn.run(create_app(settings), host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    """
)


class _Server:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def _serve(server: _Server, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVENA_")}
    env["PROVENA_CACHE_DIR"] = str(server.data_dir.parent / "cache")
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", _SERVE, str(server.data_dir), str(server.port), server.url],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_until_serving(proc, f"{server.url}/healthz", log, timeout=START_TIMEOUT)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)


async def _admin(server: _Server) -> User:
    """A system admin written into the server's database, with a token of its key."""
    settings = ServerSettings(data_dir=server.data_dir, public_url=server.url)
    engine = create_engine(settings.resolved_database_url)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            session.add(UserRow(username="tasks-admin", system_roles=["admin"]))
    finally:
        await engine.dispose()
    tokens = TokenService.from_data_dir(server.data_dir, settings.issuer)
    token = tokens.issue_access_token(
        subject="tasks-admin", client_id="tests", scope="openid", ttl=3600
    )
    return User("tasks-admin", token)


def _register(server: _Server, admin: User, root: Path) -> str:
    body = {"subtype": "transfer_collection", "record": {"name": root.name, "root": str(root)}}
    r = httpx.post(f"{server.url}/registry/items", json=body, headers=admin.headers, timeout=60)
    assert r.status_code == 201, r.text
    return collection_id(r.json()["id"])


def _wait_for(predicate: object, timeout: float, what: str) -> object:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _scenario(tmp_path: Path, admin_of: object) -> None:
    assert callable(admin_of)
    server = _Server(tmp_path / "server", free_port())
    log = tmp_path / "server.log"
    files = {f"d{n % 10}/f{n:04d}.bin": os.urandom(128 * 1024 + n) for n in range(FILES)}
    with _serve(server, log) as first:
        admin: User = admin_of(server)
        src_root = server.data_dir / "collections" / "src"
        dst_root = server.data_dir / "collections" / "dst"
        write_tree(src_root, files)
        dst_root.mkdir(parents=True)
        src, dst = _register(server, admin, src_root), _register(server, admin, dst_root)
        tc = transfer_client(server, admin)
        doc = transfer_doc(src, dst, [("/", "/", True)], verify_checksum=True)
        task_id = tc.submit_transfer(doc)["task_id"]

        def midway() -> bool:
            task = tc.get_task(task_id).data
            assert task["status"] == "ACTIVE", task
            return bool(task["files_transferred"] >= 50)

        _wait_for(midway, 120, "the first files to be copied")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    done_before = len(tree(dst_root))
    assert done_before < FILES, "the task finished before the kill: make it longer"
    with _serve(server, log):

        def finished() -> dict[str, object] | None:
            task = tc.get_task(task_id).data
            return task if task["status"] != "ACTIVE" else None

        task = _wait_for(finished, 300, "the task to end after the restart")
    assert isinstance(task, dict)
    assert task["status"] == "SUCCEEDED", task
    assert task["files_transferred"] == FILES and task["files"] == FILES
    assert tree(dst_root) == files  # every file, identical, and no temp file left over


async def test_a_task_survives_a_sigkill_of_its_server(tmp_path: Path) -> None:
    def admin_of(server: _Server) -> User:
        return anyio.from_thread.run(_admin, server)

    await anyio.to_thread.run_sync(_scenario, tmp_path, admin_of)
