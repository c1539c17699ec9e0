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
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["imports_without_gc"]


@contextmanager
def imports_without_gc() -> Iterator[None]:
    """Run the block with the cyclic GC paused; freeze what it built; resume the GC.

    Nested blocks resume nothing: the outermost one does. When the GC was already off
    (the caller's choice), it stays off.

    Example:
        ```python
        from provena_like.cli._startup import imports_without_gc

        with imports_without_gc():
            import json
        ```
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()
