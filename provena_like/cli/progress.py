"""Rich progress bars (off without a terminal): transfer events, and a waited-for task.

:func:`transfer_bar` draws the storage engine's typed events; :func:`task_bar` the task
documents of a transfer task that is waited for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from provena_like.storage import BytesTransferred, TransferEvent, TransferProgress

if TYPE_CHECKING:
    from provena_like.clients.transfer import Task


def _bar(console: Console, show: bool, *columns: ProgressColumn) -> Progress:
    """A transient bar on ``console``; disabled without a terminal or with ``show=False``."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        *columns,
        console=console,
        transient=True,
        disable=not show or not console.is_terminal or console.quiet,
    )


@contextmanager
def transfer_bar(
    console: Console, description: str, *, show: bool = True
) -> Iterator[ProgressSink]:
    """Yield a callback for ``progress=`` that draws bytes and files.

    The bar is hidden without a terminal, or with ``show=False`` (``--no-progress``); the
    callback still counts the bytes moved (:attr:`ProgressSink.bytes_done`).
    """
    progress = _bar(console, show, DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with progress:
        yield ProgressSink(progress, progress.add_task(description, total=None))


@contextmanager
def task_bar(
    console: Console, description: str, *, show: bool = True
) -> Iterator[Callable[[Task], None]]:
    """Yield an ``on_progress`` callback for ``TaskHandle.wait`` that draws a task's files.

    Each poll's task document moves the bar: files done (transferred or skipped) of the
    files found, bytes moved, faults and the task's detail (``nice_status``).
    """
    progress = _bar(console, show, MofNCompleteColumn(), TimeElapsedColumn())
    bar = progress.add_task(description, total=None)

    def on_progress(task: Task) -> None:
        faults = f", [red]{task.faults} faults[/]" if task.faults else ""
        detail = f" {task.nice_status}" if task.nice_status and task.nice_status != "OK" else ""
        progress.update(
            bar,
            total=task.files or None,
            completed=task.files_transferred + task.files_skipped,
            description=f"{description}: {task.bytes_transferred:,} bytes{faults}{detail}",
        )
        progress.refresh()  # a poll is seconds apart: show it now

    with progress:
        yield on_progress


class ProgressSink:
    """Turns transfer events into progress-bar updates."""

    def __init__(self, progress: Progress, task: TaskID) -> None:
        self._progress = progress
        self._task = task
        self._bytes = 0

    @property
    def bytes_done(self) -> int:
        """Bytes moved so far."""
        return self._bytes

    def __call__(self, event: TransferEvent) -> None:
        """Handle one event (pass this object as ``progress=``)."""
        task = self._task
        if isinstance(event, BytesTransferred):
            self._bytes += event.n
            self._progress.update(task, completed=self._bytes)
        elif isinstance(event, TransferProgress):
            self._bytes = event.bytes_done
            self._progress.update(
                task,
                total=event.bytes_total,
                completed=event.bytes_done,
                description=f"{event.files_done}/{event.files_total} files",
            )
