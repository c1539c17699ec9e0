"""Where a crawl runs: a local folder, a dataset's S3 prefix, or a transfer collection.

A *tree* source lists one directory at a time (:meth:`TreeSource.list_dir`); the crawl
(:func:`provena_like.crawler.walk`) walks it breadth first. A dataset is a flat list of
objects, so :class:`DatasetSource` yields its files in key order and applies the same
:class:`CrawlFilter`. Every source returns records already filtered (hidden names,
include/exclude globs, depth).
"""

from __future__ import annotations

import os
import stat as stat_module
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

import anyio.to_thread

from provena_like._core.errors import APIError, NotFound, UsageError
from provena_like.crawler.listing import (
    CrawlFilter,
    ErrorReason,
    ListingFailed,
    extension_of,
    mime_type_of,
    reason_of,
    scan_dir,
)
from provena_like.crawler.records import CrawlError, FileRecord, maker
from provena_like.storage.keys import RESERVED_KEYS

if TYPE_CHECKING:
    from provena_like.clients.transfer import LocationLike, TransferClient
    from provena_like.modules.interactive import InteractiveDataset

__all__ = [
    "CollectionSource",
    "CrawlFilter",
    "DatasetSource",
    "DirListing",
    "ListingFailed",
    "LocalSource",
    "TreeSource",
    "mime_type_of",
]

Checksum = str  # "sha256" | "md5"

T = TypeVar("T")

Finish = Callable[[FileRecord, os.stat_result, str], T]
"""What a local walk makes of each file: ``(record, its stat, its local path) -> item``.

A file found by a listing process (:mod:`provena_like.crawler.parallel`) comes with the
stat rebuilt from its ten numbers and three float times (``st_*_ns``, ``st_blocks``,
``st_blksize`` and ``st_rdev`` are then ``None``). (A plain crawl's listing processes send
only the mode, size and mtime, and its records need no stat; the runner's fast path makes
its results from those three: see :data:`~provena_like.crawler.parallel.Listed`.)
"""

FILE_FIELDS = frozenset(
    ("source", "path", "size", "mtime", "extension", "mime_type", "depth", "sha256", "md5")
)
"""The fields a local crawl sets on a :class:`FileRecord` (the others keep their default)."""
_make_file = maker(FileRecord, FILE_FIELDS)


def record_itself(record: FileRecord, st: os.stat_result, path: str) -> FileRecord:
    """The :data:`Finish` of a plain crawl: the record as it is."""
    del st, path
    return record


@dataclass(slots=True)
class DirListing:
    """One directory's contents, filtered.

    Attributes:
        files: The files to report.
        dirs: Subdirectories to enter: ``(relative path, identity)``; the identity
            (device, inode) detects symlink loops (``None`` when the source has none).
        errors: Entries that could not be read.
    """

    files: list[FileRecord] = field(default_factory=list)
    dirs: list[tuple[str, tuple[int, int] | None]] = field(default_factory=list)
    errors: list[CrawlError] = field(default_factory=list)


@runtime_checkable
class TreeSource(Protocol):
    """A source listed one directory at a time."""

    @property
    def source(self) -> str:
        """The records' ``source`` (e.g. ``local:/abs/root``)."""
        ...

    async def root_identity(self) -> tuple[int, int] | None:
        """The root directory's identity (raises :class:`ListingFailed` if it can't be read)."""
        ...

    async def list_dir(self, relative: str, depth: int, rules: CrawlFilter) -> DirListing:
        """List the directory at ``relative`` (``""``: the root), ``depth`` levels down.

        Raises:
            ListingFailed: The directory cannot be listed.
        """
        ...


