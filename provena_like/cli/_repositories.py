"""What ``patch``, ``delete-dataset`` and ``check-datasets`` share: how Globus repositories open.

A Globus repository's bytes go through a *local endpoint*: a collection that shows a
directory of this machine. ``--local-endpoint COLLECTION=DIR`` names it; the commands give it
to ``pv.patcher`` (:class:`~provena_like.modules.patcher.Patcher`), which opens the Globus
repositories with ``pv.transfer_client``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from provena_like.cli._errors import CliFailure, ExitCode

if TYPE_CHECKING:  # imported when a command runs: `--help` stays fast
    from provena_like.client import ProvenaClient
    from provena_like.modules.patcher import Patcher
    from provena_like.repositories import LocalEndpoint

__all__ = ["LocalEndpointOption", "parse_local_endpoint", "patcher_for"]

LocalEndpointOption = Annotated[
    str | None,
    typer.Option(
        "--local-endpoint",
        help="COLLECTION=DIR: the collection (UUID) that shows the directory DIR of this "
        "machine; Globus repositories' bytes go through it.",
    ),
]


def parse_local_endpoint(value: str | None) -> LocalEndpoint | None:
    """``COLLECTION=DIR`` as a :class:`~provena_like.repositories.LocalEndpoint` (or ``None``).

    Raises:
        CliFailure: (usage) If it is not a collection UUID, ``=`` and a directory.

    Example:
        ```python
        endpoint = parse_local_endpoint("6c5bd2a4-67c1-4c0b-8d64-2b4c0d7a2b9e=/data/globus")
        assert endpoint is not None and endpoint.directory.name == "globus"
        ```
    """
    if value is None:
        return None
    from provena_like._core.errors import UsageError
    from provena_like.repositories import LocalEndpoint

    collection, sep, directory = value.partition("=")
    problem = None if sep and collection and directory else "expected COLLECTION=DIR"
    if problem is None:
        try:
            return LocalEndpoint(collection, Path(directory))
        except UsageError as exc:
            problem = str(exc)
    raise CliFailure(ExitCode.USAGE, f"--local-endpoint {value!r}: {problem}")


def patcher_for(pv: ProvenaClient, endpoint: LocalEndpoint | None) -> Patcher:
    """``pv.patcher``, with ``endpoint`` as its local endpoint if one was given."""
    patcher = pv.patcher
    if endpoint is not None:
        patcher.local_endpoint = endpoint
    return patcher
