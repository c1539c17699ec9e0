"""Rich progress bars (off without a terminal): transfer events, and a waited-for task.

:func:`transfer_bar` draws the storage engine's typed events in two phases: while local
files are hashed (a sync comparing them, a verify) a ``hashing`` row shows the bytes hashed
of the bytes to hash, with the hashing rate; then the transfer's row shows the bytes moved
and the files done (hidden while hashing: no rate or time left is shown for a transfer that
hasn't started). :func:`task_bar` draws the task documents of a transfer task that is
waited for.
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

from provena_like.storage import (
    BytesTransferred,
    HashingProgress,
    TransferEvent,
    TransferProgress,
    UploadInterrupted,
)

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


def progress_bar(console: Console, *, show: bool = True) -> Progress:
    """The transfer bar's columns: description, bar, bytes done / total, rate, time left.

    Hidden without a terminal, with ``show=False`` (``--no-progress``) or a quiet console.
    """
    return _bar(console, show, DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())


@contextmanager
def transfer_bar(
    console: Console, description: str, *, show: bool = True
) -> Iterator[ProgressSink]:
    """Yield a callback for ``progress=`` that draws bytes and files.

    The bar is hidden without a terminal, or with ``show=False`` (``--no-progress``); the
    callback still counts the bytes moved (:attr:`ProgressSink.bytes_done`).
    """
    progress = progress_bar(console, show=show)
    with progress:
        yield ProgressSink(progress, description)


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


@contextmanager
def step_bar(
    console: Console, description: str, total: int | None, *, show: bool = True
) -> Iterator[Callable[[str, bool], None]]:
    """Yield ``update(text, done)``: the bar's text becomes ``text``, one more item if ``done``.

    For workflows that report steps (deleting, checking): items done of ``total`` (``None``:
    not known), the last step as the text. Hidden without a terminal or with ``show=False``.
    """
    progress = _bar(console, show, MofNCompleteColumn(), TimeElapsedColumn())
    bar = progress.add_task(description, total=total)

    def update(text: str, done: bool) -> None:
        progress.update(bar, description=f"{description}: {text}", advance=1 if done else 0)

    with progress:
        yield update


class ProgressSink:
    """Turns transfer events into progress-bar updates (a hashing row, a transfer row)."""

    def __init__(self, progress: Progress, description: str) -> None:
        self._progress = progress
        self._task: TaskID = progress.add_task(description, total=None)
        self._hashing: TaskID | None = None
        self._bytes = 0
        self.interrupted: UploadInterrupted | None = None
        """What an interrupted upload kept and registered (``None``: not interrupted)."""

    @property
    def bytes_done(self) -> int:
        """Bytes moved so far (hashing moves none)."""
        return self._bytes

    def __call__(self, event: TransferEvent) -> None:
        """Handle one event (pass this object as ``progress=``)."""
        if isinstance(event, HashingProgress):
            self._hashed(event)
            return
        if isinstance(event, UploadInterrupted):
            self.interrupted = event
            return
        self._end_hashing()
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

    def _hashed(self, event: HashingProgress) -> None:
        description = f"hashing {event.files_done}/{event.files_total} files"
        if self._hashing is None:
            self._progress.update(self._task, visible=False)
            self._hashing = self._progress.add_task(description, total=event.bytes_total)
        self._progress.update(
            self._hashing,
            total=event.bytes_total,
            completed=event.bytes_done,
            description=description,
        )
        if event.files_done >= event.files_total:
            self._end_hashing()

    def _end_hashing(self) -> None:
        if self._hashing is not None:
            self._progress.remove_task(self._hashing)
            self._hashing = None
            self._progress.update(self._task, visible=True)
