"""``provena-like register session|files|check-protected``: ALF sessions and their files.

The commands only format: the work is :class:`~provena_like.modules.registration.Registration`'s.
Exit codes: ``0`` done, ``1`` a file failed, ``2`` wrong usage; the others are
:class:`~provena_like.cli._errors.ExitCode`'s. ``--json`` prints one JSON document.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.table import Table

from provena_like.cli._common import (
    NoProgressOption,
    UrlOption,
    console,
    err_console,
    run_with_client,
)

if TYPE_CHECKING:
    from provena_like.client import ProvenaClient
    from provena_like.modules.registration import (
        FileRegistrationResult,
        RegistrationResult,
        SessionRegistration,
    )
    from provena_like.storage.events import ProgressCallback

T = TypeVar("T")

app = typer.Typer(
    help="Register ALF sessions and their files (ONE's registration, made atomic).",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as one JSON document.")]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Check and plan; register nothing, move nothing.")
]
Md5Option = Annotated[
    bool,
    typer.Option(
        "--md5", help="Compute md5 too (sha256 always; md5 too for a repository keeping md5s)."
    ),
]


def _file_json(f: FileRegistrationResult) -> dict[str, Any]:
    return {
        "path": str(f.path),
        "status": f.status,
        "reason": f.reason,
        "session": str(f.session) if f.session is not None else None,
        "rel_path": f.rel_path,
        "dataset_type": f.dataset_type,
        "size": f.size,
        "sha256": f.sha256,
        "md5": f.md5,
        "moved_from": str(f.moved_from) if f.moved_from is not None else None,
        "moved_to": str(f.moved_to) if f.moved_to is not None else None,
    }


def _files_json(result: RegistrationResult) -> dict[str, Any]:
    return {
        "registered": len(result.registered),
        "skipped": len(result.skipped),
        "failed": len(result.failed),
        "files": [_file_json(f) for f in result.files],
    }


def _print_files(result: RegistrationResult, verb: str) -> None:
    for f in result.files:
        if f.moved_to is not None:
            console.print(f"[cyan]moved[/] {f.moved_from} -> {f.moved_to}")
        if f.status == "skipped":
            console.print(f"[yellow]skipped[/] {f.path}: {f.reason}")
        elif f.status == "failed":
            err_console.print(f"[red]failed[/] {f.path}: {f.reason}")
    console.print(
        f"{verb}: {len(result.registered)} files, {len(result.skipped)} skipped, "
        f"{len(result.failed)} failed"
    )


def _with_hashing_bar(
    url: str | None, show: bool, work: Callable[[ProvenaClient, ProgressCallback], Awaitable[T]]
) -> T:
    """Run ``work(pv, progress)`` with a bar (stderr, on a terminal) showing the hashing."""
    from provena_like.cli.progress import transfer_bar

    async def go(pv: ProvenaClient) -> T:
        with transfer_bar(err_console, "register", show=show) as sink:
            return await work(pv, sink)

    return run_with_client(url, go)


def _exit_for(result: RegistrationResult | None) -> None:
    if result is not None and result.failed:
        raise typer.Exit(1)


@app.command("session")
def session(
    path: Annotated[
        Path, typer.Argument(help="The session folder: [lab/Subjects/]subject/date/N.")
    ],
    user: Annotated[
        list[str] | None, typer.Option("--user", "-u", help="Who ran it (repeatable).")
    ] = None,
    files: Annotated[
        bool, typer.Option("--files/--no-files", help="Register the folder's files too.")
    ] = True,
    dry_run: DryRunOption = False,
    no_progress: NoProgressOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Create or update the session of a local folder, then register its files."""

    async def work(pv: ProvenaClient, progress: ProgressCallback) -> SessionRegistration:
        return await pv.registration.register_session(
            path, users=user, file_list=files, dry_run=dry_run, progress=progress
        )

    done = _with_hashing_bar(url, not no_progress, work)
    verb = "create" if done.created else "update"
    action = f"would {verb}" if dry_run else f"{verb}d"
    if as_json:
        doc = {
            "session": str(done.session),
            "id": done.item.id if done.item is not None else None,
            "action": verb,
            "dry_run": dry_run,
            "files": _files_json(done.files) if done.files is not None else None,
        }
        typer.echo(json.dumps(doc))
    else:
        ident = f" ({done.item.id})" if done.item is not None else ""
        console.print(f"[green]{action}[/] session {done.session}{ident}")
        if done.files is not None:
            _print_files(done.files, "would register" if dry_run else "registered")
    _exit_for(done.files)


@app.command("files")
def files(
    paths: Annotated[list[Path], typer.Argument(help="The files (inside session folders).")],
    version: Annotated[str | None, typer.Option("--version", help="Their version.")] = None,
    repository: Annotated[
        str | None, typer.Option("--repository", help="Repository holding them (handle or name).")
    ] = None,
    exists: Annotated[
        bool, typer.Option("--exists/--not-exists", help="Whether they are in it now.")
    ] = True,
    default: Annotated[
        bool, typer.Option("--default/--no-default", help="Make them their datasets' default.")
    ] = True,
    revision: Annotated[
        str | None, typer.Option("--revision", help="Move them into #REVISION# and register.")
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="On a protected revision, move them to a new revision."),
    ] = False,
    md5: Md5Option = False,
    dry_run: DryRunOption = False,
    no_progress: NoProgressOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Register files: one dataset type each, hashed, one atomic request per session."""

    async def work(pv: ProvenaClient, progress: ProgressCallback) -> RegistrationResult:
        return await pv.registration.register_files(
            paths,
            versions=version,
            default=default,
            repository=repository,
            exists=exists,
            dry_run=dry_run,
            revision=revision,
            force=force,
            md5=md5,
            progress=progress,
        )

    result = _with_hashing_bar(url, not no_progress, work)
    if as_json:
        typer.echo(json.dumps({"dry_run": dry_run, **_files_json(result)}))
    else:
        _print_files(result, "would register" if dry_run else "registered")
    _exit_for(result)


@app.command("check-protected")
def check_protected(
    paths: Annotated[list[Path], typer.Argument(help="The files (inside session folders).")],
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Say whether each file's revision is protected, with its dataset's revisions."""
    checks = run_with_client(url, lambda pv: pv.registration.check_protected_files(paths))
    if as_json:
        doc = [
            {"path": str(path), **check.model_dump(mode="json")}
            for path, check in zip(paths, checks, strict=True)
        ]
        typer.echo(json.dumps(doc))
        return
    table = Table("file", "protected", "revisions (newest first)")
    for path, check in zip(paths, checks, strict=True):
        revisions = ", ".join(
            (r.revision or "''") + (" (protected)" if r.protected else "") for r in check.revisions
        )
        table.add_row(str(path), "yes" if check.protected else "no", revisions or "-")
    console.print(table)
