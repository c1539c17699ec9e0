"""Typed progress events of a transfer, and the reporter that emits them.

A batch emits, per file, :class:`FileStarted`, one :class:`BytesTransferred` per request
(a whole small file, or one part of a large one; never per network chunk) and
:class:`FileFinished`; and :class:`TransferProgress` with the batch's totals after each file
and at most every 0.1 s in between, plus a final one. The callback may be a plain function or
a coroutine function; it runs on the event loop, so it must not block.

Before a sync moves anything it hashes the local files that may be unchanged, and a verify
hashes every local file: that phase emits :class:`HashingProgress` (bytes hashed of the bytes
to hash), at its start, at most every 0.1 s and at its end (all files done), before any
event of the transfer. The hashing runs in worker threads; they only count, and the events
are sent from the event loop.

An upload into a dataset that is interrupted (:meth:`InteractiveDataset.upload
<provena_like.modules.interactive.InteractiveDataset.upload>`, ``sync_up``) registers the
files that finished, then sends :class:`UploadInterrupted` with the counts, last.

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
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from provena_like.storage.results import FileResult

__all__ = [
    "BytesTransferred",
    "FileFinished",
    "FileStarted",
    "HashMeter",
    "HashingProgress",
    "ProgressCallback",
    "TransferEvent",
    "TransferProgress",
    "UploadInterrupted",
    "deliver",
    "hashing_progress",
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


@dataclass(frozen=True, slots=True)
class HashingProgress:
    """Local files are being hashed, before a sync's transfers or for a verify.

    Attributes:
        files_done: Files whose comparison needed no more hashing (hashed, found in the
            hash cache, or settled without reading).
        files_total: Files that may need hashing.
        bytes_done: Bytes read and hashed so far.
        bytes_total: Bytes to hash: at first the size of every file, less what a file
            turned out not to need (its hash was cached, or no hash was needed) once it is
            done; equal to ``bytes_done`` in the last event.
    """

    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int


@dataclass(frozen=True, slots=True)
class UploadInterrupted:
    """An upload into a dataset was interrupted; the files that finished were registered.

    Sent by the dataset's upload (not the engine, which registers nothing), after the
    shielded registration of the files that finished, just before the cancellation goes on.

    Attributes:
        files_finished: Files whose upload had finished.
        files_registered: Of those, the files now in the manifest (a re-run of the upload,
            or ``sync_up``, doesn't send them again).
        bytes_finished: Bytes of the files whose upload had finished.
    """

    files_finished: int
    files_registered: int
    bytes_finished: int


TransferEvent = (
    FileStarted
    | BytesTransferred
    | FileFinished
    | TransferProgress
    | HashingProgress
    | UploadInterrupted
)
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


class HashMeter:
    """Counts the bytes hashed by worker threads (thread-safe), for :func:`hashing_progress`.

    Example:
        ```python
        meter = HashMeter(files_total=1, bytes_total=4)
        meter.add(4)
        meter.file_done(expected=4, read=4)
        assert meter.snapshot() == HashingProgress(1, 1, 4, 4)
        ```
    """

    def __init__(self, *, files_total: int, bytes_total: int) -> None:
        self._lock = threading.Lock()
        self._files_total = files_total
        self._files_done = 0
        self._bytes_done = 0
        self._bytes_total = bytes_total

    def add(self, n: int) -> None:
        """Count ``n`` bytes hashed (called from the hashing thread, per chunk)."""
        with self._lock:
            self._bytes_done += n

    def file_done(self, *, expected: int, read: int) -> None:
        """A file is settled: ``read`` of the ``expected`` bytes counted for it were hashed."""
        with self._lock:
            self._files_done += 1
            self._bytes_total += read - expected

    def snapshot(self) -> HashingProgress:
        """The counts now."""
        with self._lock:
            return HashingProgress(
                self._files_done, self._files_total, self._bytes_done, self._bytes_total
            )


@asynccontextmanager
async def hashing_progress(
    callback: ProgressCallback | None, *, files_total: int, bytes_total: int
) -> AsyncIterator[HashMeter]:
    """A :class:`HashMeter` for the hashing done inside, reported as :class:`HashingProgress`.

    With a callback and files to hash, a task on the event loop sends the meter's counts
    at the start, then every 0.1 s while they change, and a last time at the end.

    Example:
        ```python
        async with hashing_progress(print, files_total=1, bytes_total=4) as meter:
            meter.add(4)
            meter.file_done(expected=4, read=4)
        ```
    """
    meter = HashMeter(files_total=files_total, bytes_total=bytes_total)
    if callback is None or files_total == 0:
        yield meter
        return
    sink: ProgressCallback | None = callback
    last: HashingProgress | None = None

    async def emit() -> None:
        nonlocal sink, last
        event = meter.snapshot()
        if sink is None or event == last:
            return
        last = event
        if not await deliver(sink, event):
            sink = None  # a broken callback is not called again

    async def poll() -> None:
        while True:
            await emit()
            await anyio.sleep(_PROGRESS_INTERVAL)

    await emit()  # the phase begins: nothing hashed yet
    async with anyio.create_task_group() as group:
        group.start_soon(poll)
        try:
            yield meter
        finally:
            group.cancel_scope.cancel()
    await emit()
