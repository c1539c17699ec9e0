"""``provena-like demo``: the end-to-end walk through on the embedded local stack.

Every step is timed and reported in a summary table; the command exits non-zero if any step
fails. With ``--url`` it runs against an existing server, signed in as configured
(``provena-like login`` or ``PROVENA_*`` variables).
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
import random
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import typer
from rich.markup import escape
from rich.table import Table

from provena_like.cli._common import JsonOption, UrlOption, console, err_console, load_config, run
from provena_like.cli._errors import ExitCode

if TYPE_CHECKING:
    from provena_like.client import ProvenaClient
    from provena_like.modules.interactive import InteractiveDataset


@dataclass
class StepResult:
    """What one demo step did."""

    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class DemoRun:
    """Runs named steps in order, stopping at the first failure (later steps depend on it)."""

    results: list[StepResult] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        """Whether any step failed."""
        return any(not r.ok for r in self.results)

    async def step(self, name: str, fn: Callable[[], Awaitable[str]]) -> None:
        """Run one step unless an earlier one failed."""
        if self.failed:
            self.results.append(StepResult(name, False, 0.0, "skipped: an earlier step failed"))
            return
        console.print(f"[bold]→ {name}[/]")
        start = time.perf_counter()
        try:
            detail = await fn()
        except Exception as err:  # reported in the table; the exit code says it failed
            self.results.append(
                StepResult(name, False, time.perf_counter() - start, f"{type(err).__name__}: {err}")
            )
            return
        self.results.append(StepResult(name, True, time.perf_counter() - start, detail))

    def table(self) -> Table:
        """The summary table."""
        table = Table(title="provena_like demo")
        table.add_column("step")
        table.add_column("result")
        table.add_column("seconds", justify="right")
        table.add_column("detail", overflow="fold")
        for r in self.results:
            mark = "[green]ok[/]" if r.ok else "[red]FAILED[/]"
            table.add_row(r.name, mark, f"{r.seconds:.2f}", r.detail)
        return table


async def _registry_steps(demo: DemoRun, pv: ProvenaClient) -> None:
    async def whoami() -> str:
        me = await pv.auth_client.userinfo()
        return f"signed in as {me.preferred_username or me.sub}"

    async def organisation() -> str:
        org = await pv.registry_client.create_item(
            {
                "subtype": "organisation",
                "record": {"name": "Coastal Ecology Institute", "website": "https://example.org"},
            }
        )
        demo.state["org"] = org
        return f"{org.id} {org.display_name}"

    async def person() -> str:
        item = await pv.registry_client.create_item(
            {
                "subtype": "person",
                "record": {
                    "first_name": "Ada",
                    "last_name": "Ocean",
                    "email": "ada@example.org",
                    "organisation": demo.state["org"].id,
                },
            }
        )
        demo.state["person"] = item
        return f"{item.id} {item.display_name}"

    async def update() -> str:
        item = demo.state["person"]
        record = {**item.record, "email": "ada.ocean@example.org"}
        updated = await pv.registry_client.update_item(
            item.id, {"record": record, "reason": "new e-mail address"}, if_match=item.revision
        )
        history = await pv.registry_client.get_history(item.id)
        demo.state["person"] = updated
        return f"revision {updated.revision}, {len(history.items)} history entries"

    async def listing() -> str:
        count = 0
        async for _ in pv.registry_client.iter_items(subtype="person", page_size=50):
            count += 1
        return f"{count} person item(s) visible"

    await demo.step("who am I", whoami)
    await demo.step("register an organisation", organisation)
    await demo.step("register a person", person)
    await demo.step("update with a reason (If-Match)", update)
    await demo.step("list people", listing)


def _make_sample(root: Path, small: int, large: int) -> dict[str, str]:
    """Write a sample dataset folder; return relative path → sha256."""
    rng = random.Random(7)
    digests: dict[str, str] = {}

    def put(rel: str, data: bytes) -> None:
        target = root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        digests[rel] = hashlib.sha256(data).hexdigest()

    put("README.md", b"# Reef temperature loggers\n\nHourly readings, outer reef, 2023.\n")
    for i in range(small):
        rows = "".join(f"{h},{20 + rng.random() * 5:.3f}\n" for h in range(100))
        put(f"raw/logger-{i // 50:02d}/day-{i:04d}.csv", ("hour,temp_c\n" + rows).encode())
    for i in range(large):
        put(f"derived/grid-{i}.bin", rng.randbytes(24 * 1024 * 1024))
    return digests


def _dataset_record(org: str, person: str, name: str) -> dict[str, Any]:
    no = {"relevant": False, "obtained": False}
    return {
        "associations": {"organisation_id": org, "point_of_contact": person},
        "approvals": {
            "ethics_registration": no,
            "ethics_access": no,
            "indigenous_knowledge": no,
            "export_controls": no,
        },
        "dataset_info": {
            "name": name,
            "description": "Hourly sea temperature from loggers on the outer reef in 2023.",
            "access_info": {"reposited": True},
            "publisher_id": org,
            "created_date": "2024-01-15",
            "published_date": "2024-06-30",
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "keywords": ["reef", "sea temperature", "loggers"],
            "formats": ["text/csv", "application/octet-stream"],
        },
    }


async def _dataset_steps(demo: DemoRun, pv: ProvenaClient, workdir: Path) -> None:
    from provena_like.cli.progress import transfer_bar

    src = workdir / "sample"
    name = f"Outer reef temperatures {uuid.uuid4().hex[:6]}"

    async def mint() -> str:
        record = _dataset_record(demo.state["org"].id, demo.state["person"].id, name)
        ds = await pv.datastore.mint(record, idempotency_key=str(uuid.uuid4()))
        demo.state["ds"] = ds
        return f"{ds.id} at s3://{ds.dataset.storage.bucket}/{ds.dataset.storage.prefix}"

    async def generate() -> str:
        digests = await anyio.to_thread.run_sync(_make_sample, src, 400, 2)
        demo.state["digests"] = digests
        size = sum(p.stat().st_size for p in src.rglob("*") if p.is_file())
        return f"{len(digests)} files, {size / 2**20:.1f} MiB"

    async def upload() -> str:
        ds: InteractiveDataset = demo.state["ds"]
        start = time.perf_counter()
        with transfer_bar(console, "upload") as bar:
            result = await ds.upload(src, progress=bar)
        if result.failed:
            raise RuntimeError(f"{len(result.failed)} file(s) failed: {result.failed[0].reason}")
        seconds = time.perf_counter() - start
        return f"{len(result.ok)} files, {result.bytes / 2**20 / seconds:.0f} MiB/s, registered"

    async def search() -> str:
        ds: InteractiveDataset = demo.state["ds"]
        hits = [hit async for hit in pv.datastore.search(name, max_items=5)]
        if not hits or hits[0].item.id != ds.id:
            raise RuntimeError(f"the new dataset is not the best hit for {name!r}")
        marked = hits[0].highlights.get("display_name", "")
        marked = escape(html.unescape(marked.replace("<mark>", "\0").replace("</mark>", "\1")))
        marked = marked.replace("\0", "[b]").replace("\1", "[/b]")
        return f"best hit {hits[0].item.id} (score {hits[0].score:.2f}) {marked}"

    async def update() -> str:
        ds: InteractiveDataset = demo.state["ds"]
        info = ds.record.dataset_info.model_copy(
            update={"keywords": [*ds.record.dataset_info.keywords, "calibrated"]}
        )
        await ds.update_metadata(
            ds.record.model_copy(update={"dataset_info": info}), reason="add keyword"
        )
        return (
            f"revision {ds.dataset.revision}, keywords {', '.join(ds.record.dataset_info.keywords)}"
        )

    async def version() -> str:
        ds: InteractiveDataset = demo.state["ds"]
        v2 = await ds.version(reason="recalibrated loggers", copy_files=True)
        demo.state["v2"] = v2
        return f"{v2.id} (version {v2.dataset.versioning.version}, files copied server-side)"

    async def download() -> str:
        v2: InteractiveDataset = demo.state["v2"]
        start = time.perf_counter()
        with transfer_bar(console, "download") as bar:
            result = await v2.download(workdir / "copy", progress=bar)
        if result.failed:
            raise RuntimeError(f"{len(result.failed)} file(s) failed: {result.failed[0].reason}")
        seconds = time.perf_counter() - start
        return f"{len(result.ok)} files, {result.bytes / 2**20 / seconds:.0f} MiB/s, each verified"

    async def verify() -> str:
        digests: dict[str, str] = demo.state["digests"]

        def check() -> list[str]:
            bad = []
            for rel, sha in digests.items():
                data = (workdir / "copy" / rel).read_bytes()
                if hashlib.sha256(data).hexdigest() != sha:
                    bad.append(rel)
            return bad

        bad = await anyio.to_thread.run_sync(check)
        if bad:
            raise RuntimeError(f"{len(bad)} checksum mismatch(es), e.g. {bad[0]}")
        return f"all {len(digests)} sha256 checksums match the originals"

    await demo.step("mint a dataset", mint)
    await demo.step("generate a sample folder", generate)
    await demo.step("upload it (concurrent, hashed once)", upload)
    await demo.step("search for it", search)
    await demo.step("update its metadata", update)
    await demo.step("version it (copy files)", version)
    await demo.step("download the new version", download)
    await demo.step("verify every checksum", verify)


async def run_demo(url: str | None) -> DemoRun:
    """Run every step; return the results (never raises for a failed step)."""
    from provena_like.client import ProvenaClient

    demo = DemoRun()
    async with AsyncExitStack() as stack:
        client: dict[str, ProvenaClient] = {}

        async def start() -> str:
            if url:
                client["pv"] = await stack.enter_async_context(ProvenaClient(load_config(url)))
                return f"using {url}"
            from provena_like.testing.localstack import LocalStack

            local = await stack.enter_async_context(LocalStack())
            client["pv"] = await stack.enter_async_context(local.client())
            return f"server {local.url}, object store {local.s3.endpoint_url if local.s3 else '-'}"

        await demo.step("start the local stack" if not url else "connect", start)
        if "pv" in client:
            await _registry_steps(demo, client["pv"])
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="provena-demo-")))
            await _dataset_steps(demo, client["pv"], workdir)
    return demo


def demo(
    url: UrlOption = None,
    quiet: Annotated[bool, typer.Option(help="Only print the summary table.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Run the end-to-end demo (embedded local stack unless --url is given)."""
    if quiet or as_json:
        console.quiet = True
    result = run(lambda: run_demo(url))
    console.quiet = False
    if as_json:
        steps = [dataclasses.asdict(r) for r in result.results]
        typer.echo(json.dumps({"ok": not result.failed, "steps": steps}))
        if result.failed:
            raise typer.Exit(ExitCode.FAILED)
        return
    console.print(result.table())
    if result.failed:
        err_console.print("[red]the demo failed[/]")
        raise typer.Exit(1)
    console.print("[green]all steps passed[/]")
