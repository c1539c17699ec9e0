"""``provena-like patch PATH…``: replace registered files in every repository that holds them.

The work is :class:`~provena_like.modules.patcher.Patcher`'s (plan, stage, verify, commit,
clean up; journaled). Exit codes: ``0`` done (or planned, with ``--dry-run``), ``1`` the
patch failed or was aborted (nothing committed), a revision is protected (without
``--force``), ``2`` wrong usage (a repository that can't be opened here), ``4`` a path
matches no registered dataset you may read, ``130`` interrupted (the message says how to
resume). ``--json`` prints one JSON document.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from provena_like.cli._common import (
    JsonOption,
    NoProgressOption,
    UrlOption,
    console,
    emit,
    err_console,
)
from provena_like.cli._errors import CliFailure, ExitCode
from provena_like.cli._repositories import LocalEndpointOption, parse_local_endpoint, patcher_for

if TYPE_CHECKING:
    from provena_like.client import ProvenaClient
    from provena_like.modules.patcher import PatchOutcome


def _repositories(values: list[str]) -> dict[str, Path | None]:
    """``HANDLE[=LOCAL_ROOT]`` options → the Patcher's ``repositories`` mapping."""
    found: dict[str, Path | None] = {}
    for value in values:
        handle, sep, root = value.partition("=")
        if not handle or "/" not in handle or (sep and not root):
            raise CliFailure(
                ExitCode.USAGE,
                f"--repository {value!r}: expected HANDLE or HANDLE=LOCAL_ROOT "
                "(e.g. 10378.1/7=/mnt/lab-server)",
            )
        found[handle] = Path(root) if sep else None
    return found


def _outcome_json(outcome: PatchOutcome) -> dict[str, Any]:
    plan = outcome.plan
    return {
        "patch_id": outcome.patch_id,
        "dry_run": outcome.dry_run,
        "step": outcome.step,
        "resumed": outcome.resumed,
        "files": [
            {
                "path": str(f.path),
                "dataset": f.dataset,
                "rel_path": f.rel_path,
                "old_size": f.old_size,
                "size": f.size,
                "sha256": f.sha256,
                "new_revision": f.new_revision,
                "new_dataset": f.new_dataset,
                "locations": [
                    {
                        "repository": loc.repository,
                        "old_path": loc.old_path,
                        "staged_path": loc.staged_path,
                    }
                    for loc in f.locations
                ],
            }
            for f in plan.files
        ],
        "unchanged": [str(p) for p in plan.unchanged],
        "cleaned": [{"repository": r, "path": p} for r, p in outcome.cleaned],
    }


def _print(outcome: PatchOutcome) -> None:
    plan = outcome.plan
    if outcome.dry_run:
        for handle, planned in plan.repositories.items():
            console.print(f"[bold]{handle}[/]: {len(planned)} file(s)")
            for f, loc in planned:
                if f.new_revision is not None:
                    console.print(
                        f"  new revision {f.new_revision} (protected {f.rel_path} stays): "
                        f"-> {loc.staged_path}  ({f.path})"
                    )
                else:
                    console.print(f"  {loc.old_path} -> {loc.staged_path}  ({f.path})")
        console.print(
            f"would patch {len(plan.files)} file(s) in {len(plan.repositories)} "
            f"repositories; {len(plan.unchanged)} unchanged (patch id {outcome.patch_id})"
        )
        return
    resumed = " (resumed)" if outcome.resumed else ""
    new = [f for f in plan.files if f.new_revision is not None]
    revisions = f"; {len(new)} as a new default revision (protected)" if new else ""
    console.print(
        f"[green]patched[/] {len(plan.files)} file(s) in {len(plan.repositories)} "
        f"repositories{resumed}{revisions}; {len(plan.unchanged)} unchanged; "
        f"{len(outcome.cleaned)} old object(s) removed (patch id {outcome.patch_id})"
    )


def _resume_hint(paths: list[Path], patch_id: str | None) -> str | None:
    """How to resume: the unfinished journal of these paths (or ``patch_id``)."""
    from provena_like.modules.patcher import Journal, default_journal_dir, journal_paths

    directory = default_journal_dir()
    if patch_id is not None:
        try:
            journal: Journal | None = Journal.load(directory, patch_id)
        except Exception:
            return None
    else:
        journal = Journal.unfinished_for(directory, journal_paths(paths)) if paths else None
    if journal is None or journal.finished:
        return None
    return (
        f"patch {journal.patch_id} stopped after its '{journal.step}' step; "
        f"re-run the same command, or: provena-like patch --resume {journal.patch_id}"
    )


