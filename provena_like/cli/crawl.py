"""``provena-like crawl TARGET`` and ``provena-like extract TARGET``.

``TARGET`` is a local folder, ``dataset:<handle>[/folder]`` (the dataset's objects, with
scoped read credentials) or ``collection:<uuid>[/path]`` (a transfer-service collection).
``--json`` prints JSON lines: one record per file, error and group (``extract``: one result
per file); ``--output FILE`` writes the same lines to a file and prints the summary.

``extract`` downloads a dataset's files a batch at a time to a temp folder and extracts them
there; ``--attach`` stores the results as the dataset's extracted metadata (search finds the
dataset by their terms), ``--dataset`` naming the dataset a local folder is a copy of.

Exit codes: ``0`` everything read, ``1`` some directory or file could not be read (or an
extractor failed on some file), ``2`` wrong usage, ``4`` the dataset or collection is not
found or not yours, ``5`` the server is unreachable, ``130`` interrupted.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from provena_like.cli._common import JsonOption, UrlOption, err_console, load_config, run
from provena_like.cli._errors import CliFailure, ExitCode

if TYPE_CHECKING:  # imported when a command runs: `--help` stays fast
    from provena_like.client import ProvenaClient
    from provena_like.crawler import CrawlError, CrawlSource, FileRecord, FileResult, Group
    from provena_like.models.crawl_jobs import CrawlJob, CrawlJobPage
    from provena_like.models.extracted import ExtractionRun

    Record = FileRecord | CrawlError | Group | FileResult

__all__ = ["ack", "cancel", "crawl", "crawl_app", "extract", "flush", "jobs", "start", "status"]

TargetArgument = Annotated[
    str,
    typer.Argument(
        help="A local folder, dataset:<handle> or collection:<uuid> (each may end in /<folder>).",
        show_default=False,
    ),
]
DepthOption = Annotated[
    int | None, typer.Option("--depth", "-d", min=0, help="Levels below the top to descend.")
]
IncludeOption = Annotated[
    list[str] | None,
    typer.Option("--include", "-i", help="Glob on the relative path (repeatable)."),
]
ExcludeOption = Annotated[
    list[str] | None,
    typer.Option("--exclude", "-x", help="Glob to leave out; also prunes folders (repeatable)."),
]
HiddenOption = Annotated[bool, typer.Option("--hidden", help="Include names starting with '.'.")]
GroupByOption = Annotated[
    str | None,
    typer.Option("--group-by", "-g", help="Add groups: file, directory, extension or alf_object."),
]
OutputOption = Annotated[
    Path | None,
    typer.Option("--output", "-o", help="Write the records to this JSON-lines file."),
]
ConcurrencyOption = Annotated[
    int, typer.Option("--concurrency", "-c", min=1, help="Directories listed at once.")
]
RateOption = Annotated[
    float | None,
    typer.Option("--rate-limit", min=0.001, help="At most this many listings per second."),
]
FollowOption = Annotated[
    bool, typer.Option("--follow-symlinks", help="Enter symlinked folders (local crawls).")
]
NoProgressOption = Annotated[
    bool,
    typer.Option(
        "--no-progress",
        envvar="PROVENA_NO_PROGRESS",
        help="No progress line (also PROVENA_NO_PROGRESS=1; none without a terminal anyway).",
    ),
]


class _Tally:
    """Counts records as they pass, and shows a progress line on a terminal."""

    def __init__(self, show: bool) -> None:
        from provena_like.crawler import CrawlSummary

        self.summary = CrawlSummary()
        self.errors: list[CrawlError] = []
        self.show = show and err_console.is_terminal
        self._shown = 0
        self.attached: ExtractionRun | None = None

    def add(self, record: Record) -> None:
        from provena_like.crawler import CrawlError, FileRecord, FileResult, Group

        s = self.summary
        update: dict[str, int] = {}
        if isinstance(record, FileResult):
            update = {
                "files": s.files + 1,
                "bytes": s.bytes + (record.record.size or 0),
                "extracted": s.extracted + int(record.ok),
                "failed": s.failed + int(not record.ok),
            }
        elif isinstance(record, FileRecord):
            update = {"files": s.files + 1, "bytes": s.bytes + (record.size or 0)}
        elif isinstance(record, CrawlError):
            update = {"errors": s.errors + 1}
            if len(self.errors) < 1000:
                self.errors.append(record)
        elif isinstance(record, Group):
            update = {"groups": s.groups + 1}
        self.summary = s.model_copy(update=update)
        if self.show and self.summary.files - self._shown >= 500:
            self._shown = self.summary.files
            err_console.print(
                f"{self.summary.files} files, {self.summary.bytes} bytes...", end="\r"
            )


@dataclass(frozen=True)
class _CrawlOptions:
    """The crawl options both commands share."""

    depth: int | None
    include: list[str] | None
    exclude: list[str] | None
    hidden: bool
    follow_symlinks: bool
    concurrency: int
    rate_limit: float | None
    group_by: str | None

    def __post_init__(self) -> None:
        groupers = ("file", "directory", "extension", "alf_object")
        if self.group_by is not None and self.group_by not in groupers:
            raise CliFailure(
                ExitCode.USAGE,
                f"unknown grouper {self.group_by!r} ({', '.join(groupers)})",
            )

    async def open(
        self, pv: ProvenaClient | None, target: str
    ) -> AsyncIterator[FileRecord | CrawlError | Group]:
        """The crawl of ``target`` (inside the event loop)."""
        return self.records(await self.source(pv, target))

    async def source(self, pv: ProvenaClient | None, target: str) -> CrawlSource:
        """The source ``target`` names."""
        from provena_like.crawler import CollectionSource, DatasetSource, LocalSource

        source: CrawlSource
        if target.startswith("dataset:"):
            assert pv is not None
            handle, _, prefix = _split_handle(target[len("dataset:") :])
            source = DatasetSource(await pv.datastore.interactive(handle), prefix)
        elif target.startswith("collection:"):
            assert pv is not None
            collection, _, path = target[len("collection:") :].partition("/")
            source = CollectionSource(pv.transfer_client, f"globus://{collection}/{path}")
        else:
            folder = Path(target)
            if not folder.is_dir():
                raise CliFailure(ExitCode.USAGE, f"not a folder: {target}")
            source = LocalSource(folder, follow_symlinks=self.follow_symlinks)
        return source

    def records(self, source: CrawlSource) -> AsyncIterator[FileRecord | CrawlError | Group]:
        """The crawl of ``source``, grouped as asked."""
        from provena_like.crawler import crawl, group

        records = crawl(
            source,
            max_depth=self.depth,
            include=self.include or (),
            exclude=self.exclude or (),
            hidden=self.hidden,
            concurrency=self.concurrency,
            rate_limit=self.rate_limit,
        )
        return group(records, self.group_by) if self.group_by else records


def _split_handle(text: str) -> tuple[str, str, str]:
    """``prefix/suffix[/folder]`` → (handle, "/", folder): a handle holds one slash."""
    parts = text.split("/", 2)
    if len(parts) < 2:
        raise CliFailure(ExitCode.USAGE, f"not a dataset handle: {text!r}")
    return f"{parts[0]}/{parts[1]}", "/", parts[2] if len(parts) > 2 else ""


def _drive(
    target: str,
    url: str | None,
    work: Callable[[ProvenaClient | None], Awaitable[_Tally]],
    *,
    local: str | None = None,
) -> _Tally:
    """Run ``work`` with a client when the target is remote, without one for a folder.

    ``local``: the folder to check first when a remote ``target`` is only attached to.
    """
    if local is not None and not local.startswith(("dataset:", "collection:")):
        if not Path(local).is_dir():
            raise CliFailure(ExitCode.USAGE, f"not a folder: {local}")
    if not target.startswith(("dataset:", "collection:")):
        return run(lambda: work(None))
    from provena_like.client import ProvenaClient

    config = load_config(url)

    async def go() -> _Tally:
        async with ProvenaClient(config) as pv:
            return await work(pv)

    return run(go)


async def _emitting(
    records: AsyncIterator[Record], tally: _Tally, as_json: bool, output: Path | None
) -> AsyncIterator[Record]:
    """The records, each counted and written out as it passes."""
    from provena_like.crawler import to_jsonl

    sink = None if output is None else output.open("w", encoding="utf-8")
    try:
        async for record in records:
            tally.add(record)
            if sink is not None:
                sink.write(to_jsonl(record) + "\n")
            elif as_json:
                sys.stdout.write(to_jsonl(record) + "\n")
            yield record
    finally:
        if sink is not None:
            sink.close()
        sys.stdout.flush()


async def _emit(
    records: AsyncIterator[Record], tally: _Tally, as_json: bool, output: Path | None
) -> None:
    async for _ in _emitting(records, tally, as_json, output):
        pass


def _finish(tally: _Tally, as_json: bool, output: Path | None) -> int:
    summary = tally.summary
    if tally.show:
        err_console.print(" " * 60, end="\r")
    if as_json and output is not None:
        answer: dict[str, object] = {"summary": summary.model_dump()}
        if tally.attached is not None:
            answer["attached"] = tally.attached.model_dump(mode="json")
        typer.echo(json.dumps(answer))
    elif not as_json:
        from provena_like.cli._common import console

        line = f"{summary.files} files, {summary.bytes} bytes"
        if summary.groups:
            line += f", {summary.groups} groups"
        if summary.extracted or summary.failed:
            line += f"; extracted {summary.extracted}, failed {summary.failed}"
        line += f", {summary.errors} unreadable"
        console.print(line, highlight=False)
        for error in tally.errors[:20]:
            console.print(f"  {error.path or '.'}: {error.reason}: {error.message}", markup=False)
        if tally.attached is not None:
            run = tally.attached
            console.print(
                f"attached to {run.dataset}: {run.files} files, {run.terms} search terms "
                f"(run {run.run_id})",
                highlight=False,
            )
    return int(ExitCode.FAILED if summary.errors or summary.failed else ExitCode.OK)


def crawl(
    target: TargetArgument,
    depth: DepthOption = None,
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    hidden: HiddenOption = False,
    group_by: GroupByOption = None,
    follow_symlinks: FollowOption = False,
    concurrency: ConcurrencyOption = 8,
    rate_limit: RateOption = None,
    output: OutputOption = None,
    no_progress: NoProgressOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> int:
    """List the files of a folder, dataset or collection: size, time, type (JSON lines)."""
    options = _CrawlOptions(
        depth, include, exclude, hidden, follow_symlinks, concurrency, rate_limit, group_by
    )
    tally = _Tally(show=not no_progress and not as_json)

    async def work(pv: ProvenaClient | None) -> _Tally:
        await _emit(await options.open(pv, target), tally, as_json, output)
        return tally

    return _finish(_drive(target, url, work), as_json, output)


def extract(
    target: TargetArgument,
    extractor: Annotated[
        list[str] | None,
        typer.Option("--extractor", "-e", help="Run only this extractor (repeatable)."),
    ] = None,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.001, help="Seconds per file and extractor.")
    ] = 60.0,
    memory_limit: Annotated[
        int, typer.Option("--memory-limit", min=64, help="MiB of address space per worker.")
    ] = 4096,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Processes.")] = None,
    depth: DepthOption = None,
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    hidden: HiddenOption = False,
    group_by: GroupByOption = None,
    follow_symlinks: FollowOption = False,
    attach: Annotated[
        bool,
        typer.Option(
            "--attach",
            help="Store the results as the dataset's extracted metadata (search finds them), "
            "replacing what was there.",
        ),
    ] = False,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="With --attach and a local folder: the dataset the folder is a copy of.",
        ),
    ] = None,
    batch_mib: Annotated[
        int,
        typer.Option("--batch-mib", min=1, help="Temp space for a batch of a dataset's files."),
    ] = 256,
    output: OutputOption = None,
    no_progress: NoProgressOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> int:
    """Extract metadata from the files of a folder or dataset (JSON lines per file).

    A dataset's files are fetched a batch at a time to a temp folder, then deleted.

    --attach stores the results with the dataset, where search finds them.
    """
    options = _CrawlOptions(depth, include, exclude, hidden, follow_symlinks, 8, None, group_by)
    if target.startswith("collection:"):
        raise CliFailure(
            ExitCode.USAGE, "extract reads folders and datasets; copy the collection first"
        )
    attach_to = _attach_target(target, attach, dataset)
    from provena_like.extractors import available_extractors

    registered = available_extractors()
    unknown = sorted(set(extractor or ()) - set(registered))
    if unknown:
        raise CliFailure(
            ExitCode.USAGE,
            f"unknown extractor(s): {', '.join(unknown)} (have: {', '.join(registered)})",
        )
    chosen = [registered[n] for n in extractor] if extractor else list(registered.values())
    tally = _Tally(show=not no_progress and not as_json)

    async def work(pv: ProvenaClient | None) -> _Tally:
        from provena_like.crawler import DatasetSource, ExtractionRunner, extract_dataset

        async with ExtractionRunner(
            chosen, workers=workers, timeout=timeout, memory_limit=memory_limit * 1024**2
        ) as runner:
            source = await options.source(pv, target)
            records = options.records(source)
            if isinstance(source, DatasetSource):
                results = extract_dataset(
                    runner, records, source.dataset, batch_bytes=batch_mib * 1024**2
                )
            else:
                results = runner.extract(records)
            emitted = _emitting(results, tally, as_json, output)
            if attach_to is None:
                async for _ in emitted:
                    pass
            else:
                assert pv is not None
                tally.attached = await pv.datastore.attach_extracted(attach_to, emitted)
        return tally

    remote = target if attach_to is None else f"dataset:{attach_to}"
    return _finish(_drive(remote, url, work, local=target), as_json, output)


def _attach_target(target: str, attach: bool, dataset: str | None) -> str | None:
    """The dataset to attach results to (``None``: don't attach)."""
    if not attach:
        if dataset is not None:
            raise CliFailure(ExitCode.USAGE, "--dataset names where to --attach; add --attach")
        return None
    if target.startswith("dataset:"):
        handle, _, _ = _split_handle(target[len("dataset:") :])
        if dataset is not None and dataset != handle:
            raise CliFailure(ExitCode.USAGE, f"--dataset {dataset} is not the target {handle}")
        return handle
    if dataset is None:
        raise CliFailure(
            ExitCode.USAGE, "--attach of a local folder needs --dataset (the dataset it copies)"
        )
    return _split_handle(dataset)[0]


# -- server-side crawl jobs: provena-like crawl start|status|flush|ack|cancel|jobs -----------

JobIdArgument = Annotated[str, typer.Argument(help="The crawl job's id.", show_default=False)]


def _job_line(job: CrawlJob) -> str:
    line = (
        f"{job.id}  {job.state}  {job.files} files, {job.bytes} bytes, {job.groups} groups, "
        f"{job.errors} unreadable; {job.unacked} of {job.records} records not acknowledged"
    )
    return line + (f"\n  error: {job.error}" if job.error else "")


def _job_exit(job: CrawlJob) -> int:
    """0 for a job that is running or succeeded, 1 for one that failed or was cancelled."""
    return int(ExitCode.FAILED if job.state in ("failed", "canceled") else ExitCode.OK)


def _show_job(job: CrawlJob, as_json: bool) -> int:
    from provena_like.cli._common import console, emit

    def human() -> None:
        console.print(_job_line(job), markup=False, highlight=False)
        for event in job.events:
            when = event.time.isoformat(timespec="seconds")
            console.print(f"  {when}  {event.code}: {event.message}", markup=False)

    emit(as_json, job.model_dump(mode="json"), human)
    return _job_exit(job)


def start(
    source: Annotated[
        str,
        typer.Argument(
            help="dataset:<handle> or collection:<uuid> (each may end in /<folder>).",
            show_default=False,
        ),
    ],
    depth: DepthOption = None,
    include: IncludeOption = None,
    exclude: ExcludeOption = None,
    hidden: HiddenOption = False,
    group_by: GroupByOption = None,
    checksums: Annotated[bool, typer.Option("--checksums", help="Add each file's sha256.")] = False,
    rate_limit: RateOption = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the job ends.")] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> int:
    """Start a crawl job on the server (it crawls with the server's access to the storage)."""
    from provena_like.cli._common import run_with_client

    _CrawlOptions(depth, include, exclude, hidden, False, 1, rate_limit, group_by)  # checks

    async def work(pv: ProvenaClient) -> CrawlJob:
        from provena_like._core.errors import UsageError

        try:
            handle = await pv.crawler.start(
                source,
                max_depth=depth,
                include=include or (),
                exclude=exclude or (),
                hidden=hidden,
                grouper=group_by,  # type: ignore[arg-type]  # checked above
                checksums=checksums,
                rate_limit=rate_limit,
            )
        except UsageError as err:
            raise CliFailure(ExitCode.USAGE, str(err)) from err
        if wait:
            return await handle.wait()
        return await handle.status()

    return _show_job(run_with_client(url, work), as_json)


def status(
    job_id: JobIdArgument,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the job ends.")] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> int:
    """A crawl job's state and counters (exit 1 when it failed or was cancelled)."""
    from provena_like.cli._common import run_with_client

    async def work(pv: ProvenaClient) -> CrawlJob:
        handle = pv.crawler.job(job_id)
        if not wait:
            return await handle.status()
        show = not as_json and err_console.is_terminal

        def progress(job: CrawlJob) -> None:
            if show:
                err_console.print(f"{job.state}: {job.files} files, {job.bytes} bytes", end="\r")

        return await handle.wait(on_progress=progress)

    return _show_job(run_with_client(url, work), as_json)


def flush(
    job_id: JobIdArgument,
    n: Annotated[
        int, typer.Option("-n", "--limit", min=1, max=1000, help="Records at most.")
    ] = 100,
    ack: Annotated[
        bool,
        typer.Option("--ack", help="Acknowledge the records once printed (else they come again)."),
    ] = False,
    lease_seconds: Annotated[
        float,
        typer.Option(
            "--lease-seconds", min=1, help="Seconds before unacknowledged ones come again."
        ),
    ] = 300.0,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> int:
    """Print the next records of a crawl job not acknowledged yet (JSON lines with --json).

    Without --ack the page is only leased: acknowledge it later with
    ``provena-like crawl ack JOB_ID CURSOR``, or its records are delivered again after the
    lease. With --ack it is acknowledged once printed.
    """
    from provena_like.cli._common import console, run_with_client
    from provena_like.crawler import to_jsonl

    async def work(pv: ProvenaClient) -> tuple[CrawlJobPage, int]:
        handle = pv.crawler.job(job_id)
        page = await handle.flush(n, lease_seconds=lease_seconds)
        for row in page.records:  # printed before the acknowledgement
            if as_json:
                sys.stdout.write(to_jsonl(row.record) + "\n")
            else:
                console.print(_record_line(row.record), markup=False, highlight=False)
        sys.stdout.flush()
        acked = await handle.ack(page) if ack else 0
        return page, acked

    page, acked = run_with_client(url, work)
    summary = {
        "records": len(page.records),
        "cursor": page.cursor,
        "acked": acked,
        "unacked": page.unacked - acked,
        "state": page.state,
    }
    if as_json:
        typer.echo(json.dumps({"summary": summary}))
    else:
        line = f"{len(page.records)} records; job {page.state}, {summary['unacked']} unacknowledged"
        if page.cursor and not ack:
            line += f"\nacknowledge with: provena-like crawl ack {job_id} {page.cursor}"
        err_console.print(line, markup=False, highlight=False)
    return int(ExitCode.OK)


def _record_line(record: FileRecord | CrawlError | Group) -> str:
    if record.kind == "file":
        return f"file   {record.path}  {record.size if record.size is not None else '-'}"
    if record.kind == "group":
        return f"group  {record.key or '.'}  {len(record.files)} files, {record.size} bytes"
    return f"error  {record.path or '.'}  {record.reason}: {record.message}"


def ack(
    job_id: JobIdArgument,
    cursor: Annotated[str, typer.Argument(help="The cursor a flush printed.", show_default=False)],
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> int:
    """Acknowledge a page of a crawl job's records (they are not delivered again)."""
    from provena_like.cli._common import console, emit, run_with_client

    async def work(pv: ProvenaClient) -> int:
        return await pv.crawler.job(job_id).ack(cursor)

    acked = run_with_client(url, work)
    emit(as_json, {"acked": acked}, lambda: console.print(f"{acked} records acknowledged"))
    return int(ExitCode.OK)


def cancel(job_id: JobIdArgument, as_json: JsonOption = False, url: UrlOption = None) -> int:
    """Cancel a crawl job (the records it stored stay readable)."""
    from provena_like.cli._common import run_with_client

    async def work(pv: ProvenaClient) -> CrawlJob:
        return await pv.crawler.job(job_id).cancel()

    job = run_with_client(url, work)
    _show_job(job, as_json)
    return int(ExitCode.OK)


def jobs(
    state: Annotated[str | None, typer.Option("--state", help="Only jobs in this state.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> int:
    """Your crawl jobs, newest first."""
    from provena_like.cli._common import collect_with_client, console, emit

    states = ("queued", "running", "succeeded", "failed", "canceled")
    if state is not None and state not in states:
        raise CliFailure(ExitCode.USAGE, f"unknown state {state!r} ({', '.join(states)})")
    found = collect_with_client(url, lambda pv: pv.crawler.iter_jobs(state=state))  # type: ignore[arg-type]

    def human() -> None:
        for job in found:
            console.print(_job_line(job), markup=False, highlight=False)

    emit(as_json, [job.model_dump(mode="json") for job in found], human)
    return int(ExitCode.OK)


class _CrawlGroup(TyperGroup):
    """``crawl TARGET`` crawls (the ``run`` command); ``crawl status|flush|...`` the jobs."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # Any: typer's own Context
        """Run ``run`` when the first word is not one of the job commands (nor a help flag)."""
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = ["run", *args]
        return super().parse_args(ctx, args)


crawl_app = typer.Typer(
    cls=_CrawlGroup,
    name="crawl",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    help=(
        "Crawl a folder, dataset or collection here (crawl TARGET), or on the server as a "
        "job (crawl start|status|flush|ack|cancel|jobs). A folder named like a command: ./status."
    ),
)
crawl_app.command("run")(crawl)
crawl_app.command("start")(start)
crawl_app.command("status")(status)
crawl_app.command("flush")(flush)
crawl_app.command("ack")(ack)
crawl_app.command("cancel")(cancel)
crawl_app.command("jobs")(jobs)
