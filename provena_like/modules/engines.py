"""Open transfer engines, one per (caller, dataset, access, settings), reused across calls.

Opening a :class:`~provena_like.storage.TransferEngine` costs credentials (one request to the
datastore, unless cached), an S3 client and an ``aiohttp`` session (new connections). An
:class:`~provena_like.modules.interactive.InteractiveDataset` used to pay that on every
upload, download and sync; now its :class:`~provena_like.modules.datastore.Datastore` keeps
the engines open in an :class:`EnginePool` until the :class:`~provena_like.ProvenaClient`
closes.

Engines are keyed by the caller's identity (see
:func:`~provena_like.modules.credentials.request_identity`): an engine holds one caller's
credentials and is never handed to another. A caller whose identity can't be told gets a
fresh engine per call, closed after it. An engine is dropped (closed once idle):

- when its dataset's credentials are forgotten (a review step, a lock: see
  :meth:`~provena_like.modules.credentials.CredentialsCache.forget`), so that the next call
  asks the server again and gets its typed refusal;
- after a call that raised or left failed files (an S3 ``AccessDenied`` may mean the
  dataset's state changed elsewhere);
- when more than ``max_idle`` engines are idle (least recently used first).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio

from provena_like._core.errors import UsageError
from provena_like.models.datastore import AccessLevel
from provena_like.modules.credentials import CredentialsCache

if TYPE_CHECKING:  # built by the caller's ``make``: the S3 stack loads with the first engine
    from provena_like.storage import TransferEngine

__all__ = ["EnginePool"]

log = logging.getLogger(__name__)

Settings = tuple[object, ...]
"""The engine settings that make two engines interchangeable (hashable)."""

_Key = tuple[str, str, AccessLevel, Settings]  # (caller identity, dataset, access, settings)


@dataclass(eq=False)
class _Entry:
    engine: TransferEngine
    users: int = 0
    retired: bool = False
    last_used: float = field(default_factory=anyio.current_time)


@dataclass(eq=False)
class _Shared:
    """The engines of a pool and of every view of it (see :meth:`EnginePool.scoped`)."""

    entries: dict[_Key, _Entry] = field(default_factory=dict)
    retired: list[_Entry] = field(default_factory=list)
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    closed: bool = False


class EnginePool:
    """Hands out open engines for a dataset, opening one only when none fits.

    Args:
        cache: Where credentials come from (and who the caller is).
        max_idle: Idle engines kept open at most; older ones are closed.

    Example:
        ```python
        async with pool.engine(dataset_id, "write", settings, make) as engine:
            await engine.upload("./data")
        ```
    """

    def __init__(self, cache: CredentialsCache, *, max_idle: int = 8) -> None:
        self._cache = cache
        self._max_idle = max_idle
        self._shared = _Shared()
        self._owner = True
        cache.on_forget(self.forget)

    def scoped(self, cache: CredentialsCache) -> EnginePool:
        """This pool, for the callers of a view whose credentials come from ``cache``.

        The engines are shared (each keyed by its caller, so a view only gets its own
        caller's) and stay open after the view is done; :meth:`aclose` of the view closes
        nothing, the pool's owner closes them all.

        Example:
            ```python
            view = pv.as_user(await pv.auth_manager.get_access_token())
            cache = pv.datastore.credentials_cache.scoped(view.datastore_client)
            view_pool = pv.datastore.engines.scoped(cache)
            ```
        """
        copy = object.__new__(EnginePool)
        copy._cache = cache
        copy._max_idle = self._max_idle
        copy._shared = self._shared
        copy._owner = False
        return copy

    @property
    def _entries(self) -> dict[_Key, _Entry]:
        return self._shared.entries

    def __repr__(self) -> str:
        return f"EnginePool({len(self._entries)} open, max_idle={self._max_idle})"

    def __len__(self) -> int:
        return len(self._entries)

    @asynccontextmanager
    async def engine(
        self,
        dataset_id: str,
        access: AccessLevel,
        settings: Settings,
        make: Callable[[], TransferEngine],
    ) -> AsyncIterator[TransferEngine]:
        """An open engine for the current caller, ``dataset_id`` and ``access``.

        Args:
            dataset_id: The dataset.
            access: ``"read"`` or ``"write"``.
            settings: The settings ``make`` builds the engine with (part of the key).
            make: Builds a new (unopened) engine; its credentials must come from the cache.

        Yields:
            The engine, open; several calls may use it at once.

        Raises:
            UsageError: If the pool was closed.
        """
        if self._shared.closed:
            raise UsageError("the client was closed")
        who = await self._cache.identity()
        if who is None:  # callers can't be told apart: nothing is shared
            async with make() as engine:
                yield engine
            return
        key = (who, dataset_id, access, settings)
        entry = await self._checkout(key, make)
        failed = True
        try:
            yield entry.engine
            failed = False
        finally:
            entry.users -= 1
            entry.last_used = anyio.current_time()
            if failed:
                self._retire(key, entry)
            with anyio.CancelScope(shield=True):
                await self._close_idle()

    async def _checkout(self, key: _Key, make: Callable[[], TransferEngine]) -> _Entry:
        async with self._shared.lock:
            entry = self._entries.get(key)
            if entry is None:
                engine = make()
                await engine.__aenter__()
                entry = self._entries[key] = _Entry(engine)
                log.debug("opened a transfer engine for %s (%s)", key[1], key[2])
            entry.users += 1
            return entry

    def retire_after_failures(self, engine: TransferEngine) -> None:
        """Don't hand ``engine`` out again (e.g. a batch had failed files); close it once idle.

        Example:
            ```python
            if result.failed:
                pool.retire_after_failures(engine)
            ```
        """
        for key, entry in list(self._entries.items()):
            if entry.engine is engine:
                self._retire(key, entry)

    def _retire(self, key: _Key, entry: _Entry) -> None:
        if self._entries.get(key) is entry:
            del self._entries[key]
        if not entry.retired:
            entry.retired = True
            self._shared.retired.append(entry)

    def forget(self, dataset_id: str) -> None:
        """Stop handing out the engines of ``dataset_id`` (closed once idle).

        Example:
            ```python
            pool.forget(dataset_id)  # its state changed: ask the server again next time
            ```
        """
        for key, entry in list(self._entries.items()):
            if key[1] == dataset_id:
                self._retire(key, entry)

    async def _close_idle(self) -> None:
        idle = sorted(
            ((k, e) for k, e in self._entries.items() if e.users == 0),
            key=lambda item: item[1].last_used,
        )
        for key, entry in idle[: max(0, len(idle) - self._max_idle)]:
            self._retire(key, entry)
        shared = self._shared
        done = [entry for entry in shared.retired if entry.users == 0]
        shared.retired = [entry for entry in shared.retired if entry.users > 0]
        for entry in done:
            await entry.engine.aclose()

    async def aclose(self) -> None:
        """Close every engine (idempotent); engines in use are closed too.

        A view's pool (:meth:`scoped`) closes nothing: its owner does.

        Example:
            ```python
            await pool.aclose()
            ```
        """
        if not self._owner:
            return
        shared = self._shared
        shared.closed = True
        entries = list(shared.entries.values()) + shared.retired
        shared.entries.clear()
        shared.retired = []
        with anyio.CancelScope(shield=True):
            for entry in entries:
                await entry.engine.aclose()
