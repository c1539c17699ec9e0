"""``provena-like item create|show|list|update|history|revert|lock|unlock``: registry items.

Organisations, people, models and the other subtypes (``dataset`` is one too; ``provena-like
dataset`` has its own commands). A thin layer over ``pv.registry_client``; records come from
``--record FILE`` and ``--set path=value`` (:mod:`provena_like.cli.records`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from provena_like.cli._common import (
    JsonOption,
    UrlOption,
    collect_with_client,
    console,
    emit,
    run_with_client,
)
from provena_like.cli._errors import EXIT_CODES_HELP
from provena_like.cli.dataset import history_table
from provena_like.cli.records import (
    EditOption,
    GeneralGrantOption,
    GroupGrantOption,
    RecordOption,
    SetOption,
    build_record,
    edit_record,
    parse_grants,
)

if TYPE_CHECKING:
    from provena_like.client import ProvenaClient
    from provena_like.models.registry import HistoryEntry, Item

app = typer.Typer(
    help="Create, find, show and change registry items (organisations, people, ...).",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
)

ItemArg = Annotated[str, typer.Argument(help="The item's handle (e.g. 10378.1/7).")]
ReasonOption = Annotated[str, typer.Option("--reason", help="Why: recorded in the history.")]


def _done(verb: str, item: Item) -> None:
    console.print(f"[green]{verb}[/] {item.subtype} {item.id}  {escape(item.display_name)}")


def _show(item: Item) -> None:
    console.print(f"[bold]{item.id}[/]  {item.subtype}  {escape(item.display_name)}")
    console.print(f"  owner     {item.owner}")
    console.print(f"  revision  {item.revision}" + ("  [yellow]locked[/]" if item.locked else ""))
    console.print(f"  your roles {', '.join(item.roles) or '-'}")
    for key, value in item.record.items():
        console.print(f"  {key}: {escape(str(value))}")


@app.command("create")
def create(
    subtype: Annotated[str, typer.Argument(help="organisation, person, model, ...")],
    record: RecordOption = None,
    set_: SetOption = None,
    display_name: Annotated[str | None, typer.Option("--display-name")] = None,
    general: GeneralGrantOption = None,
    group: GroupGrantOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Register a new item of SUBTYPE from a record (file and/or --set)."""
    body = build_record(None, record, set_ or ())
    general_roles, groups = parse_grants(general, group or ())
    request = {
        "subtype": subtype,
        "record": body,
        "display_name": display_name,
        "general": general_roles,
        "groups": groups,
    }
    item = run_with_client(url, lambda pv: pv.registry_client.create_item(request))
    emit(as_json, item, lambda: _done("created", item))


@app.command("show")
def show(item: ItemArg, as_json: JsonOption = False, url: UrlOption = None) -> None:
    """Show an item and its record."""
    found = run_with_client(url, lambda pv: pv.registry_client.get_item(item))
    emit(as_json, found, lambda: _show(found))


@app.command("list")
def list_(
    subtype: Annotated[str | None, typer.Option("--subtype", "-t", help="Only this kind.")] = None,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this user's.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 100,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """List the items you can see, oldest first."""
    found = collect_with_client(
        url,
        lambda pv: pv.registry_client.iter_items(subtype=subtype, owner=owner, max_items=limit),
    )

    def human() -> None:
        table = Table("id", "subtype", "name", "owner")
        for it in found:
            table.add_row(it.id, it.subtype, it.display_name, it.owner)
        console.print(table)

    emit(as_json, found, human)


@app.command("update")
def update(
    item: ItemArg,
    reason: ReasonOption,
    record: RecordOption = None,
    set_: SetOption = None,
    display_name: Annotated[str | None, typer.Option("--display-name")] = None,
    edit: EditOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Change an item's record: the current one with --set applied, or --record's.

    Refused (exit 1) if someone changed it in the meantime.
    """

    async def work(pv: ProvenaClient) -> Item:
        current = await pv.registry_client.get_item(item)
        body = build_record(current.record, record, set_ or ())
        if edit:
            import anyio

            body = await anyio.to_thread.run_sync(edit_record, body)
        change = {"record": body, "reason": reason, "display_name": display_name}
        return await pv.registry_client.update_item(item, change, if_match=current.revision)

    updated = run_with_client(url, work)
    emit(as_json, updated, lambda: _done("updated", updated))


@app.command("history")
def history(item: ItemArg, as_json: JsonOption = False, url: UrlOption = None) -> None:
    """An item's history, newest first (ids for item revert)."""
    entries: list[HistoryEntry] = collect_with_client(
        url, lambda pv: pv.registry_client.iter_history(item)
    )
    emit(as_json, entries, lambda: console.print(history_table(entries)))


@app.command("revert")
def revert(
    item: ItemArg,
    history_id: Annotated[int, typer.Argument(help="The history entry to restore.")],
    reason: ReasonOption,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Restore the record of a history entry (recorded as a new entry)."""
    body = {"history_id": history_id, "reason": reason}
    done = run_with_client(url, lambda pv: pv.registry_client.revert_item(item, body))
    emit(as_json, done, lambda: _done(f"reverted to entry {history_id}:", done))


@app.command("lock")
def lock(
    item: ItemArg, reason: ReasonOption, as_json: JsonOption = False, url: UrlOption = None
) -> None:
    """Lock an item: no change to it (or its files) until unlocked."""
    done = run_with_client(url, lambda pv: pv.registry_client.lock_item(item, reason))
    emit(as_json, done, lambda: _done("locked", done))


@app.command("unlock")
def unlock(
    item: ItemArg, reason: ReasonOption, as_json: JsonOption = False, url: UrlOption = None
) -> None:
    """Unlock an item."""
    done = run_with_client(url, lambda pv: pv.registry_client.unlock_item(item, reason))
    emit(as_json, done, lambda: _done("unlocked", done))
