"""Frozen data, enforced by the object store: a bucket policy derived from the database.

Write credentials are STS sessions: once minted they can't be revoked, and their session
policy can't change. So refusing to mint new ones when a dataset is locked or goes into
review isn't enough - credentials minted a minute before keep working until they expire.
What the store evaluates on every request is the bucket policy, so the server keeps one
``Deny`` of the write actions, for the datastore role's sessions only, on the prefix of every
dataset that is *frozen* (see :func:`~provena_like.server.datastore.policy.freeze_policy`;
the server's own admin identity is not affected).

The policy is always **rebuilt from the database** (:meth:`DataFreeze.sync`, one at a time
across the server's processes, idempotent), never edited: a dataset is in it when

- it is locked, or ``PENDING`` / ``RELEASED``, and that began less than ``window`` ago
  (the latest ``lock`` event, or the release request): older write credentials have expired
  by then (they live at most ``write_credentials_max_seconds``; ``window`` adds
  :data:`FREEZE_SLACK_SECONDS`), and no new ones are minted for a frozen dataset; or
- a step that freezes it is under way (:meth:`DataFreeze.freezing`): the prefix is put in
  the policy *before* the step's transaction commits, and the policy is rebuilt after it,
  whatever happened. A crash in between leaves at most a dataset frozen
  that shouldn't be; the startup rebuild (:meth:`DataFreeze.settle` in the app's lifespan)
  takes it out.

Unfreezing (unlock, reject, withdraw) commits first and rebuilds after, so the store is never
more permissive than the database. Only the recent freezes are listed because a bucket policy
is limited to 20 KiB (about 550 prefixes): the limit is on datasets frozen within one
``window``, not on all released ones. A freeze that would exceed it is refused (503
``too_many_frozen``) rather than left unenforced.

The window is computed from the current ``write_credentials_max_seconds``: after lowering
that setting, credentials minted under the old value may outlive the deny of a freeze that
begins within the old value's lifetime after the change.

Several server processes (``serve --workers N``, or API processes on several hosts sharing a
PostgreSQL database) take turns: a rebuild, and a freezing step from its first rebuild to its
last, hold a lock that excludes every other process's (an exclusive ``flock`` on
``freeze.lock`` in the data dir, which the workers of one server share, and on PostgreSQL a
transaction-level advisory lock too, for processes on several hosts). So a rebuild never puts
a policy read from the database before another process's freeze committed, and a step's
in-flight freeze, which only its own process knows, can't be dropped by another's rebuild
meanwhile. Every rebuild puts its document: what the store holds may have been put by another
process since.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from sqlalchemy import and_, exists, false, func, or_, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from provena_like.server import access
from provena_like.server.db.base import utcnow
from provena_like.server.errors import ServiceError
from provena_like.server.registry.tables import ItemRow, LockEventRow
from provena_like.server.security import Principal
from provena_like.server.startup import file_lock

from . import policy, storage
from .storage import ObjectStore
from .tables import DatasetRow

__all__ = ["FREEZE_SLACK_SECONDS", "DataFreeze", "freeze_guard"]

log = logging.getLogger(__name__)

FREEZE_SLACK_SECONDS = 300
"""Added to the write credentials' longest lifetime to get the freeze window: covers a
step's transaction between its timestamp and its commit, and clock differences."""

FREEZE_LOCK_FILE = "freeze.lock"
"""The lock file, in the data dir, of policy rebuilds and freezing steps."""

FREEZE_ADVISORY_LOCK = 0x70726F66
"""The PostgreSQL advisory lock key of policy rebuilds and freezing steps."""


