"""TaskHandle.wait: honest outcomes from registered ``get_task`` answers (an own poll loop)."""

from __future__ import annotations

from typing import Any

import pytest
import responses

from provena_like import TaskFailed, UsageError
from provena_like.clients.transfer import Task, TaskOutcome, TransferClient
from tests.support.globus_responses import event_list, register, register_task, task_doc

pytestmark = pytest.mark.anyio

TASK = "42f5b2e0-0000-4000-8000-0000000000aa"
ACTIVE: dict[str, Any] = {
    "status": "ACTIVE",
    "completion_time": None,
    "nice_status": "OK",
    "is_ok": True,
    "faults": 0,
}
EVENTS = f"/v0.10/task/{TASK}/event_list"


def _gets() -> int:
    return sum(1 for c in responses.calls if c.request.url.endswith(f"/task/{TASK}"))


async def test_active_then_succeeded_reports_progress(tc: TransferClient) -> None:
    register_task(
        TASK,
        task_doc(TASK, **ACTIVE),
        task_doc(TASK, **dict(ACTIVE, files_transferred=0)),
        task_doc(TASK),
    )
    seen: list[Task] = []

    async def progress(task: Task) -> None:
        seen.append(task)

    result = await tc.task(TASK).wait(poll=0.01, on_progress=progress)
    assert result.outcome is TaskOutcome.SUCCEEDED and result.ok
    assert [t.status for t in seen] == ["ACTIVE", "ACTIVE", "SUCCEEDED"]
    assert result.events == ()  # no event list for a success
    assert not any(c.request.url.endswith("event_list") for c in responses.calls)
    assert result.raise_for_status() is result
    assert repr(result).startswith("TaskResult(SUCCEEDED, Task(")


async def test_failed_is_reported_with_fatal_error_and_events(tc: TransferClient) -> None:
    failed = task_doc(
        TASK,
        status="FAILED",
        fatal_error={"code": "FILE_NOT_FOUND", "description": "No such file: /a.bin"},
        faults=3,
    )
    register_task(TASK, failed)
    register(EVENTS, json_body=event_list([("FILE_NOT_FOUND", "No such file: /a.bin", True)]))
    result = await tc.task(TASK).wait(poll=0.01, events=5)
    assert result.outcome is TaskOutcome.FAILED and not result.ok
    assert result.task.fatal_error is not None and result.task.fatal_error.code == "FILE_NOT_FOUND"
    assert [e.code for e in result.events] == ["FILE_NOT_FOUND"]
    with pytest.raises(TaskFailed, match="FAILED.*FILE_NOT_FOUND") as info:
        result.raise_for_status()
    assert info.value.task_id == TASK and info.value.outcome == "FAILED"


async def test_inactive_is_paused_not_done(tc: TransferClient) -> None:
    """globus-sdk's task_wait calls a paused task done; wait() says INACTIVE at once."""
    paused = task_doc(
        TASK, status="INACTIVE", completion_time=None, nice_status="PAUSED_BY_ADMIN", is_paused=True
    )
    register_task(TASK, paused)
    register(EVENTS, json_body=event_list([("PAUSED", "paused by an administrator", False)]))
    result = await tc.task(TASK).wait(timeout=30, poll=0.01)
    assert result.outcome is TaskOutcome.INACTIVE and not result.ok
    assert not result.task.done and _gets() == 1
    with pytest.raises(TaskFailed, match="INACTIVE.*PAUSED_BY_ADMIN"):
        result.raise_for_status()


async def test_active_with_faults_is_stuck_after_patience(tc: TransferClient) -> None:
    """A missing source file keeps a Globus task ACTIVE with faults: reported as STUCK."""
    ok = task_doc(TASK, **ACTIVE)
    faulty = task_doc(TASK, **dict(ACTIVE, faults=2, is_ok=False, nice_status="FILE_NOT_FOUND"))
    register_task(TASK, ok, faulty, ok, faulty)  # a recovery resets the patience
    register(
        EVENTS,
        json_body=event_list(
            [("FILE_NOT_FOUND", "No such file /data/a.bin", True), ("STARTED", "started", False)]
        ),
    )
    result = await tc.task(TASK).wait(poll=0.01, stuck_after=0.05, events=2)
    assert result.outcome is TaskOutcome.STUCK
    assert result.task.status == "ACTIVE" and result.task.faults == 2
    assert _gets() >= 5  # two faulty polls at least, after the recovery
    assert [e.code for e in result.events] == ["FILE_NOT_FOUND", "STARTED"]
    assert "last error FILE_NOT_FOUND" in result.describe()
    with pytest.raises(TaskFailed, match="STUCK"):
        result.raise_for_status()


async def test_timeout_ends_the_wait_not_the_task(tc: TransferClient) -> None:
    register_task(TASK, task_doc(TASK, **ACTIVE))
    register(EVENTS, json_body=event_list([("STARTED", "started", False)]))
    result = await tc.task(TASK).wait(timeout=0.1, poll=0.02)
    assert result.outcome is TaskOutcome.TIMED_OUT
    assert result.waited >= 0.1 and result.task.status == "ACTIVE"
    assert _gets() >= 2
    assert not any("/cancel" in c.request.url for c in responses.calls)


async def test_wait_checks_its_arguments(tc: TransferClient) -> None:
    with pytest.raises(UsageError):
        await tc.task(TASK).wait(poll=0)
    with pytest.raises(UsageError):
        await tc.task(TASK).wait(timeout=-1)
    assert len(responses.calls) == 0
