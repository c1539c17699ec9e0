"""``provena-like dataset mint|show|list|ls|search|update|version|history|revert``.

Every command is a thin layer over :class:`~provena_like.modules.datastore.Datastore`
(``pv.datastore``) and :class:`~provena_like.modules.interactive.InteractiveDataset`: no
HTTP here. Records come from ``--record FILE`` (JSON or TOML) and ``--set path=value``
(:mod:`provena_like.cli.records`); ``--json`` prints the SDK's model as JSON.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from provena_like.cli._common import (
    JsonOption,
    UrlOption,
    collect_with_client,
    console,
    emit,
    run_with_client,
)
from provena_like.cli._errors import EXIT_CODES_HELP
from provena_like.cli.records import (
    EditOption,
    GeneralGrantOption,
    GroupGrantOption,
    RecordOption,
    SetOption,
    build_record,
    edit_record,
    parse_grants,
)

if TYPE_CHECKING:
    from provena_like.client import ProvenaClient
    from provena_like.models.datastore import Dataset, ManifestEntry, VersionResponse
    from provena_like.models.registry import HistoryEntry

app = typer.Typer(
    help="Mint, find, show, change and version datasets.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
)

DatasetArg = Annotated[str, typer.Argument(help="The dataset's handle (e.g. 10378.1/42).")]
ReasonOption = Annotated[
    str, typer.Option("--reason", help="Why: recorded in the dataset's history.")
]
NameOption = Annotated[str | None, typer.Option("--name", help="Sets dataset_info.name.")]
DescriptionOption = Annotated[
    str | None, typer.Option("--description", help="Sets dataset_info.description.")
]
KeywordOption = Annotated[
    list[str] | None,
    typer.Option("--keyword", "-k", help="Sets dataset_info.keywords (repeatable)."),
]
LimitOption = Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")]


def _fields(
    name: str | None, description: str | None, keywords: list[str] | None
) -> dict[str, Any]:
    return {
        "dataset_info.name": name,
        "dataset_info.description": description,
        "dataset_info.keywords": keywords or None,
    }


def _summary(ds: Dataset) -> None:
    console.print(f"[bold]{ds.id}[/]  {escape(ds.display_name)}")
    console.print(f"  owner     {ds.owner}")
    console.print(f"  revision  {ds.revision} (updated {ds.updated_at:%Y-%m-%d %H:%M})")
    console.print(f"  release   {ds.release_status}" + ("  [yellow]locked[/]" if ds.locked else ""))
    console.print(f"  storage   s3://{ds.storage.bucket}/{ds.storage.prefix}")
    console.print(f"  your roles {', '.join(ds.roles) or '-'}")


def _datasets_table(datasets: list[Dataset]) -> Table:
    table = Table("id", "name", "owner", "release", "updated")
    for ds in datasets:
        table.add_row(
            ds.id, ds.display_name, ds.owner, ds.release_status, f"{ds.updated_at:%Y-%m-%d}"
        )
    return table


@app.command("mint")
def mint(
    record: RecordOption = None,
    set_: SetOption = None,
    name: NameOption = None,
    description: DescriptionOption = None,
    keyword: KeywordOption = None,
    display_name: Annotated[
        str | None, typer.Option("--display-name", help="Shown in lists (default: the name).")
    ] = None,
    general: GeneralGrantOption = None,
    group: GroupGrantOption = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option("--idempotency-key", help="Re-running with the same key mints once."),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Register a new dataset from a record (file and/or --set); prints its handle."""
    body = build_record(None, record, set_ or (), _fields(name, description, keyword))
    general_roles, groups = parse_grants(general, group or ())

    async def work(pv: ProvenaClient) -> Dataset:
        minted = await pv.datastore.mint(
            body,
            display_name=display_name,
            general=general_roles,
            groups=groups,
            **({"idempotency_key": idempotency_key} if idempotency_key else {}),
        )
        return minted.dataset

    ds = run_with_client(url, work)
    emit(as_json, ds, lambda: console.print(f"[green]minted[/] {ds.id}  {escape(ds.display_name)}"))


@app.command("show")
def show(dataset: DatasetArg, as_json: JsonOption = False, url: UrlOption = None) -> None:
    """Show a dataset: name, owner, revision, release state, storage, your roles."""
    ds = run_with_client(url, lambda pv: pv.datastore.fetch(dataset))
    emit(as_json, ds, lambda: _summary(ds))