@dataclass
class DataFreeze:
    """Keeps the bucket policy in step with the datasets whose data is frozen.

    Attributes:
        store: the object store (its bucket, and the role whose sessions are denied).
        sessions: the database session factory.
        window: how long after a freeze began its deny is kept.
        lock_file: the file whose ``flock`` the server's processes take turns on (in the
            data dir); ``None``: this process is alone on its host.
        frozen: the prefixes in the bucket policy as last put by this process.
    """

    store: ObjectStore
    sessions: async_sessionmaker[AsyncSession]
    window: timedelta
    lock_file: Path | None = None
    frozen: frozenset[str] = field(default=frozenset(), init=False)
    _lock: anyio.Lock = field(default_factory=anyio.Lock, init=False)
    _in_flight: Counter[str] = field(default_factory=Counter, init=False)

    @classmethod
    def for_store(
        cls,
        store: ObjectStore,
        sessions: async_sessionmaker[AsyncSession],
        data_dir: Path | None = None,
    ) -> DataFreeze:
        """The freeze for ``store``, with the window its settings imply.

        Args:
            store: the object store.
            sessions: the database session factory.
            data_dir: the server's data dir, shared by its processes (the lock file's home).
        """
        seconds = store.settings.write_credentials_max_seconds + FREEZE_SLACK_SECONDS
        lock_file = data_dir / FREEZE_LOCK_FILE if data_dir is not None else None
        window = timedelta(seconds=seconds)
        return cls(store=store, sessions=sessions, window=window, lock_file=lock_file)

    @asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        """Hold the turn of this process, then of the server's processes (module docstring)."""
        async with self._lock, AsyncExitStack() as stack:
            if self.lock_file is not None:
                await stack.enter_async_context(file_lock(self.lock_file))
            session = await stack.enter_async_context(self.sessions())
            if session.get_bind().dialect.name == "postgresql":
                await stack.enter_async_context(session.begin())
                lock = text("SELECT pg_advisory_xact_lock(:key)")
                await session.execute(lock, {"key": FREEZE_ADVISORY_LOCK})
            yield

    async def frozen_prefixes(self) -> set[str]:
        """The prefixes the bucket policy must deny now (see the module's docstring)."""
        in_flight = set(self._in_flight)  # before the query: a step leaves it after its commit
        cutoff = utcnow() - self.window
        locks = select(LockEventRow.id).where(
            LockEventRow.item_id == ItemRow.id, LockEventRow.action == "lock"
        )
        recent_lock = exists(locks.where(LockEventRow.time >= cutoff))
        requested = func.coalesce(DatasetRow.release_requested_at, DatasetRow.release_time)
        query = (
            select(DatasetRow.prefix)
            .join(ItemRow, ItemRow.id == DatasetRow.item_id)
            .where(
                DatasetRow.bucket == self.store.bucket,
                or_(
                    DatasetRow.item_id.in_(in_flight) if in_flight else false(),
                    and_(
                        DatasetRow.release_status != "NOT_RELEASED",
                        or_(requested.is_(None), requested >= cutoff),
                    ),
                    and_(ItemRow.locked.is_(True), or_(~exists(locks), recent_lock)),
                ),
            )
        )
        async with self.sessions() as session:
            return set(await session.scalars(query))

    async def sync(self, *, force: bool = False) -> None:
        """Rebuild the bucket policy from the database (and the steps under way) and put it.

        Waits for the turn of this process among the server's processes.

        Args:
            force: kept for callers of old; every rebuild puts its document (another
                process may have put another one since this one's last).

        Raises:
            ServiceError: 503 ``too_many_frozen`` when the policy would be too large.
            ObjectStoreError: the store refused the policy.
        """
        del force
        async with self._exclusive():
            await self._rebuild()

    async def _rebuild(self) -> None:
        """:meth:`sync`'s work, in the caller's turn."""
        prefixes = await self.frozen_prefixes()
        try:
            document = policy.freeze_policy(
                self.store.bucket, self.store.settings.role_arn, sorted(prefixes)
            )
        except policy.PolicyTooLargeError as err:
            minutes = -(-int(self.window.total_seconds()) // 60)
            raise ServiceError(
                503,
                "too_many_frozen",
                f"Too many datasets were locked or sent to review in the last {minutes} "
                f"minutes for the object store to freeze one more ({err}); retry later.",
                headers={"Retry-After": "60"},
            ) from None
        await storage.put_bucket_policy(self.store, document)
        self.frozen = frozenset(prefixes)
        log.info("bucket policy now freezes %d dataset prefixes", len(prefixes))

    async def settle(self, *, force: bool = False) -> bool:
        """:meth:`sync`, logging instead of raising; True when the policy is up to date."""
        return await self._settle(partial(self.sync, force=force))

    async def _settle(self, rebuild: Callable[[], Awaitable[None]]) -> bool:
        try:
            await rebuild()
        except (ServiceError, SQLAlchemyError) as err:
            log.warning("could not update the bucket policy of frozen datasets: %s", err)
            return False
        return True

    @asynccontextmanager
    async def freezing(self, item_id: str) -> AsyncIterator[None]:
        """Freeze ``item_id``'s data in the store for a step that may freeze it.

        Wrap the step's whole transaction: the prefix is denied before the block runs (an
        error here refuses the step), and the policy is rebuilt from the database after it,
        committed or not.
        """
        async with self._exclusive():  # the whole step: no other rebuild can drop it
            self._in_flight[item_id] += 1
            try:
                await self._rebuild()
                yield
            finally:
                self._in_flight[item_id] -= 1
                if self._in_flight[item_id] <= 0:
                    del self._in_flight[item_id]
                with anyio.CancelScope(shield=True):
                    await self._settle(self._rebuild)

    @asynccontextmanager
    async def for_lock(
        self, principal: Principal, item_id: str, *, lock: bool
    ) -> AsyncIterator[None]:
        """Around a lock (freezing) or unlock (thawing) of the registry item ``item_id``.

        Only datasets are concerned; a lock freezes only when the caller may lock it (an
        admin of an unlocked dataset), so that nobody else can freeze it even briefly.
        """
        async with self.sessions() as session:
            item = await session.get(ItemRow, item_id)
            is_dataset = item is not None and await session.get(DatasetRow, item_id) is not None
            freezes = (
                lock
                and item is not None
                and is_dataset
                and not item.locked
                and "admin" in access.roles_on(principal, item)
            )
        if not is_dataset:
            yield
            return
        async with self.freezing(item_id) if freezes else self.thawing():
            yield

    @asynccontextmanager
    async def thawing(self) -> AsyncIterator[None]:
        """For a step that may unfreeze a dataset: rebuild the policy after it, in any case."""
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await self.settle()


def freeze_guard(state: Any, item_id: str, *, freezes: bool) -> AbstractAsyncContextManager[Any]:
    """The context a step on ``item_id`` runs in: :meth:`DataFreeze.freezing` or ``thawing``.

    ``state`` is the app's state; without an object store (no ``data_freeze``) there is
    nothing to freeze and the context does nothing.
    """
    freeze: DataFreeze | None = getattr(state, "data_freeze", None)
    if freeze is None:
        return nullcontext()
    return freeze.freezing(item_id) if freezes else freeze.thawing()
