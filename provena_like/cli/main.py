"""The ``provena-like`` command.

Every command ends through one error mapper (:mod:`provena_like.cli._errors`): expected
errors print one line (or, under ``--json``, a JSON error object on stdout) and exit with
the documented code; see :class:`~provena_like.cli._errors.ExitCode`.
"""

from __future__ import annotations

import copy
import importlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, cast

import typer
from typer.core import TyperGroup
from typer.main import get_command_name

from provena_like.cli._errors import EXIT_CODES_HELP, CliFailure, ExitCode, describe
from provena_like.cli._startup import console_script_starts, imports_without_gc


class ProvenaGroup(TyperGroup):
    """The top-level command group: maps every error to a message and an exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; exit (or, not standalone, return) the documented code."""
        argv = list(sys.argv[1:] if args is None else args)
        as_json = "--json" in argv
        try:
            rv = super().main(
                argv,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            code = rv if isinstance(rv, int) else 0
        except typer.Abort:
            code = _report(CliFailure(ExitCode.INTERRUPTED, "aborted"), as_json)
        except typer.TyperException as err:
            code = _report_click(err, as_json)
        except (Exception, KeyboardInterrupt) as err:
            failure = describe(err)
            if failure is None:
                raise
            code = _report(failure, as_json)
        if standalone_mode:
            sys.exit(code)
        return code


def _report(failure: CliFailure, as_json: bool) -> int:
    """Print one failure (JSON on stdout, or a line on stderr); return its exit code."""
    if as_json:
        typer.echo(json.dumps(failure.as_json()))
    else:
        from rich.markup import escape

        from provena_like.cli._common import err_console

        err_console.print(f"[red]error:[/] {escape(failure.message)}")
    return int(failure.code)


def _report_click(err: typer.TyperException, as_json: bool) -> int:
    """A usage error as typer shows it, or as a JSON error object."""
    code = err.exit_code
    if as_json:
        usage = ExitCode.USAGE if code == ExitCode.USAGE else ExitCode.FAILED
        _report(CliFailure(usage, err.format_message()), as_json)
        return code
    from typer import rich_utils

    rich_utils.rich_format_error(cast(Any, err))
    return code


def _version(value: bool) -> None:
    if value:
        from provena_like._version import __version__

        typer.echo(f"provena-like {__version__}")
        raise typer.Exit()


_COMMANDS: dict[str, tuple[str, str, bool]] = {
    "serve": ("serve", "serve", False),
    "demo": ("demo", "demo", False),
    "login": ("session", "login", False),
    "whoami": ("session", "whoami", False),
    "logout": ("session", "logout", False),
    "dataset": ("dataset", "app", True),
    "item": ("item", "app", True),
    "admin": ("admin", "app", True),
    "review": ("review", "app", True),
    "access": ("access", "app", True),
    "register": ("register", "app", True),
    "transfer": ("transfer_service", "app", True),
    "archive": ("archive", "app", True),
    "upload": ("transfer", "upload", False),
    "download": ("transfer", "download", False),
    "sync": ("transfer", "sync", False),
    "verify": ("transfer", "verify", False),
    "crawl": ("crawl", "crawl_app", True),
    "extract": ("crawl", "extract", False),
    "patch": ("patch", "patch", False),
    "delete-dataset": ("maintenance", "delete_dataset", False),
    "check-datasets": ("maintenance", "check_datasets", False),
}
"""Every top-level command → (module of ``provena_like.cli``, its attribute, a Typer group?)."""


def make_app(names: Iterable[str] = _COMMANDS, *, only: str | None = None) -> typer.Typer:
    """The ``provena-like`` app with the top-level commands ``names`` (default: all of them).

    Only the modules of those commands are imported, and typer builds only their options:
    :func:`main` gives the one command the arguments run, so a client command doesn't pay
    for the other 60-odd commands at every start.

    Args:
        names: the top-level commands to build.
        only: of a command group (``dataset``, ...), build only its subcommand (or
            sub-group) of this name, when it has one: ``dataset show`` doesn't build the
            options of the other eight ``dataset`` commands.
    """
    app = typer.Typer(
        cls=ProvenaGroup,
        name="provena-like",
        help="Register, store, find and move research data with provena_like.",
        epilog=EXIT_CODES_HELP,
        no_args_is_help=True,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(_root)
    for name in names:
        module, attribute, group = _COMMANDS[name]
        command = getattr(importlib.import_module(f"provena_like.cli.{module}"), attribute)
        if group:
            app.add_typer(command if only is None else _narrowed(command, only), name=name)
        else:
            app.command(name)(command)
    return app


def _narrowed(group: typer.Typer, name: str) -> typer.Typer:
    """``group`` with only its command or sub-group ``name`` (``group`` itself if it has none).

    Typer builds every command of a group (their options, their type adapters) before it
    looks at the arguments; a copy that holds only the one the arguments run skips that.
    An unknown name keeps them all, so typer can suggest the closest.
    """
    commands = [
        c
        for c in group.registered_commands
        if (c.name or (c.callback and get_command_name(c.callback.__name__))) == name
    ]
    groups = [g for g in group.registered_groups if g.name == name]
    if not commands and not groups:
        return group
    narrowed = copy.copy(group)
    narrowed.registered_commands = commands
    narrowed.registered_groups = groups
    return narrowed


def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            "-V",
            callback=_version,
            is_eager=True,
            help="Show the version and exit.",
        ),
    ] = False,
) -> None:
    """Register, store, find and move research data with provena_like."""


def command_of(args: Sequence[str]) -> str | None:
    """The top-level command ``args`` run, when building only it is enough (else ``None``).

    ``None`` (build every command) for the top-level help and options, a name that is not a
    command (the error suggests the right one), and shell completion, which needs them all.
    """
    if not args or any(k.startswith("_") and k.endswith("_COMPLETE") for k in os.environ):
        return None
    return args[0] if args[0] in _COMMANDS else None


def __getattr__(name: str) -> typer.Typer:
    # ``app``: every command (tests and tools that run the CLI in-process)
    if name == "app":
        full = make_app()
        globals()["app"] = full
        return full
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def app_for(args: Sequence[str]) -> typer.Typer:
    """The app the console script runs for ``args``: only the commands they run are built.

    Example:
        ```python
        from provena_like.cli.main import app_for

        app = app_for(["dataset", "show", "10378.1/1"])  # builds `dataset show` alone
        ```
    """
    command = command_of(args)
    only = args[1] if command is not None and len(args) > 1 else None
    return make_app(_COMMANDS if command is None else [command], only=only)


def main() -> None:
    """Entry point of the console script."""
    console_script_starts()
    with imports_without_gc():
        app = app_for(sys.argv[1:])
    app()


if __name__ == "__main__":
    main()
