"""``provena-like access ...``: who may do what with a registry item (datasets included)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from provena_like.cli._common import JsonOption, UrlOption, console, emit, run_with_client

if TYPE_CHECKING:
    from provena_like.client import ProvenaClient
    from provena_like.models.registry import AccessSettings, Role

app = typer.Typer(
    help="Show and change item access: general (everyone signed in) and group grants.",
    no_args_is_help=True,
)

GeneralOption = Annotated[
    bool, typer.Option("--general", help="Everyone signed in (the general grant).")
]
GroupOption = Annotated[str | None, typer.Option("--group", "-g", help="A group, by name.")]


def _grantee(general: bool, group: str | None) -> str | None:
    """None for the general grant, else the group; exactly one must be given."""
    if general == (group is not None):
        raise typer.BadParameter("give exactly one of --general or --group NAME")
    return group


def parse_role(value: str) -> Role:
    """``value`` as an item role, or a usage error listing the roles."""
    from provena_like.models.registry import ROLE_ORDER

    for role in ROLE_ORDER:
        if role == value:
            return role
    raise typer.BadParameter(f"{value!r} is not a role; use one of: {', '.join(ROLE_ORDER)}")


def _table(item_id: str, settings: AccessSettings) -> Table:
    table = Table("grantee", "roles", title=f"access to {item_id} (owner: {settings.owner})")
    table.add_row("general (everyone signed in)", ", ".join(settings.general) or "-")
    for group, roles in sorted(settings.groups.items()):
        table.add_row(f"group {group}", ", ".join(roles))
    return table


@app.command("show")
def show(item: str, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Show an item's owner and grants."""
    settings = run_with_client(url, lambda pv: pv.registry_client.get_access(item))
    emit(as_json, settings, lambda: console.print(_table(item, settings)))


def _change(
    url: str | None, item: str, group: str | None, role: Role | None, as_json: bool
) -> None:
    """Set one grantee's role (None: remove the grantee), then show the item's access."""
    who = "everyone signed in" if group is None else f"group {group}"
    reason = f"granted {role} to {who}" if role is not None else f"revoked the roles of {who}"

    settings = run_with_client(url, lambda pv: _update_access(pv, item, group, role, reason))
    emit(as_json, settings, lambda: console.print(_table(item, settings)))


async def _update_access(
    pv: ProvenaClient, item: str, group: str | None, role: Role | None, reason: str
) -> AccessSettings:
    """Replace one grantee's role, guarded by the item's revision."""
    from provena_like.models.registry import AccessUpdate

    current = await pv.registry_client.get_item(item)
    general = list(current.access.general)
    groups = {g: list(r) for g, r in current.access.groups.items()}
    if group is None:
        general = [role] if role is not None else []
    elif role is not None:
        groups[group] = [role]
    else:
        groups.pop(group, None)
    update = AccessUpdate(
        owner=current.access.owner,
        general=general,
        groups=groups,
        reason=reason,
        expected_revision=current.revision,
    )
    return await pv.registry_client.update_access(item, update)


@app.command("grant")
def grant(
    item: str,
    role: Annotated[
        str, typer.Argument(help="An item role, e.g. data-read (an unknown one lists them).")
    ],
    general: GeneralOption = False,
    group: GroupOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give everyone signed in (--general) or a group (--group) a role on an item.

    The grantee's role is replaced by ROLE, which implies every weaker role
    (data-read also gives metadata-read and metadata-write).
    """
    _change(url, item, _grantee(general, group), parse_role(role), as_json)


@app.command("revoke")
def revoke(
    item: str,
    general: GeneralOption = False,
    group: GroupOption = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Take every role from everyone signed in (--general) or from a group (--group)."""
    _change(url, item, _grantee(general, group), None, as_json)


@app.command("my-access")
def my_access(item: str, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """What you may do with an item, and why."""
    mine = run_with_client(url, lambda pv: pv.registry_client.my_access(item))
    if as_json:
        emit(as_json, mine, lambda: None)
        return
    roles = ", ".join(mine.roles) or "none"
    sources = ", ".join(mine.sources) or "no grant applies to you"
    console.print(f"{mine.username} on {mine.item_id}: [bold]{roles}[/] (from: {sources})")
    if mine.system_roles:
        console.print(f"system roles: {', '.join(mine.system_roles)}")
    if mine.locked:
        console.print("[yellow]the item is locked[/]")
