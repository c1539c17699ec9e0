"""A rich progress bar fed by the storage engine's typed events (off without a terminal)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from provena_like.storage import BytesTransferred, TransferEvent, TransferProgress


@contextmanager
def transfer_bar(
    console: Console, description: str, *, show: bool = True
) -> Iterator[ProgressSink]:
    """Yield a callback for ``progress=`` that draws bytes and files.

    The bar is hidden without a terminal, or with ``show=False`` (``--no-progress``); the
    callback still counts the bytes moved (:attr:`ProgressSink.bytes_done`).
    """
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not show or not console.is_terminal or console.quiet,
    )
    with progress:
        yield ProgressSink(progress, progress.add_task(description, total=None))


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
