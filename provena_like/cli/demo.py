"""``provena-like demo``: the end-to-end walk through on the embedded local stack.

Every step is timed and reported in a summary table; the command exits non-zero if any step
fails. With ``--url`` it runs against an existing server, signed in as configured
(``provena-like login`` or ``PROVENA_*`` variables).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer
from rich.table import Table

from provena_like.cli._common import UrlOption, console, err_console, load_config, run
from provena_like.client import ProvenaClient


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
        me = await pv.auth.userinfo()
        return f"signed in as {me.preferred_username or me.sub}"

    async def organisation() -> str:
        org = await pv.registry.create_item(
            {
                "subtype": "organisation",
                "record": {"name": "Coastal Ecology Institute", "website": "https://example.org"},
            }
        )
        demo.state["org"] = org
        return f"{org.id} {org.display_name}"

    async def person() -> str:
        item = await pv.registry.create_item(
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
        updated = await pv.registry.update_item(
            item.id, {"record": record, "reason": "new e-mail address"}, if_match=item.revision
        )
        history = await pv.registry.get_history(item.id)
        demo.state["person"] = updated
        return f"revision {updated.revision}, {len(history.items)} history entries"

    async def listing() -> str:
        count = 0
        async for _ in pv.registry.iter_items(subtype="person", page_size=50):
            count += 1
        return f"{count} person item(s) visible"

    await demo.step("who am I", whoami)
    await demo.step("register an organisation", organisation)
    await demo.step("register a person", person)
    await demo.step("update with a reason (If-Match)", update)
    await demo.step("list people", listing)


async def run_demo(url: str | None) -> DemoRun:
    """Run every step; return the results (never raises for a failed step)."""
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
    return demo


def demo(
    url: UrlOption = None,
    quiet: Annotated[bool, typer.Option(help="Only print the summary table.")] = False,
) -> None:
    """Run the end-to-end demo (embedded local stack unless --url is given)."""
    if quiet:
        console.quiet = True
    result = run(lambda: run_demo(url))
    console.quiet = False
    console.print(result.table())
    if result.failed:
        err_console.print("[red]the demo failed[/]")
        raise typer.Exit(1)
    console.print("[green]all steps passed[/]")
