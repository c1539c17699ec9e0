"""``provena-like upload|download|sync|verify DATASET PATH``: move and check a dataset's files.

Exit codes: ``0`` every file done (or unchanged), ``1`` some file failed (or, for ``verify``,
differs from the manifest), ``2`` wrong usage, ``130`` interrupted (re-run to resume); the
others are :class:`~provena_like.cli._errors.ExitCode`'s. ``--json`` prints one JSON document
with a result per file instead of the summary; the progress bar (stderr) shows only on a
terminal, and not with ``--no-progress`` (``PROVENA_NO_PROGRESS=1``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from provena_like.cli._common import (
    JsonOption,
    NoProgressOption,
    UrlOption,
    console,
    err_console,
    run_with_client,
)
from provena_like.cli._errors import CliFailure, ExitCode

if TYPE_CHECKING:  # imported when a command runs (the storage engine loads boto)
    from provena_like.client import ProvenaClient
    from provena_like.modules.interactive import InteractiveDataset
    from provena_like.storage import (
        CheckStatus,
        FileResult,
        FileStatus,
        ProgressCallback,
        TransferResult,
        VerifyResult,
    )

    Work = Callable[[InteractiveDataset, ProgressCallback | None], Awaitable[TransferResult]]

__all__ = ["download", "sync", "upload", "verify"]

IncludeOption = Annotated[
    list[str] | None,
    typer.Option("--include", "-i", help="Glob on the relative path (repeatable)."),
]
ExcludeOption = Annotated[
    list[str] | None,
    typer.Option("--exclude", "-x", help="Glob to leave out (repeatable)."),
]
ConcurrencyOption = Annotated[
    int | None, typer.Option("--concurrency", "-c", min=1, help="Requests in flight.")
]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Change nothing; show what would be done.")
]
PrefixOption = Annotated[str, typer.Option("--prefix", help="Folder inside the dataset.")]
PathsOption = Annotated[
    list[str] | None,
    typer.Option("--path", "-p", help="A file or folder of the dataset (repeatable)."),
]


class Direction(StrEnum):
    """Which way ``sync`` moves files."""

    up = "up"
    down = "down"


def _as_json(f: FileResult) -> dict[str, Any]:
    return {
        "path": f.path,
        "status": f.status,
        "size": f.size,
        "sha256": f.sha256,
        "reason": f.reason,
        "local": str(f.local) if f.local is not None else None,
    }


def _report(action: str, result: TransferResult, as_json: bool) -> None:
    """Print the result and exit 1 if any file failed."""
    failed = result.failed
    if as_json:
        doc = {
            "action": action,
            "ok": len(result.ok),
            "skipped": len(result.skipped),
            "failed": len(failed),
            "bytes": result.bytes,
            "files": [_as_json(f) for f in result.files],
        }
        typer.echo(json.dumps(doc))
    else:
        for f in result.skipped:
            if f.reason != "unchanged":
                console.print(f"[yellow]{f.reason}[/] {f.path}")
        for f in failed:
            err_console.print(f"[red]failed[/] {f.path}: {f.reason}")
        console.print(
            f"{action}: {len(result.ok)} ok, {len(result.skipped)} skipped, "
            f"{len(failed)} failed, {result.bytes:,} bytes"
        )
    if failed:
        raise typer.Exit(1)


def _dataset_run(
    url: str | None, dataset: str, work: Work, action: str, as_json: bool, *, bar: bool = True
) -> None:
    """Open the dataset, run ``work(ds, progress)``, report, exit.

    On Ctrl-C: exit 130 saying how many bytes were moved and kept (a re-run resumes), and for
    an upload how many files finished and were registered before it stopped.
    """
    from provena_like.cli.progress import ProgressSink, transfer_bar

    sinks: list[ProgressSink] = []

    async def open_and_work(pv: ProvenaClient) -> TransferResult:
        ds = await pv.datastore.interactive(dataset)
        with transfer_bar(err_console, action, show=bar) as sink:
            sinks.append(sink)
            return await work(ds, sink)

    try:
        result = run_with_client(url, open_and_work)
    except CliFailure as failure:
        if failure.code != ExitCode.INTERRUPTED:
            raise
        kept = sinks[0].bytes_done if sinks else 0
        stopped = sinks[0].interrupted if sinks else None
        files = ""
        if stopped is not None:
            files = (
                f"{stopped.files_finished:,} files kept, "
                f"{stopped.files_registered:,} of them registered; "
            )
        raise CliFailure(
            ExitCode.INTERRUPTED,
            f"interrupted: re-run the same command to resume ({files}{kept:,} bytes kept)",
            bytes_kept=kept,
            files_kept=stopped.files_finished if stopped else None,
            files_registered=stopped.files_registered if stopped else None,
        ) from failure
    _report(action, result, as_json)


def _usage(message: str) -> NoReturn:
    raise CliFailure(ExitCode.USAGE, message)


def upload(
    dataset: Annotated[str, typer.Argument(help="The dataset's handle.")],
    path: Annotated[Path, typer.Argument(help="A folder (its contents) or a file.")],
    prefix: PrefixOption = "",
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    concurrency: ConcurrencyOption = None,
    no_progress: NoProgressOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Upload files into a dataset and register them (checksummed, resumable).

    Files of a folder that the dataset already has (same size and sha256, registered or
    just in the store) are not sent again: after an interruption, re-run the same command.
    """
    if not path.exists():
        _usage(f"{path} does not exist")

    async def work(ds: InteractiveDataset, progress: ProgressCallback | None) -> TransferResult:
        # a folder: a re-run sends only what the dataset lacks (a sync without deletions)
        send = ds.sync_up if path.is_dir() else ds.upload
        return await send(
            path,
            prefix=prefix,
            include=include or (),
            exclude=exclude or (),
            progress=progress,
            concurrency=concurrency,
        )

    _dataset_run(url, dataset, work, "upload", as_json, bar=not no_progress)