@app.command("list")
def list_(
    owner: Annotated[str | None, typer.Option("--owner", help="Only this user's.")] = None,
    keyword: Annotated[
        str | None, typer.Option("--keyword", "-k", help="With this keyword.")
    ] = None,
    limit: LimitOption = 100,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """List the datasets you can read, oldest first."""
    found = collect_with_client(
        url, lambda pv: pv.datastore.iter_datasets(owner=owner, keyword=keyword, max_items=limit)
    )
    emit(as_json, found, lambda: console.print(_datasets_table(found)))


@app.command("ls")
def ls(
    dataset: DatasetArg,
    prefix: Annotated[str | None, typer.Option("--prefix", help="Only under this folder.")] = None,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """List a dataset's registered files (path, size, sha256)."""

    async def work(pv: ProvenaClient) -> list[ManifestEntry]:
        return await (await pv.datastore.interactive(dataset)).list_files(prefix=prefix)

    files = run_with_client(url, work)

    def human() -> None:
        table = Table("path", "size", "sha256")
        for f in files:
            table.add_row(f.path, f"{f.size:,}", f.sha256[:16] + "…")
        console.print(table)
        console.print(f"{len(files)} files, {sum(f.size for f in files):,} bytes")

    emit(as_json, files, human)


_MARK = re.compile(r"<mark>(.*?)</mark>")


@app.command("search")
def search(
    query: Annotated[
        str,
        typer.Argument(
            help='Words to look for (full text): a b, "a phrase", a OR b, -a, pre*; '
            "extracted:word looks in the files' extracted metadata only; column:word in "
            "table columns only (also attribute:, dataset:, variable:)."
        ),
    ],
    owner: Annotated[str | None, typer.Option("--owner", help="Only this user's.")] = None,
    limit: LimitOption = 20,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Full-text search of the datasets you can read, best match first."""
    hits = collect_with_client(
        url, lambda pv: pv.datastore.search(query, owner=owner, max_items=limit)
    )

    def human() -> None:
        table = Table("id", "name", "score", "match")
        for hit in hits:
            snippet = next(iter(hit.highlights.values()), "")
            marked = _MARK.sub(lambda m: f"\0{m.group(1)}\1", snippet)
            text = escape(html.unescape(marked)).replace("\0", "[bold]").replace("\1", "[/]")
            table.add_row(hit.item.id, hit.item.display_name, f"{hit.score:.2f}", text)
        console.print(table)

    emit(as_json, hits, human)


@app.command("update")
def update(
    dataset: DatasetArg,
    reason: ReasonOption,
    record: RecordOption = None,
    set_: SetOption = None,
    name: NameOption = None,
    description: DescriptionOption = None,
    keyword: KeywordOption = None,
    display_name: Annotated[
        str | None, typer.Option("--display-name", help="A new display name.")
    ] = None,
    edit: EditOption = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Change a dataset's metadata: the current record with --set, --name, ... applied.

    With --record, the file's record replaces it; with --edit, you edit it in $EDITOR first.
    Refused (exit 1) if someone changed the dataset in the meantime.
    """

    async def work(pv: ProvenaClient) -> Dataset:
        current = await pv.datastore.fetch(dataset)
        base = current.record.model_dump(mode="json", exclude_none=True)
        body = build_record(base, record, set_ or (), _fields(name, description, keyword))
        if edit:
            import anyio

            body = await anyio.to_thread.run_sync(edit_record, body)
        return await pv.datastore.update_metadata(
            dataset,
            body,
            reason=reason,
            expected_revision=current.revision,
            display_name=display_name,
        )

    ds = run_with_client(url, work)
    emit(as_json, ds, lambda: console.print(f"[green]updated[/] {ds.id} (revision {ds.revision})"))


@app.command("version")
def version(
    dataset: DatasetArg,
    reason: ReasonOption,
    copy_files: Annotated[
        bool, typer.Option("--copy-files", help="Copy the files into the new version.")
    ] = False,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Create the next version of a dataset (a new handle linked to this one)."""
    done: VersionResponse = run_with_client(
        url, lambda pv: pv.datastore.version(dataset, reason=reason, copy_files=copy_files)
    )
    emit(
        as_json,
        done,
        lambda: console.print(
            f"[green]version {done.version}[/] of {done.previous}: {done.id}"
            + (f" ({done.copied_files} files copied)" if copy_files else "")
        ),
    )


@app.command("history")
def history(dataset: DatasetArg, as_json: JsonOption = False, url: UrlOption = None) -> None:
    """A dataset's metadata history, newest first (ids for dataset revert)."""

    async def work(pv: ProvenaClient) -> list[HistoryEntry]:
        return await (await pv.datastore.interactive(dataset)).history()

    entries = run_with_client(url, work)
    emit(as_json, entries, lambda: console.print(history_table(entries)))


def history_table(entries: list[HistoryEntry]) -> Table:
    """History entries as a table (also used by ``item history``)."""
    table = Table("id", "time", "user", "revision", "reason")
    for entry in entries:
        revision = str(entry.revision) if entry.revision is not None else ""
        table.add_row(
            str(entry.id), f"{entry.time:%Y-%m-%d %H:%M:%S}", entry.user, revision, entry.reason
        )
    return table


@app.command("revert")
def revert(
    dataset: DatasetArg,
    history_id: Annotated[int, typer.Argument(help="The history entry to restore.")],
    reason: ReasonOption,
    as_json: JsonOption = False,
    url: UrlOption = None,
) -> None:
    """Restore the metadata of a history entry (recorded as a new entry)."""

    async def work(pv: ProvenaClient) -> Dataset:
        current = await pv.datastore.fetch(dataset)
        return await pv.datastore.revert_metadata(
            dataset, history_id, reason=reason, expected_revision=current.revision
        )

    ds = run_with_client(url, work)
    emit(
        as_json,
        ds,
        lambda: console.print(f"[green]reverted[/] {ds.id} to entry {history_id}"),
    )
