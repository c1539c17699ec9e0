"""``TokenSet``: the tokens one sign-in yields, as kept in memory and in the token store."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from provena_like.models.auth import TokenResponse

__all__ = ["TokenSet"]


@dataclass(frozen=True, repr=False)
class TokenSet:
    """An access token with its refresh token and absolute expiry.

    The secrets are :class:`~pydantic.SecretStr`; ``repr`` and ``str`` never show them.

    Attributes:
        access_token: the bearer token.
        refresh_token: the refresh token, if the provider issued one.
        expires_at: when the access token expires (seconds since the epoch); ``None`` if unknown.
        scope: the granted scopes, space separated.
        token_type: the token type (``Bearer``).
        issued_at: when the token response was received (seconds since the epoch);
            ``None`` if unknown (e.g. a token stored by an older version).

    Example:
        ```python
        t = TokenSet(SecretStr("abc"), expires_at=time.time() + 300)
        assert not t.is_expiring(margin=60)
        assert not "abc" in repr(t)
        ```
    """

    access_token: SecretStr
    refresh_token: SecretStr | None = None
    expires_at: float | None = None
    scope: str | None = None
    token_type: str = "Bearer"
    issued_at: float | None = None

    @classmethod
    def from_response(
        cls,
        response: TokenResponse,
        *,
        previous_refresh: SecretStr | None = None,
        now: float | None = None,
    ) -> TokenSet:
        """Build a token set from a token endpoint response received at ``now``.

        Args:
            response: the parsed token response.
            previous_refresh: kept when the response carries no new refresh token.
            now: the time the response was received (default: now).

        Example:
            ```python
            resp = TokenResponse(access_token="a", expires_in=60)
            assert TokenSet.from_response(resp, now=1000.0).expires_at == 1060.0
            ```
        """
        received = time.time() if now is None else now
        expires = received + response.expires_in if response.expires_in is not None else None
        return cls(
            access_token=response.access_token,
            refresh_token=response.refresh_token or previous_refresh,
            expires_at=expires,
            scope=response.scope,
            token_type="Bearer" if response.token_type.lower() == "bearer" else response.token_type,
            issued_at=received,
        )

    def expires_in(self, now: float | None = None) -> float | None:
        """Seconds until the access token expires (negative once expired), or ``None``."""
        if self.expires_at is None:
            return None
        return self.expires_at - (time.time() if now is None else now)

    @property
    def lifetime(self) -> float | None:
        """How long the access token was issued for (``expires_in``), in seconds, if known.

        Example:
            ```python
            assert TokenSet(SecretStr("a"), expires_at=1030.0, issued_at=1000.0).lifetime == 30.0
            ```
        """
        if self.expires_at is None or self.issued_at is None:
            return None
        return max(self.expires_at - self.issued_at, 0.0)

    def is_expiring(self, margin: float = 0.0, now: float | None = None) -> bool:
        """Whether the token expires within ``margin`` seconds (never, if no expiry is known).

        Example:
            ```python
            assert TokenSet(SecretStr("a"), expires_at=100.0).is_expiring(margin=10, now=95.0)
            ```
        """
        left = self.expires_in(now)
        return left is not None and left <= margin

    def authorization(self) -> str:
        """The ``Authorization`` header value (handle with care: it holds the secret)."""
        return f"{self.token_type} {self.access_token.get_secret_value()}"

    def to_file_dict(self) -> dict[str, Any]:
        """The JSON-able form written to the token store; it **reveals** the secrets."""
        return {
            "access_token": self.access_token.get_secret_value(),
            "refresh_token": self.refresh_token.get_secret_value() if self.refresh_token else None,
            "expires_at": self.expires_at,
            "scope": self.scope,
            "token_type": self.token_type,
            "issued_at": self.issued_at,
        }

    @classmethod
    def from_file_dict(cls, data: dict[str, Any]) -> TokenSet:
        """Read the form written by :meth:`to_file_dict`.

        Raises:
            ValueError: the data is not a token set.
        """
        access = data.get("access_token")
        refresh = data.get("refresh_token")
        expires = data.get("expires_at")
        if not isinstance(access, str) or not access:
            raise ValueError("no access token")
        if refresh is not None and not isinstance(refresh, str):
            raise ValueError("bad refresh token")
        if expires is not None and not isinstance(expires, int | float):
            raise ValueError("bad expiry")
        issued = data.get("issued_at")
        if issued is not None and not isinstance(issued, int | float):
            raise ValueError("bad issue time")
        scope = data.get("scope")
        token_type = data.get("token_type") or "Bearer"
        return cls(
            access_token=SecretStr(access),
            refresh_token=SecretStr(refresh) if refresh else None,
            expires_at=float(expires) if expires is not None else None,
            scope=scope if isinstance(scope, str) else None,
            token_type=str(token_type),
            issued_at=float(issued) if issued is not None else None,
        )

    def __repr__(self) -> str:
        left = self.expires_in()
        expiry = "unknown" if left is None else ("expired" if left <= 0 else f"{left:.0f}s")
        refresh = "yes" if self.refresh_token else "no"
        return (
            f"TokenSet(token_type={self.token_type!r}, scope={self.scope!r}, "
            f"expires_in={expiry}, refresh_token={refresh})"
        )

    __str__ = __repr__