def download(
    dataset: Annotated[str, typer.Argument(help="The dataset's handle.")],
    path: Annotated[Path, typer.Argument(help="The destination folder.")],
    paths: PathsOption = None,
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    concurrency: ConcurrencyOption = None,
    no_progress: NoProgressOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Download registered files, each verified against its manifest sha256."""

    async def work(ds: InteractiveDataset, progress: ProgressCallback | None) -> TransferResult:
        return await ds.download(
            path,
            paths=paths,
            include=include or (),
            exclude=exclude or (),
            progress=progress,
            concurrency=concurrency,
        )

    _dataset_run(url, dataset, work, "download", as_json, bar=not no_progress)


def sync(
    dataset: Annotated[str, typer.Argument(help="The dataset's handle.")],
    path: Annotated[Path, typer.Argument(help="The local folder.")],
    direction: Annotated[
        Direction, typer.Option("--direction", "-d", help="up: local → dataset; down: back.")
    ] = Direction.up,
    prefix: PrefixOption = "",
    delete: Annotated[
        bool,
        typer.Option(
            "--delete",
            help="Delete extraneous files on the receiving side (up: unregister them from the "
            "dataset and delete their objects; down: delete the local files). Asks first on a "
            "terminal (unless --yes).",
        ),
    ] = False,
    max_delete: Annotated[
        int | None,
        typer.Option(
            "--max-delete",
            min=0,
            help="With --delete: refuse (change nothing, exit 1) if more files would go.",
        ),
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="With --delete: don't ask for confirmation.")
    ] = False,
    dry_run: DryRunOption = False,
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    concurrency: ConcurrencyOption = None,
    no_progress: NoProgressOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Move only the files whose size or sha256 differ (up, or down with --direction down)."""
    if direction is Direction.up and not path.is_dir():
        _usage(f"{path} is not a folder")

    def work_for(dry: bool) -> Work:
        async def work(ds: InteractiveDataset, progress: ProgressCallback | None) -> TransferResult:
            if direction is Direction.up:
                return await ds.sync_up(
                    path,
                    prefix=prefix,
                    delete=delete,
                    dry_run=dry,
                    include=include or (),
                    exclude=exclude or (),
                    progress=progress,
                    concurrency=concurrency,
                )
            return await ds.sync_down(
                path,
                paths=prefix or None,
                delete=delete,
                dry_run=dry,
                include=include or (),
                exclude=exclude or (),
                progress=progress,
                concurrency=concurrency,
            )

        return work

    if delete and not dry_run:
        _check_deletions(url, dataset, work_for(True), max_delete, ask=not yes)
    action = f"sync {direction.value}"
    _dataset_run(url, dataset, work_for(dry_run), action, as_json, bar=not no_progress)


def _check_deletions(
    url: str | None, dataset: str, plan: Work, max_delete: int | None, *, ask: bool
) -> None:
    """Plan the sync (a dry run); refuse beyond ``max_delete``; on a terminal, ask first."""

    async def plan_work(pv: ProvenaClient) -> TransferResult:
        return await plan(await pv.datastore.interactive(dataset), None)

    doomed = [f.path for f in run_with_client(url, plan_work).files if f.reason == "would delete"]
    if not doomed:
        return
    if max_delete is not None and len(doomed) > max_delete:
        raise CliFailure(
            ExitCode.FAILED,
            f"{len(doomed)} files would be deleted, more than --max-delete {max_delete}: "
            "nothing was changed (--dry-run lists them)",
            kind="refused",
            would_delete=len(doomed),
        )
    if ask and sys.stdin.isatty():
        shown = ", ".join(doomed[:5]) + (f" and {len(doomed) - 5} more" if len(doomed) > 5 else "")
        if not typer.confirm(f"Delete {len(doomed)} files ({shown})?", err=True):
            raise CliFailure(
                ExitCode.FAILED, "nothing was changed (deletion declined)", kind="declined"
            )


_CHECK_AS_RESULT: dict[CheckStatus, FileStatus] = {
    "ok": "ok",
    "mismatch": "failed",
    "missing-local": "failed",
    "missing-remote": "skipped",
}
_CHECK_REASON: dict[CheckStatus, str] = {
    "missing-local": "missing",
    "missing-remote": "not in the manifest",
}


def _as_transfer_result(checks: VerifyResult) -> TransferResult:
    """Checks as the per-file results every transfer command prints."""
    from provena_like.storage import FileResult, TransferResult

    return TransferResult(
        [
            FileResult(
                c.path,
                _CHECK_AS_RESULT[c.status],
                size=c.size,
                sha256=c.sha256,
                reason=_CHECK_REASON.get(c.status, c.reason),
                local=c.local,
            )
            for c in checks
        ]
    )


def verify(
    dataset: Annotated[str, typer.Argument(help="The dataset's handle.")],
    path: Annotated[Path, typer.Argument(help="The local copy to check.")],
    paths: Annotated[
        list[str] | None,
        typer.Option(
            "--path",
            "-p",
            help="Check only this file or folder of the dataset, e.g. after download -p "
            "(repeatable).",
        ),
    ] = None,
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    no_progress: NoProgressOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Check a local copy against the manifest's sizes and sha256 (nothing is transferred)."""
    if not path.is_dir():
        _usage(f"{path} is not a folder")

    async def work(ds: InteractiveDataset, progress: ProgressCallback | None) -> TransferResult:
        checks = await ds.verify(
            path, paths=paths, include=include or (), exclude=exclude or (), progress=progress
        )
        return _as_transfer_result(checks)

    _dataset_run(url, dataset, work, "verify", as_json, bar=not no_progress)
