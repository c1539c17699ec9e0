"""``provena-like admin ...``: manage users, groups and OAuth clients (administrators)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from provena_like.cli._common import UrlOption, console, load_config, run
from provena_like.client import ProvenaClient
from provena_like.models.auth import GroupCreate, OAuthClientCreate, UserCreate, UserUpdate

app = typer.Typer(help="Manage users, groups and OAuth clients (system administrators).")

RoleOption = Annotated[
    list[str] | None, typer.Option("--role", help="System role to grant (admin, reviewer).")
]


@app.command("create-user")
def create_user(
    username: str,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)],
    display_name: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    role: RoleOption = None,
    url: UrlOption = None,
) -> None:
    """Create a user account."""
    body = UserCreate.model_validate(
        {
            "username": username,
            "password": password,
            "display_name": display_name,
            "email": email,
            "system_roles": role or [],
        }
    )

    async def go() -> None:
        async with ProvenaClient(load_config(url)) as pv:
            user = await pv.auth_client.create_user(body)
        console.print(f"[green]created user[/] {user.username}")

    run(go)


@app.command("set-user")
def set_user(
    username: str,
    disabled: Annotated[bool | None, typer.Option("--disabled/--enabled")] = None,
    display_name: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    role: RoleOption = None,
    url: UrlOption = None,
) -> None:
    """Change a user: enable/disable, name, email or system roles."""
    body = UserUpdate.model_validate(
        {
            k: v
            for k, v in {
                "disabled": disabled,
                "display_name": display_name,
                "email": email,
                "system_roles": role,
            }.items()
            if v is not None
        }
    )

    async def go() -> None:
        async with ProvenaClient(load_config(url)) as pv:
            user = await pv.auth_client.update_user(username, body)
        console.print(f"[green]updated user[/] {user.username}")

    run(go)


@app.command("list-users")
def list_users(url: UrlOption = None) -> None:
    """List user accounts."""

    async def go() -> None:
        table = Table("username", "name", "email", "roles", "disabled")
        async with ProvenaClient(load_config(url)) as pv:
            async for user in pv.auth_client.iter_users():
                table.add_row(
                    user.username,
                    user.display_name or "",
                    user.email or "",
                    ", ".join(user.system_roles),
                    "yes" if user.disabled else "",
                )
        console.print(table)

    run(go)


@app.command("create-group")
def create_group(
    name: str,
    description: Annotated[str, typer.Option()] = "",
    url: UrlOption = None,
) -> None:
    """Create a group."""

    async def go() -> None:
        async with ProvenaClient(load_config(url)) as pv:
            group = await pv.auth_client.create_group(
                GroupCreate(name=name, description=description)
            )
        console.print(f"[green]created group[/] {group.name}")

    run(go)


@app.command("add-member")
def add_member(group: str, username: str, url: UrlOption = None) -> None:
    """Add a user to a group."""

    async def go() -> None:
        async with ProvenaClient(load_config(url)) as pv:
            await pv.auth_client.add_group_member(group, username)
        console.print(f"[green]added[/] {username} to {group}")

    run(go)


@app.command("remove-member")
def remove_member(group: str, username: str, url: UrlOption = None) -> None:
    """Remove a user from a group."""

    async def go() -> None:
        async with ProvenaClient(load_config(url)) as pv:
            await pv.auth_client.remove_group_member(group, username)
        console.print(f"[green]removed[/] {username} from {group}")

    run(go)


@app.command("create-client")
def create_client(
    client_id: str,
    public: Annotated[
        bool, typer.Option("--public", help="A public client (device flow), no secret.")
    ] = False,
    name: Annotated[str, typer.Option()] = "",
    role: RoleOption = None,
    url: UrlOption = None,
) -> None:
    """Register an OAuth client; a confidential one's secret is shown once."""
    grants = ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"] if public else None
    body = OAuthClientCreate.model_validate(
        {
            "client_id": client_id,
            "name": name,
            "confidential": not public,
            **({"grant_types": grants} if grants else {}),
            "system_roles": role or [],
        }
    )

    async def go() -> None:
        async with ProvenaClient(load_config(url)) as pv:
            created = await pv.auth_client.create_client(body)
        console.print(f"[green]created client[/] {created.client_id}")
        if created.client_secret is not None:
            console.print(
                f"client secret (shown once): [bold]{created.client_secret.get_secret_value()}[/]"
            )

    run(go)


@app.command("list-clients")
def list_clients(url: UrlOption = None) -> None:
    """List OAuth clients."""

    async def go() -> None:
        table = Table("client id", "name", "confidential", "grants", "service account")
        async with ProvenaClient(load_config(url)) as pv:
            async for client in pv.auth_client.iter_clients():
                table.add_row(
                    client.client_id,
                    client.name,
                    "yes" if client.confidential else "no",
                    ", ".join(client.grant_types),
                    client.service_account or "",
                )
        console.print(table)

    run(go)
