"""``provena-like admin ...``: manage users, groups and OAuth clients (administrators)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from provena_like.cli._common import (
    JsonOption,
    UrlOption,
    collect_with_client,
    console,
    emit,
    run_with_client,
)

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
    as_json: JsonOption = False,
) -> None:
    """Create a user account."""
    from provena_like.models.auth import UserCreate

    body = UserCreate.model_validate(
        {
            "username": username,
            "password": password,
            "display_name": display_name,
            "email": email,
            "system_roles": role or [],
        }
    )

    user = run_with_client(url, lambda pv: pv.auth_client.create_user(body))
    emit(as_json, user, lambda: console.print(f"[green]created user[/] {user.username}"))


@app.command("set-user")
def set_user(
    username: str,
    disabled: Annotated[bool | None, typer.Option("--disabled/--enabled")] = None,
    display_name: Annotated[str | None, typer.Option()] = None,
    email: Annotated[str | None, typer.Option()] = None,
    role: RoleOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a user: enable/disable, name, email or system roles."""
    from provena_like.models.auth import UserUpdate

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

    user = run_with_client(url, lambda pv: pv.auth_client.update_user(username, body))
    emit(as_json, user, lambda: console.print(f"[green]updated user[/] {user.username}"))


@app.command("list-users")
def list_users(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """List user accounts."""
    users = collect_with_client(url, lambda pv: pv.auth_client.iter_users())
    if as_json:
        emit(as_json, users, lambda: None)
        return
    table = Table("username", "name", "email", "roles", "disabled")
    for user in users:
        table.add_row(
            user.username,
            user.display_name or "",
            user.email or "",
            ", ".join(user.system_roles),
            "yes" if user.disabled else "",
        )
    console.print(table)


@app.command("create-group")
def create_group(
    name: str,
    description: Annotated[str, typer.Option()] = "",
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Create a group."""
    from provena_like.models.auth import GroupCreate

    body = GroupCreate(name=name, description=description)
    group = run_with_client(url, lambda pv: pv.auth_client.create_group(body))
    emit(as_json, group, lambda: console.print(f"[green]created group[/] {group.name}"))


@app.command("add-member")
def add_member(
    group: str, username: str, url: UrlOption = None, as_json: JsonOption = False
) -> None:
    """Add a user to a group."""
    run_with_client(url, lambda pv: pv.auth_client.add_group_member(group, username))
    emit(
        as_json,
        {"group": group, "added": username},
        lambda: console.print(f"[green]added[/] {username} to {group}"),
    )


@app.command("remove-member")
def remove_member(
    group: str, username: str, url: UrlOption = None, as_json: JsonOption = False
) -> None:
    """Remove a user from a group."""
    run_with_client(url, lambda pv: pv.auth_client.remove_group_member(group, username))
    emit(
        as_json,
        {"group": group, "removed": username},
        lambda: console.print(f"[green]removed[/] {username} from {group}"),
    )


@app.command("create-client")
def create_client(
    client_id: str,
    public: Annotated[
        bool, typer.Option("--public", help="A public client (device flow), no secret.")
    ] = False,
    name: Annotated[str, typer.Option()] = "",
    role: RoleOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register an OAuth client; a confidential one's secret is shown once."""
    from provena_like.models.auth import OAuthClientCreate

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

    created = run_with_client(url, lambda pv: pv.auth_client.create_client(body))
    if as_json:
        secret = created.client_secret
        doc = created.model_dump(mode="json")
        doc["client_secret"] = secret.get_secret_value() if secret is not None else None
        emit(as_json, doc, lambda: None)
        return
    console.print(f"[green]created client[/] {created.client_id}")
    if created.client_secret is not None:
        console.print(
            f"client secret (shown once): [bold]{created.client_secret.get_secret_value()}[/]"
        )


@app.command("list-clients")
def list_clients(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """List OAuth clients."""
    clients = collect_with_client(url, lambda pv: pv.auth_client.iter_clients())
    if as_json:
        emit(as_json, clients, lambda: None)
        return
    table = Table("client id", "name", "confidential", "grants", "service account")
    for client in clients:
        table.add_row(
            client.client_id,
            client.name,
            "yes" if client.confidential else "no",
            ", ".join(client.grant_types),
            client.service_account or "",
        )
    console.print(table)
