"""The crawl: a breadth-first walk over a source with bounded concurrency and a rate limit.

:func:`crawl` is an async generator. It lists at most ``concurrency`` directories at once
and holds at most that many listings: files are yielded as their directory's listing comes
in, so memory stays flat however many files there are (the queue of directories still to
list is the only thing that grows, with the tree's width). A directory that cannot be listed
becomes a :class:`~provena_like.crawler.records.CrawlError` and the walk goes on.

Example:
    ```python
    async for record in crawl(Path("data"), max_depth=2, include=["*.csv"]):
        if isinstance(record, FileRecord):
            print(record.path, record.size, record.mime_type)
        else:
            print("could not read", record.path, record.reason)
    ```
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Collection,
    Generator,
    Iterable,
    Sequence,
)
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread

from provena_like._core.errors import UsageError
from provena_like._core.ratelimit import RateLimiter
from provena_like.crawler.parallel import Listed, default_processes, pooled_batches
from provena_like.crawler.records import CrawlError, FileRecord
from provena_like.crawler.sources import (
    CollectionSource,
    CrawlFilter,
    DatasetSource,
    DirListing,
    Finish,
    ListingFailed,
    LocalSource,
    TreeSource,
    record_itself,
)

__all__ = ["Crawl", "CrawlSource", "RateLimiter", "cancel_all", "crawl"]

CrawlSource = LocalSource | CollectionSource | DatasetSource | TreeSource
"""What :func:`crawl` walks (a ``str`` or :class:`~pathlib.Path` means a local folder)."""

T = TypeVar("T")

_BATCH = 96  # items per hand-over from a local walk's thread to the event loop. A result
# is 6 objects the garbage collector tracks (3 records, 2 of their dicts, a list): 96 of them
# stay under its default threshold (700 new objects) when the batch before is gone by then,
# so a crawl triggers almost no collection (128 triggered one per batch, and the survivors
# made full collections of the whole heap every ~15,000 files)
_PUT_WAIT = 0.2  # seconds between checks of an abandoned crawl by a waiting thread


async def cancel_all(tasks: Collection[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until they have ended (an early exit of a generator)."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)


async def _list(
    source: TreeSource, relative: str, depth: int, rules: CrawlFilter, limiter: RateLimiter
) -> DirListing:
    await limiter.wait()
    return await source.list_dir(relative, depth, rules)


class _Visited:
    """The directories entered so far (by identity) and those still to list, in BFS order."""

    def __init__(self, source: str, root_key: tuple[int, int] | None) -> None:
        self.source = source
        self.seen: dict[tuple[int, int], str] = {} if root_key is None else {root_key: ""}
        self.pending: deque[tuple[str, int]] = deque([("", 0)])

    def enter(
        self, dirs: Iterable[tuple[str, tuple[int, int] | None]], depth: int
    ) -> list[CrawlError]:
        """Queue a listing's subdirectories; one already crawled is a ``symlink_loop``."""
        loops: list[CrawlError] = []
        for sub, key in dirs:
            if key is not None:
                seen = self.seen.get(key)
                if seen is not None:
                    loops.append(
                        CrawlError(
                            source=self.source,
                            path=sub,
                            reason="symlink_loop",
                            message=f"already crawled as {seen or '.'!r}; not entered",
                        )
                    )
                    continue
                self.seen[key] = sub
            self.pending.append((sub, depth + 1))
        return loops


class _Closed(Exception):
    """The crawl's consumer has gone: the walking thread stops."""


