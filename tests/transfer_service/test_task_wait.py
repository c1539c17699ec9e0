"""Held polls of a task: ``ETag``, ``If-None-Match`` and ``Prefer: wait`` on ``GET task/{id}``.

The task stays ACTIVE on a FIFO its copy blocks on until the test feeds it. Raw polls go
through the real globus-sdk (``tc.get`` with headers), the waits through our L2 client.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import globus_sdk
import pytest

from provena_like import ProvenaClient
from provena_like._core.config import ProvenaConfig
from provena_like.clients.transfer import Location, Task, TaskOutcome
from provena_like.server.transfer.watch import MAX_WAIT
from provena_like.testing.server_thread import ServerThread
from tests.support.transfer import sdk, transfer_client
from tests.support.transfer_tasks import (
    blocked_task,
    expanded,
    feed_fifo,
    fifo_writers_fixture,  # noqa: F401 - the fifo_writers fixture
    posix_pair,
    task_admin_fixture,  # noqa: F401 - the task_admin fixture
    task_user_fixture,  # noqa: F401 - the task_user fixture
)
from tests.support.users import User

pytestmark = pytest.mark.anyio


def _poll(tc: globus_sdk.TransferClient, task_id: str, **headers: str) -> tuple[Any, float]:
    """One ``GET task/{id}`` with ``headers`` (``If_None_Match`` → ``If-None-Match``): the
    SDK's response and the seconds it took."""
    sent = {name.replace("_", "-"): value for name, value in headers.items()}
    started = time.monotonic()
    answer = tc.get(f"/v0.10/task/{task_id}", headers=sent)
    return answer, time.monotonic() - started


async def test_a_held_poll_answers_304_after_the_wait_and_200_when_the_task_changes(
    server: ServerThread, task_admin: User, task_user: User, fifo_writers: list[Path]
) -> None:
    blocked = await blocked_task(server, task_admin, task_user, fifo_writers)
    tc, task_id, fifo, first = blocked.pair.tc, blocked.task_id, blocked.fifo, blocked.first
    tag = first.headers["ETag"]
    assert tag.startswith('W/"') and "Preference-Applied" not in first.headers

    # the same state, no wait: 304 at once; a wait: 304 once it passed, saying so
    same, took = await sdk(lambda: _poll(tc, task_id, If_None_Match=tag))
    assert same.http_status == 304 and same.headers["ETag"] == tag and took < 2
    held, took = await sdk(lambda: _poll(tc, task_id, If_None_Match=tag, Prefer="wait=1"))
    assert held.http_status == 304 and held.headers["Preference-Applied"] == "wait=1"
    assert 0.9 <= took < 5, took
    # another tag (or none): the document at once, never held
    other, took = await sdk(lambda: _poll(tc, task_id, If_None_Match='W/"old"', Prefer="wait=5"))
    assert other.http_status == 200 and other["task_id"] == task_id and took < 2
    assert "Preference-Applied" not in other.headers and other.headers["ETag"] == tag

    # held for up to 10 s: the cancel (another request) answers it at once
    async with anyio.create_task_group() as group:
        result: dict[str, Any] = {}

        async def hold() -> None:
            result["answer"], result["took"] = await sdk(
                lambda: _poll(tc, task_id, If_None_Match=tag, Prefer=f"wait={MAX_WAIT:g}")
            )

        group.start_soon(hold)
        await anyio.sleep(0.5)
        with transfer_client(server, task_user) as other_tc:
            assert (await sdk(lambda: other_tc.cancel_task(task_id)))["code"] == "Canceled"
    changed = result["answer"]
    assert changed.http_status == 200 and changed["status"] == "FAILED"
    assert changed["fatal_error"]["code"] == "CANCELED"
    assert changed.headers["ETag"] != tag and result["took"] < MAX_WAIT - 3, result["took"]
    # a task that ended is never held: its current tag is a 304 at once
    done_tag = changed.headers["ETag"]
    ended, took = await sdk(lambda: _poll(tc, task_id, If_None_Match=done_tag, Prefer="wait=5"))
    assert ended.http_status == 304 and took < 2 and "Preference-Applied" not in ended.headers
    watch = server.app.state.task_watch  # nothing held, nothing listened for, afterwards
    assert (watch.held, len(watch)) == (0, 0)
    await sdk(lambda: feed_fifo(fifo, b"late"))


