"""The progress display of a waited-for transfer task (``transfer task wait``, ``cp --wait``)."""

from __future__ import annotations

import io

from rich.console import Console

from provena_like.cli.progress import task_bar
from provena_like.clients.transfer import Task


def _task(**fields: object) -> Task:
    return Task.model_validate({"task_id": "t-1", "status": "ACTIVE", **fields})


def test_the_bar_counts_files_bytes_and_faults_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    with task_bar(console, "task t-1") as on_progress:
        on_progress(_task(files=5, files_transferred=1, files_skipped=1, bytes_transferred=2048))
        on_progress(_task(files=5, files_transferred=3, faults=2, nice_status="FILE_NOT_FOUND"))
    shown = out.getvalue()
    assert "2/5" in shown and "2,048 bytes" in shown
    assert "3/5" in shown and "2 faults" in shown and "FILE_NOT_FOUND" in shown


def test_no_bar_without_a_terminal_or_with_no_progress() -> None:
    for console, show in (
        (Console(file=io.StringIO(), force_terminal=False), True),
        (Console(file=io.StringIO(), force_terminal=True), False),
    ):
        with task_bar(console, "task t-1", show=show) as on_progress:
            on_progress(_task(files=5, files_transferred=5))
        assert isinstance(console.file, io.StringIO)
        assert console.file.getvalue() == ""
