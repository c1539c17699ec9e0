"""Password hashing with argon2id, always off the event loop.

Hashing is deliberately slow and memory-hungry, so it runs in worker threads behind a small
limiter (a burst of logins can't exhaust memory). Verifying against a missing account still
spends the same time on a dummy hash, so response times don't reveal which usernames exist.
The cost of new hashes comes from :class:`~provena_like.server.settings.PasswordHashing`;
every hash carries its own, so hashes made at another cost still verify.
"""

from __future__ import annotations

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from provena_like.server.settings import PasswordHashing

__all__ = ["Passwords"]

_limiter = anyio.CapacityLimiter(4)


class Passwords:
    """Hashes and checks passwords at the cost of ``settings``.

    The app's is ``app.state.passwords``. Building one hashes a dummy password: build it off
    the event loop.

    Example:
        ```python
        passwords = await anyio.to_thread.run_sync(Passwords, settings.password_hashing)
        row.password_hash = await passwords.hash("correct horse battery staple")
        if not await passwords.verify(row.password_hash, form_password):
            ...  # wrong credentials
        ```
    """

    def __init__(self, settings: PasswordHashing) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.time_cost,
            memory_cost=settings.memory_kib,
            parallelism=settings.parallelism,
        )
        self._dummy_hash = self._hasher.hash("provena-like dummy password, never matches")

    async def hash(self, password: str) -> str:
        """Return the argon2id hash of ``password``."""
        return await anyio.to_thread.run_sync(self._hasher.hash, password, limiter=_limiter)

    def _verify(self, password_hash: str | None, password: str) -> bool:
        try:
            matches = self._hasher.verify(password_hash or self._dummy_hash, password)
        except (VerificationError, InvalidHashError):
            return False
        return matches and password_hash is not None

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Check ``password`` against a stored hash; ``None`` (no password set) never matches."""
        return await anyio.to_thread.run_sync(
            self._verify, password_hash, password, limiter=_limiter
        )
