"""Helpers of the crawl-job tests: a tree of files in a new transfer collection, waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx

from tests.support.transfer import new_root, register_collection
from tests.support.transfer_tasks import write_tree
from tests.support.users import User

TREE: dict[str, bytes] = {
    "a.csv": b"x,y\n1,2\n",
    "notes.txt": b"hello",
    ".hidden": b"secret-ish",
    "raw/r1.bin": b"\x00" * 10,
    "raw/r2.bin": b"\x01" * 20,
    "raw/deep/d.json": b"{}",
    "alf/_ibl_trials.goCue_times.npy": b"n" * 7,
    "alf/_ibl_trials.intervals.npy": b"m" * 9,
}
"""A small tree: files at three depths, a hidden one, two files of one ALF object."""

VISIBLE = sorted(p for p in TREE if not p.startswith("."))


def deep_tree(dirs: int = 12, files: int = 3) -> dict[str, bytes]:
    """``dirs`` folders, each inside the previous one, with ``files`` files each."""
    out: dict[str, bytes] = {}
    folder = ""
    for d in range(dirs):
        folder = f"{folder}d{d}/"
        for f in range(files):
            out[f"{folder}f{f}.txt"] = f"{d}-{f}".encode()
    return out


async def tree_collection(server: Any, admin: User, files: dict[str, bytes]) -> tuple[str, Path]:
    """A new transfer collection open to everyone (data-read) holding ``files``: (id, root)."""
    root = new_root(server, "crawl")
    write_tree(root, files)
    item = await register_collection(server, admin, root, "Crawl me", general=["data-read"])
    return str(item["collection_id"]), root


async def wait_job(
    http: httpx.AsyncClient,
    user: User,
    job_id: str,
    until: Callable[[dict[str, Any]], bool],
    *,
    timeout: float = 120.0,
) -> dict[str, Any]:
    """Poll ``GET /crawl/jobs/{id}`` until ``until(job)`` holds (fail after ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    while True:
        r = await http.get(f"/crawl/jobs/{job_id}", headers=user.headers)
        assert r.status_code == 200, r.text
        job: dict[str, Any] = r.json()
        if until(job):
            return job
        assert time.monotonic() < deadline, f"timed out: {job}"
        await anyio.sleep(0.1)


def finished(job: dict[str, Any]) -> bool:
    """Whether a job document is in a final state."""
    return job["state"] in ("succeeded", "failed", "canceled")


async def drain(
    http: httpx.AsyncClient, user: User, job_id: str, *, limit: int = 3, held: int = 0
) -> list[dict[str, Any]]:
    """Flush and acknowledge every record of a finished job, a page at a time.

    ``held`` records are leased to another cursor meanwhile (not delivered here).
    """
    out: list[dict[str, Any]] = []
    ack: str | None = None
    while True:
        body: dict[str, Any] = {"limit": limit, "ack": ack}
        r = await http.post(f"/crawl/jobs/{job_id}/flush", json=body, headers=user.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        out.extend(page["records"])
        ack = page["cursor"]
        if not page["records"]:
            assert page["unacked"] == held, page
            return out
