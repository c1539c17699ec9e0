"""The ``provena-like`` command.

Every command ends through one error mapper (:mod:`provena_like.cli._errors`): expected
errors print one line (or, under ``--json``, a JSON error object on stdout) and exit with
the documented code; see :class:`~provena_like.cli._errors.ExitCode`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Annotated, Any, cast

import typer
from typer.core import TyperGroup

from provena_like.cli import (
    access,
    admin,
    crawl,
    dataset,
    demo,
    item,
    maintenance,
    patch,
    register,
    review,
    serve,
    session,
    transfer_service,
)
from provena_like.cli import transfer as transfer_cli
from provena_like.cli._errors import EXIT_CODES_HELP, CliFailure, ExitCode, describe


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


app = typer.Typer(
    cls=ProvenaGroup,
    name="provena-like",
    help="Register, store, find and move research data with provena_like.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
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


app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("login")(session.login)
app.command("whoami")(session.whoami)
app.command("logout")(session.logout)
app.add_typer(dataset.app, name="dataset")
app.add_typer(item.app, name="item")
app.add_typer(admin.app, name="admin")
app.add_typer(review.app, name="review")
app.add_typer(access.app, name="access")
app.add_typer(register.app, name="register")
app.add_typer(transfer_service.app, name="transfer")
app.command("upload")(transfer_cli.upload)
app.command("download")(transfer_cli.download)
app.command("sync")(transfer_cli.sync)
app.command("verify")(transfer_cli.verify)
app.command("crawl")(crawl.crawl)
app.command("extract")(crawl.extract)
app.command("patch")(patch.patch)
app.command("delete-dataset")(maintenance.delete_dataset)
app.command("check-datasets")(maintenance.check_datasets)


def main() -> None:
    """Entry point of the console script."""
    app()


if __name__ == "__main__":
    main()
