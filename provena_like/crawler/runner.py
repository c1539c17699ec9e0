"""Running extractors over crawled files: worker processes, per-file timeouts, a memory cap.

:class:`ExtractionRunner` sends each (file, extractor) pair to one of its worker processes
(:mod:`provena_like.crawler._worker`) and waits at most ``timeout`` seconds for it. A worker
owns one pipe, so the runner always knows which file a worker was reading:

- the extractor raises, or runs out of memory under the worker's ``RLIMIT_AS`` cap: that
  file's extraction is ``failed`` with the error, the worker goes on;
- the extractor hangs in Python code: the worker's timer interrupts it (``failed``, timed
  out), the worker goes on; in native code: the runner kills the worker after a grace
  period and starts a new one;
- the extractor crashes the process (a segfault, ``os._exit``, the kernel's OOM killer):
  that file's extraction is ``failed`` with the exit code, and a new worker replaces it.

Extractors named in ``in_process`` (by default ``basic``: stat and hashing, nothing that
can crash) run in worker threads of this process, a batch of files per thread call, which
keeps a plain crawl + ``basic`` close to the speed of the directory walk itself.

A file whose extractor needs a module that is not installed gets a ``skipped`` extraction
("extractor unavailable"); only files of a local crawl (``source`` ``local:...``) can be
read, others get ``skipped`` ("not a local file").

Example:
    ```python
    from provena_like.crawler import crawl

    async with ExtractionRunner(timeout=30) as runner:
        async for result in runner.extract(crawl("data")):
            if isinstance(result, FileResult):
                print(result.record.path, [e.status for e in result.extractions])
    ```
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Collection, Mapping, Sequence
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TypeVar

import anyio
import anyio.to_thread

from provena_like._core.errors import UsageError
from provena_like._core.lifecycle import AsyncCloseable
from provena_like.crawler._lister import FileItem
from provena_like.crawler._worker import Reply, serve
from provena_like.crawler.parallel import Listed, converter
from provena_like.crawler.records import (
    CrawlError,
    Extraction,
    FileRecord,
    FileResult,
    Group,
    _new,
    _set_dict,
    _set_extra,
    _set_fields_set,
    _set_private,
    _shared,
    maker,
)
from provena_like.crawler.sources import FILE_FIELDS, Finish, LocalSource
from provena_like.crawler.walk import Crawl, cancel_all
from provena_like.extractors.base import (
    Extractor,
    JSONValue,
    available_extractors,
    handles,
    missing_requirements,
)
from provena_like.extractors.basic import BasicExtractor

__all__ = ["DEFAULT_MEMORY_LIMIT", "ExtractionRunner", "local_path"]

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_MEMORY_LIMIT = 4 * 1024**3
"""The worker processes' address-space cap (bytes) unless told otherwise."""

_Plan = tuple[tuple[Extraction, ...], tuple[str, ...], bool]
"""What to do with a file: (skipped extractions, isolated extractor names, run inline ones)."""

_PLANS = 4096  # plans kept at most (one per file type)
_GRACE = 5.0  # seconds past the timeout before a worker is taken for stuck and killed
_BATCH = 256  # files per in-process thread call
_BATCH_WAIT = 0.2  # seconds a file may wait for its batch to fill
_OK_FIELDS = frozenset(("extractor", "status", "metadata", "seconds"))
_RESULT_FIELDS = frozenset(("record", "extractions"))
_make_ok = maker(Extraction, _OK_FIELDS)


def local_path(record: FileRecord) -> Path | None:
    """The local path of a record of a local crawl, ``None`` for other sources.

    Example:
        ```python
        rec = FileRecord(source="local:/data", path="raw/a.csv")
        assert local_path(rec) == Path("/data/raw/a.csv")
        ```
    """
    text = _local_text(record)
    return None if text is None else Path(text)


def _local_text(record: FileRecord) -> str | None:
    """:func:`local_path` as text (no :class:`Path` object)."""
    if not record.source.startswith("local:"):
        return None
    return f"{record.source[6:]}/{record.path}"


