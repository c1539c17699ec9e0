"""Password hashing with argon2id, always off the event loop.

Hashing is deliberately slow and memory-hungry, so it runs in worker threads behind a small
limiter (a burst of logins can't exhaust memory). Verifying against a missing account still
spends the same time on a dummy hash, so response times don't reveal which usernames exist.
"""

from __future__ import annotations

import anyio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
_limiter = anyio.CapacityLimiter(4)
_DUMMY_HASH = _hasher.hash("provena-like dummy password, never matches")


async def hash_password(password: str) -> str:
    """Return the argon2id hash of ``password``.

    Example:
        ```python
        row.password_hash = await hash_password("correct horse battery staple")
        ```
    """
    return await anyio.to_thread.run_sync(_hasher.hash, password, limiter=_limiter)


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """Check ``password`` against a stored hash; ``None`` (no password set) never matches.

    Example:
        ```python
        if not await verify_password(user.password_hash, form_password):
            ...  # wrong credentials
        ```
    """
    return await anyio.to_thread.run_sync(_verify, password_hash, password, limiter=_limiter)
