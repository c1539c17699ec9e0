"""Helpers of the transfer task tests (the SDK client, :func:`~tests.support.transfer.sdk` and
the shape checks are in :mod:`tests.support.transfer`).

* :func:`wait_done` — poll ``get_task`` until the task is no longer ACTIVE;
* :func:`transfer_doc` / :func:`delete_doc` — v4 ``TransferData``/``DeleteData`` with a
  submission id of their own (the ``GET /submission_id`` route is not needed);
* :func:`tree` — the files under a local directory, relative path → bytes;
* :func:`open_collection_of` / :func:`posix_pair` — local collections anyone may write;
* fixtures ``task_admin`` (a system admin) and ``task_user`` (a plain user): import
  ``task_admin_fixture`` and ``task_user_fixture`` to use them;
* fixture ``fifo_writers`` (import ``fifo_writers_fixture``) and :func:`feed_fifo`: a FIFO as
  a source file keeps a task ACTIVE (its copy blocks opening it) until it is fed;
  :func:`blocked_task` submits such a task, :func:`expanded` waits until it found its files.
"""

from __future__ import annotations

import errno
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import globus_sdk
import pytest

from provena_like.testing.server_thread import ServerThread
from tests.support.transfer import new_root, register_collection, sdk, transfer_client
from tests.support.users import User


def transfer_doc(
    source: str, dest: str, items: list[tuple[str, str, bool | None]] = (), **options: Any
) -> globus_sdk.TransferData:
    """A v4 TransferData with its own submission id; ``items`` are (source, dest, recursive)."""
    options.setdefault("submission_id", str(uuid.uuid4()))
    doc = globus_sdk.TransferData(source, dest, **options)
    for src, dst, recursive in items:
        if recursive is None:
            doc.add_item(src, dst)
        else:
            doc.add_item(src, dst, recursive=recursive)
    return doc


def delete_doc(endpoint: str, paths: list[str], **options: Any) -> globus_sdk.DeleteData:
    """A v4 DeleteData with its own submission id."""
    options.setdefault("submission_id", str(uuid.uuid4()))
    doc = globus_sdk.DeleteData(endpoint, **options)
    for path in paths:
        doc.add_item(path)
    return doc


def _wait(tc: globus_sdk.TransferClient, task_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = tc.get_task(task_id).data
        if task["status"] != "ACTIVE" or time.monotonic() > deadline:
            return task
        time.sleep(0.2)


async def wait_done(
    tc: globus_sdk.TransferClient, task_id: str, timeout: float = 180.0
) -> dict[str, Any]:
    """The task document once it is no longer ACTIVE (or at ``timeout``)."""
    task = await sdk(lambda: _wait(tc, task_id, timeout))
    assert task["status"] != "ACTIVE", f"task {task_id} still active after {timeout}s: {task}"
    return task


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root``: relative POSIX path → content."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (relative path → content) under ``root``."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


OPEN = {"general": ["data-write"]}
"""Access settings of a collection every signed-in user may read and write."""


@pytest.fixture(name="task_admin")
def task_admin_fixture(new_user: Callable[..., User]) -> User:
    """A system admin (registers the collections)."""
    return new_user("admin", system_roles=("admin",))


@pytest.fixture(name="task_user")
def task_user_fixture(new_user: Callable[..., User]) -> User:
    """A plain user (submits the tasks)."""
    return new_user("alice")


async def open_collection_of(server: ServerThread, admin: User, name: str) -> tuple[str, Path]:
    """A new local collection under the server's transfer root, open to all: (id, root)."""
    root = new_root(server, name)
    item = await register_collection(server, admin, root, name, **OPEN)
    return item["collection_id"], root


@dataclass(frozen=True)
class Pair:
    """Two open local collections and a user's SDK client."""

    src: str
    src_root: Path
    dst: str
    dst_root: Path
    tc: globus_sdk.TransferClient


async def posix_pair(server: ServerThread, admin: User, user: User) -> Pair:
    """Two new open local collections (``src``, ``dst``) and ``user``'s TransferClient."""
    src, src_root = await open_collection_of(server, admin, "src")
    dst, dst_root = await open_collection_of(server, admin, "dst")
    return Pair(src, src_root, dst, dst_root, transfer_client(server, user))


@pytest.fixture(name="fifo_writers")
def fifo_writers_fixture() -> Iterator[list[Path]]:
    """FIFOs a test blocks a copy on; each is fed (unblocked) at teardown if still waiting."""
    fifos: list[Path] = []
    yield fifos
    for fifo in fifos:
        if fifo.exists():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                continue
            os.close(fd)


def feed_fifo(fifo: Path, data: bytes) -> None:
    """Write ``data`` into ``fifo`` once the task's copy has opened it (within 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as err:  # ENXIO: no reader yet
            if err.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    with os.fdopen(fd, "wb") as writer:
        writer.write(data)


def expanded(tc: globus_sdk.TransferClient, task_id: str) -> globus_sdk.GlobusHTTPResponse:
    """The task's answer once it found its files (its copy starts right after; blocking)."""
    deadline = time.monotonic() + 60
    while True:
        answer = tc.get(f"/v0.10/task/{task_id}")
        if answer["files"] or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)


@dataclass(frozen=True)
class Blocked:
    """An ACTIVE task whose copy waits on a FIFO (:func:`blocked_task`)."""

    pair: Pair
    task_id: str
    fifo: Path
    first: globus_sdk.GlobusHTTPResponse
    """The task's answer once it found its file."""


async def blocked_task(
    server: ServerThread, admin: User, user: User, fifos: list[Path], name: str = "slow"
) -> Blocked:
    """A task of ``user`` copying the FIFO ``/<name>`` between two new collections: ACTIVE
    until :func:`feed_fifo` (``fifos``: the ``fifo_writers`` fixture's list)."""
    p = await posix_pair(server, admin, user)
    fifo = p.src_root / name
    os.mkfifo(fifo)
    fifos.append(fifo)
    doc = transfer_doc(p.src, p.dst, [(f"/{name}", f"/{name}", None)])
    task_id = (await sdk(lambda: p.tc.submit_transfer(doc)))["task_id"]
    first = await sdk(lambda: expanded(p.tc, task_id))
    assert first["status"] == "ACTIVE" and first["files"] == 1, first.data
    return Blocked(p, task_id, fifo, first)
