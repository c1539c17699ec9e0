"""Start-up helpers of the ``provena-like`` command: imports with the cyclic GC paused.

A command's start is mostly imports (typer, rich, pydantic, httpx, the SDK): they create
some 75,000 objects the garbage collector tracks (for ``dataset show``), which live until
the process ends. Python's cyclic collector runs every 700 new ones and walks the young
ones, and now and then all of them: during start-up it finds nothing to free and costs a
tenth to a quarter of a client command's CPU time (more on a busy machine).
:func:`imports_without_gc` pauses it for a block of imports, then freezes what the block
built (:func:`gc.freeze`: moved out of the collector's sight, so the collections of a
long-running command such as ``serve`` or ``upload`` don't walk them again) and turns it
back on.

Only in the process of the console script (:func:`console_script_starts`): a program that
runs the CLI in-process (a test with typer's ``CliRunner``) keeps its GC as it is, and
nothing of its own is frozen.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["console_script_starts", "imports_without_gc"]

_console_script = False
"""Whether this process is the console script (set by :func:`console_script_starts`)."""


def console_script_starts() -> None:
    """Say that this process runs the ``provena-like`` console script (its ``main``).

    From then on, :func:`imports_without_gc` pauses and freezes; before, it does nothing.
    """
    global _console_script
    _console_script = True


@contextmanager
def imports_without_gc() -> Iterator[None]:
    """Run the block with the cyclic GC paused; freeze what it built; resume the GC.

    Only in the console script's process (see :func:`console_script_starts`); elsewhere
    the block runs as it is. Nested blocks resume nothing: the outermost one does. When the
    GC was already off (the caller's choice), it stays off.

    Example:
        ```python
        from provena_like.cli._startup import imports_without_gc

        with imports_without_gc():
            import json
        ```
    """
    if not _console_script or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
