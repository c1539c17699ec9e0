"""The extraction worker process: runs extractors on files sent over a pipe.

Runs in a child process started by :class:`provena_like.crawler.runner.ExtractionRunner`.
It caps its own address space (``RLIMIT_AS``) so a runaway extractor gets a
:class:`MemoryError` (or dies) instead of exhausting the machine, and arms a ``SIGALRM``
timer per file so an extractor stuck in Python code is interrupted without killing the
worker; one stuck in native code is killed by the parent.

The protocol: the parent sends ``(extractor name, path, timeout seconds)``; the worker
answers ``(status, metadata as JSON text or None, error or None, seconds)``.
"""

from __future__ import annotations

import json
import signal
import time
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from typing import Any, Literal

__all__ = ["Reply", "run_one", "serve"]

Status = Literal["ok", "failed", "skipped"]
Reply = tuple[Status, str | None, str | None, float]
"""``(status, metadata JSON or None, error or None, seconds)``."""


class _TimedOut(BaseException):
    """Raised in the extractor by the per-file timer.

    A BaseException: extractors that catch ``Exception`` can't swallow it.
    """


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    del signum, frame
    raise _TimedOut


def _cap_memory(limit: int | None) -> None:
    if not limit:
        return
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def run_one(extractor: Any, path: Path, timeout: float | None) -> Reply:
    """Run one extractor on one file; every failure becomes an error reply."""
    started = time.perf_counter()
    armed = timeout is not None and hasattr(signal, "setitimer")
    try:
        if armed:
            signal.setitimer(signal.ITIMER_REAL, timeout or 0.0)
        try:
            metadata = extractor.extract(path)
        finally:
            if armed:
                signal.setitimer(signal.ITIMER_REAL, 0)
        if not isinstance(metadata, dict):
            raise TypeError(f"extract() returned {type(metadata).__name__}, not a dict")
        text = json.dumps(metadata, allow_nan=False)
    except _TimedOut:
        return ("failed", None, f"timed out after {timeout:g} s", time.perf_counter() - started)
    except MemoryError:
        return ("failed", None, "MemoryError: out of memory", time.perf_counter() - started)
    except (Exception, SystemExit) as err:  # noqa: BLE001 - any extractor failure is data
        message = f"{type(err).__name__}: {err}"
        return ("failed", None, message, time.perf_counter() - started)
    return ("ok", text, None, time.perf_counter() - started)


def serve(conn: Connection, extractors: dict[str, Any], memory_limit: int | None) -> None:
    """Answer requests on ``conn`` until it closes (or ``None`` arrives)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    if hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, _on_alarm)
    _cap_memory(memory_limit)
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        name, path, timeout = request
        reply = run_one(extractors[name], Path(path), timeout)
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return
