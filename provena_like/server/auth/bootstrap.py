"""First-start set-up: the initial ``admin`` user and the CLI's public client."""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path

import anyio
from fastapi import FastAPI
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from provena_like._private_files import write_private_file
from provena_like.models.auth import DEVICE_CODE_GRANT
from provena_like.server.auth.admin import count_users
from provena_like.server.auth.passwords import Passwords
from provena_like.server.auth.tables import OAuthClientRow
from provena_like.server.db.base import utcnow
from provena_like.server.db.identity import UserRow
from provena_like.server.settings import ServerSettings

log = logging.getLogger(__name__)

ADMIN_USERNAME = "admin"
CLI_CLIENT_ID = "provena-like-cli"
"""The public client the ``provena-like`` CLI (and the SDK by default) signs in with."""

PASSWORD_FILE = "initial-admin.json"


@dataclass(frozen=True)
class BootstrapResult:
    """What the bootstrap did.

    Attributes:
        admin_created: the database had no users and ``admin`` was created (first start).
        password_file: where the generated admin password was written (only when generated);
            the file is deleted when the administrator first signs in.
        cli_client_created: the ``provena-like-cli`` client was registered now.
    """

    admin_created: bool
    password_file: Path | None
    cli_client_created: bool

    @property
    def first_start(self) -> bool:
        """True when this start created the initial admin."""
        return self.admin_created


def _write_password_file(path: Path, username: str, password: str) -> None:
    write_private_file(path, json.dumps({"username": username, "password": password}).encode())


async def _create_admin(
    sessions: async_sessionmaker[AsyncSession], settings: ServerSettings, passwords: Passwords
) -> tuple[bool, Path | None]:
    async with sessions() as session:
        if await count_users(session) > 0:
            return False, None
    configured = settings.initial_admin_password
    password = configured.get_secret_value() if configured else secrets.token_urlsafe(18)
    row = UserRow(
        username=ADMIN_USERNAME,
        password_hash=await passwords.hash(password),
        display_name="Administrator",
        system_roles=["admin"],
        disabled=False,
        service_account=False,
        created_at=utcnow(),
    )
    try:
        async with sessions() as session, session.begin():
            session.add(row)
    except IntegrityError:  # another process bootstrapped the same database first
        return False, None
    if configured is not None:
        log.info("created the initial admin user %r", ADMIN_USERNAME)
        return True, None
    path = settings.data_dir / PASSWORD_FILE
    await anyio.to_thread.run_sync(_write_password_file, path, ADMIN_USERNAME, password)
    log.warning(
        "created the initial admin user %r; its password is in %s until it first signs in",
        ADMIN_USERNAME,
        path,
    )
    return True, path


async def forget_initial_password(settings: ServerSettings, username: str) -> bool:
    """Delete ``initial-admin.json`` once the administrator has signed in.

    The generated password is shown once by ``provena-like serve`` and kept in the data
    directory (0600) only so that it can't be lost before it is used: the first time
    ``admin`` proves it knows its password, the file goes. Called by the sign-in pages.

    Args:
        settings: The server's settings (for the data directory).
        username: Who just signed in with a correct password.

    Returns:
        Whether the file was removed now.
    """
    if username != ADMIN_USERNAME:
        return False
    path = settings.data_dir / PASSWORD_FILE

    def remove() -> bool:
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    removed = await anyio.to_thread.run_sync(remove)
    if removed:
        log.info("the administrator has signed in: removed %s", path)
    return removed


async def _ensure_cli_client(sessions: async_sessionmaker[AsyncSession]) -> bool:
    try:
        async with sessions() as session, session.begin():
            if await session.get(OAuthClientRow, CLI_CLIENT_ID) is not None:
                return False
            session.add(
                OAuthClientRow(
                    client_id=CLI_CLIENT_ID,
                    name="provena-like CLI",
                    confidential=False,
                    secret_hash=None,
                    grant_types=[DEVICE_CODE_GRANT, "refresh_token"],
                    service_account=None,
                    created_at=utcnow(),
                )
            )
    except IntegrityError:
        return False
    return True


async def bootstrap(app: FastAPI) -> BootstrapResult:
    """Create the initial admin (when there are no users) and the CLI client (when missing).

    Safe to run on every start and from several processes at once.

    Example:
        ```python
        result = await bootstrap(app)
        if result.first_start and result.password_file:
            print(f"admin password in {result.password_file}")
        ```
    """
    settings: ServerSettings = app.state.settings
    sessions: async_sessionmaker[AsyncSession] = app.state.sessions
    admin_created, password_file = await _create_admin(sessions, settings, app.state.passwords)
    cli_created = await _ensure_cli_client(sessions)
    return BootstrapResult(admin_created, password_file, cli_created)
