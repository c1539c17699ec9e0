"""``provena-like upload|download|sync|verify DATASET PATH``: move and check a dataset's files.

Exit codes: ``0`` every file done (or unchanged), ``1`` some file failed (or, for ``verify``,
differs from the manifest), ``2`` wrong usage. ``--json`` prints one JSON document with a
result per file instead of the summary; the progress bar (stderr) shows only on a terminal.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import anyio
import typer

from provena_like.cli._common import UrlOption, console, err_console, load_config, run
from provena_like.cli.progress import transfer_bar
from provena_like.client import ProvenaClient
from provena_like.modules.interactive import InteractiveDataset
from provena_like.modules.selection import select_files
from provena_like.storage import FileResult, ProgressCallback, TransferResult, hash_file
from provena_like.storage._plan import matches

__all__ = ["download", "sync", "upload", "verify"]

IncludeOption = Annotated[
    list[str] | None,
    typer.Option("--include", "-i", help="Glob on the relative path (repeatable)."),
]
ExcludeOption = Annotated[
    list[str] | None,
    typer.Option("--exclude", "-x", help="Glob to leave out (repeatable)."),
]
JsonOption = Annotated[
    bool, typer.Option("--json", help="Print per-file results as one JSON document.")
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


Work = Callable[[ProvenaClient, ProgressCallback | None], Awaitable[TransferResult]]


def _dataset_run(
    url: str | None, work: Work, action: str, as_json: bool, *, bar: bool = True
) -> None:
    """Open the dataset's client, run ``work(ds, progress)``, report, exit."""

    async def go() -> TransferResult:
        async with ProvenaClient(load_config(url)) as pv:
            with transfer_bar(err_console, action) as sink:
                return await work(pv, sink if bar else None)

    _report(action, run(go), as_json)


def _usage(message: str) -> NoReturn:
    err_console.print(f"[red]usage:[/] {message}")
    raise typer.Exit(2)


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

    async def work(pv: ProvenaClient, progress: ProgressCallback | None) -> TransferResult:
        ds = await pv.datastore.interactive(dataset)
        return await ds.upload(
            path,
            prefix=prefix,
            include=include or (),
            exclude=exclude or (),
            progress=progress,
            concurrency=concurrency,
        )

    _dataset_run(url, work, "upload", as_json)


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

    async def work(pv: ProvenaClient, progress: ProgressCallback | None) -> TransferResult:
        ds = await pv.datastore.interactive(dataset)
        return await ds.download(
            path,
            paths=paths,
            include=include or (),
            exclude=exclude or (),
            progress=progress,
            concurrency=concurrency,
        )

    _dataset_run(url, work, "download", as_json)


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

    async def work(pv: ProvenaClient, progress: ProgressCallback | None) -> TransferResult:
        ds = await pv.datastore.interactive(dataset)
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

    _dataset_run(url, work, f"sync {direction.value}", as_json)


async def verify_files(
    ds: InteractiveDataset,
    root: Path,
    *,
    include: list[str] | tuple[str, ...] = (),
    exclude: list[str] | tuple[str, ...] = (),
) -> TransferResult:
    """Compare the files under ``root`` with the manifest (size and sha256), reading only.

    Returns:
        ``ok`` for a match, ``failed`` for a missing or different file, ``skipped`` for a
        local file the manifest doesn't have.
    """
    selection = select_files(await ds.list_files(), None)
    limiter = anyio.CapacityLimiter(max(2, os.cpu_count() or 2))
    results: dict[str, FileResult] = {}

    async def check(key: str, relative: str, sha256: str | None, size: int) -> None:
        local = root / relative
        try:
            info = await anyio.to_thread.run_sync(os.stat, local, limiter=limiter)
        except OSError:
            results[key] = FileResult(key, "failed", size=size, reason="missing", local=local)
            return
        if info.st_size != size:
            reason = f"size {info.st_size}, the manifest says {size}"
            results[key] = FileResult(key, "failed", size=size, reason=reason, local=local)
            return
        got = (await anyio.to_thread.run_sync(hash_file, local, limiter=limiter)).sha256
        if sha256 is not None and got != sha256:
            reason = f"sha256 {got}, the manifest says {sha256}"
            results[key] = FileResult(key, "failed", size=size, reason=reason, local=local)
            return
        results[key] = FileResult(key, "ok", size=size, sha256=got, local=local)

    wanted = [spec for spec in selection.files if matches(spec[0], include, exclude)]
    async with anyio.create_task_group() as tg:
        for key, relative, sha256, size in wanted:
            tg.start_soon(check, key, relative, sha256, size)
    known = {relative for _, relative, _, _ in selection.files}

    def extras() -> list[FileResult]:
        found = []
        for p in sorted(root.rglob("*")) if root.is_dir() else []:
            rel = p.relative_to(root).as_posix()
            if p.is_file() and rel not in known and "partial" not in p.name:
                if matches(rel, include, exclude):
                    found.append(FileResult(rel, "skipped", reason="not in the manifest", local=p))
        return found

    extra = await anyio.to_thread.run_sync(extras)
    return TransferResult([results[spec[0]] for spec in wanted] + extra)


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

    async def work(pv: ProvenaClient, progress: ProgressCallback | None) -> TransferResult:
        del progress
        ds = await pv.datastore.interactive(dataset)
        return await verify_files(ds, path, include=include or [], exclude=exclude or [])

    _dataset_run(url, work, "verify", as_json, bar=False)
