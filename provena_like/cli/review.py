"""``provena-like review ...``: reviewers, release requests, decisions and review queues."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated

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

if TYPE_CHECKING:
    from provena_like.models.datastore import Dataset

app = typer.Typer(
    help="Review and release datasets: request, approve, reject, and manage reviewers.",
    no_args_is_help=True,
)

NotesOption = Annotated[str, typer.Option("--notes", "-n", help="Notes for the history.")]


def _show_dataset(verb: str, ds: Dataset, as_json: bool) -> None:
    if as_json:
        emit(as_json, ds, lambda: None)
        return
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
    as_json: JsonOption = False,
) -> None:
    """Ask a reviewer to release a dataset (it is PENDING, and frozen, until they decide)."""
    ds = run_with_client(
        url, lambda pv: pv.datastore.review.request_release(dataset, reviewer, notes)
    )
    _show_dataset("requested release of", ds, as_json)


@app.command("approve")
def approve(
    dataset: str, notes: NotesOption = "", url: UrlOption = None, as_json: JsonOption = False
) -> None:
    """Approve the release of a dataset whose request names you (it becomes RELEASED)."""
    ds = run_with_client(url, lambda pv: pv.datastore.review.approve(dataset, notes))
    _show_dataset("approved", ds, as_json)


@app.command("reject")
def reject(
    dataset: str,
    notes: Annotated[str, typer.Option("--notes", "-n", help="What to fix (required).")],
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reject a release request that names you, saying what to fix."""
    ds = run_with_client(url, lambda pv: pv.datastore.review.reject(dataset, notes))
    _show_dataset("rejected", ds, as_json)


@app.command("withdraw")
def withdraw(
    dataset: str, notes: NotesOption = "", url: UrlOption = None, as_json: JsonOption = False
) -> None:
    """Take back a pending release request (dataset admins)."""
    ds = run_with_client(url, lambda pv: pv.datastore.review.withdraw(dataset, notes))
    _show_dataset("withdrew the release request of", ds, as_json)


@app.command("history")
def history(dataset: str, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Every step of a dataset's release workflow, oldest first."""
    events = run_with_client(url, lambda pv: pv.datastore.review.history(dataset))
    if as_json:
        emit(as_json, events, lambda: None)
        return
    table = Table("time", "user", "action", "status", "reviewer", "notes")
    for event in events:
        table.add_row(
            event.time.isoformat(timespec="seconds"),
            event.user,
            event.action,
            event.status,
            event.reviewer or "",
            event.notes,
        )
    console.print(table)


@app.command("awaiting")
def awaiting(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """The datasets awaiting your review."""
    found = collect_with_client(url, lambda pv: pv.datastore.review.awaiting_my_review())
    emit(as_json, found, lambda: console.print(_queue("awaiting your review", found)))


@app.command("mine")
def mine(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Your release requests that await a decision."""
    found = collect_with_client(url, lambda pv: pv.datastore.review.my_requests())
    emit(as_json, found, lambda: console.print(_queue("your pending requests", found)))


@app.command("reviewers")
def reviewers(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """The users you may name as reviewers."""
    found = run_with_client(url, lambda pv: pv.datastore.review.list_reviewers())
    if as_json:
        emit(as_json, found, lambda: None)
        return
    table = Table("username", "name")
    for reviewer in found:
        table.add_row(reviewer.username, reviewer.display_name or "")
    console.print(table)


@app.command("add-reviewer")
def add_reviewer(username: str, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Let a user review release requests (system admins)."""
    run_with_client(url, lambda pv: pv.datastore.review.add_reviewer(username))
    emit(
        as_json,
        {"reviewer": username, "added": True},
        lambda: console.print(f"[green]{username} is a reviewer[/]"),
    )


@app.command("remove-reviewer")
def remove_reviewer(username: str, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Stop a user reviewing (system admins; refused while reviews await them)."""
    run_with_client(url, lambda pv: pv.datastore.review.remove_reviewer(username))
    emit(
        as_json,
        {"reviewer": username, "removed": True},
        lambda: console.print(f"[green]{username} is no longer a reviewer[/]"),
    )
