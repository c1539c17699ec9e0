"""``provena-like transfer …``: list, copy and delete on Globus-style collections; follow tasks.

The commands call the async L2 :class:`~provena_like.clients.transfer.TransferClient`: by
default our server's transfer service (``<base_url>/v0.10/``, signed by your
``provena-like login``), with ``--globus`` real Globus (signed by ``transfer globus-login``,
the native app ``globus_client_id`` of the config).

A location is ``COLLECTION:PATH``: ``COLLECTION`` is a collection UUID, a dataset handle
(every dataset is a collection of our service) or a label of ``transfer_locations`` (then
``PATH`` is below the label's root); ``globus://<uuid>/path`` works too. Without ``:PATH``
it is the collection's root (or the label's).

Exit codes: those of :class:`~provena_like.cli._errors.ExitCode`. A task that is waited
for (``task wait``, ``cp --wait``, ``rm --wait``) exits ``0`` SUCCEEDED, ``1`` FAILED,
``6`` TIMED_OUT (still running: wait again), ``7`` INACTIVE (paused), ``8`` STUCK (still
active but retrying errors). A path refused before any request (``..``, a NUL byte, an
unknown label) or refused by the service as malformed exits ``2``; a path, task or
collection that does not exist, or that you may not use, ``4``.

This module imports nothing heavy at the top: ``provena-like --help`` stays fast.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from provena_like.cli._common import (
    JsonOption,
    NoProgressOption,
    UrlOption,
    console,
    emit,
    err_console,
    load_config,
    run,
)
from provena_like.cli._errors import CliFailure, ExitCode

if TYPE_CHECKING:  # imported when a command runs (globus-sdk is slow to import)
    from provena_like._core.config import ProvenaConfig
    from provena_like.clients.transfer import (
        FileEntry,
        GlobusNativeLogin,
        Location,
        Locations,
        Task,
        TaskHandle,
        TaskResult,
        TransferClient,
    )

__all__ = ["app", "location_of"]

T = TypeVar("T")

app = typer.Typer(
    help="Globus-style transfers: list, copy and delete on collections; follow their tasks.",
    no_args_is_help=True,
)
task_app = typer.Typer(help="Transfer and delete tasks: show, wait, list, cancel.")
endpoint_app = typer.Typer(help="Collections (endpoints): search, show.")
app.add_typer(task_app, name="task", no_args_is_help=True)
app.add_typer(endpoint_app, name="endpoint", no_args_is_help=True)

GlobusOption = Annotated[
    bool,
    typer.Option(
        "--globus",
        envvar="PROVENA_TRANSFER_GLOBUS",
        help="Talk to real Globus (after `transfer globus-login`) instead of our server.",
    ),
]
LocationArg = Annotated[
    str,
    typer.Argument(help="COLLECTION:PATH (collection UUID, dataset handle or label)."),
]
WaitOption = Annotated[
    bool, typer.Option("--wait", "-w", help="Wait for the task, then exit with its outcome.")
]
TimeoutOption = Annotated[
    float | None,
    typer.Option("--timeout", min=0, help="Stop waiting after this many seconds (exit 6)."),
]
PollOption = Annotated[
    float,
    typer.Option(
        "--poll",
        min=0.05,
        help="Seconds between two looks at the task (real Globus); our service answers a "
        "look when the task changes, holding it up to this long.",
    ),
]
StuckAfterOption = Annotated[
    float,
    typer.Option(
        "--stuck-after",
        min=0,
        help="Stop waiting once an active task has retried errors this long (exit 8).",
    ),
]
SubmissionIdOption = Annotated[
    str | None,
    typer.Option(
        "--submission-id",
        help="Submit under this id (repeat a submit safely: the first task is returned).",
    ),
]
LabelOption = Annotated[str | None, typer.Option("--label", help="A label for the task.")]
DeadlineOption = Annotated[
    str | None,
    typer.Option(
        "--deadline", help="ISO date-time (UTC without a zone): the task fails if not done by then."
    ),
]


class SyncLevel(StrEnum):
    """``--sync-level``: when a file already at the destination is skipped."""

    exists = "exists"
    size = "size"
    mtime = "mtime"
    checksum = "checksum"


class Scope(StrEnum):
    """``endpoint search --scope``."""

    all = "all"
    my_endpoints = "my-endpoints"
    administered_by_me = "administered-by-me"
    shared_with_me = "shared-with-me"


# -- plumbing -----------------------------------------------------------------------------------


def location_of(text: str, labels: Locations) -> Location:
    """The location ``COLLECTION:PATH`` (or ``globus://<uuid>/path``) names.

    ``COLLECTION`` is a label of ``labels`` (``PATH`` below its root), a collection UUID or
    a dataset handle (``prefix/n``: its collection UUID, derived from the handle).

    Raises:
        UsageError: none of those, e.g. an unknown label.
        UnsafePath: ``..`` or a NUL byte in the path.

    Example:
        ```python
        from provena_like.clients.transfer import Locations

        lab = "6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e"
        loc = location_of(f"{lab}:/data/raw", Locations())
        assert (loc.collection, loc.path) == (lab, "/data/raw")
        assert location_of("10378.1/42:x", Locations()).path == "/x"
        ```
    """
    from provena_like._core.errors import UsageError
    from provena_like.clients.transfer import Location
    from provena_like.models.transfer_collections import collection_id

    if text.startswith("globus://"):
        return labels.resolve(text)
    name, _, path = text.partition(":")
    if name in labels:
        return labels.resolve(text)
    try:
        collection = str(uuid.UUID(name))
    except ValueError:
        pass
    else:
        return Location(collection, path or "/")
    head, slash, tail = name.partition("/")
    if slash and head and tail:  # a handle, prefix/n
        return Location(collection_id(name), path or "/")
    known = ", ".join(sorted(labels)) or "none configured"
    raise UsageError(
        f"{text!r}: expected COLLECTION:PATH with a collection UUID, a dataset handle or a "
        f"location label (labels: {known})"
    )


def _transfer_run(
    url: str | None, globus: bool, work: Callable[[TransferClient], Awaitable[T]]
) -> T:
    """Run ``work(tc)`` with the transfer client of our server, or of real Globus."""
    config = load_config(url)
    if not globus:
        from provena_like.client import ProvenaClient

        async def ours() -> T:
            async with ProvenaClient(config) as pv:
                return await work(pv.transfer_client)

        return run(ours)

    async def real() -> T:
        from provena_like.clients.transfer import TransferClient

        login = _globus_login(config)
        try:
            async with TransferClient(
                auth=login,
                locations=config.transfer_locations,
                http_timeout=config.timeout,
                max_retries=config.max_retries,
            ) as tc:
                return await work(tc)
        finally:
            login.close()

    return run(real)


def _globus_login(config: ProvenaConfig) -> GlobusNativeLogin:
    """The Globus native-app login of ``config.globus_client_id`` (tokens in the token store)."""
    from provena_like.auth import TokenStore
    from provena_like.clients.transfer import TRANSFER_SCOPE, GlobusNativeLogin

    if not config.globus_client_id:
        raise CliFailure(
            ExitCode.USAGE,
            "--globus needs a Globus native app: set globus_client_id in the config file or "
            "PROVENA_GLOBUS_CLIENT_ID (register one at app.globus.org)",
        )
    return GlobusNativeLogin(
        config.globus_client_id, [TRANSFER_SCOPE], store=TokenStore(config.resolved_token_dir)
    )


def _deadline(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise CliFailure(
            ExitCode.USAGE, f"--deadline: not an ISO date-time: {text!r}", kind="usage"
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _entry_json(entry: FileEntry) -> dict[str, Any]:
    return entry.model_dump(mode="json")


def _print_entries(entries: list[FileEntry], long: bool, *, full: bool) -> None:
    from rich.markup import escape

    for e in entries:
        name = e.path if full else e.name
        shown = escape(name + ("/" if e.is_dir else ""))
        if long:
            size = "" if e.is_dir or e.size is None else f"{e.size:,}"
            when = e.last_modified.strftime("%Y-%m-%d %H:%M") if e.last_modified else ""
            console.print(f"{e.permissions or '':>5} {size:>14} {when:>16}  {shown}")
        else:
            console.print(shown)


# -- paths ---------------------------------------------------------------------------------------


@app.command("ls")
def ls(
    location: LocationArg,
    long: Annotated[bool, typer.Option("--long", "-l", help="Sizes, dates, modes.")] = False,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Everything below, breadth first.")
    ] = False,
    max_depth: Annotated[
        int | None, typer.Option("--max-depth", min=0, help="With -r: levels to descend.")
    ] = None,
    no_hidden: Annotated[
        bool, typer.Option("--no-hidden", help="Leave out names starting with a dot.")
    ] = False,
    name_filter: Annotated[
        str | None,
        typer.Option("--filter", help="A Globus filter, e.g. 'name:~*.csv' or 'type:dir'."),
    ] = None,
    globus: GlobusOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """List a directory of a collection (with -r, everything below it)."""

    async def work(tc: TransferClient) -> tuple[str, list[FileEntry]]:
        loc = location_of(location, tc.locations)
        if recursive:
            if name_filter is not None:
                raise CliFailure(ExitCode.USAGE, "--filter does not go with --recursive")
            entries = [
                e async for e in tc.walk(loc, max_depth=max_depth, show_hidden=not no_hidden)
            ]
            return loc.dir_path, entries
        listing = await tc.ls(loc, show_hidden=not no_hidden, filter=name_filter)
        return listing.path, listing.entries

    path, entries = _transfer_run(url, globus, work)
    doc = {"path": path, "entries": [_entry_json(e) for e in entries]}
    emit(as_json, doc, lambda: _print_entries(entries, long, full=recursive))


@app.command("mkdir")
def mkdir(
    location: LocationArg,
    exist_ok: Annotated[
        bool,
        typer.Option("--exist-ok", "-p", help="A directory that exists already is fine."),
    ] = False,
    globus: GlobusOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Make a directory (its parent must exist); exit 1 if it exists, unless --exist-ok."""

    async def work(tc: TransferClient) -> tuple[str, bool]:
        loc = location_of(location, tc.locations)
        return str(loc), await tc.mkdir(loc, exist_ok=exist_ok)

    where, created = _transfer_run(url, globus, work)
    emit(
        as_json,
        {"location": where, "created": created},
        lambda: console.print(f"{'created' if created else 'exists'}: {where}"),
    )


@app.command("rename")
def rename(
    source: LocationArg,
    destination: Annotated[
        str,
        typer.Argument(help="The new path: COLLECTION:PATH on the same collection, or /PATH."),
    ],
    globus: GlobusOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Rename (move) a file or directory within one collection."""

    async def work(tc: TransferClient) -> tuple[str, str]:
        from provena_like.clients.transfer import Location

        src = location_of(source, tc.locations)
        if destination.startswith("/"):
            dst = Location(src.collection, destination)
        else:
            dst = location_of(destination, tc.locations)
        await tc.rename(src, dst)
        return str(src), str(dst)

    old, new = _transfer_run(url, globus, work)
    emit(
        as_json,
        {"source": old, "destination": new},
        lambda: console.print(f"renamed {old} → {new}"),
    )


# -- tasks: submit, wait -------------------------------------------------------------------------


def _task_json(task: Task) -> dict[str, Any]:
    return task.model_dump(mode="json", exclude={"document"})


def _result_json(result: TaskResult) -> dict[str, Any]:
    return {
        "task_id": result.task_id,
        "outcome": result.outcome.value,
        "exit_code": int(_OUTCOME_EXIT[result.outcome.value]),
        "waited": round(result.waited, 3),
        "task": _task_json(result.task),
        "events": [e.model_dump(mode="json") for e in result.events],
    }


_OUTCOME_EXIT = {
    "SUCCEEDED": ExitCode.OK,
    "FAILED": ExitCode.FAILED,
    "TIMED_OUT": ExitCode.TIMED_OUT,
    "INACTIVE": ExitCode.INACTIVE,
    "STUCK": ExitCode.STUCK,
}
"""A wait's outcome → the exit code of the command that waited."""


def _wait_and_report(
    handle: TaskHandle,
    *,
    timeout: float | None,
    poll: float,
    stuck_after: float,
    show: bool,
    as_json: bool,
    submitted: dict[str, Any] | None = None,
) -> Awaitable[int]:
    """Wait for ``handle`` with a progress display; print the outcome; return the exit code."""
    from provena_like.cli.progress import task_bar

    async def go() -> int:
        with task_bar(err_console, f"task {handle.task_id}", show=show) as on_progress:
            result = await handle.wait(
                timeout, poll=poll, on_progress=on_progress, stuck_after=stuck_after
            )
        code = _OUTCOME_EXIT[result.outcome.value]
        doc = {**(submitted or {}), **_result_json(result)}
        emit(as_json, doc, lambda: _print_result(result))
        return int(code)

    return go()


def _print_result(result: TaskResult) -> None:
    from rich.markup import escape

    task = result.task
    colour = "green" if result.ok else "red"
    console.print(f"[{colour}]{result.outcome.value}[/] {escape(result.describe())}")
    console.print(
        f"files: {task.files_transferred} transferred, {task.files_skipped} skipped of "
        f"{task.files}; {task.bytes_transferred:,} bytes"
    )
    for event in result.events[:5]:
        if event.is_error:
            console.print(f"  [red]{escape(event.code)}[/] {escape(event.description)}")


def _submitted(handle: TaskHandle) -> dict[str, Any]:
    return {
        "task_id": handle.task_id,
        "submission_id": handle.submission_id,
        "code": handle.code,
        "type": handle.type,
    }


def _print_submitted(doc: dict[str, Any]) -> None:
    console.print(f"{doc['type'].lower()} task {doc['task_id']} ({doc['code']})")
    console.print(
        f"submission id {doc['submission_id']}; follow it: provena-like transfer task wait "
        f"{doc['task_id']}"
    )


def _submit_and_maybe_wait(
    url: str | None,
    globus: bool,
    submit: Callable[[TransferClient], Awaitable[TaskHandle]],
    *,
    wait: bool,
    timeout: float | None,
    poll: float,
    stuck_after: float,
    show: bool,
    as_json: bool,
) -> None:
    """Submit a task; print it, or wait for it and exit with its outcome."""
    submitted: list[str] = []

    async def work(tc: TransferClient) -> int:
        handle = await submit(tc)
        submitted.append(handle.task_id)
        doc = _submitted(handle)
        if not wait:
            emit(as_json, doc, lambda: _print_submitted(doc))
            return 0
        if not as_json:
            _print_submitted(doc)
        return await _wait_and_report(
            handle,
            timeout=timeout,
            poll=poll,
            stuck_after=stuck_after,
            show=show,
            as_json=as_json,
            submitted=doc,
        )

    try:
        code = _transfer_run(url, globus, work)
    except CliFailure as failure:
        if failure.code != ExitCode.INTERRUPTED or not submitted:
            raise
        raise CliFailure(
            ExitCode.INTERRUPTED,
            f"interrupted: task {submitted[0]} keeps running (provena-like transfer task wait "
            f"{submitted[0]}; task cancel stops it)",
            task_id=submitted[0],
        ) from failure
    if code:
        raise typer.Exit(code)


@app.command("cp")
def cp(
    source: LocationArg,
    destination: LocationArg,
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Copy a directory with all below it.")
    ] = False,
    sync_level: Annotated[
        SyncLevel | None,
        typer.Option(
            "--sync-level",
            "-s",
            help="Skip files already there: exists, size, mtime or checksum (safest).",
        ),
    ] = None,
    verify_checksum: Annotated[
        bool,
        typer.Option(
            "--verify-checksum/--no-verify-checksum",
            help="Compare checksums after each file (default: yes).",
        ),
    ] = True,
    preserve_timestamp: Annotated[
        bool, typer.Option("--preserve-timestamp", help="Keep modification times.")
    ] = False,
    delete_extra: Annotated[
        bool,
        typer.Option("--delete-extra", help="With -r: delete destination files the source lacks."),
    ] = False,
    exclude: Annotated[
        list[str] | None,
        typer.Option("--exclude", "-x", help="With -r: leave out names matching (repeatable)."),
    ] = None,
    skip_source_errors: Annotated[
        bool,
        typer.Option("--skip-source-errors", help="Skip unreadable sources instead of failing."),
    ] = False,
    submission_id: SubmissionIdOption = None,
    label: LabelOption = None,
    deadline: DeadlineOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    poll: PollOption = 2.0,
    stuck_after: StuckAfterOption = 60.0,
    no_progress: NoProgressOption = False,
    globus: GlobusOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Copy a file or (with -r) a directory between collections: submits a transfer task.

    Without --wait it prints the task id and exits 0; with --wait it shows the progress and
    exits with the task's outcome.
    """
    until = _deadline(deadline)

    async def submit(tc: TransferClient) -> TaskHandle:
        from provena_like.clients.transfer import FilterRule

        src = location_of(source, tc.locations)
        dst = location_of(destination, tc.locations)
        return await tc.transfer(
            src,
            dst,
            recursive=recursive,
            sync_level=sync_level.value if sync_level is not None else None,
            verify_checksum=verify_checksum,
            preserve_timestamp=preserve_timestamp or None,
            delete_destination_extra=delete_extra or None,
            filter_rules=[FilterRule(name=glob) for glob in exclude or ()],
            deadline=until,
            label=label,
            skip_source_errors=skip_source_errors or None,
            submission_id=submission_id,
        )

    _submit_and_maybe_wait(
        url,
        globus,
        submit,
        wait=wait,
        timeout=timeout,
        poll=poll,
        stuck_after=stuck_after,
        show=not no_progress,
        as_json=as_json,
    )


@app.command("rm")
def rm(
    locations: Annotated[
        list[str], typer.Argument(help="COLLECTION:PATH to delete (all on one collection).")
    ],
    recursive: Annotated[
        bool, typer.Option("--recursive", "-r", help="Delete directories with all below.")
    ] = False,
    ignore_missing: Annotated[
        bool, typer.Option("--ignore-missing", "-f", help="A missing path is not an error.")
    ] = False,
    submission_id: SubmissionIdOption = None,
    label: LabelOption = None,
    deadline: DeadlineOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    poll: PollOption = 2.0,
    stuck_after: StuckAfterOption = 60.0,
    no_progress: NoProgressOption = False,
    globus: GlobusOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Delete files or (with -r) directories: submits a delete task (--wait: its outcome)."""
    until = _deadline(deadline)

    async def submit(tc: TransferClient) -> TaskHandle:
        from provena_like.clients.transfer import Location

        locs = [location_of(text, tc.locations) for text in locations]
        collections = {loc.collection for loc in locs}
        if len(collections) != 1:
            raise CliFailure(ExitCode.USAGE, "rm deletes on one collection at a time")
        return await tc.delete(
            Location(collections.pop(), "/"),
            [loc.path for loc in locs],
            recursive=recursive,
            ignore_missing=ignore_missing or None,
            deadline=until,
            label=label,
            submission_id=submission_id,
        )

    _submit_and_maybe_wait(
        url,
        globus,
        submit,
        wait=wait,
        timeout=timeout,
        poll=poll,
        stuck_after=stuck_after,
        show=not no_progress,
        as_json=as_json,
    )


# -- tasks: show, wait, list, cancel -------------------------------------------------------------

TaskIdArg = Annotated[str, typer.Argument(help="The task id.")]


def _print_task(task: Task) -> None:
    from rich.markup import escape

    fatal = (
        f" ({task.fatal_error.code}: {task.fatal_error.description})" if task.fatal_error else ""
    )
    console.print(f"task {task.task_id} {task.type} {task.status.value}{escape(fatal)}")
    if task.label:
        console.print(f"  label: {escape(task.label)}")
    if task.nice_status and task.status.value == "ACTIVE":
        console.print(f"  now: {escape(task.nice_status)}")
    console.print(
        f"  files: {task.files_transferred} transferred, {task.files_skipped} skipped of "
        f"{task.files}; {task.bytes_transferred:,} bytes; faults: {task.faults}"
    )
    console.print(f"  {task.source_endpoint_id or ''} → {task.destination_endpoint_id or ''}")


@task_app.command("show")
def task_show(
    task_id: TaskIdArg,
    events: Annotated[
        int, typer.Option("--events", "-e", min=0, help="Also show the latest N events.")
    ] = 0,
    globus: GlobusOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Show a task: status, counts, why it failed (and its latest events)."""

    async def work(tc: TransferClient) -> tuple[Task, list[Any]]:
        task = await tc.get_task(task_id)
        latest = (await tc.list_task_events(task_id, page_size=events)).items if events else []
        return task, latest

    task, latest = _transfer_run(url, globus, work)

    def human() -> None:
        from rich.markup import escape

        _print_task(task)
        for e in latest:
            flag = "[red]error[/] " if e.is_error else ""
            console.print(f"  {e.time or ''} {flag}{escape(e.code)}: {escape(e.description)}")

    doc = {**_task_json(task), "events": [e.model_dump(mode="json") for e in latest]}
    emit(as_json, doc, human)


@task_app.command("wait")
def task_wait(
    task_id: TaskIdArg,
    timeout: TimeoutOption = None,
    poll: PollOption = 2.0,
    stuck_after: StuckAfterOption = 60.0,
    no_progress: NoProgressOption = False,
    globus: GlobusOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Wait for a task; exit 0 SUCCEEDED, 1 FAILED, 6 TIMED_OUT, 7 INACTIVE, 8 STUCK."""

    async def work(tc: TransferClient) -> int:
        return await _wait_and_report(
            tc.task(task_id),
            timeout=timeout,
            poll=poll,
            stuck_after=stuck_after,
            show=not no_progress,
            as_json=as_json,
        )

    code = _transfer_run(url, globus, work)
    if code:
        raise typer.Exit(code)


class TaskStatusFilter(StrEnum):
    """``task list --status``."""

    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class TaskTypeFilter(StrEnum):
    """``task list --type``."""

    TRANSFER = "TRANSFER"
    DELETE = "DELETE"


@task_app.command("list")
def task_list(
    status: Annotated[
        list[TaskStatusFilter] | None,
        typer.Option("--status", case_sensitive=False, help="Only these (repeatable)."),
    ] = None,
    task_type: Annotated[
        TaskTypeFilter | None, typer.Option("--type", case_sensitive=False, help="Only these.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 25,
    globus: GlobusOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """List your tasks, newest first."""
    where: dict[str, str | list[str]] = {}
    if status:
        where["status"] = [s.value for s in status]
    if task_type is not None:
        where["type"] = task_type.value

    async def work(tc: TransferClient) -> list[Task]:
        tasks = tc.iter_tasks(
            filter=where or None,
            orderby="request_time DESC",
            page_size=min(limit, 1000),
            max_items=limit,
        )
        return [t async for t in tasks]

    tasks = _transfer_run(url, globus, work)

    def human() -> None:
        from rich.markup import escape

        for t in tasks:
            when = t.request_time.strftime("%Y-%m-%d %H:%M") if t.request_time else ""
            console.print(
                f"{t.task_id}  {t.type:<8} {t.status.value:<9} {when}  "
                f"{t.files_transferred}/{t.files} files  {escape(t.label or '')}"
            )

    emit(as_json, {"tasks": [_task_json(t) for t in tasks]}, human)


@task_app.command("cancel")
def task_cancel(
    task_id: TaskIdArg,
    globus: GlobusOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Cancel a task (answers Canceled, or TaskComplete if it had ended already)."""

    async def work(tc: TransferClient) -> str:
        return await tc.cancel(task_id)

    answer = _transfer_run(url, globus, work)
    emit(
        as_json,
        {"task_id": task_id, "code": answer},
        lambda: console.print(f"task {task_id}: {answer}"),
    )


# -- collections ---------------------------------------------------------------------------------


@endpoint_app.command("search")
def endpoint_search(
    text: Annotated[str | None, typer.Argument(help="Words in the name or owner.")] = None,
    scope: Annotated[Scope, typer.Option("--scope", help="Whose collections.")] = Scope.all,
    owner: Annotated[str | None, typer.Option("--owner", help="Only this owner's.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 25,
    globus: GlobusOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Find collections you may use (their UUIDs are what COLLECTION:PATH takes)."""

    async def work(tc: TransferClient) -> list[Any]:
        found = tc.iter_endpoints(
            text, scope=scope.value, owner_id=owner, page_size=min(limit, 100), max_items=limit
        )
        return [e async for e in found]

    endpoints = _transfer_run(url, globus, work)

    def human() -> None:
        from rich.markup import escape

        for e in endpoints:
            console.print(
                f"{e.id}  {escape(e.display_name or '')}  [dim]{escape(e.owner or '')}[/]"
            )

    emit(as_json, {"endpoints": [e.model_dump(mode="json") for e in endpoints]}, human)


@endpoint_app.command("show")
def endpoint_show(
    collection: Annotated[str, typer.Argument(help="A collection UUID, dataset handle or label.")],
    globus: GlobusOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Show a collection's name, owner and kind."""

    async def work(tc: TransferClient) -> Any:
        return await tc.get_endpoint(location_of(collection, tc.locations))

    endpoint = _transfer_run(url, globus, work)

    def human() -> None:
        from rich.markup import escape

        console.print(f"{endpoint.id}  {escape(endpoint.display_name or '')}")
        console.print(f"  owner: {escape(endpoint.owner or '')}; {endpoint.entity_type or ''}")
        if endpoint.description:
            console.print(f"  {escape(endpoint.description)}")

    emit(as_json, endpoint.model_dump(mode="json"), human)


# -- real Globus: sign in, sign out --------------------------------------------------------------


@app.command("globus-login")
def globus_login(
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Sign in to real Globus (the native app globus_client_id): open the link, paste the code.

    The tokens (refreshing) go to the token store, so ``--globus`` commands work after it.
    """
    config = load_config(url)

    async def work() -> None:
        import anyio.to_thread

        login = _globus_login(config)
        try:

            def ask(link: str) -> Awaitable[str]:
                err_console.print(f"Open this link, sign in and consent:\n{link}")
                return anyio.to_thread.run_sync(lambda: typer.prompt("Code", err=True))

            await login.login(ask)
        finally:
            login.close()

    run(work)
    emit(
        as_json,
        {"signed_in": True, "client_id": config.globus_client_id},
        lambda: console.print("signed in to Globus"),
    )


@app.command("globus-logout")
def globus_logout(
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Forget the Globus tokens (revoking them at Globus Auth, best effort)."""
    config = load_config(url)

    async def work() -> bool:
        login = _globus_login(config)
        try:
            had: bool = await login.logout()
            return had
        finally:
            login.close()

    had = run(work)
    emit(
        as_json,
        {"signed_out": had},
        lambda: console.print("signed out of Globus" if had else "was not signed in to Globus"),
    )