class LocalSource:
    """A folder on a local (or mounted) file system, listed with :func:`os.scandir`.

    Args:
        root: The folder.
        follow_symlinks: Enter symlinked directories (a link back to a directory already
            crawled is recorded as a ``symlink_loop`` error, not followed). Symlinks to
            files are always reported as the files they point to; a broken one is an error.
        checksums: ``"sha256"`` and/or ``"md5"`` to hash every reported file (in the
            listing's worker thread or processes).
        processes: Listing processes for a big folder (``None``: one per CPU beyond the
            first, at most 3; ``0``: none). See :mod:`provena_like.crawler.parallel`.
        processes_after: Files found before they start (their start-up costs ~0.1 s of
            CPU each: a small folder is listed faster without them).

    Example:
        ```python
        from provena_like.crawler import crawl

        async for record in crawl(LocalSource(Path("data"), checksums=("sha256",))):
            print(record.path)
        ```
    """

    def __init__(
        self,
        root: Path | str,
        *,
        follow_symlinks: bool = False,
        checksums: Sequence[Checksum] = (),
        processes: int | None = None,
        processes_after: int = 5_000,
    ) -> None:
        if processes is not None and processes < 0:
            raise UsageError("processes must not be negative")
        unknown = set(checksums) - {"sha256", "md5"}
        if unknown:
            raise UsageError(f"unknown checksum(s): {', '.join(sorted(unknown))}")
        self.root = Path(root).absolute()
        self.follow_symlinks = follow_symlinks
        self.checksums = tuple(checksums)
        self.processes = processes
        self.processes_after = processes_after
        self._source = f"local:{self.root.as_posix()}"
        self._root_text = str(self.root)

    def __repr__(self) -> str:
        return f"LocalSource({str(self.root)!r})"

    @property
    def source(self) -> str:
        """``local:<absolute root>``."""
        return self._source

    def local_path(self, relative: str) -> Path:
        """The local path of a record's relative path."""
        return self.root / relative

    async def root_identity(self) -> tuple[int, int] | None:
        """The root's (device, inode)."""
        return await anyio.to_thread.run_sync(self.probe_root)

    def probe_root(self) -> tuple[int, int]:
        """The root's (device, inode), blocking.

        Raises:
            ListingFailed: The root is missing, unreadable or not a directory.
        """
        try:
            st = os.stat(self.root)
        except OSError as err:
            raise ListingFailed(reason_of(err), str(err)) from err
        if not stat_module.S_ISDIR(st.st_mode):
            raise ListingFailed("not_a_directory", f"not a directory: {self.root}")
        return (st.st_dev, st.st_ino)

    async def list_dir(self, relative: str, depth: int, rules: CrawlFilter) -> DirListing:
        """List one directory in a worker thread."""
        return await anyio.to_thread.run_sync(self._list_dir, relative, depth, rules)

    def _list_dir(self, relative: str, depth: int, rules: CrawlFilter) -> DirListing:
        out = DirListing()
        for item in self.scan(relative, depth, rules, record_itself, out.dirs):
            if isinstance(item, FileRecord):
                out.files.append(item)
            else:
                out.errors.append(item)
        return out

    def scan(
        self,
        relative: str,
        depth: int,
        rules: CrawlFilter,
        finish: Finish[T],
        dirs: list[tuple[str, tuple[int, int] | None]],
    ) -> Iterator[T | CrawlError]:
        """List one directory (blocking), one entry at a time: files and errors.

        Every file is ``stat``-ed once; ``finish`` turns its record (with that ``stat`` and
        its local path) into the item yielded: :func:`record_itself`, or e.g. a
        :class:`FileResult`. The subdirectories to enter are appended to ``dirs``, as
        ``(relative path, (device, inode) or None)``.

        Raises:
            ListingFailed: The directory cannot be listed.

        Example:
            ```python
            dirs: list[tuple[str, tuple[int, int] | None]] = []
            items = list(LocalSource("data").scan("", 0, CrawlFilter(), record_itself, dirs))
            ```
        """
        source = self._source
        make_file = _make_file
        fromtimestamp = datetime.fromtimestamp

        def file(
            rel: str,
            st: os.stat_result,
            path: str,
            ext: str,
            mime: str | None,
            sha256: str | None,
            md5: str | None,
        ) -> T:
            record = make_file(  # every value made here, of its field's type
                {
                    "kind": "file",
                    "source": source,
                    "path": rel,
                    "size": st.st_size,
                    "mtime": fromtimestamp(st.st_mtime, UTC),
                    "extension": ext,
                    "mime_type": mime,
                    "depth": depth,
                    "sha256": sha256,
                    "md5": md5,
                    "etag": None,
                }
            )
            return finish(record, st, path)

        def error(rel: str, reason: ErrorReason, message: str) -> CrawlError:
            return CrawlError(source=source, path=rel, reason=reason, message=message)

        return scan_dir(
            self._root_text,
            relative,
            depth,
            rules,
            self.follow_symlinks,
            self.checksums,
            file,
            error,
            dirs,
        )


