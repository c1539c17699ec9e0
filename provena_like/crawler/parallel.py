"""A big local crawl's directories listed by worker processes, its records made here.

Listing a directory and ``stat``-ing its files is about half of what a local crawl costs per
file in Python; making the records (and running ``basic``) is the other half. Once a walk
has found :attr:`~provena_like.crawler.LocalSource.processes_after` files and still has
directories to list, it hands them to a few listing processes (:mod:`._lister`, a fresh
interpreter each: ~0.1 s of start-up, which is why small trees never pay it), which send
back compact tuples; the walking thread turns them into records. So the two halves run on
two cores. The walk itself stays here:

- which directories to enter, and which are symlink loops (:class:`~.walk._Visited`), is
  decided here, so results are the single-process walk's, in another order;
- the rate limit is taken here, before each directory is handed out;
- a process gets at most two tasks (a few directories each) at once, and blocks on its
  pipe while this side is behind: memory stays flat;
- while every process is busy (or still starting), this thread lists directories itself;
- a process that dies costs the directory it was listing (a ``failed`` error); the others
  of its tasks are listed again, and the walk goes on with the processes left (or alone).
"""

from __future__ import annotations

import logging
import os
import select
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import provena_like
from provena_like.crawler._lister import ErrorItem, FileItem, Finished, read_frame, write_frame
from provena_like.crawler.listing import CrawlFilter, ListingFailed, SubDirs
from provena_like.crawler.records import CrawlError
from provena_like.crawler.sources import Finish, LocalSource, _make_file, record_itself

