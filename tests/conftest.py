"""Shared fixtures: a real reference server on loopback for the whole session."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from provena_like.server.app import create_app
from provena_like.server.db.identity import GroupMemberRow, GroupRow, UserRow
from provena_like.server.settings import ServerSettings
from provena_like.testing.server_thread import ServerThread, bind_socket

ADMIN_PASSWORD = "admin-password-for-tests"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """The reference server (auth + registry) in a temporary data dir."""
    data_dir: Path = tmp_path_factory.mktemp("server")
    sock = bind_socket()  # the port is known before the app: discovery URLs must be right
    host, port = sock.getsockname()[:2]
    settings = ServerSettings(
        data_dir=data_dir,
        public_url=f"http://{host}:{port}",
        initial_admin_password=ADMIN_PASSWORD,  # type: ignore[arg-type]
        device_poll_interval=0,
    )
    srv = ServerThread(create_app(settings), sock=sock)
    srv.settings = settings  # type: ignore[attr-defined]
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def make_token(server: ServerThread) -> Callable[..., str]:
    """Create (or reuse) a user directly in the server's database and sign a token for them.

    For tests of services other than auth; auth tests go through the real OAuth flows.
    """

    def make(
        username: str,
        *,
        system_roles: tuple[str, ...] = (),
        groups: tuple[str, ...] = (),
        ttl: int = 600,
    ) -> str:
        async def work() -> str:
            sessions = server.app.state.sessions
            async with sessions() as session, session.begin():
                if await session.get(UserRow, username) is None:
                    session.add(UserRow(username=username, system_roles=list(system_roles)))
                    await session.flush()
                for g in groups:
                    if await session.get(GroupRow, g) is None:
                        session.add(GroupRow(name=g))
                        await session.flush()
                    if await session.get(GroupMemberRow, (g, username)) is None:
                        session.add(GroupMemberRow(group_name=g, username=username))
            tokens = server.app.state.tokens
            token: str = tokens.issue_access_token(
                subject=username, client_id="tests", scope="openid", ttl=ttl
            )
            return token

        return server.call(work)

    return make
