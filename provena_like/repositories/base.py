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
scoped credentials), :class:`~provena_like.repositories.PosixRepository` (a directory tree
on a mounted disk) and :class:`~provena_like.repositories.TransferRepository` (a directory on
a Globus collection, through the transfer service).

**Batches**: :meth:`Repository.put_many`, :meth:`Repository.stat_many` and
:meth:`Repository.delete_many` store, look at or delete many objects; the base class calls
``put``/``stat``/``delete`` once per file, and an implementation that does better overrides
them (:class:`~provena_like.repositories.TransferRepository` sends one task for all).

**Adding a repository**: subclass :class:`Repository`, implement the six abstract methods
keeping the promises above (opening and closing what it holds belong in
``__aenter__``/``aclose``), give it a ``kind``, and join the parametrization of the contract
tests in ``tests/repositories/``: they must pass unchanged.
:class:`~provena_like.repositories.TransferRepository` is the worked example of a store that
moves bytes by tasks (``put``/``get`` through a local endpoint, ``stat(verify=True)`` by a
checksum-verified read-back).

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

import builtins
import os
from abc import abstractmethod
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from provena_like._core.errors import ObjectNotFound, UsageError
from provena_like._core.lifecycle import AsyncCloseable
from provena_like.models.registration import RepositoryKind
from provena_like.storage.events import ProgressCallback
from provena_like.storage.hashing import Digests
from provena_like.storage.keys import validate_prefix, validate_relative_key

