"""``AuthClient``: the L2 client of the auth service's JSON API.

``list_trusted_issuers`` needs no sign-in; ``userinfo`` works for any signed-in caller;
users, groups and OAuth clients are for system administrators. Getting tokens (discovery,
device flow, refresh) is L1's job (:mod:`provena_like.auth`), not this client's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter

from provena_like._core.http import HTTPCore
from provena_like._core.pagination import AsyncPaginator
from provena_like._core.sentinels import NOT_GIVEN, NotGiven
from provena_like.clients._base import ServiceClient
from provena_like.clients._encoding import encode_body, path_segment
from provena_like.models.auth import (
    Group,
    GroupCreate,
    GroupMember,
    OAuthClient,
    OAuthClientCreate,
    OAuthClientCreated,
    TrustedIssuers,
    User,
    UserCreate,
    UserInfo,
    UserUpdate,
)
from provena_like.models.shared import Page

__all__ = ["AuthClient"]

_GROUPS = TypeAdapter(list[Group])


class AuthClient(ServiceClient):
    """Typed calls to the auth service (``/issuers``, ``/userinfo``, users, groups, clients).

    Args:
        core: the shared HTTP core (normally ``ProvenaClient.auth`` builds this).

    Example:
        ```python
        async with ProvenaClient.from_env() as pv:
            me = await pv.auth_client.userinfo()
        ```
    """

    _service = "auth"

    def __init__(self, core: HTTPCore) -> None:
        super().__init__(core)
        self._users = self._list_route("/users", Page[User])
        self._groups = self._list_route("/groups", Page[Group])
        self._clients = self._list_route("/clients", Page[OAuthClient])

    async def userinfo(self) -> UserInfo:
        """Who the current token belongs to (``GET /userinfo``).

        Example:
            ```python
            me = await pv.auth_client.userinfo()
            me.preferred_username, me.groups
            ```
        """
        return await self._core.request("GET", "auth", "/userinfo", cast_to=UserInfo)

    async def list_trusted_issuers(self) -> TrustedIssuers:
        """Where users may sign in for this server (``GET /issuers``; no sign-in needed).

        The server's own issuer (``embedded``, unless it is turned off) and the institutions'
        OpenID providers it trusts, with their short names and the public client a CLI signs
        in with there.

        Example:
            ```python
            trusted = await pv.auth_client.list_trusted_issuers()
            [(t.name, t.issuer) for t in trusted.issuers], trusted.embedded
            ```
        """
        return await self._core.request(
            "GET", "auth", "/issuers", anonymous=True, cast_to=TrustedIssuers
        )

    # -- users ---------------------------------------------------------------------------

    async def create_user(
        self,
        user: UserCreate | Mapping[str, Any],
        *,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> User:
        """Create a user account (``POST /users``, admins only).

        Args:
            user: username, password and optional profile and system roles.
            idempotency_key: replays the first result for a repeated key; left out, a fresh
                key protects this call's own retries; ``None`` sends none.

        Raises:
            Forbidden: the caller is not an administrator.
            Conflict: the username is taken.

        Example:
            ```python
            body = {"username": "alice", "password": "s3cret-pw"}
            alice = await pv.auth_client.create_user(body)
            ```
        """
        return await self._core.request(
            "POST",
            "auth",
            "/users",
            json=encode_body(UserCreate, user, "user"),
            idempotency_key=idempotency_key,
            cast_to=User,
            expected=(200, 201),
        )

    async def get_user(self, username: str) -> User:
        """One user account (``GET /users/{username}``).

        Example:
            ```python
            alice = await pv.auth_client.get_user("alice")
            ```
        """
        path = "/users/" + path_segment(username, "username")
        return await self._core.request("GET", "auth", path, cast_to=User)

    async def list_users(self, *, page_size: int = 100, cursor: str | None = None) -> Page[User]:
        """One page of user accounts (``GET /users``).

        Example:
            ```python
            page = await pv.auth_client.list_users(page_size=20)
            ```
        """
        return await self._users.page(page_size=page_size, cursor=cursor)

    def iter_users(
        self, *, page_size: int = 100, cursor: str | None = None, max_items: int | None = None
    ) -> AsyncPaginator[User]:
        """Every user account, fetched page by page.

        Example:
            ```python
            async for user in pv.auth_client.iter_users():
                print(user.username)
            ```
        """
        return self._users.iterate(page_size=page_size, cursor=cursor, max_items=max_items)

    async def update_user(self, username: str, update: UserUpdate | Mapping[str, Any]) -> User:
        """Change a user account; fields left out stay as they are (``PATCH /users/{username}``).

        Example:
            ```python
            await pv.auth_client.update_user("alice", {"system_roles": ["reviewer"]})
            ```
        """
        path = "/users/" + path_segment(username, "username")
        return await self._core.request(
            "PATCH",
            "auth",
            path,
            json=encode_body(UserUpdate, update, "user update"),
            cast_to=User,
        )

    # -- groups --------------------------------------------------------------------------

    async def create_group(
        self,
        group: GroupCreate | Mapping[str, Any],
        *,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> Group:
        """Create a group (``POST /groups``, admins only).

        Example:
            ```python
            lab = await pv.auth_client.create_group({"name": "lab", "description": "the lab"})
            ```
        """
        return await self._core.request(
            "POST",
            "auth",
            "/groups",
            json=encode_body(GroupCreate, group, "group"),
            idempotency_key=idempotency_key,
            cast_to=Group,
            expected=(200, 201),
        )

    async def get_group(self, name: str) -> Group:
        """One group with its members (``GET /groups/{name}``).

        Example:
            ```python
            lab = await pv.auth_client.get_group("lab")
            ```
        """
        path = "/groups/" + path_segment(name, "group name")
        return await self._core.request("GET", "auth", path, cast_to=Group)

    async def list_groups(self, *, page_size: int = 100, cursor: str | None = None) -> Page[Group]:
        """One page of groups (``GET /groups``).

        Example:
            ```python
            page = await pv.auth_client.list_groups()
            ```
        """
        return await self._groups.page(page_size=page_size, cursor=cursor)

    def iter_groups(
        self, *, page_size: int = 100, cursor: str | None = None, max_items: int | None = None
    ) -> AsyncPaginator[Group]:
        """Every group, fetched page by page.

        Example:
            ```python
            names = [g.name async for g in pv.auth_client.iter_groups()]
            ```
        """
        return self._groups.iterate(page_size=page_size, cursor=cursor, max_items=max_items)

    async def add_group_member(self, name: str, username: str) -> Group:
        """Add a user to a group (``POST /groups/{name}/members``).

        Example:
            ```python
            lab = await pv.auth_client.add_group_member("lab", "alice")
            ```
        """
        path = "/groups/" + path_segment(name, "group name") + "/members"
        return await self._core.request(
            "POST",
            "auth",
            path,
            json=encode_body(GroupMember, {"username": username}, "group member"),
            cast_to=Group,
            expected=(200, 201),
            idempotency_key=None,  # not deduplicated by the server: don't retry blindly
        )

    async def list_user_groups(self, username: str) -> list[Group]:
        """The groups a user belongs to (``GET /users/{username}/groups``).

        Admins may ask about anyone; everyone else about themselves.

        Raises:
            Forbidden: another user's groups, without the system role ``admin``.
            NotFound: no such user.

        Example:
            ```python
            names = [g.name for g in await pv.auth_client.list_user_groups("alice")]
            ```
        """
        path = "/users/" + path_segment(username, "username") + "/groups"
        return await self._core.request("GET", "auth", path, cast_to=_GROUPS)

    async def remove_group_member(self, name: str, username: str) -> None:
        """Remove a user from a group (``DELETE /groups/{name}/members/{username}``).

        The service answers 204 without a body; call :meth:`get_group` for the new member
        list.

        Raises:
            NotFound: no such group, or the user is not a member.

        Example:
            ```python
            await pv.auth_client.remove_group_member("lab", "alice")
            ```
        """
        path = (
            "/groups/"
            + path_segment(name, "group name")
            + "/members/"
            + path_segment(username, "username")
        )
        await self._core.request("DELETE", "auth", path)

    # -- OAuth clients -------------------------------------------------------------------

    async def create_client(
        self,
        client: OAuthClientCreate | Mapping[str, Any],
        *,
        idempotency_key: str | None | NotGiven = NOT_GIVEN,
    ) -> OAuthClientCreated:
        """Register an OAuth client (``POST /clients``); the secret is shown only here.

        Example:
            ```python
            created = await pv.auth_client.create_client({"client_id": "pipeline"})
            secret = created.client_secret.get_secret_value()
            ```
        """
        return await self._core.request(
            "POST",
            "auth",
            "/clients",
            json=encode_body(OAuthClientCreate, client, "OAuth client"),
            idempotency_key=idempotency_key,
            cast_to=OAuthClientCreated,
            expected=(200, 201),
        )

    async def list_clients(
        self, *, page_size: int = 100, cursor: str | None = None
    ) -> Page[OAuthClient]:
        """One page of registered OAuth clients (``GET /clients``).

        Example:
            ```python
            page = await pv.auth_client.list_clients()
            ```
        """
        return await self._clients.page(page_size=page_size, cursor=cursor)

    def iter_clients(
        self, *, page_size: int = 100, cursor: str | None = None, max_items: int | None = None
    ) -> AsyncPaginator[OAuthClient]:
        """Every registered OAuth client, fetched page by page.

        Example:
            ```python
            ids = [c.client_id async for c in pv.auth_client.iter_clients()]
            ```
        """
        return self._clients.iterate(page_size=page_size, cursor=cursor, max_items=max_items)

    async def delete_client(self, client_id: str) -> None:
        """Delete an OAuth client and its service account (``DELETE /clients/{client_id}``).

        Example:
            ```python
            await pv.auth_client.delete_client("pipeline")
            ```
        """
        path = "/clients/" + path_segment(client_id, "client id")
        await self._core.request("DELETE", "auth", path)
