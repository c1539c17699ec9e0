"""Listing one local directory: the part of a local crawl that needs neither pydantic nor asyncio.

Both the crawl's walking thread (:meth:`~provena_like.crawler.sources.LocalSource.scan`) and its
listing processes (:mod:`provena_like.crawler.parallel`) list directories with
:func:`scan_dir`, so the rules (hidden names, include/exclude, depth, symlinks) are the same
code either way; this module imports only the standard library and small parts of ours, so a
listing process starts quickly.
"""

from __future__ import annotations

import mimetypes
import os
import posixpath
import stat as stat_module
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Literal, TypeVar

from provena_like._core.errors import UsageError

__all__ = [
    "CrawlFilter",
    "ErrorReason",
    "ListingFailed",
    "extension_of",
    "SubDirs",
    "mime_type_of",
    "reason_of",
    "scan_dir",
    "type_of",
]

ErrorReason = Literal["unreadable", "symlink_loop", "not_found", "not_a_directory", "failed"]
"""Why a directory or file could not be crawled (a :class:`CrawlError`'s ``reason``)."""

SubDirs = list[tuple[str, tuple[int, int] | None]]
"""Subdirectories to enter: ``(relative path, (device, inode) or None)``."""

F = TypeVar("F")
E = TypeVar("E")

_MIME: dict[str, str | None] = {}


def mime_type_of(extension: str) -> str | None:
    """The MIME type :mod:`mimetypes` guesses for a suffix (cached per suffix).

    Example:
        ```python
        assert mime_type_of(".csv") == "text/csv"
        ```
    """
    try:
        return _MIME[extension]
    except KeyError:
        guessed = mimetypes.guess_type("f" + extension, strict=False)[0] if extension else None
        _MIME[extension] = guessed
        return guessed


def extension_of(name: str) -> str:
    """The lower-case suffix of a file name, with its dot (``""`` for none)."""
    return posixpath.splitext(name)[1].lower()


_TYPES: dict[str, tuple[str, str | None]] = {}
_TYPES_MAX = 4096  # suffixes kept at most (many odd ones, ".0001"...: stay bounded)
_NO_TYPE: tuple[str, str | None] = ("", None)


def type_of(name: str) -> tuple[str, str | None]:
    """``(extension, MIME type)`` of a file name, looked up once per suffix.

    The same as :func:`_extension` and :func:`mime_type_of` say.
    """
    dot = name.rfind(".")
    if dot <= 0:
        return _NO_TYPE
    if name[0] == ".":  # ".bashrc", "..x": splitext skips leading dots
        ext = extension_of(name)
        return (ext, mime_type_of(ext))
    suffix = name[dot:]
    known = _TYPES.get(suffix)
    if known is None:
        if len(_TYPES) >= _TYPES_MAX:
            _TYPES.clear()
        ext = suffix.lower()
        known = _TYPES[suffix] = (ext, mime_type_of(ext))
    return known


@dataclass(frozen=True, slots=True)
class CrawlFilter:
    """Which files a crawl reports and which directories it enters.

    Args:
        max_depth: Directory levels to descend below the root (``0``: the root's files
            only; ``None``: no limit).
        include: Globs on the relative path; if any, a file must match one.
        exclude: Globs a file must match none of; a directory matching one (as ``dir`` or
            ``dir/``) is not entered.
        hidden: Report and enter names starting with a dot.

    Globs follow :func:`provena_like.storage.selection.matches`: ``*`` also matches ``/``.

    Example:
        ```python
        rules = CrawlFilter(include=("*.csv",), exclude=("tmp/*",))
        assert rules.keep_file("raw/a.csv") and not rules.keep_file("tmp/b.csv")
        assert not rules.enter_dir("tmp", 1)
        ```
    """

    max_depth: int | None = None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    hidden: bool = False

    def __post_init__(self) -> None:
        if self.max_depth is not None and self.max_depth < 0:
            raise UsageError("max_depth must not be negative")
        object.__setattr__(self, "include", tuple(self.include))
        object.__setattr__(self, "exclude", tuple(self.exclude))

    def visible(self, name: str) -> bool:
        """Whether a name passes the hidden-file rule."""
        return self.hidden or not name.startswith(".")

    def keep_file(self, relative: str) -> bool:
        """Whether a file at this relative path is reported (globs and hidden rule)."""
        if not self.hidden and any(p.startswith(".") for p in relative.split("/")):
            return False
        # imported here: a listing process without globs never needs provena_like.storage
        from provena_like.storage.selection import matches

        return matches(relative, self.include, self.exclude)

    def enter_dir(self, relative: str, depth: int) -> bool:
        """Whether to list a directory ``depth`` levels below the root (the root is 0)."""
        if self.max_depth is not None and depth > self.max_depth:
            return False
        if not self.visible(posixpath.basename(relative)):
            return False
        return not any(
            fnmatchcase(relative, p) or fnmatchcase(relative + "/", p) for p in self.exclude
        )


