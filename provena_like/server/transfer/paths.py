"""Globus paths inside a collection: normalised, and never outside the collection's root.

A Globus path names a file or directory of a collection. Every path is relative to the
collection's root, whatever it looks like: ``/``, ``~``, ``/~/`` and ``~/`` are the root,
``/data/x.bin`` and ``data/x.bin`` are ``<root>/data/x.bin``, and an absolute host path such as
``/etc/passwd`` is ``<root>/etc/passwd``. Empty segments and ``.`` are dropped
(``/a//./b/`` is ``/a/b/``); a trailing slash is kept for display, as Globus echoes it.

Refused with a 400 ``ClientError.BadRequest.InvalidPath`` (so nothing is read or written):

- a ``..`` segment (even one that would stay inside the root: paths are never "resolved"
  upwards);
- a NUL byte or a backslash;
- a segment that still decodes to a separator, ``.``/``..``, a backslash or NUL once percent
  escapes are taken off (``%2F``, ``%252F``, ``%2E%2E``, ``%5C``, ``%00``): the URL was
  already decoded once, so these are escapes smuggled in by a caller, never a real name;
- a segment longer than 255 bytes, or a path longer than 4,096 bytes (in UTF-8).

The backends add what depends on the storage: a POSIX collection resolves symlinks and
refuses one that leads outside the root (:mod:`~provena_like.server.transfer.posix`); an S3
collection maps the parts onto keys under the dataset's prefix
(:mod:`~provena_like.server.transfer.s3`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from provena_like.server.transfer.errors import TransferAPIError

__all__ = ["MAX_NAME_BYTES", "MAX_PATH_BYTES", "ResolvedPath", "invalid_path", "normalise"]

MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4096

_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def invalid_path(path: str, why: str) -> TransferAPIError:
    """The 400 ``ClientError.BadRequest.InvalidPath`` for ``path``."""
    shown = path.replace("\x00", "\\0")
    if len(shown) > 200:
        shown = shown[:200] + "..."
    return TransferAPIError(
        400, "ClientError.BadRequest.InvalidPath", f"Invalid path {shown!r}: {why}."
    )


@dataclass(frozen=True, slots=True)
class ResolvedPath:
    """A normalised path of a collection.

    Attributes:
        parts: the segments below the root (empty for the root itself).
        trailing_slash: whether the path was given with a trailing slash (or is the root).
    """

    parts: tuple[str, ...]
    trailing_slash: bool = False

    @property
    def is_root(self) -> bool:
        """Whether this is the collection's root."""
        return not self.parts

    @property
    def name(self) -> str:
        """The last segment (``""`` for the root)."""
        return self.parts[-1] if self.parts else ""

    @property
    def display(self) -> str:
        """The Globus form: ``/`` + parts joined by ``/``, the trailing slash as given."""
        if not self.parts:
            return "/"
        return "/" + "/".join(self.parts) + ("/" if self.trailing_slash else "")

    @property
    def as_dir(self) -> str:
        """The Globus form of this path as a directory: always ends with ``/`` (``ls``'s)."""
        return "/" if not self.parts else "/" + "/".join(self.parts) + "/"

    @property
    def parent(self) -> ResolvedPath:
        """The directory holding this path (the root's parent is the root)."""
        return ResolvedPath(self.parts[:-1], trailing_slash=True)

    def child(self, name: str) -> ResolvedPath:
        """The path of ``name`` inside this directory (``name`` checked like any segment)."""
        _check_segment(name, name)
        return ResolvedPath((*self.parts, name))


def _fully_unquoted(segment: str) -> str:
    value = segment
    for _ in range(8):
        decoded = unquote(value, errors="surrogateescape")
        if decoded == value:
            break
        value = decoded
    return value


def _check_segment(segment: str, path: str) -> None:
    if segment in ("", ".", ".."):
        if segment == "..":
            raise invalid_path(path, "'..' segments are not allowed")
        raise invalid_path(path, f"{segment!r} is not a name")
    if "/" in segment or "\\" in segment or "\x00" in segment:
        raise invalid_path(path, "a name may not hold '/', '\\' or NUL")
    if len(segment.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        raise invalid_path(path, f"a name may be at most {MAX_NAME_BYTES} bytes")
    if _ESCAPE.search(segment):
        decoded = _fully_unquoted(segment)
        if decoded in (".", "..") or "/" in decoded or "\\" in decoded or "\x00" in decoded:
            raise invalid_path(path, "encoded separators, dots or NUL are not allowed")


def normalise(path: str | None) -> ResolvedPath:
    """Normalise the Globus ``path`` of a request; refuse one that could leave the root.

    ``None`` or ``""`` is the root (Globus's default directory of a collection).

    Raises:
        TransferAPIError: 400 ``ClientError.BadRequest.InvalidPath``, saying why.

    Example:
        ```python
        assert normalise("/~/data//./x.bin").display == "/data/x.bin"
        assert normalise("~").is_root
        assert normalise("/etc/passwd").parts == ("etc", "passwd")
        ```
    """
    if not path:
        return ResolvedPath((), trailing_slash=True)
    if "\x00" in path:
        raise invalid_path(path, "NUL bytes are not allowed")
    if "\\" in path:
        raise invalid_path(path, "backslashes are not allowed (use '/')")
    if len(path.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise invalid_path(path, f"a path may be at most {MAX_PATH_BYTES} bytes")
    segments = path.split("/")
    if segments[0] == "~" or (segments[0] == "" and len(segments) > 1 and segments[1] == "~"):
        segments = segments[1:] if segments[0] == "~" else segments[2:]
    parts: list[str] = []
    for segment in segments:
        if segment in ("", "."):
            continue
        _check_segment(segment, path)
        parts.append(segment)
    trailing = path.endswith(("/", "/.")) or path == "~"
    return ResolvedPath(tuple(parts), trailing_slash=trailing or not parts)