class CollectionSource:
    """A directory on a transfer-service (Globus) collection, listed with ``ls``.

    Args:
        client: The L2 transfer client (``pv.transfer_client``, or one of real Globus).
        location: The top directory (``globus://<uuid>/path``, ``label:path``, a
            :class:`~provena_like.clients.transfer.Location`).

    Example:
        ```python
        source = CollectionSource(pv.transfer_client, "globus://6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e/")
        ```
    """

    def __init__(self, client: TransferClient, location: LocationLike) -> None:
        self.client = client
        self.top = client.locations.resolve(location)
        self._source = f"collection:{self.top.collection}{self.top.path}"

    def __repr__(self) -> str:
        return f"CollectionSource({self._source!r})"

    @property
    def source(self) -> str:
        """``collection:<uuid><path>``."""
        return self._source

    async def root_identity(self) -> tuple[int, int] | None:
        """``None``: collections have no inode identity.

        The root's listing is checked by the first :meth:`list_dir`.
        """
        return None

    async def list_dir(self, relative: str, depth: int, rules: CrawlFilter) -> DirListing:
        """One ``ls`` of the directory."""
        from provena_like.clients.transfer import Location

        base = self.top.path.rstrip("/")
        where = Location(self.top.collection, f"{base}/{relative}" if relative else base or "/")
        try:
            listing = await self.client.ls(where, show_hidden=rules.hidden)
        except NotFound as err:
            raise ListingFailed("not_found", str(err)) from err
        except APIError as err:
            code = str(getattr(err, "code", "") or "")
            reason: ErrorReason = "failed"
            if "NotDirectory" in code:
                reason = "not_a_directory"
            elif "PermissionDenied" in code or getattr(err, "status_code", 0) == 403:
                reason = "unreadable"
            raise ListingFailed(reason, str(err)) from err
        prefix = relative + "/" if relative else ""
        out = DirListing()
        for entry in listing.entries:
            rel = prefix + entry.name
            if not rules.visible(entry.name):
                continue
            if entry.is_dir:
                if rules.enter_dir(rel, depth + 1):
                    out.dirs.append((rel, None))
                continue
            if entry.type == "invalid_symlink":
                out.errors.append(
                    CrawlError(
                        source=self._source,
                        path=rel,
                        reason="not_found",
                        message=f"broken symlink to {entry.link_target}",
                    )
                )
                continue
            if not rules.keep_file(rel):
                continue
            out.files.append(listed_file(self._source, rel, entry, depth))
        return out


class ListedEntry(Protocol):
    """A file of a directory listing (Globus ``ls`` entries, the server's backends)."""

    @property
    def name(self) -> str: ...
    @property
    def size(self) -> int | None: ...
    @property
    def last_modified(self) -> datetime | None: ...


def listed_file(
    source: str, path: str, entry: ListedEntry, depth: int, *, sha256: str | None = None
) -> FileRecord:
    """The :class:`FileRecord` of a file found in a directory listing.

    A naive ``last_modified`` is read as UTC, as Globus listings give it.
    """
    extension = extension_of(entry.name)
    mtime = entry.last_modified
    if mtime is not None and mtime.tzinfo is None:
        mtime = mtime.replace(tzinfo=UTC)
    return FileRecord(
        source=source,
        path=path,
        size=entry.size,
        mtime=mtime,
        extension=extension,
        mime_type=mime_type_of(extension),
        depth=depth,
        sha256=sha256,
    )


class DatasetSource:
    """A dataset's objects in S3 (or a folder of them), listed with scoped read credentials.

    S3 has no directories: the objects come in key order, one listing page at a time, and
    the depth of a file is the number of ``/`` in its path below the prefix. The
    datastore's own objects at the dataset root (``metadata.json``) are left out.

    Args:
        dataset: The dataset (``await pv.datastore.interactive(handle)``).
        prefix: A folder inside the dataset (``"raw/"``), ``""`` for all of it.

    Example:
        ```python
        from provena_like.crawler import crawl

        ds = await pv.datastore.interactive(dataset_id)
        async for record in crawl(DatasetSource(ds)):
            print(record.path, record.etag)
        ```
    """

    def __init__(self, dataset: InteractiveDataset, prefix: str = "") -> None:
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        self.dataset = dataset
        self.prefix = prefix
        self._source = f"dataset:{dataset.id}" + (f"/{prefix}" if prefix else "")

    def __repr__(self) -> str:
        return f"DatasetSource({self._source!r})"

    @property
    def source(self) -> str:
        """``dataset:<handle>`` (plus ``/<prefix>``)."""
        return self._source

    async def iter_files(self, rules: CrawlFilter) -> AsyncIterator[FileRecord]:
        """Every object below the prefix that passes ``rules``, in key order."""
        cut = len(self.prefix)
        async for obj in self.dataset.iter_objects(self.prefix):
            rel = obj.key[cut:]
            if not rel or rel.endswith("/") or obj.key in RESERVED_KEYS:
                continue  # a "folder" marker object, or the datastore's own metadata.json
            depth = rel.count("/")
            if rules.max_depth is not None and depth > rules.max_depth:
                continue
            if not rules.keep_file(rel) or _excluded_dir(rel, rules):
                continue
            ext = extension_of(rel.rpartition("/")[2])
            yield FileRecord(
                source=self._source,
                path=rel,
                size=obj.size,
                mtime=obj.last_modified,
                extension=ext,
                mime_type=mime_type_of(ext),
                depth=depth,
                etag=obj.etag,
            )


def _excluded_dir(relative: str, rules: CrawlFilter) -> bool:
    """Whether a parent folder of ``relative`` is excluded (as a tree crawl would prune it)."""
    parts = relative.split("/")[:-1]
    return any(not rules.enter_dir("/".join(parts[: i + 1]), i + 1) for i in range(len(parts)))
