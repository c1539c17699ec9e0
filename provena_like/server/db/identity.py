"""Tables for identities: users, groups and memberships (used by auth and access checks)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from provena_like.server.db.base import Base, UTCDateTime, utcnow


class UserRow(Base):
    """A user account. ``username`` is the stable id and the token ``sub``."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    system_roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    service_account: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GroupRow(Base):
    """A named group of users."""

    __tablename__ = "groups"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    description: Mapped[str] = mapped_column(String(2000), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class GroupMemberRow(Base):
    """Membership of a user in a group."""

    __tablename__ = "group_members"

    group_name: Mapped[str] = mapped_column(
        ForeignKey("groups.name", ondelete="CASCADE"), primary_key=True
    )
    username: Mapped[str] = mapped_column(
        ForeignKey("users.username", ondelete="CASCADE"), primary_key=True, index=True
    )


class ExternalIdentityRow(Base):
    """The link of a subject at a trusted issuer to one user of this server.

    The (issuer, subject) pair is the stable key: a user renamed at the provider stays the
    same user here, and the same subject at two issuers is two users.
    """

    __tablename__ = "external_identities"

    issuer: Mapped[str] = mapped_column(String(512), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    username: Mapped[str] = mapped_column(
        ForeignKey("users.username", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
