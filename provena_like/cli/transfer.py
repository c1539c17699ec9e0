"""``provena-like upload|download|sync|verify DATASET PATH``: move and check a dataset's files.

Exit codes: ``0`` every file done (or unchanged), ``1`` some file failed (or, for ``verify``,
differs from the manifest), ``2`` wrong usage. ``--json`` prints one JSON document with a
result per file instead of the summary; the progress bar (stderr) shows only on a terminal.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from provena_like.cli._common import (
    JsonOption,
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
    """Open the dataset, run ``work(ds, progress)``, report, exit."""
    from provena_like.cli.progress import transfer_bar

    async def open_and_work(pv: ProvenaClient) -> TransferResult:
        ds = await pv.datastore.interactive(dataset)
        with transfer_bar(err_console, action) as sink:
            return await work(ds, sink if bar else None)

    _report(action, run_with_client(url, open_and_work), as_json)


def _usage(message: str) -> NoReturn:
    raise CliFailure(ExitCode.USAGE, message)


def upload(
    dataset: Annotated[str, typer.Argument(help="The dataset's handle.")],
    path: Annotated[Path, typer.Argument(help="A folder (its contents) or a file.")],
    prefix: PrefixOption = "",
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    concurrency: ConcurrencyOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Upload files into a dataset and register them (checksummed, resumable)."""
    if not path.exists():
        _usage(f"{path} does not exist")

    async def work(ds: InteractiveDataset, progress: ProgressCallback | None) -> TransferResult:
        return await ds.upload(
            path,
            prefix=prefix,
            include=include or (),
            exclude=exclude or (),
            progress=progress,
            concurrency=concurrency,
        )

    _dataset_run(url, dataset, work, "upload", as_json)


def download(
    dataset: Annotated[str, typer.Argument(help="The dataset's handle.")],
    path: Annotated[Path, typer.Argument(help="The destination folder.")],
    paths: Annotated[
        list[str] | None,
        typer.Option("--path", "-p", help="A file or folder of the dataset (repeatable)."),
    ] = None,
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    concurrency: ConcurrencyOption = None,
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

    _dataset_run(url, dataset, work, "download", as_json)


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
            "dataset and delete their objects; down: delete the local files).",
        ),
    ] = False,
    dry_run: DryRunOption = False,
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    concurrency: ConcurrencyOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Move only the files whose size or sha256 differ (up, or down with --direction down)."""
    if direction is Direction.up and not path.is_dir():
        _usage(f"{path} is not a folder")

    async def work(ds: InteractiveDataset, progress: ProgressCallback | None) -> TransferResult:
        if direction is Direction.up:
            return await ds.sync_up(
                path,
                prefix=prefix,
                delete=delete,
                dry_run=dry_run,
                include=include or (),
                exclude=exclude or (),
                progress=progress,
                concurrency=concurrency,
            )
        return await ds.sync_down(
            path,
            paths=prefix or None,
            delete=delete,
            dry_run=dry_run,
            include=include or (),
            exclude=exclude or (),
            progress=progress,
            concurrency=concurrency,
        )

    _dataset_run(url, dataset, work, f"sync {direction.value}", as_json)


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
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Check a local copy against the manifest's sizes and sha256 (nothing is transferred)."""
    if not path.is_dir():
        _usage(f"{path} is not a folder")

    async def work(ds: InteractiveDataset, progress: ProgressCallback | None) -> TransferResult:
        del progress
        checks = await ds.verify(path, include=include or (), exclude=exclude or ())
        return _as_transfer_result(checks)

    _dataset_run(url, dataset, work, "verify", as_json, bar=False)
