"""``provena-like login | whoami | logout``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from provena_like.cli._common import (
    JsonOption,
    UrlOption,
    console,
    emit,
    err_console,
    load_config,
    run,
)
from provena_like.cli._errors import CliFailure, ExitCode

if TYPE_CHECKING:
    from provena_like.auth import DevicePrompt

IssuerOption = Annotated[
    str | None,
    typer.Option(
        "--issuer",
        help="Sign in at this OpenID provider (one the server trusts: GET /auth/issuers); "
        "its published client id is used.",
    ),
]


def _trusted_issuer(url: str | None, issuer: str) -> dict[str, Any]:
    """The config overrides to sign in at ``issuer``, if the server accepts its tokens."""
    import httpx

    from provena_like.models.auth import TrustedIssuers

    base = load_config(url)
    where = base.service_url("auth") + "/issuers"
    try:
        response = httpx.get(where, timeout=base.timeout, verify=base.verify)
        response.raise_for_status()
        published = TrustedIssuers.model_validate_json(response.content)
    except httpx.HTTPError as err:
        raise CliFailure(
            ExitCode.UNREACHABLE, f"cannot read the server's issuers at {where}: {err}"
        ) from err
    wanted = issuer.rstrip("/")
    if published.embedded is not None and published.embedded.rstrip("/") == wanted:
        return {"issuer": published.embedded}
    for trusted in published.issuers:
        if trusted.issuer.rstrip("/") == wanted:
            return {"issuer": trusted.issuer} | (
                {"client_id": trusted.client_id} if trusted.client_id else {}
            )
    known = [published.embedded] if published.embedded else []
    known += [t.issuer for t in published.issuers]
    raise CliFailure(
        ExitCode.USAGE,
        f"the server at {base.base_url} does not accept tokens of {issuer}; it accepts: "
        + (", ".join(known) or "none"),
    )


def login(url: UrlOption = None, issuer: IssuerOption = None, as_json: JsonOption = False) -> None:
    """Sign in with the device flow: open the link shown, approve, and come back.

    With ``--issuer``, the sign-in is at that provider (an institution's login the server
    trusts); later commands use it when ``issuer`` (and ``client_id``) are set in the
    config file or as ``PROVENA_ISSUER`` / ``PROVENA_CLIENT_ID``.
    """
    from provena_like.auth import AuthManager
    from provena_like.client import ProvenaClient

    overrides = _trusted_issuer(url, issuer) if issuer else {}
    config = load_config(url, **overrides)

    def show(prompt: DevicePrompt) -> None:
        out = err_console if as_json else console  # keep stdout for the JSON document
        link = prompt.verification_uri_complete or prompt.verification_uri
        out.print(f"Open [bold link={link}]{link}[/] in a browser")
        out.print(f"and confirm the code [bold cyan]{prompt.user_code}[/]")
        out.print(f"(it expires in {prompt.expires_in // 60} min). Waiting ...")

    async def go() -> None:
        async with AuthManager.from_config(config) as manager:
            await manager.login_device(show)
        async with ProvenaClient(config) as pv:
            me = await pv.auth_client.userinfo()
        emit(
            as_json,
            {
                "username": me.preferred_username or me.sub,
                "server": config.base_url,
                "issuer": config.issuer or config.service_url("auth"),
            },
            lambda: console.print(
                f"[green]Signed in[/] as [bold]{me.preferred_username or me.sub}[/]"
            ),
        )

    run(go)


def whoami(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Show who you are signed in as, with your groups and system roles."""
    from provena_like.client import ProvenaClient

    config = load_config(url)

    async def go() -> None:
        async with ProvenaClient(config) as pv:
            me = await pv.auth_client.userinfo()

        def human() -> None:
            name = f"[bold]{me.preferred_username or me.sub}[/]"
            console.print(name + (f" ({me.name})" if me.name else ""))
            if me.email:
                console.print(f"  email   {me.email}")
            console.print(f"  groups  {', '.join(me.groups) or '-'}")
            console.print(f"  roles   {', '.join(me.roles) or '-'}")
            console.print(f"  server  {config.base_url}")

        emit(as_json, {**me.model_dump(mode="json"), "server": config.base_url}, human)

    run(go)


def logout(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Revoke the stored refresh token and delete it from this machine."""
    from provena_like.auth import AuthManager

    config = load_config(url)

    async def go() -> None:
        async with AuthManager.from_config(config) as manager:
            await manager.logout()
        emit(as_json, {"signed_out": True}, lambda: console.print("Signed out."))

    run(go)