def patch(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(help="New versions of registered files (inside ALF session folders)."),
    ] = None,
    repository: Annotated[
        list[str] | None,
        typer.Option(
            "--repository",
            "-r",
            help="HANDLE=LOCAL_ROOT: where a POSIX repository is mounted here (repeatable). "
            "S3 repositories are opened with the server's credentials.",
        ),
    ] = None,
    local_endpoint: LocalEndpointOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan only: print what each repository would get.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="A file of a protected revision becomes a new revision (ONE's next-revision "
            "rule): registered not present and not default, staged, verified, then made "
            "present and the default by the commit. The protected revision stays as it is.",
        ),
    ] = False,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue the interrupted patch PATCH_ID.")
    ] = None,
    read_back_bytes: Annotated[
        bool,
        typer.Option(
            "--read-back-bytes",
            help="Verify every staged copy by reading it back and hashing it (default: an S3 "
            "copy whose ETag, the store's md5 of the bytes it got, is the file's md5 is "
            "verified by one HEAD).",
        ),
    ] = False,
    no_progress: NoProgressOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Replace registered files everywhere they are: staged, verified, committed, resumable.

    Each local file is a new version of a registered file (same session, collection,
    revision and name). The new bytes are staged in every repository holding it and read
    back; one commit switches the records; the old objects are removed last. A protected
    revision is refused unless --force (then it becomes a new default revision). Interrupted?
    Re-run the same command (or use --resume PATCH_ID): it continues from its journal.
    Globus repositories need --local-endpoint COLLECTION=DIR.
    """
    from provena_like.cli._common import run_with_client
    from provena_like.cli.progress import transfer_bar

    given = list(paths or [])
    if not given and resume is None:
        raise CliFailure(ExitCode.USAGE, "give the files to patch, or --resume PATCH_ID")
    if given and resume is not None:
        raise CliFailure(ExitCode.USAGE, "give either files or --resume PATCH_ID, not both")
    repos = _repositories(repository or [])
    endpoint = parse_local_endpoint(local_endpoint)

    async def work(pv: ProvenaClient) -> PatchOutcome:
        with transfer_bar(err_console, "patch", show=not no_progress and not as_json) as sink:
            patcher = patcher_for(pv, endpoint)
            patcher.read_back_bytes = read_back_bytes
            if resume is not None:
                return await patcher.resume(resume, repositories=repos, on_progress=sink)
            return await patcher.patch_files(
                given, repositories=repos, dry_run=dry_run, force=force, on_progress=sink
            )

    try:
        outcome = run_with_client(url, work)
    except CliFailure as failure:
        hint = _resume_hint(given, resume)
        if hint is None:
            raise
        raise CliFailure(
            failure.code, f"{failure.message}; {hint}", kind=failure.kind, **failure.extra
        ) from failure
    except Exception as exc:
        _raise_mapped(exc, given, resume)
    emit(as_json, _outcome_json(outcome), lambda: _print(outcome))


def _raise_mapped(exc: Exception, paths: list[Path], patch_id: str | None) -> None:
    """The Patcher's own errors as exit codes; any error of a journaled patch says how to resume."""
    from provena_like.cli._errors import describe
    from provena_like.modules.patcher import ProtectedDatasets, UnknownFiles

    if isinstance(exc, UnknownFiles):
        raise CliFailure(ExitCode.NOT_FOUND, str(exc), paths=exc.paths) from exc
    if isinstance(exc, ProtectedDatasets):
        raise CliFailure(
            ExitCode.FAILED, str(exc), kind="protected", datasets=[d for _, d in exc.datasets]
        ) from exc
    failure = describe(exc)
    if failure is None:
        raise exc
    hint = _resume_hint(paths, patch_id)
    if hint is not None:
        raise CliFailure(
            failure.code, f"{failure.message}; {hint}", kind=failure.kind, **failure.extra
        ) from exc
    raise failure from exc
