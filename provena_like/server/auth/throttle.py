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

Password checks (argon2, a few worker slots for the whole server) are also bounded per key:
at most ``concurrent_checks_per_account`` in flight for one username and
``concurrent_checks_per_address`` for one address; more are refused (429) instead of queued.
So a flood of guesses can't fill the hashing queue in front of other people's sign-ins.

State is kept in process (:class:`LoginThrottle` on ``app.state.login_throttle``), bounded
to ``max_tracked`` keys. With several server workers, each counts on its own, so the
effective thresholds are multiplied by the number of workers; a shared store (the database
or Redis) would be needed to count across them.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from fastapi import Request

from provena_like.server.settings import ThrottleSettings

__all__ = ["Key", "LoginThrottle", "Throttled", "account_key", "address_key", "client_key"]

Key = tuple[str, str]
"""``(kind, name)``: kind ``user``, ``client`` (accounts) or ``ip`` (addresses)."""

_ADDRESS = "ip"


class Throttled(Exception):
    """An attempt refused by the throttle; answer 429 with ``Retry-After``.

    Args:
        retry_after: seconds until the key opens again (at least 1).
    """

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"too many failed attempts; retry after {self.retry_after} s")


@dataclass
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    locked_until: float = 0.0
    in_flight: int = 0


def _name(value: str) -> str:
    """Keys stay small whatever a caller sends: long names are kept as their digest."""
    if len(value) <= 128:
        return value
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


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


class LoginThrottle:
    """Failure counts, lockouts and checks in flight per key (see the module docstring).

    All methods are synchronous and called from the event loop, so each is atomic.

    Args:
        settings: the thresholds and windows.
        clock: monotonic seconds (tests may pass their own).

    Example:
        ```python
        throttle = LoginThrottle(settings.throttle)
        keys = [account_key(username), address_key(request)]
        throttle.check(keys)                    # raises Throttled when locked
        with throttle.checking(keys):           # raises Throttled when too many in flight
            ok = await passwords.verify(stored_hash, password)
        throttle.record(keys, success=ok)
        ```
    """

    def __init__(
        self, settings: ThrottleSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._records: OrderedDict[Key, _Record] = OrderedDict()

    def _keys(self, keys: Sequence[Key]) -> list[Key]:
        if self.settings.ip_failures == 0:
            return [k for k in keys if k[0] != _ADDRESS]
        return list(keys)

    def _threshold(self, key: Key) -> int:
        return self.settings.ip_failures if key[0] == _ADDRESS else self.settings.account_failures

    def _record(self, key: Key, now: float) -> _Record:
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = _Record()
            self._evict(now)
        else:
            self._records.move_to_end(key)
            if (
                record.failures
                and now - record.last_failure > self.settings.forget_after_seconds
                and now >= record.locked_until
            ):
                record.failures = 0
        return record

    def _evict(self, now: float) -> None:
        """Drop the least recently used keys beyond ``max_tracked``, never one in use.

        Open keys go first, so that a flood of new names can't easily unlock a locked one.
        """
        excess = len(self._records) - self.settings.max_tracked
        for only_open in (True, False):
            if excess <= 0:
                return
            for key, record in list(self._records.items()):
                if excess <= 0:
                    break
                if record.in_flight == 0 and (record.locked_until <= now or not only_open):
                    del self._records[key]
                    excess -= 1

    def retry_after(self, keys: Sequence[Key]) -> float:
        """Seconds until every key in ``keys`` is open again (0: none is locked)."""
        if not self.settings.enabled:
            return 0.0
        now = self._clock()
        waits = [
            record.locked_until - now
            for key in self._keys(keys)
            if (record := self._records.get(key)) is not None
        ]
        return max([0.0, *waits])

    def check(self, keys: Sequence[Key]) -> None:
        """Raise :class:`Throttled` when any of ``keys`` is locked."""
        wait = self.retry_after(keys)
        if wait > 0:
            raise Throttled(wait)

    @contextmanager
    def checking(self, keys: Sequence[Key]) -> Iterator[None]:
        """Hold a check-in-flight slot of every key for the ``with`` block.

        Raises:
            Throttled: a key is locked, or already has its limit of checks in flight.
        """
        if not self.settings.enabled:
            yield
            return
        self.check(keys)
        now = self._clock()
        records = [(key, self._record(key, now)) for key in self._keys(keys)]
        for key, record in records:
            limit = (
                self.settings.concurrent_checks_per_address
                if key[0] == _ADDRESS
                else self.settings.concurrent_checks_per_account
            )
            if record.in_flight >= limit:
                raise Throttled(1)
        for _, record in records:
            record.in_flight += 1
        try:
            yield
        finally:
            for _, record in records:
                record.in_flight -= 1

    def record(self, keys: Sequence[Key], *, success: bool) -> None:
        """Count a failed attempt against every key, or clear the accounts' counts."""
        if not self.settings.enabled:
            return
        now = self._clock()
        for key in self._keys(keys):
            if success:
                if key[0] != _ADDRESS and (record := self._records.get(key)) is not None:
                    record.failures = 0
                    record.locked_until = 0.0
                continue
            record = self._record(key, now)
            record.failures += 1
            record.last_failure = now
            over = record.failures - self._threshold(key)
            if over >= 0:
                lockout = self.settings.lockout_seconds * 2.0 ** min(over, 30)
                record.locked_until = now + min(lockout, self.settings.max_lockout_seconds)
