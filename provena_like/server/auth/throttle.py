"""Throttling of failed sign-ins: lockout with exponential backoff, and bounded checks in flight.

Two things are guessed at the auth service: a user's password on the device approval page and
a confidential client's secret at the token, revocation and device authorization endpoints.
Every failure counts against the *account* (the username or ``client_id`` tried, whether it
exists or not, so a lockout never tells which names exist) and against the caller's *address*.
Once a key has ``account_failures`` (or ``ip_failures``) failures, it is locked for
``lockout_seconds``, doubling with each further failure up to ``max_lockout_seconds``; a key
without a failure for ``forget_after_seconds`` starts again from zero, and a success clears
the account's count (not the address's). Attempts on a locked key are refused at once with
429 and ``Retry-After``, *before* any password is hashed, and don't count.

The counts live in the database (``sign_in_failures``, see
:class:`~provena_like.server.auth.tables.SignInFailureRow`), so every server process sharing
it counts together: with ``serve --workers N`` the thresholds hold for the server as a whole,
not per worker. A failure is one atomic ``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``
per key (the row lock on PostgreSQL, the write lock on SQLite): concurrent failures on
different workers each count. Rows whose failures are forgotten and which are not locked are
swept at most once a minute per process, and the table is trimmed back to ``max_tracked``
rows (open keys first, least recently failed first) after every tenth of that many new rows
a process adds, so a flood of distinct names or addresses can't grow it without bound. On
the sign-in path a check costs one primary-key read, a success one more (and a delete only
when the account had failures), a failure one short write transaction.

Password checks (argon2, a few worker slots per server process) are also bounded per key:
at most ``concurrent_checks_per_account`` in flight for one username and
``concurrent_checks_per_address`` for one address; more are refused (429) instead of queued.
So a flood of guesses can't fill the hashing queue in front of other people's sign-ins.
These counts of checks *in flight* guard the hashing slots of one process and so are kept in
that process; they are small and drop to nothing when the checks end.

Times compared across processes are wall-clock seconds: keep the servers' clocks in step
(NTP), as for the job runner's leases.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import Request
from sqlalchemy import ColumnElement, and_, case, delete, func, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from provena_like.server.auth.tables import SignInFailureRow
from provena_like.server.settings import ThrottleSettings

__all__ = ["Key", "LoginThrottle", "Throttled", "account_key", "address_key", "client_key"]

Key = tuple[str, str]
"""``(kind, name)``: kind ``user``, ``client`` (accounts) or ``ip`` (addresses)."""

_ADDRESS = "ip"

SWEEP_SECONDS = 60.0
"""The longest a process waits, while it counts failures, between sweeps of expired rows."""

_Row = SignInFailureRow


class Throttled(Exception):
    """An attempt refused by the throttle; answer 429 with ``Retry-After``.

    Args:
        retry_after: seconds until the key opens again (at least 1).
    """

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"too many failed attempts; retry after {self.retry_after} s")


def _name(value: str) -> str:
    """Keys stay small whatever a caller sends: long names are kept as their digest."""
    if len(value) <= 128:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def _digest(key: Key) -> str:
    """What the database keeps of a key's name: its SHA-256 (hex)."""
    return hashlib.sha256(key[1].encode("utf-8", "surrogatepass")).hexdigest()


def account_key(username: str) -> Key:
    """The throttle key of a username (existing or not)."""
    return ("user", _name(username))


def client_key(client_id: str) -> Key:
    """The throttle key of an OAuth ``client_id`` (existing or not)."""
    return ("client", _name(client_id))


def address_key(request: Request) -> Key:
    """The throttle key of the caller's address (the peer of the connection)."""
    host = request.client.host if request.client is not None else "unknown"
    return (_ADDRESS, _name(host))


def _rows(keys: Sequence[Key]) -> ColumnElement[bool]:
    """The rows of ``keys``."""
    return tuple_(_Row.kind, _Row.digest).in_([(kind, _digest((kind, n))) for kind, n in keys])


