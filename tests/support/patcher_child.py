"""A patch run in a child process that stalls mid-stage, for the SIGKILL test.

``python -m tests.support.patcher_child BASE_URL TOKEN JOURNAL_DIR POSIX_HANDLE POSIX_ROOT
MARKER STALL_AFTER PATH...``: patches PATHs; the POSIX repository stores ``STALL_AFTER``
objects, then writes MARKER and hangs in every other ``put`` (until the parent kills it).
"""

from __future__ import annotations

import builtins
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import anyio

from provena_like import ProvenaClient
from provena_like.repositories import ObjectInfo, PosixRepository, Repository
from provena_like.storage.events import ProgressCallback


class Stalling(PosixRepository):
    """A POSIX repository whose puts hang after the first ``after`` ones."""

    def __init__(self, root: Path, *, name: str, after: int, marker: Path) -> None:
        super().__init__(root, name=name)
        self.after = after
        self.marker = marker
        self.puts = 0
        self.enough = anyio.Event()
        self.done = 0

    async def put(
        self,
        local_path: Path | str | os.PathLike[str],
        path: str,
        *,
        progress: ProgressCallback | None = None,
    ) -> ObjectInfo:
        self.puts += 1
        if self.puts > self.after:
            await self.enough.wait()  # the first ones are stored: mid-stage for sure
            self.marker.write_text(str(self.puts))
            await anyio.sleep(600)
        info = await super().put(local_path, path, progress=progress)
        self.done += 1
        if self.done >= self.after:
            self.enough.set()
        return info

    async def put_many(
        self,
        items: Iterable[tuple[Path | str | os.PathLike[str], str]],
        *,
        progress: ProgressCallback | None = None,
    ) -> builtins.list[ObjectInfo]:
        """One ``put`` per file (the contract's default), so that the stall applies."""
        return await Repository.put_many(self, items, progress=progress)


async def main(argv: list[str]) -> None:
    base_url, token, journal_dir, posix, root, marker, after, *paths = argv
    async with ProvenaClient(base_url=base_url, access_token=token) as pv:
        pv.patcher.journal_dir = Path(journal_dir)
        repo = Stalling(Path(root), name=posix, after=int(after), marker=Path(marker))
        async with repo:
            await pv.patcher.patch_files(paths, repositories={posix: repo})


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