async def test_held_polls_are_the_owners_and_odd_headers_change_nothing(
    server: ServerThread,
    task_admin: User,
    task_user: User,
    fifo_writers: list[Path],
    new_user: Callable[..., User],
) -> None:
    blocked = await blocked_task(server, task_admin, task_user, fifo_writers)
    tc, task_id, fifo, first = blocked.pair.tc, blocked.task_id, blocked.fifo, blocked.first
    tag = first.headers["ETag"]
    with transfer_client(server, new_user("mallory")) as mallory:
        started = time.monotonic()
        with pytest.raises(globus_sdk.TransferAPIError) as err:
            await sdk(lambda: _poll(mallory, task_id, If_None_Match=tag, Prefer="wait=5"))
        assert err.value.http_status == 404 and time.monotonic() - started < 2
    for prefer in ("wait=abc", "wait=-1", "wait", "respond-async", "wait=1e9", "x" * 2000):
        answer, took = await sdk(lambda p=prefer: _poll(tc, task_id, If_None_Match=tag, Prefer=p))
        assert answer.http_status == 304 and took < 2, (prefer, took)
        assert "Preference-Applied" not in answer.headers, prefer
    star, _ = await sdk(lambda: _poll(tc, task_id, If_None_Match="*"))
    assert star.http_status == 304
    # as many polls held as the server allows: the next is answered at once, not held
    watch = server.app.state.task_watch
    watch.max_held, allowed = 0, watch.max_held
    try:
        full, took = await sdk(lambda: _poll(tc, task_id, If_None_Match=tag, Prefer="wait=5"))
    finally:
        watch.max_held = allowed
    assert full.http_status == 304 and took < 2 and "Preference-Applied" not in full.headers
    assert watch.held == 0
    await sdk(lambda: feed_fifo(fifo, b"fed"))


async def test_wait_returns_when_the_task_ends_not_at_the_next_poll(
    server: ServerThread, task_admin: User, task_user: User, fifo_writers: list[Path]
) -> None:
    """A wait polling every 30 s returns within a second or two of the task's end."""
    p = await posix_pair(server, task_admin, task_user)
    fifo = p.src_root / "slow"
    os.mkfifo(fifo)
    fifo_writers.append(fifo)
    config = ProvenaConfig(base_url=server.url, access_token=task_user.token, max_retries=0)
    async with ProvenaClient(config) as pv:
        l2 = pv.transfer_client
        handle = await l2.transfer(Location(p.src, "/slow"), Location(p.dst, "/slow"))
        seen: list[Task] = []
        fed: list[float] = []

        async def feed() -> None:
            await sdk(lambda: expanded(p.tc, handle.task_id))
            await anyio.sleep(1.0)  # the wait is held meanwhile
            await anyio.to_thread.run_sync(lambda: feed_fifo(fifo, b"slow bytes"))
            fed.append(time.monotonic())

        async with anyio.create_task_group() as group:
            group.start_soon(feed)
            result = await handle.wait(timeout=120, poll=30, on_progress=seen.append)
        assert result.outcome is TaskOutcome.SUCCEEDED, result.describe()
        assert time.monotonic() - fed[0] < 5 and result.waited < 25, result.waited
        assert len(seen) <= 6, [(t.status, t.files, t.files_transferred) for t in seen]
        assert (p.dst_root / "slow").read_bytes() == b"slow bytes"

        # a wait for longer than the held polls' limit is answered before the client's timeout
        fifo2 = p.src_root / "slow2"
        os.mkfifo(fifo2)
        fifo_writers.append(fifo2)
        again = await l2.transfer(Location(p.src, "/slow2"), Location(p.dst, "/slow2"))
        timed = await again.wait(timeout=1.5, poll=60)
        assert timed.outcome is TaskOutcome.TIMED_OUT and 1.4 <= timed.waited < 5
        assert await again.cancel() == "Canceled"
        await anyio.to_thread.run_sync(lambda: feed_fifo(fifo2, b"late"))


async def test_a_change_between_polls_is_followed_by_a_held_poll_not_a_sleep(
    server: ServerThread, task_admin: User, task_user: User, fifo_writers: list[Path]
) -> None:
    """A task that changed while the client was not polling answers at once (not held): the
    wait polls again at once, held, instead of sleeping ``poll`` seconds first."""
    blocked = await blocked_task(server, task_admin, task_user, fifo_writers)
    config = ProvenaConfig(base_url=server.url, access_token=task_user.token, max_retries=0)
    async with ProvenaClient(config) as pv:
        handle = pv.transfer_client.task(blocked.task_id)
        fed: list[float] = []

        async def on_progress(task: Task) -> None:
            if task.label != "renamed":  # the first reading: it changes while nobody polls
                await sdk(
                    lambda: blocked.pair.tc.update_task(blocked.task_id, {"label": "renamed"})
                )
                await anyio.sleep(0.5)

        async def feed_later() -> None:
            await anyio.sleep(2.0)
            await anyio.to_thread.run_sync(lambda: feed_fifo(blocked.fifo, b"slow bytes"))
            fed.append(time.monotonic())

        async with anyio.create_task_group() as group:
            group.start_soon(feed_later)
            result = await handle.wait(timeout=120, poll=30, on_progress=on_progress)
        assert result.outcome is TaskOutcome.SUCCEEDED, result.describe()
        assert time.monotonic() - fed[0] < 5 and result.waited < 10, result.waited
