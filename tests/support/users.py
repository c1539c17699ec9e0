"""A user of the shared server, as the service tests see one: a name and a signed token."""

from __future__ import annotations

from dataclasses import dataclass

from provena_like.server.db.identity import GroupMemberRow, GroupRow, UserRow
from provena_like.testing.server_thread import ServerThread


@dataclass(frozen=True)
class User:
    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def issue_token(
    server: ServerThread,
    username: str,
    *,
    system_roles: tuple[str, ...] = (),
    groups: tuple[str, ...] = (),
    ttl: int = 600,
) -> str:
    """Create (or reuse) a user directly in ``server``'s database and sign a token for them.

    For tests of services other than auth; auth tests go through the real OAuth flows.
    """

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
