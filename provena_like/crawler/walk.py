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
from collections import deque
from collections.abc import AsyncIterator, Collection, Sequence
from pathlib import Path
from typing import Any

from provena_like._core.errors import UsageError
from provena_like._core.ratelimit import RateLimiter
from provena_like.crawler.records import CrawlError, FileRecord
from provena_like.crawler.sources import (
    CollectionSource,
    CrawlFilter,
    DatasetSource,
    DirListing,
    ListingFailed,
    LocalSource,
    TreeSource,
)

__all__ = ["CrawlSource", "RateLimiter", "cancel_all", "crawl"]

CrawlSource = LocalSource | CollectionSource | DatasetSource | TreeSource
"""What :func:`crawl` walks (a ``str`` or :class:`~pathlib.Path` means a local folder)."""


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


async def crawl(
    source: CrawlSource | Path | str,
    *,
    max_depth: int | None = None,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    hidden: bool = False,
    concurrency: int = 8,
    rate_limit: float | None = None,
) -> AsyncIterator[FileRecord | CrawlError]:
    """Walk a source breadth first; yield a record per file and an error per unreadable entry.

    Args:
        source: A :class:`LocalSource`, :class:`CollectionSource`, :class:`DatasetSource`
            (or any :class:`TreeSource`), or a local folder's path.
        max_depth: Directory levels to descend below the root (``0``: the root's files
            only; ``None``: no limit).
        include: Globs on the relative path; if any, a file must match one.
        exclude: Globs to leave out; a directory matching one is not entered.
        hidden: Report and enter names starting with a dot.
        concurrency: Directories listed at once.
        rate_limit: At most this many directory listings per second (``None``: no limit);
            transfer services throttle clients that list too fast.

    Yields:
        :class:`FileRecord` per file, :class:`CrawlError` per directory or file that could
        not be read (the root included: then it is the only record).

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
    limiter = RateLimiter(rate_limit)
    tree: CrawlSource = LocalSource(source) if isinstance(source, str | Path) else source
    if isinstance(tree, DatasetSource):
        async for record in tree.iter_files(rules):
            yield record
        return
    try:
        root_key = await tree.root_identity()
    except ListingFailed as err:
        yield CrawlError(source=tree.source, path="", reason=err.reason, message=err.message)
        return
    visited: dict[tuple[int, int], str] = {} if root_key is None else {root_key: ""}
    pending: deque[tuple[str, int]] = deque([("", 0)])
    running: dict[asyncio.Task[DirListing], tuple[str, int]] = {}
    try:
        while pending or running:
            while pending and len(running) < concurrency:
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
                        source=tree.source, path=relative, reason=err.reason, message=err.message
                    )
                    continue
                for sub, key in listing.dirs:
                    if key is not None:
                        seen = visited.get(key)
                        if seen is not None:
                            yield CrawlError(
                                source=tree.source,
                                path=sub,
                                reason="symlink_loop",
                                message=f"already crawled as {seen or '.'!r}; not entered",
                            )
                            continue
                        visited[key] = sub
                    pending.append((sub, depth + 1))
                for record in listing.files:
                    yield record
                for error in listing.errors:
                    yield error
    finally:
        await cancel_all(running)