def _context() -> BaseContext:
    # forkserver: no fork of this (multi-threaded) process; spawn where there is none
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class _Worker:
    """One worker process and the parent's end of its pipe."""

    def __init__(self, context: BaseContext, extractors: dict[str, Extractor], cap: int | None):
        parent, child = context.Pipe()
        self.process: BaseProcess = context.Process(  # type: ignore[attr-defined]
            target=serve, args=(child, extractors, cap), daemon=True
        )
        self.process.start()
        child.close()
        self.conn: Connection = parent

    def call(self, request: tuple[str, str, float | None], wait: float | None) -> Reply | None:
        """Send a request and wait for the reply (blocking); ``None`` when none came in time.

        Raises:
            EOFError: The worker died.
        """
        self.conn.send(request)
        if not self.conn.poll(wait):
            return None
        reply: Reply = self.conn.recv()
        return reply

    def kill(self) -> str:
        """Stop the worker for good; returns how it ended."""
        if self.process.is_alive():
            self.process.kill()
        self.process.join(5)
        self.conn.close()
        code = self.process.exitcode
        return f"exit code {code}" if code is not None and code >= 0 else f"signal {-(code or 0)}"

    def stop(self) -> None:
        """Ask the worker to end (closing the pipe), then make sure it does."""
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(2)
        self.kill()


def _run_trusted(
    extractor: Extractor, path: Path | str, st: os.stat_result | None = None
) -> Extraction:
    """An in-process extractor on one file (no timer).

    ``basic`` given the crawl's ``stat`` (``st``) uses it instead of its own, and its
    metadata (JSON values it made) is taken as is; other extractors' is validated (JSON),
    which is faster than ``model_construct`` (pydantic-core vs Python code).
    """
    started = time.perf_counter()
    try:
        if st is not None and type(extractor) is BasicExtractor:
            metadata = extractor.extract_stat(path, st)
            return _make_ok(
                {
                    "extractor": extractor.name,
                    "status": "ok",
                    "metadata": metadata,
                    "error": None,
                    "seconds": time.perf_counter() - started,
                }
            )
        metadata = extractor.extract(path)  # type: ignore[arg-type]  # text: see _run_inline
        return Extraction(
            extractor=extractor.name,
            status="ok",
            metadata=metadata,
            seconds=time.perf_counter() - started,
        )
    except Exception as err:  # noqa: BLE001 - any extractor failure is data
        return _failed(extractor.name, err, time.perf_counter() - started)


def _failed(name: str, err: Exception, seconds: float) -> Extraction:
    """The ``failed`` extraction of an extractor that raised ``err``."""
    return Extraction(
        extractor=name, status="failed", error=f"{type(err).__name__}: {err}", seconds=seconds
    )


