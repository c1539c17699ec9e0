"""Shared pieces of the CLI: config from options, running coroutines, error reporting."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable
from typing import Annotated, Any, TypeVar

import anyio
import typer
from rich.console import Console

from provena_like._core.config import ProvenaConfig
from provena_like._core.errors import APIStatusError, AuthError, ProvenaError
from provena_like.client import ProvenaClient

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="Base URL of the server (default: PROVENA_BASE_URL or config)."),
]


def load_config(url: str | None, **overrides: Any) -> ProvenaConfig:
    """Config from keyword options > ``PROVENA_*`` environment > config file."""
    if url:
        overrides["base_url"] = url
    try:
        return ProvenaConfig.load(**overrides)
    except ProvenaError as err:
        err_console.print(f"[red]configuration error:[/] {err}")
        raise typer.Exit(2) from err


def run_with_client(url: str | None, work: Callable[[ProvenaClient], Awaitable[T]]) -> T:
    """Open a client for ``url``, run ``work(pv)``, close the client; errors as :func:`run`."""
    config = load_config(url)

    async def go() -> T:
        async with ProvenaClient(config) as pv:
            return await work(pv)

    return run(go)


def collect_with_client(
    url: str | None, items: Callable[[ProvenaClient], AsyncIterable[T]]
) -> list[T]:
    """Every item of ``items(pv)`` (an ``iter_*`` call), gathered by :func:`run_with_client`."""

    async def work(pv: ProvenaClient) -> list[T]:
        return [item async for item in items(pv)]

    return run_with_client(url, work)


def run(fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn()`` on a fresh event loop, turning SDK errors into messages and exit codes."""
    try:
        return anyio.run(fn)
    except AuthError as err:
        err_console.print(f"[red]authentication failed:[/] {err}")
        raise typer.Exit(1) from err
    except APIStatusError as err:
        err_console.print(f"[red]{err.status_code} {err.code or ''}:[/] {err}")
        raise typer.Exit(1) from err
    except ProvenaError as err:
        err_console.print(f"[red]error:[/] {err}")
        raise typer.Exit(1) from err
