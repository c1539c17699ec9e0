"""Held polls of a crawl job: ``ETag``, ``If-None-Match`` and ``Prefer: wait`` on its status.

A job is kept running by a FIFO in its collection: with ``checksums`` on, the crawl reads it
and waits until the test writes into it (:func:`feed_fifo`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from provena_like._core.errors import UsageError
from provena_like.models.crawl_jobs import CrawlJob
from provena_like.server.held_polls import PollCap
from provena_like.testing.localstack import LocalStack
from provena_like.testing.server_thread import ServerThread
from tests.support.crawl_jobs import TREE, VISIBLE, finished, tree_collection, wait_job
from tests.support.transfer_tasks import (
    feed_fifo,
    fifo_writers_fixture,  # noqa: F401 - the fifo_writers fixture
)
from tests.support.users import User

pytestmark = pytest.mark.anyio


async def blocked_job(
    server: ServerThread, http: httpx.AsyncClient, admin: User, user: User, fifos: list[Path]
) -> tuple[dict[str, Any], Path]:
    """A running crawl job of ``user``, reading a FIFO until :func:`feed_fifo`; its doc, FIFO."""
    cid, root = await tree_collection(server, admin, TREE)
    fifo = root / "zz.fifo"
    os.mkfifo(fifo)
    fifos.append(fifo)
    body = {"source": {"collection": cid}, "checksums": True}
    r = await http.post("/crawl/jobs", json=body, headers=user.headers)
    assert r.status_code == 201, r.text
    job = await wait_job(http, user, r.json()["id"], lambda j: j["state"] == "running")
    # running, the crawl still records the other files before it blocks on the FIFO (on a
    # loaded machine, for a while): wait until its state holds still, its tag unchanged 0.5 s
    url, deadline = f"/crawl/jobs/{job['id']}", time.monotonic() + 60
    tag = (await http.get(url, headers=user.headers)).headers["ETag"]
    while True:
        await anyio.sleep(0.5)
        r = await http.get(url, headers=user.headers)
        if r.headers["ETag"] == tag:
            return r.json(), fifo
        assert time.monotonic() < deadline, "the crawl job never blocked on its FIFO"
        tag = r.headers["ETag"]


async def feed_after(seconds: float, fifo: Path) -> None:
    """Unblock the job reading ``fifo`` after ``seconds``."""
    await anyio.sleep(seconds)
    await anyio.to_thread.run_sync(feed_fifo, fifo, b"fed")


async def test_a_held_poll_answers_when_the_job_changes_or_its_wait_ends(
    server: ServerThread,
    http: httpx.AsyncClient,
    admin: User,
    new_user: Callable[..., User],
    fifo_writers: list[Path],
) -> None:
    alice, bob = new_user("alice"), new_user("bob")
    job, fifo = await blocked_job(server, http, admin, alice, fifo_writers)
    url = f"/crawl/jobs/{job['id']}"
    first = await http.get(url, headers=alice.headers)
    tag = first.headers["ETag"]
    assert first.status_code == 200 and tag.startswith('W/"')
    # the same state: 304 at once without a wait, after the wait with one
    assert (await http.get(url, headers={**alice.headers, "If-None-Match": tag})).status_code == 304
    held = {**alice.headers, "If-None-Match": tag, "Prefer": "wait=1"}
    started = time.monotonic()
    same = await http.get(url, headers=held)
    assert same.status_code == 304 and time.monotonic() - started >= 0.9
    assert same.headers["Preference-Applied"] == "wait=1" and same.headers["ETag"] == tag
    # another user: 404 at once, held or not
    started = time.monotonic()
    other = await http.get(url, headers={**bob.headers, "If-None-Match": tag, "Prefer": "wait=5"})
    assert other.status_code == 404 and time.monotonic() - started < 2

    # a poll held for 10 s answers within a second or two of the job's end
    started = time.monotonic()
    async with anyio.create_task_group() as tg:
        tg.start_soon(feed_after, 1.0, fifo)
        changed = await http.get(url, headers={**held, "Prefer": "wait=10"})
        while changed.status_code == 200 and not finished(changed.json()):
            tag = changed.headers["ETag"]  # a step on the way (counters): hold again
            changed = await http.get(url, headers={**held, "If-None-Match": tag})
    took = time.monotonic() - started
    assert changed.status_code == 200 and changed.json()["state"] == "succeeded", changed.text
    assert changed.headers["ETag"] != first.headers["ETag"] and took < 6, took
    # an ended job is never held
    ended = {**alice.headers, "If-None-Match": changed.headers["ETag"], "Prefer": "wait=10"}
    started = time.monotonic()
    answer = await http.get(url, headers=ended)
    assert answer.status_code == 304 and time.monotonic() - started < 2
    assert "Preference-Applied" not in answer.headers


async def test_an_acknowledgement_changes_the_tag_and_the_cap_answers_at_once(
    server: ServerThread,
    http: httpx.AsyncClient,
    admin: User,
    new_user: Callable[..., User],
    fifo_writers: list[Path],
) -> None:
    alice = new_user("alice")
    cid, _root = await tree_collection(server, admin, TREE)
    r = await http.post("/crawl/jobs", json={"source": {"collection": cid}}, headers=alice.headers)
    job = await wait_job(http, alice, r.json()["id"], finished)
    url = f"/crawl/jobs/{job['id']}"
    before = await http.get(url, headers=alice.headers)
    page = await http.post(f"{url}/flush", json={"limit": 2}, headers=alice.headers)
    await http.post(f"{url}/ack", json={"cursor": page.json()["cursor"]}, headers=alice.headers)
    after = await http.get(url, headers={**alice.headers, "If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.json()["unacked"] == before.json()["unacked"] - 2
    assert after.headers["ETag"] != before.headers["ETag"]

    # with no poll allowed to be held, a running job's poll is answered at once
    cap: PollCap = server.app.state.crawl_polls
    running, _fifo = await blocked_job(server, http, admin, alice, fifo_writers)
    url = f"/crawl/jobs/{running['id']}"
    tag = (await http.get(url, headers=alice.headers)).headers["ETag"]
    cap.max_held, limit = 0, cap.max_held
    try:
        started = time.monotonic()
        held = {**alice.headers, "If-None-Match": tag, "Prefer": "wait=10"}
        answer = await http.get(url, headers=held)
        assert answer.status_code == 304 and time.monotonic() - started < 2
        assert "Preference-Applied" not in answer.headers and cap.held == 0
    finally:
        cap.max_held = limit


async def test_the_sdk_wait_returns_as_the_job_ends_whatever_its_poll(
    server: ServerThread, localstack: LocalStack, admin: User, fifo_writers: list[Path]
) -> None:
    cid, root = await tree_collection(server, admin, TREE)
    fifo = root / "zz.fifo"
    os.mkfifo(fifo)
    fifo_writers.append(fifo)
    async with localstack.client() as pv:
        handle = await pv.crawler.start(f"collection:{cid}", checksums=True)
        # without held polls, these waits would read the job every 30 s
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="still (queued|running)"):  # queued: a busy runner
            await handle.wait(timeout=1.5, poll=30, max_poll=30)
        assert 1.4 < time.monotonic() - started < 4

        seen: list[CrawlJob] = []
        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(feed_after, 1.0, fifo)
            job = await handle.wait(on_progress=seen.append, poll=30, max_poll=30)
        assert job.state == "succeeded" and job.files == len(VISIBLE) + 1, job
        assert time.monotonic() - started < 6 and seen[-1] == job
        with pytest.raises(UsageError):
            await handle.wait(max_poll=0)
