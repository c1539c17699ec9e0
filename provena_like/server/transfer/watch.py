"""Held polls of a task: ``GET /v0.10/task/{id}`` answers when the task changes.

Globus has no way to wait for a task but polling ``GET task/{id}``; a client polling every
few seconds learns of the end seconds late, and one polling often spends the server's CPU on
answers that say nothing new. The task route also speaks two standard HTTP headers, which
real Globus and globus-sdk never send (so nothing changes for them):

* every answer carries an ``ETag``: a weak tag of the task's state (status, counters,
  faults, fatal error, label, deadline; not the time-derived ``effective_bytes_per_second``);
* a request with ``If-None-Match: <that tag>`` is answered ``304 Not Modified`` while the
  task's state has that tag; with ``Prefer: wait=<seconds>`` (RFC 7240) as well, the poll of
  an ACTIVE task is held until the state changes (then ``200`` with the new document) or the
  seconds pass (then ``304``), at most :data:`MAX_WAIT`, and the answer says
  ``Preference-Applied: wait=<seconds>``.

A task's changes committed in this process wake its held polls at once (:class:`TaskWatch`,
through the sessions' ``info``: :func:`changed_on_commit`); a held poll also reads the task
again every :data:`RECHECK` seconds, for changes made by another server process (several
workers) and for a wake-up that came between its reading and its wait. At most
:data:`MAX_HELD` polls are held at once; others are answered at once.

Example:
    ```python
    first = await client.get(f"/v0.10/task/{task_id}")
    held = await client.get(
        f"/v0.10/task/{task_id}",
        headers={"If-None-Match": first.headers["ETag"], "Prefer": "wait=10"},
    )
    assert held.status_code in (200, 304)
    ```
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
from sqlalchemy.ext.asyncio import AsyncSession

from provena_like.server.held_polls import (
    MAX_HELD,
    MAX_WAIT,
    RECHECK,
    PollCap,
    not_modified,
    preferred_wait,
    weak_tag,
)
from provena_like.server.jobs import after_commit
from provena_like.server.transfer.task_tables import TaskRow

__all__ = [
    "MAX_HELD",
    "MAX_WAIT",
    "RECHECK",
    "TaskWatch",
    "changed_on_commit",
    "not_modified",
    "preferred_wait",
    "state_tag",
    "watch_info",
]

_INFO_KEY = "provena_like.transfer.task_watch"


class TaskWatch(PollCap):
    """Wakes the held polls of tasks changed in this process; counts the polls held.

    Used from one event loop (the server's): the executor's writes and the routes' waits.
    """

    def __init__(self, max_held: int = MAX_HELD) -> None:
        super().__init__(max_held)
        self._events: dict[str, anyio.Event] = {}
        self._listeners: dict[str, int] = {}

    @contextmanager
    def watching(self, task_id: str) -> Iterator[Callable[[], anyio.Event]]:
        """Listen for changes of ``task_id`` while inside; yields ``listen``.

        ``listen()`` is the event the next change sets: call it *before* reading the task,
        so that a change committed after the reading is heard. The task's entry goes when
        its last listener leaves (a task ended by another process is never announced here).
        """
        self._listeners[task_id] = self._listeners.get(task_id, 0) + 1

        def listen() -> anyio.Event:
            event = self._events.get(task_id)
            if event is None:
                event = self._events[task_id] = anyio.Event()
            return event

        try:
            yield listen
        finally:
            left = self._listeners[task_id] - 1
            if left:
                self._listeners[task_id] = left
            else:
                del self._listeners[task_id]
                self._events.pop(task_id, None)

    def changed(self, task_id: str) -> None:
        """Wake everyone listening for ``task_id`` (a no-op when nobody is)."""
        event = self._events.pop(task_id, None)
        if event is not None:
            event.set()

    def __len__(self) -> int:
        """Tasks listened for now."""
        return len(self._listeners)


def watch_info(watch: TaskWatch) -> dict[str, Any]:
    """The ``info`` of a session factory whose committed task changes wake ``watch``."""
    return {_INFO_KEY: watch}


def changed_on_commit(session: AsyncSession, task_id: str) -> None:
    """Wake the held polls of ``task_id`` once the session's transaction commits.

    A no-op for sessions without a watch (a script on an engine of its own); a missed
    wake-up only means the held poll sees the change at its next reading (:data:`RECHECK`).
    """
    watch = session.info.get(_INFO_KEY)
    if isinstance(watch, TaskWatch):
        after_commit(session, lambda: watch.changed(task_id))


def state_tag(row: TaskRow) -> str:
    """The weak ETag of the task's state: changes whenever its document says something new.

    Example:
        ```python
        from provena_like.server.transfer.task_tables import TaskRow

        row = TaskRow(task_id="t", status="ACTIVE", files=3, files_transferred=1)
        before = state_tag(row)
        row.files_transferred = 2
        assert state_tag(row) != before and before.startswith('W/"')
        ```
    """
    state = [
        row.status,
        row.nice_status,
        row.files,
        row.directories,
        row.files_transferred,
        row.files_skipped,
        row.bytes_transferred,
        row.bytes_checksummed,
        row.subtasks_failed,
        row.subtasks_skipped_errors,
        row.faults,
        row.fatal_error,
        row.label,
        row.deadline.isoformat() if row.deadline is not None else None,
        row.completion_time.isoformat() if row.completion_time is not None else None,
    ]
    return weak_tag(state)
