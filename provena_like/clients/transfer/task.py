"""``TaskHandle`` and ``TaskResult``: wait for a Globus task and say honestly how it ended.

globus-sdk's ``task_wait`` blocks a thread, counts a paused (INACTIVE) task as done and a task
stuck on a missing file as still running. :meth:`TaskHandle.wait` polls (our service holds
each poll until the task changes; against real Globus it sleeps between polls with
``anyio.sleep``) and ends with one of the :class:`TaskOutcome` values:

* ``SUCCEEDED`` / ``FAILED`` — the task ended (``fatal_error`` says why it failed);
* ``INACTIVE`` — paused (expired credentials, an admin pause): **not** done; wait again later;
* ``STUCK`` — still ACTIVE but retrying errors (``faults > 0`` or ``is_ok`` false) for longer
  than ``stuck_after`` seconds, e.g. a missing source file real Globus retries until the deadline;
* ``TIMED_OUT`` — ``timeout`` passed first.

A result is not an exception: call :meth:`TaskResult.raise_for_status` to make it one.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Self

import anyio

from provena_like._core.errors import TaskFailed, UsageError
from provena_like._core.held_polls import REPOLL
from provena_like._core.pagination import AsyncPaginator
from provena_like.clients.transfer.models import (
    SkippedError,
    SuccessfulTransfer,
    Task,
    TaskEvent,
    TaskStatus,
)

if TYPE_CHECKING:
    from provena_like.clients.transfer.client import TransferClient

__all__ = ["ProgressCallback", "TaskHandle", "TaskOutcome", "TaskPoll", "TaskResult"]

ProgressCallback = Callable[[Task], None | Awaitable[None]]
"""Called with the task document after every poll (sync or async)."""


@dataclass(frozen=True)
class TaskPoll:
    """One poll of a task (:meth:`TransferClient.poll_task`).

    Attributes:
        task: the task document; ``None`` when the service held the poll and the task did
            not change (``304``).
        etag: the tag of the task's state, to send with the next poll (``None``: the
            service has no tags, e.g. real Globus).
        held: whether the service held the poll (``Preference-Applied: wait``).
    """

    task: Task | None
    etag: str | None
    held: bool


class TaskOutcome(StrEnum):
    """How :meth:`TaskHandle.wait` ended."""

    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    INACTIVE = "INACTIVE"
    STUCK = "STUCK"
    TIMED_OUT = "TIMED_OUT"


@dataclass(frozen=True, repr=False)
class TaskResult:
    """The end of a wait: the outcome, the last task document and the latest events.

    Attributes:
        outcome: SUCCEEDED, FAILED, INACTIVE, STUCK or TIMED_OUT.
        task: the task document of the last poll.
        events: the latest events, newest first (fetched unless the task SUCCEEDED).
        waited: seconds spent waiting.

    Example:
        ```python
        result = await handle.wait(timeout=3600)
        if not result.ok:
            print(result.outcome, result.task.nice_status, result.events[:3])
        async for moved in result.successful_transfers():
            print(moved.destination_path)
        ```
    """

    outcome: TaskOutcome
    task: Task
    events: tuple[TaskEvent, ...] = ()
    waited: float = 0.0
    _client: TransferClient | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        """Whether the task SUCCEEDED."""
        return self.outcome is TaskOutcome.SUCCEEDED

    @property
    def task_id(self) -> str:
        """The task."""
        return self.task.task_id

    def raise_for_status(self) -> Self:
        """Return the result if the task SUCCEEDED, else raise :class:`TaskFailed`.

        Raises:
            TaskFailed: the outcome is FAILED, INACTIVE, STUCK or TIMED_OUT.
        """
        if self.ok:
            return self
        raise TaskFailed(self.describe(), task_id=self.task_id, outcome=self.outcome.value)

    def describe(self) -> str:
        """One line: the task, its outcome and why."""
        task = self.task
        why = []
        if task.fatal_error is not None:
            why.append(f"{task.fatal_error.code}: {task.fatal_error.description}")
        elif task.nice_status and task.nice_status != "OK":
            why.append(task.nice_status)
        if task.faults:
            why.append(f"{task.faults} faults")
        errors = [e for e in self.events if e.is_error]
        if errors:
            why.append(f"last error {errors[0].code}: {errors[0].description}")
        reason = f" ({'; '.join(why)})" if why else ""
        return f"task {task.task_id} {self.outcome.value} after {self.waited:.0f} s{reason}"

    def successful_transfers(
        self, *, max_items: int | None = None
    ) -> AsyncPaginator[SuccessfulTransfer]:
        """The files the task moved, page after page (``async for``)."""
        return self._require_client().iter_successful_transfers(self.task_id, max_items=max_items)

    def skipped_errors(self, *, max_items: int | None = None) -> AsyncPaginator[SkippedError]:
        """The paths the task skipped because of errors, page after page (``async for``)."""
        return self._require_client().iter_skipped_errors(self.task_id, max_items=max_items)

    def _require_client(self) -> TransferClient:
        if self._client is None:
            raise UsageError("this TaskResult has no client to page with")
        return self._client

    def __repr__(self) -> str:
        return f"TaskResult({self.outcome.value}, {self.task!r})"


class TaskHandle:
    """A submitted Globus task.

    Attributes:
        task_id: the task.
        submission_id: the id it was submitted under; submitting again with it (the
            ``submission_id=`` argument) can never create a second task.
        type: ``TRANSFER`` or ``DELETE``.
        code: the service's answer to the submission: ``Accepted``, or ``Duplicate`` when the
            submission id had been used already (the task is the earlier one).
    """

    def __init__(
        self,
        client: TransferClient,
        task_id: str,
        *,
        submission_id: str | None = None,
        type: str = "TRANSFER",
        code: str | None = None,
    ) -> None:
        self._client = client
        self.task_id = task_id
        self.submission_id = submission_id
        self.type = type
        self.code = code

    def __repr__(self) -> str:
        return f"TaskHandle({self.task_id!r}, {self.type}, submission_id={self.submission_id!r})"

    async def status(self) -> Task:
        """The task document now (one ``get_task``)."""
        return await self._client.get_task(self.task_id)

    async def cancel(self) -> str:
        """Ask the service to cancel the task; returns its answer's code (``Canceled``)."""
        return await self._client.cancel(self.task_id)

    async def events(self, *, limit: int = 10) -> list[TaskEvent]:
        """The task's latest ``limit`` events, newest first."""
        page = await self._client.list_task_events(self.task_id, page_size=limit)
        return page.items

    def successful_transfers(
        self, *, max_items: int | None = None
    ) -> AsyncPaginator[SuccessfulTransfer]:
        """The files the task moved (``async for``)."""
        return self._client.iter_successful_transfers(self.task_id, max_items=max_items)

    def skipped_errors(self, *, max_items: int | None = None) -> AsyncPaginator[SkippedError]:
        """The paths the task skipped because of errors (``async for``)."""
        return self._client.iter_skipped_errors(self.task_id, max_items=max_items)

    async def wait(
        self,
        timeout: float | None = None,
        *,
        poll: float = 5.0,
        on_progress: ProgressCallback | None = None,
        stuck_after: float = 60.0,
        events: int = 10,
    ) -> TaskResult:
        """Poll the task until it ends, pauses, gets stuck or ``timeout`` passes.

        Our transfer service holds each poll until the task changes (or ``poll`` seconds
        pass, at most 10), so the wait returns as soon as the task ends, however long
        ``poll`` is; real Globus answers at once, and the next poll comes ``poll`` seconds
        later (:meth:`TransferClient.poll_task`).

        Args:
            timeout: give up after this many seconds (``None``: no limit); the outcome is
                then ``TIMED_OUT`` and the task keeps running.
            poll: seconds between polls (real Globus), or the longest a poll is held (ours).
            on_progress: called with the task document after each poll.
            stuck_after: how long an ACTIVE task may keep reporting faults (or ``is_ok``
                false) before the wait ends as ``STUCK`` with its latest events.
            events: how many of the latest events to fetch for a result that is not
                SUCCEEDED (``0``: none).

        Returns:
            The outcome with the last task document; never raises for a failed task
            (see :meth:`TaskResult.raise_for_status`).

        Raises:
            UsageError: a negative ``timeout`` or ``stuck_after``, or ``poll`` not above 0.
            APIStatusError: polling itself failed (e.g. the task does not exist).

        Example:
            ```python
            handle = await tc.transfer("lab:raw", "archive:raw", recursive=True)
            result = await handle.wait(timeout=3600, on_progress=lambda t: print(t.files))
            result.raise_for_status()
            ```
        """
        if poll <= 0:
            raise UsageError("poll must be above 0 seconds")
        if (timeout is not None and timeout < 0) or stuck_after < 0:
            raise UsageError("timeout and stuck_after must not be negative")
        start = anyio.current_time()
        faulty_since: float | None = None
        sent: str | None = None
        answer = await self._client.poll_task(self.task_id)
        task = answer.task
        assert task is not None  # an unconditional poll always has the document
        while True:
            now = anyio.current_time()
            if on_progress is not None:
                called = on_progress(task)
                if inspect.isawaitable(called):
                    await called
            outcome: TaskOutcome | None = None
            if task.status is TaskStatus.SUCCEEDED:
                outcome = TaskOutcome.SUCCEEDED
            elif task.status is TaskStatus.FAILED:
                outcome = TaskOutcome.FAILED
            elif task.status is TaskStatus.INACTIVE:
                outcome = TaskOutcome.INACTIVE
            elif task.faults > 0 or task.is_ok is False:
                faulty_since = now if faulty_since is None else faulty_since
                if now - faulty_since >= stuck_after:
                    outcome = TaskOutcome.STUCK
            else:
                faulty_since = None
            if outcome is None and timeout is not None and now - start >= timeout:
                outcome = TaskOutcome.TIMED_OUT
            if outcome is not None:
                latest: tuple[TaskEvent, ...] = ()
                if outcome is not TaskOutcome.SUCCEEDED and events > 0:
                    latest = tuple(await self.events(limit=events))
                return TaskResult(outcome, task, latest, now - start, self._client)
            delay = poll
            if timeout is not None:
                delay = min(delay, max(start + timeout - now, 0.0))
            if answer.etag is None or (answer.task is None and not answer.held):
                await anyio.sleep(delay)  # the service holds no polls (real Globus), or not now
            elif sent is not None and not answer.held:
                # it changed before the poll could be held: the next one is held
                await anyio.sleep(min(REPOLL, delay))
            sent = answer.etag  # the next poll is held until the task changes
            answer = await self._client.poll_task(self.task_id, etag=sent, wait=delay)
            task = answer.task or task
