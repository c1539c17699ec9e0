"""A test-only extractor that misbehaves on purpose (by file content)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from provena_like.extractors.base import JSONValue


class Nasty:
    """Reads ``*.txt``: crashes, hangs, eats memory or raises, as the file says."""

    name = "nasty"
    extensions = frozenset({".txt"})
    mime_types: frozenset[str] = frozenset()
    requires: tuple[str, ...] = ()

    def extract(self, path: Path) -> dict[str, JSONValue]:
        text = path.read_text()
        if text == "crash":
            os._exit(3)
        if text == "hang":
            time.sleep(3600)
        if text == "stuck":  # like native code: the worker's timer can't interrupt it
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
            time.sleep(3600)
        if text == "oom":
            hog = bytearray(8 * 1024**3)
            return {"n": len(hog)}
        if text == "raise":
            raise ValueError("corrupt file")
        return {"chars": len(text), "terms": ["x"]}


class NeedsMissingModule:
    """Declares a module that is not installed: its files are skipped."""

    name = "needs_missing"
    extensions = frozenset({".txt"})
    mime_types: frozenset[str] = frozenset()
    requires: tuple[str, ...] = ("provena_like_no_such_module",)

    def extract(self, path: Path) -> dict[str, JSONValue]:
        raise AssertionError("never called")
