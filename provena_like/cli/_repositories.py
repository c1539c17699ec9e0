"""What ``patch``, ``delete-dataset`` and ``check-datasets`` share: how Globus repositories open.

A Globus repository's bytes go through a *local endpoint*: a collection that shows a
directory of this machine. ``--local-endpoint COLLECTION=DIR`` names it, or ``--local-endpoint
NAME`` takes it from the ``[local_endpoints.NAME]`` table of the config file; the commands give it
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
        "machine; Globus repositories' bytes go through it. Or NAME: the entry "
        "[local_endpoints.NAME] of the config file.",
    ),
]


def parse_local_endpoint(value: str | None) -> LocalEndpoint | None:
    """``COLLECTION=DIR`` or ``NAME`` as a :class:`~provena_like.repositories.LocalEndpoint`.

    ``NAME`` (no ``=``) is looked up in the config's ``local_endpoints``; ``None`` gives
    ``None``.

    Raises:
        CliFailure: (usage) If it is not a collection UUID, ``=`` and a directory, nor the
            name of a configured local endpoint usable on this machine.

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
    if not sep:
        return _configured_endpoint(value)
    problem = None if collection and directory else "expected COLLECTION=DIR or NAME"
    if problem is None:
        try:
            return LocalEndpoint(collection, Path(directory))
        except UsageError as exc:
            problem = str(exc)
    raise CliFailure(ExitCode.USAGE, f"--local-endpoint {value!r}: {problem}")


def _configured_endpoint(name: str) -> LocalEndpoint:
    """The local endpoint ``[local_endpoints.<name>]`` of the config."""
    import os

    from provena_like._core.errors import ProvenaError
    from provena_like._core.local_paths import is_windows_path
    from provena_like.cli._common import load_config
    from provena_like.repositories import LocalEndpoint

    endpoints = load_config(None, remembered=False).local_endpoints
    entry = endpoints.get(name)
    if entry is None:
        known = ", ".join(sorted(endpoints)) or "none configured"
        raise CliFailure(
            ExitCode.USAGE,
            f"--local-endpoint {name!r}: no such entry in the config's local_endpoints "
            f"({known}); or give COLLECTION=DIR",
        )
    if is_windows_path(entry.directory) != (os.name == "nt"):
        raise CliFailure(
            ExitCode.USAGE,
            f"local endpoint {name!r}: directory {entry.directory!r} is not a path of this "
            "machine's kind (Windows vs POSIX)",
        )
    try:
        return LocalEndpoint(entry.collection, Path(entry.directory), entry.path)
    except ProvenaError as exc:
        raise CliFailure(ExitCode.USAGE, f"local endpoint {name!r}: {exc}") from exc


def patcher_for(pv: ProvenaClient, endpoint: LocalEndpoint | None) -> Patcher:
    """``pv.patcher``, with ``endpoint`` as its local endpoint if one was given."""
    patcher = pv.patcher
    if endpoint is not None:
        patcher.local_endpoint = endpoint
    return patcher