class ExtractionRunner(AsyncCloseable):
    """Runs extractors over crawled files, in worker processes that may crash or hang.

    Args:
        extractors: The extractors to run (instances); ``None``: every registered one
            (:func:`~provena_like.extractors.available_extractors`); a mapping is taken by
            its values.
        workers: Worker processes (default: the CPU count, at most 8).
        timeout: Seconds one extractor may spend on one file (``None``: no limit).
        memory_limit: Address-space cap of each worker in bytes (``None``: no cap).
        in_process: Names of extractors trusted to run in this process's threads (fast, no
            isolation); default ``{"basic"}``.

    Example:
        ```python
        from provena_like.crawler import crawl
        from provena_like.extractors.basic import BasicExtractor

        async with ExtractionRunner([BasicExtractor()], workers=2) as runner:
            results = [r async for r in runner.extract(crawl("data"))]
        ```
    """

    def __init__(
        self,
        extractors: Sequence[Extractor] | Mapping[str, Extractor] | None = None,
        *,
        workers: int | None = None,
        timeout: float | None = 60.0,
        memory_limit: int | None = DEFAULT_MEMORY_LIMIT,
        in_process: Collection[str] = ("basic",),
    ) -> None:
        if extractors is None:
            extractors = available_extractors()
        chosen = list(extractors.values() if isinstance(extractors, Mapping) else extractors)
        names = [e.name for e in chosen]
        if len(set(names)) != len(names):
            raise UsageError(f"two extractors share a name: {names}")
        if timeout is not None and timeout <= 0:
            raise UsageError("timeout must be above 0 (or None)")
        self.workers = max(1, workers or min(8, os.cpu_count() or 1))
        self.timeout = timeout
        self.memory_limit = memory_limit
        self.extractors = chosen
        self._unavailable: dict[str, str] = {}
        for extractor in chosen:
            missing = missing_requirements(extractor)
            if missing:
                self._unavailable[extractor.name] = (
                    f"extractor unavailable: needs {', '.join(missing)}"
                )
        self._inline = [
            e for e in chosen if e.name in in_process and e.name not in self._unavailable
        ]
        self._inline_text = [(e, type(e) is BasicExtractor) for e in self._inline]
        """The in-process extractors, and whether each takes a path as text (``basic``)."""
        self._isolated = {
            e.name: e
            for e in chosen
            if e.name not in in_process and e.name not in self._unavailable
        }
        self._idle: asyncio.Queue[_Worker | None] | None = None
        self._all: set[_Worker] = set()
        self._threads = anyio.CapacityLimiter(self.workers + 1)
        self._plans: dict[tuple[str, str | None, bool], _Plan] = {}
        self._closed = False
        self.restarts = 0
        """Workers replaced after they died or hung (for monitoring and tests)."""

    def __repr__(self) -> str:
        names = ", ".join(e.name for e in self.extractors)
        return f"ExtractionRunner([{names}], workers={self.workers}, timeout={self.timeout})"

    async def aclose(self) -> None:
        """Stop the worker processes."""
        self._closed = True
        workers, self._all = list(self._all), set()
        if workers:

            def stop_all() -> None:
                for worker in workers:
                    worker.stop()

            await anyio.to_thread.run_sync(stop_all)

    # ------------------------------------------------------------------ one file

    def _pool(self) -> asyncio.Queue[_Worker | None]:
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self.workers):
                self._idle.put_nowait(None)  # a slot; its process starts on first use
        return self._idle

    async def _run_isolated(self, name: str, path: Path) -> Extraction:
        """One extractor on one file in a worker process."""
        if self._closed:
            raise UsageError("the runner is closed")
        slots = self._pool()
        worker = await slots.get()
        started = time.perf_counter()
        request = (name, str(path), self.timeout)
        wait = None if self.timeout is None else self.timeout + _GRACE
        reply: Reply | None = None
        error: str | None = None
        try:
            for attempt in (1, 2):
                if worker is None:
                    worker = await anyio.to_thread.run_sync(self._start)
                try:
                    reply = await anyio.to_thread.run_sync(
                        worker.call, request, wait, limiter=self._threads, abandon_on_cancel=True
                    )
                except anyio.get_cancelled_exc_class():
                    self._all.discard(worker)
                    worker.kill()  # it may still be busy with this file: never reuse it
                    worker = None
                    raise
                except (BrokenPipeError, ConnectionResetError) as err:
                    if attempt == 2:  # died before it read the request, twice
                        error = f"worker process unavailable: {err}"
                    else:
                        await self._retire(worker)
                        worker = None
                        continue
                except EOFError:
                    how = await self._retire(worker)
                    worker = None
                    error = f"worker process died ({how}) while extracting"
                break
            if reply is None and error is None and worker is not None:
                await self._retire(worker)
                worker = None
                error = f"timed out after {self.timeout:g} s (worker killed)"
        finally:
            slots.put_nowait(worker)
        seconds = time.perf_counter() - started
        if reply is None:
            return Extraction(extractor=name, status="failed", error=error, seconds=seconds)
        status, text, message, spent = reply
        metadata: dict[str, JSONValue] | None = None if text is None else json.loads(text)
        return Extraction.model_construct(
            extractor=name,
            status=status,
            metadata=metadata,
            error=message,
            seconds=spent,
        )

    def _start(self) -> _Worker:
        worker = _Worker(_context(), self._isolated, self.memory_limit)
        self._all.add(worker)
        return worker

    async def _retire(self, worker: _Worker) -> str:
        self._all.discard(worker)
        self.restarts += 1
        how = await anyio.to_thread.run_sync(worker.kill)
        log.warning("extraction worker replaced (%s)", how)
        return how

    def _run_inline(self, paths: list[str | None]) -> list[list[Extraction]]:
        """The in-process extractors over a batch of files (in a worker thread).

        ``basic`` gets the path as text: a :class:`Path` per file (built, then turned back
        into text by ``os.stat``) costs more than the ``stat`` itself.
        """
        inline = self._inline_text
        out: list[list[Extraction]] = []
        for text in paths:
            if text is None:
                out.append([])
                continue
            path: Path | None = None
            done: list[Extraction] = []
            for extractor, takes_text in inline:
                if takes_text:
                    done.append(_run_trusted(extractor, text))
                else:
                    path = path or Path(text)
                    done.append(_run_trusted(extractor, path))
            out.append(done)
        return out

    def _local_finish(self, tree: LocalSource) -> tuple[Finish[FileResult], Listed[FileResult]]:
        """What a local crawl's walking thread makes of each file: its :class:`FileResult`.

        Only for :meth:`extract`'s fast path: nothing runs in a worker process, and the
        in-process extractor, if any, is ``basic`` without checksums, run from the crawl's
        ``stat``. The plan is kept per extension (a local crawl's MIME type follows from
        it), the records are made as :func:`~provena_like.crawler.records.trusted` ones.

        Returns:
            ``finish(record, stat, path)``, for the files the walking thread lists, and
            ``listed(item)``, for those a listing process found: the same result, made
            from the item's numbers (no record, stat or path made first) once its type
            and mode were seen.
        """
        basic = next((e for e in self._inline if isinstance(e, BasicExtractor)), None)
        name = basic.name if basic is not None else ""
        plans: dict[str, _Plan] = {}
        plan_of = self._plan
        clock = time.perf_counter
        fromtimestamp = datetime.fromtimestamp
        new, set_dict, set_fields = _new, _set_dict, _set_fields_set
        set_extra, set_private = _set_extra, _set_private
        ok_fields, result_fields = _shared(_OK_FIELDS), _shared(_RESULT_FIELDS)
        file_fields = _shared(FILE_FIELDS)
        modes: dict[int, str] = {}  # st_mode -> basic's "mode", for regular files' modes

        def finish(record: FileRecord, st: os.stat_result, path: str) -> FileResult:
            plan = plans.get(record.extension)
            if plan is None:
                if len(plans) >= _PLANS:
                    plans.clear()
                plan = plans[record.extension] = plan_of(record)
            extractions: list[Extraction] = []
            if plan[2] and basic is not None:
                started = clock()
                mode = modes.get(st.st_mode)
                metadata: dict[str, JSONValue] | None = None
                if mode is None:  # a mode not seen yet: basic itself (and its checks)
                    try:
                        metadata = basic.extract_stat(path, st)
                    except Exception as err:  # noqa: BLE001 - any extractor failure is data
                        extractions.append(_failed(name, err, clock() - started))
                    else:
                        if len(modes) < _PLANS:
                            modes[st.st_mode] = str(metadata["mode"])
                else:  # what extract_stat says of a regular file without checksums
                    metadata = {"size": st.st_size, "mtime": st.st_mtime, "mode": mode}
                if metadata is not None:
                    # a trusted Extraction, made here: no call to maker() per file
                    ok = new(Extraction)
                    set_dict(
                        ok,
                        {
                            "extractor": name,
                            "status": "ok",
                            "metadata": metadata,
                            "error": None,
                            "seconds": clock() - started,
                        },
                    )
                    set_fields(ok, ok_fields)
                    set_extra(ok, None)
                    set_private(ok, None)
                    extractions.append(ok)
            if plan[0]:
                extractions += plan[0]
            result = new(FileResult)
            set_dict(result, {"kind": "result", "record": record, "extractions": extractions})
            set_fields(result, result_fields)
            set_extra(result, None)
            set_private(result, None)
            return result

        source = tree.source
        slow = converter(tree, finish, full=False)  # record, stat and path, then finish()

        def listed(item: FileItem) -> FileResult:
            rel, at, ext, mime, numbers, sha256, md5 = item
            plan = plans.get(ext)
            st_mode, size, mtime = numbers  # a compact item (see Listed)
            mode = modes.get(st_mode)  # type: ignore[call-overload]  # an int
            if plan is None or (mode is None and plan[2]):
                return slow(item)  # the first of its type or mode: finish() sees to it
            record = new(FileRecord)
            set_dict(
                record,
                {  # the values LocalSource.scan gives, from the same stat
                    "kind": "file",
                    "source": source,
                    "path": rel,
                    "size": size,
                    "mtime": fromtimestamp(mtime, UTC),
                    "extension": ext,
                    "mime_type": mime,
                    "depth": at,
                    "sha256": sha256,
                    "md5": md5,
                    "etag": None,
                },
            )
            set_fields(record, file_fields)
            set_extra(record, None)
            set_private(record, None)
            extractions: list[Extraction]
            if plan[2] and basic is not None:
                started = clock()
                ok = new(Extraction)
                set_dict(
                    ok,
                    {
                        "extractor": name,
                        "status": "ok",
                        "metadata": {"size": size, "mtime": mtime, "mode": mode},
                        "error": None,
                        "seconds": clock() - started,
                    },
                )
                set_fields(ok, ok_fields)
                set_extra(ok, None)
                set_private(ok, None)
                extractions = [ok, *plan[0]] if plan[0] else [ok]
            else:
                extractions = list(plan[0])
            result = new(FileResult)
            set_dict(result, {"kind": "result", "record": record, "extractions": extractions})
            set_fields(result, result_fields)
            set_extra(result, None)
            set_private(result, None)
            return result

        return finish, listed

    def _plan(self, record: FileRecord) -> _Plan:
        """(skipped extractions, isolated extractor names, whether inline ones apply).

        A plan depends only on the file's type and whether it is local, so it is made once
        per (extension, MIME type, local) and shared (its extractions are frozen).
        """
        key = (record.extension, record.mime_type, record.source.startswith("local:"))
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= _PLANS:  # many odd suffixes (".0001", ...): stay bounded
                self._plans.clear()
            plan = self._plans[key] = self._make_plan(*key)
        return plan

    def _make_plan(self, extension: str, mime_type: str | None, local: bool) -> _Plan:
        skipped: list[Extraction] = []
        isolated: list[str] = []
        inline = False
        for extractor in self.extractors:
            if not handles(extractor, extension, mime_type):
                continue
            reason = self._unavailable.get(extractor.name)
            if reason is None and not local:
                reason = "not a local file (extraction reads local files only)"
            if reason is not None:
                skipped.append(
                    Extraction(
                        extractor=extractor.name, status="skipped", error=reason, seconds=0.0
                    )
                )
            elif extractor.name in self._isolated:
                isolated.append(extractor.name)
            else:
                inline = True
        return tuple(skipped), tuple(isolated), inline

    async def _run_batch(self, batch: list[FileRecord]) -> list[FileResult]:
        plans = [self._plan(record) for record in batch]
        # each local path once, as text
        texts = [
            _local_text(record) if plan[1] or plan[2] else None
            for record, plan in zip(batch, plans, strict=True)
        ]
        inline: list[list[Extraction]] = [[] for _ in batch]
        wanted = [t if plan[2] else None for t, plan in zip(texts, plans, strict=True)]
        if self._inline and any(t is not None for t in wanted):
            inline = await anyio.to_thread.run_sync(self._run_inline, wanted, limiter=self._threads)
        isolated: list[list[Extraction]] = [[] for _ in batch]
        jobs = [(i, name) for i, (_, names, _) in enumerate(plans) for name in names]
        if jobs:
            done = await asyncio.gather(
                *(self._run_isolated(name, Path(texts[i] or "")) for i, name in jobs)
            )
            for (i, _), extraction in zip(jobs, done, strict=True):
                isolated[i].append(extraction)
        return [
            FileResult(  # validating is faster than model_construct (pydantic-core)
                record=record,
                extractions=[*inline[i], *isolated[i], *plans[i][0]],
            )
            for i, record in enumerate(batch)
        ]

    async def extract_file(self, record: FileRecord) -> FileResult:
        """Run every extractor that reads ``record``'s type on it.

        Example:
            ```python
            from provena_like.crawler import LocalSource

            source = LocalSource("data").source
            record = FileRecord(source=source, path="raw/a.csv", extension=".csv")
            async with ExtractionRunner(workers=1) as runner:
                result = await runner.extract_file(record)
            ```
        """
        return (await self._run_batch([record]))[0]

    def extract(
        self,
        records: AsyncIterable[FileRecord | CrawlError | Group],
        *,
        max_pending: int | None = None,
    ) -> AsyncIterator[FileResult | CrawlError | Group]:
        """A :class:`FileResult` per :class:`FileRecord`; other records pass through.

        Results come as they are ready (not in input order). At most ``max_pending``
        batches of files are in progress at once (default: twice the workers), so memory
        stays flat however long ``records`` is.

        Given a local :func:`~provena_like.crawler.crawl` not yet begun, and nothing to run
        but ``basic`` without checksums (stat only), ``basic`` runs in the crawl's thread as
        it lists, from its ``stat`` of each file (no second one, no hand-over to threads).
        Checksums read files: those run in threads side by side, as other extractors.

        Args:
            records: A crawl's records (or any async iterable of them).
            max_pending: Batches in progress at once.

        Example:
            ```python
            from provena_like.crawler import crawl

            async with ExtractionRunner(workers=1) as runner:
                async for result in runner.extract(crawl("data")):
                    print(result)
            ```
        """
        if (
            isinstance(records, Crawl)
            and isinstance(records.tree, LocalSource)
            and not records.started
            and not self._isolated
            and all(type(e) is BasicExtractor and not (e.sha256 or e.md5) for e in self._inline)
        ):
            return records._local_listed(*self._local_finish(records.tree))
        return self._extract(records, max_pending)

    async def _extract(
        self,
        records: AsyncIterable[FileRecord | CrawlError | Group],
        max_pending: int | None,
    ) -> AsyncIterator[FileResult | CrawlError | Group]:
        """:meth:`extract` of any records: batches to threads and worker processes."""
        limit = max_pending or 2 * self.workers
        running: set[asyncio.Task[list[FileResult]]] = set()
        batch: list[FileRecord] = []
        batch_started = 0.0
        try:
            async for item in records:
                if not isinstance(item, FileRecord):
                    yield item
                    continue
                if not batch:
                    batch_started = time.monotonic()
                batch.append(item)
                # full batches (one thread hop per 256 files); a slow source's files wait
                # at most _BATCH_WAIT seconds for company
                if len(batch) >= _BATCH or time.monotonic() - batch_started > _BATCH_WAIT:
                    running.add(asyncio.ensure_future(self._run_batch(batch)))
                    batch = []
                while running and (len(running) >= limit or any(t.done() for t in running)):
                    done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        running.discard(task)
                        for result in task.result():
                            yield result
            if batch:
                running.add(asyncio.ensure_future(self._run_batch(batch)))
            while running:
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    running.discard(task)
                    for result in task.result():
                        yield result
        finally:
            await cancel_all(running)