class LoginThrottle:
    """Failure counts and lockouts per key in the database, checks in flight in the process.

    See the module docstring. Every process on one database shares the counts.

    Args:
        settings: the thresholds and windows.
        engine: the server's database engine (the ``sign_in_failures`` table).
        clock: wall-clock seconds since the epoch (tests may pass their own).

    Example:
        ```python
        throttle = LoginThrottle(settings.throttle, app.state.engine)
        keys = [account_key(username), address_key(request)]
        await throttle.check(keys)                    # raises Throttled when locked
        async with throttle.checking(keys):           # ... or too many checks in flight
            ok = await passwords.verify(stored_hash, password)
        await throttle.record(keys, success=ok)
        ```
    """

    def __init__(
        self,
        settings: ThrottleSettings,
        engine: AsyncEngine,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._engine = engine
        self._clock = clock
        self._in_flight: Counter[Key] = Counter()
        self._locks: dict[Key, float] = {}
        self._swept_at = float("-inf")
        self._new_rows = 0

    def _keys(self, keys: Sequence[Key]) -> list[Key]:
        """``keys`` once each, in a fixed order (rows are locked in it).

        The address is left out when addresses aren't throttled.
        """
        wanted = {k for k in keys if k[0] != _ADDRESS or self.settings.ip_failures > 0}
        return sorted(wanted)

    def _threshold(self, key: Key) -> int:
        return self.settings.ip_failures if key[0] == _ADDRESS else self.settings.account_failures

    def _lockout(self, over: int) -> float:
        """The lockout after ``over`` failures beyond the threshold (0: the first)."""
        lockout = self.settings.lockout_seconds * 2.0 ** min(over, 30)
        return min(lockout, self.settings.max_lockout_seconds)

    def _remember(self, key: Key, until: float, now: float) -> None:
        """Note that ``key`` is locked until ``until``, for the checks of this process.

        A lock ends only by running out (a success can't happen on a locked key), so until
        then a check needn't ask the database. At most ``max_tracked`` keys are noted: when
        full, the expired go, then the oldest, down to nine tenths.
        """
        limit = self.settings.max_tracked
        if key not in self._locks and len(self._locks) >= limit:
            for known in [k for k, t in self._locks.items() if t <= now]:
                del self._locks[known]
            while len(self._locks) >= limit - limit // 10:
                del self._locks[next(iter(self._locks))]
        self._locks[key] = max(until, self._locks.get(key, 0.0))

    async def retry_after(self, keys: Sequence[Key]) -> float:
        """Seconds until the keys are open again (0: none is locked).

        A key this process knows to be locked answers at once, with its own wait; otherwise
        one read of the database tells the longest wait of them all.
        """
        wanted = self._keys(keys)
        if not self.settings.enabled or not wanted:
            return 0.0
        now = self._clock()
        known = max(self._locks.get(key, 0.0) for key in wanted)
        if known > now:
            return known - now
        by_digest = {(key[0], _digest(key)): key for key in wanted}
        query = select(_Row.kind, _Row.digest, _Row.locked_until).where(
            _rows(wanted), _Row.locked_until > now
        )
        async with self._engine.connect() as conn:
            locked = (await conn.execute(query)).all()
        for kind, digest, until in locked:
            self._remember(by_digest[(kind, digest)], until, now)
        return max([0.0, *(until - now for _, _, until in locked)])

    async def check(self, keys: Sequence[Key]) -> None:
        """Raise :class:`Throttled` when any of ``keys`` is locked."""
        wait = await self.retry_after(keys)
        if wait > 0:
            raise Throttled(wait)

    @asynccontextmanager
    async def checking(self, keys: Sequence[Key]) -> AsyncIterator[None]:
        """Hold a check-in-flight slot of every key for the ``async with`` block.

        Raises:
            Throttled: a key is locked, or already has its limit of checks in flight in
                this process.
        """
        if not self.settings.enabled:
            yield
            return
        await self.check(keys)
        wanted = self._keys(keys)
        for key in wanted:
            limit = (
                self.settings.concurrent_checks_per_address
                if key[0] == _ADDRESS
                else self.settings.concurrent_checks_per_account
            )
            if self._in_flight[key] >= limit:
                raise Throttled(1)
        self._in_flight.update(wanted)
        try:
            yield
        finally:
            self._in_flight.subtract(wanted)
            for key in wanted:
                if self._in_flight[key] <= 0:
                    del self._in_flight[key]

    async def record(self, keys: Sequence[Key], *, success: bool) -> None:
        """Count a failed attempt against every key, or clear the accounts' counts."""
        if not self.settings.enabled:
            return
        wanted = self._keys(keys)
        if success:
            await self._clear([k for k in wanted if k[0] != _ADDRESS])
            return
        now = self._clock()
        locks: list[tuple[Key, float]] = []
        async with self._engine.begin() as conn:
            for key in wanted:
                failures = await self._count(conn, key, now)
                if failures == 1:
                    self._new_rows += 1
                over = failures - self._threshold(key)
                if over >= 0:
                    until = now + self._lockout(over)
                    await conn.execute(update(_Row).where(_rows([key])).values(locked_until=until))
                    locks.append((key, until))
        for key, until in locks:  # once committed
            self._remember(key, until, now)
        if (
            now - self._swept_at >= SWEEP_SECONDS
            or self._new_rows >= self.settings.max_tracked // 10
        ):
            await self.trim()

    async def _count(self, conn: AsyncConnection, key: Key, now: float) -> int:
        """Add a failure to ``key``'s row (creating it; a forgotten count restarts at 1)."""
        values = {
            "kind": key[0],
            "digest": _digest(key),
            "failures": 1,
            "last_failure": now,
            "locked_until": 0.0,
        }
        forgotten = and_(
            _Row.last_failure < now - self.settings.forget_after_seconds,
            _Row.locked_until <= now,
        )
        counted = {
            "failures": case((forgotten, 1), else_=_Row.failures + 1),
            "last_failure": now,
        }
        stmt: Any
        if conn.dialect.name == "postgresql":
            stmt = postgresql.insert(_Row).values(**values)
        else:
            stmt = sqlite.insert(_Row).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[_Row.kind, _Row.digest], set_=counted
        ).returning(_Row.failures)
        return int((await conn.execute(stmt)).scalar_one())

    async def _clear(self, accounts: list[Key]) -> None:
        """Forget the failures of ``accounts`` (a read, and a delete only if there are any)."""
        if not accounts:
            return
        for key in accounts:
            self._locks.pop(key, None)
        async with self._engine.connect() as conn:
            found = await conn.scalar(select(_Row.kind).where(_rows(accounts)).limit(1))
        if found is not None:
            async with self._engine.begin() as conn:
                await conn.execute(delete(_Row).where(_rows(accounts)))

    async def trim(self) -> int:
        """Delete the rows that no longer matter, then the excess beyond ``max_tracked``.

        A row matters while its key is locked or its failures are not yet forgotten. The
        excess goes open keys first (so that a flood of new names can't easily unlock a
        locked one), least recently failed first. Run by :meth:`record` now and then.

        Returns:
            How many rows were deleted.
        """
        now = self._clock()
        self._swept_at = now
        self._new_rows = 0
        forget = self.settings.forget_after_seconds
        async with self._engine.begin() as conn:
            swept = await conn.execute(
                delete(_Row).where(_Row.last_failure < now - forget, _Row.locked_until <= now)
            )
            deleted = _rowcount(swept)
            rows = int(await conn.scalar(select(func.count()).select_from(_Row)) or 0)
            for only_open in (True, False):
                excess = rows - self.settings.max_tracked
                if excess <= 0:
                    break
                oldest = select(_Row.kind, _Row.digest).order_by(_Row.last_failure).limit(excess)
                if only_open:
                    oldest = oldest.where(_Row.locked_until <= now)
                result = await conn.execute(
                    delete(_Row).where(tuple_(_Row.kind, _Row.digest).in_(oldest))
                )
                rows -= _rowcount(result)
                deleted += _rowcount(result)
        return deleted


def _rowcount(result: Result[Any]) -> int:
    """The number of rows a DELETE touched."""
    return int(cast(CursorResult[Any], result).rowcount)