class ListingFailed(Exception):
    """A directory could not be listed (turned into a :class:`CrawlError` by the crawl)."""

    def __init__(self, reason: ErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason: ErrorReason = reason
        self.message = message


def reason_of(err: OSError) -> ErrorReason:
    """The :data:`ErrorReason` of an error from listing or ``stat``-ing an entry."""
    if isinstance(err, PermissionError):
        return "unreadable"
    if isinstance(err, FileNotFoundError):
        return "not_found"
    if isinstance(err, NotADirectoryError):
        return "not_a_directory"
    if err.errno == 40:  # ELOOP: too many levels of symbolic links
        return "symlink_loop"
    return "unreadable"


FileMaker = Callable[[str, os.stat_result, str, str, str | None, str | None, str | None], F]
"""``(relative path, stat, local path, extension, MIME type, sha256, md5) -> item``."""

ErrorMaker = Callable[[str, ErrorReason, str], E]
"""``(relative path, reason, message) -> item``."""


def scan_dir(
    root: str,
    relative: str,
    depth: int,
    rules: CrawlFilter,
    follow_symlinks: bool,
    sums: tuple[str, ...],
    file: FileMaker[F],
    error: ErrorMaker[E],
    dirs: SubDirs,
) -> Iterator[F | E]:
    """List one directory (blocking), one entry at a time: an item per file and per error.

    Every file is ``stat``-ed once (and hashed when ``sums`` names ``sha256``/``md5``);
    ``file`` makes its item, ``error`` the item of an entry that could not be read. The
    subdirectories to enter are appended to ``dirs``.

    Raises:
        ListingFailed: The directory cannot be listed.

    Example:
        ```python
        dirs: SubDirs = []
        names = list(scan_dir("data", "", 0, CrawlFilter(), False, (),
                              lambda rel, *_: rel, lambda rel, *_: None, dirs))
        ```
    """
    path = os.path.join(root, relative) if relative else root
    prefix = relative + "/" if relative else ""
    follow = follow_symlinks
    enter_depth = depth + 1
    hidden = rules.hidden
    globs = bool(rules.include or rules.exclude)  # the hidden rule is checked per name
    is_regular = stat_module.S_ISREG
    types = type_of
    try:
        it = os.scandir(path)
    except OSError as err:
        raise ListingFailed(reason_of(err), str(err)) from err
    with it:
        for entry in it:
            name = entry.name
            if not hidden and name[0] == ".":
                continue
            rel = prefix + name
            try:
                if entry.is_dir(follow_symlinks=follow):
                    if rules.enter_dir(rel, enter_depth):
                        st = entry.stat(follow_symlinks=True) if follow else None
                        dirs.append((rel, (st.st_dev, st.st_ino) if st else None))
                    continue
                if entry.is_symlink() and entry.is_dir(follow_symlinks=True):
                    continue  # a symlinked directory that is not followed
                if globs and not rules.keep_file(rel):
                    continue
                st = entry.stat()
            except OSError as err:
                yield error(rel, reason_of(err), str(err))
                continue
            if not is_regular(st.st_mode):
                continue  # sockets, fifos, devices: not files to crawl
            ext, mime = types(name)
            if not sums:
                yield file(rel, st, entry.path, ext, mime, None, None)
                continue
            from provena_like.extractors.basic import checksums  # only when hashing

            try:
                digests = checksums(
                    entry.path, st.st_size, sha256="sha256" in sums, md5="md5" in sums
                )
            except OSError as err:
                yield error(rel, reason_of(err), str(err))
                continue
            yield file(rel, st, entry.path, ext, mime, digests.sha256, digests.md5)
