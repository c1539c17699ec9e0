"""Shared pieces of the CLI: config from options, running coroutines, error reporting."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from provena_like.cli._errors import CliFailure, ExitCode
from provena_like.cli._startup import imports_without_gc

if TYPE_CHECKING:  # imported when a command runs: `--help` stays fast
    from provena_like._core.config import ProvenaConfig
    from provena_like.client import ProvenaClient

T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

JsonOption = Annotated[
    bool,
    typer.Option("--json", help="Print the result (or the error) as one JSON document."),
]

NoProgressOption = Annotated[
    bool,
    typer.Option(
        "--no-progress",
        envvar="PROVENA_NO_PROGRESS",
        help="No progress bar (also PROVENA_NO_PROGRESS=1; none without a terminal anyway).",
    ),
]

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="Base URL of the server (default: PROVENA_BASE_URL or config)."),
]


def load_config(url: str | None, *, remembered: bool = True, **overrides: Any) -> ProvenaConfig:
    """Config from keyword options > ``PROVENA_*`` environment > config file.

    With ``remembered`` (the default), a config that names no issuer (and no static token
    or client secret) signs in where ``provena-like login --issuer`` last signed in for this
    server: the issuer and client remembered in the token store.
    """
    from provena_like._core.config import ProvenaConfig
    from provena_like._core.errors import ProvenaError

    if url:
        overrides["base_url"] = url
    try:
        config = ProvenaConfig.load(**overrides)
    except ProvenaError as err:
        raise CliFailure(ExitCode.USAGE, f"configuration error: {err}") from err
    if remembered:
        from provena_like.auth import with_remembered_sign_in

        config = with_remembered_sign_in(config)
    return config


def run_with_client(url: str | None, work: Callable[[ProvenaClient], Awaitable[T]]) -> T:
    """Open a client for ``url``, run ``work(pv)``, close the client; errors as :func:`run`."""
    with imports_without_gc():
        from provena_like.client import ProvenaClient

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


def run(fn: Callable[[], Awaitable[T]], *, interrupted: str = "interrupted") -> T:
    """Run ``fn()`` on a fresh event loop.

    Errors propagate to the command group's error mapper (:mod:`provena_like.cli._errors`),
    which prints them and picks the exit code; Ctrl-C becomes ``interrupted`` (exit 130).
    """
    import anyio

    try:
        return anyio.run(fn)
    except KeyboardInterrupt as err:
        raise CliFailure(ExitCode.INTERRUPTED, interrupted) from err


def emit(as_json: bool, doc: Any, human: Callable[[], None]) -> None:
    """Print ``doc`` as JSON (models, dates and paths converted) or call ``human()``."""
    if as_json:
        from pydantic_core import to_jsonable_python

        typer.echo(json.dumps(to_jsonable_python(doc)))
    else:
        human()
