"""What a collection's storage does: one interface, two implementations (POSIX and S3).

The routes (``ls``, ``stat``, ``mkdir``, ``rename``) and the task executor call a
:class:`Backend` with paths already normalised by
:func:`~provena_like.server.transfer.paths.normalise`; each backend maps them onto its
storage and refuses what would leave the collection's root. Answers are :class:`FileInfo`,
which :meth:`FileInfo.to_globus` renders as a Globus ``file`` document.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from provena_like.server.transfer.errors import TransferAPIError
from provena_like.server.transfer.paths import ResolvedPath

__all__ = [
    "Backend",
    "FileInfo",
    "FileType",
    "delete_failed",
    "globus_time",
    "mkdir_exists",
    "not_a_directory",
    "path_not_found",
]

FileType = Literal["file", "dir", "invalid_symlink"]


def globus_time(when: datetime | None) -> str | None:
    """A file time as Globus writes it: ``2021-01-15 01:45:50+00:00`` (UTC, whole seconds)."""
    if when is None:
        return None
    return when.astimezone(UTC).replace(microsecond=0).isoformat(sep=" ")


@dataclass(frozen=True, slots=True)
class FileInfo:
    """One file, directory or unusable symlink, as ``ls`` and ``stat`` show it.

    Attributes:
        name: the name in its directory (``""`` for a collection's root).
        type: ``file``, ``dir``, or ``invalid_symlink`` (a broken link, or one that leads
            outside the collection: it can't be used).
        size: bytes (0 for a directory).
        last_modified: when it last changed (None when the storage doesn't say).
        permissions: octal mode, ``"0644"``.
        user: the owning user's name, when known.
        group: the owning group's name, when known.
        link_target: for a symlink inside the collection, the Globus path it points to.
        link_size: the link's own size, for a symlink.
        link_last_modified: the link's own time, for a symlink.
    """

    name: str
    type: FileType
    size: int = 0
    last_modified: datetime | None = None
    permissions: str = "0644"
    user: str | None = None
    group: str | None = None
    link_target: str | None = None
    link_size: int | None = None
    link_last_modified: datetime | None = None

    @property
    def is_dir(self) -> bool:
        """Whether this is a directory."""
        return self.type == "dir"

    def to_globus(self) -> dict[str, Any]:
        """The Globus ``file`` document (the keys of globus-sdk's ``operation_stat``)."""
        is_link = self.link_target is not None or self.type == "invalid_symlink"
        return {
            "DATA_TYPE": "file",
            "group": self.group,
            "last_modified": globus_time(self.last_modified),
            "link_group": self.group if is_link else None,
            "link_last_modified": globus_time(self.link_last_modified),
            "link_size": self.link_size,
            "link_target": self.link_target,
            "link_user": self.user if is_link else None,
            "name": self.name,
            "permissions": self.permissions,
            "size": self.size,
            "type": self.type,
            "user": self.user,
        }


def path_not_found(path: ResolvedPath, *, code: str = "ClientError.NotFound") -> TransferAPIError:
    """404 for a path that doesn't exist (``stat`` answers with the code ``NotFound``)."""
    return TransferAPIError(404, code, f"Path not found: {path.display}")


def not_a_directory(path: ResolvedPath) -> TransferAPIError:
    """502 ``ExternalError.DirListingFailed.NotDirectory``: ``ls`` of a file."""
    return TransferAPIError(
        502, "ExternalError.DirListingFailed.NotDirectory", f"Not a directory: {path.display}"
    )


def mkdir_exists(path: ResolvedPath) -> TransferAPIError:
    """502 ``ExternalError.MkdirFailed.Exists``: ``mkdir`` of a path that exists."""
    return TransferAPIError(
        502, "ExternalError.MkdirFailed.Exists", f"Path already exists: {path.display}"
    )


def delete_failed(path: ResolvedPath, why: str, *, detail: str) -> TransferAPIError:
    """409 ``ExternalError.DeleteFailed.<detail>`` (``NotEmpty``, ``IsRoot``)."""
    return TransferAPIError(
        409, f"ExternalError.DeleteFailed.{detail}", f"Can't delete {path.display}: {why}."
    )


class Backend(Protocol):
    """The storage of a collection.

    Every method takes normalised paths; none of them reads or writes outside the root.
    """

    @property
    def kind(self) -> Literal["posix", "s3"]:
        """``posix`` (a directory tree of the server) or ``s3`` (a dataset's prefix)."""
        ...

    def check(self, path: ResolvedPath) -> None:
        """Refuse ``path`` now if the storage already shows it would leave the root."""
        ...

    async def stat(self, path: ResolvedPath) -> FileInfo:
        """What ``path`` is; 404 when it doesn't exist."""
        ...

    async def list_dir(self, path: ResolvedPath) -> list[FileInfo]:
        """The entries of the directory ``path``, by name; 404 missing, 502 for a file."""
        ...

    async def mkdir(self, path: ResolvedPath) -> None:
        """Create the directory ``path`` (its parent must exist); 502 ``Exists`` if it does."""
        ...

    async def rename(self, old: ResolvedPath, new: ResolvedPath) -> None:
        """Move ``old`` to ``new`` (which must not exist; its parent must)."""
        ...

    async def delete(self, path: ResolvedPath, *, recursive: bool) -> None:
        """Delete ``path``; a non-empty directory only when ``recursive``."""
        ...
