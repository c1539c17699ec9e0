"""``provena-like review ...``: reviewers, release requests, decisions and review queues."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

import typer
from rich.table import Table

from provena_like.cli._common import UrlOption, console, load_config, run
from provena_like.client import ProvenaClient
from provena_like.models.datastore import Dataset

app = typer.Typer(
    help="Review and release datasets: request, approve, reject, and manage reviewers.",
    no_args_is_help=True,
)

NotesOption = Annotated[str, typer.Option("--notes", "-n", help="Notes for the history.")]


def _show_dataset(verb: str, ds: Dataset) -> None:
    reviewer = f" (reviewer {ds.release_reviewer})" if ds.release_reviewer else ""
    console.print(f"[green]{verb}[/] {ds.id}: now {ds.release_status}{reviewer}")


def _queue(title: str, datasets: Iterable[Dataset]) -> Table:
    table = Table("dataset", "name", "requested by", "requested at", "reviewer", title=title)
    for ds in datasets:
        table.add_row(
            ds.id,
            ds.display_name,
            ds.release_requester or "",
            ds.release_requested_at.isoformat(timespec="seconds")
            if ds.release_requested_at
            else "",
            ds.release_reviewer or "",
        )
    return table


@app.command("request")
def request(
    dataset: str,
    reviewer: Annotated[str, typer.Option("--reviewer", "-r", help="Who reviews it.")],
    notes: NotesOption = "",
    url: UrlOption = None,
) -> None:
    """Ask a reviewer to release a dataset (it is PENDING, and frozen, until they decide)."""

    async def go() -> None:
        async with ProvenaClient(load_config(url)) as pv:
            ds = await pv.datastore.review.request_release(dataset, reviewer, notes)
        _show_dataset("requested release of", ds)

    run(go)


@app.command("approve")
def approve(dataset: str, notes: NotesOption = "", url: UrlOption = None) -> None:
    """Approve the release of a dataset whose request names you (it becomes RELEASED)."""

    async def go() -> None:
        async with ProvenaClient(load_config(url)) as pv:
            ds = await pv.datastore.review.approve(dataset, notes)
        _show_dataset("approved", ds)

    run(go)


@app.command("reject")
def reject(
    dataset: str,
    notes: Annotated[str, typer.Option("--notes", "-n", help="What to fix (required).")],
    url: UrlOption = None,
) -> None:
    """Reject a release request that names you, saying what to fix."""

    async def go() -> None:
        async with ProvenaClient(load_config(url)) as pv:
            ds = await pv.datastore.review.reject(dataset, notes)
        _show_dataset("rejected", ds)

    run(go)


@app.command("withdraw")
def withdraw(dataset: str, notes: NotesOption = "", url: UrlOption = None) -> None:
    """Take back a pending release request (dataset admins)."""

    async def go() -> None:
        async with ProvenaClient(load_config(url)) as pv:
            ds = await pv.datastore.review.withdraw(dataset, notes)
        _show_dataset("withdrew the release request of", ds)

    run(go)


@app.command("history")
def history(dataset: str, url: UrlOption = None) -> None:
    """Every step of a dataset's release workflow, oldest first."""

    async def go() -> None:
        table = Table("time", "user", "action", "status", "reviewer", "notes")
        async with ProvenaClient(load_config(url)) as pv:
            for event in await pv.datastore.review.history(dataset):
                table.add_row(
                    event.time.isoformat(timespec="seconds"),
                    event.user,
                    event.action,
                    event.status,
                    event.reviewer or "",
                    event.notes,
                )
        console.print(table)

    run(go)


@app.command("awaiting")
def awaiting(url: UrlOption = None) -> None:
    """The datasets awaiting your review."""

    async def go() -> None:
        async with ProvenaClient(load_config(url)) as pv:
            found = [ds async for ds in pv.datastore.review.awaiting_my_review()]
        console.print(_queue("awaiting your review", found))

    run(go)


@app.command("mine")
def mine(url: UrlOption = None) -> None:
    """Your release requests that await a decision."""

    async def go() -> None:
        async with ProvenaClient(load_config(url)) as pv:
            found = [ds async for ds in pv.datastore.review.my_requests()]
        console.print(_queue("your pending requests", found))

    run(go)


@app.command("reviewers")
def reviewers(url: UrlOption = None) -> None:
    """The users you may name as reviewers."""

    async def go() -> None:
        table = Table("username", "name")
        async with ProvenaClient(load_config(url)) as pv:
            for reviewer in await pv.datastore.review.list_reviewers():
                table.add_row(reviewer.username, reviewer.display_name or "")
        console.print(table)

    run(go)


@app.command("add-reviewer")
def add_reviewer(username: str, url: UrlOption = None) -> None:
    """Let a user review release requests (system admins)."""

    async def go() -> None:
        async with ProvenaClient(load_config(url)) as pv:
            await pv.datastore.review.add_reviewer(username)
        console.print(f"[green]{username} is a reviewer[/]")

    run(go)


@app.command("remove-reviewer")
def remove_reviewer(username: str, url: UrlOption = None) -> None:
    """Stop a user reviewing (system admins; refused while reviews await them)."""

    async def go() -> None:
        async with ProvenaClient(load_config(url)) as pv:
            await pv.datastore.review.remove_reviewer(username)
        console.print(f"[green]{username} is no longer a reviewer[/]")

    run(go)
