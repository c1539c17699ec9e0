"""Typed progress events of a transfer, and the reporter that emits them.

A batch emits, per file, :class:`FileStarted`, one :class:`BytesTransferred` per request
(a whole small file, or one part of a large one; never per network chunk) and
:class:`FileFinished`; and :class:`TransferProgress` with the batch's totals after each file
and at most every 0.1 s in between, plus a final one. The callback may be a plain function or
a coroutine function; it runs on the event loop, so it must not block.

Example:
    ```python
    def on_progress(event: TransferEvent) -> None:
        if isinstance(event, TransferProgress):
            print(f"{event.files_done}/{event.files_total} files")
    result = await engine.upload(Path("./data"), progress=on_progress)
    ```
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from provena_like.storage.results import FileResult

__all__ = [
    "BytesTransferred",
    "FileFinished",
    "FileStarted",
    "ProgressCallback",
    "TransferEvent",
    "TransferProgress",
    "deliver",
]

log = logging.getLogger(__name__)

_PROGRESS_INTERVAL = 0.1


@dataclass(frozen=True, slots=True)
class FileStarted:
    """A file's transfer began.

    Attributes:
        path: The key relative to the dataset root.
        size: Its size, when known before the first request.
    """

    path: str
    size: int | None


@dataclass(frozen=True, slots=True)
class BytesTransferred:
    """Some bytes of a file were sent or received.

    Attributes:
        path: The key relative to the dataset root.
        n: Bytes moved by this step.
        total_done: Bytes of this file moved so far.
    """

    path: str
    n: int
    total_done: int


@dataclass(frozen=True, slots=True)
class FileFinished:
    """A file is done (ok, skipped or failed).

    Attributes:
        result: Its result.
    """

    result: FileResult


@dataclass(frozen=True, slots=True)
class TransferProgress:
    """The batch's totals so far.

    Attributes:
        files_done: Files finished (whatever their status).
        files_total: Files in the batch.
        bytes_done: Bytes moved so far.
        bytes_total: Bytes expected in all, ``None`` while sizes are unknown (downloads by
            key learn sizes as they go).
    """

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int | None


TransferEvent = FileStarted | BytesTransferred | FileFinished | TransferProgress
"""Any progress event."""

ProgressCallback = Callable[[TransferEvent], Awaitable[None] | None]
"""Receives every event; may be sync or async; must not block the event loop."""


async def deliver(callback: ProgressCallback, event: TransferEvent) -> bool:
    """Hand ``event`` to a plain or async progress callback; False if it raised (logged).

    A progress callback must never break a transfer: the caller stops calling one that
    raised.

    Example:
        ```python
        if not await deliver(print, event):
            callback = None
        ```
    """
    try:
        outcome = callback(event)
        if inspect.isawaitable(outcome):
            await outcome
    except Exception:
        log.exception("the progress callback raised; progress reporting is off for this batch")
        return False
    return True


class ProgressReporter:
    """Counts a batch's progress and forwards events to a callback.

    A callback that raises is logged once and not called again for the batch: a broken
    progress bar must not break a transfer.
    """

    def __init__(
        self,
        callback: ProgressCallback | None,
        *,
        files_total: int,
        bytes_total: int | None,
    ) -> None:
        self._callback = callback
        self.files_total = files_total
        self.bytes_total = bytes_total
        self.files_done = 0
        self.bytes_done = 0
        self._last_progress = 0.0

    @property
    def enabled(self) -> bool:
        """Whether events are delivered."""
        return self._callback is not None

    async def _emit(self, event: TransferEvent) -> None:
        callback = self._callback
        if callback is not None and not await deliver(callback, event):
            self._callback = None

    async def started(self, path: str, size: int | None) -> None:
        """Report that a file began."""
        await self._emit(FileStarted(path, size))

    async def transferred(self, path: str, n: int, total_done: int) -> None:
        """Report bytes moved for a file (one request's worth)."""
        self.bytes_done += n
        if self._callback is None:
            return
        await self._emit(BytesTransferred(path, n, total_done))
        now = time.monotonic()
        if now - self._last_progress >= _PROGRESS_INTERVAL:
            self._last_progress = now
            await self._emit(self.snapshot())

    def unexpected_bytes(self, expected: int | None, actual: int) -> None:
        """Correct the expected total when a file's size differs from what was planned."""
        if self.bytes_total is not None:
            self.bytes_total += actual - (expected or 0)

    async def finished(self, result: FileResult) -> None:
        """Report that a file is done."""
        self.files_done += 1
        if self._callback is None:
            return
        await self._emit(FileFinished(result))
        self._last_progress = time.monotonic()
        await self._emit(self.snapshot())

    def snapshot(self) -> TransferProgress:
        """The totals now."""
        return TransferProgress(
            self.files_done, self.files_total, self.bytes_done, self.bytes_total
        )

    async def close(self) -> None:
        """Emit the final totals."""
        await self._emit(self.snapshot())
