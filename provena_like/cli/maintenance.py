"""``provena-like delete-dataset|check-datasets ID…``: delete registered datasets, check them.

The work is ``pv.patcher``'s (:meth:`~provena_like.modules.patcher.Patcher.delete_datasets`,
:meth:`~provena_like.modules.patcher.Patcher.check_datasets`); it opens the repositories the
datasets' file records name (:class:`~provena_like.repositories.RepositoryResolver`): S3
ones with the credentials the server mints for them, POSIX ones where this machine mounts
them, given as ``--repository HANDLE=LOCAL_ROOT``, Globus ones through ``--local-endpoint
COLLECTION=DIR`` (:mod:`provena_like.cli._repositories`). A repository that can't be opened
is named with the reason; a dataset with a replica there fails (delete: before anything
changes) or is reported unchecked (check).

Exit codes: ``0`` every dataset deleted (or would be) / as recorded, ``1`` some dataset
failed, was refused or has a problem, ``4`` none of the datasets was found (or yours to
see), ``2`` wrong usage; the others are :class:`~provena_like.cli._errors.ExitCode`'s.
``--json`` prints one JSON document.
"""

from __future__ import annotations

import sys
from dataclasses import asdict
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provena_like.cli._common import (
    JsonOption,
    UrlOption,
    console,
    emit,
    err_console,
    run_with_client,
)
from provena_like.cli._errors import CliFailure, ExitCode
from provena_like.cli._repositories import LocalEndpointOption, parse_local_endpoint, patcher_for

if TYPE_CHECKING:  # imported when a command runs: `--help` stays fast
    from provena_like.client import ProvenaClient
    from provena_like.modules.checking import CheckReport
    from provena_like.modules.deletion import DeletionReport

__all__ = ["check_datasets", "delete_dataset", "parse_repository_options"]

IdsArgument = Annotated[list[str], typer.Argument(help="Registered dataset ids.")]
RepositoryOption = Annotated[
    list[str] | None,
    typer.Option(
        "--repository",
        "-r",
        help="HANDLE=LOCAL_ROOT: where this machine mounts a POSIX repository (repeatable); "
        "S3 repositories open by themselves.",
    ),
]


def parse_repository_options(options: list[str] | None) -> dict[str, str | None]:
    """``HANDLE[=LOCAL_ROOT]`` options as handle → local root (``None``: just the handle).

    Example:
        ```python
        roots = parse_repository_options(["10378.1/7=/mnt/lab", "10378.1/9"])
        assert roots == {"10378.1/7": "/mnt/lab", "10378.1/9": None}
        ```
    """
    roots: dict[str, str | None] = {}
    for option in options or ():
        handle, sep, root = option.partition("=")
        if not handle or (sep and not root):
            raise CliFailure(
                ExitCode.USAGE, f"--repository takes HANDLE[=LOCAL_ROOT], got {option!r}"
            )
        roots[handle] = root or None
    return roots


def _warn(unavailable: dict[str, str], as_json: bool) -> None:
    if not as_json:
        for reason in unavailable.values():
            err_console.print(f"[yellow]warning:[/] {reason}")


def _exit_for(statuses: list[str], ok: bool) -> None:
    if statuses and all(s == "not_found" for s in statuses):
        raise typer.Exit(int(ExitCode.NOT_FOUND))
    if not ok:
        raise typer.Exit(int(ExitCode.FAILED))


def _deletion_doc(report: DeletionReport) -> dict[str, Any]:
    return {
        "dry_run": report.dry_run,
        "ok": report.ok,
        "by_repository": report.by_repository(),
        "datasets": [asdict(d) for d in report.datasets],
        "unavailable": list(report.unavailable.values()),
    }


def _print_deletion(report: DeletionReport) -> None:
    verb = "would delete" if report.dry_run else "deleted"
    for handle, paths in report.by_repository().items():
        console.print(f"[bold]{handle}[/]: {len(paths)} files {verb}")
        for path in paths:
            console.print(f"  {path}")
    for d in report.datasets:
        if d.error is not None:
            err_console.print(f"[red]{d.status}[/] {d.dataset_id}: {d.error}")
    console.print(
        f"{verb}: {len(report.deleted)} datasets, {len(report.failed)} refused or failed"
        + ("" if report.dry_run or report.ok else " (run the same command again to continue)")
    )


