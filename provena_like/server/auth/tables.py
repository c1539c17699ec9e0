"""Tables of the auth service: OAuth clients, device codes, refresh tokens, sign-in failures.

Nothing secret is stored in the clear: client secrets, device codes and refresh tokens are
high-entropy random strings kept only as SHA-256 digests (a slow hash buys nothing for 256
random bits); user passwords, which are not random, are argon2 hashes on ``users``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from provena_like.server.db.base import Base, UTCDateTime, utcnow


class OAuthClientRow(Base):
    """A registered OAuth client; public clients have no secret."""

    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    confidential: Mapped[bool] = mapped_column(Boolean)
    secret_hash: Mapped[str | None] = mapped_column(String(64))
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    service_account: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeviceCodeRow(Base):
    """A device authorization request (RFC 8628) from creation until it is exchanged.

    ``status`` moves ``pending`` → ``approved`` | ``denied`` → ``used``. ``interval`` is the
    poll interval currently required for this code (it grows by 5 s on every ``slow_down``).
    """

    __tablename__ = "device_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_code: Mapped[str] = mapped_column(String(16), unique=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(1000), default="")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    username: Mapped[str | None] = mapped_column(ForeignKey("users.username", ondelete="CASCADE"))
    interval: Mapped[int] = mapped_column(Integer)
    last_polled_at: Mapped[float | None] = mapped_column(Float)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RefreshTokenRow(Base):
    """One refresh token of a rotation family.

    Each use marks the token ``used_at`` and issues a successor in the same ``family_id``;
    presenting a used token again revokes the whole family (RFC 9700 §4.14.2).
    """

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(
        ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), index=True
    )
    username: Mapped[str] = mapped_column(
        ForeignKey("users.username", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(String(1000), default="")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SignInFailureRow(Base):
    """Failed sign-ins counted against one throttle key, shared by every server process.

    See :mod:`provena_like.server.auth.throttle`. The key's name (a username, ``client_id``
    or address, as tried) is kept only as its SHA-256: the table never holds what someone
    typed into a username field. Times are seconds since the epoch.
    """

    __tablename__ = "sign_in_failures"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failure: Mapped[float] = mapped_column(Float, index=True)
    locked_until: Mapped[float] = mapped_column(Float)