class _HandOver:
    """Batches from a walking thread to the event loop, one at a time, on demand.

    The thread makes the next batch only when the loop has used up the last one and asks
    for more (after the first batch, which the loop may ask for before it is there), so the
    two don't run at once: they would only take the GIL from each other (a thread back from
    a ``stat`` waits for the other to let go of it), and a batch or two is all the memory a
    walk holds.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[list[Any] | None] = queue.SimpleQueue()
        self._ready = asyncio.Event()
        self._wanted = threading.Semaphore(0)
        self.closed = False

    def put(self, batch: list[Any] | None) -> None:
        """Hand a batch over (``None``: the end) and wait until the next one is wanted.

        Raises:
            _Closed: The consumer has gone.
        """
        if self.closed:
            raise _Closed
        self._queue.put(batch)
        self._loop.call_soon_threadsafe(self._ready.set)
        if batch is None:
            return
        while not self._wanted.acquire(timeout=_PUT_WAIT):
            if self.closed:
                raise _Closed
        if self.closed:
            raise _Closed

    async def get(self) -> list[Any] | None:
        """The next batch (``None``: the end)."""
        asked = False
        while True:
            self._ready.clear()  # before looking: a later put sets it again
            try:
                return self._queue.get_nowait()
            except queue.Empty:
                if not asked:  # the thread waits for this after each batch
                    self._wanted.release()
                    asked = True
                await self._ready.wait()

    def close(self) -> None:
        """No more batches are wanted: the thread stops at its next hand-over."""
        self.closed = True
        self._wanted.release()


def _local_batches(
    tree: LocalSource,
    rules: CrawlFilter,
    limiter: RateLimiter,
    finish: Finish[T],
    listed: Listed[T] | None = None,
) -> Generator[list[T | CrawlError], None, None]:
    """A local crawl, blocking: one listing after the other, in batches of ~``_BATCH``.

    Once :attr:`LocalSource.processes_after` files are found with directories still to
    list, the rest is listed by :attr:`LocalSource.processes` listing processes
    (:mod:`.parallel`), whose files become ``listed(item)`` (default: ``finish`` of their
    record).
    """
    try:
        visited = _Visited(tree.source, tree.probe_root())
    except ListingFailed as err:
        yield [CrawlError(source=tree.source, path="", reason=err.reason, message=err.message)]
        return
    batch: list[T | CrawlError] = []
    pending = visited.pending
    processes = tree.processes
    if processes is None:
        processes = default_processes()
    if type(tree).scan is not LocalSource.scan:
        processes = 0  # a subclass lists its own way: listing processes wouldn't know it
    found = 0  # items handed over so far
    while pending:
        if processes and found >= tree.processes_after and len(pending) > 1:
            yield from pooled_batches(
                tree,
                rules,
                limiter,
                finish,
                pending,
                visited.enter,
                batch,
                _BATCH,
                processes,
                listed,
            )
            return
        relative, depth = pending.popleft()
        limiter.wait_blocking()
        dirs: list[tuple[str, tuple[int, int] | None]] = []
        try:
            for item in tree.scan(relative, depth, rules, finish, dirs):
                batch.append(item)
                if len(batch) >= _BATCH:
                    found += len(batch)
                    yield batch
                    batch = []
        except ListingFailed as err:
            batch.append(
                CrawlError(
                    source=tree.source, path=relative, reason=err.reason, message=err.message
                )
            )
            continue
        batch += visited.enter(dirs, depth)
    if batch:
        yield batch


def _walk_local(
    tree: LocalSource,
    rules: CrawlFilter,
    limiter: RateLimiter,
    finish: Finish[T],
    listed: Listed[T] | None,
    out: _HandOver,
) -> None:
    """Run :func:`_local_batches` in this (worker) thread, handing the batches over."""
    batches = _local_batches(tree, rules, limiter, finish, listed)
    try:
        for batch in batches:
            out.put(batch)
    except _Closed:
        return
    finally:  # the end, or an error: the consumer then looks at how the thread ended
        batches.close()  # its listing processes, if any, end now
        with contextlib.suppress(_Closed):
            out.put(None)


class Crawl(AsyncIterator[FileRecord | CrawlError]):
    """The records of one crawl, as :func:`crawl` returns them (``async for`` over it).

    A local folder is walked by one worker thread (:func:`os.scandir`, one ``stat`` per
    file), which hands the records over in batches when the loop asks for them: the event
    loop sees one wake-up per batch, not per file, and memory stays flat.
    :class:`~provena_like.crawler.ExtractionRunner` runs ``basic`` in that thread too,
    from the crawl's ``stat``, when nothing else is to run.

    Other sources are listed by tasks, ``concurrency`` directories at once.

    Example:
        ```python
        records = crawl("data", max_depth=1)
        async for record in records:
            if isinstance(record, CrawlError):
                print("could not read", record.path)
        await records.aclose()  # stops its thread too when left early
        ```
    """

    def __init__(
        self, tree: CrawlSource, rules: CrawlFilter, limiter: RateLimiter, concurrency: int
    ) -> None:
        self.tree = tree
        self.rules = rules
        self.limiter = limiter
        self.concurrency = concurrency
        self._records: AsyncGenerator[FileRecord | CrawlError, None] | None = None
        self._taken: AsyncGenerator[Any, None] | None = None  # by local(finish)

    def __repr__(self) -> str:
        return f"Crawl({self.tree!r}, {self.rules!r})"

    @property
    def started(self) -> bool:
        """Whether iterating has begun (a crawl is iterated once)."""
        return self._records is not None or self._taken is not None

    def _start(self) -> AsyncGenerator[FileRecord | CrawlError, None]:
        if self._records is None:
            if self._taken is not None:
                raise UsageError("this crawl's records are already being iterated")
            if isinstance(self.tree, LocalSource):
                self._records = self._local(self.tree, record_itself)
            else:
                self._records = self._walk()
        return self._records

    def __aiter__(self) -> AsyncIterator[FileRecord | CrawlError]:
        return self._start()

    def __anext__(self) -> Awaitable[FileRecord | CrawlError]:
        return self._start().__anext__()

    async def aclose(self) -> None:
        """Stop the crawl (its thread or listing tasks) if it has begun."""
        for records in (self._records, self._taken):
            if records is not None:
                await records.aclose()

    def local(self, finish: Finish[T]) -> AsyncGenerator[T | CrawlError, None]:
        """A local folder's walk, each file turned into ``finish(record, stat, path)``.

        ``finish`` runs in the walking thread. The crawl is iterated this way instead of
        by ``async for`` (once).

        Raises:
            UsageError: The source is not a local folder, or the crawl has begun.

        Example:
            ```python
            sizes = crawl("data").local(lambda record, st, path: st.st_size)
            total = sum([s async for s in sizes if isinstance(s, int)])
            ```
        """
        return self._local_listed(finish, None)

    def _local_listed(
        self, finish: Finish[T], listed: Listed[T] | None
    ) -> AsyncGenerator[T | CrawlError, None]:
        """:meth:`local`, a file found by a listing process made ``listed(item)`` instead.

        For :class:`~provena_like.crawler.ExtractionRunner`'s fast path: ``listed`` makes
        the item from the listing process's tuple (:data:`~._lister.FileItem`) directly,
        as ``finish`` would from its record and stat.

        Raises:
            UsageError: As :meth:`local`.
        """
        if not isinstance(self.tree, LocalSource):
            raise UsageError(f"not a local folder: {self.tree!r}")
        if self.started:
            raise UsageError("this crawl's records are already being iterated")
        taken = self._taken = self._local(self.tree, finish, listed)
        return taken

    async def _local(
        self, tree: LocalSource, finish: Finish[T], listed: Listed[T] | None = None
    ) -> AsyncGenerator[T | CrawlError, None]:
        out = _HandOver()
        walker = asyncio.ensure_future(
            anyio.to_thread.run_sync(
                _walk_local, tree, self.rules, self.limiter, finish, listed, out
            )
        )
        try:
            while (batch := await out.get()) is not None:
                for item in batch:
                    yield item
                del batch  # before the next one is made: a batch or two stay young for the GC
            await walker  # raises what stopped the thread, if anything did
        finally:
            out.close()
            if not walker.done():
                await asyncio.wait([walker])
            if not walker.cancelled():
                walker.exception()  # retrieved (raised above, or of no interest now)

    async def _walk(self) -> AsyncGenerator[FileRecord | CrawlError, None]:
        """Any other source: ``concurrency`` listings at once, as tasks."""
        tree, rules, limiter = self.tree, self.rules, self.limiter
        if isinstance(tree, DatasetSource):
            async for record in tree.iter_files(rules):
                yield record
            return
        try:
            root_key = await tree.root_identity()
        except ListingFailed as err:
            yield CrawlError(source=tree.source, path="", reason=err.reason, message=err.message)
            return
        visited = _Visited(tree.source, root_key)
        pending = visited.pending
        running: dict[asyncio.Task[DirListing], tuple[str, int]] = {}
        try:
            while pending or running:
                while pending and len(running) < self.concurrency:
                    relative, depth = pending.popleft()
                    task = asyncio.ensure_future(_list(tree, relative, depth, rules, limiter))
                    running[task] = (relative, depth)
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    relative, depth = running.pop(task)
                    try:
                        listing = task.result()
                    except ListingFailed as err:
                        yield CrawlError(
                            source=tree.source,
                            path=relative,
                            reason=err.reason,
                            message=err.message,
                        )
                        continue
                    for loop in visited.enter(listing.dirs, depth):
                        yield loop
                    for record in listing.files:
                        yield record
                    for error in listing.errors:
                        yield error
        finally:
            await cancel_all(running)


def crawl(
    source: CrawlSource | Path | str,
    *,
    max_depth: int | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    hidden: bool = False,
    concurrency: int = 8,
    rate_limit: float | None = None,
) -> Crawl:
    """Walk a source breadth first; yield a record per file and an error per unreadable entry.

    Args:
        source: A :class:`LocalSource`, :class:`CollectionSource`, :class:`DatasetSource`
            (or any :class:`TreeSource`), or a local folder's path.
        max_depth: Directory levels to descend below the root (``0``: the root's files
            only; ``None``: no limit).
        include: Globs on the relative path; if any, a file must match one.
        exclude: Globs to leave out; a directory matching one is not entered.
        hidden: Report and enter names starting with a dot.
        concurrency: Directories listed at once (remote sources; a local folder is listed
            by one thread, one directory after the other: faster on a local disk).
        rate_limit: At most this many directory listings per second (``None``: no limit);
            transfer services throttle clients that list too fast.

    Returns:
        A :class:`Crawl`: ``async for`` over it gives a :class:`FileRecord` per file and a
        :class:`CrawlError` per directory or file that could not be read (the root
        included: then it is the only record).

    Raises:
        UsageError: A negative ``max_depth``, ``concurrency`` below 1 or a ``rate_limit``
            not above 0.

    Example:
        ```python
        files = [r async for r in crawl("data") if isinstance(r, FileRecord)]
        ```
    """
    if concurrency < 1:
        raise UsageError("concurrency must be at least 1")
    rules = CrawlFilter(
        max_depth=max_depth, include=tuple(include), exclude=tuple(exclude), hidden=hidden
    )
    tree: CrawlSource = LocalSource(source) if isinstance(source, str | Path) else source
    return Crawl(tree, rules, RateLimiter(rate_limit), concurrency)
