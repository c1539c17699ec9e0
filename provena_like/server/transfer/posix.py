"""A collection backed by a directory tree of the server: never leaves its root.

Every access resolves the path again (a symlink may have changed since the last call):
``os.path.realpath`` of ``<root>/<parts>`` must lie inside the root, else 403
``EndpointPermissionDenied`` (a symlink leading outside). Symlinks that stay inside are
followed, as Globus does. The resolved directories are then opened one by one from the root
with ``O_NOFOLLOW | O_DIRECTORY`` (``openat``), and the final name is used relative to that
directory (``stat``, ``mkdir``, ``rename``, ``unlink`` with ``dir_fd``; files opened with
``O_NOFOLLOW``), so a symlink swapped in after the check is refused by the kernel
(``ELOOP``/``ENOTDIR``) instead of followed.

Renaming or deleting a symlink acts on the link itself, never on what it points to. A listing
shows a symlink that leads outside the root, or nowhere, as ``invalid_symlink`` without its
target.
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import shutil
import stat as stat_mod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Literal, TypeVar

import anyio.to_thread

from provena_like.server.transfer.backend import (
    FileInfo,
    delete_failed,
    mkdir_exists,
    not_a_directory,
    path_not_found,
)
from provena_like.server.transfer.errors import TransferAPIError, permission_denied
from provena_like.server.transfer.paths import ResolvedPath, invalid_path

__all__ = ["PosixBackend"]

T = TypeVar("T")

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@lru_cache(maxsize=256)
def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@lru_cache(maxsize=256)
def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(int(st.st_mtime), tz=UTC)


def _info(name: str, st: os.stat_result, link: os.stat_result | None = None) -> FileInfo:
    is_dir = stat_mod.S_ISDIR(st.st_mode)
    return FileInfo(
        name=name,
        type="dir" if is_dir else "file",
        size=0 if is_dir else st.st_size,
        last_modified=_mtime(st),
        permissions=f"{stat_mod.S_IMODE(st.st_mode):04o}",
        user=_user(st.st_uid),
        group=_group(st.st_gid),
        link_size=link.st_size if link is not None else None,
        link_last_modified=_mtime(link) if link is not None else None,
    )


def _escape(path: ResolvedPath) -> TransferAPIError:
    return permission_denied(
        f"Path not allowed: {path.display} leads outside the collection (a symlink)."
    )


@dataclass(frozen=True)
class PosixBackend:
    """A directory tree of the server.

    Attributes:
        root: the collection's root, fully resolved (no symlinks in it).
    """

    root: Path
    kind: Literal["posix"] = "posix"

    # -- resolving -------------------------------------------------------------------------

    def _real(
        self,
        path: ResolvedPath,
        *,
        follow_last: bool = True,
        parents: dict[tuple[str, ...], str] | None = None,
    ) -> tuple[str, ...]:
        """The parts of ``path`` below the root, symlinks resolved; 403 if they lead outside.

        The last part is resolved only when ``follow_last`` (a rename or delete acts on a
        symlink itself). ``parents`` keeps the real paths of the directories resolved so
        far (many files of the same directories): a file then costs one ``lstat``, not one
        per level of its path; a symlink as the file itself is still resolved.
        """
        if path.is_root:
            return ()
        root = str(self.root)
        if follow_last and parents is None:
            target = os.path.realpath(os.path.join(root, *path.parts))
        else:
            above = path.parts[:-1]
            parent = parents.get(above) if parents is not None else None
            if parent is None:
                parent = os.path.realpath(os.path.join(root, *above))
                if parents is not None:
                    parents[above] = parent
            target = os.path.join(parent, path.parts[-1])
            if follow_last and os.path.islink(target):
                target = os.path.realpath(target)
        if target == root:
            return ()
        if not target.startswith(root.rstrip(os.sep) + os.sep):
            raise _escape(path)
        return tuple(target[len(root.rstrip(os.sep)) + 1 :].split(os.sep))

    def check(self, path: ResolvedPath) -> None:
        """403 if ``path`` leads outside the root through a symlink, as things are now."""
        self._real(path)

    def local_path(
        self,
        path: ResolvedPath,
        *,
        follow_last: bool = True,
        parents: dict[tuple[str, ...], str] | None = None,
    ) -> Path:
        """The checked local path of ``path`` (symlinks resolved, inside the root).

        For the task executor: open what it names with :meth:`open_read` /
        :meth:`open_write` (``O_NOFOLLOW``), not by this path, when it matters. ``parents``:
        an empty dict to pass again with each file of a batch (directories resolved once).
        """
        return self.root.joinpath(*self._real(path, follow_last=follow_last, parents=parents))

    @contextmanager
    def _dir_fd(self, real: tuple[str, ...]) -> Iterator[int]:
        """An fd of the directory ``<root>/<real>``, opened part by part, following no symlink."""
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for part in real:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
            yield fd
        finally:
            os.close(fd)

    def _fail(self, err: OSError, path: ResolvedPath, *, code404: str) -> TransferAPIError:
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            return path_not_found(path, code=code404)
        if err.errno == errno.ELOOP:
            return _escape(path)
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return permission_denied(f"Permission denied on {path.display}.")
        if err.errno == errno.ENAMETOOLONG:
            return invalid_path(path.display, "the name is too long for the file system")
        return TransferAPIError(
            502, "ExternalError.FileSystemError", f"{path.display}: {os.strerror(err.errno or 0)}"
        )

    async def _run(self, path: ResolvedPath, fn: Callable[[], T], *, code404: str = "") -> T:
        def guarded() -> T:
            try:
                return fn()
            except OSError as err:
                raise self._fail(err, path, code404=code404 or "ClientError.NotFound") from err

        return await anyio.to_thread.run_sync(guarded)

    # -- reading ---------------------------------------------------------------------------

    def _stat_sync(self, path: ResolvedPath) -> FileInfo:
        real = self._real(path)
        if not real:
            return _info("", os.stat(self.root))
        with self._dir_fd(real[:-1]) as fd:
            st = os.stat(real[-1], dir_fd=fd, follow_symlinks=False)
        if stat_mod.S_ISLNK(st.st_mode):  # swapped in after the check
            raise OSError(errno.ELOOP, "symlink")
        return _info(path.name, st)

    async def stat(self, path: ResolvedPath) -> FileInfo:
        """What ``path`` is (a symlink inside the root: what it points to)."""
        return await self._run(path, lambda: self._stat_sync(path), code404="NotFound")

    def _entry(self, real: tuple[str, ...], entry: os.DirEntry[str]) -> FileInfo:
        own = entry.stat(follow_symlinks=False)
        if not stat_mod.S_ISLNK(own.st_mode):
            return _info(entry.name, own)
        target = os.path.realpath(os.path.join(self.root, *real, entry.name))
        root = str(self.root)
        inside = target == root or target.startswith(root.rstrip(os.sep) + os.sep)
        try:
            pointed = os.stat(target) if inside else None
        except OSError:
            pointed = None
        if pointed is None:
            return FileInfo(
                name=entry.name,
                type="invalid_symlink",
                size=own.st_size,
                last_modified=_mtime(own),
                permissions=f"{stat_mod.S_IMODE(own.st_mode):04o}",
                user=_user(own.st_uid),
                group=_group(own.st_gid),
                link_size=own.st_size,
                link_last_modified=_mtime(own),
            )
        info = _info(entry.name, pointed, own)
        rel = target[len(root.rstrip(os.sep)) :] or "/"
        return replace(info, link_target=rel)

    def _list_sync(self, path: ResolvedPath) -> list[FileInfo]:
        real = self._real(path)
        if real:
            with self._dir_fd(real[:-1]) as parent:
                st = os.stat(real[-1], dir_fd=parent, follow_symlinks=False)
            if stat_mod.S_ISLNK(st.st_mode):
                raise OSError(errno.ELOOP, "symlink")
            if not stat_mod.S_ISDIR(st.st_mode):
                raise not_a_directory(path)
        with self._dir_fd(real) as fd, os.scandir(fd) as entries:
            found = [self._entry(real, e) for e in entries]
        return sorted(found, key=lambda f: f.name)

    async def list_dir(self, path: ResolvedPath) -> list[FileInfo]:
        """The entries of the directory ``path``, sorted by name."""
        return await self._run(path, lambda: self._list_sync(path))

    @contextmanager
    def _mapped(self, path: ResolvedPath) -> Iterator[None]:
        try:
            yield
        except OSError as err:
            raise self._fail(err, path, code404="ClientError.NotFound") from err

    def open_read(self, path: ResolvedPath) -> int:
        """A read-only fd of the file ``path`` (for the task executor, blocking; close it).

        Raises:
            TransferAPIError: 404 missing, 403 a symlink leading outside (or swapped in).
        """
        with self._mapped(path):
            real = self._real(path)
            if not real:
                raise not_a_file(path)
            with self._dir_fd(real[:-1]) as fd:
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
                return os.open(real[-1], flags, dir_fd=fd)

    def open_write(self, path: ResolvedPath, *, mode: int = 0o644) -> int:
        """A write-only fd of the file ``path``, created or truncated, never via a symlink.

        For the task executor (blocking; close it). The parent directory must exist (see
        :meth:`ensure_dir`); an existing symlink at ``path`` is refused, not followed.

        Raises:
            TransferAPIError: 404 no parent, 403 a symlink at or above ``path``.
        """
        with self._mapped(path):
            real = self._real(path, follow_last=False)
            if not real:
                raise not_a_file(path)
            with self._dir_fd(real[:-1]) as fd:
                flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
                return os.open(real[-1], flags, mode, dir_fd=fd)

    # -- writing ---------------------------------------------------------------------------

    def _mkdir_sync(self, path: ResolvedPath, *, exist_ok: bool) -> None:
        if path.is_root:
            if exist_ok:
                return
            raise mkdir_exists(path)
        real = self._real(path, follow_last=False)
        with self._dir_fd(real[:-1]) as fd:
            try:
                os.mkdir(real[-1], 0o755, dir_fd=fd)
                return
            except FileExistsError:
                if not exist_ok:
                    raise mkdir_exists(path) from None
        target = self._real(path)  # a symlink to a directory inside the root will do
        with self._dir_fd(target[:-1]) as fd:
            st = os.stat(target[-1], dir_fd=fd, follow_symlinks=False) if target else None
        if st is not None and not stat_mod.S_ISDIR(st.st_mode):
            raise mkdir_exists(path)

    async def mkdir(self, path: ResolvedPath) -> None:
        """Create the directory ``path``; its parent must exist."""
        await self._run(path, lambda: self._mkdir_sync(path, exist_ok=False))

    def ensure_dir(self, path: ResolvedPath) -> None:
        """Create ``path`` and its missing parents (for the task executor; blocking)."""
        with self._mapped(path):
            for depth in range(1, len(path.parts) + 1):
                self._mkdir_sync(ResolvedPath(path.parts[:depth]), exist_ok=True)

    def _rename_sync(self, old: ResolvedPath, new: ResolvedPath) -> None:
        if old.is_root or new.is_root:
            raise TransferAPIError(
                400, "ClientError.BadRequest", "The root of a collection can't be renamed."
            )
        src = self._real(old, follow_last=False)
        dst = self._real(new, follow_last=False)
        with self._dir_fd(src[:-1]) as sfd, self._dir_fd(dst[:-1]) as dfd:
            os.stat(src[-1], dir_fd=sfd, follow_symlinks=False)  # 404 when missing
            try:
                os.stat(dst[-1], dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                pass
            else:
                raise TransferAPIError(
                    409, "ExternalError.RenameFailed.Exists", f"Path already exists: {new.display}"
                )
            try:
                os.rename(src[-1], dst[-1], src_dir_fd=sfd, dst_dir_fd=dfd)
            except OSError as err:
                if err.errno == errno.EINVAL:
                    raise TransferAPIError(
                        400,
                        "ClientError.BadRequest",
                        f"Can't move {old.display} into itself ({new.display}).",
                    ) from err
                raise

    async def rename(self, old: ResolvedPath, new: ResolvedPath) -> None:
        """Move ``old`` to ``new`` (a symlink is moved itself)."""
        await self._run(old, lambda: self._rename_sync(old, new))

    def _delete_sync(self, path: ResolvedPath, *, recursive: bool) -> None:
        if path.is_root:
            raise delete_failed(path, "it is the collection's root", detail="IsRoot")
        real = self._real(path, follow_last=False)
        with self._dir_fd(real[:-1]) as fd:
            st = os.stat(real[-1], dir_fd=fd, follow_symlinks=False)
            if not stat_mod.S_ISDIR(st.st_mode):
                os.unlink(real[-1], dir_fd=fd)
            elif recursive:
                shutil.rmtree(real[-1], dir_fd=fd)
            else:
                try:
                    os.rmdir(real[-1], dir_fd=fd)
                except OSError as err:
                    if err.errno == errno.ENOTEMPTY:
                        raise delete_failed(
                            path, "the directory is not empty", detail="NotEmpty"
                        ) from err
                    raise

    async def delete(self, path: ResolvedPath, *, recursive: bool) -> None:
        """Delete ``path`` (a symlink: the link); a non-empty directory needs ``recursive``."""
        await self._run(path, lambda: self._delete_sync(path, recursive=recursive))


def not_a_file(path: ResolvedPath) -> TransferAPIError:
    """400: a file operation on a directory (the root)."""
    return TransferAPIError(400, "ClientError.BadRequest", f"{path.display} is not a file.")
