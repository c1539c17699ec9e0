"""One contract for every place a dataset's files live: :class:`Repository`.

A repository is a store of objects addressed by **repository-relative POSIX paths**
(``"lab/Subjects/mouse1/2024-01-31/001/alf/trials.table.pqt"``): never absolute, no ``..``,
``.`` or empty segments, no backslash and no NUL (checked by :func:`check_path` before any
I/O). Every implementation keeps the same promises:

- :meth:`Repository.put` is **atomic**: the object at a path is either absent (or the old
  one) or the complete new one, never partial. POSIX writes a temp name beside the target,
  fsyncs it and renames it with ``os.replace``; S3 sends one PUT, or a multipart upload that is
  aborted on any failure or cancellation (S3 shows an object only once it is complete).
- :meth:`Repository.get` writes to a temp file beside the target and renames it only after
  the size and sha256 check.
- :meth:`Repository.stat` answers size (and sha256 when known); with ``verify=True`` the
  sha256 is computed from the bytes read back from the store, never taken from what a
  client claimed or from metadata.
- :meth:`Repository.delete` is idempotent; :meth:`Repository.list` yields every complete
  object (temp files and unfinished uploads are never objects), so a listing can prove that
  nothing was left behind.

Implementations: :class:`~provena_like.repositories.S3Repository` (the storage engine with
scoped credentials) and :class:`~provena_like.repositories.PosixRepository` (a directory tree
on a mounted disk).

**Adding a repository** (the transfer-service seam): a repository backed by a
Globus-compatible transfer service (``kind = "globus"``) subclasses :class:`Repository` and
implements the six abstract methods on the L2 transfer client
(:class:`~provena_like.clients.transfer.TransferClient`): ``put``/``get`` submit a transfer
task from or to a local endpoint with ``sync_level="checksum"`` and wait for it (the
destination endpoint writes to a temp name and renames, which gives the atomicity promise),
``stat`` uses ``operation_ls`` for the size and the endpoint's checksum (``verify=True``
must ask the endpoint to recompute it from the stored bytes), ``delete`` submits a delete
task and waits for it (a missing path is success), and ``list`` walks ``operation_ls``.
Opening and closing the client belong in ``__aenter__``/``aclose``. The contract tests in
``tests/repositories/`` are parametrized over the implementations; a new one joins that
parametrization and must pass them unchanged.

Example:
    ```python
    from provena_like.repositories import PosixRepository

    local_file = tmp_path / "a.b.npy"
    local_file.write_bytes(b"some bytes")
    async with PosixRepository(tmp_path / "repo", name="lab-server") as repo:
        info = await repo.put(local_file, "mouse1/2024-01-31/001/alf/a.b.npy")
        assert (await repo.stat(info.path, verify=True)).sha256 == info.sha256
        assert [o.path async for o in repo.list("mouse1/")] == [info.path]
        await repo.delete(info.path)
    ```
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from provena_like._core.errors import ObjectNotFound
from provena_like._core.lifecycle import AsyncCloseable
from provena_like.models.registration import RepositoryKind
from provena_like.storage.events import ProgressCallback
from provena_like.storage.keys import validate_prefix, validate_relative_key

__all__ = [
    "ObjectInfo",
    "ObjectNotFound",
    "Repository",
    "RepositoryKind",
    "check_path",
    "check_prefix",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectInfo:
    """One object of a repository.

    Attributes:
        path: Its repository-relative POSIX path.
        size: Its size in bytes.
        sha256: Lowercase hex sha256 when known: computed from the bytes by ``put``, ``get``
            and ``stat(verify=True)``; stored metadata for a plain ``stat`` of an S3 object;
            ``None`` when nothing says it (a plain ``stat`` on POSIX, a listing).
        etag: The store's version tag, if it has one (S3's ETag, quotes stripped).
        mtime: When the object was last written, if the store said.

    Example:
        ```python
        info = ObjectInfo(path="a/b.txt", size=3, sha256=None, etag=None, mtime=None)
        assert info.size == 3
        ```
    """

    path: str
    size: int
    sha256: str | None = None
    etag: str | None = None
    mtime: datetime | None = None


def check_path(path: str) -> str:
    r"""Check a repository-relative object path (see the module docstring for the rules).

    Args:
        path: E.g. ``"mouse1/2024-01-31/001/alf/a.b.npy"``.

    Returns:
        ``path``, unchanged.

    Raises:
        UnsafePath: If the path is empty, absolute, holds ``..``/``.``/empty segments, a
            backslash, a drive letter or NUL.

    Example:
        ```python
        from provena_like import UnsafePath

        assert check_path("a/b.txt") == "a/b.txt"
        with pytest.raises(UnsafePath):
            check_path("../outside.txt")
        ```
    """
    return validate_relative_key(path)


def check_prefix(prefix: str) -> str:
    """Check a listing prefix: ``""``, a folder (``"a/"``) or the start of paths (``"a/b"``).

    Raises:
        UnsafePath: Under the rules of :func:`check_path` (an empty prefix is allowed).

    Example:
        ```python
        assert check_prefix("mouse1/") == "mouse1/"
        ```
    """
    return validate_prefix(prefix)


class Repository(AsyncCloseable):
    """Where a dataset's files live: put, get, stat, delete and list objects by path.

    Use a repository inside ``async with`` (opening may connect to a store; closing
    releases it). Paths are repository-relative POSIX strings (:func:`check_path`); an unsafe
    one raises :class:`~provena_like.UnsafePath` before any I/O.

    Attributes:
        name: A name for messages and plans (the registry's repository name, for example).
        kind: ``"s3"``, ``"posix"`` or ``"globus"``.
    """

    name: str
    kind: RepositoryKind

    async def aclose(self) -> None:
        """Release what the repository holds (idempotent); nothing by default."""

    @abstractmethod
    async def put(
        self,
        local_path: Path | str | os.PathLike[str],
        path: str,
        *,
        progress: ProgressCallback | None = None,
    ) -> ObjectInfo:
        """Store the local file at ``path``, atomically (old or complete-new, never partial).

        Args:
            local_path: The file to store.
            path: Where, relative to the repository root.
            progress: Receives :mod:`~provena_like.storage.events` (bytes sent as they go).

        Returns:
            The stored object, with the sha256 of the bytes that were sent.

        Raises:
            UnsafePath: If ``path`` is unsafe.
            TransferError: If storing failed (the object at ``path`` is unchanged), e.g.
                because the local file changed while it was read.
        """

    @abstractmethod
    async def get(
        self,
        path: str,
        local_path: Path | str | os.PathLike[str],
        *,
        sha256: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> ObjectInfo:
        """Copy the object at ``path`` to ``local_path``, checked before it appears there.

        Args:
            path: The object, relative to the repository root.
            local_path: The file to write (replaced if it exists).
            sha256: The sha256 the bytes must have (e.g. the file record's); otherwise the
                store's own record of it is checked where there is one.
            progress: Receives :mod:`~provena_like.storage.events` (bytes received).

        Returns:
            The object as read, with the sha256 of the bytes received.

        Raises:
            ObjectNotFound: If there is no object at ``path``.
            ChecksumMismatch: If the bytes don't match (``local_path`` is left untouched).
        """

    @abstractmethod
    async def stat(self, path: str, *, verify: bool = False) -> ObjectInfo | None:
        """The object at ``path``, or ``None`` if there is none.

        Args:
            path: The object, relative to the repository root.
            verify: Read the object back and compute its sha256 from the bytes read.

        Returns:
            Its size, and its sha256 when known (always with ``verify=True``).
        """

    @abstractmethod
    async def delete(self, path: str) -> None:
        """Delete the object at ``path``; a missing object is fine (idempotent).

        Raises:
            UnsafePath: If ``path`` is unsafe.
            TransferError: If the store refused or failed.
        """

    async def delete_many(self, paths: Iterable[str]) -> None:
        """Delete each object of ``paths`` (missing ones are fine); by default one by one.

        S3 deletes up to 1,000 objects per request.

        Raises:
            UnsafePath: If a path is unsafe (before anything is deleted).
            TransferError: If the store refused or failed for some object.
        """
        checked = [check_path(p) for p in paths]
        for path in checked:
            await self.delete(path)

    @abstractmethod
    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Yield every complete object whose path starts with ``prefix``, in path order.

        Temp files of writes in progress (or interrupted) and unfinished uploads are not
        objects and are never listed.

        Args:
            prefix: ``""`` for everything, ``"a/"`` for a folder, ``"a/b"`` for paths
                starting so.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r})"
