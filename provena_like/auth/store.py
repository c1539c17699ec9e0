"""``TokenStore``: tokens on disk, one private file per (issuer, client, scopes).

Files live in a per-user directory (never the working directory): by default
``ProvenaConfig.resolved_token_dir``. The directory is kept at mode 0700 and each file at 0600;
a write goes to a temporary file in the same directory which then replaces the old one, so a
reader sees either the old or the new token, never half of one. File I/O runs in worker
threads; the async methods never block the event loop.

:meth:`TokenStore.lock` is an exclusive lock per token, shared by every process (and every
``AuthManager``) using the directory: hold it around read-refresh-write so that two of them
never present the same refresh token (a provider with reuse detection would revoke the
session). It is an OS file lock (``flock``/``LockFileEx``, through the ``filelock``
package) on ``<token file>.lock``, so a process that dies releases it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from filelock import FileLock, Timeout

from provena_like._core.errors import AuthError
from provena_like.auth.token_set import TokenSet

__all__ = ["TokenKey", "TokenStore"]

log = logging.getLogger(__name__)

_POSIX = os.name == "posix"
_FORMAT = 1

LOCK_TIMEOUT = 120.0
"""How long :meth:`TokenStore.lock` waits for another holder (a refresh takes seconds)."""

_LOCK_ATTEMPT = 0.25
"""Each attempt to take the lock blocks a worker thread this long at most."""


def _try_acquire(lock: FileLock, timeout: float) -> bool:
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        return False
    return True


@dataclass(frozen=True)
class TokenKey:
    """What a stored token is for: an issuer, a client and a set of scopes (order-free).

    Example:
        ```python
        a = TokenKey.of("https://idp/auth", "cli", ["openid", "offline_access"])
        b = TokenKey.of("https://idp/auth/", "cli", ["offline_access", "openid"])
        assert a.filename == b.filename
        ```
    """

    issuer: str
    client_id: str
    scopes: tuple[str, ...]

    @classmethod
    def of(cls, issuer: str, client_id: str, scopes: Iterable[str]) -> TokenKey:
        """Normalise the parts: no trailing slash on the issuer, scopes sorted and unique."""
        return cls(issuer.rstrip("/"), client_id, tuple(sorted(set(scopes))))

    @property
    def filename(self) -> str:
        """``<sha256 of issuer, client id and sorted scopes>.json``."""
        raw = json.dumps([self.issuer, self.client_id, list(self.scopes)], separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest() + ".json"


class TokenStore:
    """Private token files in ``directory``.

    Args:
        directory: the directory to keep tokens in; created (0700) on first save.

    Example:
        ```python
        store = TokenStore(config.resolved_token_dir)
        key = TokenKey.of(config.resolved_issuer, config.client_id, config.scopes)
        await store.save(key, tokens)
        tokens = await store.load(key)
        ```
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory).expanduser()

    def __repr__(self) -> str:
        return f"TokenStore({str(self.directory)!r})"

    def path_for(self, key: TokenKey) -> Path:
        """The file that holds the token of ``key``."""
        return self.directory / key.filename

    def lock_path_for(self, key: TokenKey) -> Path:
        """The lock file of ``key``'s token (kept beside it; its content is meaningless)."""
        return self.directory / (key.filename + ".lock")

    # -- async API -------------------------------------------------------------------------

    async def load(self, key: TokenKey) -> TokenSet | None:
        """The stored token of ``key``, or ``None`` if there is none (or it is unreadable).

        Example:
            ```python
            tokens = await store.load(key)
            ```
        """
        return await anyio.to_thread.run_sync(self.load_sync, key)

    async def save(self, key: TokenKey, tokens: TokenSet) -> Path:
        """Write ``tokens`` for ``key`` atomically (file 0600 in a 0700 directory).

        Example:
            ```python
            path = await store.save(key, tokens)
            ```
        """
        return await anyio.to_thread.run_sync(self.save_sync, key, tokens)

    async def delete(self, key: TokenKey) -> bool:
        """Remove the token of ``key``; returns whether there was one.

        Example:
            ```python
            await store.delete(key)
            ```
        """
        return await anyio.to_thread.run_sync(self.delete_sync, key)

    @contextlib.asynccontextmanager
    async def lock(self, key: TokenKey, *, timeout: float = LOCK_TIMEOUT) -> AsyncIterator[None]:
        """Hold the exclusive, cross-process lock of ``key``'s token.

        Waiting happens in short attempts in a worker thread, so the event loop is never
        blocked and a cancelled waiter stops at the next attempt. The lock is not reentrant:
        don't take it again while holding it.

        Args:
            key: the token to lock.
            timeout: give up after this many seconds.

        Raises:
            AuthError: another holder kept the lock for longer than ``timeout``.

        Example:
            ```python
            async with store.lock(key):
                tokens = await store.load(key)   # nobody else refreshes meanwhile
                ...
                await store.save(key, new_tokens)
            ```
        """
        await anyio.to_thread.run_sync(self.ensure_directory)
        # A new FileLock (own descriptor) per holder: two holders in one process exclude
        # each other too. thread_local=False: it is taken and released in worker threads.
        lock = FileLock(self.lock_path_for(key), mode=0o600, thread_local=False)
        deadline = anyio.current_time() + timeout
        while True:
            # Shielded so that an attempt that took the lock is never lost to a cancellation.
            with anyio.CancelScope(shield=True):
                taken = await anyio.to_thread.run_sync(_try_acquire, lock, _LOCK_ATTEMPT)
            if taken:
                break
            if anyio.current_time() >= deadline:
                raise AuthError(
                    f"the token file {self.path_for(key)} stayed locked by another process "
                    f"for {timeout:.0f} s; try again"
                )
            await anyio.lowlevel.checkpoint()
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(lock.release)

    # -- blocking implementations (for threads and sync callers) --------------------------

    def ensure_directory(self) -> None:
        """Create the directory at 0700, or tighten its mode if others can read it."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if _POSIX:
            mode = stat.S_IMODE(self.directory.stat().st_mode)
            if mode & 0o077:
                log.warning(
                    "token directory %s was readable by others (mode %o); fixing it to 0700",
                    self.directory,
                    mode,
                )
                self.directory.chmod(0o700)

    def load_sync(self, key: TokenKey) -> TokenSet | None:
        """Blocking :meth:`load`."""
        path = self.path_for(key)
        try:
            if _POSIX:
                mode = stat.S_IMODE(path.stat().st_mode)
                if mode & 0o077:
                    log.warning("token file %s had mode %o; fixing it to 0600", path, mode)
                    path.chmod(0o600)
            raw = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as err:
            log.warning("cannot read token file %s: %s", path, err.strerror)
            return None
        try:
            data: Any = json.loads(raw)
            if not isinstance(data, dict) or data.get("format") != _FORMAT:
                raise ValueError("unknown format")
            if TokenKey.of(data["issuer"], data["client_id"], data["scopes"]) != key:
                raise ValueError("the file belongs to another issuer, client or scope set")
            return TokenSet.from_file_dict(data["token"])
        except (ValueError, KeyError, TypeError) as err:
            # Never log the content: it may hold a token.
            log.warning("ignoring unreadable token file %s: %s", path, type(err).__name__)
            return None

    def save_sync(self, key: TokenKey, tokens: TokenSet) -> Path:
        """Blocking :meth:`save`."""
        self.ensure_directory()
        path = self.path_for(key)
        payload = {
            "format": _FORMAT,
            "issuer": key.issuer,
            "client_id": key.client_id,
            "scopes": list(key.scopes),
            "token": tokens.to_file_dict(),
        }
        # mkstemp creates the file 0600 (O_EXCL) in the same directory: os.replace is atomic.
        fd, tmp_name = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=self.directory)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh)
                fh.flush()
                os.fsync(fh.fileno())
            if _POSIX:
                tmp.chmod(0o600)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        self._sync_directory()
        log.debug("saved token for client %s of %s to %s", key.client_id, key.issuer, path)
        return path

    def delete_sync(self, key: TokenKey) -> bool:
        """Blocking :meth:`delete`."""
        try:
            self.path_for(key).unlink()
        except FileNotFoundError:
            return False
        self._sync_directory()
        return True

    def _sync_directory(self) -> None:
        if not _POSIX:
            return
        with contextlib.suppress(OSError):
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