__all__ = ["Listed", "Lister", "converter", "default_processes", "pooled_batches"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_IN_FLIGHT = 2  # tasks sent to a process and not yet answered in full
_TASK_DIRS = 16  # directories per task at most

Task = list[tuple[str, int]]

Listed = Callable[[FileItem], T]
"""What a local walk makes of a file a listing process found, from its item (:mod:`._lister`).

Given one, the listing processes send compact items: the stat's ``(st_mode, st_size,
st_mtime)`` only.
"""


def default_processes() -> int:
    """Listing processes a big local crawl uses: one per CPU beyond this one, at most 3.

    None on Windows (whose pipes :func:`select.select` can't wait on), nor when there is no
    interpreter to start (an embedded Python).
    """
    if sys.platform == "win32" or not sys.executable:
        return 0
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(0, min(3, cpus - 1))


class Lister:
    """One listing process and the tasks sent to it that it has not finished.

    Args:
        tree: The folder being crawled.
        rules: The crawl's rules.
        full: Items with every number of the stat (else mode, size and mtime only).
    """

    def __init__(self, tree: LocalSource, rules: CrawlFilter, full: bool = True) -> None:
        env = dict(os.environ)
        top = str(Path(provena_like.__file__).parent.parent)  # where our package is found
        env["PYTHONPATH"] = os.pathsep.join(p for p in (top, env.get("PYTHONPATH")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "provena_like.crawler._lister"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            bufsize=0,
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._in = self.process.stdin
        self.out = self.process.stdout
        self.fd = self.out.fileno()
        self.sent: deque[Task] = deque()
        self.done = 0  # directories of sent[0] finished
        self.full = full
        settings = (
            str(tree.root),
            rules.max_depth,
            rules.include,
            rules.exclude,
            rules.hidden,
            tree.follow_symlinks,
            tree.checksums,
            full,
        )
        write_frame(self._in.fileno(), settings)

    def send(self, task: Task) -> None:
        """Hand a task over (never blocks for long: at most two are in flight)."""
        write_frame(self._in.fileno(), task)
        self.sent.append(task)

    def receive(self) -> tuple[list[FileItem | ErrorItem], Finished, bool]:
        """The next frame (blocking).

        Raises:
            EOFError: The process has ended.
        """
        items, finished, last = read_frame(self.fd)
        self.done += len(finished)
        if last:
            self.sent.popleft()
            self.done = 0
        return items, finished, last

    def unfinished(self) -> tuple[tuple[str, int] | None, Task]:
        """The directory being listed when the process ended, and those it had not begun."""
        left = [d for i, task in enumerate(self.sent) for d in task[self.done if i == 0 else 0 :]]
        return (left[0], left[1:]) if left else (None, [])

    def close(self) -> None:
        """End the process and reap it (it holds nothing worth waiting for)."""
        for pipe in (self._in, self.out):
            pipe.close()
        self.process.kill()
        self.process.wait()


def converter(tree: LocalSource, finish: Finish[T], full: bool = True) -> Listed[T]:
    """What a file a listing process found becomes: ``finish`` of its record and stat.

    The record has the values :meth:`LocalSource.scan` gives, from the same ``stat``
    (rebuilt from the item's numbers). Items not ``full`` (mode, size, mtime) give a stat
    of those three (the other numbers 0), or none is made when ``finish`` is
    :func:`record_itself`.
    """
    source = tree.source
    prefix = str(tree.root).rstrip("/") + "/"
    make_file = _make_file
    fromtimestamp = datetime.fromtimestamp
    stat_result = os.stat_result
    plain = finish is record_itself

    def convert(entry: FileItem) -> T:
        rel, at, ext, mime, numbers, sha256, md5 = entry
        size: float
        if full:
            st = stat_result(numbers)
            size, mtime = st.st_size, st.st_mtime
        else:
            mode, size, mtime = numbers
        record = make_file(
            {
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
            }
        )
        if plain:
            return record  # type: ignore[return-value]  # finish is record_itself
        if not full:
            st = stat_result((mode, 0, 0, 0, 0, 0, size, 0, int(mtime), 0, 0.0, mtime, 0.0))
        return finish(record, st, prefix + rel)

    return convert


def pooled_batches(
    tree: LocalSource,
    rules: CrawlFilter,
    limiter: Any,
    finish: Finish[T],
    pending: deque[tuple[str, int]],
    enter: Any,
    batch: list[T | CrawlError],
    size: int,
    processes: int,
    listed: Listed[T] | None = None,
) -> Iterator[list[T | CrawlError]]:
    """The rest of a local walk (``pending`` directories on), with listing processes.

    ``enter(dirs, depth)`` queues subdirectories (and returns symlink-loop errors), as in
    the single-process walk; ``batch`` is that walk's batch so far. Batches of about
    ``size`` items are yielded. A file a listing process found becomes ``listed(item)``
    (default: :func:`converter`'s, ``finish`` of its record).
    """
    full = listed is None and finish is not record_itself  # the stat's other numbers wanted
    listers: list[Lister] = []
    for _ in range(processes if sys.platform != "win32" else 0):  # no select() on its pipes
        try:
            listers.append(Lister(tree, rules, full))
        except OSError as err:  # e.g. the interpreter can't be run: the walk goes on alone
            log.warning("no listing process for the crawl of %s: %s", tree.root, err)
            break
    by_fd = {lister.fd: lister for lister in listers}
    source = tree.source
    convert = converter(tree, finish, full) if listed is None else listed

    def drop(lister: Lister) -> Iterator[CrawlError]:
        """A process has ended: its directories go back to the queue, but the one begun."""
        listers.remove(lister)
        del by_fd[lister.fd]
        cut, left = lister.unfinished()
        lister.close()
        pending.extendleft(reversed(left))
        if cut is not None:
            message = "the listing process ended while listing it"
            yield CrawlError(source=source, path=cut[0], reason="failed", message=message)

    try:
        while True:
            for lister in listers.copy():  # drop() takes the dead out
                while len(lister.sent) < _IN_FLIGHT and pending:
                    share = len(pending) // (2 * max(1, len(listers)))
                    task: Task = []
                    while pending and len(task) < max(1, min(_TASK_DIRS, share)):
                        limiter.wait_blocking()
                        task.append(pending.popleft())
                    try:
                        lister.send(task)
                    except OSError:  # it has ended: what it had, and this, go back
                        pending.extendleft(reversed(task))
                        batch += drop(lister)
                        break
            busy = [lister.fd for lister in listers if lister.sent]
            if not busy and not pending:
                break
            ready: list[int] = []
            if busy:
                ready = select.select(busy, [], [], 0 if pending else None)[0]
            if not ready:  # every process busy or starting: list a directory here
                relative, depth = pending.popleft()
                limiter.wait_blocking()
                dirs: SubDirs = []
                try:
                    for item in tree.scan(relative, depth, rules, finish, dirs):
                        batch.append(item)
                        if len(batch) >= size:
                            yield batch
                            batch = []
                except ListingFailed as err:
                    batch.append(
                        CrawlError(
                            source=source, path=relative, reason=err.reason, message=err.message
                        )
                    )
                    continue
                batch += enter(dirs, depth)
                continue
            for fd in ready:
                lister = by_fd[fd]
                try:
                    items, finished, _ = lister.receive()
                except (EOFError, OSError):
                    batch += drop(lister)
                    continue
                for entry in items:
                    if len(entry) == 3:
                        rel, reason, message = entry
                        batch.append(
                            CrawlError(source=source, path=rel, reason=reason, message=message)
                        )
                        continue
                    batch.append(convert(entry))
                    if len(batch) >= size:
                        yield batch
                        batch = []
                for depth, dirs in finished:
                    batch += enter(dirs, depth)
        if batch:
            yield batch
    finally:
        for lister in listers:
            lister.close()
