"""``pv.crawler``: crawl a dataset or a transfer collection on the server, and read the results.

:meth:`Crawler.start` starts a server-side crawl job and returns a :class:`CrawlHandle`:

- :meth:`CrawlHandle.status` reads the job (files and bytes crawled, groups, errors, state);
- :meth:`CrawlHandle.wait` polls it until it ends (``succeeded``, ``failed`` or
  ``canceled``: whichever it is, never a guess), calling ``on_progress`` with each reading;
  the server holds each poll until the job changes, so the wait returns as the job ends;
- :meth:`CrawlHandle.flush` leases the next page of records not acknowledged yet, and
  :meth:`CrawlHandle.ack` acknowledges it: a page not acknowledged within its lease is
  delivered again (at-least-once, unlike Xtract's destructive ``flush_crawl_metadata``);
- ``async for record in handle`` yields every record, acknowledging each page when the next
  is asked for (so a loop that stops early leaves its last page to be delivered again).

Example:
    ```python
    handle = await pv.crawler.start(f"dataset:{dataset_id}", grouper="directory")
    job = await handle.wait(on_progress=lambda j: print(j.files, "files"))
    async for record in handle:
        print(record.kind, record.path if record.kind != "group" else record.key)
    ```
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import anyio

from provena_like._core.errors import UsageError
from provena_like._core.held_polls import REPOLL
from provena_like._core.pagination import AsyncPaginator
from provena_like.clients.crawl import CrawlClient
from provena_like.crawler.records import CrawlError, FileRecord, Group
from provena_like.models.crawl_jobs import (
    CrawlJob,
    CrawlJobPage,
    CrawlJobRequest,
    CrawlJobSource,
    CrawlJobState,
    GrouperName,
)

__all__ = ["CrawlHandle", "Crawler", "parse_source"]

ProgressCallback = Callable[[CrawlJob], Awaitable[None] | None]


def parse_source(target: str) -> CrawlJobSource:
    """``dataset:<handle>[/folder]`` or ``collection:<uuid>[/path]`` as a job's source.

    Raises:
        UsageError: Another kind of target (a local folder is crawled by the SDK itself:
            :func:`provena_like.crawler.crawl`).

    Example:
        ```python
        source = parse_source("dataset:10378.1/42/raw")
        assert (source.dataset, source.path) == ("10378.1/42", "raw")
        ```
    """
    if target.startswith("dataset:"):
        parts = target[len("dataset:") :].split("/", 2)
        if len(parts) < 2 or not all(parts[:2]):
            raise UsageError(f"not a dataset handle: {target!r}")
        return CrawlJobSource(
            dataset=f"{parts[0]}/{parts[1]}", path=parts[2] if len(parts) > 2 else ""
        )
    if target.startswith("collection:"):
        collection, _, path = target[len("collection:") :].partition("/")
        if not collection:
            raise UsageError(f"no collection in {target!r}")
        return CrawlJobSource(collection=collection, path=path)
    raise UsageError(f"a server crawl needs dataset:<handle> or collection:<uuid>, not {target!r}")


class CrawlHandle:
    """One server-side crawl job (see the module docstring).

    Attributes:
        id: The job's id.
        client: The L2 client it calls.
    """

    def __init__(self, client: CrawlClient, job_id: str) -> None:
        self.client = client
        self.id = job_id

    def __repr__(self) -> str:
        return f"CrawlHandle({self.id!r})"

    async def status(self) -> CrawlJob:
        """The job now: state, counters (files, bytes, groups, errors), events.

        Example:
            ```python
            job = await handle.status()
            print(job.state, job.files, job.bytes, job.groups, job.errors)
            ```
        """
        return await self.client.get_job(self.id)

    async def wait(
        self,
        *,
        on_progress: ProgressCallback | None = None,
        timeout: float | None = None,
        poll: float = 0.5,
        max_poll: float = 5.0,
    ) -> CrawlJob:
        """Poll the job until it ends; the final reading (any final state: check ``state``).

        The server holds each poll until the job changes, or ``max_poll`` seconds (at most
        10): the wait returns as soon as the job ends, and reads it again whenever it moves
        (:meth:`CrawlClient.poll_job <provena_like.clients.crawl.CrawlClient.poll_job>`). A
        server that holds no polls is read with backoff instead: ``poll`` seconds, growing
        by half each time up to ``max_poll``.

        Args:
            on_progress: Called (or awaited) with each reading, the last one included.
            timeout: Seconds to wait at most (``None``: no limit).
            poll: Seconds before the second reading (a server that holds no polls)...
            max_poll: ...growing up to this; the longest a poll is held.

        Raises:
            TimeoutError: The job had not ended after ``timeout`` seconds.
            UsageError: ``poll`` or ``max_poll`` not above 0.

        Example:
            ```python
            job = await handle.wait(on_progress=lambda j: print(j.files, j.bytes))
            if job.state != "succeeded":
                print(job.error, [e.message for e in job.events])
            ```
        """
        if poll <= 0 or max_poll <= 0:
            raise UsageError("poll and max_poll must be above 0 seconds")
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = poll
        sent: str | None = None
        answer = await self.client.poll_job(self.id)
        job = answer.job
        assert job is not None  # a poll without a tag always has the job
        while True:
            if on_progress is not None:
                shown = on_progress(job)
                if inspect.isawaitable(shown):
                    await shown
            if job.finished:
                return job
            left = None if deadline is None else deadline - time.monotonic()
            backs_off = answer.etag is None or (answer.job is None and not answer.held)
            if left is not None and (left < delay if backs_off else left <= 0):
                raise TimeoutError(f"crawl job {self.id} is still {job.state} after {timeout} s")
            if backs_off:  # the server holds no polls (an older one), or not this one
                await anyio.sleep(delay)
                delay = min(max_poll, delay * 1.5)
            elif sent is not None and not answer.held:
                # it changed before the poll could be held: the next one is held
                await anyio.sleep(REPOLL if left is None else min(REPOLL, left))
            sent = answer.etag  # the next poll is held until the job changes
            left = None if deadline is None else deadline - time.monotonic()
            hold = max_poll if left is None else min(max_poll, max(left, 0.0))
            answer = await self.client.poll_job(self.id, etag=sent, wait=hold)
            job = answer.job or job

    async def flush(
        self, n: int = 100, *, ack: str | None = None, lease_seconds: float = 300.0
    ) -> CrawlJobPage:
        """Lease up to ``n`` records not acknowledged yet (acknowledging ``ack`` first).

        Acknowledge the page's ``cursor`` (:meth:`ack`, or ``ack=`` of the next flush) once
        its records are safe; unacknowledged, they come again after ``lease_seconds``.

        Example:
            ```python
            page = await handle.flush(500)
            save(page.records)
            await handle.ack(page)
            ```
        """
        return await self.client.flush(self.id, limit=n, lease_seconds=lease_seconds, ack=ack)

    async def ack(self, page: CrawlJobPage | str) -> int:
        """Mark a page's records delivered (a :class:`CrawlJobPage` or its cursor); how many.

        Example:
            ```python
            acked = await handle.ack(page)
            ```
        """
        cursor = page if isinstance(page, str) else page.cursor
        if cursor is None:
            return 0
        return await self.client.ack(self.id, cursor)

    async def cancel(self) -> CrawlJob:
        """Cancel the job; the records it stored stay readable.

        Example:
            ```python
            job = await handle.cancel()
            assert job.state in ("canceled", "succeeded", "failed")
            ```
        """
        return await self.client.cancel_job(self.id)

    async def records(
        self, *, page_size: int = 500, poll: float = 0.5, max_poll: float = 5.0
    ) -> AsyncIterator[FileRecord | CrawlError | Group]:
        """Every record of the job, as it is stored, until the job ends and all are acked.

        Each page is acknowledged when the next one is asked for, so records are delivered
        at least once: a loop that stops early leaves its last page to come again (to this
        or another reader) once its lease lapses.

        Example:
            ```python
            files = [r async for r in handle.records() if r.kind == "file"]
            ```
        """
        cursor: str | None = None
        delay = poll
        while True:
            page = await self.flush(page_size, ack=cursor)
            cursor = page.cursor
            for row in page.records:
                yield row.record
            if page.records:
                delay = poll
                continue
            if page.drained:
                return
            await anyio.sleep(delay)  # more is coming, or another reader's lease may lapse
            delay = min(max_poll, delay * 1.5)

    def __aiter__(self) -> AsyncIterator[FileRecord | CrawlError | Group]:
        return self.records()


class Crawler:
    """Server-side crawl jobs (``pv.crawler``; see the module docstring).

    Args:
        client: The L2 crawl client.
    """

    def __init__(self, client: CrawlClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"Crawler({self.client!r})"

    async def start(
        self,
        source: str | CrawlJobSource,
        *,
        max_depth: int | None = None,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        hidden: bool = False,
        grouper: GrouperName | None = None,
        checksums: bool = False,
        rate_limit: float | None = None,
    ) -> CrawlHandle:
        """Start crawling a dataset or a transfer collection on the server.

        Args:
            source: ``dataset:<handle>[/folder]``, ``collection:<uuid>[/path]``, or a
                :class:`~provena_like.models.crawl_jobs.CrawlJobSource`. Needs ``data-read``.
            max_depth: Folder levels below the top to descend (``None``: no limit).
            include: Globs on the relative path; if any, a file must match one.
            exclude: Globs to leave out; a matching folder is not entered.
            hidden: Report and enter names starting with a dot.
            grouper: Add group records: ``file``, ``directory``, ``extension``,
                ``alf_object``.
            checksums: Add each file's sha256 (read on POSIX collections; the stored one of
                a dataset's objects).
            rate_limit: At most this many folder listings per second.

        Raises:
            UsageError: A source that is not a dataset or a collection.
            NotFound: No such dataset or collection.
            PermissionDenied: No ``data-read`` on it.

        Example:
            ```python
            handle = await pv.crawler.start("collection:6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e/raw")
            ```
        """
        where = parse_source(source) if isinstance(source, str) else source
        request = CrawlJobRequest(
            source=where,
            max_depth=max_depth,
            include=list(include),
            exclude=list(exclude),
            hidden=hidden,
            grouper=grouper,
            checksums=checksums,
            rate_limit=rate_limit,
        )
        job = await self.client.start_job(request)
        return CrawlHandle(self.client, job.id)

    def job(self, job_id: str) -> CrawlHandle:
        """A handle on a job started before (e.g. by another process).

        Example:
            ```python
            handle = pv.crawler.job(job_id)
            print((await handle.status()).state)
            ```
        """
        return CrawlHandle(self.client, job_id)

    def iter_jobs(
        self, *, state: CrawlJobState | None = None, max_items: int | None = None
    ) -> AsyncPaginator[CrawlJob]:
        """The caller's crawl jobs, newest first.

        Example:
            ```python
            running = [job async for job in pv.crawler.iter_jobs(state="running")]
            ```
        """
        return self.client.iter_jobs(state=state, max_items=max_items)
