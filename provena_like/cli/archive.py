"""``provena-like archive publish|discover|retrieve|ls``: raw data in storage locations.

The work is ``pv.archive``'s (:class:`~provena_like.modules.archive.Archive`). Files move
through a local endpoint, ``--local-endpoint COLLECTION=DIR`` (a collection that shows the
directory DIR of this machine) or ``--local-endpoint NAME`` (the config's
``[local_endpoints.NAME]``); the sign-in is the SDK's (``provena-like login``), never a
config file.

Exit codes: ``0`` every file archived / found / retrieved (or would be), ``1`` some file
failed, a session or location was left out, or retrieve refused to write over files, ``2``
wrong usage (no storage location of that kind, no local endpoint); the others are
:class:`~provena_like.cli._errors.ExitCode`'s. ``--json`` prints one JSON document.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provena_like.cli._common import JsonOption, UrlOption, console, emit, err_console
from provena_like.cli._common import run_with_client as _run
from provena_like.cli._errors import CliFailure, ExitCode
from provena_like.cli._repositories import LocalEndpointOption, parse_local_endpoint

if TYPE_CHECKING:  # imported when a command runs: `--help` stays fast
    from collections.abc import Awaitable, Callable

    from provena_like.client import ProvenaClient
    from provena_like.modules.archive import ArchiveEvent, ArchiveResult
    from provena_like.repositories import LocalEndpoint

__all__ = ["app"]

app = typer.Typer(
    help="Archive raw data to storage locations; rebuild the records; fetch files back.",
    no_args_is_help=True,
)

KindArgument = Annotated[str, typer.Argument(help="The archive type, e.g. raw-ephys.")]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Change nothing: say what would be done.")
]
SessionOption = Annotated[
    str | None, typer.Option("--session", help="Only this session's files (handle).")
]
PrefixOption = Annotated[
    str | None, typer.Option("--path-prefix", help="Only paths starting with this.")
]


def _endpoint(value: str | None) -> LocalEndpoint:
    endpoint = parse_local_endpoint(value)
    if endpoint is None:
        raise CliFailure(
            ExitCode.USAGE,
            "give the local endpoint the files go through: --local-endpoint C=DIR or NAME",
        )
    return endpoint


def _doc(result: ArchiveResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "files": [asdict(f) for f in result.files],
        "tasks": result.tasks,
        "unmatched": [asdict(u) for u in result.unmatched],
        "problems": result.problems,
        "records_changed": result.records_changed,
    }


def _print(result: ArchiveResult) -> None:
    for f in result.files:
        style = "red" if f.status == "failed" else "green"
        console.print(f"[{style}]{f.status}[/] {f.path}" + (f": {f.reason}" if f.reason else ""))
    for u in result.unmatched:
        console.print(f"[yellow]unmatched[/] {u.path}: {u.reason}")
    for problem in result.problems:
        err_console.print(f"[red]problem[/] {problem}")
    counts: dict[str, int] = {}
    for f in result.files:
        counts[f.status] = counts.get(f.status, 0) + 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "no files"
    tasks = f"; tasks {', '.join(result.tasks.values())}" if result.tasks else ""
    console.print(f"{summary}{tasks}")


def _run_workflow(
    url: str | None,
    as_json: bool,
    verb: str,
    work: Callable[[ProvenaClient, Callable[[ArchiveEvent], None]], Awaitable[ArchiveResult]],
) -> None:
    from provena_like.cli.progress import step_bar
    from provena_like.modules.archive import ArchiveRefused

    async def go(pv: ProvenaClient) -> ArchiveResult:
        with step_bar(err_console, verb, None, show=not as_json) as update:

            def on_progress(event: ArchiveEvent) -> None:
                update(f"{event.step} {event.path or ''}", event.step != "sent")

            return await work(pv, on_progress)

    try:
        result = _run(url, go)
    except ArchiveRefused as exc:
        raise CliFailure(ExitCode.FAILED, str(exc), kind="refused") from exc
    emit(as_json, _doc(result), lambda: _print(result))
    if not result.ok:
        raise typer.Exit(ExitCode.FAILED)


@app.command("publish")
def publish(
    kind: KindArgument,
    sessions: Annotated[list[str], typer.Argument(help="Session handles.")],
    local_endpoint: LocalEndpointOption = None,
    source: Annotated[
        Path | None,
        typer.Option(
            "--source", help="The local data root, laid out like the archive (default: DIR)."
        ),
    ] = None,
    dry_run: DryRunOption = False,
    read_back: Annotated[
        bool,
        typer.Option(
            "--read-back", help="Also read the archive's copies back and compare their sha256."
        ),
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Archive the sessions' files: one checksum-verified task per storage location.

    Each file is recorded only after its task SUCCEEDED and the archive's sizes were read
    back; files already recorded with the same size and sha256 are not sent again. A failed
    or paused task records nothing: run the same command again.
    """
    endpoint = _endpoint(local_endpoint)
    _run_workflow(
        url,
        as_json,
        "publish",
        lambda pv, hook: pv.archive.publish(
            kind,
            sessions=sessions,
            local=endpoint,
            source=source,
            dry_run=dry_run,
            read_back=read_back,
            on_progress=hook,
        ),
    )


@app.command("discover")
def discover(
    kind: KindArgument,
    local_endpoint: LocalEndpointOption = None,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Walk the storage locations and rebuild their records; list what doesn't fit."""
    endpoint = _endpoint(local_endpoint)
    _run_workflow(
        url,
        as_json,
        "discover",
        lambda pv, hook: pv.archive.discover(
            kind, local=endpoint, dry_run=dry_run, on_progress=hook
        ),
    )


@app.command("retrieve")
def retrieve(
    kind: KindArgument,
    dest: Annotated[
        Path, typer.Option("--dest", help="Where to put the files (inside the endpoint's DIR).")
    ],
    local_endpoint: LocalEndpointOption = None,
    session: SessionOption = None,
    path_prefix: PrefixOption = None,
    overwrite: Annotated[
        bool,
        typer.Option(
            "--overwrite",
            help="Write over the originals and over files whose sha256 differs (refused "
            "otherwise).",
        ),
    ] = False,
    dry_run: DryRunOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Copy archived files back to --dest, laid out as in the archive, checked by sha256."""
    endpoint = _endpoint(local_endpoint)
    _run_workflow(
        url,
        as_json,
        "retrieve",
        lambda pv, hook: pv.archive.retrieve(
            kind,
            dest=dest,
            local=endpoint,
            session=session,
            path_prefix=path_prefix,
            overwrite=overwrite,
            dry_run=dry_run,
            on_progress=hook,
        ),
    )


@app.command("ls")
def ls(
    kind: KindArgument,
    session: SessionOption = None,
    path_prefix: PrefixOption = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """List the archived-file records of the storage locations of KIND."""

    async def work(pv: ProvenaClient) -> list[Any]:
        return await pv.archive.ls(kind, session=session, path_prefix=path_prefix)

    records = _run(url, work)

    def human() -> None:
        for r in records:
            console.print(f"{r.path}  {r.size}  {r.sha256[:12]}  {r.session}")
        console.print(f"{len(records)} archived files")

    emit(as_json, {"files": [r.model_dump(mode="json") for r in records]}, human)
