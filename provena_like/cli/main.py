"""The ``provena-like`` command."""

from __future__ import annotations

import typer

from provena_like.cli import access, admin, demo, register, review, serve, session
from provena_like.cli import transfer as transfer_cli

app = typer.Typer(
    name="provena-like",
    help="Register, store, find and move research data with provena_like.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)
app.command("login")(session.login)
app.command("whoami")(session.whoami)
app.command("logout")(session.logout)
app.add_typer(admin.app, name="admin")
app.add_typer(review.app, name="review")
app.add_typer(access.app, name="access")
app.add_typer(register.app, name="register")
app.command("upload")(transfer_cli.upload)
app.command("download")(transfer_cli.download)
app.command("sync")(transfer_cli.sync)
app.command("verify")(transfer_cli.verify)


def main() -> None:
    """Entry point of the console script."""
    app()


if __name__ == "__main__":
    main()
