"""``TokenStore``: tokens on disk, one private file per (server, issuer, client, scopes).

A sign-in is kept per server *and* issuer: signing in at an institution's provider for one
server leaves the tokens of another issuer (or of the same issuer for another server, whose
tokens carry another audience) alone. Files written before the server was part of the key
(keyed by issuer, client and scopes only) still load; the first save under the new key moves
the sign-in over and removes the old file, so its (then rotated) refresh token is never
presented again.

The store also remembers, per server, which issuer the user last signed in at
(:meth:`TokenStore.remember_sign_in`), so that later commands use that sign-in.

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
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.lowlevel
from filelock import FileLock, Timeout

from provena_like._core.errors import AuthError
from provena_like.auth.token_set import TokenSet

if TYPE_CHECKING:
    from provena_like._core.config import ProvenaConfig

__all__ = ["SignIn", "TokenKey", "TokenStore"]

log = logging.getLogger(__name__)

_POSIX = os.name == "posix"
_FORMAT = 1

LOCK_TIMEOUT = 120.0
"""How long :meth:`TokenStore.lock` waits for another holder (a refresh takes seconds)."""

SIGN_INS_FILE = "sign-ins.json"
"""The file (in the token directory) that remembers each server's current issuer."""

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
    """What a stored token is for: a server, an issuer, a client and a set of scopes.

    ``server`` is the URL of the server's auth service the token is used with (``None``:
    any, the key of files written by earlier versions). Scopes are order-free.

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
    server: str | None = None

    @classmethod
    def of(
        cls, issuer: str, client_id: str, scopes: Iterable[str], server: str | None = None
    ) -> TokenKey:
        """Normalise the parts: no trailing slash on URLs, scopes sorted and unique."""
        return cls(
            issuer.rstrip("/"),
            client_id,
            tuple(sorted(set(scopes))),
            server.rstrip("/") if server else None,
        )

    @classmethod
    def for_config(cls, config: ProvenaConfig) -> TokenKey:
        """The key of the sign-in ``config`` uses: its auth service, issuer, client and scopes.

        Example:
            ```python
            key = TokenKey.for_config(ProvenaConfig(base_url="https://provena.example.org"))
            assert key.server == "https://provena.example.org/auth"
            ```
        """
        return cls.of(
            config.resolved_issuer,
            config.client_id,
            config.scopes,
            server=config.service_url("auth"),
        )

    @property
    def filename(self) -> str:
        """``<sha256 of (server,) issuer, client id and sorted scopes>.json``."""
        parts: list[Any] = [self.issuer, self.client_id, list(self.scopes)]
        if self.server is not None:
            parts = [self.server, *parts]
        raw = json.dumps(parts, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest() + ".json"

    @property
    def legacy(self) -> TokenKey | None:
        """The key of the same sign-in in the format without a server (``None`` if this is it)."""
        if self.server is None:
            return None
        return TokenKey(self.issuer, self.client_id, self.scopes)


@dataclass(frozen=True)
class SignIn:
    """The issuer (and client) a user last signed in at for one server.

    Attributes:
        issuer: the issuer URL.
        client_id: the client used there.
    """

    issuer: str
    client_id: str


class TokenStore:
    """Private token files in ``directory``.

    Args:
        directory: the directory to keep tokens in; created (0700) on first save.

    Example:
        ```python
        store = TokenStore(config.resolved_token_dir)
        key = TokenKey.for_config(config)
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

    async def keys(self) -> list[TokenKey]:
        """The keys of every token in the store (unreadable files are left out).

        Example:
            ```python
            for key in await store.keys():
                print(key.server, key.issuer)
            ```
        """
        return await anyio.to_thread.run_sync(self.keys_sync)

    async def sign_in_for(self, server: str) -> SignIn | None:
        """The issuer remembered for ``server`` (see :meth:`remember_sign_in`), if any.

        Example:
            ```python
            current = await store.sign_in_for("https://provena.example.org/auth")
            ```
        """
        return await anyio.to_thread.run_sync(self.sign_in_for_sync, server)

    async def remember_sign_in(self, server: str, sign_in: SignIn) -> None:
        """Remember ``sign_in`` as ``server``'s current issuer (the CLI's later commands use it).

        Example:
            ```python
            await store.remember_sign_in(server, SignIn("https://login.uni.example", "cli"))
            ```
        """
        await anyio.to_thread.run_sync(self.remember_sign_in_sync, server, sign_in)

    async def forget_sign_in(self, server: str) -> SignIn | None:
        """Forget ``server``'s current issuer; returns the one forgotten, if any.

        Example:
            ```python
            await store.forget_sign_in(server)
            ```
        """
        return await anyio.to_thread.run_sync(self.forget_sign_in_sync, server)

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
        """Blocking :meth:`load`: the file of ``key``, else that of its :attr:`~TokenKey.legacy`."""
        tokens = self._read(key)
        if tokens is None and key.legacy is not None:
            tokens = self._read(key.legacy)
            if tokens is not None:
                log.debug("using the token of %s stored without a server", key.issuer)
        return tokens

    def exists_sync(self, key: TokenKey) -> bool:
        """Whether a file holds ``key``'s token (or its legacy key's); nothing is read."""
        legacy = key.legacy
        return self.path_for(key).exists() or (
            legacy is not None and self.path_for(legacy).exists()
        )

    def _read(self, key: TokenKey) -> TokenSet | None:
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
            if _key_of(data) != key:
                raise ValueError("the file belongs to another server, issuer, client or scope set")
            return TokenSet.from_file_dict(data["token"])
        except (ValueError, KeyError, TypeError) as err:
            # Never log the content: it may hold a token.
            log.warning("ignoring unreadable token file %s: %s", path, type(err).__name__)
            return None

    def save_sync(self, key: TokenKey, tokens: TokenSet) -> Path:
        """Blocking :meth:`save`."""
        payload: dict[str, Any] = {
            "format": _FORMAT,
            "issuer": key.issuer,
            "client_id": key.client_id,
            "scopes": list(key.scopes),
            "token": tokens.to_file_dict(),
        }
        if key.server is not None:
            payload["server"] = key.server
        path = self._write_private(self.path_for(key), payload)
        if key.legacy is not None and self._unlink(self.path_for(key.legacy)):
            # Moved over: the old file's refresh token may have just been rotated, and
            # presenting it again would end the session at a provider with reuse detection.
            log.debug("moved the token of %s to the per-server store", key.issuer)
        log.debug("saved token for client %s of %s to %s", key.client_id, key.issuer, path)
        return path

    def _write_private(self, path: Path, payload: Any) -> Path:
        """Write ``payload`` as JSON to ``path`` atomically (0600, in the 0700 directory)."""
        self.ensure_directory()
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
        return path

    def delete_sync(self, key: TokenKey) -> bool:
        """Blocking :meth:`delete` (the legacy file of the same sign-in goes too)."""
        deleted = self._unlink(self.path_for(key))
        if key.legacy is not None:
            deleted = self._unlink(self.path_for(key.legacy)) or deleted
        return deleted

    def _unlink(self, path: Path) -> bool:
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        self._sync_directory()
        return True

    def keys_sync(self) -> list[TokenKey]:
        """Blocking :meth:`keys`."""
        keys: list[TokenKey] = []
        try:
            paths = sorted(self.directory.glob("*.json"))
        except OSError:
            return keys
        for path in paths:
            if path.name == SIGN_INS_FILE:
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                key = _key_of(data)
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if key.filename == path.name:
                keys.append(key)
        return keys

    def sign_in_for_sync(self, server: str) -> SignIn | None:
        """Blocking :meth:`sign_in_for`."""
        entry = self._sign_ins().get(server.rstrip("/"))
        if not isinstance(entry, dict):
            return None
        issuer, client_id = entry.get("issuer"), entry.get("client_id")
        if not isinstance(issuer, str) or not isinstance(client_id, str):
            return None
        return SignIn(issuer, client_id)

    def remember_sign_in_sync(self, server: str, sign_in: SignIn) -> None:
        """Blocking :meth:`remember_sign_in`."""
        with self._sign_ins_lock():
            servers = self._sign_ins()
            servers[server.rstrip("/")] = {
                "issuer": sign_in.issuer.rstrip("/"),
                "client_id": sign_in.client_id,
            }
            self._write_private(self.directory / SIGN_INS_FILE, {"format": 1, "servers": servers})

    def forget_sign_in_sync(self, server: str) -> SignIn | None:
        """Blocking :meth:`forget_sign_in`."""
        with self._sign_ins_lock():
            forgotten = self.sign_in_for_sync(server)
            servers = self._sign_ins()
            if servers.pop(server.rstrip("/"), None) is not None:
                self._write_private(
                    self.directory / SIGN_INS_FILE, {"format": 1, "servers": servers}
                )
            return forgotten

    def _sign_ins(self) -> dict[str, Any]:
        try:
            data = json.loads((self.directory / SIGN_INS_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            log.warning("ignoring the unreadable %s: %s", SIGN_INS_FILE, type(err).__name__)
            return {}
        servers = data.get("servers") if isinstance(data, dict) else None
        return dict(servers) if isinstance(servers, dict) else {}

    @contextlib.contextmanager
    def _sign_ins_lock(self) -> Iterator[None]:
        self.ensure_directory()
        lock = FileLock(self.directory / (SIGN_INS_FILE + ".lock"), mode=0o600)
        try:
            lock.acquire(timeout=LOCK_TIMEOUT)
        except Timeout:
            raise AuthError(f"{self.directory / SIGN_INS_FILE} stayed locked; try again") from None
        try:
            yield
        finally:
            lock.release()

    def _sync_directory(self) -> None:
        if not _POSIX:
            return
        with contextlib.suppress(OSError):
            fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def _key_of(data: Any) -> TokenKey:
    """The key a token file names in its content (``ValueError`` for an unknown format)."""
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        raise ValueError("unknown format")
    server = data.get("server")
    return TokenKey.of(data["issuer"], data["client_id"], data["scopes"], server=server)