__all__ = [
    "ObjectInfo",
    "ObjectNotFound",
    "Repository",
    "RepositoryKind",
    "check_path",
    "check_prefix",
    "paired_digests",
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

    async def put_many(
        self,
        items: Iterable[tuple[Path | str | os.PathLike[str], str]],
        *,
        progress: ProgressCallback | None = None,
    ) -> builtins.list[ObjectInfo]:
        """Store many local files: ``(local file, path)`` pairs, each object atomically.

        The default calls :meth:`put` for one file after the other and stops at the first
        error (the objects stored before it stay); a store that moves many files at once
        better (one Globus task for all) overrides it.

        Args:
            items: ``(local file, repository path)`` pairs.
            progress: Receives the events of each file's :meth:`put`.

        Returns:
            The stored objects, in the order of ``items``.

        Raises:
            UnsafePath: If a path is unsafe (checked for all before anything is stored).
            TransferError: As :meth:`put`.

        Example:
            ```python
            from provena_like.repositories import PosixRepository

            (tmp_path / "a.txt").write_text("a")
            (tmp_path / "b.txt").write_text("b")
            pairs = [(tmp_path / "a.txt", "s/a.txt"), (tmp_path / "b.txt", "s/b.txt")]
            async with PosixRepository(tmp_path / "repo") as repo:
                infos = await repo.put_many(pairs)
                assert [i.size for i in infos] == [1, 1]
            ```
        """
        pairs = [(local, check_path(path)) for local, path in items]
        return [await self.put(local, path, progress=progress) for local, path in pairs]

    async def delete_many(self, paths: Iterable[str]) -> None:
        """Delete many objects (missing ones are fine).

        The default calls :meth:`delete` for one path after the other; a store that deletes
        many at once better overrides it (S3: up to 1,000 objects per request; Globus: one
        delete task).

        Raises:
            UnsafePath: If a path is unsafe (checked for all before anything is deleted).
            TransferError: As :meth:`delete`.

        Example:
            ```python
            from provena_like.repositories import PosixRepository

            async with PosixRepository(tmp_path / "repo") as repo:
                await repo.delete_many(["s/a.txt", "s/b.txt"])
            ```
        """
        for path in [check_path(path) for path in paths]:
            await self.delete(path)

    @abstractmethod
    async def stat(self, path: str, *, verify: bool = False) -> ObjectInfo | None:
        """The object at ``path``, or ``None`` if there is none.

        Args:
            path: The object, relative to the repository root.
            verify: Read the object back and compute its sha256 from the bytes read.

        Returns:
            Its size, and its sha256 when known (always with ``verify=True``).
        """

    async def stat_many(
        self, paths: Iterable[str], *, verify: bool = False
    ) -> builtins.list[ObjectInfo | None]:
        """The objects at many paths, as :meth:`stat` says each (``None``: no object there).

        The default calls :meth:`stat` for one path after the other; a store that looks at
        many objects at once better overrides it (POSIX: several files to a worker-thread
        hop; S3: requests side by side). The first error is raised.

        Args:
            paths: The objects, relative to the repository root.
            verify: Read each object back and compute its sha256 from the bytes read.

        Returns:
            One answer per path, in the order of ``paths``.

        Raises:
            UnsafePath: If a path is unsafe (checked for all before anything is read).

        Example:
            ```python
            from provena_like.repositories import PosixRepository

            (tmp_path / "a.txt").write_text("a")
            async with PosixRepository(tmp_path / "repo") as repo:
                await repo.put(tmp_path / "a.txt", "s/a.txt")
                found = await repo.stat_many(["s/a.txt", "s/b.txt"], verify=True)
                assert [i is not None for i in found] == [True, False]
            ```
        """
        checked = [check_path(path) for path in paths]
        return [await self.stat(path, verify=verify) for path in checked]

    async def confirm_many(
        self, paths: Iterable[str], expected: Iterable[Digests]
    ) -> builtins.list[ObjectInfo | None]:
        """Whether each object holds the bytes ``expected`` describes, as the store itself says.

        Each answer is ``None`` (no object there) or what the object is: its size and the
        sha256 of the bytes the store holds. The default reads every object back and hashes
        it (:meth:`stat_many` with ``verify=True``). A store that computes a digest of the
        bytes it received may answer from that instead: S3 compares a single-part object's
        ETag, the md5 the store computed over the bytes, with ``expected.md5`` (see
        :meth:`~provena_like.repositories.S3Repository.confirm_many`); what it can't confirm
        so, it reads back.

        Args:
            paths: The objects, relative to the repository root.
            expected: For each path, the size, sha256 and (optionally) md5 of the bytes that
                should be there (e.g. the local file's :func:`~provena_like.storage.hash_file`).

        Returns:
            One answer per path, in the order of ``paths``; its ``sha256`` equals
            ``expected.sha256`` only if the store holds those bytes.

        Raises:
            UnsafePath: If a path is unsafe (checked for all before anything is read).
            UsageError: If ``paths`` and ``expected`` differ in length.

        Example:
            ```python
            from provena_like.repositories import PosixRepository
            from provena_like.storage import hash_file

            (tmp_path / "a.txt").write_text("a")
            async with PosixRepository(tmp_path / "repo") as repo:
                await repo.put(tmp_path / "a.txt", "s/a.txt")
                wanted = hash_file(tmp_path / "a.txt", md5=True)
                (info,) = await repo.confirm_many(["s/a.txt"], [wanted])
                assert info is not None and info.sha256 == wanted.sha256
            ```
        """
        checked = [check_path(path) for path in paths]
        paired_digests(checked, expected)
        return await self.stat_many(checked, verify=True)

    @abstractmethod
    async def delete(self, path: str) -> None:
        """Delete the object at ``path``; a missing object is fine (idempotent).

        Raises:
            UnsafePath: If ``path`` is unsafe.
            TransferError: If the store refused or failed.
        """

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


def paired_digests(
    paths: builtins.list[str], expected: Iterable[Digests]
) -> builtins.list[Digests]:
    """``expected`` as a list as long as ``paths``, or a :class:`UsageError`."""
    wanted = builtins.list(expected)
    if len(wanted) != len(paths):
        raise UsageError(f"confirm_many: {len(paths)} paths but {len(wanted)} expected digests")
    return wanted
