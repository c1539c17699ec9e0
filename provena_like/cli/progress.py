"""A rich progress bar fed by the storage engine's typed events (off without a terminal).

Two phases: while local files are hashed (a sync comparing them, a verify) a ``hashing``
row shows the bytes hashed of the bytes to hash, with the hashing rate; then the transfer's
row shows the bytes moved and the files done. The transfer's row is hidden while hashing:
no rate or time left is shown for a transfer that hasn't started.
"""

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

from provena_like.storage import (
    BytesTransferred,
    HashingProgress,
    TransferEvent,
    TransferProgress,
    UploadInterrupted,
)


def progress_bar(console: Console, *, show: bool = True) -> Progress:
    """The bar's columns: description, bar, bytes done / total, rate, time left.

    Hidden without a terminal, with ``show=False`` (``--no-progress``) or a quiet console.
    """
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
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
    progress = progress_bar(console, show=show)
    with progress:
        yield ProgressSink(progress, description)


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