def delete_dataset(
    ids: IdsArgument,
    repository: RepositoryOption = None,
    local_endpoint: LocalEndpointOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Change nothing: list every file that would go.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Don't ask for confirmation.")] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Delete registered datasets from every repository holding them, then their records.

    Each dataset is marked deleting, its objects are deleted and verified gone everywhere
    and recorded absent, and only then are its records removed. Protected datasets are
    refused. After a failure or an interruption, run the same command again: it continues.
    Asks first on a terminal (unless --yes or --dry-run).
    """
    from provena_like.cli.progress import step_bar
    from provena_like.modules.deletion import DeletionEvent

    roots = parse_repository_options(repository)
    endpoint = parse_local_endpoint(local_endpoint)

    def attempt(dry: bool) -> DeletionReport:
        async def work(pv: ProvenaClient) -> DeletionReport:
            verb = "plan" if dry else "delete"
            with step_bar(err_console, verb, len(ids), show=not as_json) as update:

                def on_progress(e: DeletionEvent) -> None:
                    update(f"{e.step} {e.dataset_id} {e.repository or ''}", e.step == "removed")

                return await patcher_for(pv, endpoint).delete_datasets(
                    ids, repositories=roots, dry_run=dry, on_progress=on_progress
                )

        return run_with_client(url, work)

    if not dry_run and not yes and sys.stdin.isatty():
        plan = attempt(True)
        _warn(plan.unavailable, as_json)
        _print_deletion(plan)
        if not plan.deleted:
            _exit_for([d.status for d in plan.datasets], plan.ok)
        if not typer.confirm(
            f"Delete {len(plan.deleted)} datasets from every repository, then their records?",
            err=True,
        ):
            raise CliFailure(
                ExitCode.FAILED, "nothing was changed (deletion declined)", kind="declined"
            )
    report = attempt(dry_run)
    _warn(report.unavailable, as_json)
    emit(as_json, _deletion_doc(report), lambda: _print_deletion(report))
    _exit_for([d.status for d in report.datasets], report.ok)


def _check_doc(report: CheckReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "repair": report.repair,
        "datasets": [{**asdict(d), "ok": d.ok} for d in report.datasets],
        "unavailable": list(report.unavailable.values()),
    }


def _print_check(report: CheckReport) -> None:
    for d in report.datasets:
        if d.error is not None:
            err_console.print(f"[red]error[/] {d.dataset_id}: {d.error}")
            continue
        for r in d.replicas:
            style = "green" if not r.problem else "red"
            line = f"[{style}]{r.status}[/] {d.dataset_id} {r.repository} {r.path}"
            if r.repaired_from is not None:
                line += f" (repaired from {r.repaired_from})"
            elif r.repair_error or r.error:
                line += f": {r.repair_error or r.error}"
            console.print(line)
    console.print(f"checked {len(report.datasets)} datasets, {len(report.problems)} with problems")


def check_datasets(
    ids: IdsArgument,
    repository: RepositoryOption = None,
    local_endpoint: LocalEndpointOption = None,
    repair: Annotated[
        bool,
        typer.Option("--repair", help="Copy bad or missing replicas again from a good one."),
    ] = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify",
            help="Read every object back and hash it (default), or trust the stored sha256.",
        ),
    ] = True,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Check that each replica of registered datasets has its recorded size and sha256."""
    from provena_like.cli.progress import step_bar
    from provena_like.modules.checking import CheckEvent

    roots = parse_repository_options(repository)
    endpoint = parse_local_endpoint(local_endpoint)

    async def work(pv: ProvenaClient) -> CheckReport:
        with step_bar(err_console, "check", None, show=not as_json) as update:

            def on_progress(e: CheckEvent) -> None:
                text = f"{e.step} {e.dataset_id} {e.repository}: {e.status}"
                update(text, e.step == "checked")

            return await patcher_for(pv, endpoint).check_datasets(
                ids, repositories=roots, verify=verify, repair=repair, on_progress=on_progress
            )

    report = run_with_client(url, work)
    _warn(report.unavailable, as_json)
    emit(as_json, _check_doc(report), lambda: _print_check(report))
    _exit_for(["not_found" if d.not_found else "" for d in report.datasets], report.ok)
