"""A local crawl's listing process: lists the directories it is sent, answers in compact tuples.

Started by :mod:`provena_like.crawler.parallel` as ``python -m provena_like.crawler._lister``
(a fresh interpreter: no fork of a threaded process, nothing of the caller's ``__main__``
run again). It reads frames from stdin and writes frames to its own copy of stdout (its
``stdout`` proper goes to stderr, so that nothing printed can break a frame). A frame is a
4-byte big-endian length and a pickle:

- in: the crawl's settings ``(root, max_depth, include, exclude, hidden, follow, sums,
  full)`` once, then tasks (lists of ``(relative, depth)``), then ``None`` (or end of file): stop;
- out: ``(items, finished, last)`` -- at most :data:`BATCH` items (a file:
  ``(relative, depth, extension, MIME type, stat, sha256, md5)`` with ``stat`` the 13
  numbers :class:`os.stat_result` is rebuilt from (``full``), or only ``(st_mode,
  st_size, st_mtime)``, all a record and ``basic`` need; an error: ``(relative, reason,
  message)``), the directories finished since the last frame with their depth and
  subdirectories, and whether the task is done.

Tuples of plain values pickle and unpickle in a fraction of the time a record would take.
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from typing import Any

from provena_like.crawler.listing import (
    CrawlFilter,
    ErrorReason,
    ListingFailed,
    SubDirs,
    reason_of,
    scan_dir,
)

__all__ = ["BATCH", "HEADER", "ErrorItem", "FileItem", "Finished", "read_frame", "write_frame"]

BATCH = 256
"""Items per frame at most."""

HEADER = struct.Struct(">I")

FileItem = tuple[str, int, str, str | None, tuple[float, ...], str | None, str | None]
ErrorItem = tuple[str, ErrorReason, str]
Finished = list[tuple[int, SubDirs]]


def read_frame(fd: int) -> Any:
    """The next frame's object from ``fd`` (blocking).

    Raises:
        EOFError: The other end has gone.
    """
    (size,) = HEADER.unpack(_read_exact(fd, HEADER.size))
    return pickle.loads(_read_exact(fd, size))


def _read_exact(fd: int, size: int) -> bytes:
    chunk = os.read(fd, size)
    if len(chunk) == size:
        return chunk
    parts = [chunk]
    got = len(chunk)
    while got < size:
        if not chunk:
            raise EOFError("the other end of the pipe has gone")
        chunk = os.read(fd, size - got)
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


def write_frame(fd: int, value: object) -> None:
    """Write one frame to ``fd`` (blocking while the pipe is full)."""
    data = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    view = memoryview(HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _file(depth: int, full: bool = True) -> Any:
    def file(
        rel: str,
        st: os.stat_result,
        path: str,
        ext: str,
        mime: str | None,
        sha256: str | None,
        md5: str | None,
    ) -> FileItem:
        del path
        return (rel, depth, ext, mime, (*st, st.st_atime, st.st_mtime, st.st_ctime), sha256, md5)

    def compact(
        rel: str,
        st: os.stat_result,
        path: str,
        ext: str,
        mime: str | None,
        sha256: str | None,
        md5: str | None,
    ) -> FileItem:
        del path
        return (rel, depth, ext, mime, (st.st_mode, st.st_size, st.st_mtime), sha256, md5)

    return file if full else compact


def _error(rel: str, reason: ErrorReason, message: str) -> ErrorItem:
    return (rel, reason, message)


def serve(inp: int, out: int) -> None:
    """Answer tasks from ``inp`` on ``out`` until told to stop or the crawl has gone."""
    try:
        settings = read_frame(inp)
    except EOFError:
        return
    root, max_depth, include, exclude, hidden, follow, sums, full = settings
    rules = CrawlFilter(max_depth=max_depth, include=include, exclude=exclude, hidden=hidden)
    while True:
        try:
            task = read_frame(inp)
        except EOFError:
            return
        if task is None:
            return
        items: list[FileItem | ErrorItem] = []
        finished: Finished = []
        for relative, depth in task:
            dirs: SubDirs = []
            file = _file(depth, full)
            try:
                for item in scan_dir(
                    root, relative, depth, rules, follow, sums, file, _error, dirs
                ):
                    items.append(item)
                    if len(items) >= BATCH:
                        write_frame(out, (items, finished, False))
                        items, finished = [], []
            except ListingFailed as err:
                items.append((relative, err.reason, err.message))
            except OSError as err:  # reading the directory failed midway
                items.append((relative, reason_of(err), str(err)))
            finished.append((depth, dirs))
        write_frame(out, (items, finished, True))


def main() -> None:
    """The process's entry point: frames on stdin and on a copy of stdout."""
    out = os.dup(1)
    os.dup2(2, 1)  # whatever is printed goes to stderr, not into the frames
    sys.stdout = sys.stderr
    try:
        serve(0, out)
    except BrokenPipeError:  # the crawl stopped reading: it has gone
        pass


if __name__ == "__main__":
    main()
